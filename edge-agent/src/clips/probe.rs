//! Test helpers: a clip checked with ffmpeg against the file it was cut from.

use std::path::Path;
use std::process::Command;

use super::{ClipCut, remux};
use crate::source::nal_units;

/// The packets of a video file's first stream as ffmpeg demuxes them, one MD5 each.
fn packet_md5s(file: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

fn ffprobe(file: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Remuxes `cut` into `out` and checks it against `source`: every picture decodes, of the right
/// codec and size, shown in order at the source's pace, and its packets (after the first `skip`) are
/// a run of the source's own: nothing was re-encoded.
pub(crate) fn assert_clip_of(
    source: &Path,
    out: &Path,
    cut: &ClipCut,
    dims: (u32, u32),
    skip: usize,
) {
    let mp4 = remux(&cut.units, dims).expect("remux");
    std::fs::write(out, &mp4).expect("write the clip");
    let codec = cut.units[0].codec;
    let pictures = cut
        .units
        .iter()
        .filter(|u| nal_units(&u.annexb).any(|n| codec.is_slice(n)))
        .count();
    let (name, tag) = match codec {
        super::VideoCodec::H264 => ("h264", "avc1"),
        super::VideoCodec::H265 => ("hevc", "hvc1"),
    };
    let text = ffprobe(
        out,
        "stream=codec_name,codec_tag_string,width,height,nb_read_frames",
    );
    eprintln!(
        "{name}: {} units, {} bytes: {text}",
        cut.units.len(),
        mp4.len()
    );
    assert_eq!(
        text,
        format!("{name},{tag},{},{},{pictures}", dims.0, dims.1)
    );
    // shown in order, each step one the source has too (B-frames: decode order differs)
    let steps_ms = |file: &Path| -> Vec<i64> {
        let t: Vec<f64> = ffprobe(file, "frame=pts_time")
            .lines()
            .filter_map(|l| l.split(',').next()?.trim().parse().ok())
            .collect();
        t.windows(2)
            .map(|w| ((w[1] - w[0]) * 1000.0).round() as i64)
            .collect()
    };
    let steps = steps_ms(out);
    assert_eq!(steps.len() + 1, pictures, "{name}");
    let known = steps_ms(source);
    assert!(
        steps
            .iter()
            .all(|s| *s > 0 && known.iter().any(|k| (k - s).abs() <= 1)),
        "{name}: presentation steps {steps:?}, the source's {known:?}"
    );
    let whole = packet_md5s(source);
    let part = &packet_md5s(out)[skip..];
    assert!(part.len() >= 30, "{name}: {} packets", part.len());
    assert!(
        whole.windows(part.len()).any(|w| w == part),
        "{name}: the clip's packets are not a run of the source's"
    );
}
