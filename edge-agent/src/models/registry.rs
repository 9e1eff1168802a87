//! The set of known manifests: the ones built into the binary plus an optional directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ModelError, ModelManifest};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_manifests.rs"));
}

/// The bytes of a weight file built into the binary (ours, committed under `models/`), if any.
pub(super) fn builtin_weights(file: &str) -> Option<&'static [u8]> {
    builtin::WEIGHTS
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, bytes)| *bytes)
}

/// All manifests known to this agent, by name.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    manifests: BTreeMap<String, ModelManifest>,
}

impl ManifestSet {
    /// The manifests compiled into the binary from the repository's `models/` directory.
    pub fn builtin() -> Result<Self, ModelError> {
        let mut set = Self::default();
        for (name, text) in builtin::MANIFESTS {
            set.insert(ModelManifest::parse(
                &PathBuf::from(format!("models/{name}.toml")),
                text,
            )?);
        }
        Ok(set)
    }

    /// Built-in manifests, then every `*.toml` in `dir` (which may replace a built-in one).
    pub fn load(extra_dir: Option<&Path>) -> Result<Self, ModelError> {
        let mut set = Self::builtin()?;
        if let Some(dir) = extra_dir {
            let entries = std::fs::read_dir(dir).map_err(|source| ModelError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
                    path: path.clone(),
                    source,
                })?;
                let manifest = ModelManifest::parse(&path, &text)?;
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if stem != manifest.name {
                    return Err(ModelError::Manifest {
                        path,
                        message: format!(
                            "file must be named after the model: {}.toml",
                            manifest.name
                        ),
                    });
                }
                set.insert(manifest);
            }
        }
        Ok(set)
    }

    fn insert(&mut self, m: ModelManifest) {
        self.manifests.insert(m.name.clone(), m);
    }

    pub fn get(&self, name: &str) -> Option<&ModelManifest> {
        self.manifests.get(name)
    }

    /// Like [`Self::get`] but an error listing the known names.
    pub fn require(&self, name: &str) -> Result<&ModelManifest, ModelError> {
        self.get(name).ok_or_else(|| ModelError::UnknownModel {
            name: name.to_string(),
            known: self.names().join(", "),
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.manifests.keys().map(String::as_str).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ModelManifest> {
        self.manifests.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_manifest_parses_and_is_named_after_its_file() {
        let set = ManifestSet::builtin().expect("built-in manifests parse");
        assert!(
            set.names().contains(&"yolox_nano_coco_416"),
            "names: {:?}",
            set.names()
        );
        for m in set.iter() {
            assert!(m.file.starts_with(&m.name));
        }
    }

    #[test]
    fn a_manifest_with_a_free_text_licence_is_refused_naming_its_file() {
        let text = include_str!("../../../models/yolox_nano_coco_416.toml").replace(
            "licence = \"Apache-2.0\"",
            "licence = \"free for research\"",
        );
        let err = ModelManifest::parse(Path::new("site/yolox_nano_coco_416.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("site/yolox_nano_coco_416.toml") && err.contains("`free for research`"),
            "{err}"
        );
    }

    #[test]
    fn the_builtin_licences_say_which_models_may_ship() {
        let set = ManifestSet::builtin().unwrap();
        let ships = |name: &str| set.require(name).unwrap().shipping().may_ship();
        assert!(ships("yolox_nano_coco_416") && ships("vn_plate_ocr_ea_ctc_10x37_64x128"));
        assert!(!ships("vn_plate_det_yolo26n_640_e2e") && !ships("vn_plate_ocr_9x37_64x128"));
        assert!(!ships("vn_vehicle_yolo11n_int8_dyn"));
    }

    #[test]
    fn trust_thresholds_belong_to_plate_readers_and_are_probabilities() {
        let set = ManifestSet::builtin().unwrap();
        // Every reader the agent can default to carries its calibrated thresholds.
        for (name, readers) in [
            ("vn_plate_ocr_9x37_64x128", ["slot", "fused"].as_slice()),
            ("vn_plate_ocr_ea_ctc_10x37_64x128", &["slot", "fused"]),
            ("ppocrv4_rec", &["ppocr"]),
        ] {
            let t = set.require(name).unwrap().trust.clone().expect(name);
            for (r, v) in t.thresholds() {
                assert_eq!(v.is_some(), readers.contains(&r), "{name} {r}");
            }
            assert!(t.precision >= 0.97, "{name}");
        }
        let ocr = include_str!("../../../models/vn_plate_ocr_9x37_64x128.toml");
        let origin = Path::new("site/vn_plate_ocr_9x37_64x128.toml");
        let err = |text: &str| ModelManifest::parse(origin, text).unwrap_err().to_string();
        let e = err(&ocr.replace("fused = 0.942", "fused = 94.2"));
        assert!(
            e.contains("[trust] fused = 94.2 is outside 0..=1") && e.contains("site/"),
            "{e}"
        );
        let bare = ocr
            .replace("slot = 0.916\n", "")
            .replace("fused = 0.942\n", "");
        assert!(err(&bare).contains("names no threshold"), "{}", err(&bare));
        let detector = include_str!("../../../models/yolox_nano_coco_416.toml").to_string()
            + "\n[trust]\nprecision = 0.97\ncalibration_set = \"x\"\nslot = 0.9\n";
        let e = ModelManifest::parse(origin, &detector)
            .unwrap_err()
            .to_string();
        assert!(e.contains("object_detection model has no reads"), "{e}");
    }

    #[test]
    fn unknown_model_error_lists_known_names() {
        let set = ManifestSet::builtin().unwrap();
        let err = set.require("nope").unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("yolox_nano_coco_416"),
            "{err}"
        );
    }
}
