//! The retained `config/state` message: what runs now, and what became of the last request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Diagnostic;

/// Outcome of the last remote request (or `applied` for the config the agent started with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The request is running now.
    Applied,
    /// The request failed validation; nothing changed.
    Rejected,
    /// The request was valid but could not be applied; the last good version runs again.
    RolledBack,
}

/// One reason a request was refused, located in the sent text where possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `mqtt:config/set:LINE:COL` (or the watchlist's), when the place is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub col: Option<usize>,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

impl Problem {
    /// A problem without a place.
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            at: None,
            line: None,
            col: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A config diagnostic, re-labelled with the remote origin (its `file` is the config on disk,
    /// used only to resolve relative paths).
    pub fn from_diagnostic(d: &Diagnostic, origin: &str) -> Self {
        Problem {
            at: Some(format!("{origin}:{}:{}", d.line, d.col)),
            line: Some(d.line),
            col: Some(d.col),
            message: d.message.clone(),
            hint: d.hint.clone(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The watchlist in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchlistState {
    pub version: String,
    /// First 12 hex digits of the sha256 of the list's text.
    pub hash: String,
    pub entries: usize,
}

/// The request a state message answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `config/set`, `watchlist/set`, or `evidence/get` (only when refused or unserved: a served
    /// request is answered by the clip's event).
    pub topic: String,
    /// The request's version, when its envelope could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Payload of the retained `config/state` topic (docs/remote.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigState {
    pub site_id: String,
    pub device_id: String,
    /// Version of the running config: the remote version, or `file` for the config on disk.
    pub version: String,
    /// First 12 hex digits of the sha256 of the running config's text (as in events).
    pub config_hash: String,
    /// When the running config was applied.
    pub applied_at: DateTime<Utc>,
    /// Outcome of `request` (`applied` at start-up, when there is no request).
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// Why the request was rejected or rolled back; empty when applied.
    #[serde(default)]
    pub errors: Vec<Problem>,
    /// Warnings of an applied config (files missing on this device and the like).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Problem>,
    /// What changed when a config was applied, e.g. `cam-2: rules swapped`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The watchlist in force, when one was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchlist: Option<WatchlistState>,
}
