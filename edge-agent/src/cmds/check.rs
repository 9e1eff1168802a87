//! `edge-agent check FILE...`: offline validation with file:line:col diagnostics.

use std::path::PathBuf;
use std::process::ExitCode;

use edge_agent::config::{self, ConfigError, Severity, ValidateOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Treat warnings (e.g. files missing on this machine) as errors; use on the device itself.
    #[arg(long)]
    strict: bool,
    /// Do not hash model weights (faster).
    #[arg(long)]
    skip_model_hashes: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = ValidateOptions {
        skip_model_hashes: args.skip_model_hashes,
        no_local_files: false,
    };
    let (mut errors, mut warnings) = (0usize, 0usize);
    for file in &args.files {
        let diags = match config::load_file(file) {
            Ok(loaded) => config::validate(&loaded, &opts),
            Err(ConfigError::Invalid(diags)) => diags,
            Err(e @ ConfigError::Read { .. }) => {
                eprintln!("{}: error: {e}\n  hint: check the path", file.display());
                errors += 1;
                continue;
            }
        };
        for d in &diags {
            eprintln!("{d}");
        }
        let e = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let w = diags.len() - e;
        errors += e;
        warnings += w;
        if e == 0 && (w == 0 || !args.strict) {
            println!(
                "{}: ok{}",
                file.display(),
                if w > 0 {
                    format!(" ({w} warnings)")
                } else {
                    String::new()
                }
            );
        }
    }
    eprintln!(
        "{} file(s) checked: {errors} error(s), {warnings} warning(s)",
        args.files.len()
    );
    let failed = errors > 0 || (args.strict && warnings > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
