//! The remote-config side of `run`: which config and watchlist to start with, and the thread that
//! turns `config/set` / `watchlist/set` messages into changes of the running pipeline and a
//! retained `config/state` (docs/remote.md).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use edge_agent::audit::AuditTrail;
use edge_agent::config::LoadedConfig;
use edge_agent::pipeline::PipelineControl;
use edge_agent::pipeline::live::LiveHub;
use edge_agent::pipeline::sink::EventSink;
use edge_agent::publish::Delivery;
use edge_agent::remote::{self, Applier, RemoteAgent, RemoteStore, Startup};
use edge_agent::watchlist::{SharedWatchlist, Watchlist};

use super::agent;

/// How long an apply may take (opening new sources included) before it counts as failed.
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// The store of the device's last good remote documents: `{storage.spool_dir}/remote/`.
fn store(disk: &LoadedConfig) -> RemoteStore {
    RemoteStore::in_spool_dir(&disk.resolve_path(&disk.config.storage.spool_dir))
}

/// What [`startup`] chose, for [`serve`].
pub struct Setup {
    start: Startup,
    store: RemoteStore,
    list_hash: String,
}

impl Setup {
    /// The config to run.
    pub fn loaded(&self) -> &LoadedConfig {
        &self.start.loaded
    }
}

/// The config and watchlist to start with: stored remote ones win unless the file (config) or the
/// configured list (watchlist) they replaced has changed since. Puts the watchlist in force.
pub fn startup(disk: LoadedConfig, watchlist: &SharedWatchlist) -> Setup {
    let store = store(&disk);
    let list_hash = watchlist.current().hash().to_string();
    let start = remote::startup(disk, &list_hash, &store);
    if let Some((list, meta)) = &start.watchlist {
        tracing::info!(version = %meta.version, plates = list.len(), "using the stored remote watchlist");
        watchlist.replace(list.clone());
    }
    Setup {
        start,
        store,
        list_hash,
    }
}

/// Puts validated changes into the running agent.
struct LiveApplier {
    control: PipelineControl,
    sink: Arc<EventSink>,
    watchlist: SharedWatchlist,
    hub: Arc<LiveHub>,
}

impl Applier for LiveApplier {
    fn apply_config(
        &mut self,
        _old: &LoadedConfig,
        new: &LoadedConfig,
    ) -> Result<Vec<String>, String> {
        let enabled = || new.config.cameras.iter().filter(|c| c.enabled);
        let specs = enabled()
            .map(|c| agent::camera_spec(c, None, None))
            .collect();
        let changes = self
            .control
            .apply(specs, APPLY_TIMEOUT)
            .map_err(|e| e.to_string())?;
        self.sink
            .set_config(new.hash(), new.config.camera_locations());
        for c in enabled() {
            if self.hub.camera(&c.id).is_none() {
                self.hub.add_camera(c, &c.url, c.target_fps);
            }
        }
        Ok(changes)
    }

    fn apply_watchlist(&mut self, list: Watchlist) -> Result<(), String> {
        self.watchlist.replace(list);
        Ok(())
    }
}

/// Subscribes to the remote topics, publishes the initial retained `config/state`, and handles
/// messages on a thread of their own until the process ends.
pub fn serve(
    setup: Setup,
    delivery: &Delivery,
    sink: Arc<EventSink>,
    control: PipelineControl,
    watchlist: SharedWatchlist,
    hub: Arc<LiveHub>,
    trail: AuditTrail,
) -> anyhow::Result<()> {
    let applier = LiveApplier {
        control,
        sink: sink.clone(),
        watchlist,
        hub,
    };
    let Setup {
        start,
        store,
        list_hash,
    } = setup;
    let mut handler = RemoteAgent::new(start, &list_hash, store, Box::new(applier)).with_audit(
        Box::new(move |actor, action, details| {
            trail.record(action, actor, details);
        }),
    );
    let publish = |delivery: &Delivery, state: &remote::ConfigState| match serde_json::to_vec(state)
    {
        Ok(bytes) => delivery.set_config_state(bytes),
        Err(e) => tracing::error!(error = %e, "cannot encode config/state"),
    };
    publish(delivery, handler.current());
    let (config_set, watchlist_set, evidence_get) = (
        delivery.topics().config_set(),
        delivery.topics().watchlist_set(),
        delivery.topics().evidence_get(),
    );
    let inbound = delivery.subscribe(vec![
        config_set.clone(),
        watchlist_set,
        evidence_get.clone(),
    ]);
    let delivery = delivery.clone();
    std::thread::Builder::new()
        .name("remote-config".into())
        .spawn(move || {
            for msg in inbound.iter() {
                if msg.topic == evidence_get {
                    // A clip kept on the device, asked for by a signed request; answered with
                    // its event and pieces, or a refusal in `config/state`.
                    let refused = match handler.admit_evidence(&msg.payload) {
                        Ok((request, actor)) => sink
                            .send_clip(&request.sha256, &actor, &request.version)
                            .err()
                            .map(|why| handler.evidence_unavailable(&request, &actor, why)),
                        Err(state) => Some(*state),
                    };
                    if let Some(state) = refused {
                        publish(&delivery, &state);
                    }
                    continue;
                }
                let msg = if msg.topic == config_set {
                    remote::Inbound::Config(msg.payload)
                } else {
                    remote::Inbound::Watchlist(msg.payload)
                };
                let state = handler.handle(&msg);
                publish(&delivery, &state);
            }
        })
        .context("starting the remote-config thread")?;
    Ok(())
}
