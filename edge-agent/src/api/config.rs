//! `[http]`: the local API's config section and its own checks (the token file itself is looked
//! at by the loader).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checks::SectionProblem;

/// `[http]`: the local API for installers and monitoring (this stage owns the section and its
/// checks).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Set false to disable the local API. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Listen address. Default `127.0.0.1:8080`.
    #[serde(default = "default_http_listen")]
    pub listen: String,
    /// File holding the bearer token (required when `listen` is not a loopback address).
    /// Default: none.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Host names the API answers to besides IP addresses and `localhost` (a browser sends the
    /// name it used; any other is refused, which stops DNS rebinding). Default: none.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: default_http_listen(),
            token_file: None,
            allowed_hosts: Vec::new(),
        }
    }
}

fn default_http_listen() -> String {
    "127.0.0.1:8080".into()
}

fn yes() -> bool {
    true
}

impl HttpConfig {
    /// An address that does not parse, or one beyond loopback without a token.
    pub fn check(&self) -> Vec<SectionProblem> {
        if !self.enabled {
            return Vec::new();
        }
        match self.listen.parse::<SocketAddr>() {
            Err(_) => vec![SectionProblem::error(
                "listen",
                format!("listen `{}` is not an address:port", self.listen),
                "e.g. 127.0.0.1:8080, or 0.0.0.0:8080 with a token_file",
            )],
            Ok(addr) if !addr.ip().is_loopback() && self.token_file.is_none() => {
                vec![SectionProblem::error(
                    "listen",
                    format!("the local API listens on {addr} without a token"),
                    "set http.token_file, or listen on 127.0.0.1",
                )]
            }
            Ok(_) => Vec::new(),
        }
    }
}
