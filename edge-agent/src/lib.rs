//! edge-agent: turns camera streams into trustworthy traffic events on ARM cameras and Jetson nodes.
//!
//! The stages follow `DESIGN.md`: config → runtime (ONNX Runtime) → models → … Each module owns one
//! concern and its tests.
//!
//! What a module's users outside the crate never reach is `pub(crate)` or narrower: the lint
//! below keeps a `pub` from standing where nothing outside can use it. Unit tests sit in
//! `mod tests` at the end of their file (a directory module with long tests keeps them in
//! `tests.rs` beside its `mod.rs`).

#![warn(unreachable_pub)]

pub mod anpr;
pub mod api;
pub mod audit;
pub(crate) mod background;
pub mod backoff;
pub mod checks;
pub mod clips;
pub mod clock;
pub mod config;
pub mod events;
pub mod health;
pub mod imageio;
pub mod inference;
pub mod logging;
pub mod models;
pub mod pipeline;
pub mod plate;
pub mod privacy;
pub mod process;
pub mod publish;
pub mod remote;
pub mod rules;
pub mod runtime;
pub mod service;
pub mod signing;
pub mod source;
pub mod spool;
pub mod track;
pub mod watchlist;

/// Cargo features compiled into this build, for `edge-agent version` and the status message.
pub const ENABLED_FEATURES: &[&str] = &[
    #[cfg(feature = "tract")]
    "tract",
    #[cfg(feature = "v4l2")]
    "v4l2",
    #[cfg(feature = "gstreamer")]
    "gstreamer",
];
