//! Offline checks of a parsed config: everything that can be known without cameras or a network.
//!
//! Files that do not exist on this machine are warnings (the config may be written for a device);
//! files that exist but are wrong (corrupt weights, not a certificate) are errors.

use crate::anpr::config::PlatesConfig;
use crate::privacy::config::PrivacyConfig;
use crate::publish::config::MqttConfig;
use crate::runtime::config::{ExecutionProviderKind, RuntimeConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use super::diagnostic::{Diagnostic, Severity};
use super::load::{LoadedConfig, PathSeg};
use super::types::*;
use crate::api::HttpConfig;
use crate::checks::{Level, SectionProblem};
use crate::models::FileState;
use crate::source::redact_url;
use crate::spool::StorageConfig;

use PathSeg::{Index, Key};

/// Options for [`validate`].
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Skip hashing model weights (fast checks, e.g. remote config).
    pub skip_model_hashes: bool,
    /// Check only what the document says: open, read, list or look up nothing on this machine (a
    /// document from the network must not make the agent touch a file it names, issue 19).
    pub no_local_files: bool,
}

/// Ids become MQTT topic levels and file names: keep them to a safe alphabet.
fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.len() > 64 {
        Some("is longer than 64 characters")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        Some("may only contain ASCII letters, digits, '-', '_' and '.'")
    } else {
        None
    }
}

/// Runs every offline check; the result is sorted by position.
pub fn validate(loaded: &LoadedConfig, opts: &ValidateOptions) -> Vec<Diagnostic> {
    let mut v = Validator {
        loaded,
        out: Vec::new(),
        local_files: !opts.no_local_files,
    };
    let c = &loaded.config;
    v.device(&c.device);
    v.runtime(&c.runtime);
    v.models(&c.models, opts);
    v.cameras(&c.cameras);
    v.mqtt(&c.mqtt, &c.device);
    v.storage(&c.storage, c.clips_store_mb());
    v.http(&c.http);
    v.problems(&[Key("evidence")], c.evidence.check());
    v.problems(&[Key("clips")], c.clips.check());
    v.problems(&[Key("health")], c.health.check());
    v.watchlist(&c.watchlist);
    v.privacy(&c.privacy, &c.cameras);
    v.plates(&c.plates, &c.models);
    v.tracker(&c.tracker);
    v.pipeline(&c.pipeline);
    v.remote(&c.remote);
    let mut out = v.out;
    out.sort_by_key(|d| (d.line, d.col, d.severity));
    out
}

struct Validator<'a> {
    loaded: &'a LoadedConfig,
    out: Vec<Diagnostic>,
    /// Whether the files a config names may be looked at (not for documents from the network).
    local_files: bool,
}

impl Validator<'_> {
    fn error(&mut self, path: &[PathSeg<'_>], message: impl Into<String>, hint: impl Into<String>) {
        self.out.push(
            self.loaded
                .diagnostic_at(Severity::Error, path, message, hint),
        );
    }

    /// An error at `path` unless `value` lies in `range` (`key = v is outside lo..=hi`).
    fn in_range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        path: &[PathSeg<'_>],
        key: &str,
        value: T,
        range: std::ops::RangeInclusive<T>,
        hint: &str,
    ) {
        if !range.contains(&value) {
            let (lo, hi) = range.into_inner();
            self.error(
                path,
                format!("{key} = {value} is outside {lo}..={hi}"),
                hint,
            );
        }
    }

    /// An insecure link: an error, or a warning when `[mqtt] allow_insecure` gives a reason (the
    /// agent records it in the audit log at every start).
    fn insecure(&mut self, m: &MqttConfig, path: &[PathSeg<'_>], message: String, fix: &str) {
        match insecure_reason(m) {
            Some(reason) => self.warn(
                path,
                message,
                format!("accepted: allow_insecure = \"{reason}\" (audited at every start)"),
            ),
            None => self.error(
                path,
                message,
                format!("{fix}; or, on a network owned end to end, give the reason in [mqtt] allow_insecure = \"...\""),
            ),
        }
    }

    fn warn(&mut self, path: &[PathSeg<'_>], message: impl Into<String>, hint: impl Into<String>) {
        self.out.push(
            self.loaded
                .diagnostic_at(Severity::Warning, path, message, hint),
        );
    }

    fn id(&mut self, path: &[PathSeg<'_>], what: &str, id: &str) {
        if let Some(problem) = id_problem(id) {
            self.error(
                path,
                format!("{what} `{id}` {problem}"),
                "use a short id such as `cam-01`; it becomes an MQTT topic level",
            );
        }
    }

    /// A file the agent will read: absent is a warning, unreadable or wrong content an error.
    fn file(&mut self, path: &[PathSeg<'_>], file: &Path, what: &str, must_contain: Option<&str>) {
        if !self.local_files {
            return;
        }
        let resolved = self.loaded.resolve_path(file);
        if !resolved.exists() {
            self.warn(
                path,
                format!("{what} {} does not exist on this machine", resolved.display()),
                "fine if this config is for another device; `check --strict` on the device must pass",
            );
            return;
        }
        match std::fs::read(&resolved) {
            Err(e) => self.error(
                path,
                format!("{what} {} is not readable: {e}", resolved.display()),
                "fix the file permissions for the agent's user",
            ),
            Ok(bytes) => {
                if let Some(marker) = must_contain
                    && !String::from_utf8_lossy(&bytes).contains(marker)
                {
                    self.error(
                        path,
                        format!("{what} {} is not PEM (no `{marker}`)", resolved.display()),
                        "convert it to PEM, e.g. `openssl x509 -in cert.der -inform der -out cert.pem`",
                    );
                }
            }
        }
    }

    fn device(&mut self, d: &DeviceConfig) {
        self.id(&[Key("device"), Key("site_id")], "site_id", &d.site_id);
        self.id(
            &[Key("device"), Key("device_id")],
            "device_id",
            &d.device_id,
        );
        if let Some(loc) = &d.location {
            self.problems(&[Key("device"), Key("location")], loc.check());
        }
    }

    fn runtime(&mut self, r: &RuntimeConfig) {
        let at = |k| [Key("runtime"), Key(k)];
        if let Some(lib) = &r.onnxruntime
            && self.local_files
        {
            let resolved = self.loaded.resolve_path(lib);
            if !resolved.exists() {
                self.warn(&at("onnxruntime"), format!("ONNX Runtime library {} does not exist on this machine", resolved.display()), "install libonnxruntime.so.1.31.1 there, or remove the key to search ORT_DYLIB_PATH and system directories");
            }
        }
        self.problems(&[Key("runtime")], r.check());
        if let Some(dir) = &r.tensorrt.engine_cache_dir
            && r.execution_provider == ExecutionProviderKind::Tensorrt
            && self.local_files
            && !self.loaded.resolve_path(dir).is_dir()
        {
            self.warn(
                &[Key("runtime"), Key("tensorrt"), Key("engine_cache_dir")],
                format!("engine cache directory {} does not exist", dir.display()),
                "create it so engines survive restarts (building one takes minutes on a Jetson)",
            );
        }
    }

    fn tracker(&mut self, t: &crate::track::TrackerConfig) {
        if let Err(e) = t.validate() {
            self.error(
                &[Key("tracker"), Key(e.key)],
                e.to_string(),
                "see [tracker] in configs/README.md for what each key does and its default",
            );
        }
    }

    fn pipeline(&mut self, p: &PipelineConfig) {
        let at = |k| [Key("pipeline"), Key(k)];
        self.in_range(
            &at("queue_capacity"),
            "queue_capacity",
            p.queue_capacity,
            1..=64,
            "1-2 keeps latency low; every waiting frame adds a frame's processing time",
        );
        self.in_range(
            &at("plate_reads_per_frame"),
            "plate_reads_per_frame",
            p.plate_reads_per_frame,
            1..=16,
            "4 packs vehicles 2×2 into one plate-detector call",
        );
        for (key, v) in [
            ("plate_call_interval_s", p.plate_call_interval_s),
            ("plate_read_interval_s", p.plate_read_interval_s),
        ] {
            if !(0.0..=60.0).contains(&v) {
                self.error(
                    &at(key),
                    format!("{key} = {v} is not a number of seconds in 0..=60"),
                    "0.2 reads at most 5 times a second",
                );
            }
        }
        if p.plate_max_attempts == 0 {
            self.error(
                &at("plate_max_attempts"),
                "plate_max_attempts must be at least 1",
                "25 gives an unreadable plate a few seconds of tries",
            );
        }
        if !(0.0..=10_000.0).contains(&p.plate_min_vehicle_height) {
            self.error(
                &at("plate_min_vehicle_height"),
                format!(
                    "plate_min_vehicle_height = {} is not a height in pixels",
                    p.plate_min_vehicle_height
                ),
                "40 px skips vehicles too far away to read",
            );
        }
    }

    fn models(&mut self, m: &ModelsConfig, opts: &ValidateOptions) {
        if !self.local_files {
            // manifests and weights are files on this machine
            return;
        }
        let set = match self.loaded.manifests() {
            Ok(set) => set,
            Err(e) => {
                self.error(
                    &[Key("models"), Key("manifest_dir")],
                    e.to_string(),
                    "fix or remove the manifest named in the message",
                );
                return;
            }
        };
        for (i, name) in m.rights_cleared.iter().enumerate() {
            if set.get(name).is_none() {
                self.error(
                    &[Key("models"), Key("rights_cleared"), Index(i)],
                    format!("unknown model `{name}` in rights_cleared"),
                    format!("known models: {}", set.names().join(", ")),
                );
            }
        }
        let store = self.loaded.model_store();
        for (role, name) in m.roles() {
            let at = [Key("models"), Key(role)];
            let Some(manifest) = set.get(name) else {
                self.error(
                    &at,
                    format!("unknown model `{name}` for {role}"),
                    format!("known models: {}", set.names().join(", ")),
                );
                continue;
            };
            self.model_licence(&at, role, manifest, &set, m);
            if opts.skip_model_hashes {
                continue;
            }
            for (file, expected) in manifest.all_files() {
                match store.check_file(file, expected) {
                    Ok(s) => match s.state {
                        FileState::Ok => {}
                        FileState::Missing => self.warn(&at, format!("{role} `{name}`: {} is not in the model cache", s.path.display()), format!("run `edge-agent models fetch {name}` (cache: {})", store.dir().display())),
                        FileState::Mismatch { actual } => self.error(&at, format!("{role} `{name}`: {} has sha256 {actual}, expected {expected}", s.path.display()), "the file is corrupt or not this model: delete it and run `edge-agent models fetch`"),
                    },
                    Err(e) => self.error(&at, e.to_string(), "fix the cache directory permissions"),
                }
            }
        }
    }

    /// A model whose licence does not allow shipping is a warning (an error under `--strict`):
    /// the installer commissioning the box is the last person who can catch it.
    fn model_licence(
        &mut self,
        at: &[PathSeg<'_>],
        role: &str,
        manifest: &crate::models::ModelManifest,
        set: &crate::models::ManifestSet,
        models: &ModelsConfig,
    ) {
        let shipping = manifest.shipping();
        if shipping.may_ship() || models.rights_cleared.contains(&manifest.name) {
            return;
        }
        let alternatives: Vec<&str> = set
            .iter()
            .filter(|m| m.task == manifest.task && m.shipping().may_ship())
            .map(|m| m.name.as_str())
            .collect();
        let cleared = format!(
            "once this deployment has cleared its rights, name it in [models] rights_cleared = [\"{}\"]",
            manifest.name
        );
        let hint = match alternatives.is_empty() {
            true => format!(
                "no shippable {} model exists yet; {cleared}",
                manifest.task.as_str()
            ),
            false => format!(
                "models of this task that may ship: {} (`edge-agent models cards` compares them); {cleared}",
                alternatives.join(", ")
            ),
        };
        let which = match self.loaded.span_of(at) {
            Some(_) => "",
            None => "the default ",
        };
        self.warn(
            at,
            format!(
                "{which}{role} `{}` is licensed {} ({}): it may not be shipped in a product",
                manifest.name,
                manifest.licence,
                shipping.reason()
            ),
            hint,
        );
    }

    fn cameras(&mut self, cams: &[CameraConfig]) {
        if cams.is_empty() {
            self.warn(
                &[Key("cameras")],
                "no [[cameras]] configured",
                "add a [[cameras]] section with id and url",
            );
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, cam) in cams.iter().enumerate() {
            let at = |k| [Key("cameras"), Index(i), Key(k)];
            self.id(&at("id"), "camera id", &cam.id);
            if let Some(first) = seen.insert(cam.id.as_str(), i) {
                let line = self
                    .loaded
                    .span_of(&[Key("cameras"), Index(first), Key("id")])
                    .map_or(0, |s| self.loaded.source.line_col(s.start).0);
                self.error(
                    &at("id"),
                    format!(
                        "duplicate camera id `{}` (first used on line {line})",
                        cam.id
                    ),
                    "give every camera on a device its own id",
                );
            }
            if !(cam.target_fps > 0.0 && cam.target_fps <= 60.0) {
                self.error(
                    &at("target_fps"),
                    format!("target_fps = {} is outside (0, 60]", cam.target_fps),
                    "5 is enough for plates and rules; 10-15 for speed estimates",
                );
            }
            self.camera_url(&at("url"), &cam.url);
            if let Some(main) = &cam.evidence_url {
                self.camera_url(&at("evidence_url"), main);
                if main == &cam.url {
                    self.warn(
                        &at("evidence_url"),
                        "evidence_url is the detection url: the same stream decoded twice",
                        "name the camera's main (high-resolution) stream, or leave evidence_url out",
                    );
                }
            }
            if !(10..=2000).contains(&cam.evidence_match_ms) {
                self.error(
                    &at("evidence_match_ms"),
                    format!("evidence_match_ms = {} is outside 10..=2000", cam.evidence_match_ms),
                    "250 matches frames of two streams of one camera; more lets a moving vehicle shift between them",
                );
            }
            if let Some(loc) = &cam.location {
                self.problems(&at("location"), loc.check());
            }
            if let Some(h) = cam.heading_deg
                && !(h.is_finite() && (0.0..360.0).contains(&h))
            {
                self.error(
                    &at("heading_deg"),
                    format!("heading_deg = {h} is outside 0..360"),
                    "degrees clockwise from true north: 0 north, 90 east",
                );
            }
            self.camera_decoder(i, cam);
            self.camera_rules(i, cam);
        }
    }

    /// `decoder` and `gst_decoder`: the GStreamer path must be built in; its element must be a
    /// name, and (with the feature) is looked up on this machine.
    fn camera_decoder(&mut self, i: usize, cam: &CameraConfig) {
        let at = |k| [Key("cameras"), Index(i), Key(k)];
        if cam.decoder == DecoderKind::Gstreamer && !cfg!(feature = "gstreamer") {
            self.error(
                &at("decoder"),
                "decoder = \"gstreamer\" but this binary was built without the `gstreamer` feature",
                "use an edge-agent built with `--features gstreamer` (needs libgstreamer1.0-dev and libgstreamer-plugins-base1.0-dev), or decoder = \"builtin\" for H.264 cameras",
            );
        }
        let Some(element) = &cam.gst_decoder else {
            return;
        };
        if cam.decoder != DecoderKind::Gstreamer {
            self.warn(
                &at("gst_decoder"),
                format!("gst_decoder = \"{element}\" is set but decoder is not \"gstreamer\""),
                "set decoder = \"gstreamer\" to use it, or remove gst_decoder",
            );
            return;
        }
        if !crate::source::is_element_name(element) {
            self.error(
                &at("gst_decoder"),
                format!("gst_decoder = \"{element}\" is not a GStreamer element name"),
                "give one element name such as \"nvv4l2decoder\" or \"avdec_h265\" (letters, digits, '_' and '-'), or leave it out to let decodebin choose",
            );
        } else {
            #[cfg(feature = "gstreamer")]
            if self.local_files
                && let Some(problem) = crate::source::gstreamer_element_problem(element)
            {
                // Like a missing file: the config may be written for another device (a Jetson).
                self.warn(
                    &at("gst_decoder"),
                    problem,
                    "check on the device with `gst-inspect-1.0` that the element exists",
                );
            }
        }
    }

    /// Zones, lines, rules and calibration: the checks live with the engine
    /// ([`crate::rules::check_camera`]) so both refuse the same configs.
    fn camera_rules(&mut self, i: usize, cam: &CameraConfig) {
        for p in crate::rules::check_camera(&cam.geometry()) {
            let mut path = vec![Key("cameras"), Index(i)];
            path.extend(p.at.iter().map(|a| match *a {
                crate::rules::At::Key(k) => Key(k),
                crate::rules::At::Index(n) => Index(n),
            }));
            self.error(&path, p.message, p.hint);
        }
    }

    fn camera_url(&mut self, at: &[PathSeg<'_>], raw: &str) {
        let hint =
            "use rtsp://[user:pass@]host[:port]/path, v4l2:///dev/videoN, or a file or folder path";
        match crate::source::CameraUrl::parse(raw) {
            Err(e) => self.error(at, e.to_string(), hint),
            Ok(crate::source::CameraUrl::Local(path)) => {
                let p = self.loaded.resolve_path(&path);
                if self.local_files && !p.exists() {
                    self.warn(
                        at,
                        format!(
                            "video source {} does not exist on this machine",
                            p.display()
                        ),
                        "check the path on the device",
                    );
                }
            }
            Ok(_) => {}
        }
    }

    fn mqtt(&mut self, m: &MqttConfig, d: &DeviceConfig) {
        let at = |k| [Key("mqtt"), Key(k)];
        let mut tls_scheme = None;
        if let Some(broker) = &m.broker {
            match super::BrokerUrl::parse(broker) {
                Err(problem) => self.error(
                    &at("broker"),
                    format!("broker `{}`: {problem}", redact_url(broker)),
                    "use mqtt://host:1883 or mqtts://host:8883",
                ),
                Ok(b) => {
                    tls_scheme = Some(b.tls);
                    if !b.tls && !b.is_this_machine() {
                        self.insecure(
                            m,
                            &at("broker"),
                            format!(
                                "broker `{}` is plain MQTT to another machine: plate reads, evidence and the password cross the network in clear",
                                redact_url(broker)
                            ),
                            "use mqtts:// with [mqtt.tls]",
                        );
                    }
                }
            }
        } else if !(16..=1 << 20).contains(&m.embedded_log_kb) {
            self.error(
                &at("embedded_log_kb"),
                format!("embedded_log_kb = {} is out of range", m.embedded_log_kb),
                "use 16 to 1048576 (KiB per subscribed topic filter; 16 is the default)",
            );
        }
        if m.broker.is_none() {
            match m.embedded_listen.parse::<SocketAddr>() {
                Err(_) => self.error(
                    &at("embedded_listen"),
                    format!(
                        "embedded_listen `{}` is not an address:port",
                        m.embedded_listen
                    ),
                    "e.g. 127.0.0.1:1883",
                ),
                // rumqttd has no authentication or ACLs: on the network it would serve every event
                // and evidence image to anyone and take their config/set and watchlist/set
                Ok(addr) if !addr.ip().is_loopback() => self.insecure(
                    m,
                    &at("embedded_listen"),
                    format!(
                        "embedded_listen `{addr}` opens the embedded broker, which has no authentication, to the network"
                    ),
                    "keep it on 127.0.0.1 (the default) and bridge a site broker with TLS and ACLs (mosquitto) to reach it from elsewhere",
                ),
                Ok(_) => {}
            }
        }
        match (tls_scheme, &m.tls) {
            (Some(true), None) => self.error(
                &at("broker"),
                "mqtts:// broker without [mqtt.tls]",
                "add [mqtt.tls] with ca_file (and client_cert_file/client_key_file for mutual TLS)",
            ),
            (Some(false), Some(_)) => self.error(
                &at("tls"),
                "[mqtt.tls] is set but the broker URL is plain mqtt://",
                "use mqtts:// so the link is encrypted",
            ),
            _ => {}
        }
        if let Some(tls) = &m.tls {
            let tat = |k| [Key("mqtt"), Key("tls"), Key(k)];
            self.file(
                &tat("ca_file"),
                &tls.ca_file,
                "CA certificate",
                Some("BEGIN CERTIFICATE"),
            );
            match (&tls.client_cert_file, &tls.client_key_file) {
                (Some(c), Some(k)) => {
                    self.file(
                        &tat("client_cert_file"),
                        c,
                        "client certificate",
                        Some("BEGIN CERTIFICATE"),
                    );
                    self.file(
                        &tat("client_key_file"),
                        k,
                        "client key",
                        Some("PRIVATE KEY"),
                    );
                }
                (Some(_), None) => self.error(
                    &tat("client_cert_file"),
                    "client_cert_file without client_key_file",
                    "add the certificate's private key as client_key_file",
                ),
                (None, Some(_)) => self.error(
                    &tat("client_key_file"),
                    "client_key_file without client_cert_file",
                    "add the client certificate as client_cert_file",
                ),
                (None, None) => {}
            }
        }
        if let Some(pw) = &m.password_file {
            if m.username.is_none() {
                self.error(
                    &at("password_file"),
                    "password_file without username",
                    "add username",
                );
            }
            self.file(&at("password_file"), pw, "password file", None);
        }
        let prefix = &m.topic_prefix;
        if prefix.is_empty()
            || prefix.starts_with('/')
            || prefix.ends_with('/')
            || prefix.contains(['+', '#'])
            || prefix.contains("//")
        {
            self.error(
                &at("topic_prefix"),
                format!("topic_prefix `{prefix}` is not a valid topic prefix"),
                "use levels without wildcards or empty levels, e.g. `tayninh/traffic`",
            );
        }
        if let Some(id) = &m.client_id {
            self.id(&at("client_id"), "client_id", id);
        } else if d.device_id.len() > 23 {
            self.warn(&at("client_id"), "device_id is longer than 23 characters, the MQTT 3.1.1 client-id limit some brokers enforce", "set a shorter mqtt.client_id");
        }
        self.in_range(
            &at("keep_alive_s"),
            "keep_alive_s",
            m.keep_alive_s,
            5..=3600,
            "30 s suits 4G links",
        );
        self.in_range(
            &at("reconnect_min_ms"),
            "reconnect_min_ms",
            m.reconnect_min_ms,
            10..=60_000,
            "500 ms is a good first delay",
        );
        if m.reconnect_max_s == 0 || m.reconnect_max_s * 1000 < m.reconnect_min_ms {
            self.error(
                &at("reconnect_max_s"),
                format!(
                    "reconnect_max_s = {} is below reconnect_min_ms",
                    m.reconnect_max_s
                ),
                "use at least 1 and no less than the first delay; 30 s suits 4G links",
            );
        }
        self.in_range(
            &at("health_interval_s"),
            "health_interval_s",
            m.health_interval_s,
            1..=86_400,
            "30 s is usual",
        );
        for (key, mb) in [
            ("uplink_mb_per_hour", m.uplink_mb_per_hour),
            ("uplink_mb_per_day", m.uplink_mb_per_day),
        ] {
            if !(mb.is_finite() && mb >= 0.0) {
                self.error(
                    &at(key),
                    format!("{key} = {mb} is not a number of MB (0 = no limit)"),
                    "e.g. 50 per hour and 500 per day on a metered 4G SIM",
                );
            }
        }
        if m.window_kb == 0 {
            self.error(
                &at("window_kb"),
                "window_kb must be at least 1",
                "4096 by default; about 2 s of the uplink's speed on a thin link",
            );
        }
        if m.max_inflight == 0 {
            self.error(
                &at("max_inflight"),
                "max_inflight must be at least 1",
                "100 is usual; lower it for brokers with a small receive maximum",
            );
        }
    }

    /// What a stage found in its own section (or a table inside one, at `at`), pinned at each
    /// problem's key.
    fn problems(&mut self, at: &[PathSeg<'_>], problems: Vec<SectionProblem>) {
        for p in problems {
            let mut path = at.to_vec();
            path.push(Key(p.key));
            match p.level {
                Level::Error => self.error(&path, p.message, p.hint),
                Level::Warning => self.warn(&path, p.message, p.hint),
            }
        }
    }

    fn plates(&mut self, p: &PlatesConfig, m: &ModelsConfig) {
        self.problems(&[Key("plates")], p.check());
        if m.plate_ocr.is_empty() || !self.local_files {
            return;
        }
        let Ok(set) = self.loaded.manifests() else {
            return;
        };
        let at = |k| [Key("plates"), Key(k)];
        let rec = set.get(&p.recognizer);
        if p.readers != crate::anpr::Readers::Slot {
            match rec {
                None => {
                    self.error(
                        &at("recognizer"),
                        format!("unknown model `{}` for the text recogniser", p.recognizer),
                        format!("known models: {}", set.names().join(", ")),
                    );
                    return;
                }
                Some(rec) => self.model_licence(&at("recognizer"), "recognizer", rec, &set, m),
            }
        }
        let second = m.plate_ocr_second().and_then(|n| set.get(n));
        let slot_spec = |m: &crate::models::ModelManifest| {
            m.decoder
                .slot_layout()
                .map(|(alphabet, pad, _)| (alphabet.to_string(), pad))
        };
        if let (Some(second), Some(ocr)) = (second, set.get(&m.plate_ocr)) {
            let ours = slot_spec(ocr);
            if slot_spec(second).is_none() || (ours.is_some() && ours != slot_spec(second)) {
                self.error(
                    &[Key("models"), Key("plate_ocr_second")],
                    format!(
                        "`{}` cannot read with `{}`: the second plate OCR must be a slot OCR with the same alphabet and pad",
                        second.name, ocr.name
                    ),
                    "name another slot OCR, or \"\" to read with plate_ocr alone",
                );
                return;
            }
        }
        if p.min_confidence.is_none()
            && let Some(ocr) = set.get(&m.plate_ocr)
        {
            self.plates_trust(p, ocr, second, rec);
        }
    }

    /// Reads trusted from an uncalibrated threshold: a warning, since `low_confidence` then says
    /// nothing about how often a trusted read is right.
    fn plates_trust(
        &mut self,
        p: &PlatesConfig,
        ocr: &crate::models::ModelManifest,
        second: Option<&crate::models::ModelManifest>,
        rec: Option<&crate::models::ModelManifest>,
    ) {
        let t = crate::anpr::trust_threshold(&p.reader_options(), ocr, second, rec);
        if let crate::anpr::TrustSource::Uncalibrated { model } = &t.source {
            self.warn(
                &[Key("plates"), Key("min_confidence")],
                format!(
                    "`{model}` has no calibrated trust threshold for readers = \"{}\": reads are trusted from confidence {}, which says nothing of how often they are right",
                    p.readers.as_str(),
                    t.min_confidence
                ),
                match second.filter(|_| p.readers != crate::anpr::Readers::Ppocr) {
                    Some(second) => format!(
                        "measure it on a calibration set that is not your validation footage (`edge-agent plates --report DIR --ocr-model {} --ocr-second {}`) and add [trust.with.{}] to `{}`'s manifest, set [models] plate_ocr_second = \"\" to read with plate_ocr alone, or set [plates] min_confidence",
                        ocr.name, second.name, second.name, ocr.name
                    ),
                    None => format!(
                        "measure it on a calibration set that is not your validation footage (`edge-agent plates --report DIR --ocr-model {}`) and add [trust] to the model's manifest, or set [plates] min_confidence",
                        ocr.name
                    ),
                },
            );
        }
    }

    fn storage(&mut self, s: &StorageConfig, clips_mb: u64) {
        self.problems(&[Key("storage")], s.check());
        if self.local_files {
            self.storage_fits(s, clips_mb);
        }
    }

    /// The whole storage budget against the free space of the spool's filesystem (plus what the
    /// spool and audit log already hold there).
    fn storage_fits(&mut self, s: &StorageConfig, clips_mb: u64) {
        let dir = self.loaded.resolve_path(&s.spool_dir);
        let Some(existing) = dir.ancestors().find(|d| d.is_dir()) else {
            return;
        };
        let Ok(free) = crate::spool::free_bytes(existing) else {
            return;
        };
        let held: u64 = std::fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(|e| e.ok()?.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        let mib = |b: u64| b / (1 << 20);
        let budget = s.max_size_mb + 2 * s.audit_max_mb + s.min_free_mb + clips_mb;
        let available = mib(free + held);
        if available < budget {
            self.warn(
                &[Key("storage"), Key("max_size_mb")],
                format!(
                    "the filesystem of {} has {available} MiB for the agent, less than the storage budget of {budget} MiB (max_size_mb {} + 2 × audit_max_mb {} + min_free_mb {} + [clips] store_mb {clips_mb}): the spool will stop at min_free_mb free and drop the oldest undelivered data before reaching its bound",
                    dir.display(),
                    s.max_size_mb,
                    s.audit_max_mb,
                    s.min_free_mb
                ),
                format!(
                    "lower max_size_mb to at most {} (or [clips] store_mb), or move spool_dir to a larger disk",
                    available.saturating_sub(2 * s.audit_max_mb + s.min_free_mb + clips_mb)
                ),
            );
        }
    }

    fn http(&mut self, h: &HttpConfig) {
        self.problems(&[Key("http")], h.check());
        if let (true, Some(t)) = (h.enabled, &h.token_file) {
            self.file(&[Key("http"), Key("token_file")], t, "token file", None);
        }
    }

    /// Turning blurring off needs a reason; hashing needs a usable key.
    fn privacy(&mut self, p: &PrivacyConfig, cams: &[CameraConfig]) {
        for (i, cam) in cams.iter().enumerate() {
            let reason = cam.privacy.reason.as_deref().map(str::trim).unwrap_or("");
            if !cam.privacy.blur_people && reason.is_empty() {
                self.error(
                    &[Key("cameras"), Index(i), Key("privacy"), Key("blur_people")],
                    format!(
                        "camera `{}` turns off pixelation of people without a reason",
                        cam.id
                    ),
                    "add `reason = \"...\"` to [cameras.privacy] (it is logged and audited), or remove blur_people = false",
                );
            }
        }
        let at = |k| [Key("privacy"), Key(k)];
        match (&p.plate_key_file, p.hash_plates) {
            (None, true) => self.error(
                &at("hash_plates"),
                "hash_plates = true needs plate_key_file",
                "point plate_key_file at a file holding the site's secret key (e.g. `head -c 32 /dev/urandom > site.key`)",
            ),
            (Some(_), _) if !self.local_files => {}
            (Some(file), _) => {
                let resolved = self.loaded.resolve_path(file);
                match std::fs::read(&resolved) {
                    Ok(key) if crate::privacy::key_from_file_bytes(&key).len() < crate::privacy::MIN_KEY_BYTES => self.error(
                        &at("plate_key_file"),
                        format!(
                            "plate key {} is shorter than {} bytes",
                            resolved.display(),
                            crate::privacy::MIN_KEY_BYTES
                        ),
                        "use a random key, e.g. `head -c 32 /dev/urandom > site.key`",
                    ),
                    Ok(_) => {}
                    Err(_) => self.file(&at("plate_key_file"), file, "plate key", None),
                }
            }
            (None, false) => {}
        }
    }

    /// Centre keys are Ed25519 public keys in hex; with none, remote documents are all refused.
    fn remote(&mut self, r: &crate::config::RemoteConfig) {
        for (i, key) in r.centre_keys.iter().enumerate() {
            if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.error(
                    &[Key("remote"), Key("centre_keys"), Index(i)],
                    format!("centre key {} is not 64 hex digits", i + 1),
                    "paste the public key `edge-agent sign-remote --key centre.key --public` prints",
                );
            }
        }
        if r.enabled && r.centre_keys.is_empty() && self.loaded.config.mqtt.broker.is_some() {
            self.warn(
                &[Key("remote")],
                "no [remote].centre_keys: config/set and watchlist/set are refused until a centre key is pinned",
                "pin the centre's public key, or set [remote] enabled = false",
            );
        }
    }

    /// A watchlist file that exists must parse (its own line is in the message).
    fn watchlist(&mut self, w: &WatchlistConfig) {
        let Some(file) = &w.file else { return };
        if !self.local_files {
            return;
        }
        let at = [Key("watchlist"), Key("file")];
        let resolved = self.loaded.resolve_path(file);
        if !resolved.exists() {
            self.file(&at, file, "watchlist", None);
            return;
        }
        if let Err(e) = crate::watchlist::Watchlist::load(&resolved) {
            self.error(
                &at,
                e.to_string(),
                "one plate per line, optional `# label`; see configs/README.md",
            );
        }
    }
}

/// The reason given in `[mqtt] allow_insecure`, when not blank.
fn insecure_reason(m: &MqttConfig) -> Option<&str> {
    m.allow_insecure
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
}

/// The insecure links a config asks for, in words: a plain `mqtt://` broker on another machine, an
/// embedded broker beyond loopback. The agent records each with `allow_insecure`'s reason in the
/// audit log at start (`check` refuses them without one).
pub fn insecure_links(m: &MqttConfig) -> Vec<String> {
    let mut out = Vec::new();
    match &m.broker {
        Some(b) => {
            if let Ok(u) = super::BrokerUrl::parse(b)
                && !u.tls
                && !u.is_this_machine()
            {
                out.push(format!("plain MQTT to {}", redact_url(b)));
            }
        }
        None => {
            if let Ok(addr) = m.embedded_listen.parse::<SocketAddr>()
                && !addr.ip().is_loopback()
            {
                out.push(format!("embedded broker without authentication on {addr}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second plate OCR is a model role only when it reads with a first one that it is not.
    #[test]
    fn the_second_plate_ocr_is_a_role_only_beside_another_ocr() {
        let roles = |models: &str| {
            let text = format!("[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[models]\n{models}");
            let loaded = crate::config::parse_str(Path::new("m.toml"), text).unwrap();
            let m = &loaded.config.models;
            let roles: Vec<String> = m.roles().iter().map(|(r, n)| format!("{r}={n}")).collect();
            (roles, m.plate_ocr_second().map(str::to_string))
        };
        let (all, second) = roles("");
        assert_eq!(
            second.as_deref(),
            Some(crate::anpr::DEFAULT_PLATE_OCR_SECOND)
        );
        assert!(
            all.contains(&format!(
                "plate_ocr_second={}",
                crate::anpr::DEFAULT_PLATE_OCR_SECOND
            )),
            "{all:?}"
        );
        for alone in [
            "plate_ocr_second = \"\"\n",
            "plate_ocr = \"vn_plate_ocr_ea_ctc_10x37_64x128\"\n",
            "plate_ocr = \"\"\n",
        ] {
            let (all, second) = roles(alone);
            assert_eq!(second, None, "{alone}");
            assert!(
                !all.iter().any(|r| r.starts_with("plate_ocr_second")),
                "{alone}: {all:?}"
            );
        }
    }

    #[test]
    fn health_thresholds_are_checked_with_their_place() {
        let text = "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[health]\ndefocus_ratio = 0.8\nraise_checks = 0\n";
        let loaded = crate::config::parse_str(Path::new("h.toml"), text.into()).unwrap();
        let diags = validate(&loaded, &ValidateOptions::default());
        let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter()
                .any(|d| d.contains("h.toml:5:17") && d.contains("defocus_clear_ratio")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|d| d.contains("h.toml:6") && d.contains("raise_checks")),
            "{text:?}"
        );
        let good =
            "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[health]\ncheck_interval_s = 2.0\n";
        let loaded = crate::config::parse_str(Path::new("h.toml"), good.into()).unwrap();
        assert!(
            validate(&loaded, &ValidateOptions::default())
                .iter()
                .all(|d| !d.to_string().contains("[health]") && !d.to_string().contains("health.")),
        );
    }

    /// Each location problem is pinned to its key; a swapped latitude and longitude is said, and a
    /// place outside Vietnam is a warning (it may be a test bench abroad), not an error.
    #[test]
    fn a_location_is_checked_at_its_keys_and_a_camera_takes_its_own() {
        let text = r#"[device]
site_id = "s"
device_id = "d"
location = { lat = 106.35, lon = 11.13, address = "QL22 km 12" }

[[cameras]]
id = "c1"
url = "rtsp://h/x"
heading_deg = 400

[[cameras]]
id = "c2"
url = "rtsp://h/y"
location = { lat = 48.85, lon = 2.35, heading_deg = 90 }
"#;
        let loaded = crate::config::parse_str(Path::new("l.toml"), text.into()).unwrap();
        let diags: Vec<String> = validate(&loaded, &ValidateOptions::default())
            .iter()
            .map(|d| d.to_string())
            .collect();
        let has =
            |at: &str, needle: &str| diags.iter().any(|d| d.contains(at) && d.contains(needle));
        assert!(
            has("l.toml:4:20: error", "lat = 106.35 is not a latitude"),
            "{diags:?}"
        );
        assert!(has("l.toml:9:15: error", "heading_deg = 400"), "{diags:?}");
        assert!(has("l.toml:14:20: warning", "outside Vietnam"), "{diags:?}");

        let text = "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\nlocation = { lat = 11.13, lon = 106.35, heading_deg = 10 }\n\
                    [[cameras]]\nid = \"c1\"\nurl = \"x\"\nheading_deg = 200\n\
                    [[cameras]]\nid = \"c2\"\nurl = \"y\"\n";
        let loaded = crate::config::parse_str(Path::new("l.toml"), text.into()).unwrap();
        assert!(
            validate(&loaded, &ValidateOptions::default())
                .iter()
                .all(|d| !d.to_string().contains("location") && !d.to_string().contains("heading")),
        );
        let locations = loaded.config.camera_locations();
        assert_eq!(
            locations["c1"].heading_deg,
            Some(200.0),
            "the camera's heading"
        );
        assert_eq!(locations["c2"].heading_deg, Some(10.0), "the device's");
        assert_eq!(locations["c2"].lat, 11.13);
    }

    fn diagnostics(mqtt: &str) -> Vec<String> {
        let text = format!("[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[mqtt]\n{mqtt}");
        let loaded = crate::config::parse_str(Path::new("b.toml"), text).unwrap();
        validate(&loaded, &ValidateOptions::default())
            .iter()
            .filter(|d| d.to_string().contains("b.toml:5"))
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn plain_mqtt_leaves_this_machine_only_when_allowed() {
        let e = diagnostics("broker = \"mqtt://user:pw@centre.example.vn:1883\"\n");
        assert!(
            e.iter()
                .any(|d| d.contains("error") && d.contains("in clear")),
            "{e:?}"
        );
        assert!(
            e.iter().all(|d| !d.contains(":pw@")),
            "password printed: {e:?}"
        );
        let w = diagnostics(
            "broker = \"mqtt://10.1.2.3:1883\"\nallow_insecure = \"closed fibre ring to the IOC\"\n",
        );
        assert!(
            w.iter()
                .any(|d| d.contains("warning") && d.contains("in clear")),
            "{w:?}"
        );
        assert!(w.iter().all(|d| !d.contains("error")), "{w:?}");
        for local in [
            "mqtt://127.0.0.1:1883",
            "mqtt://localhost:1883",
            "mqtt://[::1]:1883",
        ] {
            let ok = diagnostics(&format!("broker = \"{local}\"\n"));
            assert!(ok.is_empty(), "{local}: {ok:?}");
        }
    }

    #[test]
    fn centre_keys_must_be_keys_and_their_absence_is_said() {
        let check = |remote: &str| -> Vec<String> {
            let text = format!(
                "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[mqtt]\nbroker = \"mqtt://127.0.0.1:1883\"\n[remote]\n{remote}"
            );
            let loaded = crate::config::parse_str(Path::new("r.toml"), text).unwrap();
            validate(&loaded, &ValidateOptions::default())
                .iter()
                .map(|d| d.to_string())
                .filter(|d| d.contains("centre"))
                .collect()
        };
        let bad = check("centre_keys = [\"not-a-key\"]\n");
        assert!(
            bad.iter()
                .any(|d| d.contains("r.toml:7") && d.contains("error") && d.contains("64 hex")),
            "{bad:?}"
        );
        let none = check("enabled = true\n");
        assert!(
            none.iter()
                .any(|d| d.contains("warning") && d.contains("refused until a centre key")),
            "{none:?}"
        );
        assert!(check(&format!("centre_keys = [\"{}\"]\n", "ab".repeat(32))).is_empty());
        assert!(check("enabled = false\n").is_empty());
    }

    #[test]
    fn a_camera_url_that_does_not_parse_keeps_its_password_hidden() {
        let text = "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://admin:hunter2@[10.0.0.5/live\"\n";
        let loaded = crate::config::parse_str(Path::new("c.toml"), text.into()).unwrap();
        let out: Vec<String> = validate(&loaded, &ValidateOptions::default())
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert!(out.iter().any(|d| d.contains("not a valid URL")), "{out:?}");
        assert!(out.iter().all(|d| !d.contains("hunter2")), "{out:?}");
    }

    #[test]
    fn the_embedded_broker_stays_on_loopback() {
        let e = diagnostics("embedded_listen = \"0.0.0.0:1883\"\n");
        assert!(
            e.iter()
                .any(|d| d.contains("error") && d.contains("no authentication")),
            "{e:?}"
        );
        assert!(diagnostics("embedded_listen = \"127.0.0.1:1883\"\n").is_empty());
        assert!(diagnostics("embedded_listen = \"[::1]:1883\"\n").is_empty());
        // a blank reason is no reason
        let blank = diagnostics("embedded_listen = \"0.0.0.0:1883\"\nallow_insecure = \"  \"\n");
        assert!(blank.iter().any(|d| d.contains("error")), "{blank:?}");
        let ok =
            diagnostics("embedded_listen = \"0.0.0.0:1883\"\nallow_insecure = \"bench network\"\n");
        assert!(ok.iter().all(|d| d.contains("warning")), "{ok:?}");
        let m: MqttConfig = toml::from_str("embedded_listen = \"0.0.0.0:1883\"\n").unwrap();
        assert_eq!(
            insecure_links(&m),
            ["embedded broker without authentication on 0.0.0.0:1883"]
        );
        assert!(insecure_links(&MqttConfig::default()).is_empty());
    }
}
