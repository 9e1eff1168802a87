//! `edge-agent audit verify FILE [--anchor HASH]`: checks the audit log's hash chain and prints its
//! head; with an anchor (an `audit_head` the centre received), also that the log still holds it.

use std::path::PathBuf;
use std::process::ExitCode;

use edge_agent::audit;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Verify every record of an audit log: order, links and content. Exit status 1 when broken.
    Verify {
        /// The audit log (JSON lines).
        file: PathBuf,
        /// An audit head the centre holds (from an event's `audit_head` or a `health` message):
        /// the log must still contain that record, or it was cut short or replaced.
        #[arg(long)]
        anchor: Option<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify { file, anchor } => {
            match audit::verify_with_anchor(&file, anchor.as_deref()) {
                Ok(v) if anchor.is_some() && v.anchor_at.is_none() => {
                    println!(
                        "{}: {} records, chain intact, head {}, but the anchor {} is not in it: records were cut from the end or the log was replaced",
                        file.display(),
                        v.records,
                        v.head,
                        anchor.unwrap_or_default()
                    );
                    Ok(ExitCode::FAILURE)
                }
                Ok(v) => {
                    if let Some(at) = v.anchor_at {
                        println!("anchor found at record {at}");
                    }
                    println!(
                        "{}: {} records, chain intact, head {}",
                        file.display(),
                        v.records,
                        v.head
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
