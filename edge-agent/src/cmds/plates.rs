//! `edge-agent plates IMAGE...`: read Vietnamese plates; `--crops` for plate crops; `--report DIR` for
//! exact-match accuracy against a footage folder's ground truth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use edge_agent::anpr::{FramePlate, PlateMode, PlateReader, ReaderOptions, Readers};
use edge_agent::inference::RgbImage;
use edge_agent::plate::{CodeSet, DecodeOptions, PlateDecode};
use serde_json::{Value, json};

use super::detect::load_model;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images (or plate crops with --crops).
    #[arg(required_unless_present = "report")]
    images: Vec<PathBuf>,
    /// Each input is one plate crop: OCR only, no box in the output.
    #[arg(long)]
    crops: bool,
    /// Where plate candidates come from.
    #[arg(long, value_enum, default_value_t = PlateMode::Both)]
    mode: PlateMode,
    /// Which OCR reads the plates: the slot OCR, PP-OCR rec, or both fused (the most accurate).
    #[arg(long, value_enum, default_value_t = Readers::Fused)]
    readers: Readers,
    /// Score a footage folder (images/ + ground_truth.csv, plate_crops/ + labels.csv) and print
    /// exact-match counts.
    #[arg(long, conflicts_with = "images")]
    report: Option<PathBuf>,
    /// Print a JSON summary line at the end of --report.
    #[arg(long)]
    json: bool,
    /// Also write every plate found as the crop the OCR read (JPEG) into this folder, with a row
    /// in its `labels.csv` proposing the read as the label (`verified = no` until someone checks
    /// it): a site's own training crops for `models/training/train_ctc.py --site`. A plate
    /// already collected (same image, same plate) is not written again.
    #[arg(long, conflicts_with_all = ["report", "crops"])]
    save_crops: Option<PathBuf>,
    /// OCR views per plate (1 = the crop only; more average the OCR over slightly inset crops).
    #[arg(long, default_value_t = 1)]
    ocr_views: usize,
    /// Province codes this camera mostly sees (e.g. `70,62` for Tây Ninh): a prior that a read
    /// of one of them is likelier, since most traffic at a provincial camera is local.
    #[arg(long, value_delimiter = ',')]
    local_codes: Vec<u8>,
    /// How much likelier a local code is a priori than any one other code (a factor ≥ 1). With a
    /// share `s` of the traffic local over `n` local codes and 81 codes in all:
    /// `(s/n) / ((1−s)/(81−n))`; 70 % local over 2 codes is about 90. The read's confidence is the
    /// posterior under this prior, as the search is.
    #[arg(long, default_value_t = 20.0)]
    local_factor: f32,
    /// Vehicle crops packed into one plate-detector call (`--mode both|vehicle-crops`); 1 searches
    /// each vehicle alone.
    #[arg(long, default_value_t = edge_agent::anpr::DEFAULT_CROPS_PER_CALL)]
    crops_per_call: usize,
    /// Images read together: their full-frame plate detection shares detector calls (packed on one
    /// canvas), OCR is batched across them. 1 reads each image alone; 2 suits wide camera frames.
    #[arg(long, default_value_t = 1)]
    frames_per_call: usize,
    /// Read confidence below which a read is reported as low-confidence. Default: the OCR model's
    /// calibrated threshold for these readers (its manifest's `[trust]`), else 0.5.
    #[arg(long)]
    min_confidence: Option<f32>,
    /// `fused`: a valid slot read at or above this confidence skips the text recogniser; the rest
    /// are read by both and fused (above 1 fuses every plate).
    #[arg(long, default_value_t = edge_agent::anpr::DEFAULT_FUSE_BELOW)]
    fuse_below: f32,
    /// Pad recogniser rows to their own width (a multiple of 8) but at least this, instead of the
    /// manifest's `min_width` (0, the default: faster when set, but PP-OCR reads narrow rows worse).
    #[arg(long, default_value_t = 0)]
    rec_min_width: u32,
    /// Models: vehicle detector, plate detector, OCR.
    #[arg(long, default_value = "yolox_nano_coco_416")]
    vehicle_model: String,
    #[arg(long, default_value = "vn_plate_det_yolo26n_640_e2e")]
    plate_model: String,
    /// Plate OCR; with `--report`, several (comma-separated) are scored one after the other and
    /// compared side by side at the end.
    #[arg(long, value_delimiter = ',', default_value = edge_agent::anpr::DEFAULT_PLATE_OCR)]
    ocr_model: Vec<String>,
    /// A second slot OCR that reads every plate with the OCR (`[models] plate_ocr_second`);
    /// `none`, or the OCR itself, reads with the OCR alone. With several `--ocr-model`, one value
    /// for all of them or one each (`--ocr-model A,A --ocr-second B,none`: A with B beside A alone).
    #[arg(long, value_delimiter = ',', default_value = edge_agent::anpr::DEFAULT_PLATE_OCR_SECOND)]
    ocr_second: Vec<String>,
    #[arg(long, default_value = "ppocrv4_rec")]
    recognizer_model: String,
    /// Model cache directory.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Agent config whose `[runtime]` (library, threads, spin_wait, cpu_arena) the models run with.
    #[arg(long)]
    config: Option<PathBuf>,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn reader(args: &Args, ocr_model: &str, ocr_second: &str) -> anyhow::Result<PlateReader> {
    let cache = args.cache_dir.as_ref();
    let plate = load_model(&args.plate_model, args.config.as_ref(), cache, args.threads)?;
    let ocr = load_model(ocr_model, args.config.as_ref(), cache, args.threads)?;
    let needs_vehicles = !args.crops && args.mode != PlateMode::FullFrame;
    let vehicles = if needs_vehicles {
        Some(load_model(
            &args.vehicle_model,
            args.config.as_ref(),
            cache,
            args.threads,
        )?)
    } else {
        None
    };
    let opts = ReaderOptions {
        // Crops skip detection altogether, so no vehicle detector is loaded for them.
        mode: if args.crops {
            PlateMode::FullFrame
        } else {
            args.mode
        },
        readers: args.readers,
        min_confidence: args.min_confidence,
        crops_per_call: args.crops_per_call.max(1),
        frames_per_call: args.frames_per_call.max(1),
        ocr_views: args.ocr_views.max(1),
        fuse_below: args.fuse_below,
        rec_min_width: (args.rec_min_width > 0).then_some(args.rec_min_width),
        decode: DecodeOptions {
            local_codes: CodeSet::of(&args.local_codes),
            local_log_bonus: if args.local_codes.is_empty() {
                0.0
            } else {
                args.local_factor.max(1.0).ln()
            },
            ..DecodeOptions::default()
        },
        ..ReaderOptions::default()
    };
    let mut reader = PlateReader::new(plate, ocr, vehicles, opts)?;
    if let Some(second) = second_ocr(ocr_second, ocr_model) {
        let second = load_model(second, args.config.as_ref(), cache, args.threads)?;
        reader = reader.with_second_ocr(second)?;
    }
    Ok(match args.readers {
        Readers::Slot => reader,
        Readers::Ppocr | Readers::Fused => reader.with_recognizer(load_model(
            &args.recognizer_model,
            args.config.as_ref(),
            cache,
            args.threads,
        )?)?,
    })
}

/// The second slot OCR to read with `ocr`: as `[models] plate_ocr_second` (`anpr::second_ocr`),
/// and `none` on the command line for none.
pub(crate) fn second_ocr<'a>(second: &'a str, ocr: &str) -> Option<&'a str> {
    edge_agent::anpr::second_ocr(ocr, second).filter(|s| *s != "none")
}

fn read_json(d: &PlateDecode, low_confidence: bool) -> Value {
    json!({
        "text": d.text,
        "display": d.plate.as_ref().map(|p| p.display.clone()),
        "confidence": (d.confidence as f64 * 1e4).round() / 1e4,
        "char_confidence": d.char_conf.iter().map(|c| (*c as f64 * 1e3).round() / 1e3).collect::<Vec<_>>(),
        "valid": d.valid,
        "low_confidence": low_confidence,
        "rows": d.plate.as_ref().and_then(|p| p.rows),
        "province": d.plate.as_ref().and_then(|p| p.province.map(|pr| pr.name)),
        "raw_text": d.raw_text,
    })
}

fn plate_json(p: &FramePlate) -> Value {
    let mut v = read_json(&p.read, p.low_confidence);
    v["box"] = json!(p.bbox.map(|c| (c as f64 * 10.0).round() / 10.0));
    v["detector_score"] = json!((p.detector_score as f64 * 1e4).round() / 1e4);
    v["vehicle"] = json!(p.vehicle);
    v
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.report {
        let seconds = match args.ocr_second.len() {
            1 => vec![args.ocr_second[0].as_str(); args.ocr_model.len()],
            n if n == args.ocr_model.len() => args.ocr_second.iter().map(String::as_str).collect(),
            n => anyhow::bail!(
                "--ocr-second has {n} values for {} --ocr-model values: give one for all, or one each",
                args.ocr_model.len()
            ),
        };
        let mut summaries = Vec::with_capacity(args.ocr_model.len());
        for (model, second) in args.ocr_model.iter().zip(seconds) {
            let second = second_ocr(second, model);
            let label = match second {
                Some(second) => format!("{model} with {second}"),
                None => model.clone(),
            };
            if args.ocr_model.len() > 1 {
                println!("== {label}");
            }
            let summary = report(&mut reader(&args, model, second.unwrap_or("none"))?, dir)?;
            if args.json {
                let mut line = summary.json();
                line["ocr_model"] = json!(model);
                line["ocr_second"] = json!(second);
                println!("{line}");
            }
            summaries.push((label, summary));
        }
        if summaries.len() > 1 {
            print_side_by_side(&summaries);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ([ocr_model], [ocr_second]) = (args.ocr_model.as_slice(), args.ocr_second.as_slice())
    else {
        anyhow::bail!(
            "several --ocr-model or --ocr-second values are only for --report (side by side)"
        );
    };
    let mut reader = reader(&args, ocr_model, ocr_second)?;
    let mut collector = args
        .save_crops
        .as_deref()
        .map(CropCollector::open)
        .transpose()?;
    if !args.crops && args.frames_per_call > 1 {
        return read_in_groups(
            &mut reader,
            &args.images,
            args.frames_per_call,
            collector.as_mut(),
        );
    }
    super::output::for_each_input(&args.images, |path| {
        let img = edge_agent::imageio::read_rgb(path)?;
        let plates: Vec<Value> = if args.crops {
            let d = reader.read_crops(&[&img])?.pop().context("no read")?;
            vec![read_json(&d, reader.is_low_confidence(&d))]
        } else {
            let plates = reader.read_frame(&img)?;
            if let Some(c) = collector.as_mut() {
                c.save(path, &img, &plates)?;
            }
            plates.iter().map(plate_json).collect()
        };
        super::output::line(json!({"file": path, "plates": plates}))
    })
}

/// `--frames-per-call N`: images read N at a time (sharing detector calls), one line each in input
/// order; a failed input is reported with its path and the rest go on.
fn read_in_groups(
    reader: &mut PlateReader,
    paths: &[std::path::PathBuf],
    n: usize,
    mut collector: Option<&mut CropCollector>,
) -> anyhow::Result<ExitCode> {
    super::output::for_each_group(paths, n, |group| {
        let loaded: Vec<anyhow::Result<RgbImage>> = group
            .iter()
            .map(|p| Ok(edge_agent::imageio::read_rgb(p)?))
            .collect();
        let frames: Vec<&RgbImage> = loaded.iter().filter_map(|l| l.as_ref().ok()).collect();
        let mut read = match reader.read_frames(&frames) {
            Ok(results) => results.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => frames.iter().map(|_| Err(anyhow::anyhow!("{e}"))).collect(),
        }
        .into_iter();
        group
            .iter()
            .zip(loaded)
            .map(|(path, img)| {
                let img = img?;
                let plates = read.next().context("no read for a loaded image")??;
                if let Some(c) = collector.as_deref_mut() {
                    c.save(path, &img, &plates)?;
                }
                let plates: Vec<Value> = plates.iter().map(plate_json).collect();
                super::output::line(json!({"file": path, "plates": plates}))
            })
            .collect()
    })
}

/// `--save-crops DIR`: the plate crops of the images read, for a site's own training set.
struct CropCollector {
    dir: PathBuf,
    labels: std::fs::File,
}

/// The columns of the collected `labels.csv` (`plate_norm` and `rows` as the training scripts and
/// `plates --report` read them).
const COLLECTED_HEADER: &str = "filename,plate_norm,rows,verified,confidence,source";

impl CropCollector {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("labels.csv");
        let mut labels = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let len = labels
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len == 0 {
            use std::io::Write;
            writeln!(labels, "{COLLECTED_HEADER}")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            labels,
        })
    }

    /// Writes each plate's crop and its proposed label. The crop's name is the image's stem, a
    /// hash of its path (two cameras' `frame1.jpg` do not collide) and the box's top-left corner
    /// (the same plate whatever reader ran).
    fn save(&mut self, source: &Path, img: &RgbImage, plates: &[FramePlate]) -> anyhow::Result<()> {
        use std::io::Write;
        let stem: String = source
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let tag =
            &edge_agent::events::evidence::sha256_hex(source.to_string_lossy().as_bytes())[..8];
        for p in plates {
            let [x, y, ..] = p.bbox.map(|v| v.max(0.0).round() as u32);
            let name = format!("{stem}_{tag}_{x}_{y}.jpg");
            let path = self.dir.join(&name);
            if path.exists() {
                continue;
            }
            let crop = edge_agent::events::evidence::encode_crop(
                img.as_raw(),
                img.width(),
                img.height(),
                p.bbox,
                0.0,
                0,
                95,
            )?;
            std::fs::write(&path, &crop.jpeg)
                .with_context(|| format!("writing {}", path.display()))?;
            let (text, rows) = match &p.read.plate {
                Some(plate) if p.read.valid => (
                    p.read.text.as_str(),
                    plate.rows.map_or(String::new(), |r| r.to_string()),
                ),
                _ => ("", String::new()),
            };
            writeln!(
                self.labels,
                "{name},{text},{rows},no,{:.4},{}",
                p.read.confidence,
                csv_field(&source.to_string_lossy())
            )
            .with_context(|| format!("writing {}", self.dir.join("labels.csv").display()))?;
        }
        Ok(())
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Minimal CSV reading (header row, optional double quotes); the ground-truth files are simple.
fn read_csv(path: &Path) -> anyhow::Result<Vec<HashMap<String, String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let split = |line: &str| -> Vec<String> {
        let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        for ch in line.chars() {
            match ch {
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        fields
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split(lines.next().context("empty CSV")?);
    Ok(lines
        .map(|l| header.iter().cloned().zip(split(l)).collect())
        .collect())
}

/// What `--report` measured for one OCR model.
struct ReportSummary {
    images_exact: usize,
    images_exact_any: usize,
    images_scored: usize,
    crops_exact: usize,
    crops_exact_any: usize,
    crops_trusted_wrong: usize,
    crops_scored: usize,
    crops_trusted_precision: f64,
    /// The threshold the trusted counts were taken at.
    trust: edge_agent::anpr::TrustThreshold,
    at97: Option<CurvePoint>,
    /// The precision–recall curve at [`CURVE_THRESHOLDS`].
    curve: Vec<CurvePoint>,
    image_counts: edge_agent::anpr::ReadCounts,
    crop_counts: edge_agent::anpr::ReadCounts,
}

/// Where `--report` prints the crops' precision–recall curve.
const CURVE_THRESHOLDS: [f32; 9] = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99];

impl ReportSummary {
    /// The `--json` summary line.
    fn json(&self) -> Value {
        json!({"images_exact": self.images_exact, "images_exact_any": self.images_exact_any,
               "images_scored": self.images_scored,
               "crops_exact": self.crops_exact, "crops_exact_any": self.crops_exact_any,
               "crops_trusted_wrong": self.crops_trusted_wrong,
               "crops_scored": self.crops_scored, "crops_trusted_precision": self.crops_trusted_precision,
               "min_confidence": self.trust.min_confidence,
               "min_confidence_from": self.trust.source,
               "crops_coverage_at_97": self.at97.map_or(0.0, |p| p.coverage),
               "crops_threshold_at_97": self.at97.map(|p| p.threshold),
               "image_plates": self.image_counts.plates,
               "image_plates_recognized": self.image_counts.recognized,
               "crops_recognized": self.crop_counts.recognized})
    }
}

/// Several OCR models' reports as one table, then their precision–recall curves column by column.
fn print_side_by_side(summaries: &[(String, ReportSummary)]) {
    println!("side by side:");
    let name_w = summaries
        .iter()
        .map(|(m, _)| m.chars().count())
        .max()
        .unwrap_or(0)
        .max(36);
    println!(
        "  {:<name_w$} {:>8} {:>7} {:>14} {:>10} {:>22}",
        "ocr model", "trusted", "images", "crops ok/any", "precision", "97 % precision keeps"
    );
    for (model, s) in summaries {
        println!(
            "  {model:<name_w$} {:>8} {:>7} {:>14} {:>8.1} % {:>22}",
            format!("≥ {}", s.trust.min_confidence),
            format!("{}/{}", s.images_exact, s.images_scored),
            format!(
                "{}/{} of {}",
                s.crops_exact, s.crops_exact_any, s.crops_scored
            ),
            100.0 * s.crops_trusted_precision,
            s.at97.map_or("none".to_string(), |p| format!(
                "{:.1} % (>= {:.3})",
                100.0 * p.coverage,
                p.threshold
            )),
        );
    }
    println!("  precision / recall of crops at each confidence threshold:");
    let w = summaries
        .iter()
        .map(|(m, _)| m.len())
        .max()
        .unwrap_or(0)
        .max(17);
    let mut header = format!("  {:<10}", "confidence");
    for (model, _) in summaries {
        header.push_str(&format!(" {model:>w$}"));
    }
    println!("{header}");
    for (i, t) in CURVE_THRESHOLDS.iter().enumerate() {
        let mut line = format!("  >= {t:<7.2}");
        for (_, s) in summaries {
            let p = s.curve[i];
            let cell = format!("{:.1} % / {:.1} %", 100.0 * p.precision, 100.0 * p.coverage);
            line.push_str(&format!(" {cell:>w$}"));
        }
        println!("{line}");
    }
}

fn report(reader: &mut PlateReader, dir: &Path) -> anyhow::Result<ReportSummary> {
    // Images: a scored plate counts when a trusted read with its exact text overlaps its box.
    let gt = read_csv(&dir.join("ground_truth.csv"))?;
    let mut by_file: Vec<(String, Vec<&HashMap<String, String>>)> = Vec::new();
    for row in gt
        .iter()
        .filter(|r| r.get("scored").map(String::as_str) == Some("yes"))
    {
        let file = row["file"].clone();
        match by_file.iter_mut().find(|(f, _)| *f == file) {
            Some((_, rows)) => rows.push(row),
            None => by_file.push((file, vec![row])),
        }
    }
    // `ok`: a trusted read is right; `any`: some read is right, trusted or not (how a reader
    // without a confidence threshold is scored).
    let (mut img_ok, mut img_any, mut img_total) = (0, 0, 0);
    let images: Vec<RgbImage> = by_file
        .iter()
        .map(|(file, _)| edge_agent::imageio::read_rgb(&dir.join(file)))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&RgbImage> = images.iter().collect();
    let mut read = Vec::with_capacity(refs.len());
    for group in refs.chunks(reader.options().frames_per_call.max(1)) {
        read.extend(reader.read_frames(group)?);
    }
    for ((file, rows), plates) in by_file.iter().zip(read) {
        for row in rows {
            img_total += 1;
            let want = &row["plate_norm"];
            let gt_box: [f32; 4] =
                ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"].map(|k| row[k].parse().unwrap_or(0.0));
            let right = |p: &&FramePlate| &p.read.text == want && overlaps(&p.bbox, &gt_box);
            let hit = plates.iter().filter(right).any(|p| !p.low_confidence);
            img_ok += usize::from(hit);
            img_any += usize::from(plates.iter().any(|p| right(&p)));
            let seen: Vec<&str> = plates.iter().map(|p| p.read.text.as_str()).collect();
            println!(
                "{:<5} {file:<32} {want:<10} reads {seen:?}",
                if hit { "ok" } else { "MISS" }
            );
        }
    }
    // Crops: exact text of a trusted read.
    let labels = read_csv(&dir.join("plate_crops/labels.csv"))?;
    let scored: Vec<&HashMap<String, String>> = labels
        .iter()
        .filter(|r| r.get("label_format_ok").map(String::as_str) == Some("yes"))
        .collect();
    let imgs: Vec<RgbImage> = scored
        .iter()
        .map(|r| edge_agent::imageio::read_rgb(&dir.join("plate_crops").join(&r["filename"])))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&RgbImage> = imgs.iter().collect();
    let image_counts = reader.take_counts();
    let reads = reader.read_crops(&refs)?;
    let crop_counts = reader.take_counts();
    let (mut crop_ok, mut crop_any, mut crop_wrong) = (0, 0, 0);
    let trust = reader.trust().clone();
    println!("trusted reads: {trust}");
    // (confidence of a valid read, right?) for the precision–recall curve; invalid reads are never
    // trusted, whatever the threshold.
    let mut scored_reads: Vec<(f32, bool)> = Vec::with_capacity(reads.len());
    for (row, read) in scored.iter().zip(&reads) {
        let right = read.text == row["plate_norm"];
        if read.valid {
            scored_reads.push((read.confidence, right));
        }
        let trusted = !reader.is_low_confidence(read);
        let hit = trusted && right;
        crop_ok += usize::from(hit);
        crop_any += usize::from(right);
        crop_wrong += usize::from(trusted && !right);
        println!(
            "{:<5} {:<56} {:<10} read {} ({:.2}{})",
            if hit { "ok" } else { "MISS" },
            row["filename"],
            row["plate_norm"],
            read.text,
            read.confidence,
            if trusted { "" } else { ", low confidence" }
        );
    }
    println!(
        "images: {img_ok}/{img_total} scored plates exact ({img_any} counting low-confidence reads)"
    );
    println!(
        "plate crops: {crop_ok}/{} exact ({crop_any} counting low-confidence reads); {crop_wrong} wrong reads trusted",
        scored.len()
    );
    let curve = PrecisionCurve::new(scored_reads, scored.len());
    let trusted = crop_ok + crop_wrong;
    let precision = ratio(crop_ok, trusted);
    let at97 = curve.coverage_at(0.97);
    println!(
        "plate crops: trusted reads {:.1} % right ({crop_ok}/{trusted}) at confidence >= {}; at 97 % precision: {}",
        100.0 * precision,
        trust.min_confidence,
        match at97 {
            Some(p) => format!(
                "confidence >= {:.3} keeps {}/{} ({:.1} %)",
                p.threshold,
                p.right,
                scored.len(),
                100.0 * p.coverage
            ),
            None => "no threshold reaches it".into(),
        }
    );
    println!("precision-recall (crops; recall = right trusted reads / all crops):");
    println!("  confidence  trusted  right  precision  recall");
    let points = curve.points_at(&CURVE_THRESHOLDS);
    for p in &points {
        println!(
            "  >= {:<7.2} {:>7}  {:>5}  {:>8.1} %  {:>5.1} %",
            p.threshold,
            p.trusted,
            p.right,
            100.0 * p.precision,
            100.0 * p.coverage
        );
    }
    println!(
        "text recogniser ran on {}/{} image plates, {}/{} crops",
        image_counts.recognized, image_counts.plates, crop_counts.recognized, crop_counts.plates
    );
    Ok(ReportSummary {
        images_exact: img_ok,
        images_exact_any: img_any,
        images_scored: img_total,
        crops_exact: crop_ok,
        crops_exact_any: crop_any,
        crops_trusted_wrong: crop_wrong,
        crops_scored: scored.len(),
        crops_trusted_precision: precision,
        trust,
        at97,
        curve: points,
        image_counts,
        crop_counts,
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Precision and coverage of trusted reads as the confidence threshold moves.
struct PrecisionCurve {
    /// Valid reads, most confident first.
    reads: Vec<(f32, bool)>,
    /// Every scored input, read or not (the denominator of coverage).
    total: usize,
}

/// One threshold's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CurvePoint {
    threshold: f32,
    trusted: usize,
    right: usize,
    precision: f64,
    coverage: f64,
}

impl PrecisionCurve {
    fn new(mut reads: Vec<(f32, bool)>, total: usize) -> Self {
        // A NaN confidence passes no threshold; out of the list, the sort leaves a clean prefix
        // of reads at or above any threshold.
        reads.retain(|r| !r.0.is_nan());
        reads.sort_by(|a, b| b.0.total_cmp(&a.0));
        Self { reads, total }
    }

    fn at(&self, threshold: f32) -> CurvePoint {
        let trusted = self.reads.partition_point(|r| r.0 >= threshold);
        let right = self.reads[..trusted].iter().filter(|r| r.1).count();
        self.point(threshold, trusted, right)
    }

    fn point(&self, threshold: f32, trusted: usize, right: usize) -> CurvePoint {
        CurvePoint {
            threshold,
            trusted,
            right,
            precision: ratio(right, trusted),
            coverage: ratio(right, self.total),
        }
    }

    fn points_at(&self, thresholds: &[f32]) -> Vec<CurvePoint> {
        thresholds.iter().map(|&t| self.at(t)).collect()
    }

    /// The lowest threshold (most right reads) whose trusted reads are at least `precision` right:
    /// one pass down the sorted reads, a point wherever the confidence changes.
    fn coverage_at(&self, precision: f64) -> Option<CurvePoint> {
        let mut right = 0;
        let mut best = None;
        for (i, r) in self.reads.iter().enumerate() {
            right += usize::from(r.1);
            if self.reads.get(i + 1).is_some_and(|next| next.0 == r.0) {
                continue;
            }
            let p = self.point(r.0, i + 1, right);
            if p.precision >= precision {
                best = Some(p);
            }
        }
        best
    }
}

fn overlaps(a: &[f32; 4], b: &[f32; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_keeps_the_lowest_threshold_that_reaches_the_precision() {
        // 0.9 right, 0.8 right, 0.7 wrong, 0.6 right; 5 inputs (one not validly read)
        let curve =
            PrecisionCurve::new(vec![(0.6, true), (0.9, true), (0.7, false), (0.8, true)], 5);
        let p = curve.coverage_at(0.97).unwrap();
        assert_eq!((p.threshold, p.trusted, p.right), (0.8, 2, 2));
        assert!((p.coverage - 0.4).abs() < 1e-9);
        let all = curve.at(0.0);
        assert_eq!((all.trusted, all.right), (4, 3));
        assert!((all.precision - 0.75).abs() < 1e-9);
        assert!(
            PrecisionCurve::new(vec![(0.9, false)], 1)
                .coverage_at(0.97)
                .is_none()
        );
    }
}
