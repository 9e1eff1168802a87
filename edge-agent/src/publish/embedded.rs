//! The embedded MQTT broker (rumqttd) started when `[mqtt].broker` is unset, so a fresh device or
//! the demo works with no infrastructure and any MQTT client can subscribe on 127.0.0.1.
//!
//! rumqttd has no ACLs (stack-facts §5): it is a development default, not a site broker.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::config::MqttProtocol;

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "embedded MQTT broker cannot listen on {addr} ([mqtt].embedded_listen): {source}; stop whatever uses the port or set [mqtt].broker"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("embedded MQTT broker config: {0}")]
    Config(String),
    #[error("embedded MQTT broker on {0} did not accept connections within 5 s")]
    NotReady(SocketAddr),
}

/// Starts rumqttd on `addr` in background threads and waits until it accepts connections.
pub fn start(addr: SocketAddr, protocol: MqttProtocol) -> Result<(), EmbeddedError> {
    // rumqttd only logs a failed bind inside its thread; check first so the error is ours.
    drop(TcpListener::bind(addr).map_err(|source| EmbeddedError::Bind { addr, source })?);
    let server = match protocol {
        MqttProtocol::V311 => "v4",
        MqttProtocol::V5 => "v5",
    };
    let text = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 256
max_outgoing_packet_count = 500
max_segment_size = 104857600
max_segment_count = 10

[{server}.1]
name = "embedded"
listen = "{addr}"
next_connection_delay_ms = 1
[{server}.1.connections]
connection_timeout_ms = 60000
max_payload_size = {max}
max_inflight_count = 500
dynamic_filters = true
"#,
        max = super::settings::MAX_PACKET
    );
    let config: rumqttd::Config =
        toml::from_str(&text).map_err(|e| EmbeddedError::Config(e.to_string()))?;
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| EmbeddedError::Config(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            tracing::info!(%addr, "embedded MQTT broker listening (no broker configured)");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(EmbeddedError::NotReady(addr))
}
