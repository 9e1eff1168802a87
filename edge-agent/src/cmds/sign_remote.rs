//! `edge-agent sign-remote`: the centre's side of remote config. Makes the centre's key, prints
//! its public half (what each device pins in `[remote].centre_keys`), and signs a config or
//! watchlist for one device as the JSON document to publish on its `config/set` or
//! `watchlist/set` topic (docs/remote.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edge_agent::signing::{DeviceKey, remote_message};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The centre's Ed25519 key (PKCS#8). Made, `0600`, when it does not exist yet; keep it off
    /// the devices.
    #[arg(long)]
    key: PathBuf,
    /// Print the key's public half (hex) and exit.
    #[arg(long)]
    public: bool,
    /// The device's site id (`[device].site_id`).
    #[arg(long, required_unless_present = "public")]
    site: Option<String>,
    /// The device id (`[device].device_id`).
    #[arg(long, required_unless_present = "public")]
    device: Option<String>,
    /// Sequence number: above every number sent to this device on this topic before (a clock in
    /// seconds works).
    #[arg(long, required_unless_present = "public")]
    seq: Option<u64>,
    /// The document's version name, which the device reports in `config/state`.
    #[arg(long = "doc-version", required_unless_present = "public")]
    doc_version: Option<String>,
    /// Who makes the change, recorded by the device as `claimed_actor`.
    #[arg(long)]
    actor: Option<String>,
    /// A config file to send (`config/set`).
    #[arg(long, conflicts_with = "watchlist", required_unless_present_any = ["public", "watchlist"])]
    config: Option<PathBuf>,
    /// A watchlist file to send (`watchlist/set`).
    #[arg(long)]
    watchlist: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = DeviceKey::load_or_create(&args.key)
        .with_context(|| format!("centre key {}", args.key.display()))?;
    if args.public {
        println!("{}", key.public_hex());
        return Ok(ExitCode::SUCCESS);
    }
    let (topic, field, file) = match (&args.config, &args.watchlist) {
        (Some(f), None) => ("config/set", "toml", f),
        (None, Some(f)) => ("watchlist/set", "watchlist", f),
        _ => anyhow::bail!("give one of --config or --watchlist"),
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (site, device, seq, version) = (
        args.site.context("--site is required")?,
        args.device.context("--device is required")?,
        args.seq.context("--seq is required")?,
        args.doc_version.context("--doc-version is required")?,
    );
    let message = remote_message(
        topic,
        &site,
        &device,
        seq,
        &version,
        args.actor.as_deref(),
        &text,
    );
    let mut doc = serde_json::json!({
        "version": version,
        field: text,
        "seq": seq,
        "key": key.public_hex(),
        "signature": key.sign_remote(&message),
    });
    if let Some(actor) = args.actor {
        doc["actor"] = serde_json::Value::from(actor);
    }
    println!("{doc}");
    eprintln!("publish on {{prefix}}/{site}/{device}/{topic} (not retained)");
    Ok(ExitCode::SUCCESS)
}
