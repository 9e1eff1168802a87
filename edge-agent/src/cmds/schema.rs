//! `edge-agent schema`: prints the event JSON Schema, or regenerates / checks the committed
//! `schema/event.schema.json` and `docs/events.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edge_agent::events::schema;

use super::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rewrite schema/event.schema.json and docs/events.md under --root.
    #[arg(long, conflicts_with = "check")]
    write: bool,
    /// Exit non-zero when the committed files differ from the types.
    #[arg(long)]
    check: bool,
    /// Repository root holding schema/ and docs/.
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.write {
        let written = schema::write_all(&args.root)
            .with_context(|| format!("writing the schema under {}", args.root.display()))?;
        for p in written {
            eprintln!("wrote {}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.check {
        let drifted = schema::drifted(&args.root);
        for p in &drifted {
            eprintln!(
                "error: {} differs from the event types; run `edge-agent schema --write`",
                p.display()
            );
        }
        return Ok(if drifted.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    output::line(schema::event_schema().trim_end())?;
    Ok(ExitCode::SUCCESS)
}
