//! The remote-config state machine: one request in, one `config/state` out. What "apply" means to
//! the running pipeline is behind [`Applier`], so this part is tested without cameras.

use chrono::{DateTime, Utc};

use crate::config::LoadedConfig;

use super::Inbound;
use super::payload::{ConfigPayload, EvidencePayload, WatchlistPayload};
use super::state::{ConfigState, Problem, Request, Status, WatchlistState};
use super::store::{Persisted, RemoteStore};
use super::trust::{Document, Trust};
use super::validate::{check_config, check_watchlist, watchlist_hash};
use crate::watchlist::Watchlist;

/// Puts a validated change into effect.
pub trait Applier: Send {
    /// Replaces `old` by `new` in the running agent, all or nothing: on `Err(reason)` the agent
    /// still runs `old` exactly. On success, returns one line per change made.
    fn apply_config(
        &mut self,
        old: &LoadedConfig,
        new: &LoadedConfig,
    ) -> Result<Vec<String>, String>;
    /// Replaces the watchlist; on `Err(reason)` the previous list stays in force.
    fn apply_watchlist(&mut self, list: Watchlist) -> Result<(), String>;
}

/// Where audit records go: `(actor, action, details)`.
pub type AuditHook = Box<dyn FnMut(&str, &str, serde_json::Value) + Send>;

/// The config to start with, and the stored watchlist.
pub struct Startup {
    pub loaded: LoadedConfig,
    /// `file` when the config on disk is used.
    pub version: String,
    pub applied_at: DateTime<Utc>,
    /// Hash of the config file on disk.
    pub base_hash: String,
    /// The stored remote watchlist, when it replaced the list that is configured now.
    pub watchlist: Option<(Watchlist, Persisted)>,
}

/// Chooses the config to start with: the stored remote config when it was applied over the file
/// that is on disk now, else the file (an installer's edit wins over an older remote change).
/// The same for the watchlist: `file_list_hash` is the hash of the configured list (`[watchlist]
/// file`, or the empty list).
pub fn startup(disk: LoadedConfig, file_list_hash: &str, store: &RemoteStore) -> Startup {
    let base_hash = disk.hash();
    let now = Utc::now();
    let watchlist = match store.load_watchlist() {
        Ok(Some((_, meta))) if meta.base_hash.as_deref() != Some(file_list_hash) => {
            tracing::info!(remote_version = %meta.version, "the configured watchlist changed since the remote one was set; the configured one wins");
            None
        }
        Ok(Some((text, meta))) => {
            let p = WatchlistPayload {
                version: meta.version.clone(),
                watchlist: text,
                actor: None,
                signed: None,
            };
            match check_watchlist(&p) {
                Ok(list) => Some((list, meta)),
                Err(e) => {
                    tracing::warn!(problems = ?e, "stored watchlist is not valid; ignored");
                    None
                }
            }
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stored watchlist; ignored");
            None
        }
    };
    let from_file = |disk: LoadedConfig, watchlist| Startup {
        loaded: disk,
        version: "file".into(),
        applied_at: now,
        base_hash: base_hash.clone(),
        watchlist,
    };
    let (text, meta) = match store.load_config() {
        Ok(Some(stored)) => stored,
        Ok(None) => return from_file(disk, watchlist),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the stored remote config; using the file");
            return from_file(disk, watchlist);
        }
    };
    if meta.base_hash.as_deref() != Some(base_hash.as_str()) {
        tracing::info!(
            remote_version = %meta.version,
            "the config file changed since the remote config was applied; the file wins"
        );
        return from_file(disk, watchlist);
    }
    let payload = ConfigPayload {
        version: meta.version.clone(),
        toml: text,
        actor: None,
        signed: None,
    };
    match check_config(&payload, &disk) {
        Ok(acc) => {
            tracing::info!(version = %meta.version, hash = %acc.hash, "starting with the stored remote config");
            Startup {
                loaded: acc.loaded,
                version: meta.version,
                applied_at: meta.applied_at,
                base_hash,
                watchlist,
            }
        }
        Err(problems) => {
            tracing::warn!(
                ?problems,
                "the stored remote config no longer validates; using the file"
            );
            from_file(disk, watchlist)
        }
    }
}

/// Handles `config/set` and `watchlist/set` for a running agent.
pub struct RemoteAgent {
    running: LoadedConfig,
    version: String,
    applied_at: DateTime<Utc>,
    base_hash: String,
    /// Hash of the configured watchlist the remote one replaces.
    list_base_hash: String,
    watchlist: Option<WatchlistState>,
    store: RemoteStore,
    applier: Box<dyn Applier>,
    audit: Option<AuditHook>,
    last: ConfigState,
    /// The pinned centre keys and the last accepted numbers.
    trust: Trust,
}

fn audit_details(
    version: Option<&str>,
    hash: Option<&str>,
    errors: &[Problem],
) -> serde_json::Value {
    serde_json::json!({
        "version": version,
        "hash": hash,
        "errors": errors.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    })
}

impl RemoteAgent {
    /// The agent runs `startup.loaded` (and its watchlist, already applied by the caller).
    /// `file_list_hash` as for [`startup`].
    pub fn new(
        startup: Startup,
        file_list_hash: &str,
        store: RemoteStore,
        applier: Box<dyn Applier>,
    ) -> Self {
        let watchlist = startup
            .watchlist
            .as_ref()
            .map(|(list, meta)| WatchlistState {
                version: meta.version.clone(),
                hash: list.version().to_string(),
                entries: list.len(),
            });
        let remote = &startup.loaded.config.remote;
        let device = &startup.loaded.config.device;
        let trust = Trust::new(
            &remote.centre_keys,
            &device.site_id,
            &device.device_id,
            store.dir(),
        );
        let mut agent = RemoteAgent {
            version: startup.version,
            applied_at: startup.applied_at,
            base_hash: startup.base_hash,
            list_base_hash: file_list_hash.to_string(),
            running: startup.loaded,
            watchlist,
            store,
            applier,
            audit: None,
            last: placeholder_state(),
            trust,
        };
        agent.last = agent.state(Status::Applied, None, Vec::new(), Vec::new(), Vec::new());
        agent
    }

    /// Records every apply, rejection and rollback through `hook`.
    pub fn with_audit(mut self, hook: AuditHook) -> Self {
        self.audit = Some(hook);
        self
    }

    /// The config in force.
    pub fn running(&self) -> &LoadedConfig {
        &self.running
    }

    /// The latest state message.
    pub fn current(&self) -> &ConfigState {
        &self.last
    }

    fn state(
        &self,
        status: Status,
        request: Option<Request>,
        errors: Vec<Problem>,
        warnings: Vec<Problem>,
        changes: Vec<String>,
    ) -> ConfigState {
        let d = &self.running.config.device;
        ConfigState {
            site_id: d.site_id.clone(),
            device_id: d.device_id.clone(),
            version: self.version.clone(),
            config_hash: self.running.hash(),
            applied_at: self.applied_at,
            status,
            request,
            errors,
            warnings,
            changes,
            watchlist: self.watchlist.clone(),
        }
    }

    /// Records `action` by `actor`: the signing centre key (`key:…`), or `mqtt` for a document
    /// that was not admitted. The sender's own name in the payload is only a claim and goes into
    /// the details as `claimed_actor`, never as the record's actor.
    fn audit(
        &mut self,
        actor: &str,
        claimed: Option<&str>,
        action: &str,
        mut details: serde_json::Value,
    ) {
        if let (Some(name), Some(map)) = (claimed, details.as_object_mut()) {
            map.insert("claimed_actor".into(), serde_json::Value::from(name));
        }
        if let Some(hook) = self.audit.as_mut() {
            hook(actor, action, details);
        }
    }

    /// [`Trust::admit`] for `doc`: the signing key, the actor of what follows; or the rejected
    /// state, audited as `mqtt` with `reject_action`.
    fn admit(
        &mut self,
        doc: &Document<'_>,
        reject_action: &str,
        request: &Request,
    ) -> Result<String, Box<ConfigState>> {
        self.trust.admit(doc).map_err(|p| {
            tracing::warn!(version = %doc.version, reason = %p, "{} refused", doc.topic);
            let errors = vec![p];
            self.audit(
                "mqtt",
                doc.actor,
                reject_action,
                audit_details(Some(doc.version), None, &errors),
            );
            Box::new(self.state(
                Status::Rejected,
                Some(request.clone()),
                errors,
                vec![],
                vec![],
            ))
        })
    }

    /// An `evidence/get` request that parses and is signed by a pinned centre key with a new
    /// number: the clip's hash, the request's version and the actor (the signing key). A refused
    /// one is audited and returns the state to publish (the centre reads why in `config/state`).
    pub fn admit_evidence(
        &mut self,
        bytes: &[u8],
    ) -> Result<(EvidencePayload, String), Box<ConfigState>> {
        let mut request = Request {
            topic: "evidence/get".into(),
            version: None,
            received_at: Utc::now(),
        };
        let payload = match EvidencePayload::parse(bytes) {
            Ok(p) => p,
            Err(p) => {
                tracing::warn!(reason = %p, "evidence/get refused");
                let errors = vec![p];
                self.audit(
                    "mqtt",
                    None,
                    "evidence.request_refused",
                    audit_details(None, None, &errors),
                );
                let state = self.state(Status::Rejected, Some(request), errors, vec![], vec![]);
                self.last = state.clone();
                return Err(Box::new(state));
            }
        };
        request.version = Some(payload.version.clone());
        let doc = Document {
            topic: "evidence/get",
            version: &payload.version,
            actor: payload.actor.as_deref(),
            text: &payload.sha256,
            signed: payload.signed.as_ref(),
        };
        match self.admit(&doc, "evidence.request_refused", &request) {
            Ok(actor) => Ok((payload, actor)),
            Err(state) => {
                self.last = (*state).clone();
                Err(state)
            }
        }
    }

    /// A request that was admitted but cannot be served (no such clip here): the state to publish.
    pub fn evidence_unavailable(
        &mut self,
        payload: &EvidencePayload,
        actor: &str,
        why: String,
    ) -> ConfigState {
        let problem = Problem::new(
            why,
            "the clip may have passed [privacy.retention] clip_hours or [clips] store_mb; its event's sha256 names it",
        );
        let errors = vec![problem];
        self.audit(
            actor,
            payload.actor.as_deref(),
            "evidence.request_unserved",
            serde_json::json!({
                "version": payload.version,
                "sha256": payload.sha256,
                "errors": errors.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            }),
        );
        let request = Request {
            topic: "evidence/get".into(),
            version: Some(payload.version.clone()),
            received_at: Utc::now(),
        };
        let state = self.state(Status::Rejected, Some(request), errors, vec![], vec![]);
        self.last = state.clone();
        state
    }

    /// Handles one inbound message and returns the state to publish. Never panics on input.
    pub fn handle(&mut self, msg: &Inbound) -> ConfigState {
        let state = match msg {
            Inbound::Config(bytes) => self.handle_config(bytes),
            Inbound::Watchlist(bytes) => self.handle_watchlist(bytes),
        };
        self.last = state.clone();
        state
    }

    fn handle_config(&mut self, bytes: &[u8]) -> ConfigState {
        let mut request = Request {
            topic: "config/set".into(),
            version: None,
            received_at: Utc::now(),
        };
        let payload = match ConfigPayload::parse(bytes) {
            Ok(p) => p,
            Err(p) => {
                tracing::warn!(reason = %p, "config/set rejected");
                let errors = vec![p];
                self.audit(
                    "mqtt",
                    None,
                    "config.reject",
                    audit_details(None, None, &errors),
                );
                return self.state(Status::Rejected, Some(request), errors, vec![], vec![]);
            }
        };
        request.version = Some(payload.version.clone());
        let actor = payload.actor.clone();
        let doc = Document {
            topic: "config/set",
            version: &payload.version,
            actor: payload.actor.as_deref(),
            text: &payload.toml,
            signed: payload.signed.as_ref(),
        };
        let signer = match self.admit(&doc, "config.reject", &request) {
            Ok(signer) => signer,
            Err(state) => return *state,
        };
        let accepted = match check_config(&payload, &self.running) {
            Ok(a) => a,
            Err(errors) => {
                tracing::warn!(version = %payload.version, problems = errors.len(), first = %errors[0], "config/set rejected");
                self.audit(
                    &signer,
                    actor.as_deref(),
                    "config.reject",
                    audit_details(Some(&payload.version), None, &errors),
                );
                return self.state(Status::Rejected, Some(request), errors, vec![], vec![]);
            }
        };
        let changes = match self.applier.apply_config(&self.running, &accepted.loaded) {
            Ok(c) => c,
            Err(reason) => {
                tracing::warn!(version = %payload.version, %reason, "config/set rolled back");
                let errors = vec![Problem::new(
                    format!("applying version {} failed: {reason}", payload.version),
                    "the last good config runs again; fix the cause and send it again",
                )];
                self.audit(
                    &signer,
                    actor.as_deref(),
                    "config.rollback",
                    audit_details(Some(&payload.version), Some(&accepted.hash), &errors),
                );
                return self.state(Status::RolledBack, Some(request), errors, vec![], vec![]);
            }
        };
        self.running = accepted.loaded;
        self.version = accepted.version;
        self.applied_at = Utc::now();
        let mut warnings = accepted.warnings;
        let meta = Persisted {
            version: self.version.clone(),
            hash: accepted.hash.clone(),
            applied_at: self.applied_at,
            base_hash: Some(self.base_hash.clone()),
        };
        if let Err(e) = self.store.save_config(&payload.toml, &meta) {
            tracing::error!(error = %e, "applied config not stored; a restart runs the previous one");
            warnings.push(Problem::new(
                e.to_string(),
                "a restart runs the previous config",
            ));
        }
        tracing::info!(version = %self.version, hash = %accepted.hash, ?changes, "config/set applied");
        let mut details = audit_details(Some(&self.version), Some(&accepted.hash), &[]);
        details["changes"] = serde_json::json!(changes);
        self.audit(&signer, actor.as_deref(), "config.apply", details);
        self.state(Status::Applied, Some(request), vec![], warnings, changes)
    }

    fn handle_watchlist(&mut self, bytes: &[u8]) -> ConfigState {
        let mut request = Request {
            topic: "watchlist/set".into(),
            version: None,
            received_at: Utc::now(),
        };
        let payload = match WatchlistPayload::parse(bytes) {
            Ok(p) => p,
            Err(p) => {
                tracing::warn!(reason = %p, "watchlist/set rejected");
                let errors = vec![p];
                self.audit(
                    "mqtt",
                    None,
                    "watchlist.reject",
                    audit_details(None, None, &errors),
                );
                return self.state(Status::Rejected, Some(request), errors, vec![], vec![]);
            }
        };
        request.version = Some(payload.version.clone());
        let actor = payload.actor.clone();
        let doc = Document {
            topic: "watchlist/set",
            version: &payload.version,
            actor: payload.actor.as_deref(),
            text: &payload.watchlist,
            signed: payload.signed.as_ref(),
        };
        let signer = match self.admit(&doc, "watchlist.reject", &request) {
            Ok(signer) => signer,
            Err(state) => return *state,
        };
        let list = match check_watchlist(&payload) {
            Ok(list) => list,
            Err(errors) => {
                tracing::warn!(version = %payload.version, problems = errors.len(), "watchlist/set rejected");
                self.audit(
                    &signer,
                    actor.as_deref(),
                    "watchlist.reject",
                    audit_details(Some(&payload.version), None, &errors),
                );
                return self.state(Status::Rejected, Some(request), errors, vec![], vec![]);
            }
        };
        let hash = list.version().to_string();
        let entries = list.len();
        if let Err(reason) = self.applier.apply_watchlist(list) {
            let errors = vec![Problem::new(
                format!("applying watchlist {} failed: {reason}", payload.version),
                "the previous watchlist stays in force",
            )];
            self.audit(
                &signer,
                actor.as_deref(),
                "watchlist.rollback",
                audit_details(Some(&payload.version), Some(&hash), &errors),
            );
            return self.state(Status::RolledBack, Some(request), errors, vec![], vec![]);
        }
        let meta = Persisted {
            version: payload.version.clone(),
            hash: watchlist_hash(&payload.watchlist),
            applied_at: Utc::now(),
            base_hash: Some(self.list_base_hash.clone()),
        };
        let mut warnings = Vec::new();
        if let Err(e) = self.store.save_watchlist(&payload.watchlist, &meta) {
            tracing::error!(error = %e, "applied watchlist not stored; a restart uses the previous one");
            warnings.push(Problem::new(
                e.to_string(),
                "a restart uses the previous watchlist",
            ));
        }
        self.watchlist = Some(WatchlistState {
            version: payload.version.clone(),
            hash: hash.clone(),
            entries,
        });
        tracing::info!(version = %payload.version, %hash, entries, "watchlist/set applied");
        let mut details = audit_details(Some(&payload.version), Some(&hash), &[]);
        details["entries"] = serde_json::json!(entries);
        self.audit(&signer, actor.as_deref(), "watchlist.set", details);
        self.state(
            Status::Applied,
            Some(request),
            vec![],
            warnings,
            vec![format!("watchlist: {entries} entries")],
        )
    }
}

fn placeholder_state() -> ConfigState {
    ConfigState {
        site_id: String::new(),
        device_id: String::new(),
        version: String::new(),
        config_hash: String::new(),
        applied_at: Utc::now(),
        status: Status::Applied,
        request: None,
        errors: vec![],
        warnings: vec![],
        changes: vec![],
        watchlist: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use crate::signing::{DeviceKey, remote_message};

    /// A device config that pins `key` as its centre's.
    fn base(key: &DeviceKey) -> String {
        format!(
            "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n\n[remote]\ncentre_keys = [\"{}\"]\n\n[[cameras]]\nid = \"cam-1\"\nurl = \"a.mp4\"\n",
            key.public_hex()
        )
    }

    fn disk(text: &str) -> LoadedConfig {
        match crate::config::parse_str(Path::new("/etc/edge-agent/agent.toml"), text.into()) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        }
    }

    /// Applies by recording, and refuses when told to: the pipeline side is tested in
    /// tests/remote.rs with real cameras.
    struct Recorder {
        refuse: Arc<Mutex<bool>>,
        applied: Arc<Mutex<Vec<String>>>,
    }

    impl Applier for Recorder {
        fn apply_config(
            &mut self,
            _old: &LoadedConfig,
            new: &LoadedConfig,
        ) -> Result<Vec<String>, String> {
            if *self.refuse.lock().unwrap() {
                return Err("camera `cam-2`: cannot open".into());
            }
            self.applied.lock().unwrap().push(new.hash());
            Ok(vec!["cam-2: started".into()])
        }
        fn apply_watchlist(&mut self, list: Watchlist) -> Result<(), String> {
            self.applied
                .lock()
                .unwrap()
                .push(format!("list {}", list.len()));
            Ok(())
        }
    }

    /// A document for device s/d signed by `key` (what `edge-agent sign-remote` prints).
    fn signed(key: &DeviceKey, topic: &str, seq: u64, version: &str, text: &str) -> Inbound {
        let m = remote_message(topic, "s", "d", seq, version, None, text);
        let field = if topic == "config/set" {
            "toml"
        } else {
            "watchlist"
        };
        let doc = serde_json::json!({
            "version": version, field: text, "seq": seq,
            "key": key.public_hex(), "signature": key.sign_remote(&m),
        })
        .to_string();
        if topic == "config/set" {
            Inbound::Config(bytes::Bytes::from(doc))
        } else {
            Inbound::Watchlist(bytes::Bytes::from(doc))
        }
    }

    #[test]
    fn apply_reject_rollback_persist_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let centre = DeviceKey::load_or_create(&dir.path().join("centre.key")).unwrap();
        let intruder = DeviceKey::load_or_create(&dir.path().join("intruder.key")).unwrap();
        let base = base(&centre);
        let set =
            |seq, version: &str, toml: &str| signed(&centre, "config/set", seq, version, toml);
        let store = RemoteStore::in_spool_dir(dir.path());
        let refuse = Arc::new(Mutex::new(false));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let audit: Arc<Mutex<Vec<String>>> = Arc::default();
        let audit2 = audit.clone();
        let recorder = Recorder {
            refuse: refuse.clone(),
            applied: applied.clone(),
        };
        let mut agent = RemoteAgent::new(
            startup(disk(&base), "h0", &store),
            "h0",
            store.clone(),
            Box::new(recorder),
        )
        .with_audit(Box::new(move |actor, action, _| {
            audit2.lock().unwrap().push(format!("{actor} {action}"))
        }));
        let file_hash = agent.current().config_hash.clone();
        assert_eq!(
            (agent.current().version.as_str(), agent.current().status),
            ("file", Status::Applied)
        );

        let v2 = format!("{base}\n[[cameras]]\nid = \"cam-2\"\nurl = \"rtsp://10.0.0.2/b\"\n");
        // unsigned, or signed by a key the device does not pin: refused before any check
        let unsigned = serde_json::json!({"version": "v2", "toml": v2}).to_string();
        let s = agent.handle(&Inbound::Config(bytes::Bytes::from(unsigned)));
        assert_eq!(s.status, Status::Rejected);
        assert!(s.errors[0].message.contains("not signed"), "{s:?}");
        let s = agent.handle(&signed(&intruder, "config/set", 1, "v2", &v2));
        assert!(s.errors[0].message.contains("does not trust"), "{s:?}");
        assert_eq!(s.version, "file");

        let s = agent.handle(&set(1, "v2", &v2));
        assert_eq!(s.status, Status::Applied, "{s:?}");
        assert_eq!(s.version, "v2");
        assert_ne!(s.config_hash, file_hash);
        assert_eq!(s.changes, vec!["cam-2: started"]);
        let v2_hash = s.config_hash.clone();

        *refuse.lock().unwrap() = true;
        let s = agent.handle(&set(
            2,
            "v3",
            &format!("{v2}\n[[cameras]]\nid = \"cam-3\"\nurl = \"rtsp://10.0.0.3/c\"\n"),
        ));
        assert_eq!(s.status, Status::RolledBack);
        assert_eq!(
            (s.version.as_str(), s.config_hash.as_str()),
            ("v2", v2_hash.as_str())
        );
        assert!(s.errors[0].message.contains("cam-2"), "{s:?}");

        let s = agent.handle(&set(
            3,
            "v4",
            &base.replace("device_id = \"d\"", "device_id = \"x\""),
        ));
        assert_eq!(s.status, Status::Rejected);
        assert_eq!(s.version, "v2");
        // the signed v2 sent again later (a replay): refused, v2 stays by its own right
        let s = agent.handle(&set(1, "v2", &v2));
        assert_eq!(s.status, Status::Rejected);
        assert!(s.errors[0].message.contains("replay"), "{s:?}");

        let s = agent.handle(&signed(&centre, "watchlist/set", 1, "w1", "51F-123.45\n"));
        assert_eq!(s.status, Status::Applied);
        assert_eq!(s.watchlist.as_ref().map(|w| w.entries), Some(1));
        assert_eq!(applied.lock().unwrap().len(), 2);
        let signer = format!("key:{}", &centre.public_hex()[..16]);
        assert_eq!(
            *audit.lock().unwrap(),
            vec![
                "mqtt config.reject".to_string(),
                "mqtt config.reject".to_string(),
                format!("{signer} config.apply"),
                format!("{signer} config.rollback"),
                format!("{signer} config.reject"),
                "mqtt config.reject".to_string(),
                format!("{signer} watchlist.set"),
            ]
        );

        // Restart over the same file: the stored v2 and w1 are used.
        let again = startup(disk(&base), "h0", &store);
        assert_eq!(again.version, "v2");
        assert_eq!(again.loaded.hash(), v2_hash);
        assert_eq!(
            again
                .watchlist
                .as_ref()
                .map(|(l, m)| (l.len(), m.version.as_str())),
            Some((1, "w1"))
        );
        // The file was edited since, and the configured list changed: both files win.
        let edited = startup(disk(&format!("{base}# edited\n")), "h1", &store);
        assert_eq!(edited.version, "file");
        assert!(edited.watchlist.is_none());
    }
}
