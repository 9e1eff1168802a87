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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clips::EncodedTap;
    use crate::source::{self, SourceItem, SourceOptions};

    fn clip(name: &str) -> PathBuf {
        crate::plate::fixtures::footage_video(name)
    }

    /// Plays `file` through a source with a clip ring (pre 1 s, post 0.8 s) and asks for a clip
    /// at its `at`-th picture; the one clip cut.
    fn clip_of(file: &Path, mut opts: SourceOptions, at: u64) -> ClipCut {
        let tap = EncodedTap::new(
            16 << 20,
            Duration::from_millis(1000),
            Duration::from_millis(800),
        );
        opts.encoded = Some(Arc::new(tap.clone()));
        let mut src = source::open(file.to_str().unwrap_or_default(), &opts).expect("open");
        while let Some(item) = src.next_item().expect("decode") {
            if let SourceItem::Frame(f) = item
                && f.seq == at
            {
                let event = crate::events::examples::example(crate::events::EventKind::WrongWay);
                tap.request(event, f.stream_time);
            }
        }
        tap.finish();
        let mut cuts = tap.take_ready();
        assert_eq!(cuts.len(), 1);
        let cut = cuts.remove(0);
        assert!(cut.complete, "the file went on past post_s");
        assert!(cut.units[0].keyframe);
        cut
    }

    #[test]
    fn a_clip_of_a_file_with_b_frames_is_its_own_packets_shown_in_order() {
        // The High-profile junction clip reorders pictures (B-frames): each unit goes into the
        // ring at its own presentation time, whatever picture the decoder answers it with.
        let file = clip("vn_citycam_haiphong.mp4");
        let cut = clip_of(&file, SourceOptions::default(), 60);
        let dir = tempfile::tempdir().unwrap();
        assert_clip_of(&file, &dir.path().join("clip.mp4"), &cut, (1006, 720), 0);
    }

    #[cfg(feature = "gstreamer")]
    #[test]
    fn gst_clips_are_cut_from_h265_and_h264_without_reencoding() {
        let dir = tempfile::tempdir().unwrap();
        // H.265 with a keyframe every 20 pictures (libx265: H.265 footage is not in the mirror);
        // the junction clip itself is H.264 in MP4, so the parser's units are length-prefixed
        let h265 = dir.path().join("gop.mp4");
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(clip("vn_citycam_haiphong.mp4"))
            .args([
                "-an",
                "-frames:v",
                "80",
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
            ])
            .args(["-pix_fmt", "yuv420p"])
            .args([
                "-x265-params",
                "log-level=error:keyint=20:min-keyint=20:bframes=0",
            ])
            .arg(&h265)
            .status()
            .expect("run ffmpeg (scripts/test.sh installs it)");
        assert!(status.success());
        let opts = SourceOptions {
            decoding: source::Decoding::Gstreamer { element: None },
            ..SourceOptions::default()
        };
        for (file, name) in [(h265, "hevc"), (clip("vn_citycam_haiphong.mp4"), "h264")] {
            let cut = clip_of(&file, opts.clone(), 49);
            assert_eq!(cut.dims, Some((1006, 720)), "{name}");
            // the first packet differs: ffmpeg's muxer keeps x265's SEI in the file's hvcC, the
            // parser hands it over in the keyframe, and the clip keeps it there
            let skip = usize::from(name == "hevc");
            let out = dir.path().join(format!("clip-{name}.mp4"));
            assert_clip_of(&file, &out, &cut, (1006, 720), skip);
        }
    }
}
