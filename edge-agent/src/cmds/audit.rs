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
        /// The device's public key (hex, from its birth message or `probe`): every record must be
        /// signed with it (records from before the device signed its log are counted).
        #[arg(long)]
        key: Option<String>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Verify { file, anchor, key } = args.command;
    let verified = audit::verify_signed(&file, anchor.as_deref(), key.as_deref());
    let v = match verified {
        Ok(v) => v,
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut failed = false;
    if let Some(a) = &anchor {
        match v.anchor_at {
            Some(at) => println!("anchor found at record {at}"),
            None => {
                println!(
                    "the anchor {a} is not in the log: records were cut from the end or the log was replaced"
                );
                failed = true;
            }
        }
    }
    if key.is_some() {
        if v.records > 0 && v.unsigned_before_signed == v.records {
            println!(
                "no record is signed with the device key: written without the key, or rewritten"
            );
            failed = true;
        } else {
            println!(
                "signed with the device key from record {} on ({} earlier records unsigned)",
                v.unsigned_before_signed, v.unsigned_before_signed
            );
        }
    }
    println!(
        "{}: {} records, chain intact, head {}",
        file.display(),
        v.records,
        v.head
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
