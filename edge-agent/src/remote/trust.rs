//! Who may change this device: a remote document is accepted only when a centre key pinned in the
//! device's own config file (`[remote].centre_keys`) signed it for this device, with a sequence
//! number above the last one accepted on its topic. Whoever can merely publish on the broker can
//! no longer change a camera, and an old document replayed later is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::payload::DocSignature;
use super::state::Problem;
use crate::signing::{remote_message, verify_remote};

/// The last sequence number accepted per topic, kept beside the stored documents
/// (`{spool_dir}/remote/seq.json`) so a restart does not reopen the door to replays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seqs {
    pub config: u64,
    pub watchlist: u64,
    /// `evidence/get` (files written before it existed have none: 0).
    #[serde(default)]
    pub evidence: u64,
}

/// The device's trust in remote documents.
#[derive(Debug, Clone)]
pub struct Trust {
    keys: Vec<String>,
    site_id: String,
    device_id: String,
    seqs: Seqs,
    file: PathBuf,
}

/// What a document says about itself, for [`Trust::admit`].
pub struct Document<'a> {
    /// `config/set`, `watchlist/set` or `evidence/get`.
    pub topic: &'a str,
    pub version: &'a str,
    pub actor: Option<&'a str>,
    pub text: &'a str,
    pub signed: Option<&'a DocSignature>,
}

const SIGN_HINT: &str = "sign it with `edge-agent sign-remote` and a key pinned in [remote].centre_keys (docs/remote.md)";

impl Trust {
    /// Trust in `keys` (hex) for documents addressed to this device; the accepted numbers are read
    /// from `dir/seq.json` (none yet: 0).
    pub fn new(keys: &[String], site_id: &str, device_id: &str, dir: &Path) -> Self {
        let file = dir.join("seq.json");
        let seqs = match std::fs::read(&file) {
            Ok(raw) => serde_json::from_slice(&raw).unwrap_or_else(|e| {
                // Refusing everything until an installer looks is safer than forgetting the
                // numbers and accepting replays.
                tracing::error!(path = %file.display(), error = %e, "remote sequence numbers unreadable: every remote document is refused until an installer removes the file");
                Seqs {
                    config: u64::MAX,
                    watchlist: u64::MAX,
                    evidence: u64::MAX,
                }
            }),
            Err(_) => Seqs::default(),
        };
        Trust {
            keys: keys.iter().map(|k| k.to_ascii_lowercase()).collect(),
            site_id: site_id.to_string(),
            device_id: device_id.to_string(),
            seqs,
            file,
        }
    }

    /// The last accepted numbers.
    pub fn seqs(&self) -> Seqs {
        self.seqs
    }

    /// Checks a document's signature and number; on success records the number (and stores it)
    /// and returns the audit actor: `key:` and the first 16 hex digits of the signing key.
    pub fn admit(&mut self, doc: &Document<'_>) -> Result<String, Problem> {
        if self.keys.is_empty() {
            return Err(Problem::new(
                format!(
                    "{} refused: no centre key is pinned on this device ([remote].centre_keys in its config file)",
                    doc.topic
                ),
                "pin the centre's public key in the device's config file, or set [remote] enabled = false",
            ));
        }
        let Some(s) = doc.signed else {
            return Err(Problem::new(
                format!("{} version {} is not signed", doc.topic, doc.version),
                SIGN_HINT,
            ));
        };
        if !self.keys.contains(&s.key) {
            return Err(Problem::new(
                format!(
                    "signed with key {}…, which this device does not trust",
                    &s.key[..16.min(s.key.len())]
                ),
                SIGN_HINT,
            ));
        }
        let message = remote_message(
            doc.topic,
            &self.site_id,
            &self.device_id,
            s.seq,
            doc.version,
            doc.actor,
            doc.text,
        );
        if !verify_remote(&s.key, &message, &s.signature) {
            return Err(Problem::new(
                "the signature does not verify: the document was changed after signing, or was signed for another device or topic",
                SIGN_HINT,
            ));
        }
        let last = match doc.topic {
            "config/set" => &mut self.seqs.config,
            "evidence/get" => &mut self.seqs.evidence,
            _ => &mut self.seqs.watchlist,
        };
        if s.seq <= *last {
            return Err(Problem::new(
                format!(
                    "sequence number {} is not above the last accepted {}: a replay or an out-of-date document",
                    s.seq, *last
                ),
                "sign the document again with a higher --seq",
            ));
        }
        *last = s.seq;
        if let Err(e) = self.save() {
            // The change is still signed and new; a restart may then accept this number once more
            // (the same document again, never an older one).
            tracing::error!(path = %self.file.display(), error = %e, "cannot store the remote sequence numbers");
        }
        Ok(format!("key:{}", &s.key[..16]))
    }

    fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.seqs).unwrap_or_default())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::DeviceKey;

    fn signed(key: &DeviceKey, topic: &str, device: &str, seq: u64, text: &str) -> DocSignature {
        let m = remote_message(topic, "site-1", device, seq, "v1", Some("op"), text);
        DocSignature {
            seq,
            key: key.public_hex(),
            signature: key.sign_remote(&m),
        }
    }

    #[test]
    fn only_pinned_keys_for_this_device_with_rising_numbers_pass() {
        let dir = tempfile::tempdir().unwrap();
        let centre = DeviceKey::load_or_create(&dir.path().join("centre.key")).unwrap();
        let other = DeviceKey::load_or_create(&dir.path().join("other.key")).unwrap();
        let mut trust = Trust::new(&[centre.public_hex()], "site-1", "dev-1", dir.path());
        fn doc<'a>(signed: Option<&'a DocSignature>, text: &'a str) -> Document<'a> {
            Document {
                topic: "config/set",
                version: "v1",
                actor: Some("op"),
                text,
                signed,
            }
        }
        let text = "[[cameras]]\n";
        let unsigned = trust.admit(&doc(None, text)).unwrap_err();
        assert!(unsigned.message.contains("not signed"), "{unsigned:?}");
        let s = signed(&other, "config/set", "dev-1", 1, text);
        let e = trust.admit(&doc(Some(&s), text)).unwrap_err();
        assert!(e.message.contains("does not trust"), "{e:?}");
        let s = signed(&centre, "config/set", "dev-2", 1, text);
        let e = trust.admit(&doc(Some(&s), text)).unwrap_err();
        assert!(
            e.message.contains("does not verify"),
            "another device's: {e:?}"
        );
        let s = signed(&centre, "watchlist/set", "dev-1", 1, text);
        let e = trust.admit(&doc(Some(&s), text)).unwrap_err();
        assert!(
            e.message.contains("does not verify"),
            "another topic's: {e:?}"
        );
        let s = signed(&centre, "config/set", "dev-1", 1, text);
        let e = trust
            .admit(&doc(Some(&s), "[[cameras]]\n# changed\n"))
            .unwrap_err();
        assert!(e.message.contains("does not verify"), "edited text: {e:?}");
        let actor = trust.admit(&doc(Some(&s), text)).unwrap();
        assert_eq!(actor, format!("key:{}", &centre.public_hex()[..16]));
        let e = trust.admit(&doc(Some(&s), text)).unwrap_err();
        assert!(
            e.message.contains("not above the last accepted 1"),
            "replay: {e:?}"
        );

        // the numbers survive a restart; each topic counts on its own
        let mut again = Trust::new(&[centre.public_hex()], "site-1", "dev-1", dir.path());
        assert_eq!(
            again.seqs(),
            Seqs {
                config: 1,
                watchlist: 0,
                evidence: 0,
            }
        );
        let e = again.admit(&doc(Some(&s), text)).unwrap_err();
        assert!(e.message.contains("replay"), "{e:?}");
        let s2 = signed(&centre, "config/set", "dev-1", 7, text);
        assert!(again.admit(&doc(Some(&s2), text)).is_ok());

        // no key pinned: everything refused
        let mut none = Trust::new(&[], "site-1", "dev-1", dir.path());
        let e = none.admit(&doc(Some(&s2), text)).unwrap_err();
        assert!(e.message.contains("no centre key is pinned"), "{e:?}");
    }
}
