//! The embedded MQTT broker (rumqttd) started when `[mqtt].broker` is unset, so a fresh device or
//! the demo works with no infrastructure and any MQTT client can subscribe on 127.0.0.1.
//!
//! rumqttd has no ACLs (stack-facts §5): it is a development default, not a site broker.
//!
//! Memory: rumqttd keeps, for every subscribed topic filter, a log of what was published to it.
//! The spool is the durable copy of every event, so the broker only needs what its subscribers
//! have not read yet: each filter's log is cut to two segments of half `[mqtt].embedded_log_kb`,
//! the oldest dropped first; a QoS 1 subscriber's in-flight messages (rumqttd: at most 100) are
//! tracked apart from the log until acknowledged. The log must stay small in bytes *and* in
//! messages: each payload rumqttd keeps is a view into the network read buffer it arrived in, and
//! the agent's event JSONs arrive between evidence JPEGs, so one 1.4 KB event JSON kept in the
//! `events/#` log keeps a read buffer of up to an evidence image alive (measured: 100 MB segments,
//! 1500 events and a subscriber grew the process by 230 MB; a 256 KiB log, about 190 events, still
//! pinned 37 MB and took a live camera 5 hours to fill, +22 MB/h in the soak; the 16 KiB default
//! keeps about 11 events). A subscriber further behind than its in-flight
//! window and the log skips the oldest messages; one that needs every event uses a persistent
//! site broker.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::MqttProtocol;
pub use crate::events::status::BrokerMemory;

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

/// Messages a QoS 0 subscriber's outgoing buffer takes from a log at once (QoS 1 subscribers are
/// bounded by rumqttd's in-flight window of 100).
pub const OUTGOING_PACKETS: u64 = 32;
/// Distinct filters whose bytes are tracked one by one; more share one entry (each still bounded).
const TRACKED_FILTERS: usize = 1024;

/// A running embedded broker: its memory accounting.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    per_filter_limit: u64,
    appended: Arc<Mutex<HashMap<String, u64>>>,
}

impl EmbeddedBroker {
    /// The broker's memory now.
    pub fn memory(&self) -> BrokerMemory {
        let appended = self.appended.lock().unwrap_or_else(|e| e.into_inner());
        let filters = appended.len() as u64;
        BrokerMemory {
            filters,
            held_bytes: appended
                .values()
                .map(|&b| b.min(self.per_filter_limit))
                .sum(),
            per_filter_limit_bytes: self.per_filter_limit,
            limit_bytes: filters.saturating_mul(self.per_filter_limit),
        }
    }

    fn record(&self, filter: String, bytes: u64) {
        let mut appended = self.appended.lock().unwrap_or_else(|e| e.into_inner());
        let key = if appended.len() < TRACKED_FILTERS || appended.contains_key(&filter) {
            filter
        } else {
            "(other filters)".to_string()
        };
        *appended.entry(key).or_default() += bytes;
    }
}

/// Starts rumqttd on `addr` in background threads and waits until it accepts connections.
/// `log_kb` bounds the payload bytes each subscribed filter's log holds.
pub fn start(
    addr: SocketAddr,
    protocol: MqttProtocol,
    log_kb: u32,
) -> Result<EmbeddedBroker, EmbeddedError> {
    // rumqttd only logs a failed bind inside its thread; check first so the error is ours.
    drop(TcpListener::bind(addr).map_err(|source| EmbeddedError::Bind { addr, source })?);
    let server = match protocol {
        MqttProtocol::V311 => "v4",
        MqttProtocol::V5 => "v5",
    };
    // the active segment and the one before it, each filled to half the budget before it moves on
    // (rumqttd drops the oldest segment *before* opening a new one: with a count of 1 every
    // rollover dropped what a subscriber had not read yet of the full segment, measured as 2 of
    // ~270 events lost by `watch` at every other rollover in the soak)
    let segment_bytes = (u64::from(log_kb.max(16)) << 10) / 2;
    let broker_memory = EmbeddedBroker {
        per_filter_limit: 2 * segment_bytes,
        appended: Arc::default(),
    };
    let text = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 256
max_outgoing_packet_count = {outgoing}
max_segment_size = {segment}
max_segment_count = 2

# rumqttd's timer needs both kinds set (it unwraps each interval); alerts have no listener
[metrics.meters]
push_interval = 1
[metrics.alerts]
push_interval = 3600

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
        max = super::settings::MAX_PACKET,
        outgoing = OUTGOING_PACKETS,
        segment = segment_bytes,
    );
    let config: rumqttd::Config =
        toml::from_str(&text).map_err(|e| EmbeddedError::Config(e.to_string()))?;
    let accounting = broker_memory.clone();
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            match broker.meters() {
                Ok(meters) => drain_meters(meters, accounting),
                Err(e) => tracing::warn!(error = %e, "embedded MQTT broker: no memory meters"),
            }
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| EmbeddedError::Config(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            tracing::info!(
                %addr,
                log_kb,
                "embedded MQTT broker listening (no broker configured)"
            );
            return Ok(broker_memory);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(EmbeddedError::NotReady(addr))
}

/// Adds the bytes rumqttd reports appended to each filter's log (every second) to `accounting`.
/// The meters channel is bounded: it must be drained or rumqttd logs an error every second.
fn drain_meters(meters: rumqttd::meters::MetersLink, accounting: EmbeddedBroker) {
    let spawned = std::thread::Builder::new()
        .name("mqtt-broker-meters".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "embedded MQTT broker: no memory meters");
                    return;
                }
            };
            // ends when the broker's router is gone
            while let Ok(batch) = runtime.block_on(meters.next()) {
                for meter in batch {
                    if let rumqttd::Meter::Subscription(filter, m) = meter {
                        accounting.record(filter, m.total_size as u64);
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "embedded MQTT broker: no memory meters");
    }
}
