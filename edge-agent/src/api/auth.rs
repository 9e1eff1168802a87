//! Bearer tokens of the local API: read from `[http].token_file`, compared in constant time, and
//! every authenticated request recorded with the id of the token that made it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the API token file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("API token file {path}, line {line}: {reason}")]
    Format {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The accepted tokens, kept only as sha256 digests.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.entries.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Tokens").field("ids", &ids).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Tokens shorter than this are refused: a short token is guessable over the network.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Reads a token file: one token per line as `id:token`, or a single bare token (id
    /// `default`). Blank lines and lines starting with `#` are ignored.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Same as [`Tokens::load`] on the text of the file; `path` is only for messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TokenError> {
        let err = |line: usize, reason: String| TokenError::Format {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let mut entries: Vec<(String, [u8; 32])> = Vec::new();
        for &(n, line) in &lines {
            let (id, token) = match line.split_once(':') {
                Some((id, token)) => (id.trim(), token.trim()),
                None if lines.len() == 1 => ("default", line),
                None => {
                    return Err(err(
                        n,
                        "with several tokens each line must be `id:token`".into(),
                    ));
                }
            };
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(err(
                    n,
                    format!("token id `{id}` must be letters, digits, `-`, `_` or `.`"),
                ));
            }
            if token.len() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
                return Err(err(
                    n,
                    format!(
                        "token `{id}` must be at least {MIN_TOKEN_LEN} characters without spaces (e.g. `openssl rand -hex 24`)"
                    ),
                ));
            }
            if entries.iter().any(|(other, _)| other == id) {
                return Err(err(n, format!("token id `{id}` appears twice")));
            }
            entries.push((id.to_string(), digest(token)));
        }
        if entries.is_empty() {
            return Err(err(0, "no token in the file".into()));
        }
        Ok(Tokens { entries })
    }

    /// The id of the token the request's `Authorization` header carries, if it is one of ours.
    /// Every configured token is compared (in constant time) whatever matches, so the time taken
    /// tells nothing about the tokens.
    pub fn check(&self, authorization: Option<&str>) -> Option<&str> {
        let presented = authorization?.strip_prefix("Bearer ")?.trim();
        let d = digest(presented);
        let mut found = None;
        for (id, want) in &self.entries {
            if bool::from(want.ct_eq(&d)) {
                found = Some(id.as_str());
            }
        }
        found
    }

    /// Token ids, for logs.
    pub fn ids(&self) -> Vec<&str> {
        self.entries.iter().map(|(id, _)| id.as_str()).collect()
    }
}

/// Where access records go besides the log: the agent's audit trail (`actor`, `details`).
pub type AuditSink = Box<dyn Fn(&str, serde_json::Value) + Send + Sync>;

/// Per (actor, path): when last recorded, and requests since.
type Seen = (Option<Instant>, u64);

/// Records authenticated API requests by token id (`token:<id>`), the accountability trail
/// DESIGN.md asks for; the only place API access is recorded. Every request is logged at debug
/// level. The first request of a token to a path is recorded (log at info, and the audit sink),
/// then at most one record per `window` for that pair, carrying how many requests it stands for:
/// a page polling snapshots every second must not write 86 400 audit records a day.
pub struct AccessLog {
    window: Duration,
    seen: Mutex<HashMap<(String, String), Seen>>,
    audit: Option<AuditSink>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("window", &self.window)
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

impl AccessLog {
    /// Records coalesced per token and path over `window`.
    pub fn new(window: Duration, audit: Option<AuditSink>) -> Self {
        AccessLog {
            window,
            seen: Mutex::new(HashMap::new()),
            audit,
        }
    }

    /// One authenticated request.
    pub fn record(&self, token_id: &str, method: &str, path: &str, status: u16) {
        self.record_actor(&format!("token:{token_id}"), method, path, status);
    }

    /// One request to an API without tokens (loopback only): recorded as actor `open`, so the
    /// trail says that whoever could reach the port used it.
    pub fn record_open(&self, method: &str, path: &str, status: u16) {
        self.record_actor("open", method, path, status);
    }

    /// One refused request (no or a wrong token: 401; a Host the device does not answer to: 421):
    /// recorded as actor `refused`, so guessing at tokens leaves a trace.
    pub fn record_refused(&self, method: &str, path: &str, status: u16) {
        self.record_actor("refused", method, path, status);
    }

    fn record_actor(&self, actor: &str, method: &str, path: &str, status: u16) {
        // Coalesced per route, not per raw path: paths come from the network, and one entry per
        // distinct path would grow without bound.
        let route = route_of(path);
        let path: String = path.chars().take(200).collect();
        let path = path.as_str();
        tracing::debug!(target: "edge_agent::api::access", actor = %actor, method, path, status, "api request");
        let now = Instant::now();
        let due = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let entry = seen
                .entry((actor.to_string(), route.to_string()))
                .or_insert((None, 0));
            entry.1 += 1;
            if entry.0.is_none_or(|t| now.duration_since(t) >= self.window) {
                let n = entry.1;
                *entry = (Some(now), 0);
                Some(n)
            } else {
                None
            }
        };
        if let Some(requests) = due {
            tracing::info!(actor = %actor, method, path, status, requests, "api access");
            if let Some(audit) = &self.audit {
                audit(
                    actor,
                    serde_json::json!({
                        "method": method,
                        "route": route,
                        "path": path,
                        "status": status,
                        "requests": requests,
                    }),
                );
            }
        }
    }
}

/// The API route a path belongs to (a fixed set), for coalescing access records.
fn route_of(path: &str) -> &'static str {
    const FIXED: [&str; 11] = [
        "/",
        "/index.html",
        "/app.js",
        "/style.css",
        "/healthz",
        "/readyz",
        "/metrics",
        "/cameras",
        "/config",
        "/config/validate",
        "/events/recent",
    ];
    if let Some(r) = FIXED.iter().find(|r| **r == path) {
        return r;
    }
    match path.strip_prefix("/cameras/") {
        Some(rest) if rest.ends_with("/snapshot.jpg") => "/cameras/:id/snapshot.jpg",
        _ => "(other)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_records_are_keyed_by_route_so_hostile_paths_do_not_grow_memory() {
        let log = AccessLog::new(Duration::from_secs(600), None);
        for i in 0..5000 {
            log.record_refused("GET", &format!("/probe/{i}/{}", "x".repeat(i % 300)), 401);
            log.record_open("GET", &format!("/cameras/cam-{i}/snapshot.jpg"), 200);
        }
        let seen = log.seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{:?}", seen.keys().collect::<Vec<_>>());
        assert!(seen.contains_key(&("refused".to_string(), "(other)".to_string())));
        assert!(seen.contains_key(&("open".to_string(), "/cameras/:id/snapshot.jpg".to_string())));
    }

    const T1: &str = "0123456789abcdef0123";
    const T2: &str = "fedcba9876543210fedc";

    #[test]
    fn bare_token_is_default_and_ids_are_matched() {
        let t = Tokens::parse(Path::new("t"), &format!("# comment\n\n{T1}\n")).unwrap();
        assert_eq!(t.ids(), vec!["default"]);
        assert_eq!(t.check(Some(&format!("Bearer {T1}"))), Some("default"));
        let t = Tokens::parse(Path::new("t"), &format!("installer:{T1}\nioc-ops:{T2}\n")).unwrap();
        assert_eq!(t.check(Some(&format!("Bearer {T2}"))), Some("ioc-ops"));
        assert_eq!(t.check(Some(&format!("Bearer {T1}"))), Some("installer"));
        assert_eq!(t.check(Some(&format!("Bearer {T1}x"))), None);
        assert_eq!(t.check(Some(T1)), None, "scheme required");
        assert_eq!(t.check(Some(&format!("Basic {T1}"))), None);
        assert_eq!(t.check(None), None);
    }

    #[test]
    fn access_records_are_coalesced_per_token_and_path() {
        let got = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let log = AccessLog::new(
            Duration::from_millis(200),
            Some(Box::new(move |actor, details| {
                sink.lock().unwrap().push((actor.to_string(), details));
            })),
        );
        for _ in 0..5 {
            log.record("installer", "GET", "/metrics", 200);
        }
        log.record("ioc-ops", "GET", "/metrics", 200);
        std::thread::sleep(Duration::from_millis(250));
        log.record("installer", "GET", "/metrics", 200);
        let got = got.lock().unwrap();
        let summary: Vec<(&str, u64)> = got
            .iter()
            .map(|(a, d)| (a.as_str(), d["requests"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("token:installer", 1),
                ("token:ioc-ops", 1),
                ("token:installer", 5)
            ]
        );
        assert_eq!(got[0].1["path"], "/metrics");
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = Tokens::parse(Path::new("tok"), &format!("a:{T1}\n{T2}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tok, line 2"), "{e}");
        let e = Tokens::parse(Path::new("tok"), "a:short\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("16 characters"), "{e}");
        let e = Tokens::parse(Path::new("tok"), &format!("a:{T1}\na:{T2}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
        assert!(Tokens::parse(Path::new("tok"), "# nothing\n").is_err());
    }
}
