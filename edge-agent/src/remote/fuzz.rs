//! Property tests ("fuzz") of everything that parses remote input: the envelopes, the config
//! parser and validator behind them, and the watchlist checker. None may panic; every refusal
//! carries a reason.
//!
//! `EDGE_AGENT_FUZZ_CASES` sets the cases per property (default 2 000, five properties); the
//! documented long run is `EDGE_AGENT_FUZZ_CASES=20000` (100 000 cases in all), see docs/remote.md.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::Config as PropConfig;

use super::payload::{ConfigPayload, MAX_CONFIG_BYTES, WatchlistPayload};
use super::validate::{check_config, check_watchlist};
use crate::config::{self, LoadedConfig};

const VALID: &str = r#"[device]
site_id = "site-1"
device_id = "dev-1"
utc_offset_minutes = 420

[mqtt]
topic_prefix = "test"

[storage]
spool_dir = "spool"

[[cameras]]
id = "cam-1"
url = "clip.mp4"
target_fps = 5
role = "scene"
frame_size = [1280, 720]

[[cameras.zones]]
id = "lot"
polygon = [[100, 100], [600, 100], [600, 500], [100, 500]]

[[cameras.lines]]
id = "stop"
points = [[0, 400], [1280, 400]]

[[cameras]]
id = "cam-2"
url = "rtsp://10.0.0.2:554/stream1"
target_fps = 10
"#;

fn cases() -> u32 {
    std::env::var("EDGE_AGENT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn prop_config() -> PropConfig {
    PropConfig {
        cases: cases(),
        failure_persistence: None,
        ..PropConfig::default()
    }
}

fn running() -> LoadedConfig {
    match config::parse_str(Path::new("/etc/edge-agent/agent.toml"), VALID.to_string()) {
        Ok(l) => l,
        Err(e) => panic!("the fuzz base config must parse: {e}"),
    }
}

fn envelope(toml: &str) -> Vec<u8> {
    serde_json::json!({"version": "fuzz", "toml": toml})
        .to_string()
        .into_bytes()
}

/// The whole path a `config/set` payload takes before apply: never panics, refusals have reasons.
fn config_path(bytes: &[u8], running: &LoadedConfig) -> Result<(), TestCaseError> {
    match ConfigPayload::parse(bytes) {
        Err(p) => prop_assert!(!p.message.is_empty()),
        Ok(payload) => match check_config(&payload, running) {
            Ok(acc) => prop_assert_eq!(acc.hash.len(), 12),
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    prop_assert!(!p.message.is_empty());
                    if let Some(at) = &p.at {
                        prop_assert!(at.starts_with("mqtt:config/set:"), "{}", at);
                    }
                }
            }
        },
    }
    Ok(())
}

fn watchlist_path(bytes: &[u8]) -> Result<(), TestCaseError> {
    match WatchlistPayload::parse(bytes) {
        Err(p) => prop_assert!(!p.message.is_empty()),
        Ok(payload) => {
            if let Err(problems) = check_watchlist(&payload) {
                prop_assert!(!problems.is_empty());
                prop_assert!(
                    problems
                        .iter()
                        .all(|p| !p.message.is_empty() && p.line.is_some())
                );
            }
        }
    }
    Ok(())
}

/// One structure-aware change to a valid config.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    DuplicateLine(usize),
    DropLine(usize),
    SwapLines(usize, usize),
    /// Replace the value of a `key = value` line.
    Value(usize, String),
    /// Insert a line.
    Insert(usize, String),
}

fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("x = {}1{}", open.repeat(depth), close.repeat(depth))
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("99999999999999999999999999999999".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("1e999".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("true".to_string()),
        Just("\"\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("[[1, 2], [3]]".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("\"\\u0000\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[a-z0-9_ .:/\\-]{0,40}".prop_map(|s| format!("\"{s}\"")),
        (1usize..3000).prop_map(|d| nested(d, "[", "]")[4..].to_string()),
    ]
}

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[device]".to_string()),
        Just("[[cameras]]".to_string()),
        Just("[[cameras.rules]]".to_string()),
        Just("[cameras.calibration]".to_string()),
        Just("[mqtt.tls]".to_string()),
        Just("id = \"cam-1\"".to_string()),
        Just("site_id = \"other\"".to_string()),
        Just("url = \"\"".to_string()),
        Just("kind = \"loitering\"".to_string()),
        Just("zone = \"nowhere\"".to_string()),
        (1usize..5000).prop_map(|d| nested(d, "[", "]")),
        (1usize..5000).prop_map(|d| nested(d, "{a = ", "}")),
        "[a-z_]{1,12} = [^\n]{0,30}",
        "[^\n]{0,60}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::DropLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), value_strategy()).prop_map(|(i, v)| Mutation::Value(i, v)),
        (any::<usize>(), line_strategy()).prop_map(|(i, l)| Mutation::Insert(i, l)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match m {
        Mutation::Truncate(at) => {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return text[..at].to_string();
        }
        Mutation::DuplicateLine(i) => {
            if let Some(l) = lines.get(i % n).cloned() {
                lines.insert(i % n, l);
            }
        }
        Mutation::DropLine(i) => {
            if i % n < lines.len() {
                lines.remove(i % n);
            }
        }
        Mutation::SwapLines(a, b) => {
            if lines.len() > 1 {
                let len = lines.len();
                lines.swap(a % len, b % len);
            }
        }
        Mutation::Value(i, v) => {
            let with_values: Vec<usize> = (0..lines.len())
                .filter(|&k| lines[k].contains(" = "))
                .collect();
            if !with_values.is_empty() {
                let k = with_values[i % with_values.len()];
                let key = lines[k].split(" = ").next().unwrap_or("x").to_string();
                lines[k] = format!("{key} = {v}");
            }
        }
        Mutation::Insert(i, l) => lines.insert(i % (lines.len() + 1), l.clone()),
    }
    lines.join("\n")
}

#[test]
fn fuzz_envelope_arbitrary_bytes() {
    let running = running();
    proptest!(prop_config(), |(bytes in proptest::collection::vec(any::<u8>(), 0..4096))| {
        config_path(&bytes, &running)?;
        watchlist_path(&bytes)?;
    });
}

#[test]
fn fuzz_envelope_json_shapes() {
    let running = running();
    // Envelopes that are JSON-ish: right and wrong keys, types and nesting.
    let value = prop_oneof![
        "[^\"\\\\]{0,200}".prop_map(|s| format!("\"{s}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_string()),
        Just("[1,{\"a\":[]}]".to_string()),
        (1usize..400).prop_map(|d| format!("{}0{}", "[".repeat(d), "]".repeat(d))),
    ];
    let key = prop_oneof![
        Just("version"),
        Just("toml"),
        Just("watchlist"),
        Just("actor"),
        Just("extra")
    ];
    proptest!(prop_config(), |(fields in proptest::collection::vec((key, value), 0..5), cut in any::<usize>())| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        let text = format!("{{{}}}", body.join(","));
        let cut = cut % (text.len() + 1);
        let mut bytes = text.into_bytes();
        if cut % 3 == 0 {
            bytes.truncate(cut);
        }
        config_path(&bytes, &running)?;
        watchlist_path(&bytes)?;
    });
}

#[test]
fn fuzz_config_arbitrary_text() {
    let running = running();
    proptest!(prop_config(), |(toml in "\\PC{0,600}")| {
        config_path(&envelope(&toml), &running)?;
    });
}

#[test]
fn fuzz_config_mutations_of_a_valid_config() {
    let running = running();
    // The unmutated base must be accepted, or the mutations would test nothing.
    assert!(config_path(&envelope(VALID), &running).is_ok());
    assert!(
        check_config(
            &ConfigPayload::parse(&envelope(VALID)).unwrap_or_else(|p| panic!("{p}")),
            &running
        )
        .is_ok()
    );
    proptest!(prop_config(), |(ms in proptest::collection::vec(mutation(), 1..5), raw in any::<bool>(), oversize in 0u8..20)| {
        let mut text = VALID.to_string();
        for m in &ms {
            text = apply(&text, m);
        }
        let mut bytes = envelope(&text);
        if raw {
            // Raw TOML instead of the envelope, as a careless sender might do.
            bytes = text.clone().into_bytes();
        }
        if oversize == 0 {
            bytes.resize(MAX_CONFIG_BYTES + 1, b' ');
            let e = ConfigPayload::parse(&bytes);
            prop_assert!(e.as_ref().is_err_and(|p| p.message.contains("limit")));
        }
        if oversize == 1 && !bytes.is_empty() {
            // Invalid UTF-8 in the middle.
            let mid = bytes.len() / 2;
            bytes[mid] = 0xC3;
            if mid + 1 < bytes.len() { bytes[mid + 1] = 0x28; }
        }
        config_path(&bytes, &running)?;
    });
}

#[test]
fn fuzz_watchlist_text() {
    let line = prop_oneof![
        "[0-9]{2}[A-Z]{1,2}[0-9]?-[0-9]{3}\\.[0-9]{2}( # [a-z ]{0,20})?",
        "#[^\n]{0,40}",
        "\\PC{0,80}",
        "[\\x00-\\x1f]{1,3}",
    ];
    proptest!(prop_config(), |(lines in proptest::collection::vec(line, 0..40))| {
        let text = lines.join("\n");
        let bytes = serde_json::json!({"version": "w", "watchlist": text}).to_string().into_bytes();
        watchlist_path(&bytes)?;
    });
}
