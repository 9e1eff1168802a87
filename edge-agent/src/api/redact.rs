//! The config as `/config` shows it: secrets replaced, so an integrator can read a device's
//! settings without learning its credentials.

use serde_json::Value;

use crate::config::Config;

/// What a hidden value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Key names whose values are secret, or say where a secret is kept.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "key", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

pub use crate::source::redact_url;

fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if secret_key(k) && !x.is_null() {
                    *x = Value::String(REDACTED.into());
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => *s = redact_url(s),
        _ => {}
    }
}

/// The config as JSON with passwords, keys, token paths and URL passwords replaced.
pub fn redacted_config(cfg: &Config) -> Value {
    let mut v = serde_json::to_value(cfg).unwrap_or(Value::Null);
    redact(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_and_camera_passwords_are_hidden() {
        let text = r#"
[device]
site_id = "s"
device_id = "d"
[[cameras]]
id = "gate"
url = "rtsp://admin:hunter2@10.1.2.3/stream"
[mqtt]
username = "edge"
password_file = "/etc/edge/mqtt.pass"
[mqtt.tls]
ca_file = "/etc/edge/ca.pem"
client_cert_file = "/etc/edge/c.pem"
client_key_file = "/etc/edge/c.key"
[http]
token_file = "/etc/edge/api.tokens"
"#;
        let loaded = crate::config::parse_str(std::path::Path::new("c.toml"), text.into())
            .expect("valid config");
        let v = redacted_config(&loaded.config);
        let s = v.to_string();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!s.contains("mqtt.pass") && !s.contains("c.key") && !s.contains("api.tokens"));
        assert_eq!(v["mqtt"]["username"], "edge");
        assert_eq!(v["mqtt"]["tls"]["ca_file"], "/etc/edge/ca.pem");
        assert_eq!(v["cameras"][0]["url"], "rtsp://admin:***@10.1.2.3/stream");
        assert_eq!(v["http"]["token_file"], REDACTED);
    }
}
