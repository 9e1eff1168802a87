//! `edge-agent audit verify FILE`: checks the audit log's hash chain and prints its head.

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
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify { file } => match audit::verify(&file) {
            Ok(v) => {
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
        },
    }
}
