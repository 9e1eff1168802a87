//! The `edge-agent` command line. Each subcommand lives in `cmds/`.

mod cmds;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edge_agent::logging::{self, LogFormat};

/// Edge video analytics agent: reads Vietnamese licence plates and flags unusual traffic on the
/// device, and delivers events with evidence to the integration centre over MQTT.
#[derive(Debug, Parser)]
#[command(name = "edge-agent", version, propagate_version = true)]
struct Cli {
    /// Log format: human-readable text, or JSON lines for fleet log collection.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "EDGE_AGENT_LOG_FORMAT")]
    log_format: LogFormat,
    /// Default log level (RUST_LOG overrides it).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent with a config file.
    Run(cmds::run::Args),
    /// Validate config files offline; every problem is printed as file:line:col.
    Check(cmds::check::Args),
    /// Print the agent version, the ONNX Runtime library in use and the enabled features.
    Version(cmds::version::Args),
    /// List, verify and fetch model weights.
    Models(cmds::models::Args),
    /// Run a detector on images; one JSON line per image with boxes in image pixels.
    Detect(cmds::detect::Args),
    /// Read Vietnamese licence plates in images or plate crops; `--report` scores a footage folder.
    Plates(cmds::plates::Args),
    /// Measure steady-state preprocessing, ONNX Runtime and postprocessing time per model.
    Bench(cmds::bench::Args),
    /// Run the whole pipeline on a video file; events as JSON lines and a summary.
    Replay(cmds::replay::Args),
    /// Check the audit log's hash chain (config changes, exports, deletions, API access).
    Audit(cmds::audit::Args),
    /// Check events and their evidence offline against the device's public key: signatures, the
    /// chain between events, the JPEGs' sha256; every problem named.
    Verify(cmds::verify::Args),
    /// Print the event JSON Schema, or regenerate/check schema/ and docs/events.md.
    Schema(cmds::schema::Args),
    /// Submit synthetic events with evidence through the spool and publisher (tests, benchmark).
    Emit(cmds::emit::Args),
    /// Subscribe to events like an integrator: dedupe, verify evidence, report sequence gaps.
    Watch(cmds::watch::Args),
    /// Installer's self-test: cameras, models, broker (TLS and auth), clock and disk, as a
    /// PASS/WARN/FAIL table; exit 0 when nothing failed, 1 when a check failed, 2 for a bad config.
    Probe(cmds::probe::Args),
    /// Draw a camera's zones, lines and directions on one of its frames (PNG) to check a config.
    Zones(cmds::zones::Args),
    /// The centre's side of remote config: make the centre key, print its public half, sign a
    /// config or watchlist for one device (the JSON to publish on its `*/set` topic).
    SignRemote(cmds::sign_remote::Args),
}

fn main() -> ExitCode {
    edge_agent::process::bound_allocator();
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    let result = match cli.command {
        Command::Run(args) => cmds::run::run(args),
        Command::Check(args) => cmds::check::run(args),
        Command::Version(args) => cmds::version::run(args),
        Command::Models(args) => cmds::models::run(args),
        Command::Detect(args) => cmds::detect::run(args),
        Command::Bench(args) => cmds::bench::run(args),
        Command::Plates(args) => cmds::plates::run(args),
        Command::Audit(args) => cmds::audit::run(args),
        Command::Verify(args) => cmds::verify::run(args),
        Command::Replay(args) => cmds::replay::run(args),
        Command::Schema(args) => cmds::schema::run(args),
        Command::Emit(args) => cmds::emit::run(args),
        Command::Watch(args) => cmds::watch::run(args),
        Command::Zones(args) => cmds::zones::run(args),
        Command::Probe(args) => cmds::probe::run(args),
        Command::SignRemote(args) => cmds::sign_remote::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.is::<cmds::output::StdoutClosed>() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
