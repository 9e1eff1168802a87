//! Configuration: typed sections, span-aware loading and offline validation.
//!
//! Loading deserialises each section on its own, so one broken section does not hide the problems
//! of the others; every problem carries `file:line:col` (see [`Diagnostic`]).

mod diagnostic;
mod load;
mod types;
mod validate;
mod wiring;

/// The stages own their sections; the config aggregates them.
pub use crate::anpr::config::PlatesConfig;
pub use crate::api::HttpConfig;
pub use crate::events::evidence::EvidenceConfig;
pub use crate::health::HealthConfig;
pub use crate::privacy::config::{CameraPrivacyConfig, PrivacyConfig, RetentionConfig};
pub use crate::publish::config::{
    BrokerUrl, EvidenceDelivery, MqttConfig, MqttProtocol, TlsConfig,
};
pub use crate::rules::config::*;
pub use crate::runtime::config::{
    CudaConfig, ExecutionProviderKind, InferenceBackend, RuntimeConfig, TensorRtConfig,
};
pub use crate::spool::StorageConfig;
pub use diagnostic::{Diagnostic, Severity, SourceText};
pub use load::{ConfigError, LoadedConfig, PathSeg, load_file, parse_str};
pub use types::*;
pub use validate::{ValidateOptions, insecure_links, validate};
