//! A real mosquitto for the broker tests (delivery, probe, remote): its `mosquitto.conf` written
//! where the mosquitto user (mosquitto drops root) can read it, started on 127.0.0.1, waited for
//! until it accepts connections, and killed on drop. The config parts those tests share (password
//! auth, a TLS listener) are built here; each test writes the rest of its config itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tls::{chmod, need, sh};

/// A temporary directory that the mosquitto user can read (and write, for persistence).
pub fn test_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o777);
    dir
}

/// `dir/passwd` with these (user, password) pairs, made by mosquitto_passwd, readable by mosquitto.
pub fn write_passwd(dir: &Path, users: &[(&str, &str)]) {
    let passwd = dir.join("passwd");
    for (i, (user, password)) in users.iter().enumerate() {
        let create: &[&str] = if i == 0 { &["-c", "-b"] } else { &["-b"] };
        sh(Command::new(need("mosquitto_passwd"))
            .args(create)
            .arg(&passwd)
            .args([user, password]));
    }
    chmod(&passwd, 0o644);
}

/// Global settings (`per_listener_settings false`): anonymous clients refused, users from
/// `dir/passwd` ([`write_passwd`]) and, with `acl`, the topic rules in `dir/acl`.
pub fn password_auth(dir: &Path, acl: bool) -> String {
    let d = dir.display();
    let mut s =
        format!("per_listener_settings false\nallow_anonymous false\npassword_file {d}/passwd\n");
    if acl {
        s.push_str(&format!("acl_file {d}/acl\n"));
    }
    s
}

/// A TLS 1.2 listener on 127.0.0.1:`port` with the CA and server certificate that
/// [`super::tls::make_certs`] wrote in `dir`; with `mutual`, clients must present a certificate
/// signed by that CA, and its CN is their user name.
pub fn tls_listener(port: u16, dir: &Path, mutual: bool) -> String {
    let d = dir.display();
    let mut s = format!(
        "listener {port} 127.0.0.1\ncafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n"
    );
    if mutual {
        s.push_str("require_certificate true\nuse_identity_as_username true\n");
    }
    s.push_str("tls_version tlsv1.2\n");
    s
}

/// A mosquitto run from `dir/mosquitto.conf`; SIGKILLed on drop.
pub struct Mosquitto {
    dir: PathBuf,
    child: Option<Child>,
    /// The listener port waited for at start-up.
    pub port: u16,
}

impl Mosquitto {
    /// Writes `conf` to `dir/mosquitto.conf` (readable by the mosquitto user), starts mosquitto
    /// with it and returns once 127.0.0.1:`port` accepts connections.
    pub fn start(dir: &Path, conf: &str, port: u16) -> Mosquitto {
        let path = dir.join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        chmod(&path, 0o644);
        let mut m = Mosquitto {
            dir: dir.to_path_buf(),
            child: None,
            port,
        };
        m.restart();
        m
    }

    /// Starts the (stopped) broker again with the same config; returns once its port answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(need("mosquitto"))
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker with SIGTERM (it saves its persistence file, as a service stop does).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sh(Command::new("kill").args(["-TERM", &c.id().to_string()]));
            let _ = c.wait();
        }
    }

    /// Freezes the broker (SIGSTOP) so publishes pile up unacknowledged, then SIGKILLs it: the
    /// case where rumqttc alone drops in-flight QoS 1 messages (stack-facts §5).
    pub fn freeze_and_kill(&mut self, frozen: Duration) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            sh(Command::new("kill").args(["-STOP", &pid]));
            std::thread::sleep(frozen);
            sh(Command::new("kill").args(["-KILL", &pid]));
            let _ = c.wait();
        }
    }

    /// `dir/mosquitto.log`, which a config with `log_dest file <dir>/mosquitto.log` writes; empty
    /// otherwise.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
