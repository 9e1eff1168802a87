//! `[privacy]` and a camera's `[cameras.privacy]` (this stage owns the sections; the loader checks
//! the key file, and that pixelation is turned off only with a reason).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[cameras.privacy]`: what this camera's evidence images may show.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraPrivacyConfig {
    /// Pixelate detected people in this camera's evidence images (frame and object crops).
    /// Default true; turning it off requires `reason`, which is logged and audited at start-up.
    #[serde(default = "yes")]
    pub blur_people: bool,
    /// Why people are not pixelated on this camera (e.g. the legal basis). Required when
    /// `blur_people = false`. Default: none.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Default for CameraPrivacyConfig {
    fn default() -> Self {
        Self {
            blur_people: true,
            reason: None,
        }
    }
}

/// `[privacy]`: plate pseudonymisation and local retention (docs/privacy.md).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Send plates that are not on the watchlist as `plate.text_hmac` (HMAC-SHA256 under the site
    /// key) instead of their text, and without plate images. Default false.
    #[serde(default)]
    pub hash_plates: bool,
    /// File holding the site's secret HMAC key (at least 16 bytes; kept out of the config so the
    /// config can be shared). Required when `hash_plates = true`. Default: none.
    #[serde(default)]
    pub plate_key_file: Option<PathBuf>,
    /// `[privacy.retention]`: how long undelivered data may stay on the device.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// `[privacy.retention]`: age limits per data class, in hours; 0 = no age limit (size bound only).
/// Every deletion is logged and recorded in the audit log with its class and count.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Evidence images waiting in the spool. Default 168 (7 days).
    #[serde(default = "default_evidence_hours")]
    pub evidence_hours: u64,
    /// Event records waiting in the spool. Default 720 (30 days).
    #[serde(default = "default_event_hours")]
    pub event_hours: u64,
    /// Event clips stored on the device (`[clips]`). Default 168 (7 days).
    #[serde(default = "default_evidence_hours")]
    pub clip_hours: u64,
    /// Evidence JPEGs written by `replay --evidence DIR`: older ones in DIR are deleted when the
    /// next replay writes there. Default 0 (kept; the folder is the operator's).
    #[serde(default)]
    pub export_hours: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            evidence_hours: default_evidence_hours(),
            event_hours: default_event_hours(),
            clip_hours: default_evidence_hours(),
            export_hours: 0,
        }
    }
}

fn default_evidence_hours() -> u64 {
    168
}
fn default_event_hours() -> u64 {
    720
}

fn yes() -> bool {
    true
}
