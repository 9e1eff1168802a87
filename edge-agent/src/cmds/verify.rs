//! `edge-agent verify --key HEX EVENTS.jsonl [--evidence DIR]`: checks events offline against the
//! device's public key — each signature, the chain between consecutive events of a device, and
//! with `--evidence` each JPEG's sha256 and that a clip sent in pieces puts together to its own —
//! and names every problem (a clip kept on the device is not expected there).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use edge_agent::events::evidence::sha256_hex;
use edge_agent::signing;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's public key, hex (its birth message on `status` carries it as `device_key`).
    #[arg(long)]
    key: String,
    /// Folder of the evidence JPEGs as `{sha256}.jpg` (what `watch --out` saves).
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// Events as JSON lines, as sent (`watch --out DIR` writes `DIR/events.jsonl`).
    events: PathBuf,
}

/// One event's facts for the chain check.
struct Seen {
    line: usize,
    prev: String,
    link: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.events)
        .with_context(|| format!("reading {}", args.events.display()))?;
    let mut problems = Vec::new();
    let mut chains: BTreeMap<String, BTreeMap<u64, Seen>> = BTreeMap::new();
    let (mut events, mut images) = (0usize, 0usize);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        events += 1;
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("line {n}: not JSON: {e}"));
                continue;
            }
        };
        let seq = v["seq"].as_u64().unwrap_or(0);
        let device = format!(
            "{}/{}",
            v["site_id"].as_str().unwrap_or("?"),
            v["device_id"].as_str().unwrap_or("?")
        );
        let at = format!("line {n} ({device} seq {seq})");
        match signing::verify(line.as_bytes(), &args.key) {
            Ok(sig) => {
                chains.entry(device).or_default().insert(
                    seq,
                    Seen {
                        line: n,
                        link: signing::link(&sig),
                        prev: sig.prev,
                    },
                );
            }
            Err(e) => problems.push(format!("{at}: {e}")),
        }
        if let Some(dir) = &args.evidence {
            let refs: Vec<&serde_json::Value> =
                v["evidence"].as_array().into_iter().flatten().collect();
            for r in &refs {
                let sha = r["sha256"].as_str().unwrap_or_default();
                if r["role"] == "clip" {
                    // a clip kept on the device is not here; one that travelled is its pieces
                    if r["clip"]["on_request"] == false {
                        images += 1;
                        let pieces: Vec<&str> = refs
                            .iter()
                            .filter(|p| p["role"] == "clip_part")
                            .filter_map(|p| p["sha256"].as_str())
                            .collect();
                        let mut whole = Vec::new();
                        for piece in pieces {
                            if let Ok(bytes) = std::fs::read(dir.join(format!("{piece}.jpg"))) {
                                whole.extend_from_slice(&bytes);
                            }
                        }
                        if sha256_hex(&whole) != sha {
                            problems.push(format!(
                                "{at}: the pieces of clip {sha} do not put together to it (missing or changed)"
                            ));
                        }
                    }
                    continue;
                }
                let path = dir.join(format!("{sha}.jpg"));
                images += 1;
                match std::fs::read(&path) {
                    Ok(bytes) if sha256_hex(&bytes) == sha => {}
                    Ok(_) => problems.push(format!(
                        "{at}: evidence {} does not hash to its sha256 (the image was changed)",
                        path.display()
                    )),
                    Err(e) => problems.push(format!("{at}: evidence {}: {e}", path.display())),
                }
            }
        }
    }
    for (device, seqs) in &chains {
        let mut before: Option<(&u64, &Seen)> = None;
        for (seq, seen) in seqs {
            if let Some((last, prev)) = before {
                if *seq == last + 1 && seen.prev != prev.link {
                    problems.push(format!(
                        "line {} ({device} seq {seq}): chain broken: prev is not the link of seq {last} (line {}); an event was replaced or forged",
                        seen.line, prev.line
                    ));
                } else if *seq > last + 1 {
                    problems.push(format!(
                        "{device}: seq {}..{} missing from the file (removed, or not received)",
                        last + 1,
                        seq - 1
                    ));
                }
            }
            before = Some((seq, seen));
        }
    }
    for p in &problems {
        println!("{p}");
    }
    println!(
        "{}: {events} events, {images} evidence images checked, {} problems",
        args.events.display(),
        problems.len()
    );
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
