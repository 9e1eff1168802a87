//! Configuration: typed sections, span-aware loading and offline validation.
//!
//! Loading deserialises each section on its own, so one broken section does not hide the problems
//! of the others; every problem carries `file:line:col` (see [`Diagnostic`]).

mod broker;
mod diagnostic;
mod load;
mod rules;
mod types;
mod validate;

pub use broker::BrokerUrl;
pub use diagnostic::{Diagnostic, Severity, SourceText};
pub use load::{ConfigError, LoadedConfig, PathSeg, load_file, parse_str};
pub use rules::*;
pub use types::*;
pub use validate::{ValidateOptions, insecure_links, validate};
