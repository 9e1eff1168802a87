//! Everything needed to open an MQTT connection, read and checked once from the config (or from
//! `watch`'s flags), so a bad file is reported with the key that names it before any retry loop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::{BrokerUrl, MqttConfig, MqttProtocol};

/// Why connection settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {what} {path} ({key}): {source}")]
    File {
        what: &'static str,
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("broker `{url}` ({key}): {problem}")]
    Url {
        url: String,
        key: &'static str,
        problem: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// TLS material, already read from disk.
#[derive(Clone)]
pub struct TlsMaterial {
    pub ca_pem: Vec<u8>,
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("client_auth", &self.client.is_some())
            .finish()
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsMaterial>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_id: String,
    pub protocol: MqttProtocol,
    pub keep_alive: Duration,
    /// Unacknowledged publishes allowed at once.
    pub max_inflight: u16,
    /// `false` asks the broker to keep the session across disconnects.
    pub clean_session: bool,
}

/// Largest MQTT packet sent or accepted: an evidence frame at full HD fits with room to spare.
pub const MAX_PACKET: usize = 16 << 20;

pub(crate) fn read_file(
    path: &Path,
    what: &'static str,
    key: &'static str,
) -> Result<Vec<u8>, SettingsError> {
    std::fs::read(path).map_err(|source| SettingsError::File {
        what,
        key,
        path: path.to_path_buf(),
        source,
    })
}

impl MqttSettings {
    /// Parses `mqtt://host:port` / `mqtts://host:port`; TLS and credentials are added by the caller.
    pub fn from_url(url: &str, key: &'static str) -> Result<Self, SettingsError> {
        let b = BrokerUrl::parse(url).map_err(|problem| SettingsError::Url {
            url: crate::source::redact_url(url),
            key,
            problem,
        })?;
        Ok(Self {
            host: b.host,
            port: b.port,
            tls: b.tls.then(|| TlsMaterial {
                ca_pem: Vec::new(),
                client: None,
            }),
            username: b.username,
            password: b.password,
            client_id: String::new(),
            protocol: MqttProtocol::V311,
            keep_alive: Duration::from_secs(30),
            max_inflight: 100,
            clean_session: false,
        })
    }

    /// Reads `[mqtt]`: the broker URL (the embedded broker's address when none is configured),
    /// TLS files, password file; `device` is the client id unless `[mqtt] client_id` is set, and
    /// `resolve` makes relative paths absolute.
    pub fn from_section(
        m: &MqttConfig,
        device: &str,
        resolve: &dyn Fn(&Path) -> std::path::PathBuf,
    ) -> Result<Self, SettingsError> {
        let mut s = match &m.broker {
            Some(url) => Self::from_url(url, "[mqtt].broker")?,
            None => {
                let addr: std::net::SocketAddr = m.embedded_listen.parse().map_err(|e| {
                    SettingsError::Invalid(format!(
                        "[mqtt].embedded_listen `{}` is not address:port: {e}",
                        m.embedded_listen
                    ))
                })?;
                let host = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    addr.ip().to_string()
                };
                Self::from_url(
                    &format!("mqtt://{host}:{}", addr.port()),
                    "[mqtt].embedded_listen",
                )?
            }
        };
        if let Some(tls) = &m.tls {
            let ca_pem = read_file(
                &resolve(&tls.ca_file),
                "CA certificate",
                "[mqtt.tls].ca_file",
            )?;
            let client = match (&tls.client_cert_file, &tls.client_key_file) {
                (Some(c), Some(k)) => Some((
                    read_file(
                        &resolve(c),
                        "client certificate",
                        "[mqtt.tls].client_cert_file",
                    )?,
                    read_file(&resolve(k), "client key", "[mqtt.tls].client_key_file")?,
                )),
                (None, None) => None,
                _ => {
                    return Err(SettingsError::Invalid(
                        "[mqtt.tls] needs both client_cert_file and client_key_file for mutual TLS"
                            .into(),
                    ));
                }
            };
            s.tls = Some(TlsMaterial { ca_pem, client });
        } else if s.tls.is_some() {
            return Err(SettingsError::Invalid(
                "[mqtt].broker is mqtts:// but [mqtt.tls] is missing; add ca_file".into(),
            ));
        }
        if let Some(user) = &m.username {
            s.username = Some(user.clone());
        }
        if let Some(pw) = &m.password_file {
            let bytes = read_file(&resolve(pw), "password file", "[mqtt].password_file")?;
            s.password = Some(
                String::from_utf8_lossy(&bytes)
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            );
        }
        s.client_id = m.client_id.clone().unwrap_or_else(|| device.to_string());
        s.protocol = m.protocol;
        s.keep_alive = Duration::from_secs(m.keep_alive_s);
        s.max_inflight = m.max_inflight;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_and_tls() {
        let s = MqttSettings::from_url("mqtts://user:pw@ioc.example:8884", "k").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("ioc.example", 8884));
        assert!(s.tls.is_some());
        assert_eq!(s.username.as_deref(), Some("user"));
        let s = MqttSettings::from_url("mqtt://127.0.0.1", "k").unwrap();
        assert_eq!(s.port, 1883);
        let e = MqttSettings::from_url("http://x", "[mqtt].broker").unwrap_err();
        assert!(e.to_string().contains("[mqtt].broker"), "{e}");
    }

    #[test]
    fn missing_ca_file_names_the_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        let text = "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[mqtt]\nbroker = \"mqtts://localhost:8883\"\n[mqtt.tls]\nca_file = \"nope/ca.crt\"\n";
        let loaded = crate::config::parse_str(&cfg, text.into()).unwrap();
        let e = loaded.mqtt_settings().unwrap_err().to_string();
        assert!(
            e.contains("[mqtt.tls].ca_file") && e.contains("nope/ca.crt"),
            "{e}"
        );
    }
}
