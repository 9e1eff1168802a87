//! Running under systemd (`packaging/edge-agent.service`, `Type=notify`): the `sd_notify` protocol
//! spoken directly over the unix datagram socket in `$NOTIFY_SOCKET`, and the liveness record that
//! decides whether the watchdog is fed. The watchdog is fed only while every camera's pipeline makes
//! progress, never from a plain timer, so a hung decoder or inference worker gets the agent
//! restarted by systemd.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::pipeline::observer::{CameraLoad, PipelineObserver};
use crate::source::{SourceCounters, StreamStatus};

/// Where the notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Path(PathBuf),
    /// Linux abstract socket (`@name` in `$NOTIFY_SOCKET`).
    Abstract(Vec<u8>),
}

/// A connection to systemd's notification socket; every call is a no-op when the agent was not
/// started by systemd (no `$NOTIFY_SOCKET`).
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, Address)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets: `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> std::io::Result<Self> {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let mut n = match socket {
            Some(s) if !s.is_empty() => Self::connect(&s.to_string_lossy())?,
            _ => Self::disabled(),
        };
        n.watchdog = watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id());
        Ok(n)
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self {
            target: None,
            watchdog: None,
        }
    }

    /// A notifier for the socket at `addr` (a path, or `@name` for an abstract socket).
    pub fn connect(addr: &str) -> std::io::Result<Self> {
        let address = match addr.strip_prefix('@') {
            Some(name) => Address::Abstract(name.as_bytes().to_vec()),
            None => Address::Path(PathBuf::from(addr)),
        };
        let sock = UnixDatagram::unbound()?;
        Ok(Self {
            target: Some((sock, address)),
            watchdog: None,
        })
    }

    /// True when notifications go somewhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog period systemd expects, if the unit has `WatchdogSec=` for this process.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one notification (`KEY=VALUE` lines).
    pub fn notify(&self, state: &str) -> std::io::Result<()> {
        let Some((sock, addr)) = &self.target else {
            return Ok(());
        };
        let sent = match addr {
            Address::Path(p) => sock.send_to(state.as_bytes(), p)?,
            Address::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &a)?
            }
        };
        if sent != state.len() {
            return Err(std::io::Error::other("short write to NOTIFY_SOCKET"));
        }
        Ok(())
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) -> std::io::Result<()> {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: the service is alive.
    pub fn watchdog_ping(&self) -> std::io::Result<()> {
        self.notify("WATCHDOG=1")
    }

    /// `STATUS=…` shown by `systemctl status`.
    pub fn status(&self, status: &str) -> std::io::Result<()> {
        self.notify(&format!("STATUS={}", one_line(status)))
    }

    /// `STOPPING=1` at shutdown.
    pub fn stopping(&self) -> std::io::Result<()> {
        self.notify("STOPPING=1")
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// The watchdog period from `WATCHDOG_USEC`, when `WATCHDOG_PID` is absent or names this process.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Progress of one camera, as the watchdog sees it.
#[derive(Debug, Clone, Copy)]
enum CameraLife {
    /// Not heard of since start.
    Starting(Instant),
    /// A frame went through the pipeline at this instant.
    Progress(Instant),
    /// Known to be down; its reconnect loop promised to report again before this instant.
    Down { until: Instant },
    /// The source ended (a file); nothing more is expected.
    Finished,
}

/// Whether every camera's pipeline is making progress; updated by the pipeline's threads. Cameras
/// are known by id, so a camera added or restarted while running (remote config) is followed too.
#[derive(Debug)]
pub struct Liveness {
    cameras: Mutex<BTreeMap<String, CameraLife>>,
    started: AtomicBool,
    stale_after: Duration,
    /// Grace after a reconnect delay, covering the connection attempt itself.
    connect_grace: Duration,
}

impl Liveness {
    /// A camera is stale after `stale_after` without a processed frame (unless known down), and a
    /// down camera after its retry delay plus `connect_grace` without news.
    pub fn new(stale_after: Duration, connect_grace: Duration) -> Self {
        Self {
            cameras: Mutex::new(BTreeMap::new()),
            started: AtomicBool::new(false),
            stale_after,
            connect_grace,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, CameraLife>) -> R) -> R {
        let mut g = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Cameras opened and workers started: the pipeline is ready.
    pub fn start(&self, cameras: &[String]) {
        let now = Instant::now();
        self.with(|c| {
            for id in cameras {
                c.entry(id.clone()).or_insert(CameraLife::Starting(now));
            }
        });
        self.started.store(true, Ordering::Release);
    }

    /// True once [`Liveness::start`] was called.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    fn set(&self, camera: &str, life: CameraLife) {
        self.with(|c| match c.get_mut(camera) {
            Some(e) => *e = life,
            None => {
                c.insert(camera.to_string(), life);
            }
        });
    }

    /// A frame of `camera` went through inference.
    pub fn progress(&self, camera: &str) {
        self.set(camera, CameraLife::Progress(Instant::now()));
    }

    /// `camera` is down and its source retries after `retry_in`.
    pub fn down(&self, camera: &str, retry_in: Duration) {
        self.set(
            camera,
            CameraLife::Down {
                until: Instant::now() + retry_in + self.connect_grace,
            },
        );
    }

    /// `camera` (new, restarted or reconnected) is up; frames are expected within `stale_after`.
    pub fn up(&self, camera: &str) {
        self.progress(camera);
    }

    /// `camera`'s source ended, or the camera was removed.
    pub fn finished(&self, camera: &str) {
        self.set(camera, CameraLife::Finished);
    }

    /// The cameras that are not making progress at `now` (empty = feed the watchdog).
    pub fn stale(&self, now: Instant) -> Vec<String> {
        if !self.is_started() {
            return vec!["(pipeline not started)".into()];
        }
        self.with(|c| {
            c.iter()
                .filter(|(_, life)| match **life {
                    CameraLife::Starting(t) | CameraLife::Progress(t) => {
                        now.saturating_duration_since(t) > self.stale_after
                    }
                    CameraLife::Down { until } => now > until,
                    CameraLife::Finished => false,
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
    }
}

/// The pipeline tells the liveness record what its cameras do.
impl PipelineObserver for Liveness {
    fn pipeline_started(&self, cameras: &[String]) {
        self.start(cameras);
    }

    fn stream_status(&self, camera: &str, status: &StreamStatus, _source: SourceCounters) {
        match status {
            StreamStatus::Connected { .. } => self.up(camera),
            StreamStatus::Disconnected { retry_in, .. } => self.down(camera, *retry_in),
            StreamStatus::Stalled { .. } => self.down(camera, Duration::ZERO),
        }
    }

    fn stream_ended(&self, camera: &str, _source: SourceCounters) {
        self.finished(camera);
    }

    fn frame_done(&self, camera: &str, _load: &CameraLoad) {
        self.progress(camera);
    }
}

/// Sends `READY=1` once the pipeline has started, then `WATCHDOG=1` every half watchdog period
/// while no camera is stale, and `STOPPING=1` when `stop` is set. Returns when `stop` is set.
/// Logs (and does not feed) while some camera is stale, so the journal says why systemd restarted.
pub fn supervise(notifier: &Notifier, liveness: &Liveness, stop: &AtomicBool, ready_status: &str) {
    let tick = notifier.watchdog().map_or(Duration::from_secs(1), |w| {
        (w / 2).max(Duration::from_millis(50))
    });
    let mut ready = false;
    let mut last_ping = None::<Instant>;
    let mut was_stale = false;
    while !stop.load(Ordering::Relaxed) {
        if !ready && liveness.is_started() {
            if let Err(e) = notifier.ready(ready_status) {
                tracing::warn!(error = %e, "cannot notify systemd (READY=1)");
            }
            ready = true;
        }
        if ready && notifier.watchdog().is_some() && last_ping.is_none_or(|t| t.elapsed() >= tick) {
            let stale = liveness.stale(Instant::now());
            if stale.is_empty() {
                if let Err(e) = notifier.watchdog_ping() {
                    tracing::warn!(error = %e, "cannot notify systemd (WATCHDOG=1)");
                }
                if was_stale {
                    tracing::info!("every camera makes progress again; feeding the watchdog");
                    let _ = notifier.status(ready_status);
                }
                was_stale = false;
            } else {
                if !was_stale {
                    tracing::error!(cameras = ?stale, "no progress; not feeding the systemd watchdog");
                    let _ = notifier.status(&format!("stalled: {}", stale.join(", ")));
                }
                was_stale = true;
            }
            last_ping = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50).min(tick));
    }
    if let Err(e) = notifier.stopping() {
        tracing::warn!(error = %e, "cannot notify systemd (STOPPING=1)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifications_reach_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::connect(path.to_str().unwrap()).unwrap();
        assert!(n.enabled());
        n.ready("2 cameras\nok").unwrap();
        assert_eq!(recv(&server), "READY=1\nSTATUS=2 cameras ok");
        n.watchdog_ping().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
    }

    #[test]
    fn abstract_sockets_work_too() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("edge-agent-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Notifier::connect(&format!("@{name}"))
            .unwrap()
            .watchdog_ping()
            .unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
    }

    #[test]
    fn no_socket_means_silence_and_a_missing_socket_an_error() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        n.ready("x").unwrap();
        let n = Notifier::connect("/nonexistent/notify.sock").unwrap();
        assert!(n.watchdog_ping().is_err());
    }

    #[test]
    fn watchdog_period_is_for_this_process_only() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn liveness_follows_progress_not_time() {
        let l = Liveness::new(Duration::from_secs(10), Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(!l.stale(t0).is_empty(), "not started is not alive");
        l.start(&["a".into(), "b".into()]);
        assert!(l.stale(t0).is_empty());
        l.progress("a");
        l.progress("b");
        let later = Instant::now() + Duration::from_secs(11);
        assert_eq!(l.stale(later), ["a", "b"]);
        l.progress("a");
        l.down("b", Duration::from_secs(30));
        assert!(l.stale(Instant::now() + Duration::from_secs(9)).is_empty());
        // The down camera's loop promised news within 30 + 5 s.
        assert_eq!(
            l.stale(Instant::now() + Duration::from_secs(36)),
            ["a", "b"]
        );
        l.finished("a");
        // A camera added while running is followed from its first news.
        l.up("c");
        assert_eq!(
            l.stale(Instant::now() + Duration::from_secs(36)),
            ["b", "c"]
        );
    }

    #[test]
    fn supervise_pings_only_while_cameras_progress() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut n = Notifier::connect(path.to_str().unwrap()).unwrap();
        n.watchdog = Some(Duration::from_millis(100));
        let live = Arc::new(Liveness::new(
            Duration::from_millis(150),
            Duration::from_millis(10),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let t = {
            let (live, stop) = (live.clone(), stop.clone());
            std::thread::spawn(move || supervise(&n, &live, &stop, "running"))
        };
        live.start(&["cam".into()]);
        assert_eq!(recv(&server), "READY=1\nSTATUS=running");
        assert_eq!(recv(&server), "WATCHDOG=1");
        // No progress: after 150 ms the pings stop (the status says why).
        std::thread::sleep(Duration::from_millis(250));
        let mut buf = [0u8; 256];
        while server.recv(&mut buf).is_ok() {}
        let mut buf = [0u8; 256];
        assert!(server.recv(&mut buf).is_err(), "pinged without progress");
        // Progress again: pings resume.
        let feeder = {
            let live = live.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    live.progress("cam");
                    std::thread::sleep(Duration::from_millis(30));
                }
            })
        };
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(recv(&server));
        }
        assert!(got.contains(&"WATCHDOG=1".to_string()), "{got:?}");
        feeder.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        let mut last = String::new();
        while let Ok(n) = server.recv(&mut buf) {
            last = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert_eq!(last, "STOPPING=1");
    }
}
