//! The loopback RTSP server fixture (`tests/fixtures/rtsp_server.py`, gst-rtsp-server through
//! Debian's python3-gi): start it on a free port, kill it like a camera losing power, restart it
//! on the same port.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Debian's interpreter: the `python3` on PATH may be one without `gi` (stack-facts §4c).
const PYTHON: &str = "/usr/bin/python3";

pub struct RtspServer {
    child: Option<Child>,
    pub port: u16,
    mount: String,
    file: PathBuf,
    codec: &'static str,
}

impl RtspServer {
    /// Serves the H.264 track of `file` at `rtsp://127.0.0.1:<free port>/<mount>` and waits until
    /// it answers.
    pub fn start(file: &Path, mount: &str) -> Self {
        Self::start_codec(file, mount, "h264")
    }

    /// [`RtspServer::start`] for a clip in `codec` (`h264` or `h265`).
    pub fn start_codec(file: &Path, mount: &str, codec: &'static str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("pick a free port")
            .port();
        let mut s = Self {
            child: None,
            port,
            mount: mount.to_string(),
            file: file.to_path_buf(),
            codec,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{}", self.port, self.mount)
    }

    /// Kills the server abruptly (SIGKILL), like a camera losing power.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes (`true`, SIGSTOP) or thaws (`false`, SIGCONT) the server: connections stay open but
    /// nothing is sent, like a hung camera.
    pub fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("server running");
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill (procps; scripts/lib.sh installs it)");
        assert!(status.success(), "kill {signal} failed");
    }

    /// (Re)starts the server on the same port; returns once it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/rtsp_server.py");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .args(["--port", &self.port.to_string(), "--mount", &self.mount])
            .arg("--file")
            .arg(&self.file)
            .args(["--codec", self.codec])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {PYTHON} {}: {e}; scripts/test.sh installs python3-gi and gir1.2-gst-rtsp-server-1.0", script.display())
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        if !line.starts_with("READY") {
            let _ = child.kill();
            panic!(
                "the RTSP test server did not start (got {line:?}); it needs /usr/bin/python3 with python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-{{base,good,bad}} (scripts/lib.sh installs them)"
            );
        }
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "RTSP test server not answering on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}
