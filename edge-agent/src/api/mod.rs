//! The local HTTP API on `[http].listen`, for installers at the roadside and for monitoring:
//! health, readiness, Prometheus metrics, live snapshots with overlays, the (redacted) config,
//! recent events, and the installer page (`/`), a static page with no build step.
//!
//! Every path but `/healthz` and the page's own static files needs `Authorization: Bearer <token>`
//! when `[http].token_file` is set; without one (allowed on loopback only, `check` refuses
//! otherwise) the API is open to local processes. The server runs on its own thread with a small
//! tokio runtime, like the MQTT publisher, so it answers even while the pipeline is busy.

pub mod auth;
mod config;
pub mod metrics;
pub mod redact;
pub mod snapshot;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{CameraConfig, LoadedConfig};
use crate::pipeline::live::{CameraLive, LiveHub, StreamState};

pub use auth::{AccessLog, AuditSink, TokenError, Tokens};
pub use config::HttpConfig;

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("http.listen `{addr}` is not an address such as 127.0.0.1:8080")]
    Listen { addr: String },
    #[error("cannot listen on {addr} for the local API: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot start the local API thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the handlers share.
pub struct ApiState {
    pub hub: Arc<LiveHub>,
    /// `None`: no token file, the API is open (loopback only).
    pub tokens: Option<Tokens>,
    /// `/config`, secrets already replaced.
    pub config: Value,
    /// The configured cameras, for `/config/validate`.
    pub cameras: BTreeMap<String, CameraConfig>,
    /// Who used the API.
    pub access: AccessLog,
    /// Host names accepted besides IP literals and `localhost` (`[http].allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// Snapshot encodes at once: each holds a frame copy and a core for tens of milliseconds.
    pub encodes: tokio::sync::Semaphore,
}

/// Snapshot encodes that may run at once; more are answered `503` with `Retry-After`.
pub const MAX_SNAPSHOT_ENCODES: usize = 2;
/// Longest a `/config/validate` may take before it is answered 503 (the check goes on on a blocking
/// thread, but nobody waits for it).
const VALIDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest `/config/validate` body: a camera's zones and rules are a few KB.
pub const MAX_VALIDATE_BODY: usize = 64 * 1024;

/// How often one token's use of one path is recorded again (with the count in between).
pub const ACCESS_RECORD_WINDOW: Duration = Duration::from_secs(600);

impl ApiState {
    /// State for `loaded`'s config; reads the token file if one is set.
    pub fn from_config(
        loaded: &LoadedConfig,
        hub: Arc<LiveHub>,
        audit: Option<AuditSink>,
    ) -> Result<Self, ApiError> {
        let http = &loaded.config.http;
        let tokens = match &http.token_file {
            Some(p) => Some(Tokens::load(&loaded.resolve_path(p))?),
            None => None,
        };
        Ok(ApiState {
            hub,
            tokens,
            config: redact::redacted_config(&loaded.config),
            cameras: loaded
                .config
                .cameras
                .iter()
                .map(|c| (c.id.clone(), c.clone()))
                .collect(),
            access: AccessLog::new(ACCESS_RECORD_WINDOW, audit),
            allowed_hosts: http.allowed_hosts.clone(),
            encodes: tokio::sync::Semaphore::new(MAX_SNAPSHOT_ENCODES),
        })
    }
}

/// Paths served without a token: the liveness probe and the installer page's static files (which
/// hold no data; the page asks for the token and sends it with every API call).
const OPEN: &[&str] = &["/healthz", "/", "/index.html", "/app.js", "/style.css"];

const PAGE_HTML: &str = include_str!("page/index.html");
const PAGE_JS: &str = include_str!("page/app.js");
const PAGE_CSS: &str = include_str!("page/style.css");

/// The API's routes with authentication.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(page_html))
        .route("/index.html", get(page_html))
        .route("/app.js", get(page_js))
        .route("/style.css", get(page_css))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/cameras", get(cameras))
        .route("/cameras/:id/snapshot.jpg", get(snapshot))
        .route("/config", get(config))
        .route(
            "/config/validate",
            post(validate_snippet).layer(axum::extract::DefaultBodyLimit::max(MAX_VALIDATE_BODY)),
        )
        .route("/events/recent", get(recent_events))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every answer carries: the page loads only its own script, style and images (snapshots
/// arrive as blobs), may not be framed, and sends no referrer.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Whether a `Host` header names this API: an IP address, `localhost`, or a configured name. A
/// page on another name that resolves here (DNS rebinding) sends that name and is refused.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(n, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                n
            } else {
                host
            }
        }),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

async fn authenticate(State(st): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    if let Some(host) = host
        && !host_allowed(host, &st.allowed_hosts)
    {
        tracing::warn!(path = %path, host = %host.escape_debug(), "api request refused: unknown Host");
        st.access.record_refused(
            req.method().as_str(),
            &path,
            StatusCode::MISDIRECTED_REQUEST.as_u16(),
        );
        return json_error(
            StatusCode::MISDIRECTED_REQUEST,
            "unknown Host: use the device's address, localhost, or a name in [http].allowed_hosts",
        );
    }
    if OPEN.contains(&path.as_str()) {
        return next.run(req).await;
    }
    let Some(tokens) = &st.tokens else {
        let method = req.method().to_string();
        let response = next.run(req).await;
        st.access
            .record_open(&method, &path, response.status().as_u16());
        return response;
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(id) = tokens.check(header).map(str::to_string) else {
        let message = if header.is_none() {
            "missing Authorization: Bearer <token>"
        } else {
            "invalid token"
        };
        tracing::warn!(path = %path, presented = header.is_some(), "api request refused");
        st.access.record_refused(
            req.method().as_str(),
            &path,
            StatusCode::UNAUTHORIZED.as_u16(),
        );
        let mut r = json_error(StatusCode::UNAUTHORIZED, message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"edge-agent\""),
        );
        return r;
    };
    let method = req.method().to_string();
    let response = next.run(req).await;
    st.access
        .record(&id, &method, &path, response.status().as_u16());
    response
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such API path")
}

async fn healthz() -> &'static str {
    "ok\n"
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page_html() -> Response {
    static_file("text/html; charset=utf-8", PAGE_HTML)
}
async fn page_js() -> Response {
    static_file("text/javascript; charset=utf-8", PAGE_JS)
}
async fn page_css() -> Response {
    static_file("text/css; charset=utf-8", PAGE_CSS)
}

/// A camera is ready when its stream is up and it processed a frame recently.
fn camera_ready(c: &CameraLive) -> Result<(), String> {
    if let Some(e) = &c.rules_error {
        return Err(format!("rules disabled: {e}"));
    }
    let fresh = Duration::from_secs_f64((10.0 / c.target_fps.max(0.1)).max(5.0));
    match (&c.stream, c.last_frame_age()) {
        (StreamState::Up { .. }, Some(age)) if age <= fresh => Ok(()),
        (StreamState::Up { .. }, Some(age)) => {
            Err(format!("no frame processed for {:.1} s", age.as_secs_f64()))
        }
        (StreamState::Up { .. }, None) => Err("no frame processed yet".into()),
        (StreamState::Down { reason }, _) => Err(format!("stream down: {reason}")),
        (s, _) => Err(format!("stream {}", s.as_str())),
    }
}

async fn readyz(State(st): State<Arc<ApiState>>) -> Response {
    let cams = st.hub.cameras();
    let mut detail = serde_json::Map::new();
    let mut ready = !cams.is_empty();
    for c in &cams {
        let r = camera_ready(c);
        ready &= r.is_ok();
        detail.insert(
            c.id.clone(),
            match r {
                Ok(()) => json!("ready"),
                Err(why) => json!(why),
            },
        );
    }
    let mut body = json!({ "ready": ready, "cameras": detail });
    if let Some(d) = st.hub.delivery_stats() {
        let s = d.spool;
        // Evicting for the disk loses data: not ready, and say why.
        body["storage"] = if s.disk_low {
            ready = false;
            json!(format!(
                "disk full: the spool keeps [storage].min_free_mb free by dropping the oldest \
                 undelivered data ({} events and {} images dropped so far)",
                s.evicted_events, s.evicted_evidence
            ))
        } else {
            json!("ok")
        };
        body["ready"] = json!(ready);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(st): State<Arc<ApiState>>) -> Response {
    let cams = st.hub.cameras();
    let delivery = st.hub.delivery_stats();
    let text = metrics::render(
        &cams,
        delivery.as_ref(),
        &st.hub.event_counts(),
        st.hub.clip_stats().as_ref(),
        st.hub.uptime(),
    );
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

fn camera_json(c: &CameraLive) -> Value {
    let since = chrono::DateTime::<chrono::Utc>::from(c.stream_since).to_rfc3339();
    let detail = match &c.stream {
        StreamState::Up { description } => description.clone(),
        StreamState::Down { reason } => reason.clone(),
        _ => String::new(),
    };
    let frame = c.frame.as_ref().map(|f| {
        json!({
            "seq": f.seq,
            "width": f.image.width(),
            "height": f.image.height(),
            "capture_time": chrono::DateTime::<chrono::Utc>::from(f.capture_time).to_rfc3339(),
            "age_s": f.at.elapsed().as_secs_f64(),
            "objects": f.objects.len(),
        })
    });
    let (zones, lines) = c.config.as_ref().map_or((json!([]), json!([])), |cfg| {
        (json!(cfg.zones), json!(cfg.lines))
    });
    json!({
        "id": c.id,
        "name": c.name,
        "url": redact::redact_url(&c.url),
        "state": c.stream.as_str(),
        "state_detail": detail,
        "state_since": since,
        "ready": camera_ready(c).is_ok(),
        "fps": c.fps(),
        "target_fps": c.target_fps,
        "decoded": c.decoded,
        "sampled": c.sampled,
        "processed": c.stats.processed,
        "dropped": c.dropped + c.source.dropped,
        "failed": c.failed,
        "decode_errors": c.source.decode_errors,
        "reconnects": c.source.reconnects,
        "frame": frame,
        "frame_size": c.config.as_ref().and_then(|cfg| cfg.frame_size),
        "zones": zones,
        "lines": lines,
    })
}

async fn cameras(State(st): State<Arc<ApiState>>) -> Response {
    let list: Vec<Value> = st.hub.cameras().iter().map(camera_json).collect();
    axum::Json(json!({ "cameras": list })).into_response()
}

/// How long an encoded snapshot is reused: at most a few encodes per second per camera, however
/// many clients poll.
const SNAPSHOT_REUSE: Duration = Duration::from_millis(250);

async fn snapshot(State(st): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let Some(cam) = st.hub.camera(&id) else {
        return json_error(StatusCode::NOT_FOUND, &format!("no camera `{id}`"));
    };
    let Some(frame) = cam.frame else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("camera `{id}` has not processed a frame yet"),
        );
    };
    let jpeg = match st.hub.cached_snapshot(&id, frame.seq, SNAPSHOT_REUSE) {
        Some(j) => j,
        None => {
            let Ok(_permit) = st.encodes.try_acquire() else {
                let mut r = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "snapshot encoders busy; retry in a second",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            };
            let (cfg, blur) = (cam.config, cam.blur_people);
            let seq = frame.seq;
            let encoded =
                tokio::task::spawn_blocking(move || snapshot::encode(&frame, cfg.as_ref(), blur))
                    .await;
            match encoded {
                Ok(Ok(j)) => {
                    let j = bytes::Bytes::from(j);
                    st.hub.store_snapshot(&id, seq, j.clone());
                    j
                }
                Ok(Err(e)) => {
                    tracing::error!(camera = %id, error = %e, "cannot encode the snapshot");
                    return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
                }
                Err(e) => {
                    tracing::error!(camera = %id, error = %e, "snapshot task failed");
                    return json_error(StatusCode::INTERNAL_SERVER_ERROR, "snapshot failed");
                }
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        jpeg,
    )
        .into_response()
}

async fn config(State(st): State<Arc<ApiState>>) -> Response {
    axum::Json(st.config.clone()).into_response()
}

#[derive(Deserialize)]
struct RecentQuery {
    limit: Option<usize>,
    camera: Option<String>,
}

async fn recent_events(State(st): State<Arc<ApiState>>, Query(q): Query<RecentQuery>) -> Response {
    let limit = q
        .limit
        .unwrap_or(50)
        .min(crate::pipeline::live::RECENT_EVENTS);
    let events: Vec<_> = st
        .hub
        .recent_events(crate::pipeline::live::RECENT_EVENTS)
        .into_iter()
        .filter(|e| q.camera.as_deref().is_none_or(|c| e.camera_id == c))
        .take(limit)
        .collect();
    axum::Json(json!({ "events": events })).into_response()
}

#[derive(Deserialize)]
struct ValidateQuery {
    camera: String,
}

async fn validate_snippet(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<ValidateQuery>,
    body: String,
) -> Response {
    let Some(cam) = st.cameras.get(&q.camera) else {
        return json_error(StatusCode::NOT_FOUND, &format!("no camera `{}`", q.camera));
    };
    // polygon checks grow with the square of the points: off the API's own thread
    let cam = cam.clone();
    let task = tokio::task::spawn_blocking(move || validate::check_snippet(&cam, &body));
    let report = match tokio::time::timeout(VALIDATE_TIMEOUT, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "config validation task failed");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "validation failed");
        }
        Err(_) => {
            tracing::warn!("config validation took longer than {VALIDATE_TIMEOUT:?}; answered 503");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "validation took too long: send a smaller document",
            );
        }
    };
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, axum::Json(report)).into_response()
}

/// The running API server.
pub struct ApiServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Binds `[http].listen` (port 0 picks a free port) and serves on a thread of its own. A port
    /// already taken is an error here, at start, not later. `audit` receives the access records.
    pub fn start(
        loaded: &LoadedConfig,
        hub: Arc<LiveHub>,
        audit: Option<AuditSink>,
    ) -> Result<Self, ApiError> {
        let listen = loaded.config.http.listen.clone();
        let addr: SocketAddr = listen.parse().map_err(|_| ApiError::Listen {
            addr: listen.clone(),
        })?;
        let state = ApiState::from_config(loaded, hub, audit)?;
        Self::start_with(addr, state)
    }

    /// Same as [`ApiServer::start`] with explicit state.
    pub fn start_with(addr: SocketAddr, state: ApiState) -> Result<Self, ApiError> {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| ApiError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ApiError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ApiError::Bind { addr, source })?;
        match &state.tokens {
            Some(t) => tracing::info!(address = %bound, tokens = ?t.ids(), "local API listening"),
            None => tracing::warn!(
                address = %bound,
                "local API listening without a token (set http.token_file to require one)"
            ),
        }
        let app = router(Arc::new(state));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = crate::background::spawn("http-api", "local API", move || async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve the local API");
                    return;
                }
            };
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the local API stopped");
            }
        })
        .map_err(ApiError::Thread)?;
        Ok(ApiServer {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests. The thread is not waited for: a browser holding a connection
    /// open must not delay the agent's exit.
    pub fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        drop(self.thread.take());
    }
}

#[cfg(test)]
mod tests {
    use super::{camera_ready, host_allowed};
    use crate::pipeline::live::LiveHub;

    #[test]
    fn a_camera_running_without_its_rules_is_not_ready() {
        let hub = LiveHub::new();
        let cam: crate::config::CameraConfig =
            toml::from_str("id = \"gate\"\nurl = \"rtsp://10.0.0.5/live\"\n").unwrap();
        hub.add_camera(&cam, &cam.url, 5.0);
        hub.rules_disabled(
            "gate",
            "frame_size is [1006, 720] but the stream's frames are 1280x720",
        );
        let live = hub.camera("gate").unwrap();
        let why = camera_ready(&live).unwrap_err();
        assert!(why.starts_with("rules disabled: frame_size"), "{why}");
    }

    #[test]
    fn only_addresses_localhost_and_configured_names_are_served() {
        let names = vec!["cam-07.local".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "192.168.1.20",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "[fe80::1]",
            "cam-07.local:8080",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for bad in [
            "rebind.example.com:8080",
            "localhost.example.com",
            "127.0.0.1.nip.io:8080",
            "[not-an-ip]:80",
            "cam-07.local.evil:8080",
            "",
        ] {
            assert!(!host_allowed(bad, &names), "{bad}");
        }
    }
}
