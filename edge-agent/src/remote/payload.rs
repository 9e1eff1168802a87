//! The envelopes of `config/set` and `watchlist/set`: size limit first, then UTF-8, then JSON.
//!
//! Both are small JSON objects carrying a version chosen by the sender and the text itself, so the
//! text keeps its own line numbers for diagnostics (docs/remote.md).

use serde::Deserialize;

use super::state::Problem;

/// Largest accepted `config/set` payload (bytes), checked before any parsing.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;
/// Largest accepted `watchlist/set` payload (bytes), checked before any parsing.
pub const MAX_WATCHLIST_BYTES: usize = 1024 * 1024;
/// Longest accepted `version` string.
pub const MAX_VERSION_CHARS: usize = 64;
/// Longest accepted `actor` string.
pub const MAX_ACTOR_CHARS: usize = 128;

/// A centre's signature on a remote document (`edge-agent sign-remote`; docs/remote.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSignature {
    /// Only goes forward: a document whose number is not above the last one accepted is a replay.
    pub seq: u64,
    /// The signing centre key's public half, hex; it must be pinned in `[remote].centre_keys`.
    pub key: String,
    /// Ed25519 over [`crate::signing::remote_message`], hex.
    pub signature: String,
}

/// A `config/set` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPayload {
    /// The sender's name for this version, e.g. `2026-11-30.3`.
    pub version: String,
    /// The whole config file.
    pub toml: String,
    /// Who sent it (operator name or system), for the audit log as `claimed_actor`.
    pub actor: Option<String>,
    /// `None`: unsigned (refused by a running agent; stored documents were checked when applied).
    pub signed: Option<DocSignature>,
}

/// A `watchlist/set` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistPayload {
    pub version: String,
    /// The whole list in the watchlist text format.
    pub watchlist: String,
    pub actor: Option<String>,
    pub signed: Option<DocSignature>,
}

/// Largest accepted `evidence/get` payload (bytes), checked before any parsing.
pub const MAX_EVIDENCE_BYTES: usize = 4 * 1024;

/// An `evidence/get` request: the centre asks for one clip the device keeps (named by the
/// sha256 its event carried; never a path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencePayload {
    pub version: String,
    /// Lower-case hex sha256 of the clip.
    pub sha256: String,
    pub actor: Option<String>,
    pub signed: Option<DocSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceEnvelope {
    version: String,
    sha256: String,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

impl EvidencePayload {
    /// Parses an `evidence/get` payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, Problem> {
        let e: EvidenceEnvelope = envelope(bytes, MAX_EVIDENCE_BYTES, "evidence/get", "sha256")?;
        let sha = &e.sha256;
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Problem::new(
                "`sha256` must be 64 lower-case hex digits",
                "name the clip by the sha256 of its `clip` evidence in the event",
            ));
        }
        Ok(EvidencePayload {
            version: check_version(e.version)?,
            sha256: e.sha256,
            actor: check_actor(e.actor)?,
            signed: check_signed(e.seq, e.key, e.signature)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigEnvelope {
    version: String,
    toml: String,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchlistEnvelope {
    version: String,
    watchlist: String,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

impl ConfigPayload {
    /// Parses a `config/set` payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, Problem> {
        let e: ConfigEnvelope = envelope(bytes, MAX_CONFIG_BYTES, "config/set", "toml")?;
        Ok(ConfigPayload {
            version: check_version(e.version)?,
            toml: e.toml,
            actor: check_actor(e.actor)?,
            signed: check_signed(e.seq, e.key, e.signature)?,
        })
    }
}

impl WatchlistPayload {
    /// Parses a `watchlist/set` payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, Problem> {
        let e: WatchlistEnvelope =
            envelope(bytes, MAX_WATCHLIST_BYTES, "watchlist/set", "watchlist")?;
        Ok(WatchlistPayload {
            version: check_version(e.version)?,
            watchlist: e.watchlist,
            actor: check_actor(e.actor)?,
            signed: check_signed(e.seq, e.key, e.signature)?,
        })
    }
}

fn envelope<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    max: usize,
    topic: &str,
    text_key: &str,
) -> Result<T, Problem> {
    let shape = format!(
        "send a JSON object {{\"version\": \"...\", \"{text_key}\": \"...\"}} (docs/remote.md)"
    );
    if bytes.len() > max {
        return Err(Problem::new(
            format!(
                "{topic} payload is {} bytes; the limit is {max}",
                bytes.len()
            ),
            "split nothing: send a smaller document (the limit protects the device's memory)",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Problem::new(
            format!(
                "{topic} payload is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            shape.clone(),
        )
    })?;
    serde_json::from_str(text).map_err(|e| {
        let mut p = Problem::new(
            format!("{topic} payload is not the expected JSON: {e}"),
            shape,
        );
        if e.line() > 0 {
            p.line = Some(e.line());
            p.col = Some(e.column());
        }
        p
    })
}

fn printable(s: &str) -> bool {
    s.chars().all(|c| !c.is_control())
}

fn check_version(v: String) -> Result<String, Problem> {
    let n = v.chars().count();
    if n == 0 || n > MAX_VERSION_CHARS || !printable(&v) || v.trim() != v {
        return Err(Problem::new(
            format!(
                "`version` must be 1 to {MAX_VERSION_CHARS} printable characters without surrounding spaces"
            ),
            "use e.g. a date and a counter: \"2026-11-30.3\"",
        ));
    }
    Ok(v)
}

fn check_actor(a: Option<String>) -> Result<Option<String>, Problem> {
    match a {
        Some(a) if a.is_empty() || a.chars().count() > MAX_ACTOR_CHARS || !printable(&a) => {
            Err(Problem::new(
                format!("`actor` must be 1 to {MAX_ACTOR_CHARS} printable characters"),
                "name the operator or system that sends the change, or leave `actor` out",
            ))
        }
        a => Ok(a),
    }
}

/// `seq`, `key` and `signature` come together or not at all; key and signature are hex of the
/// right length (so nothing longer is carried further).
fn check_signed(
    seq: Option<u64>,
    key: Option<String>,
    signature: Option<String>,
) -> Result<Option<DocSignature>, Problem> {
    let hint = "sign the document with `edge-agent sign-remote` (docs/remote.md)";
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    match (seq, key, signature) {
        (None, None, None) => Ok(None),
        (Some(seq), Some(key), Some(signature)) => {
            if !hex_of(&key, 64) || !hex_of(&signature, 128) {
                return Err(Problem::new(
                    "`key` must be 64 and `signature` 128 hex digits (Ed25519)",
                    hint,
                ));
            }
            Ok(Some(DocSignature {
                seq,
                key: key.to_ascii_lowercase(),
                signature: signature.to_ascii_lowercase(),
            }))
        }
        _ => Err(Problem::new(
            "`seq`, `key` and `signature` must all be present or all absent",
            hint,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evidence_request_names_a_hash_never_a_path() {
        let sha = "ab".repeat(32);
        let ok = format!(r#"{{"version":"r1","sha256":"{sha}","actor":"op 7"}}"#);
        let p = EvidencePayload::parse(ok.as_bytes()).unwrap();
        assert_eq!((p.sha256.as_str(), p.signed), (sha.as_str(), None));
        for bad in ["../../etc/passwd", "AB", &sha.to_uppercase(), &sha[..63]] {
            let doc = format!(r#"{{"version":"r1","sha256":"{bad}"}}"#);
            let e = EvidencePayload::parse(doc.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("64 lower-case hex"), "{bad}: {e}");
        }
        let long = format!(
            r#"{{"version":"r1","sha256":"{sha}","actor":"{}"}}"#,
            "x".repeat(5000)
        );
        assert!(
            EvidencePayload::parse(long.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
    }

    #[test]
    fn good_config_envelope() {
        let p = ConfigPayload::parse(br#"{"version":"v1","toml":"[device]\n","actor":"op"}"#)
            .expect("valid");
        assert_eq!(p.version, "v1");
        assert_eq!(p.toml, "[device]\n");
        assert_eq!(p.actor.as_deref(), Some("op"));
    }

    #[test]
    fn oversized_is_rejected_before_parsing() {
        let big = vec![b'{'; MAX_CONFIG_BYTES + 1];
        let e = ConfigPayload::parse(&big).expect_err("too big");
        assert!(e.message.contains("the limit is 262144"), "{}", e.message);
        let ok_watchlist_size = vec![b' '; MAX_CONFIG_BYTES + 1];
        let e = WatchlistPayload::parse(&ok_watchlist_size).expect_err("not JSON");
        assert!(e.message.contains("not the expected JSON"), "{}", e.message);
    }

    #[test]
    fn not_utf8_names_the_offset() {
        let e = ConfigPayload::parse(b"{\"version\":\"\xff\"}").expect_err("bad utf8");
        assert!(e.message.contains("not UTF-8"), "{}", e.message);
        assert!(e.message.contains("offset 12"), "{}", e.message);
    }

    #[test]
    fn json_errors_have_a_position() {
        let e = ConfigPayload::parse(b"{\"version\": \"v1\",\n \"toml\": 5}").expect_err("type");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("invalid type"), "{}", e.message);
        let e = ConfigPayload::parse(br#"{"version":"v1","toml":"","extra":1}"#).expect_err("x");
        assert!(e.message.contains("unknown field"), "{}", e.message);
    }

    #[test]
    fn version_and_actor_are_checked() {
        for bad in [
            r#""""#,
            r#"" v1""#,
            r#""a\nb""#,
            &format!("\"{}\"", "x".repeat(65)),
        ] {
            let text = format!(r#"{{"version":{bad},"toml":""}}"#);
            let e = ConfigPayload::parse(text.as_bytes()).expect_err(bad);
            assert!(e.message.contains("`version`"), "{}", e.message);
        }
        let e = WatchlistPayload::parse(br#"{"version":"1","watchlist":"","actor":""}"#)
            .expect_err("empty actor");
        assert!(e.message.contains("`actor`"), "{}", e.message);
    }
}
