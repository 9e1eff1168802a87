//! Reading a config file into [`Config`] while keeping the spans needed for diagnostics.

use crate::anpr::config::PlatesConfig;
use crate::privacy::config::PrivacyConfig;
use crate::publish::config::MqttConfig;
use crate::runtime::config::RuntimeConfig;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{ImDocument, Item};

use super::diagnostic::{Diagnostic, Severity, SourceText};
use super::types::*;

/// A config that parsed, with its source kept for locating later problems.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub source: SourceText,
    doc: ImDocument<String>,
}

/// Why a config could not be turned into [`Config`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

const SECTIONS: &[&str] = &[
    "device",
    "runtime",
    "models",
    "cameras",
    "mqtt",
    "storage",
    "http",
    "evidence",
    "clips",
    "watchlist",
    "health",
    "privacy",
    "plates",
    "tracker",
    "pipeline",
    "remote",
];

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(path, text)
}

/// Parses config text; `path` is used for messages and for resolving relative paths.
pub fn parse_str(path: &Path, text: String) -> Result<LoadedConfig, ConfigError> {
    let source = SourceText::new(path, text);
    let doc = ImDocument::parse(source.text.clone()).map_err(|e| {
        ConfigError::Invalid(vec![source.diagnostic(
            Severity::Error,
            e.span(),
            format!("TOML syntax: {}", e.message().trim().replace('\n', "; ")),
            "fix the syntax at this place; strings need quotes, tables need [brackets]",
        )])
    })?;

    let mut diags = Vec::new();
    for (key, item) in doc.as_table().iter() {
        if !SECTIONS.contains(&key) {
            let span = doc.as_table().key(key).and_then(|k| k.span());
            diags.push(source.diagnostic(
                Severity::Error,
                span,
                format!("unknown section `{key}`"),
                format!("known sections: {}", SECTIONS.join(", ")),
            ));
        } else if key != "cameras" && !item.is_table_like() {
            diags.push(source.diagnostic(
                Severity::Error,
                item.span(),
                format!("`{key}` must be a table"),
                format!("write it as a [{key}] section"),
            ));
        }
    }

    let section = |name: &str| doc.get(name).cloned();
    let device = match section("device") {
        Some(item) => deserialize_item::<DeviceConfig>(&source, item, "device", &mut diags),
        None => {
            diags.push(source.diagnostic(
                Severity::Error,
                None,
                "missing section [device]",
                "add [device] with site_id and device_id",
            ));
            None
        }
    };
    let runtime =
        optional_section::<RuntimeConfig>(&source, section("runtime"), "runtime", &mut diags);
    let models = optional_section::<ModelsConfig>(&source, section("models"), "models", &mut diags);
    let mqtt = optional_section::<MqttConfig>(&source, section("mqtt"), "mqtt", &mut diags);
    let storage = optional_section::<crate::spool::StorageConfig>(
        &source,
        section("storage"),
        "storage",
        &mut diags,
    );
    let http =
        optional_section::<crate::api::HttpConfig>(&source, section("http"), "http", &mut diags);
    let evidence = optional_section::<crate::events::evidence::EvidenceConfig>(
        &source,
        section("evidence"),
        "evidence",
        &mut diags,
    );
    let plates = optional_section::<PlatesConfig>(&source, section("plates"), "plates", &mut diags);
    let cameras = cameras(&source, section("cameras"), &mut diags);
    // Sections added later are not part of the match below: a failed one leaves a diagnostic,
    // which already sends the match to its error arm.
    let watchlist =
        optional_section::<WatchlistConfig>(&source, section("watchlist"), "watchlist", &mut diags);
    let health = optional_section::<crate::health::HealthConfig>(
        &source,
        section("health"),
        "health",
        &mut diags,
    );
    let privacy =
        optional_section::<PrivacyConfig>(&source, section("privacy"), "privacy", &mut diags);
    let tracker = optional_section::<crate::track::TrackerConfig>(
        &source,
        section("tracker"),
        "tracker",
        &mut diags,
    );
    let pipeline =
        optional_section::<PipelineConfig>(&source, section("pipeline"), "pipeline", &mut diags);
    let remote = optional_section::<RemoteConfig>(&source, section("remote"), "remote", &mut diags);
    let clips = optional_section::<crate::clips::ClipsConfig>(
        &source,
        section("clips"),
        "clips",
        &mut diags,
    );

    match (
        device, runtime, models, mqtt, storage, http, cameras, evidence, plates,
    ) {
        (
            Some(device),
            Some(runtime),
            Some(models),
            Some(mqtt),
            Some(storage),
            Some(http),
            Some(cameras),
            Some(evidence),
            Some(plates),
        ) if diags.is_empty() => {
            let config = Config {
                device,
                runtime,
                models,
                cameras,
                mqtt,
                storage,
                http,
                evidence,
                clips: clips.unwrap_or_default(),
                watchlist: watchlist.unwrap_or_default(),
                // Some whenever no diagnostic was raised.
                health: health.unwrap_or_default(),
                privacy: privacy.unwrap_or_default(),
                plates,
                tracker: tracker.unwrap_or_default(),
                pipeline: pipeline.unwrap_or_default(),
                remote: remote.unwrap_or_default(),
            };
            Ok(LoadedConfig {
                config,
                source,
                doc,
            })
        }
        _ => {
            diags.sort_by_key(|d| (d.line, d.col));
            Err(ConfigError::Invalid(diags))
        }
    }
}

fn optional_section<T: DeserializeOwned + Default>(
    source: &SourceText,
    item: Option<Item>,
    name: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    match item {
        Some(item) => deserialize_item(source, item, name, diags),
        None => Some(T::default()),
    }
}

fn cameras(
    source: &SourceText,
    item: Option<Item>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<CameraConfig>> {
    let Some(item) = item else {
        return Some(Vec::new());
    };
    let tables: Vec<Item> = match item {
        Item::ArrayOfTables(aot) => aot.into_iter().map(Item::Table).collect(),
        Item::Value(toml_edit::Value::Array(arr)) => arr.into_iter().map(Item::Value).collect(),
        other => {
            diags.push(source.diagnostic(
                Severity::Error,
                other.span(),
                "`cameras` must be a list of tables",
                "write each camera as a [[cameras]] section",
            ));
            return None;
        }
    };
    let before = diags.len();
    let cameras: Vec<CameraConfig> = tables
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| deserialize_item(source, item, &format!("cameras[{i}]"), diags))
        .collect();
    (diags.len() == before).then_some(cameras)
}

fn deserialize_item<T: DeserializeOwned>(
    source: &SourceText,
    item: Item,
    name: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let fallback_span = item.span();
    let value = match item.into_value() {
        Ok(value) => value,
        Err(item) => {
            diags.push(source.diagnostic(
                Severity::Error,
                item.span(),
                format!("`{name}` has the wrong shape"),
                "see configs/README.md for the layout of this section",
            ));
            return None;
        }
    };
    match T::deserialize(value.into_deserializer()) {
        Ok(v) => Some(v),
        Err(e) => {
            let span = e.span().or(fallback_span);
            diags.push(source.diagnostic(
                Severity::Error,
                span,
                format!("in [{name}]: {}", e.message().trim()),
                hint_for(e.message()),
            ));
            None
        }
    }
}

fn hint_for(message: &str) -> String {
    if message.contains("unknown field") {
        "remove or rename this key; the expected keys are listed above".into()
    } else if message.contains("missing field") {
        "add the missing key to this section".into()
    } else if message.contains("invalid type") {
        "change the value to the expected type (strings in quotes, numbers without)".into()
    } else if message.contains("unknown variant") {
        "use one of the listed values".into()
    } else {
        "see configs/README.md for this section".into()
    }
}

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub enum PathSeg<'a> {
    Key(&'a str),
    Index(usize),
}

impl LoadedConfig {
    /// The config's identity in events, `health` and `config/state`: the first 12 hex digits of
    /// the sha256 of the file's text.
    pub fn hash(&self) -> String {
        let full = crate::events::evidence::sha256_hex(self.source.text.as_bytes());
        full[..12].to_string()
    }

    /// Directory that relative paths in this config are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.source
            .path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Resolves a path from the config against the config file's directory.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }

    /// The model manifests this config can use: the built-in ones and `[models] manifest_dir`.
    pub fn manifests(&self) -> Result<crate::models::ManifestSet, crate::models::ModelError> {
        let dir = self.config.models.manifest_dir.as_ref();
        crate::models::ManifestSet::load(dir.map(|d| self.resolve_path(d)).as_deref())
    }

    /// The verified weight cache this config names (`[models] cache_dir`), else the default.
    pub fn model_store(&self) -> crate::models::ModelStore {
        let dir = self.config.models.cache_dir.as_ref();
        let dir = dir.map(|d| self.resolve_path(d));
        crate::models::ModelStore::new(crate::models::ModelStore::default_dir(dir.as_deref()))
    }

    /// Span of the value at `path` (e.g. `cameras`, 2, `id`), or of the deepest part that exists.
    pub fn span_of(&self, path: &[PathSeg<'_>]) -> Option<Range<usize>> {
        enum Node<'d> {
            Item(&'d Item),
            Table(&'d toml_edit::Table),
        }
        let mut node = Node::Table(self.doc.as_table());
        let mut best = None;
        for seg in path {
            let next = match (&node, *seg) {
                (Node::Table(t), PathSeg::Key(k)) => t.get(k).map(Node::Item),
                (Node::Item(Item::ArrayOfTables(aot)), PathSeg::Index(i)) => {
                    aot.get(i).map(Node::Table)
                }
                (Node::Item(it), PathSeg::Key(k)) => it.get(k).map(Node::Item),
                (Node::Item(it), PathSeg::Index(i)) => it.get(i).map(Node::Item),
                (Node::Table(_), PathSeg::Index(_)) => None,
            };
            let Some(next) = next else { break };
            let span = match &next {
                Node::Item(it) => it.span(),
                Node::Table(t) => t.span(),
            };
            if span.is_some() {
                best = span;
            }
            node = next;
        }
        best
    }

    /// A diagnostic located at `path`.
    pub fn diagnostic_at(
        &self,
        severity: Severity,
        path: &[PathSeg<'_>],
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Diagnostic {
        self.source
            .diagnostic(severity, self.span_of(path), message, hint)
    }
}
