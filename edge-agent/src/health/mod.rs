//! Camera health and tamper detection, and the device clock's sync state.
//!
//! Installers found that most cameras of earlier deployments were silently not working, so every
//! camera is watched for what makes it useless while its stream still looks fine: a frozen picture,
//! a covered or defocused lens, a camera turned away from its scene, too few frames. The decode
//! thread feeds a [`Monitor`] with every frame; the monitor checks a small grey copy once per
//! `[health].check_interval_s` and reports state changes as [`Transition`]s, which the pipeline
//! turns into `camera_health` events and the `health` message.

pub mod analysis;
pub mod clock;
mod config;
pub mod monitor;

pub use clock::{ClockState, clock_state};
pub use config::HealthConfig;
pub use monitor::{Condition, Monitor, Report, Snapshot, Transition};

#[cfg(test)]
mod tests;
