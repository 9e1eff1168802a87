//! Remote config and watchlist over MQTT (`config/set`, `watchlist/set` in; retained
//! `config/state` out). See docs/remote.md for the payloads.
//!
//! A remote change goes through the same parser and validator as `edge-agent check`, is applied
//! as a whole or not at all, and the last good version is kept in the storage directory so a
//! restart uses it. Everything that arrives here comes from the network: it is size-limited before
//! it is parsed, and every failure becomes a reason in the state message, never a panic.

pub mod agent;
pub mod payload;
pub mod state;
pub mod store;
pub mod trust;
pub mod validate;

#[cfg(test)]
mod fuzz;

pub use agent::{Applier, AuditHook, RemoteAgent, Startup, startup};
pub use payload::{
    ConfigPayload, DocSignature, EvidencePayload, MAX_CONFIG_BYTES, MAX_EVIDENCE_BYTES,
    MAX_WATCHLIST_BYTES, WatchlistPayload,
};
pub use state::{ConfigState, Problem, Status, WatchlistState};
pub use store::{Persisted, RemoteStore};
pub use trust::{Seqs, Trust};
pub use validate::{Accepted, check_config, check_watchlist, watchlist_hash};

/// Where remote messages come from, used as the "file" in their diagnostics.
pub const CONFIG_ORIGIN: &str = "mqtt:config/set";
/// The same for watchlists.
pub const WATCHLIST_ORIGIN: &str = "mqtt:watchlist/set";

/// An incoming remote message: which topic it came on and its raw bytes.
#[derive(Debug, Clone)]
pub enum Inbound {
    Config(bytes::Bytes),
    Watchlist(bytes::Bytes),
}
