//! End-to-end tests of the local HTTP API and the installer page: the real agent (`edge-agent run`)
//! on a real clip with the embedded MQTT broker, its API on a free port with a token file; then the
//! 401s, the metrics moving, snapshots, the redacted config and recent events; and the installer
//! page driven in Debian's headless Chromium (playwright-core, installed by scripts/test.sh).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "c0ffee-installer-token-0123456789";

/// A running agent; killed on drop.
struct Agent {
    child: Child,
    addr: String,
    logs: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn log_text(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The 7 s real clip played `loops` times in a row, so the agent outlives the test's checks.
fn looped_clip(dir: &Path, loops: u32) -> PathBuf {
    let clip = shared_dir().join("footage/video/vn_citycam_haiphong_cbp640_10fps.mp4");
    assert!(clip.is_file(), "missing footage {}", clip.display());
    let out = dir.join("looped.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-stream_loop",
            &(loops - 1).to_string(),
            "-i",
        ])
        .arg(&clip)
        .args(["-c", "copy"])
        .arg(&out)
        .status()
        .expect("run ffmpeg (scripts/test.sh installs it)");
    assert!(status.success(), "ffmpeg could not loop {}", clip.display());
    out
}

/// Starts `edge-agent run` with the API on a free port and waits for its address in the log.
fn start_agent(loops: u32) -> Agent {
    ort_lib();
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = looped_clip(dir.path(), loops);
    let tokens = dir.path().join("api.tokens");
    std::fs::write(
        &tokens,
        format!("# id:token\ninstaller:{TOKEN}\nioc-ops:another-token-abcdefghijkl\n"),
    )
    .unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"[device]
site_id = "test-site"
device_id = "edge-api"

[runtime]
intra_threads = 1

[models]
plate_detector = ""
plate_ocr = ""

[mqtt]
embedded_listen = "127.0.0.1:{mqtt}"

[storage]
spool_dir = "{spool}"

[http]
listen = "127.0.0.1:0"
token_file = "{tokens}"

[[cameras]]
id = "junction"
name = "Hai Phong junction"
url = "{clip}"
target_fps = 4
frame_size = [640, 458]

[[cameras.zones]]
id = "road"
polygon = [[0, 150], [640, 150], [640, 458], [0, 458]]
inertia = 1

[[cameras.rules]]
id = "on-road"
kind = "zone"
zone = "road"

[[cameras]]
id = "spare"
url = "rtsp://admin:s3cret-pass@192.0.2.10:554/Streaming/101"
enabled = false
"#,
            mqtt = free_port(),
            spool = dir.path().join("spool").display(),
            tokens = tokens.display(),
            clip = clip.display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let stderr = child.stderr.take().expect("stderr");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("agent: {line}");
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let mut agent = Agent {
        child,
        addr: String::new(),
        logs,
        dir,
    };
    let start = Instant::now();
    loop {
        let found = agent.logs.lock().ok().and_then(|l| {
            l.iter().find_map(|line| {
                let rest = line.split("local API listening").nth(1)?;
                let addr = rest.split("address=").nth(1)?;
                Some(addr.split_whitespace().next()?.to_string())
            })
        });
        if let Some(a) = found {
            agent.addr = a;
            break;
        }
        if let Ok(Some(status)) = agent.child.try_wait() {
            panic!(
                "the agent exited ({status}) before its API came up:\n{}",
                agent.log_text()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no `local API listening` in the log:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    agent
}

/// A plain HTTP/1.1 exchange, so the test sees exactly what the server sends.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn http(addr: &str, method: &str, path: &str, auth: Option<&str>, body: &str) -> Reply {
    http_to_host(addr, addr, method, path, auth, body)
}

/// [`http`] with the `Host` header a browser would send for the name it used.
fn http_to_host(
    addr: &str,
    host: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn get(agent: &Agent, path: &str) -> Reply {
    http(&agent.addr, "GET", path, Some(&bearer(TOKEN)), "")
}

/// Value of the first sample of `series` (name with its labels, as written) in a scrape.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn api_needs_a_token_everywhere_but_healthz_and_reports_the_live_pipeline() {
    let agent = start_agent(5);
    let a = agent.addr.clone();

    let r = http(&a, "GET", "/healthz", None, "");
    assert_eq!(r.status, 200, "{}", r.text());

    // Every other path: 401 without a token, with a wrong one, or with the wrong scheme.
    let protected = [
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/cameras"),
        ("GET", "/cameras/junction/snapshot.jpg"),
        ("GET", "/config"),
        ("GET", "/events/recent"),
        ("POST", "/config/validate?camera=junction"),
        ("GET", "/no/such/path"),
    ];
    let wrong = [
        None,
        Some(bearer("not-the-token-000000000000")),
        Some(bearer(&TOKEN[..TOKEN.len() - 1])),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
    ];
    for (method, path) in protected {
        for auth in &wrong {
            let r = http(&a, method, path, auth.as_deref(), "");
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {}", r.text());
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"edge-agent\""),
                "{path}"
            );
            assert!(
                !r.text().contains("junction"),
                "a 401 leaks data: {}",
                r.text()
            );
        }
    }

    // With the token: ready once the camera has processed frames.
    let ready = wait_until("/readyz", Duration::from_secs(90), || {
        let r = get(&agent, "/readyz");
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(ready["cameras"]["junction"], "ready", "{ready}");

    // The counters move between two scrapes; latency histograms and MQTT state are there.
    let first = get(&agent, "/metrics");
    assert_eq!(first.status, 200);
    assert!(
        first
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        first.headers
    );
    let t1 = first.text();
    let processed = "edge_agent_camera_frames_processed_total{camera=\"junction\"}";
    let decoded = "edge_agent_camera_frames_decoded_total{camera=\"junction\"}";
    let p1 = metric(&t1, processed).expect("processed counter");
    let d1 = metric(&t1, decoded).expect("decoded counter");
    assert!(p1 >= 1.0 && d1 >= p1, "{t1}");
    // The decode thread runs ahead of the processing one and blocks on a full queue, so one
    // scrape may see only one of the two counters moved: wait for both.
    let (t2, p2) = wait_until(
        "the processed and decoded counters to grow",
        Duration::from_secs(30),
        || {
            let t = get(&agent, "/metrics").text();
            let p = metric(&t, processed)?;
            let d = metric(&t, decoded)?;
            (p > p1 && d > d1).then_some((t, p))
        },
    );
    assert!(
        metric(&t2, "edge_agent_camera_fps{camera=\"junction\"}").unwrap() > 0.0,
        "{t2}"
    );
    let detect_count = metric(
        &t2,
        "edge_agent_stage_latency_seconds_count{camera=\"junction\",stage=\"detect\"}",
    )
    .expect("detect latency histogram");
    assert!(
        detect_count >= p2 - 1.0,
        "{detect_count} detections for {p2} frames"
    );
    let inf = metric(
        &t2,
        "edge_agent_stage_latency_seconds_bucket{camera=\"junction\",stage=\"detect\",le=\"+Inf\"}",
    )
    .unwrap();
    assert_eq!(inf, detect_count);
    assert!(
        metric(
            &t2,
            "edge_agent_camera_decode_errors_total{camera=\"junction\"}"
        )
        .is_some()
    );
    assert!(
        metric(
            &t2,
            "edge_agent_camera_frames_dropped_total{camera=\"junction\",reason=\"queue\"}"
        )
        .is_some()
    );
    assert!(metric(&t2, "edge_agent_spool_events").is_some(), "{t2}");
    assert!(metric(&t2, "edge_agent_spool_evictions_total{what=\"event\"}").is_some());
    let connected = wait_until("MQTT to connect", Duration::from_secs(30), || {
        let t = get(&agent, "/metrics").text();
        (metric(&t, "edge_agent_mqtt_connected") == Some(1.0)).then_some(t)
    });
    assert!(metric(&connected, "edge_agent_mqtt_connects_total").unwrap() >= 1.0);

    // Snapshot: a real JPEG of the frame size.
    let snap = get(&agent, "/cameras/junction/snapshot.jpg");
    assert_eq!(snap.status, 200, "{}", snap.text());
    assert_eq!(snap.header("content-type"), Some("image/jpeg"));
    let img = image::load_from_memory(&snap.body).expect("snapshot decodes");
    assert_eq!((img.width(), img.height()), (640, 458));
    assert_eq!(get(&agent, "/cameras/nope/snapshot.jpg").status, 404);

    // Camera status for the page.
    let cams = get(&agent, "/cameras").json();
    let cam = &cams["cameras"][0];
    assert_eq!(cam["id"], "junction");
    assert_eq!(cam["state"], "up", "{cam}");
    assert_eq!(cam["zones"][0]["id"], "road");

    // Config: secrets gone, the rest there.
    let cfg = get(&agent, "/config");
    assert_eq!(cfg.status, 200);
    let text = cfg.text();
    assert!(
        !text.contains("s3cret-pass"),
        "camera password leaked: {text}"
    );
    assert!(
        !text.contains("api.tokens"),
        "token file path shown: {text}"
    );
    let v = cfg.json();
    assert_eq!(v["device"]["device_id"], "edge-api");
    assert_eq!(
        v["cameras"][1]["url"],
        "rtsp://admin:***@192.0.2.10:554/Streaming/101"
    );

    // Events: vehicles entering the road zone.
    let events = wait_until("a zone event", Duration::from_secs(60), || {
        let v = get(&agent, "/events/recent?limit=20").json();
        let list = v["events"].as_array()?.clone();
        list.iter()
            .any(|e| e["kind"] == "zone_enter")
            .then_some(list)
    });
    assert!(events.len() <= 20);
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );

    // Validation of an editor snippet: a good one passes, a zone outside the frame is refused.
    let good = "[[cameras.zones]]\nid = \"road\"\npolygon = [[0, 200], [640, 200], [640, 458]]\n";
    let r = http(
        &a,
        "POST",
        "/config/validate?camera=junction",
        Some(&bearer(TOKEN)),
        good,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let bad = "[[cameras.zones]]\nid = \"road\"\npolygon = [[0, 200], [900, 200], [640, 458]]\n";
    let r = http(
        &a,
        "POST",
        "/config/validate?camera=junction",
        Some(&bearer(TOKEN)),
        bad,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["problems"][0]["line"], 1, "{}", r.text());
    // A body far beyond any camera's zones is refused before it is parsed.
    let huge = format!("# {}\n{good}", "x".repeat(200_000));
    let r = http(
        &a,
        "POST",
        "/config/validate?camera=junction",
        Some(&bearer(TOKEN)),
        &huge,
    );
    assert_eq!(r.status, 413, "{}", r.text());

    // DNS rebinding: a page on another name that resolves to the device sends that name.
    let port = a.rsplit(':').next().unwrap_or_default();
    let r = http_to_host(
        &a,
        &format!("rebind.example.com:{port}"),
        "GET",
        "/metrics",
        Some(&bearer(TOKEN)),
        "",
    );
    assert_eq!(r.status, 421, "{}", r.text());
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = http_to_host(&a, &host, "GET", "/healthz", None, "");
        assert_eq!(r.status, 200, "{host}: {}", r.text());
    }
    // The page may not be framed and loads only its own script, style and images.
    let page = http(&a, "GET", "/", None, "");
    let header = |name: &str| {
        page.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");

    // Each authenticated request is recorded with its token's id, never the token.
    let logs = agent.log_text();
    assert!(
        logs.contains("api access") && logs.contains("token:installer"),
        "no access record in the log"
    );
    assert!(!logs.contains(TOKEN), "the token itself was logged");
    // ... and in the hash-chained audit log, which still verifies.
    let audit = agent.dir.path().join("spool/audit.jsonl");
    let records = std::fs::read_to_string(&audit).expect("audit log in the spool dir");
    let access: Vec<serde_json::Value> = records
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"] == "api.access")
        .collect();
    assert!(
        access
            .iter()
            .any(|r| r["actor"] == "token:installer" && r["details"]["path"] == "/metrics"),
        "{records}"
    );
    assert!(!records.contains(TOKEN));
    let verify = run(bin().args(["audit", "verify"]).arg(&audit));
    assert!(verify.status.success(), "{}", stderr(&verify));
}

/// Where scripts/test.sh installs playwright-core (`.cache/npm`, or `EDGE_AGENT_NPM_DIR`).
fn npm_dir() -> PathBuf {
    std::env::var_os("EDGE_AGENT_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/npm"))
}

#[test]
fn installer_page_in_headless_chromium_shows_the_camera_and_draws_a_zone() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.is_file(),
        "Debian's chromium is not installed; scripts/test.sh installs it (apt-get install chromium)"
    );
    let npm = npm_dir();
    assert!(
        npm.join("node_modules/playwright-core/package.json")
            .is_file(),
        "playwright-core is missing under {}; scripts/test.sh installs it from tests/browser/package-lock.json",
        npm.display()
    );
    let agent = start_agent(8);
    let out = tempfile::tempdir().unwrap();
    let shot = out.path().join("installer.png");
    let script = repo_root().join("tests/browser/installer.cjs");
    let run = Command::new("node")
        .arg(&script)
        .arg(format!("http://{}/", agent.addr))
        .arg(TOKEN)
        .arg(&shot)
        .env("EDGE_AGENT_NPM_DIR", &npm)
        .env("CHROMIUM", chromium)
        .output()
        .expect("run node (Debian's nodejs)");
    if let Ok(dir) = std::env::var("EDGE_AGENT_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&shot, Path::new(&dir).join("installer.png"));
    }
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "browser script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let result: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON result from the script:\n{stdout}\n{stderr}")),
    )
    .expect("the script's result is JSON");
    eprintln!("browser result: {result}");

    // The page showed the live snapshot at the frame's size, the camera's status and events.
    assert_eq!(result["natural"], serde_json::json!([640, 458]), "{result}");
    assert!(
        result["cameraRow"]
            .as_str()
            .unwrap_or("")
            .contains("junction")
            && result["cameraRow"].as_str().unwrap_or("").contains("up"),
        "{result}"
    );
    assert!(result["events"].as_u64().unwrap_or(0) >= 1, "{result}");

    // The drawn zone is in the TOML, in frame pixels, in the config's own syntax.
    #[derive(serde::Deserialize)]
    struct Snip {
        cameras: Cams,
    }
    #[derive(serde::Deserialize)]
    struct Cams {
        zones: Vec<edge_agent::config::ZoneConfig>,
        lines: Vec<edge_agent::config::LineConfig>,
    }
    let toml_text = result["toml"].as_str().expect("toml text");
    let snip: Snip = toml::from_str(toml_text)
        .unwrap_or_else(|e| panic!("the page's TOML does not parse: {e}\n{toml_text}"));
    assert_eq!(snip.cameras.zones.len(), 2, "{toml_text}");
    assert_eq!(snip.cameras.zones[0].id, "road", "existing zone kept");
    let drawn = &snip.cameras.zones[1];
    assert_eq!(drawn.id, "zone-1");
    let clicked = result["clicked"].as_array().expect("clicked fractions");
    assert_eq!(drawn.polygon.len(), clicked.len(), "{toml_text}");
    for (p, f) in drawn.polygon.iter().zip(clicked) {
        let (fx, fy) = (f[0].as_f64().unwrap(), f[1].as_f64().unwrap());
        assert!(
            (p[0] - fx * 640.0).abs() <= 2.0 && (p[1] - fy * 458.0).abs() <= 2.0,
            "point {p:?} is not where the click at {fx},{fy} was"
        );
    }
    assert_eq!(snip.cameras.lines.len(), 1, "{toml_text}");
    let line = &snip.cameras.lines[0];
    assert_eq!(line.id, "line-1");
    for (p, f) in line
        .points
        .iter()
        .zip(result["line"].as_array().expect("line"))
    {
        let (fx, fy) = (f[0].as_f64().unwrap(), f[1].as_f64().unwrap());
        assert!(
            (p[0] - fx * 640.0).abs() <= 2.0 && (p[1] - fy * 458.0).abs() <= 2.0,
            "line end {p:?} is not where the click at {fx},{fy} was"
        );
    }
    assert_eq!(
        result["validate"].as_str().unwrap_or(""),
        "OK: 2 zones, 1 lines",
        "{result}"
    );

    // The screenshot is a real picture of the page: right size, not blank.
    let png = image::open(&shot).expect("the screenshot decodes as PNG");
    assert_eq!((png.width(), png.height()), (1400, 1000));
    let rgb = png.to_rgb8();
    let mut colours = std::collections::HashSet::new();
    let mut dark = 0u64;
    for p in rgb.pixels() {
        colours.insert(p.0);
        if p.0.iter().map(|&c| u32::from(c)).sum::<u32>() < 150 {
            dark += 1;
        }
    }
    assert!(colours.len() > 1000, "only {} colours", colours.len());
    assert!(dark > 10_000, "no dark pixels: the snapshot is missing");
}

fn write_config(dir: &Path, http: &str) -> PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            "[device]\nsite_id = \"s\"\ndevice_id = \"d\"\n\n[storage]\nspool_dir = \"{}\"\n\n[http]\n{http}\n\n[[cameras]]\nid = \"c\"\nurl = \"{}\"\n",
            dir.join("spool").display(),
            shared_dir()
                .join("footage/video/vn_citycam_haiphong_cbp640_10fps.mp4")
                .display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn check_refuses_a_public_listen_without_a_token_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "listen = \"0.0.0.0:8080\"");
    let out = run(bin().arg("check").arg(&cfg));
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("c.toml:9:10") && text.contains("without a token"),
        "{text}"
    );
}

#[test]
fn a_bad_token_file_or_a_taken_port_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("api.tokens");
    std::fs::write(&tokens, "installer:short\n").unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_file = \"{}\"",
            tokens.display()
        ),
    );
    let out = run(bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .env("ORT_DYLIB_PATH", ort_lib()));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("API token file {}, line 1", tokens.display()))
            && err.contains("at least 16 characters"),
        "{err}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = write_config(dir.path(), &format!("listen = \"{addr}\""));
    let out = run(bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .env("ORT_DYLIB_PATH", ort_lib()));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on {addr} for the local API")),
        "{err}"
    );
}

/// Cost of the API on a live agent: a snapshot that must be encoded (overlay + JPEG), a cached one,
/// and a metrics scrape; printed, not asserted. Run with
/// `cargo test --release --test api -- --ignored --nocapture api_request_cost`.
#[test]
#[ignore]
fn api_request_cost() {
    let agent = start_agent(5);
    wait_until("/readyz", Duration::from_secs(90), || {
        (get(&agent, "/readyz").status == 200).then_some(())
    });
    let time = |path: &str| {
        let t = Instant::now();
        let r = get(&agent, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        (t.elapsed(), r.body.len())
    };
    let (mut fresh, mut cached, mut scrape) = (Vec::new(), Vec::new(), Vec::new());
    let (mut jpeg_bytes, mut metrics_bytes) = (0, 0);
    for _ in 0..15 {
        // Past the 250 ms reuse window: this one is encoded.
        std::thread::sleep(Duration::from_millis(400));
        let (d, n) = time("/cameras/junction/snapshot.jpg");
        fresh.push(d);
        jpeg_bytes = n;
        cached.push(time("/cameras/junction/snapshot.jpg").0);
        let (d, n) = time("/metrics");
        scrape.push(d);
        metrics_bytes = n;
    }
    let p50 = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (f50, fmax) = p50(&mut fresh);
    let (c50, cmax) = p50(&mut cached);
    let (m50, mmax) = p50(&mut scrape);
    eprintln!(
        "640x458 snapshot encoded: p50 {f50:?} max {fmax:?} ({jpeg_bytes} B); reused: p50 {c50:?} max {cmax:?}; /metrics: p50 {m50:?} max {mmax:?} ({metrics_bytes} B, 1 camera)"
    );
}
