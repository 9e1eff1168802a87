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
    // The fixed sections first: a document that changes one is refused before anything in it is
    // looked at, so no path it names is ever opened (issue 19: a `[watchlist] file` pointing at
    // any readable file had its first line echoed into the retained state; `/dev/zero` ate memory).
    let mut errors = Vec::new();
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
    if !errors.is_empty() {
        return Err(errors);
    }
    // The rest as `edge-agent check` does, on the text alone: the fixed sections equal the running
    // config, whose files were checked at start-up; nothing on this machine is opened or listed.
    let diags = config::validate(
        &loaded,
        &ValidateOptions {
            skip_model_hashes: true,
            no_local_files: true,
        },
    );
    errors = problems(&diags);
    // A camera source is opened when applied: from the network only a stream may be named. A
    // local file or device stays as the file on the device has it.
    for (i, cam) in new.cameras.iter().enumerate() {
        let unchanged = old
            .cameras
            .iter()
            .any(|c| c.id == cam.id && c.url == cam.url);
        let main_unchanged = old
            .cameras
            .iter()
            .any(|c| c.id == cam.id && c.evidence_url == cam.evidence_url);
        if let Some(main) = &cam.evidence_url
            && !main_unchanged
            && !is_network_stream(main)
        {
            let d = loaded.diagnostic_at(
                Severity::Error,
                &[PathSeg::Key(CAMERAS), PathSeg::Index(i), PathSeg::Key("evidence_url")],
                format!(
                    "camera `{}`: a remote config may only point evidence_url at an rtsp:// stream",
                    cam.id
                ),
                "a local file or device (a path, file://, v4l2://) is set in the config file on the device",
            );
            errors.push(Problem::from_diagnostic(&d, CONFIG_ORIGIN));
        }
        if !unchanged && !is_network_stream(&cam.url) {
            let d = loaded.diagnostic_at(
                Severity::Error,
                &[PathSeg::Key(CAMERAS), PathSeg::Index(i), PathSeg::Key("url")],
                format!(
                    "camera `{}`: a remote config may only point a camera at an rtsp:// stream",
                    cam.id
                ),
                "a local file or device (a path, file://, v4l2://) is set in the config file on the device",
            );
            errors.push(Problem::from_diagnostic(&d, CONFIG_ORIGIN));
        }
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
        // Whether a camera's clips (unpixelated people) leave the device is the same kind of
        // decision; a new camera keeps `[clips] mode`.
        let clips_before = old
            .cameras
            .iter()
            .find(|c| c.id == cam.id)
            .and_then(|c| c.clips);
        if cam.clips != clips_before {
            let d = loaded.diagnostic_at(
                Severity::Error,
                &[PathSeg::Key(CAMERAS), PathSeg::Index(i), PathSeg::Key("clips")],
                format!("`clips` of `{}` cannot be set remotely", cam.id),
                "whether clips leave the device is decided at start-up; change it in the file on the device",
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
        hash: loaded.hash(),
        loaded,
        version: payload.version.clone(),
        warnings,
    })
}

/// An `rtsp://` URL with a host (`source::CameraUrl`): a stream on the network, not something on
/// this machine.
fn is_network_stream(raw: &str) -> bool {
    matches!(
        crate::source::CameraUrl::parse(raw),
        Ok(crate::source::CameraUrl::Rtsp)
    )
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
            signed: None,
        }
    }

    #[test]
    fn same_config_is_accepted_with_the_events_hash() {
        let ok = check_config(&payload(BASE), &running()).expect("accepted");
        assert_eq!(ok.hash, running().hash());
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
        let send = format!("{BASE}clips = \"send\"\n");
        let c = check_config(&payload(&send), &running()).expect_err("clips");
        assert!(c[0].message.contains("`clips` of `cam-2`"), "{c:?}");
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
        let text = BASE.replace("other.mp4", "rtsp://10.0.0.7/stream1");
        assert!(check_config(&payload(&text), &running()).is_ok());
        let text = BASE
            .replace("target_fps = 5", "target_fps = 5\nenabled = false")
            .replace("frame_size", "enabled = false\nframe_size");
        let e = check_config(&payload(&text), &running()).expect_err("none enabled");
        assert!(e[0].message.contains("no enabled camera"), "{e:?}");
    }

    /// A file whose first line is a secret, in a directory of its own.
    fn secret_file() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.txt");
        std::fs::write(&path, "TOP-SECRET-LINE 0123456789\nsecond\n").unwrap();
        (dir, path)
    }

    fn mentions_secret(problems: &[Problem]) -> bool {
        format!("{problems:?}").contains("TOP-SECRET")
    }

    #[test]
    fn a_fixed_section_naming_a_file_is_refused_without_opening_it() {
        let (_dir, secret) = secret_file();
        let s = secret.display();
        for added in [
            format!("[watchlist]\nfile = \"{s}\"\n"),
            format!("[privacy]\nhash_plates = true\nplate_key_file = \"{s}\"\n"),
            format!("[http]\ntoken_file = \"{s}\"\n"),
            "[watchlist]\nfile = \"/dev/zero\"\n".to_string(),
        ] {
            let text = format!("{BASE}\n{added}");
            let e = check_config(&payload(&text), &running()).expect_err("fixed section");
            assert!(
                e.iter()
                    .all(|p| p.message.contains("cannot be changed remotely")),
                "only the fixed-section refusal, nothing read from the file: {e:?}"
            );
            assert!(!mentions_secret(&e), "{e:?}");
        }
    }

    #[test]
    fn a_remote_camera_may_name_a_stream_but_not_a_local_file() {
        let (_dir, secret) = secret_file();
        for url in [
            secret.display().to_string(),
            format!("file://{}", secret.display()),
            "v4l2:///dev/video0".to_string(),
            "/dev/zero".to_string(),
        ] {
            let text = BASE.replace("other.mp4", &url);
            let e = check_config(&payload(&text), &running()).expect_err("local source");
            assert!(
                e.iter()
                    .any(|p| p.message.contains("only point a camera at an rtsp://")
                        && p.line == Some(18)),
                "{url}: {e:?}"
            );
            assert!(!mentions_secret(&e), "{e:?}");
            // nothing about the file, not even whether it exists
            assert!(
                e.iter().all(|p| !p.message.contains("does not exist")),
                "{e:?}"
            );
        }
        // a local source the file on the device already has stays allowed (cam-1 is unchanged)
        let text = BASE.replace("other.mp4", "rtsp://cam.example/live");
        let ok = check_config(&payload(&text), &running()).expect("stream");
        assert!(
            ok.warnings
                .iter()
                .all(|w| !w.message.contains("does not exist"))
        );
        // the main stream likewise: a stream, never a file named from the network
        let main = format!("{BASE}evidence_url = \"{}\"\n", secret.display());
        let e = check_config(&payload(&main), &running()).expect_err("local main stream");
        assert!(
            e.iter()
                .any(|p| p.message.contains("only point evidence_url at an rtsp://")),
            "{e:?}"
        );
        assert!(!mentions_secret(&e), "{e:?}");
        let main = format!("{BASE}evidence_url = \"rtsp://cam.example/main\"\n");
        check_config(&payload(&main), &running()).expect("a main stream");
    }

    #[test]
    fn remote_configuration_is_switched_off_only_on_the_device() {
        assert!(running().config.remote.enabled, "on by default");
        let off = crate::config::parse_str(
            Path::new("/etc/edge-agent/agent.toml"),
            format!("{BASE}\n[remote]\nenabled = false\n"),
        )
        .expect("parses");
        assert!(!off.config.remote.enabled);
        // the centre cannot switch it (or anything outside [[cameras]]) itself
        let text = format!("{BASE}\n[remote]\nenabled = false\n");
        let e = check_config(&payload(&text), &running()).expect_err("fixed");
        assert!(e[0].message.starts_with("[remote] differs"), "{e:?}");
        let typo = format!("{BASE}\n[remote]\nenable = false\n");
        assert!(
            crate::config::parse_str(Path::new("a.toml"), typo).is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn watchlist_lines_are_checked() {
        let w = |t: &str| WatchlistPayload {
            version: "1".into(),
            watchlist: t.into(),
            actor: None,
            signed: None,
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
