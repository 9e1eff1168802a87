//! `[mqtt]`: the link to the integration centre (this stage owns the section), and the broker URL
//! parsed once for `check`, the publisher and `watch`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[mqtt]`: the link to the integration centre.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:1883` or `mqtts://host:8883`. Default: none, which starts an embedded broker on
    /// `embedded_listen` so a fresh device works out of the box.
    #[serde(default)]
    pub broker: Option<String>,
    /// Listen address of the embedded broker. Default `127.0.0.1:1883`.
    #[serde(default = "default_embedded_listen")]
    pub embedded_listen: String,
    /// Payload bytes the embedded broker's log of each subscribed topic filter may hold, in KiB
    /// (the spool, not the broker, is the durable copy). Default 256.
    #[serde(default = "default_embedded_log_kb")]
    pub embedded_log_kb: u32,
    /// Fixed MQTT client id (persistent sessions need it). Default: the device id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// `v311` or `v5`. Default `v311`.
    #[serde(default)]
    pub protocol: MqttProtocol,
    /// First topic level(s): topics are `{prefix}/{site}/{device}/...`. Default `edge`.
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Username for password authentication. Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (kept out of the config so the config can be shared). Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Keep-alive interval in seconds. Default 30.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// `[mqtt.tls]`: present means TLS. Default: none.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// First reconnect delay in milliseconds; doubles per failure, with jitter. Default 500.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay in seconds. Default 30.
    #[serde(default = "default_reconnect_max_s")]
    pub reconnect_max_s: u64,
    /// Seconds between `health` messages. Default 30.
    #[serde(default = "default_health_interval_s")]
    pub health_interval_s: u64,
    /// Publishes awaiting PUBACK at once. Default 100.
    #[serde(default = "default_max_inflight")]
    pub max_inflight: u16,
    /// Uplink budget of a metered link, in MB (10^6 bytes) handed to the broker per sliding hour
    /// and per sliding day. Past it evidence images wait in the spool (events still go: they are
    /// the alert). Default 0 = no limit.
    #[serde(default)]
    pub uplink_mb_per_hour: f64,
    #[serde(default)]
    pub uplink_mb_per_day: f64,
    /// Payload KiB handed to the MQTT client and not yet acknowledged, at most (one message
    /// always fits): what a new watchlist hit or violation waits behind on a busy link. Default
    /// 4096; on a thin uplink about 2 s of its speed (e.g. 256).
    #[serde(default = "default_window_kb")]
    pub window_kb: u32,
    /// `inline` (default): evidence images travel with their event. `on_request`: they stay on
    /// the device (`<spool_dir>/held`, bounded like clips) and only their hashes travel; the centre
    /// fetches one with a signed `evidence/get`, like a clip (a metered 4G pole).
    #[serde(default)]
    pub evidence: EvidenceDelivery,
    /// Why a plain `mqtt://` broker on another machine (plates, evidence and the password in
    /// clear) or an embedded broker listening beyond loopback (no authentication) is acceptable
    /// here; recorded in the audit log at every start. Default none: `check` refuses both.
    #[serde(default)]
    pub allow_insecure: Option<String>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: None,
            embedded_listen: default_embedded_listen(),
            embedded_log_kb: default_embedded_log_kb(),
            client_id: None,
            protocol: MqttProtocol::default(),
            topic_prefix: default_prefix(),
            username: None,
            password_file: None,
            keep_alive_s: default_keep_alive(),
            tls: None,
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_s: default_reconnect_max_s(),
            health_interval_s: default_health_interval_s(),
            max_inflight: default_max_inflight(),
            uplink_mb_per_hour: 0.0,
            uplink_mb_per_day: 0.0,
            window_kb: default_window_kb(),
            evidence: EvidenceDelivery::default(),
            allow_insecure: None,
        }
    }
}

fn default_embedded_listen() -> String {
    "127.0.0.1:1883".into()
}
fn default_embedded_log_kb() -> u32 {
    16
}
fn default_prefix() -> String {
    "edge".into()
}
fn default_keep_alive() -> u64 {
    30
}
fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_s() -> u64 {
    30
}
fn default_health_interval_s() -> u64 {
    30
}
fn default_max_inflight() -> u16 {
    100
}
fn default_window_kb() -> u32 {
    4096
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MqttProtocol {
    #[default]
    V311,
    V5,
}

/// Whether evidence images travel with their event (`[mqtt] evidence`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceDelivery {
    #[default]
    Inline,
    OnRequest,
}

/// `[mqtt.tls]`: server verification and optional client certificate (mutual TLS).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificate(s) that signed the broker's certificate. Required.
    pub ca_file: PathBuf,
    /// PEM client certificate for mutual TLS. Default: none.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate. Required with `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

/// A broker URL: `mqtt://` (or `tcp://`) in clear, `mqtts://` (or `ssl://`) over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    /// Reads a broker URL; the error says what is wrong (the caller names the URL, redacted).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let u = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        let (tls, default_port) = match u.scheme() {
            "mqtt" | "tcp" => (false, 1883),
            "mqtts" | "ssl" => (true, 8883),
            other => {
                return Err(format!(
                    "unsupported scheme `{other}`, use mqtt:// or mqtts://"
                ));
            }
        };
        // `mqtt://` is not a scheme the URL standard knows, so its host stays text
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Self {
            tls,
            host,
            port: u.port().unwrap_or(default_port),
            username: (!u.username().is_empty()).then(|| u.username().to_string()),
            password: u.password().map(str::to_string),
        })
    }

    /// Whether the broker runs on this machine (loopback address or `localhost`).
    pub fn is_this_machine(&self) -> bool {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => self.host.eq_ignore_ascii_case("localhost"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_give_tls_host_port_and_credentials() {
        let b = BrokerUrl::parse("mqtts://dev:s3cret@ioc.example:8884").unwrap();
        assert!(b.tls);
        assert_eq!((b.host.as_str(), b.port), ("ioc.example", 8884));
        assert_eq!(b.username.as_deref(), Some("dev"));
        assert_eq!(b.password.as_deref(), Some("s3cret"));
        assert!(!b.is_this_machine());
        let b = BrokerUrl::parse("mqtt://[::1]").unwrap();
        assert_eq!((b.tls, b.host.as_str(), b.port), (false, "::1", 1883));
        assert!(b.is_this_machine());
        assert!(
            BrokerUrl::parse("tcp://localhost")
                .unwrap()
                .is_this_machine()
        );
        assert_eq!(BrokerUrl::parse("ssl://h").unwrap().port, 8883);
        assert!(
            BrokerUrl::parse("http://h")
                .unwrap_err()
                .contains("unsupported scheme")
        );
        assert!(BrokerUrl::parse("mqtt://").unwrap_err().contains("no host"));
        assert!(
            BrokerUrl::parse("ioc.example")
                .unwrap_err()
                .contains("not a URL")
        );
    }
}
