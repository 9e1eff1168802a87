//! `edge-agent models list | verify | fetch`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use edge_agent::config;
use edge_agent::models::{
    FetchOutcome, FetchSource, FileState, ManifestSet, ModelManifest, ModelStore, fetch_model,
};

/// Env var naming a mirror directory or URL.
const MIRROR_ENV: &str = "EDGE_AGENT_MIRROR";
/// Mirror used when nothing else is given and it exists (the shared folder beside a checkout).
const DEFAULT_MIRROR: &str = "../shared/models";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    /// Take cache dir, mirror and manifest dir from this config.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Model cache directory [default: env EDGE_AGENT_MODEL_CACHE, else /var/lib/edge-agent/models].
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
    /// Extra directory of model manifests (*.toml).
    #[arg(long, global = true)]
    manifest_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List known models with task, decoder, licence and cache state.
    List,
    /// Print the model cards: task, training data, licence and known limits (what `status` sends).
    Cards {
        /// Models to show [default: all].
        names: Vec<String>,
    },
    /// Hash cached weights against their manifests; non-zero exit if any is missing or corrupt.
    Verify {
        /// Models to verify [default: all].
        names: Vec<String>,
    },
    /// Fill the cache from a mirror directory or URL, or the manifests' official URLs.
    Fetch {
        /// Models to fetch [default: all].
        names: Vec<String>,
        /// Mirror directory or http(s) base URL [default: env EDGE_AGENT_MIRROR, config
        /// models.mirror, ../shared/models when it exists].
        #[arg(long)]
        from: Option<String>,
    },
}

struct Context_ {
    set: ManifestSet,
    store: ModelStore,
    config_mirror: Option<String>,
}

fn context(args: &Args) -> anyhow::Result<Context_> {
    let (mut cache, mut manifest_dir, mut config_mirror) = (None, None, None);
    if let Some(path) = &args.config {
        let loaded =
            config::load_file(path).with_context(|| format!("loading {}", path.display()))?;
        let m = &loaded.config.models;
        cache = m.cache_dir.as_ref().map(|d| loaded.resolve_path(d));
        manifest_dir = m.manifest_dir.as_ref().map(|d| loaded.resolve_path(d));
        config_mirror = m.mirror.as_ref().map(|s| match FetchSource::parse(s) {
            FetchSource::Dir(d) => loaded.resolve_path(&d).display().to_string(),
            FetchSource::Url(u) => u,
        });
    }
    let cache = args.cache_dir.clone().or(cache);
    let manifest_dir = args.manifest_dir.clone().or(manifest_dir);
    let set = ManifestSet::load(manifest_dir.as_deref())?;
    Ok(Context_ {
        set,
        store: ModelStore::new(ModelStore::default_dir(cache.as_deref())),
        config_mirror,
    })
}

fn selected<'a>(set: &'a ManifestSet, names: &[String]) -> anyhow::Result<Vec<&'a ModelManifest>> {
    if names.is_empty() {
        return Ok(set.iter().collect());
    }
    names
        .iter()
        .map(|n| set.require(n).map_err(Into::into))
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ctx = context(&args)?;
    match &args.command {
        Sub::List => list(&ctx),
        Sub::Cards { names } => cards(&ctx, names),
        Sub::Verify { names } => verify(&ctx, names),
        Sub::Fetch { names, from } => fetch(&ctx, names, from.as_deref()),
    }
}

fn cards(ctx: &Context_, names: &[String]) -> anyhow::Result<ExitCode> {
    for m in selected(&ctx.set, names)? {
        let c = edge_agent::models::ModelCard::from_manifest(m);
        println!("{}", c.name);
        println!("  task:          {}", c.task);
        println!("  training data: {}", c.training_data);
        let shipping = m.shipping();
        println!(
            "  licence:       {} ({shipping}: {})",
            c.licence,
            shipping.reason()
        );
        if let Some(note) = &m.licence_note {
            println!("  licence note:  {note}");
        }
        if let Some(t) = &m.trust {
            let pairs = t.with.iter().flat_map(|(second, p)| {
                [("slot", p.slot), ("fused", p.fused)]
                    .into_iter()
                    .filter_map(move |(readers, v)| {
                        v.map(|v| format!("{readers} with {second} >= {v}"))
                    })
            });
            let at = t
                .thresholds()
                .into_iter()
                .filter_map(|(readers, v)| v.map(|v| format!("{readers} >= {v}")))
                .chain(pairs)
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "  trusted reads: {at} ({:.0} % right on its calibration set: {})",
                100.0 * t.precision,
                t.calibration_set
            );
        }
        println!("  known limits:");
        if c.known_limits.is_empty() {
            println!("    (none recorded)");
        }
        for l in &c.known_limits {
            println!("    - {l}");
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// `Apache-2.0`, or `AGPL-3.0-only (may not ship)`: the column an installer scans.
fn licence_column(m: &edge_agent::models::ModelManifest) -> String {
    match m.shipping().may_ship() {
        true => m.licence.clone(),
        false => format!("{} (may not ship)", m.licence),
    }
}

fn list(ctx: &Context_) -> anyhow::Result<ExitCode> {
    println!(
        "{:<40} {:<17} {:<13} {:>9}  {:<10} LICENCE",
        "NAME", "TASK", "DECODER", "SIZE", "CACHED"
    );
    for m in ctx.set.iter() {
        let cached = match ctx.store.path_of(&m.file).exists() {
            true => "yes",
            false => "no",
        };
        println!(
            "{:<40} {:<17} {:<13} {:>7.1}MB  {:<10} {}",
            m.name,
            m.task.as_str(),
            m.decoder.kind(),
            m.size_bytes as f64 / 1e6,
            cached,
            licence_column(m)
        );
    }
    println!("cache: {}", ctx.store.dir().display());
    Ok(ExitCode::SUCCESS)
}

fn verify(ctx: &Context_, names: &[String]) -> anyhow::Result<ExitCode> {
    let mut bad = 0;
    for m in selected(&ctx.set, names)? {
        for status in ctx.store.verify(m)? {
            if status.state != FileState::Ok {
                bad += 1;
            }
            println!("{:<40} {status}", m.name);
        }
    }
    if bad > 0 {
        eprintln!(
            "error: {bad} file(s) missing or corrupt in {}",
            ctx.store.dir().display()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("all verified");
    Ok(ExitCode::SUCCESS)
}

fn fetch(ctx: &Context_, names: &[String], from: Option<&str>) -> anyhow::Result<ExitCode> {
    let mirror = from
        .map(str::to_string)
        .or_else(|| std::env::var(MIRROR_ENV).ok().filter(|s| !s.is_empty()))
        .or_else(|| ctx.config_mirror.clone())
        .or_else(|| {
            Path::new(DEFAULT_MIRROR)
                .is_dir()
                .then(|| DEFAULT_MIRROR.to_string())
        });
    let sources: Vec<FetchSource> = mirror
        .as_deref()
        .map(FetchSource::parse)
        .into_iter()
        .collect();
    if let Some(FetchSource::Dir(d)) = sources.first()
        && !d.is_dir()
    {
        anyhow::bail!("mirror directory {} does not exist", d.display());
    }
    let (mut fetched, mut cached) = (0, 0);
    for m in selected(&ctx.set, names)? {
        let outcomes = fetch_model(&ctx.store, m, &sources)
            .with_context(|| format!("fetching model `{}`", m.name))?;
        for o in outcomes {
            match o {
                FetchOutcome::AlreadyCached { file } => {
                    cached += 1;
                    println!("{:<40} cached    {file}", m.name);
                }
                FetchOutcome::Fetched { file, from, bytes } => {
                    fetched += 1;
                    println!(
                        "{:<40} fetched   {file} ({bytes} bytes from {from}, sha256 verified)",
                        m.name
                    );
                }
            }
        }
    }
    println!(
        "{fetched} fetched, {cached} already cached, into {}",
        ctx.store.dir().display()
    );
    Ok(ExitCode::SUCCESS)
}
