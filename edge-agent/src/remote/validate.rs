//! Validation of remote documents: the `edge-agent check` code path, plus the rules that only apply
//! to a change made while running (identity and connection sections stay as they are).

use crate::config::{self, ConfigError, LoadedConfig, PathSeg, Severity, ValidateOptions};
use crate::events::evidence::sha256_hex;
use crate::watchlist::{Watchlist, WatchlistError};

use super::payload::{ConfigPayload, WatchlistPayload};
use super::state::Problem;
use super::{CONFIG_ORIGIN, WATCHLIST_ORIGIN};

/// A remote config that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub loaded: LoadedConfig,
    pub version: String,
    /// Same as events' `config_hash`.
    pub hash: String,
    pub warnings: Vec<Problem>,
}

/// Every section but `[[cameras]]` is fixed for a remote config: who the device is, how it reaches
/// the broker, storage, inference, privacy and the other settings read once at start-up. Changing
/// them needs an edited file and a restart (docs/remote.md). Compared section by section on the
/// typed config, so a new section is fixed as soon as it exists.
const CAMERAS: &str = "cameras";
/// Parses and validates `payload` as a replacement for `running`. Relative paths resolve against
/// the directory of the config file the agent was started with, as they would on disk.
pub fn check_config(
    payload: &ConfigPayload,
    running: &LoadedConfig,
) -> Result<Accepted, Vec<Problem>> {
    let problems = |diags: &[config::Diagnostic]| -> Vec<Problem> {
        diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| Problem::from_diagnostic(d, CONFIG_ORIGIN))
            .collect()
    };
    let loaded = match config::parse_str(&running.source.path, payload.toml.clone()) {
        Ok(l) => l,
        Err(ConfigError::Invalid(diags)) => return Err(problems(&diags)),
        Err(e) => return Err(vec![Problem::new(e.to_string(), "")]),
    };
    // Model weights are those of the running config (the section may not change), already hashed
    // at start-up; everything else is checked exactly as `edge-agent check` does.
    let diags = config::validate(
        &loaded,
        &ValidateOptions {
            skip_model_hashes: true,
        },
    );
    let mut errors = problems(&diags);
    let (new, old) = (&loaded.config, &running.config);
    let sections = |c: &crate::config::Config| match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (new_sections, old_sections) = (sections(new), sections(old));
    for (name, value) in &new_sections {
        if name == CAMERAS || old_sections.get(name) == Some(value) {
            continue;
        }
        let d = loaded.diagnostic_at(
            Severity::Error,
            &[PathSeg::Key(name)],
            format!("[{name}] differs from the running config and cannot be changed remotely"),
            format!("send [{name}] as it is on the device; changing it needs an edited file and a restart"),
        );
        errors.push(Problem::from_diagnostic(&d, CONFIG_ORIGIN));
    }
    // A camera's privacy (people pixelated or not, with its audited reason) is put in force at
    // start-up; remotely it may not change, and a new camera keeps the default.
    for (i, cam) in new.cameras.iter().enumerate() {
        let before = old
            .cameras
            .iter()
            .find(|c| c.id == cam.id)
            .map(|c| &c.privacy);
        let default = crate::config::CameraPrivacyConfig::default();
        if &cam.privacy != before.unwrap_or(&default) {
            let d = loaded.diagnostic_at(
                Severity::Error,
                &[PathSeg::Key(CAMERAS), PathSeg::Index(i), PathSeg::Key("privacy")],
                format!("[cameras.privacy] of `{}` cannot be set remotely", cam.id),
                "pixelation is decided (and audited) at start-up; change it in the file on the device",
            );
            errors.push(Problem::from_diagnostic(&d, CONFIG_ORIGIN));
        }
    }
    if !new.cameras.iter().any(|c| c.enabled) {
        let d = loaded.diagnostic_at(
            Severity::Error,
            &[PathSeg::Key("cameras")],
            "no enabled camera",
            "a running agent needs at least one [[cameras]] with enabled = true",
        );
        errors.push(Problem::from_diagnostic(&d, CONFIG_ORIGIN));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|p| (p.line, p.col));
        return Err(errors);
    }
    let warnings = diags
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| Problem::from_diagnostic(d, CONFIG_ORIGIN))
        .collect();
    Ok(Accepted {
        hash: crate::publish::status::config_hash(&loaded),
        loaded,
        version: payload.version.clone(),
        warnings,
    })
}

/// First 12 hex digits of the sha256 of a watchlist's text.
pub fn watchlist_hash(text: &str) -> String {
    sha256_hex(text.as_bytes())[..12].to_string()
}

/// Parses a watchlist with [`Watchlist::parse_named`], the one definition of the format; the
/// error names the line in the sent text.
pub fn check_watchlist(payload: &WatchlistPayload) -> Result<Watchlist, Vec<Problem>> {
    Watchlist::parse_named(&payload.watchlist, WATCHLIST_ORIGIN).map_err(|e| {
        let mut p = Problem::new(
            e.to_string(),
            "one plate per line, e.g. 51F-123.45; a label goes after #",
        );
        if let WatchlistError::Line { line, reason, .. } = &e {
            p.at = Some(format!("{WATCHLIST_ORIGIN}:{line}:1"));
            p.line = Some(*line);
            p.col = Some(1);
            p.message = reason.clone();
        }
        vec![p]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    pub(crate) const BASE: &str = r#"[device]
site_id = "site-1"
device_id = "dev-1"

[mqtt]
topic_prefix = "test"

[storage]
spool_dir = "spool"

[[cameras]]
id = "cam-1"
url = "clip.mp4"
target_fps = 5

[[cameras]]
id = "cam-2"
url = "other.mp4"
frame_size = [1280, 720]
"#;

    fn running() -> LoadedConfig {
        config::parse_str(Path::new("/etc/edge-agent/agent.toml"), BASE.to_string())
            .expect("base parses")
    }

    fn payload(toml: &str) -> ConfigPayload {
        ConfigPayload {
            version: "v2".into(),
            toml: toml.into(),
            actor: None,
        }
    }

    #[test]
    fn same_config_is_accepted_with_the_events_hash() {
        let ok = check_config(&payload(BASE), &running()).expect("accepted");
        assert_eq!(ok.hash, crate::publish::status::config_hash(&running()));
        assert_eq!(ok.version, "v2");
        // Relative camera paths resolve as in the file on disk.
        assert_eq!(ok.loaded.base_dir(), Path::new("/etc/edge-agent"));
    }

    #[test]
    fn syntax_error_is_located_in_the_remote_text() {
        let text = BASE.replace("target_fps = 5", "target_fps = = 5");
        let e = check_config(&payload(&text), &running()).expect_err("bad syntax");
        assert_eq!(e[0].at.as_deref(), Some("mqtt:config/set:14:14"), "{e:?}");
        assert!(e[0].message.contains("TOML syntax"), "{e:?}");
    }

    #[test]
    fn validation_errors_are_those_of_check() {
        let text = BASE.replace("target_fps = 5", "target_fps = 500");
        let e = check_config(&payload(&text), &running()).expect_err("bad fps");
        assert!(e[0].message.contains("outside (0, 60]"), "{e:?}");
        assert_eq!(e[0].line, Some(14));
        let text = format!(
            "{BASE}\n[[cameras.zones]]\nid = \"z\"\npolygon = [[0, 0], [5000, 0], [5000, 10]]\n"
        );
        let e = check_config(&payload(&text), &running()).expect_err("zone outside the frame");
        assert!(
            e.iter().all(|p| p
                .at
                .as_deref()
                .is_some_and(|a| a.starts_with("mqtt:config/set:"))),
            "{e:?}"
        );
    }

    #[test]
    fn identity_sections_cannot_change() {
        let text = BASE
            .replace("dev-1", "dev-2")
            .replace("topic_prefix = \"test\"", "topic_prefix = \"other\"");
        let e = check_config(&payload(&text), &running()).expect_err("identity");
        let privacy = format!("{BASE}\n[cameras.privacy]\nblur_people = false\nreason = \"x\"\n");
        let p = check_config(&payload(&privacy), &running()).expect_err("privacy");
        assert!(
            p[0].message.contains("[cameras.privacy] of `cam-2`"),
            "{p:?}"
        );
        let msgs: Vec<&str> = e.iter().map(|p| p.message.as_str()).collect();
        assert!(
            msgs.iter().any(|m| m.starts_with("[device] differs")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.starts_with("[mqtt] differs")),
            "{msgs:?}"
        );
    }

    #[test]
    fn camera_changes_are_allowed_but_not_none_enabled() {
        let text = BASE.replace("other.mp4", "third.mp4");
        assert!(check_config(&payload(&text), &running()).is_ok());
        let text = BASE
            .replace("target_fps = 5", "target_fps = 5\nenabled = false")
            .replace("frame_size", "enabled = false\nframe_size");
        let e = check_config(&payload(&text), &running()).expect_err("none enabled");
        assert!(e[0].message.contains("no enabled camera"), "{e:?}");
    }

    #[test]
    fn watchlist_lines_are_checked() {
        let w = |t: &str| WatchlistPayload {
            version: "1".into(),
            watchlist: t.into(),
            actor: None,
        };
        let list =
            check_watchlist(&w("# list\n51F-123.45 # stolen\n\n29B125662\n")).expect("valid");
        assert_eq!(list.len(), 2);
        let e = check_watchlist(&w("51F-123.45\n  not a plate!\n")).expect_err("bad");
        assert_eq!(e[0].at.as_deref(), Some("mqtt:watchlist/set:2:1"));
        assert!(e[0].message.contains("not part of a plate"), "{e:?}");
        assert_eq!(watchlist_hash("a").len(), 12);
    }
}
