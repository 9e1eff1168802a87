//! `edge-agent version`: what this binary is and which ONNX Runtime it would use.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edge_agent::{config, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use the ONNX Runtime path from this config.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let configured = match &args.config {
        Some(path) => {
            let loaded =
                config::load_file(path).with_context(|| format!("loading {}", path.display()))?;
            loaded
                .config
                .runtime
                .onnxruntime
                .as_ref()
                .map(|p| loaded.resolve_path(p))
        }
        None => None,
    };
    println!("edge-agent {}", env!("CARGO_PKG_VERSION"));
    println!(
        "target: {}-{}",
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    let features = edge_agent::ENABLED_FEATURES;
    println!(
        "features: {}",
        if features.is_empty() {
            "(none)".to_string()
        } else {
            features.join(", ")
        }
    );
    match runtime::find(configured.as_deref()) {
        Ok(lib) => {
            println!(
                "onnxruntime: {} ({}, found via {})",
                lib.version,
                lib.path.display(),
                lib.source.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("onnxruntime: unavailable");
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
