//! What a stage finds wrong in its own config section. A leaf: stages report here without
//! knowing the config loader, which pins each problem to `file:line:col` at `[section] key`.

use std::fmt;

/// How bad: an error refuses the config; a warning may be fine on another machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// One problem with one key of a section.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionProblem {
    /// The key inside the section.
    pub key: &'static str,
    pub level: Level,
    pub message: String,
    pub hint: String,
}

impl SectionProblem {
    pub fn error(key: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            key,
            level: Level::Error,
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn warning(key: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            level: Level::Warning,
            ..Self::error(key, message, hint)
        }
    }

    /// An error unless `value` lies in `lo..=hi` (`key = v is outside lo..=hi`).
    pub fn out_of_range<T: PartialOrd + Copy + fmt::Display>(
        key: &'static str,
        value: T,
        lo: T,
        hi: T,
        hint: &str,
    ) -> Option<Self> {
        (!(lo..=hi).contains(&value))
            .then(|| Self::error(key, format!("{key} = {value} is outside {lo}..={hi}"), hint))
    }
}
