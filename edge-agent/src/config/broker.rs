//! The `[mqtt] broker` URL, read once: by `check` and by the publisher that connects to it.

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
