//! Delivery: the spool plus the MQTT publisher, behind one handle the pipeline can clone.
//!
//! The guarantee (docs/delivery.md): at-least-once from capture to broker acknowledgement.
//! [`Delivery::submit`] returns after the spool commit; a publisher task sends spooled messages in
//! order with QoS 1 and deletes each one on its PUBACK; after every (re)connect it starts again from
//! the oldest unacknowledged row, whatever the broker says about the session.

mod budget;
pub mod config;
pub mod embedded;
pub mod link;
pub mod settings;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{Notify, watch};

use crate::backoff::{Backoff, Jitter};
use crate::events::evidence::EvidenceImage;
use crate::events::status::{self, CameraHealth, Health, LinkStats, MemoryReport, StatusInfo};
use crate::events::{Event, Topics};
use crate::spool::{Spool, SpoolError, SpoolStats, Submission};
use budget::UplinkBudget;
use config::MqttProtocol;
use link::{Link, LinkEvent};
use settings::{MqttSettings, SettingsError};

/// Why delivery could not start or accept an event.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Embedded(#[from] embedded::EmbeddedError),
    #[error(transparent)]
    Key(#[from] crate::signing::SigningError),
    #[error("starting the publisher thread: {0}")]
    Thread(std::io::Error),
    /// The shared commit that carried this event failed (the committing caller got the cause).
    #[error("spool commit failed: {0}")]
    Commit(String),
}

/// Everything [`Delivery`] needs, usually from [`DeliveryOptions::from_config`].
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub mqtt: MqttSettings,
    pub topics: Topics,
    pub spool_dir: PathBuf,
    pub max_spool_bytes: u64,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub health_interval: Duration,
    /// Start the embedded broker on this address first.
    pub embedded: Option<SocketAddr>,
    /// What the embedded broker may hold per subscribed filter, in MiB.
    pub embedded_log_kb: u32,
    /// Free space the spool leaves on its filesystem (`[storage].min_free_mb`); `None`: none.
    pub min_free_bytes: Option<u64>,
    /// The device key every spooled event is signed with (made there when absent); `None`: unsigned.
    pub device_key: Option<PathBuf>,
    /// Uplink budget in bytes per sliding hour and day (`[mqtt] uplink_mb_per_*`); `None`: none.
    pub uplink_per_hour: Option<u64>,
    pub uplink_per_day: Option<u64>,
    /// Payload bytes handed to the MQTT client and not yet acknowledged, at most (`window_kb`).
    pub window_bytes: u64,
}

impl DeliveryOptions {
    /// Reads `[mqtt]` and `[storage]` (certificate and password files included) of the device
    /// `site`/`device`; `resolve` makes the sections' relative paths absolute (against the config
    /// file's folder).
    pub fn from_sections(
        m: &config::MqttConfig,
        storage: &crate::spool::StorageConfig,
        (site, device): (&str, &str),
        resolve: &dyn Fn(&std::path::Path) -> PathBuf,
    ) -> Result<Self, DeliveryError> {
        let embedded = if m.broker.is_none() {
            Some(m.embedded_listen.parse().map_err(|e| {
                SettingsError::Invalid(format!(
                    "[mqtt].embedded_listen `{}` is not address:port: {e}",
                    m.embedded_listen
                ))
            })?)
        } else {
            None
        };
        Ok(Self {
            mqtt: MqttSettings::from_section(m, device, resolve)?,
            topics: Topics::new(&m.topic_prefix, site, device),
            spool_dir: resolve(&storage.spool_dir),
            max_spool_bytes: storage.max_size_mb.saturating_mul(1 << 20),
            min_free_bytes: Some(storage.min_free_mb.saturating_mul(1 << 20)),
            reconnect_min: Duration::from_millis(m.reconnect_min_ms),
            reconnect_max: Duration::from_secs(m.reconnect_max_s),
            health_interval: Duration::from_secs(m.health_interval_s),
            embedded,
            embedded_log_kb: m.embedded_log_kb,
            device_key: Some(resolve(&storage.device_key_path())),
            uplink_per_hour: megabytes(m.uplink_mb_per_hour),
            uplink_per_day: megabytes(m.uplink_mb_per_day),
            window_bytes: u64::from(m.window_kb.max(1)) << 10,
        })
    }
}

/// The process's memory now, for the `health` message.
impl MemoryReport {
    /// This process now, with the embedded broker's accounting if it runs.
    pub fn now(broker: Option<embedded::BrokerMemory>) -> Option<Self> {
        Some(Self {
            resident_bytes: crate::process::stats()?.resident_bytes,
            broker,
        })
    }
}

/// A budget in MB (10^6 bytes) as bytes; 0 or nonsense: no limit.
fn megabytes(mb: f64) -> Option<u64> {
    (mb.is_finite() && mb > 0.0).then_some((mb * 1e6) as u64)
}

/// Counters for `health`, benchmarks and tests.
#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    pub spool: SpoolStats,
    pub link: LinkStats,
    /// Time to open the spool at start (crash recovery included).
    pub spool_open: Duration,
    /// Submit-to-PUBACK latency of the newest acknowledgements (up to 16 Ki) of this process.
    pub latency_p50: Option<Duration>,
    pub latency_p99: Option<Duration>,
    pub latency_samples: usize,
    /// The embedded broker's memory, when it runs.
    pub broker: Option<embedded::BrokerMemory>,
}

/// The handle the pipeline uses. Cheap to clone; all clones share one spool and one publisher.
#[derive(Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

/// What a submission got: its `seq` and, with a device key, its signature.
pub type Receipt = (u64, Option<crate::events::EventSignature>);
type Waiting = (
    Submission,
    Instant,
    Arc<Mutex<Option<Result<Receipt, String>>>>,
);

struct Inner {
    spool: Mutex<Spool>,
    /// Submissions waiting for the next group commit.
    queue: Mutex<Vec<Waiting>>,
    max_bytes: u64,
    topics: Topics,
    wake: Notify,
    shared: Mutex<Shared>,
    stop: watch::Sender<Option<Instant>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    started: Instant,
    spool_open: Duration,
    /// The topics asked for with [`Delivery::subscribe`] and where their messages go.
    inbox: Mutex<Option<(Vec<String>, std::sync::mpsc::SyncSender<Incoming>)>>,
    /// The embedded broker's memory accounting, when it runs.
    broker: Option<embedded::EmbeddedBroker>,
}

#[derive(Default)]
struct Shared {
    link: LinkStats,
    cameras: BTreeMap<String, CameraHealth>,
    /// Submit time per spool row until its PUBACK; rows evicted unacknowledged stay until the
    /// map is full, so it is capped ([`PENDING_TIMES`]).
    submitted_at: HashMap<i64, Instant>,
    /// Submit-to-PUBACK latencies of the newest [`LATENCY_WINDOW`] acknowledgements.
    latencies: VecDeque<Duration>,
    /// The retained `config/state` payload, sent on change and after every (re)connect.
    config_state: Option<Vec<u8>>,
    config_state_sent: bool,
    /// The audit log whose head hash goes out with `health`.
    audit: crate::audit::AuditTrail,
}

/// Latency samples kept: a window of the newest, so months of events neither grow memory nor
/// make every `health` message sort millions of samples (it was a 1 Mi cap that then froze).
const LATENCY_WINDOW: usize = 16 * 1024;
/// Default of the payload bytes the MQTT client may hold unacknowledged (`[mqtt] window_kb`,
/// besides `max_inflight` messages): 100 evidence images would be 14 MB on a board with 1–2 GB;
/// 4 MiB still fills a 4G uplink at any round-trip time under a second. What is in the window is
/// what a new message of a higher class waits behind.
pub const WINDOW_BYTES: u64 = 4 << 20;
/// Submit times kept for rows not yet acknowledged.
const PENDING_TIMES: usize = 64 * 1024;
/// Messages on subscribed topics (`config/set`, `watchlist/set`) waiting to be handled, at most.
const INBOX_QUEUE: usize = 4;

/// A message on a topic asked for with [`Delivery::subscribe`], unparsed.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub payload: bytes::Bytes,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Delivery {
    /// Opens the spool under `opts.spool_dir`, starts the embedded broker when no broker is
    /// configured, and starts the publisher on its own thread. `birth` is the retained status.
    pub fn start_with(opts: DeliveryOptions, birth: StatusInfo) -> Result<Self, DeliveryError> {
        let t0 = Instant::now();
        let mut spool = Spool::open(&opts.spool_dir, opts.max_spool_bytes)?;
        if let Some(bytes) = opts.min_free_bytes {
            spool.set_min_free(bytes);
        }
        let mut birth = birth;
        if let Some(path) = &opts.device_key {
            let key = crate::signing::DeviceKey::load_or_create(path)?;
            birth.device_key = Some(key.public_hex());
            spool.set_signer(Arc::new(key));
        }
        let spool_open = t0.elapsed();
        let broker = match opts.embedded {
            Some(addr) => Some(embedded::start(
                addr,
                opts.mqtt.protocol,
                opts.embedded_log_kb,
            )?),
            None => None,
        };
        let (stop, stop_rx) = watch::channel(None);
        let inner = Arc::new(Inner {
            spool: Mutex::new(spool),
            queue: Mutex::new(Vec::new()),
            max_bytes: opts.max_spool_bytes,
            topics: opts.topics.clone(),
            wake: Notify::new(),
            shared: Mutex::new(Shared {
                link: LinkStats {
                    window_limit_bytes: opts.window_bytes,
                    ..LinkStats::default()
                },
                ..Shared::default()
            }),
            stop,
            thread: Mutex::new(None),
            started: Instant::now(),
            spool_open,
            inbox: Mutex::new(None),
            broker,
        });
        let worker = Arc::clone(&inner);
        let handle = crate::background::spawn("mqtt-publisher", "publisher", move || {
            publisher(worker, opts, birth, stop_rx)
        })
        .map_err(DeliveryError::Thread)?;
        *lock(&inner.thread) = Some(handle);
        Ok(Self { inner })
    }

    /// Spools the event with its evidence and returns its `seq` once the commit is on disk. Sets
    /// `seq` and `evidence` on the event; everything else is the caller's.
    ///
    /// Concurrent callers share commits (group commit): whoever holds the spool commits every
    /// submission waiting at that moment in one transaction, so N cameras pay for one fsync, and
    /// each caller still returns only after its own event is on disk.
    pub fn submit(&self, event: Event, evidence: Vec<EvidenceImage>) -> Result<u64, DeliveryError> {
        self.submit_signed(event, evidence).map(|(seq, _)| seq)
    }

    /// [`Delivery::submit`], also returning the event's signature (the spooled copy carries it).
    pub fn submit_signed(
        &self,
        event: Event,
        evidence: Vec<EvidenceImage>,
    ) -> Result<Receipt, DeliveryError> {
        // Refuse an event that can never fit here, so it cannot fail a shared commit.
        let bytes = evidence.iter().map(|e| e.jpeg.len() as u64).sum::<u64>() + 4096;
        if bytes > self.inner.max_bytes {
            return Err(SpoolError::TooLarge {
                bytes,
                max: self.inner.max_bytes,
            }
            .into());
        }
        let slot: Arc<Mutex<Option<Result<Receipt, String>>>> = Arc::new(Mutex::new(None));
        lock(&self.inner.queue).push((
            Submission {
                event,
                evidence,
                seq: 0,
                row: 0,
            },
            Instant::now(),
            Arc::clone(&slot),
        ));
        let mut spool = lock(&self.inner.spool);
        // Slots are filled before the committer releases the spool, so ours is either done or
        // still in the queue.
        if let Some(done) = lock(&slot).take() {
            return done.map_err(DeliveryError::Commit);
        }
        let batch = std::mem::take(&mut *lock(&self.inner.queue));
        let (mut subs, waits): (Vec<Submission>, Vec<(Instant, Arc<Mutex<_>>)>) =
            batch.into_iter().map(|(s, t, w)| (s, (t, w))).unzip();
        let result = spool.submit_many(&mut subs, &self.inner.topics);
        if result.is_ok() {
            let mut sh = lock(&self.inner.shared);
            for (sub, (t, _)) in subs.iter().zip(&waits) {
                if sh.submitted_at.len() < PENDING_TIMES {
                    sh.submitted_at.insert(sub.row, *t);
                }
            }
        }
        let error = result.as_ref().err().map(|e| e.to_string());
        for (sub, (_, w)) in subs.iter().zip(&waits) {
            *lock(w) = Some(match &error {
                None => Ok((sub.seq, sub.event.signature.clone())),
                Some(e) => Err(e.clone()),
            });
        }
        drop(spool);
        self.inner.wake.notify_one();
        if let Err(e) = result {
            return Err(DeliveryError::Spool(e));
        }
        lock(&slot)
            .take()
            .unwrap_or_else(|| Err("submission lost".into()))
            .map_err(DeliveryError::Commit)
    }

    /// Sends this audit log's head hash with every `health` message, so the centre holds a copy
    /// that a truncated log on the device cannot match.
    pub fn set_audit(&self, trail: crate::audit::AuditTrail) {
        lock(&self.inner.shared).audit = trail;
    }

    /// Runs `f` on the spool, e.g. to set retention and the audit trail at start-up, or to
    /// enforce retention periodically.
    pub fn with_spool<R>(&self, f: impl FnOnce(&mut Spool) -> R) -> R {
        f(&mut lock(&self.inner.spool))
    }

    /// Latest state of a camera, reported in the next `health` message.
    pub fn set_camera_health(&self, camera_id: &str, health: CameraHealth) {
        lock(&self.inner.shared)
            .cameras
            .insert(camera_id.to_string(), health);
    }

    /// Subscribes to `topics` (QoS 1, on this connection and every later one; the last call
    /// wins) and returns the channel their messages arrive on, unparsed. Retained messages are
    /// refused: these topics carry commands, and a retained command would be handed out again at
    /// every subscription and applied again after each reconnect, over a later change on the
    /// device; the persistent session keeps plain QoS 1 messages while the device is away.
    pub fn subscribe(&self, topics: Vec<String>) -> std::sync::mpsc::Receiver<Incoming> {
        let (tx, rx) = std::sync::mpsc::sync_channel(INBOX_QUEUE);
        *lock(&self.inner.inbox) = Some((topics, tx));
        self.inner.wake.notify_one();
        rx
    }

    /// Publishes `payload` as the retained `config/state` now (or as soon as connected), and again
    /// after every reconnect, so a broker restarted without persistence still has it.
    pub fn set_config_state(&self, payload: Vec<u8>) {
        let mut sh = lock(&self.inner.shared);
        sh.config_state = Some(payload);
        sh.config_state_sent = false;
        drop(sh);
        self.inner.wake.notify_one();
    }

    /// Spool depth, evictions, link state and latency.
    pub fn stats(&self) -> DeliveryStats {
        let spool = lock(&self.inner.spool).stats();
        let sh = lock(&self.inner.shared);
        let mut lat: Vec<Duration> = sh.latencies.iter().copied().collect();
        lat.sort_unstable();
        let pct =
            |p: f64| (!lat.is_empty()).then(|| lat[((lat.len() - 1) as f64 * p).round() as usize]);
        DeliveryStats {
            spool,
            link: sh.link.clone(),
            spool_open: self.inner.spool_open,
            latency_p50: pct(0.5),
            latency_p99: pct(0.99),
            latency_samples: lat.len(),
            broker: self
                .inner
                .broker
                .as_ref()
                .map(embedded::EmbeddedBroker::memory),
        }
    }

    /// The device's topics.
    pub fn topics(&self) -> &Topics {
        &self.inner.topics
    }

    /// Waits until every spooled message is acknowledged; false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let s = lock(&self.inner.spool).stats();
            if s.events + s.evidence == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Publishes what it can within `timeout`, says goodbye (retained `offline`) if connected, and
    /// stops the publisher. Whatever is left stays in the spool for the next start. Returns the
    /// number of messages left.
    pub fn shutdown(&self, timeout: Duration) -> u64 {
        let _ = self.inner.stop.send(Some(Instant::now() + timeout));
        self.inner.wake.notify_one();
        if let Some(h) = lock(&self.inner.thread).take() {
            let _ = h.join();
        }
        let s = lock(&self.inner.spool).stats();
        s.events + s.evidence
    }
}

/// Per-connection bookkeeping: which spool row each packet id carries.
#[derive(Default)]
struct Conn {
    connected: bool,
    /// Subscribed to the remote-config topics on this connection.
    subscribed: bool,
    /// Spool row and payload bytes per requested publish, in request order (`None`: birth,
    /// health, config state; not spooled).
    requested: VecDeque<(Option<i64>, u64)>,
    /// Packet id → spool row and payload bytes, for publishes on the wire.
    on_wire: HashMap<u16, (i64, u64)>,
    /// Payload bytes handed to the MQTT client and not yet acknowledged (it keeps each publish
    /// until its PUBACK, to send it again).
    window_bytes: u64,
    acked: Vec<i64>,
    /// Bound of `window_bytes` (`[mqtt] window_kb`).
    window_limit: u64,
}

impl Conn {
    fn outstanding(&self) -> usize {
        self.requested.len() + self.on_wire.len()
    }

    /// Spool rows handed to the MQTT client on this connection and not yet deleted.
    fn on_their_way(&self) -> HashSet<i64> {
        let requested = self.requested.iter().filter_map(|r| r.0);
        let on_wire = self.on_wire.values().map(|w| w.0);
        requested
            .chain(on_wire)
            .chain(self.acked.iter().copied())
            .collect()
    }

    /// Records a publish handed to the MQTT client.
    fn request(&mut self, row: Option<i64>, bytes: usize) {
        self.requested.push_back((row, bytes as u64));
        self.window_bytes += bytes as u64;
    }
}

fn health_payload(inner: &Inner) -> Vec<u8> {
    let spool = lock(&inner.spool).stats();
    let sh = lock(&inner.shared);
    let h = Health {
        time: Utc::now(),
        uptime_s: inner.started.elapsed().as_secs(),
        spool,
        mqtt: sh.link.clone(),
        cameras: sh.cameras.clone(),
        audit_head: sh.audit.head(),
        time_sync: Some(crate::health::clock_state()),
        memory: MemoryReport::now(inner.broker.as_ref().map(embedded::EmbeddedBroker::memory)),
    };
    serde_json::to_vec(&h).unwrap_or_default()
}

fn handle(inner: &Inner, conn: &mut Conn, ev: LinkEvent) -> Option<String> {
    match ev {
        LinkEvent::Connected { session_present } => {
            conn.connected = true;
            let depth = lock(&inner.spool).stats();
            let mut sh = lock(&inner.shared);
            sh.link.connected = true;
            sh.link.connects += 1;
            tracing::info!(
                session_present,
                events = depth.events,
                evidence = depth.evidence,
                "connected to MQTT broker; sending everything unacknowledged from the spool"
            );
        }
        LinkEvent::Sent(pkid) => match conn.requested.pop_front() {
            Some((Some(row), bytes)) => {
                conn.on_wire.insert(pkid, (row, bytes));
            }
            // not spooled: nothing to delete at its PUBACK
            Some((None, bytes)) => conn.window_bytes = conn.window_bytes.saturating_sub(bytes),
            None => {}
        },
        LinkEvent::Acked(pkid) => {
            if let Some((row, bytes)) = conn.on_wire.remove(&pkid) {
                conn.acked.push(row);
                conn.window_bytes = conn.window_bytes.saturating_sub(bytes);
            }
        }
        LinkEvent::Closed(e) => return Some(e),
        LinkEvent::Message {
            topic,
            payload,
            retained,
        } => {
            let inbox = lock(&inner.inbox);
            match inbox.as_ref().filter(|(topics, _)| topics.contains(&topic)) {
                Some(_) if retained => {
                    tracing::warn!(
                        %topic,
                        "retained command ignored: publish it without the retain flag"
                    );
                }
                Some((_, tx)) => match tx.try_send(Incoming {
                    topic: topic.clone(),
                    payload,
                }) {
                    Ok(()) => {}
                    // a flood must not queue up packets of up to 16 MiB without bound; the
                    // centre sees no answer for what was dropped and sends again
                    Err(std::sync::mpsc::TrySendError::Full(_)) => tracing::warn!(
                        %topic,
                        queued = INBOX_QUEUE,
                        "messages arrive faster than they are handled; message dropped"
                    ),
                    Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                        tracing::warn!(%topic, "the handler is gone; message dropped")
                    }
                },
                None => tracing::debug!(%topic, "message on a topic nobody handles; ignored"),
            }
        }
        LinkEvent::SubAck { granted } => {
            if !granted {
                tracing::warn!(
                    "the broker refused a subscription (config/set, watchlist/set, evidence/get); check its ACL"
                );
            }
        }
    }
    None
}

fn flush_acks(inner: &Inner, conn: &mut Conn) {
    if conn.acked.is_empty() {
        return;
    }
    let rows = std::mem::take(&mut conn.acked);
    {
        let now = Instant::now();
        let mut sh = lock(&inner.shared);
        sh.link.acked += rows.len() as u64;
        for row in &rows {
            if let Some(t) = sh.submitted_at.remove(row) {
                if sh.latencies.len() == LATENCY_WINDOW {
                    sh.latencies.pop_front();
                }
                sh.latencies.push_back(now - t);
            }
        }
    }
    if let Err(e) = lock(&inner.spool).ack(&rows) {
        // The rows stay and are sent again: a duplicate, never a loss.
        tracing::error!(error = %e, "cannot delete acknowledged messages from the spool");
    }
}

/// Hands spooled messages to the MQTT client, in the spool's delivery order, while the window has
/// room: at most `max_inflight` messages and `window_kb` of payload (one message always fits,
/// whatever its size). Images wait while the uplink budget has no room for them.
fn feed(
    inner: &Inner,
    link: &Link,
    conn: &mut Conn,
    max_inflight: usize,
    budget: &mut UplinkBudget,
) {
    let mut images = true;
    while conn.connected && conn.outstanding() < max_inflight && window_open(conn) {
        let want = (max_inflight - conn.outstanding()).min(64);
        let skip = conn.on_their_way();
        let batch = match lock(&inner.spool).next_batch(&skip, want, images) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spool");
                return;
            }
        };
        if batch.is_empty() {
            break;
        }
        let (mut n, mut held) = (0, false);
        for m in batch {
            if !window_open(conn) {
                // the rest is read again from the spool
                break;
            }
            let bytes = m.payload.len();
            let now = Instant::now();
            if m.evidence && !budget.allows(now, bytes as u64) {
                held = true;
                break;
            }
            if let Err(e) = link.try_publish(&m.topic, m.payload, false, true) {
                tracing::debug!(error = %e, "request channel full");
                break;
            }
            budget.record(now, bytes as u64);
            conn.request(Some(m.id), bytes);
            n += 1;
        }
        lock(&inner.shared).link.published += n;
        if held {
            // events only from here on, until the windows have room again
            images = false;
        } else if n == 0 {
            break;
        }
    }
    if budget.limited() {
        let now = Instant::now();
        let deferred = if images {
            0
        } else {
            lock(&inner.spool).evidence_waiting().map_or(0, |w| w.0)
        };
        let mut sh = lock(&inner.shared);
        let was = sh.link.images_deferred > 0;
        sh.link.uplink_hour_bytes = budget.used(now, Duration::from_secs(3600));
        sh.link.uplink_day_bytes = budget.used(now, Duration::from_secs(86_400));
        sh.link.images_deferred = deferred;
        if deferred > 0 && !was {
            tracing::warn!(
                images = deferred,
                hour_bytes = sh.link.uplink_hour_bytes,
                day_bytes = sh.link.uplink_day_bytes,
                "uplink budget reached: evidence images wait in the spool, events still go"
            );
        } else if deferred == 0 && was {
            tracing::info!("uplink budget has room again: evidence images go");
        }
    }
}

fn window_open(conn: &Conn) -> bool {
    conn.window_bytes < conn.window_limit || conn.outstanding() == 0
}

/// Subscribes to the remote-config topics once per connection, when asked to, and sends the
/// retained `config/state` when it changed or the connection is new.
async fn remote_side(inner: &Inner, link: &Link, conn: &mut Conn) {
    if !conn.connected {
        return;
    }
    let filters = lock(&inner.inbox)
        .as_ref()
        .map(|(topics, _)| topics.clone());
    if !conn.subscribed
        && let Some(filters) = filters
    {
        for filter in filters {
            if let Err(e) = link.subscribe(&filter).await {
                tracing::warn!(%filter, error = %e, "cannot subscribe");
                return;
            }
        }
        conn.subscribed = true;
    }
    let pending = {
        let sh = lock(&inner.shared);
        (!sh.config_state_sent)
            .then(|| sh.config_state.clone())
            .flatten()
    };
    if let Some(payload) = pending {
        let bytes = payload.len();
        if link
            .try_publish(&inner.topics.config_state(), payload, true, true)
            .is_ok()
        {
            conn.request(None, bytes);
            lock(&inner.shared).config_state_sent = true;
        }
    }
}

async fn publisher(
    inner: Arc<Inner>,
    opts: DeliveryOptions,
    mut birth: StatusInfo,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    let topics = opts.topics.clone();
    let offline = status::offline_payload(&birth.site_id, &birth.device_id);
    birth.state = "online".into();
    let birth_payload = serde_json::to_vec(&birth).unwrap_or_default();
    let max_inflight = usize::from(opts.mqtt.max_inflight.max(1));
    let mut backoff = Backoff::new(opts.reconnect_min, opts.reconnect_max, Jitter::Equal);
    let mut budget = UplinkBudget::new(opts.uplink_per_hour, opts.uplink_per_day);
    let mut health = tokio::time::interval(opts.health_interval);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if opts.mqtt.protocol == MqttProtocol::V5 {
        tracing::debug!("publishing over MQTT 5");
    }
    loop {
        let mut link = Link::connect(&opts.mqtt, Some((topics.status(), offline.clone())));
        let mut conn = Conn {
            window_limit: opts.window_bytes,
            ..Conn::default()
        };
        let error = loop {
            let deadline = *stop.borrow();
            if let Some(deadline) = deadline {
                let s = lock(&inner.spool).stats();
                let drained =
                    conn.connected && s.events + s.evidence == 0 && conn.on_wire.is_empty();
                if drained || Instant::now() >= deadline {
                    if conn.connected {
                        let _ = link.try_publish(&topics.status(), offline.clone(), true, true);
                        link.disconnect().await;
                    }
                    lock(&inner.shared).link.connected = false;
                    return;
                }
            }
            let sleep_until = deadline.map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3600),
                |d| {
                    tokio::time::Instant::from_std(
                        d.min(Instant::now() + Duration::from_millis(50)),
                    )
                },
            );
            let mut closed = None;
            tokio::select! {
                ev = link.events.recv() => {
                    let ev = ev.unwrap_or_else(|| LinkEvent::Closed("connection task ended".into()));
                    let was_connected = conn.connected;
                    closed = handle(&inner, &mut conn, ev);
                    if !was_connected && conn.connected {
                        backoff.reset();
                        lock(&inner.shared).config_state_sent = false;
                        if link.try_publish(&topics.status(), birth_payload.clone(), true, true).is_ok() {
                            conn.request(None, birth_payload.len());
                        }
                        // Health right away too: the centre learns of evictions during the outage.
                        let payload = health_payload(&inner);
                        let bytes = payload.len();
                        if link.try_publish(&topics.health(), payload, false, true).is_ok() {
                            conn.request(None, bytes);
                        }
                    }
                    while closed.is_none() {
                        match link.events.try_recv() {
                            Ok(ev) => closed = handle(&inner, &mut conn, ev),
                            Err(_) => break,
                        }
                    }
                }
                _ = inner.wake.notified() => {}
                _ = health.tick() => {
                    if conn.connected {
                        let payload = health_payload(&inner);
                        let bytes = payload.len();
                        if link.try_publish(&topics.health(), payload, false, true).is_ok() {
                            conn.request(None, bytes);
                        }
                    }
                }
                _ = stop.changed() => {}
                _ = tokio::time::sleep_until(sleep_until) => {}
            }
            flush_acks(&inner, &mut conn);
            if let Some(e) = closed {
                break e;
            }
            remote_side(&inner, &link, &mut conn).await;
            feed(&inner, &link, &mut conn, max_inflight, &mut budget);
            lock(&inner.shared).link.window_bytes = conn.window_bytes;
        };
        drop(link);
        let delay = backoff.next_delay();
        {
            let mut sh = lock(&inner.shared);
            sh.link.connected = false;
            sh.link.window_bytes = 0;
            sh.link.failures += 1;
            sh.link.last_error = Some(error.clone());
        }
        tracing::warn!(
            broker = %format!("{}:{}", opts.mqtt.host, opts.mqtt.port),
            error = %error,
            hint = link::hint(&error),
            attempt = backoff.attempts(),
            retry_in_ms = delay.as_millis() as u64,
            "MQTT connection failed; events stay in the spool"
        );
        let wait_until = Instant::now() + delay;
        loop {
            let deadline = *stop.borrow();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            let until = deadline.map_or(wait_until, |d| d.min(wait_until));
            if Instant::now() >= wait_until {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
