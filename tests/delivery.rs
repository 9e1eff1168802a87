//! End-to-end delivery tests against real mosquitto brokers on 127.0.0.1 (password + ACL, mutual
//! TLS with certificates made here by openssl, a site→centre bridge), driving the real binary:
//! `edge-agent emit` submits events through the spool and publisher, `edge-agent watch` consumes.
//! The claim under test: every event committed by the agent reaches the consumer, across broker
//! restarts, agent SIGKILLs, TLS/auth failures and a full spool (where the newest are kept).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::broker::{Mosquitto, password_auth, test_dir, tls_listener, write_passwd};
use common::tls::{chmod, make_certs};
use common::*;
use serde_json::Value;

/// Users `edge` (publishes edge/#) and `watcher` (reads edge/#), and the certificate CNs alike.
fn write_auth(dir: &Path) {
    write_passwd(
        dir,
        &[
            ("edge", "secret1"),
            ("watcher", "secret2"),
            ("bridge", "secret3"),
        ],
    );
    std::fs::write(
        dir.join("acl"),
        "user edge\ntopic readwrite edge/#\n\nuser edge-device-1\ntopic readwrite edge/#\n\n\
         user bridge\ntopic readwrite edge/#\n\nuser watcher\ntopic read edge/#\n",
    )
    .unwrap();
    chmod(&dir.join("acl"), 0o644);
}

struct Broker {
    mosquitto: Mosquitto,
    port: u16,
    tls_port: u16,
}

impl Broker {
    /// A mosquitto with a password+ACL listener and a mutual-TLS listener, persistence on.
    fn start(dir: &Path, name: &str, extra: &str) -> Broker {
        Self::start_at(dir, name, extra, free_port())
    }

    fn start_at(dir: &Path, name: &str, extra: &str, port: u16) -> Broker {
        let tls_port = free_port();
        let bdir = dir.join(name);
        std::fs::create_dir_all(bdir.join("persist")).unwrap();
        chmod(&bdir, 0o777);
        chmod(&bdir.join("persist"), 0o777);
        let conf = format!(
            "{auth}persistence true\npersistence_location {b}/persist/\nautosave_interval 1\n\
             max_queued_messages 0\nmax_inflight_messages 0\nlog_dest file {b}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             listener {port} 127.0.0.1\n{tls}{extra}\n",
            auth = password_auth(dir, true),
            tls = tls_listener(tls_port, dir, true),
            b = bdir.display()
        );
        Broker {
            mosquitto: Mosquitto::start(&bdir, &conf, port),
            port,
            tls_port,
        }
    }
}

/// An agent config for `emit` against `broker` (a URL), with extra `[mqtt]` lines and TLS section.
fn agent_config(
    dir: &Path,
    name: &str,
    spool: &str,
    broker: Option<&str>,
    mqtt_extra: &str,
    tail: &str,
) -> PathBuf {
    let broker_line = broker
        .map(|b| format!("broker = \"{b}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[device]\nsite_id = \"site-1\"\ndevice_id = \"dev-1\"\n\n[mqtt]\n{broker_line}client_id = \"agent-{name}\"\n\
         reconnect_min_ms = 50\nreconnect_max_s = 1\nhealth_interval_s = 1\n{mqtt_extra}\n\
         [storage]\nspool_dir = \"{}\"\nmax_size_mb = 64\n\n[evidence]\nframe_max_width = 320\njpeg_quality = 70\n{tail}",
        dir.join(format!("spool-{spool}")).display()
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn password_config(dir: &Path, name: &str, spool: &str, port: u16, password: &str) -> PathBuf {
    let pw = dir.join(format!("{name}.pw"));
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    agent_config(
        dir,
        name,
        spool,
        Some(&format!("mqtt://127.0.0.1:{port}")),
        &format!(
            "username = \"edge\"\npassword_file = \"{}\"\n",
            pw.display()
        ),
        "",
    )
}

fn emit_cmd(config: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.env("EDGE_AGENT_SHARED", shared_dir())
        .args(["--log-format", "text", "emit", "--config"])
        .arg(config)
        .args(extra);
    c
}

/// Event ids printed by an emit run (committed to the spool).
fn committed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["event_id"].as_str().map(str::to_string))
        .collect()
}

/// A running `watch` whose JSON lines are collected.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(args: &[&str]) -> Watcher {
        let mut child = bin()
            .args(["--log-format", "text", "watch", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let w = Watcher {
            child,
            lines,
            reader: Some(reader),
        };
        w.wait_for(
            |v| v["type"] == "subscribed",
            Duration::from_secs(20),
            "subscription",
        );
        w
    }

    fn wait_for(&self, pred: impl Fn(&Value) -> bool, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        while !self.lines.lock().unwrap().iter().any(&pred) {
            assert!(
                Instant::now() < deadline,
                "watch: no {what} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the watcher to exit by itself (--count / --idle-timeout) and returns its lines.
    fn finish(mut self) -> Vec<Value> {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "watch exited with {status}");
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        self.lines.lock().unwrap().clone()
    }
}

fn event_ids(lines: &[Value]) -> HashSet<String> {
    lines
        .iter()
        .filter(|v| v["type"] == "event")
        .filter_map(|v| v["event_id"].as_str().map(str::to_string))
        .collect()
}

fn summary(lines: &[Value]) -> Value {
    lines
        .iter()
        .rev()
        .find(|v| v["type"] == "summary")
        .cloned()
        .expect("watch printed no summary")
}

fn assert_all_seen(committed: &[String], lines: &[Value]) {
    let seen = event_ids(lines);
    let missing: Vec<_> = committed.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} committed events never reached the consumer, e.g. {:?}",
        missing.len(),
        committed.len(),
        &missing[..missing.len().min(5)]
    );
    let s = summary(lines);
    assert_eq!(s["evidence_mismatched"], 0, "{s}");
}

fn watcher_args(port: u16, client_id: &str, extra: &[&str]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("watch-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("watcher.pw");
    std::fs::write(&pw, "secret2\n").unwrap();
    let mut v: Vec<String> = [
        "--broker",
        &format!("mqtt://127.0.0.1:{port}"),
        "--username",
        "watcher",
        "--password-file",
        pw.to_str().unwrap(),
        "--client-id",
        client_id,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn start_watcher(args: &[String]) -> Watcher {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Watcher::start(&refs)
}

fn setup() -> tempfile::TempDir {
    let dir = test_dir();
    make_certs(dir.path(), &["edge-device-1", "watcher"]);
    write_auth(dir.path());
    dir
}

#[test]
fn broker_restarted_three_times_loses_no_event() {
    let dir = setup();
    let mut broker = Broker::start(dir.path(), "b", "");
    let watch = start_watcher(&watcher_args(
        broker.port,
        "w-restart",
        &["--count", "2000", "--timeout", "120"],
    ));
    let cfg = password_config(dir.path(), "restart", "restart", broker.port, "secret1");
    let emit = emit_cmd(
        &cfg,
        &[
            "--count",
            "2000",
            "--rate",
            "400",
            "--flush-timeout",
            "60",
            "--report",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        if round == 1 {
            broker.mosquitto.freeze_and_kill(Duration::from_millis(300));
        } else {
            broker.mosquitto.stop();
        }
        std::thread::sleep(Duration::from_millis(400));
        broker.mosquitto.restart();
    }
    let out = emit.wait_with_output().unwrap();
    let ids = committed(&stdout(&out));
    assert!(out.status.success(), "emit failed: {}", stderr(&out));
    assert_eq!(ids.len(), 2000);
    assert!(
        stderr(&out).contains("MQTT connection failed"),
        "the restarts were not noticed: {}",
        stderr(&out)
    );
    // Each event is 3 messages (2 evidence + event). More than that were sent: what was in flight
    // at each loss went again from the spool.
    let report = report_of(&out);
    assert!(
        report["mqtt"]["connects"].as_u64().unwrap() >= 4,
        "{report}"
    );
    assert!(
        report["mqtt"]["published"].as_u64().unwrap() > 6000,
        "{report}"
    );
    let lines = watch.finish();
    assert_all_seen(&ids, &lines);
    let s = summary(&lines);
    assert_eq!(s["events"], 2000, "{s}");
    assert_eq!(s["devices"]["site-1/dev-1"]["missing"], 0, "{s}");
}

#[test]
fn agent_sigkilled_three_times_loses_no_event() {
    let dir = setup();
    let broker = Broker::start(dir.path(), "b", "");
    let watch = start_watcher(&watcher_args(
        broker.port,
        "w-kill",
        &["--idle-timeout", "4", "--timeout", "120"],
    ));
    let cfg = password_config(dir.path(), "kill", "kill", broker.port, "secret1");
    let mut ids = Vec::new();
    let total = 1500;
    for round in 0..4 {
        let left = (total - ids.len()).to_string();
        let mut child = emit_cmd(
            &cfg,
            &["--count", &left, "--rate", "500", "--flush-timeout", "60"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
                .join("\n")
        });
        if round < 3 {
            std::thread::sleep(Duration::from_millis(700 + 150 * round as u64));
            child.kill().unwrap(); // SIGKILL
        }
        let status = child.wait().unwrap();
        let text = reader.join().unwrap();
        ids.extend(committed(&text));
        if round == 3 {
            assert!(status.success(), "final run did not flush: {status}");
        }
    }
    assert_eq!(ids.len(), total);
    let lines = watch.finish();
    assert_all_seen(&ids, &lines);
    let s = summary(&lines);
    assert_eq!(s["devices"]["site-1/dev-1"]["missing"], 0, "{s}");
    assert_eq!(s["evidence_missing"], 0, "{s}");
}

#[test]
fn full_spool_keeps_the_newest_and_reports_evictions() {
    let dir = setup();
    let dead_port = free_port();
    let cfg = password_config(dir.path(), "full", "full", dead_port, "secret1");
    // 1 MiB spool: a few dozen events with evidence fit.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_size_mb = 64", "max_size_mb = 1");
    std::fs::write(&cfg, text).unwrap();
    // Evidence goes first, so events alone (about 1 KiB each) must overflow the bound too.
    const N: usize = 1500;
    let out = run(&mut emit_cmd(
        &cfg,
        &[
            "--count",
            &N.to_string(),
            "--flush-timeout",
            "0.5",
            "--report",
        ],
    ));
    assert_eq!(
        out.status.code(),
        Some(2),
        "messages must be left in the spool"
    );
    let ids = committed(&stdout(&out));
    assert_eq!(ids.len(), N);
    let report: Value = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["report"] == "delivery")
        .unwrap();
    let evicted_events = report["spool"]["evicted_events"].as_u64().unwrap();
    let evicted_evidence = report["spool"]["evicted_evidence"].as_u64().unwrap();
    assert!(evicted_evidence > 0 && evicted_events > 0, "{report}");
    assert!(
        report["spool"]["bytes"].as_u64().unwrap() <= 1 << 20,
        "{report}"
    );
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );

    // The broker comes up on that port; the consumer sees the newest events and the gap.
    let _broker = Broker::start_at(dir.path(), "late", "", dead_port);
    let watch = start_watcher(&watcher_args(
        dead_port,
        "w-full",
        &["--idle-timeout", "3", "--timeout", "60"],
    ));
    let out = run(&mut emit_cmd(
        &cfg,
        &["--count", "0", "--flush-timeout", "30", "--report"],
    ));
    assert!(out.status.success(), "flush failed: {}", stderr(&out));
    let lines = watch.finish();
    let seen = event_ids(&lines);
    let kept = N - evicted_events as usize;
    assert_eq!(seen.len(), kept, "every event that was not evicted arrives");
    assert!(
        ids[N - kept..].iter().all(|id| seen.contains(id)),
        "the newest events are the ones kept"
    );
    let s = summary(&lines);
    assert_eq!(
        s["devices"]["site-1/dev-1"]["first_seq"],
        evicted_events + 1,
        "{s}"
    );
    // Health reports the evictions to the centre.
    let health = lines
        .iter()
        .rfind(|v| v["type"] == "health")
        .expect("no health message");
    assert_eq!(
        health["payload"]["spool"]["evicted_events"], evicted_events,
        "{health}"
    );
    assert_eq!(
        health["payload"]["spool"]["evicted_evidence"], evicted_evidence,
        "{health}"
    );
}

#[test]
fn tls_and_auth_failures_are_clear_retried_and_lose_nothing() {
    let dir = setup();
    let broker = Broker::start(dir.path(), "b", "");
    let d = dir.path().display();
    let tls = |ca: &str, client: bool| {
        let mut s = format!("\n[mqtt.tls]\nca_file = \"{d}/{ca}.crt\"\n");
        if client {
            s.push_str(&format!(
                "client_cert_file = \"{d}/edge-device-1.crt\"\nclient_key_file = \"{d}/edge-device-1.key\"\n"
            ));
        }
        s
    };
    let url = format!("mqtts://localhost:{}", broker.tls_port);
    // One spool for all runs: the failed runs' events must go out with the good one.
    let cases = [
        (
            agent_config(
                dir.path(),
                "wrong-ca",
                "same",
                Some(&url),
                "",
                &tls("wrong-ca", true),
            ),
            &["UnknownIssuer"][..],
        ),
        (
            agent_config(
                dir.path(),
                "no-cert",
                "same",
                Some(&url),
                "",
                &tls("ca", false),
            ),
            &["CertificateRequired", "HandshakeFailure"][..],
        ),
        (
            password_config(dir.path(), "bad-pw", "same", broker.port, "wrong"),
            &["NotAuthorized"][..],
        ),
    ];
    let mut ids = Vec::new();
    for (cfg, expected) in &cases {
        let out = run(&mut emit_cmd(
            cfg,
            &["--count", "10", "--flush-timeout", "1.5"],
        ));
        assert_eq!(out.status.code(), Some(2), "nothing can be delivered");
        let err = stderr(&out);
        assert!(
            expected.iter().any(|x| err.contains(x)),
            "expected one of {expected:?} in: {err}"
        );
        assert!(err.contains("hint="), "no hint in: {err}");
        assert!(
            err.matches("MQTT connection failed").count() >= 2,
            "expected retries with backoff: {err}"
        );
        ids.extend(committed(&stdout(&out)));
    }
    let watch = start_watcher(&watcher_args(
        broker.port,
        "w-tls",
        &["--count", "30", "--timeout", "60"],
    ));
    let good = agent_config(dir.path(), "good", "same", Some(&url), "", &tls("ca", true));
    let out = run(&mut emit_cmd(
        &good,
        &["--count", "0", "--flush-timeout", "30"],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = watch.finish();
    assert_eq!(ids.len(), 30);
    assert_all_seen(&ids, &lines);
}

#[test]
fn mutual_tls_consumer_verifies_and_saves_evidence() {
    let dir = setup();
    let broker = Broker::start(dir.path(), "b", "");
    let d = dir.path();
    let evidence_dir = d.join("evidence-out");
    let mut args: Vec<String> = vec![
        "--broker".into(),
        format!("mqtts://localhost:{}", broker.tls_port),
        "--ca".into(),
        d.join("ca.crt").display().to_string(),
        "--cert".into(),
        d.join("watcher.crt").display().to_string(),
        "--key".into(),
        d.join("watcher.key").display().to_string(),
        "--client-id".into(),
        "w-mtls".into(),
        "--count".into(),
        "40".into(),
        "--timeout".into(),
        "60".into(),
        "--out".into(),
        evidence_dir.display().to_string(),
    ];
    let watch = start_watcher(&args);
    let cfg = agent_config(
        d,
        "mtls",
        "mtls",
        Some(&format!("mqtts://localhost:{}", broker.tls_port)),
        "protocol = \"v5\"\n",
        &format!(
            "\n[mqtt.tls]\nca_file = \"{0}/ca.crt\"\nclient_cert_file = \"{0}/edge-device-1.crt\"\nclient_key_file = \"{0}/edge-device-1.key\"\n",
            d.display()
        ),
    );
    let out = run(&mut emit_cmd(&cfg, &["--count", "40"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = committed(&stdout(&out));
    let lines = watch.finish();
    assert_all_seen(&ids, &lines);
    let s = summary(&lines);
    assert_eq!(s["evidence_missing"], 0, "{s}");
    // Every event carries a frame and a crop (the same two JPEGs, reused by emit), each verified
    // with the event or as it followed it.
    assert!(
        lines
            .iter()
            .filter(|v| v["type"] == "event")
            .all(|v| v["evidence_total"] == 2)
    );
    let saved: Vec<_> = std::fs::read_dir(&evidence_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    assert_eq!(saved.len(), 2, "{saved:?}");
    // ... beside the events as sent, one line per distinct event
    let received = lines.iter().filter(|v| v["type"] == "event").count();
    let kept = std::fs::read_to_string(evidence_dir.join("events.jsonl")).unwrap_or_default();
    assert_eq!(kept.lines().count(), received);
    for p in saved {
        let bytes = std::fs::read(&p).unwrap();
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        assert_eq!(edge_agent::events::evidence::sha256_hex(&bytes), name);
        let img = image::load_from_memory(&bytes).expect("evidence is a JPEG");
        assert!(img.width() <= 320);
    }
    // The retained birth names the device.
    let status = lines
        .iter()
        .find(|v| v["type"] == "status")
        .expect("no status");
    assert_eq!(status["payload"]["device_id"], "dev-1", "{status}");
    args.clear();
}

#[test]
fn site_broker_bridged_to_centre_delivers_everything() {
    let dir = setup();
    let centre = Broker::start(dir.path(), "centre", "");
    let bridge = format!(
        "connection centre\naddress 127.0.0.1:{}\ntopic edge/# out 1\ncleansession false\n\
         remote_clientid site-bridge\nremote_username bridge\nremote_password secret3\n\
         restart_timeout 1\nnotifications false\n",
        centre.port
    );
    let site = Broker::start(dir.path(), "site", &bridge);
    let watch = start_watcher(&watcher_args(
        centre.port,
        "w-centre",
        &["--count", "200", "--timeout", "30"],
    ));
    // Give the bridge time to connect before the first event.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !site.mosquitto.log().contains("Connecting bridge") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let cfg = password_config(dir.path(), "bridged", "bridged", site.port, "secret1");
    let out = run(&mut emit_cmd(&cfg, &["--count", "200", "--rate", "300"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = committed(&stdout(&out));
    let lines = watch.finish();
    if event_ids(&lines).len() < ids.len() {
        eprintln!(
            "--- site broker log:\n{}\n--- centre broker log:\n{}",
            site.mosquitto.log(),
            centre.mosquitto.log()
        );
    }
    assert_all_seen(&ids, &lines);
}

#[test]
fn mqtt5_shared_subscription_splits_and_covers_the_stream() {
    let dir = setup();
    let broker = Broker::start(dir.path(), "b", "");
    let a = start_watcher(&watcher_args(
        broker.port,
        "w-share-a",
        &[
            "--protocol",
            "v5",
            "--share",
            "ops",
            "--idle-timeout",
            "3",
            "--timeout",
            "60",
        ],
    ));
    let b = start_watcher(&watcher_args(
        broker.port,
        "w-share-b",
        &[
            "--protocol",
            "v5",
            "--share",
            "ops",
            "--idle-timeout",
            "3",
            "--timeout",
            "60",
        ],
    ));
    let cfg = password_config(dir.path(), "v5", "v5", broker.port, "secret1");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[mqtt]\n", "[mqtt]\nprotocol = \"v5\"\n");
    std::fs::write(&cfg, text).unwrap();
    let out = run(&mut emit_cmd(&cfg, &["--count", "200", "--no-evidence"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = committed(&stdout(&out));
    let (la, lb) = (a.finish(), b.finish());
    let (sa, sb) = (event_ids(&la), event_ids(&lb));
    assert!(
        !sa.is_empty() && !sb.is_empty(),
        "both members get a share: {} / {}",
        sa.len(),
        sb.len()
    );
    let union: HashSet<_> = sa.union(&sb).cloned().collect();
    assert!(
        ids.iter().all(|id| union.contains(id)),
        "the group together sees every event"
    );
    assert!(
        sa.intersection(&sb).count() < ids.len() / 2,
        "members split the stream"
    );
}

/// `emit` of `count` events at 10/s with no broker configured, once its embedded broker accepts
/// connections: the port and the running `emit`.
fn emit_on_embedded_broker(dir: &Path, name: &str, count: u32) -> (u16, Child) {
    let port = free_port();
    let cfg = agent_config(
        dir,
        name,
        name,
        None,
        &format!("embedded_listen = \"127.0.0.1:{port}\"\n"),
        "",
    );
    let count = count.to_string();
    let emit = emit_cmd(
        &cfg,
        &["--count", &count, "--rate", "10", "--flush-timeout", "5"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_embedded_broker(port);
    (port, emit)
}

/// Waits (20 s at most) until an `emit`'s embedded broker accepts connections on `port`.
fn wait_for_embedded_broker(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "embedded broker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn embedded_broker_serves_any_client_when_no_broker_is_configured() {
    let dir = test_dir();
    let (port, mut emit) = emit_on_embedded_broker(dir.path(), "embedded", 60);
    let watch = Watcher::start(&[
        "--broker",
        &format!("mqtt://127.0.0.1:{port}"),
        "--clean-session",
        "--count",
        "10",
        "--timeout",
        "30",
    ]);
    let lines = watch.finish();
    let _ = emit.kill();
    let _ = emit.wait();
    let s = summary(&lines);
    assert_eq!(s["events"], 10, "{s}");
    assert_eq!(s["evidence_mismatched"], 0, "{s}");
    // Each event goes before its images (emit reuses the same two JPEGs): the watcher reports
    // them as they follow the first event that needs them, and misses none.
    let late = lines.iter().filter(|v| v["type"] == "evidence").count();
    assert!(late >= 1, "no image followed its event: {lines:?}");
    assert_eq!(s["evidence_missing"], 0, "{s}");
    assert_eq!(s["evidence_verified"], 2, "{s}");
}

/// The embedded broker's default log keeps a subscriber's cost to a few MB: each event JSON it
/// keeps pins the read buffer it arrived in, up to an evidence image, so the log must hold few
/// messages (at the old 256 KiB default, 400 events with full-size evidence and a subscriber peaked
/// 31.5 MB above the same run with none: 62.5 against 31.0 MB).
#[test]
fn embedded_broker_memory_with_a_subscriber_stays_near_none() {
    let dir = test_dir();
    let peak_rss_mb = |name: &str, subscribe: bool| -> (f64, Vec<Value>) {
        let port = free_port();
        // full-size evidence (the soak's 137 KB frames), the default embedded_log_kb
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[device]\nsite_id = \"site-1\"\ndevice_id = \"dev-1\"\n\n[mqtt]\n\
                 embedded_listen = \"127.0.0.1:{port}\"\nhealth_interval_s = 1\n\n\
                 [storage]\nspool_dir = \"{}\"\nmax_size_mb = 256\n",
                dir.path().join(format!("spool-{name}")).display()
            ),
        )
        .unwrap();
        let emit = emit_cmd(
            &cfg,
            &[
                "--count",
                "400",
                "--rate",
                "100",
                "--quiet",
                "--report",
                "--flush-timeout",
                "30",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
        wait_for_embedded_broker(port);
        let watch = subscribe.then(|| {
            Watcher::start(&[
                "--broker",
                &format!("mqtt://127.0.0.1:{port}"),
                "--clean-session",
                "--idle-timeout",
                "5",
                "--timeout",
                "60",
            ])
        });
        let out = emit.wait_with_output().unwrap();
        assert!(out.status.success(), "emit failed");
        let report = report_of(&out);
        assert_eq!(report["flushed"], true, "{report}");
        let lines = watch.map(Watcher::finish).unwrap_or_default();
        (report["peak_rss_mb"].as_f64().unwrap(), lines)
    };
    let (alone, _) = peak_rss_mb("alone", false);
    let (watched, lines) = peak_rss_mb("watched", true);
    // a live subscriber keeps up through the small log: no seq gap after its first event
    let mut seqs: Vec<u64> = lines
        .iter()
        .filter(|v| v["type"] == "event")
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert!(
        seqs.len() >= 300,
        "the subscriber saw {} events",
        seqs.len()
    );
    let first = seqs[0];
    assert_eq!(seqs, (first..=400).collect::<Vec<_>>(), "seq gap");
    assert!(
        watched - alone < 15.0,
        "peak RSS {watched:.1} MB with a subscriber against {alone:.1} MB without"
    );
}

#[test]
fn signed_events_verify_offline_and_every_tampering_is_named() {
    let dir = test_dir();
    let (port, mut emit) = emit_on_embedded_broker(dir.path(), "signed", 40);
    let out = dir.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let watch = Watcher::start(&[
        "--broker",
        &format!("mqtt://127.0.0.1:{port}"),
        "--clean-session",
        "--count",
        "12",
        "--timeout",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    watch.finish();
    let _ = emit.kill();
    let _ = emit.wait();
    // the centre pins the device's public key (the birth message carries it)
    let key =
        edge_agent::signing::DeviceKey::load_or_create(&dir.path().join("spool-signed/device.key"))
            .expect("the agent made its key")
            .public_hex();
    let events = out.join("events.jsonl");
    let verify = |file: &Path| {
        let o = run(bin()
            .args(["verify", "--key", &key, "--evidence"])
            .arg(&out)
            .arg(file));
        (o.status.success(), stdout(&o))
    };
    let (ok, text) = verify(&events);
    assert!(ok, "{text}");
    assert!(text.contains(" 0 problems"), "{text}");

    let lines: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(lines.len() >= 12, "{}", lines.len());
    let write = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    };
    // one event removed from the middle
    let mut removed = lines.clone();
    removed.remove(5);
    let (ok, text) = verify(&write("removed.jsonl", &removed));
    assert!(!ok && text.contains("missing from the file"), "{text}");
    // one field edited
    let mut edited = lines.clone();
    edited[3] = edited[3].replacen("\"camera_id\":\"cam-1\"", "\"camera_id\":\"cam-9\"", 1);
    assert_ne!(edited[3], lines[3]);
    let (ok, text) = verify(&write("edited.jsonl", &edited));
    assert!(!ok && text.contains("does not verify"), "{text}");
    // one byte of one JPEG changed
    let v: Value = serde_json::from_str(&lines[2]).unwrap();
    let sha = v["evidence"][0]["sha256"]
        .as_str()
        .expect("evidence")
        .to_string();
    let jpeg = out.join(format!("{sha}.jpg"));
    let mut bytes = std::fs::read(&jpeg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&jpeg, bytes).unwrap();
    let (ok, text) = verify(&events);
    assert!(
        !ok && text.contains("does not hash to its sha256"),
        "{text}"
    );
}

fn report_of(out: &std::process::Output) -> Value {
    stdout(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["report"] == "delivery")
        .expect("emit printed no report")
}

/// Figures for the delivery section of the README: throughput through spool + MQTT with evidence
/// and fsync, publish latency, and spool recovery after SIGKILL with 10 000 events queued.
/// Run: `cargo test --release --test delivery -- --ignored --nocapture benchmark`.
#[test]
#[ignore = "benchmark; prints figures, asserts nothing about speed"]
fn benchmark_delivery() {
    let dir = setup();
    let broker = Broker::start(dir.path(), "bench", "");
    let cfg = password_config(dir.path(), "bench", "bench", broker.port, "secret1");
    let out = run(&mut emit_cmd(
        &cfg,
        &[
            "--count",
            "5000",
            "--quiet",
            "--report",
            "--flush-timeout",
            "120",
        ],
    ));
    assert!(out.status.success());
    eprintln!("BENCH mosquitto throughput, 1 thread: {}", report_of(&out));
    let out = run(&mut emit_cmd(
        &cfg,
        &[
            "--count",
            "5000",
            "--threads",
            "4",
            "--quiet",
            "--report",
            "--flush-timeout",
            "120",
        ],
    ));
    assert!(out.status.success());
    eprintln!("BENCH mosquitto throughput, 4 threads: {}", report_of(&out));
    let out = run(&mut emit_cmd(
        &cfg,
        &["--count", "2000", "--rate", "200", "--quiet", "--report"],
    ));
    assert!(out.status.success());
    eprintln!(
        "BENCH mosquitto latency at 200 events/s: {}",
        report_of(&out)
    );

    let port = free_port();
    let cfg = agent_config(
        dir.path(),
        "bench-embedded",
        "bench-embedded",
        None,
        &format!("embedded_listen = \"127.0.0.1:{port}\"\n"),
        "",
    );
    let out = run(&mut emit_cmd(
        &cfg,
        &[
            "--count",
            "5000",
            "--quiet",
            "--report",
            "--flush-timeout",
            "120",
        ],
    ));
    assert!(out.status.success());
    eprintln!(
        "BENCH embedded broker throughput, 1 thread: {}",
        report_of(&out)
    );
    let out = run(&mut emit_cmd(
        &cfg,
        &[
            "--count",
            "5000",
            "--threads",
            "4",
            "--quiet",
            "--report",
            "--flush-timeout",
            "120",
        ],
    ));
    assert!(out.status.success());
    eprintln!(
        "BENCH embedded broker throughput, 4 threads: {}",
        report_of(&out)
    );
    let out = run(&mut emit_cmd(
        &cfg,
        &["--count", "2000", "--rate", "200", "--quiet", "--report"],
    ));
    assert!(out.status.success());
    eprintln!(
        "BENCH embedded broker latency at 200 events/s: {}",
        report_of(&out)
    );

    let dead = free_port();
    let cfg = password_config(
        dir.path(),
        "bench-recover",
        "bench-recover",
        dead,
        "secret1",
    );
    let mut child = emit_cmd(&cfg, &["--count", "20000", "--flush-timeout", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut n = 0;
    for _ in lines.map_while(Result::ok) {
        n += 1;
        if n == 10_000 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = run(&mut emit_cmd(
        &cfg,
        &["--count", "0", "--report", "--flush-timeout", "0"],
    ));
    let r = report_of(&out);
    eprintln!(
        "BENCH recovery after SIGKILL: spool_open_ms={} with {} events / {} evidence queued",
        r["spool_open_ms"], r["spool"]["events"], r["spool"]["evidence"]
    );
}

/// `run` (the real pipeline on three real frames) announces the execution provider and inference
/// engine that actually registered in its retained birth on `status`, and says goodbye on exit.
#[test]
fn run_birth_names_the_active_provider_and_backend() {
    let dir = setup();
    let broker = Broker::start(dir.path(), "b", "");
    let watch = start_watcher(&watcher_args(
        broker.port,
        "w-birth",
        &["--idle-timeout", "4", "--timeout", "120"],
    ));
    let frames = frames_folder(dir.path(), 3);
    let cfg = password_config(dir.path(), "birth", "birth", broker.port, "secret1");
    let head = std::fs::read_to_string(&cfg).unwrap() + "\n";
    std::fs::write(&cfg, folder_camera_config(&head, &frames, Some(10))).unwrap();
    let out = run(bin()
        .args(["--log-format", "text", "run", "--config"])
        .arg(&cfg)
        .env("ORT_DYLIB_PATH", ort_lib()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = watch.finish();
    let states: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "status")
        .map(|v| &v["payload"])
        .collect();
    let birth = states
        .iter()
        .find(|p| p["state"] == "online")
        .unwrap_or_else(|| panic!("no birth in {states:?}"));
    assert_eq!(birth["device_id"], "dev-1", "{birth}");
    assert_eq!(birth["execution_provider"], "cpu", "{birth}");
    assert_eq!(birth["inference_backend"], "onnxruntime", "{birth}");
    assert!(
        birth["models"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["name"] == "yolox_nano_coco_416")),
        "{birth}"
    );
    assert!(
        states.iter().any(|p| p["state"] == "offline"),
        "no goodbye in {states:?}"
    );
}
