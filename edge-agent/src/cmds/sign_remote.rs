//! `edge-agent sign-remote`: the centre's side of remote config. Makes the centre's key, prints
//! its public half (what each device pins in `[remote].centre_keys`), and signs a config, a
//! watchlist or a clip request for one device as the JSON document to publish on its
//! `config/set`, `watchlist/set` or `evidence/get` topic (docs/remote.md).

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
    #[arg(long, conflicts_with_all = ["watchlist", "clip"], required_unless_present_any = ["public", "watchlist", "clip"])]
    config: Option<PathBuf>,
    /// A watchlist file to send (`watchlist/set`).
    #[arg(long, conflicts_with = "clip")]
    watchlist: Option<PathBuf>,
    /// The sha256 of a clip the device keeps, to ask for it (`evidence/get`).
    #[arg(long)]
    clip: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = DeviceKey::load_or_create(&args.key)
        .with_context(|| format!("centre key {}", args.key.display()))?;
    if args.public {
        println!("{}", key.public_hex());
        return Ok(ExitCode::SUCCESS);
    }
    let read = |file: &PathBuf| {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    };
    let (topic, field, text) = match (&args.config, &args.watchlist, &args.clip) {
        (Some(f), None, None) => ("config/set", "toml", read(f)?),
        (None, Some(f), None) => ("watchlist/set", "watchlist", read(f)?),
        (None, None, Some(sha)) => ("evidence/get", "sha256", sha.to_ascii_lowercase()),
        _ => anyhow::bail!("give one of --config, --watchlist or --clip"),
    };
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
