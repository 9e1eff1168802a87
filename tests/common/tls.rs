//! TLS test fixtures shared by the broker tests (delivery, probe, remote): tools from Debian's
//! packages and certificates made by openssl with the v3 extensions rustls needs.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn need(tool: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{tool} is missing; scripts/test.sh installs it (mosquitto, mosquitto-clients, openssl)"
    );
}

pub fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A CA (`ca`), an unrelated CA (`wrong-ca`), a server certificate for localhost/127.0.0.1 and one
/// client certificate per name in `clients`, all signed by `ca`, readable by the mosquitto user.
pub fn make_certs(dir: &Path, clients: &[&str]) {
    let openssl = need("openssl");
    let run = |args: &[&str]| sh(Command::new(&openssl).current_dir(dir).args(args));
    let ca = |name: &str| {
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
    };
    ca("ca");
    ca("wrong-ca");
    let leaf = |name: &str, cn: &str, ext: &str| {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
    };
    leaf(
        "server",
        "localhost",
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    for c in clients {
        leaf(c, c, "extendedKeyUsage=clientAuth\n");
    }
    for e in std::fs::read_dir(dir).unwrap() {
        chmod(&e.unwrap().path(), 0o644);
    }
}
