//! Device identity and signed events. Each device holds an Ed25519 key (made at first start, kept
//! `0600` beside the spool); every event is signed when the spool gives it its `seq`, over the
//! event's canonical bytes (which include its evidence sha256s, models, config hash and clock-sync
//! state) and the hash of the previous event's signature, so events form one chain per device.
//! `edge-agent verify` checks events and their JPEGs offline with the device's public key.
//!
//! Canonical bytes: the event JSON as sent, parsed and written again with the `signature` member
//! removed (serde_json's maps are sorted by key, and a number read back is written the same way),
//! so signer and verifier derive them from the same text.

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use crate::events::EventSignature;

/// The `prev` of a device's first signed event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The signature scheme named in every event.
pub const ALG: &str = "ed25519";
/// Domain separation: these bytes sign an edge-agent event, nothing else.
const CONTEXT: &[u8] = b"edge-agent event v1\n";
/// ... and these an audit record's hash.
const AUDIT_CONTEXT: &[u8] = b"edge-agent audit v1\n";

/// Key and signature failures; each names the key file or what failed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("device key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("device key {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("event is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The device's signing key.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// Reads the PKCS#8 key at `path`, or makes one there (created new, `0600`) when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, SigningError> {
        let io = |source| SigningError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |reason: String| SigningError::Key {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| bad("the system random source failed".into()))?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut file = opts.open(path).map_err(io)?;
            file.write_all(pkcs8.as_ref()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "made a new Ed25519 signing key");
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let pair = Ed25519KeyPair::from_pkcs8(&bytes)
            .map_err(|e| bad(format!("not an Ed25519 PKCS#8 key ({e})")))?;
        Ok(DeviceKey { pair })
    }

    /// The public key, hex: what the centre pins for this device.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// Signs an audit record's hash (hex): whoever can write the log but not use this key cannot
    /// write records that verify.
    pub fn sign_audit(&self, record_hash: &str) -> String {
        let mut m = AUDIT_CONTEXT.to_vec();
        m.extend_from_slice(record_hash.as_bytes());
        hex::encode(self.pair.sign(&m).as_ref())
    }

    /// Signs a remote document's [`remote_message`]: the centre's side of `config/set` and
    /// `watchlist/set` (`edge-agent sign-remote`). Hex.
    pub fn sign_remote(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }

    /// Signs an event's JSON (as it will be sent) after the event whose chain link is `prev`.
    pub fn sign(&self, event_json: &[u8], prev: &str) -> Result<EventSignature, SigningError> {
        let message = message(&canonical(event_json)?, prev);
        Ok(EventSignature {
            alg: ALG.into(),
            key: self.public_hex(),
            prev: prev.into(),
            sig: hex::encode(self.pair.sign(&message).as_ref()),
        })
    }
}

/// The event JSON with `signature` removed, written again: what is signed.
pub fn canonical(event_json: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_slice(event_json)?;
    if let Some(map) = v.as_object_mut() {
        map.remove("signature");
    }
    serde_json::to_vec(&v)
}

fn message(canonical: &[u8], prev: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + prev.len() + 1 + canonical.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(prev.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(canonical);
    m
}

/// The chain link an event leaves for the next one: sha256 of its signature, hex.
pub fn link(signature: &EventSignature) -> String {
    hex::encode(Sha256::digest(signature.sig.as_bytes()))
}

/// Whether `sig` (hex) is the device's signature of an audit record's hash.
pub fn verify_audit(public_hex: &str, record_hash: &str, sig: &str) -> bool {
    let (Ok(key), Ok(raw)) = (hex::decode(public_hex), hex::decode(sig)) else {
        return false;
    };
    let mut m = AUDIT_CONTEXT.to_vec();
    m.extend_from_slice(record_hash.as_bytes());
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&m, &raw)
        .is_ok()
}

/// Domain separation for remote documents, so no other signature of the same key can pass as one.
const REMOTE_CONTEXT: &[u8] = b"edge-agent remote document v1\n";

/// What a centre signs for a remote document: the topic (`config/set` or `watchlist/set`), the
/// device it is for, its sequence number, version, claimed actor and the exact text. Bound to one
/// device and one number, a signed document cannot be replayed to another device or later. Each
/// part is length-prefixed, so no choice of strings makes two documents sign the same bytes.
pub fn remote_message(
    topic: &str,
    site_id: &str,
    device_id: &str,
    seq: u64,
    version: &str,
    actor: Option<&str>,
    text: &str,
) -> Vec<u8> {
    let mut m = REMOTE_CONTEXT.to_vec();
    let seq = seq.to_string();
    for part in [
        topic,
        site_id,
        device_id,
        seq.as_str(),
        version,
        actor.unwrap_or(""),
        text,
    ] {
        m.extend_from_slice(&(part.len() as u64).to_le_bytes());
        m.extend_from_slice(part.as_bytes());
    }
    m
}

/// Whether `sig` (hex) is `public_hex`'s signature of a [`remote_message`].
pub fn verify_remote(public_hex: &str, message: &[u8], sig: &str) -> bool {
    let (Ok(key), Ok(raw)) = (hex::decode(public_hex), hex::decode(sig)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, &raw)
        .is_ok()
}

/// Why an event does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not signed")]
    Unsigned,
    #[error("signed with key {0}, not the device's")]
    OtherKey(String),
    #[error("unknown signature scheme `{0}`")]
    Scheme(String),
    #[error("signature does not verify: the event was changed after signing")]
    Bad,
    #[error("not an event: {0}")]
    Malformed(String),
}

/// Checks one event JSON line against the device's public key (hex); returns its signature.
pub fn verify(event_json: &[u8], public_hex: &str) -> Result<EventSignature, VerifyError> {
    let v: serde_json::Value =
        serde_json::from_slice(event_json).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let sig: EventSignature = match v.get("signature") {
        None | Some(serde_json::Value::Null) => return Err(VerifyError::Unsigned),
        Some(s) => serde_json::from_value(s.clone())
            .map_err(|e| VerifyError::Malformed(format!("signature: {e}")))?,
    };
    if sig.alg != ALG {
        return Err(VerifyError::Scheme(sig.alg));
    }
    if !sig.key.eq_ignore_ascii_case(public_hex) {
        return Err(VerifyError::OtherKey(sig.key));
    }
    let (Ok(key), Ok(raw)) = (hex::decode(public_hex), hex::decode(&sig.sig)) else {
        return Err(VerifyError::Malformed("key or signature is not hex".into()));
    };
    let canonical = canonical(event_json).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&message(&canonical, &sig.prev), &raw)
        .map_err(|_| VerifyError::Bad)?;
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventKind, Phase};
    use chrono::Utc;

    fn key() -> (tempfile::TempDir, DeviceKey) {
        let dir = tempfile::tempdir().unwrap();
        let k = DeviceKey::load_or_create(&dir.path().join("keys/device.key")).unwrap();
        (dir, k)
    }

    fn signed_event(k: &DeviceKey, prev: &str) -> Vec<u8> {
        let mut e = Event::new(EventKind::WrongWay, Phase::New, "s", "d", "cam", Utc::now());
        e.seq = 7;
        let json = serde_json::to_vec(&e).unwrap();
        e.signature = Some(k.sign(&json, prev).unwrap());
        serde_json::to_vec(&e).unwrap()
    }

    #[test]
    fn a_signed_event_verifies_and_any_edit_breaks_it() {
        let (_d, k) = key();
        let json = signed_event(&k, GENESIS);
        let sig = verify(&json, &k.public_hex()).expect("verifies");
        assert_eq!((sig.alg.as_str(), sig.prev.as_str()), (ALG, GENESIS));
        // a field edited, the prev link swapped, another device's key: each refused
        let text = String::from_utf8(json.clone()).unwrap();
        let edited = text.replace("\"seq\":7", "\"seq\":8");
        assert_ne!(edited, text);
        assert_eq!(
            verify(edited.as_bytes(), &k.public_hex()),
            Err(VerifyError::Bad)
        );
        let relinked = text.replace(GENESIS, &"1".repeat(64));
        assert_eq!(
            verify(relinked.as_bytes(), &k.public_hex()),
            Err(VerifyError::Bad)
        );
        let (_d2, other) = key();
        assert!(matches!(
            verify(&json, &other.public_hex()),
            Err(VerifyError::OtherKey(_))
        ));
        // the same content in another member order still verifies: canonical bytes
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        assert!(verify(&pretty, &k.public_hex()).is_ok());
    }

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let a = DeviceKey::load_or_create(&path).unwrap();
        let b = DeviceKey::load_or_create(&path).unwrap();
        assert_eq!(a.public_hex(), b.public_hex());
        assert_eq!(a.public_hex().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        std::fs::write(&path, b"not a key").unwrap();
        let e = DeviceKey::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("device.key") && e.contains("PKCS#8"), "{e}");
    }

    #[test]
    fn unsigned_events_are_named_as_such() {
        let e = Event::new(EventKind::WrongWay, Phase::New, "s", "d", "cam", Utc::now());
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(verify(&json, &"0".repeat(64)), Err(VerifyError::Unsigned));
    }
}
