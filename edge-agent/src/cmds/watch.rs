//! `edge-agent watch`: the reference consumer for operators and integrators. It shows what a
//! correct client of the event contract does: a persistent session with QoS 1, dedupe by
//! `event_id`, sha256 check of every evidence image, and a report of `seq` gaps per device (events
//! evicted from a full spool, or lost on the way).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use edge_agent::backoff::{Backoff, Jitter};
use edge_agent::config::{self, MqttProtocol};
use edge_agent::events::Event;
use edge_agent::events::evidence::sha256_hex;
use edge_agent::publish::link::{Link, LinkEvent};
use edge_agent::publish::settings::{MqttSettings, TlsMaterial};
use serde_json::json;
use uuid::Uuid;

use super::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Take the broker, TLS files, credentials and topic prefix from this agent config.
    #[arg(long, required_unless_present = "broker")]
    config: Option<PathBuf>,
    /// Broker URL, `mqtt://host:1883` or `mqtts://host:8883` (overrides --config).
    #[arg(long)]
    broker: Option<String>,
    /// PEM CA that signed the broker certificate (mqtts://).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[arg(long)]
    username: Option<String>,
    /// File holding the password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// MQTT protocol version.
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Client id; the broker keeps this consumer's session (and queues events) under it.
    #[arg(long, default_value = "edge-agent-watch")]
    client_id: String,
    /// Start a fresh session instead of resuming the stored one.
    #[arg(long)]
    clean_session: bool,
    /// Join this shared-subscription group (`$share/GROUP/...`) so several consumers split the load.
    #[arg(long)]
    share: Option<String>,
    /// Topic prefix (default: the config's, else `edge`).
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Which devices, as `SITE/DEVICE` with MQTT wildcards.
    #[arg(long, default_value = "+/+")]
    devices: String,
    /// Save verified evidence JPEGs here as `{sha256}.jpg`, and each new event as sent in
    /// `events.jsonl` (what `edge-agent verify` checks).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit after this many distinct events (and their evidence images, which follow their
    /// event: waited for up to 5 s more).
    #[arg(long)]
    count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long)]
    timeout: Option<f64>,
    /// Exit after this many seconds without a new event (once one has arrived).
    #[arg(long)]
    idle_timeout: Option<f64>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// Ask each device for the clips it keeps (a violation's `clip`, `on_request`): a signed
    /// `evidence/get` per clip; the pieces that come back are put together, checked against the
    /// clip's sha256 and saved in --out as `{sha256}.mp4`.
    #[arg(long, requires_all = ["centre_key", "out"])]
    fetch_clips: bool,
    /// The centre's Ed25519 key (`edge-agent sign-remote --key`) that signs the requests; the
    /// devices pin its public half in `[remote].centre_keys`.
    #[arg(long)]
    centre_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Protocol {
    V311,
    V5,
}

fn settings(args: &Args) -> anyhow::Result<(MqttSettings, String)> {
    let loaded = match &args.config {
        Some(p) => Some(config::load_file(p).with_context(|| format!("loading {}", p.display()))?),
        None => None,
    };
    let mut s = match (&args.broker, &loaded) {
        (Some(url), _) => MqttSettings::from_url(url, "--broker")?,
        (None, Some(l)) => l.mqtt_settings()?,
        (None, None) => bail!("give --config FILE or --broker URL"),
    };
    let read = |p: &PathBuf, flag: &str| {
        std::fs::read(p).with_context(|| format!("reading {flag} {}", p.display()))
    };
    if let Some(ca) = &args.ca {
        let client = match (&args.cert, &args.key) {
            (Some(c), Some(k)) => Some((read(c, "--cert")?, read(k, "--key")?)),
            _ => None,
        };
        s.tls = Some(TlsMaterial {
            ca_pem: read(ca, "--ca")?,
            client,
        });
    } else if args.broker.is_some() && s.tls.is_some() {
        bail!("--broker is mqtts:// but --ca is missing");
    }
    if let Some(u) = &args.username {
        s.username = Some(u.clone());
    }
    if let Some(p) = &args.password_file {
        let text = read(p, "--password-file")?;
        s.password = Some(
            String::from_utf8_lossy(&text)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        );
    }
    if let Some(p) = args.protocol {
        s.protocol = match p {
            Protocol::V311 => MqttProtocol::V311,
            Protocol::V5 => MqttProtocol::V5,
        };
    }
    s.client_id = args.client_id.clone();
    s.clean_session = args.clean_session;
    let prefix = args
        .topic_prefix
        .clone()
        .or_else(|| loaded.as_ref().map(|l| l.config.mqtt.topic_prefix.clone()))
        .unwrap_or_else(|| "edge".into());
    Ok((s, prefix))
}

/// Per-device sequence bookkeeping.
#[derive(Default)]
struct Device {
    seqs: BTreeSet<u64>,
}

impl Device {
    fn missing(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut prev: Option<u64> = None;
        for &s in &self.seqs {
            if let Some(p) = prev
                && s > p + 1
            {
                out.push((p + 1, s - 1));
            }
            prev = Some(s);
        }
        out
    }
}

#[derive(Default)]
struct Tally {
    seen: HashSet<Uuid>,
    duplicates: u64,
    invalid: u64,
    evidence_ok: HashSet<String>,
    evidence_bad: u64,
    devices: BTreeMap<String, Device>,
    /// Evidence referenced by events but not (yet) received: sha256 → the (device, seq) of every
    /// event waiting for it (one image may serve several: a plate crop in a read and a violation).
    /// The agent sends each event before its images (a thin uplink carries the alert first).
    awaited: HashMap<String, Vec<(String, u64)>>,
}

impl Tally {
    /// An event `seq` of `device` references image `sha`: true when it is already here, else
    /// the event waits for it.
    fn referenced(&mut self, sha: &str, device: &str, seq: u64) -> bool {
        if self.evidence_ok.contains(sha) {
            return true;
        }
        let waiting = self.awaited.entry(sha.to_string()).or_default();
        waiting.push((device.to_string(), seq));
        false
    }

    /// Image `sha` arrived (and hashed right): the events that were waiting for it.
    fn arrived(&mut self, sha: &str) -> Vec<(String, u64)> {
        self.awaited.remove(sha).unwrap_or_default()
    }
}

struct Watch {
    args: Args,
    tally: Tally,
    /// Signs clip requests (`--fetch-clips`).
    centre: Option<edge_agent::signing::DeviceKey>,
    /// The next request number: rises across runs (milliseconds since 1970 at start).
    next_seq: u64,
    /// Requests to publish: (topic, payload).
    outbox: Vec<(String, Vec<u8>)>,
    /// Clips asked for, by sha256; `fetched` those saved since.
    requested: HashSet<String>,
    fetched: HashSet<String>,
    /// Clips on their way: clip sha256 → (device, its pieces in order).
    clips: HashMap<String, (String, Vec<String>)>,
}

impl Watch {
    fn print(&self, v: serde_json::Value, text: String) -> anyhow::Result<()> {
        if self.args.json {
            output::line(v)
        } else {
            output::line(text)
        }
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        let levels: Vec<&str> = topic.split('/').collect();
        let n = levels.len();
        if n >= 2 && levels[n - 2] == "evidence" && levels[n - 1] == "get" {
            // a clip request to a device (ours, or another centre client's): not evidence
            return Ok(());
        }
        if n >= 2 && levels[n - 2] == "evidence" {
            let sha = levels[n - 1];
            let actual = sha256_hex(payload);
            if actual == sha {
                if self.tally.evidence_ok.insert(sha.to_string()) {
                    for (device, seq) in self.tally.arrived(sha) {
                        self.print(
                            json!({"type": "evidence", "device": device, "seq": seq, "sha256": sha}),
                            format!("EVIDENCE {device} seq={seq} {sha} verified"),
                        )?;
                    }
                    if let Some(dir) = &self.args.out {
                        let p = dir.join(format!("{sha}.jpg"));
                        std::fs::write(&p, payload)
                            .with_context(|| format!("saving evidence {}", p.display()))?;
                    }
                    if self.requested.contains(sha) && !self.clips.contains_key(sha) {
                        // a kept image that was asked for has arrived
                        self.fetched.insert(sha.to_string());
                    }
                    self.assemble_clips()?;
                }
            } else {
                self.tally.evidence_bad += 1;
                self.print(
                    json!({"type": "evidence_mismatch", "topic": topic, "sha256": actual}),
                    format!("EVIDENCE MISMATCH {topic}: bytes hash to {actual}"),
                )?;
            }
            return Ok(());
        }
        if n >= 2 && levels[n - 2] == "events" {
            let event: Event = match serde_json::from_slice(payload) {
                Ok(e) => e,
                Err(e) => {
                    self.tally.invalid += 1;
                    return self.print(
                        json!({"type": "invalid", "topic": topic, "error": e.to_string()}),
                        format!("INVALID event on {topic}: {e}"),
                    );
                }
            };
            if !self.tally.seen.insert(event.event_id) {
                self.tally.duplicates += 1;
                return Ok(());
            }
            if let Some(dir) = &self.args.out {
                // the event as sent, beside its evidence: `edge-agent verify` checks both offline
                let p = dir.join("events.jsonl");
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .with_context(|| format!("opening {}", p.display()))?;
                f.write_all(payload)
                    .and_then(|()| f.write_all(b"\n"))
                    .with_context(|| format!("saving the event in {}", p.display()))?;
            }
            let device_key = format!("{}/{}", event.site_id, event.device_id);
            let dev = self.tally.devices.entry(device_key.clone()).or_default();
            let jumped = dev.seqs.last().copied().filter(|last| event.seq > last + 1);
            dev.seqs.insert(event.seq);
            // What travels as messages: images and clip pieces. A `clip` entry names the whole
            // file (kept on the device, or sent as its `clip_part` pieces), never one message.
            let travelling: Vec<&edge_agent::events::EvidenceRef> = event
                .evidence
                .iter()
                .filter(|r| r.role != edge_agent::events::EvidenceRole::Clip)
                .collect();
            let ok = travelling
                .iter()
                .filter(|r| self.tally.referenced(&r.sha256, &device_key, event.seq))
                .count();
            let plate = event
                .object
                .as_ref()
                .and_then(|o| o.plate.as_ref())
                .map(|p| format!(" plate {} ({:.2})", p.display, p.confidence))
                .unwrap_or_default();
            self.print(
                json!({"type": "event", "event_id": event.event_id, "seq": event.seq,
                       "kind": event.kind, "device": device_key, "camera": event.camera_id,
                       "capture_time": event.capture_time, "evidence_verified": ok,
                       "evidence_total": travelling.len()}),
                format!(
                    "ALERT {} {} {} seq={} {}{} evidence {}/{} verified",
                    event.kind,
                    device_key,
                    event.camera_id,
                    event.seq,
                    event.capture_time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    plate,
                    ok,
                    travelling.len()
                ),
            )?;
            self.follow_clips(&levels, &device_key, &event)?;
            if let Some(last) = jumped {
                self.print(
                    json!({"type": "gap", "device": device_key, "from": last + 1, "to": event.seq - 1}),
                    format!("GAP {device_key}: seq {}..{} not received (yet)", last + 1, event.seq - 1),
                )?;
            }
            return Ok(());
        }
        let kind = levels.last().copied().unwrap_or("");
        let body: serde_json::Value = serde_json::from_slice(payload)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(payload)));
        self.print(
            json!({"type": kind, "topic": topic, "payload": body}),
            format!("{} {topic} {body}", kind.to_uppercase()),
        )
    }

    /// `--fetch-clips`: asks for a clip or image the device keeps, or notes the pieces of a clip
    /// that comes.
    fn follow_clips(&mut self, levels: &[&str], device: &str, event: &Event) -> anyhow::Result<()> {
        let Some(key) = self.centre.take() else {
            return Ok(());
        };
        let result = self.follow_with(&key, levels, device, event);
        self.centre = Some(key);
        result
    }

    fn follow_with(
        &mut self,
        key: &edge_agent::signing::DeviceKey,
        levels: &[&str],
        device: &str,
        event: &Event,
    ) -> anyhow::Result<()> {
        for r in &event.evidence {
            let what = match &r.clip {
                Some(info) if !info.on_request => {
                    let pieces = event
                        .evidence
                        .iter()
                        .filter(|p| p.role == edge_agent::events::EvidenceRole::ClipPart)
                        .map(|p| p.sha256.clone())
                        .collect();
                    self.clips
                        .insert(r.sha256.clone(), (device.to_string(), pieces));
                    continue;
                }
                Some(info) => format!(
                    "CLIP REQUESTED {device} {} ({} ms)",
                    r.sha256, info.duration_ms
                ),
                // an image kept on the device (`[mqtt] evidence = "on_request"`)
                None if r.on_request => {
                    format!("IMAGE REQUESTED {device} {} ({:?})", r.sha256, r.role)
                }
                None => continue,
            };
            if !self.requested.insert(r.sha256.clone()) {
                continue;
            }
            // {prefix}/{site}/{device}/events/{kind}: the request goes to that device
            let n = levels.len();
            let base = levels[..n.saturating_sub(2)].join("/");
            let version = format!("fetch-{}", &r.sha256[..12]);
            let actor = "edge-agent watch --fetch-clips";
            let seq = self.next_seq;
            self.next_seq += 1;
            let message = edge_agent::signing::remote_message(
                "evidence/get",
                &event.site_id,
                &event.device_id,
                seq,
                &version,
                Some(actor),
                &r.sha256,
            );
            let doc = json!({
                "version": version, "sha256": r.sha256, "actor": actor, "seq": seq,
                "key": key.public_hex(), "signature": key.sign_remote(&message),
            });
            self.outbox
                .push((format!("{base}/evidence/get"), doc.to_string().into_bytes()));
            self.print(
                json!({"type": "requested", "device": device, "sha256": r.sha256}),
                what,
            )?;
        }
        Ok(())
    }

    /// Puts together every clip whose pieces have all arrived (saved in --out), checks it against
    /// its sha256 and saves it as `{sha256}.mp4`.
    fn assemble_clips(&mut self) -> anyhow::Result<()> {
        let Some(dir) = self.args.out.clone() else {
            return Ok(());
        };
        let complete: Vec<String> = self
            .clips
            .iter()
            .filter(|(_, (_, pieces))| pieces.iter().all(|p| self.tally.evidence_ok.contains(p)))
            .map(|(sha, _)| sha.clone())
            .collect();
        for sha in complete {
            let Some((device, pieces)) = self.clips.remove(&sha) else {
                continue;
            };
            let mut whole = Vec::new();
            for p in &pieces {
                let path = dir.join(format!("{p}.jpg"));
                whole.extend(
                    std::fs::read(&path)
                        .with_context(|| format!("reading clip piece {}", path.display()))?,
                );
            }
            if sha256_hex(&whole) != sha {
                self.tally.evidence_bad += 1;
                self.print(
                    json!({"type": "clip_mismatch", "device": device, "sha256": sha}),
                    format!("CLIP MISMATCH {device} {sha}: its pieces do not put together to it"),
                )?;
                continue;
            }
            let path = dir.join(format!("{sha}.mp4"));
            std::fs::write(&path, &whole)
                .with_context(|| format!("saving clip {}", path.display()))?;
            self.fetched.insert(sha.clone());
            self.print(
                json!({"type": "clip", "device": device, "sha256": sha, "bytes": whole.len(),
                       "path": path.display().to_string()}),
                format!(
                    "CLIP {device} {sha} verified, {} bytes, saved as {}",
                    whole.len(),
                    path.display()
                ),
            )?;
        }
        Ok(())
    }

    fn summary(&self) -> anyhow::Result<()> {
        let t = &self.tally;
        let devices: BTreeMap<&String, serde_json::Value> = t
            .devices
            .iter()
            .map(|(k, d)| {
                let missing = d.missing();
                let count: u64 = missing.iter().map(|(a, b)| b - a + 1).sum();
                (
                    k,
                    json!({"first_seq": d.seqs.first(), "last_seq": d.seqs.last(),
                           "received": d.seqs.len(), "missing": count,
                           "missing_ranges": missing.iter().take(20).collect::<Vec<_>>()}),
                )
            })
            .collect();
        let v = json!({"type": "summary", "events": t.seen.len(), "duplicates": t.duplicates,
                       "invalid": t.invalid, "evidence_verified": t.evidence_ok.len(),
                       "evidence_mismatched": t.evidence_bad, "evidence_missing": t.awaited.len(),
                       "devices": devices});
        let text = format!(
            "SUMMARY {} events ({} duplicates dropped, {} invalid); evidence {} verified, {} mismatched, {} missing; gaps: {}",
            t.seen.len(),
            t.duplicates,
            t.invalid,
            t.evidence_ok.len(),
            t.evidence_bad,
            t.awaited.len(),
            t.devices
                .iter()
                .map(|(k, d)| format!("{k} {:?}", d.missing()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.print(v, text)
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (settings, prefix) = settings(&args)?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating --out {}", dir.display()))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let centre = match (&args.centre_key, args.fetch_clips) {
        (Some(path), true) => {
            anyhow::ensure!(
                path.is_file(),
                "--centre-key {}: no such key (make it with `edge-agent sign-remote --key FILE --public`)",
                path.display()
            );
            Some(
                edge_agent::signing::DeviceKey::load_or_create(path)
                    .with_context(|| format!("centre key {}", path.display()))?,
            )
        }
        _ => None,
    };
    let next_seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64);
    let mut w = Watch {
        args,
        tally: Tally::default(),
        centre,
        next_seq,
        outbox: Vec::new(),
        requested: HashSet::new(),
        fetched: HashSet::new(),
        clips: HashMap::new(),
    };
    rt.block_on(watch(&mut w, settings, prefix))?;
    w.summary()?;
    Ok(ExitCode::SUCCESS)
}

/// How long `--count` waits, once reached, for the images of the events it counted.
const EVIDENCE_GRACE: Duration = Duration::from_secs(5);

async fn watch(w: &mut Watch, settings: MqttSettings, prefix: String) -> anyhow::Result<()> {
    let base = format!("{prefix}/{}", w.args.devices);
    let filters: Vec<String> = ["events/#", "evidence/+", "status", "health"]
        .iter()
        .map(|t| match &w.args.share {
            Some(g) => format!("$share/{g}/{base}/{t}"),
            None => format!("{base}/{t}"),
        })
        .collect();
    let start = Instant::now();
    let end = w.args.timeout.map(|s| start + Duration::from_secs_f64(s));
    let idle = w.args.idle_timeout.map(Duration::from_secs_f64);
    let mut last_new = None::<Instant>;
    // `--count` reached: the images of the last events are still on their way
    let mut counted = None::<Instant>;
    let mut backoff = Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(10),
        Jitter::Equal,
    );
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let mut link = Link::connect(&settings, None);
        let (mut pending_subacks, mut resumed) = (usize::MAX, false);
        let error = loop {
            let now = Instant::now();
            let mut wake = now + Duration::from_secs(3600);
            if let Some(e) = end {
                wake = wake.min(e);
            }
            if let (Some(i), Some(l)) = (idle, last_new) {
                wake = wake.min(l + i);
            }
            if let Some(c) = counted {
                wake = wake.min(c + EVIDENCE_GRACE);
            }
            if now >= wake {
                return Ok(());
            }
            tokio::select! {
                ev = link.events.recv() => match ev {
                    Some(LinkEvent::Connected { session_present }) => {
                        backoff.reset();
                        tracing::info!(session_present, broker = %format!("{}:{}", settings.host, settings.port), "connected");
                        for f in &filters {
                            link.subscribe(f).await.map_err(|e| anyhow::anyhow!("subscribing to {f}: {e}"))?;
                        }
                        pending_subacks = filters.len();
                        resumed = session_present;
                    }
                    Some(LinkEvent::Message { topic, payload, .. }) => {
                        let before = w.tally.seen.len();
                        w.on_message(&topic, &payload)?;
                        for (topic, payload) in w.outbox.drain(..) {
                            if let Err(e) = link.try_publish(&topic, payload, false, true) {
                                eprintln!("warning: cannot send the clip request on {topic}: {e}");
                            }
                        }
                        if w.tally.seen.len() > before {
                            last_new = Some(Instant::now());
                            if counted.is_none()
                                && w.args.count.is_some_and(|c| w.tally.seen.len() as u64 >= c)
                            {
                                counted = Some(Instant::now());
                            }
                        }
                        let clips_due = w.requested.len() > w.fetched.len();
                        if counted.is_some() && w.tally.awaited.is_empty() && !clips_due {
                            return Ok(());
                        }
                    }
                    Some(LinkEvent::SubAck { granted }) => {
                        if !granted {
                            eprintln!("error: the broker refused a subscription (check the ACL for this user)");
                        }
                        pending_subacks = pending_subacks.saturating_sub(1);
                        if pending_subacks == 0 {
                            w.print(
                                json!({"type": "subscribed", "session_present": resumed, "filters": filters}),
                                format!("SUBSCRIBED {}:{} (session {})", settings.host, settings.port,
                                        if resumed { "resumed" } else { "new" }),
                            )?;
                        }
                    }
                    Some(LinkEvent::Closed(e)) => break e,
                    None => break "connection task ended".to_string(),
                    Some(_) => {}
                },
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
                _ = &mut ctrl_c => return Ok(()),
            }
        };
        drop(link);
        let delay = backoff.next_delay();
        eprintln!(
            "warning: MQTT connection to {}:{} failed: {error} ({}); retrying in {} ms",
            settings.host,
            settings.port,
            edge_agent::publish::link::hint(&error),
            delay.as_millis()
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut ctrl_c => return Ok(()),
        }
        if end.is_some_and(|e| Instant::now() >= e) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_two_events_wait_for_is_credited_to_both() {
        // a plate crop in a plate read and in the violation of the same vehicle: one sha, and
        // with delivery classes both events may arrive before it
        let mut t = Tally::default();
        assert!(!t.referenced("aa", "site/dev", 7));
        assert!(!t.referenced("aa", "site/dev", 9));
        assert!(!t.referenced("bb", "site/dev", 9));
        assert_eq!(
            t.arrived("aa"),
            vec![("site/dev".to_string(), 7), ("site/dev".to_string(), 9)]
        );
        t.evidence_ok.insert("aa".into());
        assert!(t.arrived("aa").is_empty(), "credited once");
        assert!(t.referenced("aa", "site/dev", 11), "already here");
        assert_eq!(t.awaited.len(), 1, "bb still missing");
    }
}
