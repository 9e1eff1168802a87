//! mp4/mov files as a source: recorded clips drive tests, demos and offline re-analysis of evidence.
//! Only the H.264 track is read (audio is ignored); pictures come out in presentation order with
//! their container timestamps, so variable-frame-rate phone and NVR exports keep real timing.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use mp4::{MediaType, Mp4Reader, TrackType};

use super::h264::{Decoded, H264Decoder};
use super::{
    Frame, FrameSource, SourceCounters, SourceError, SourceItem, SourceOptions, StreamStatus,
};
use super::{LengthPrefixed, VideoCodec};

/// Decodes the H.264 track of an mp4/mov file.
pub(crate) struct Mp4Source {
    place: String,
    reader: Mp4Reader<BufReader<File>>,
    track_id: u32,
    sample_count: u32,
    next_sample: u32,
    timescale: u32,
    /// The track's NAL length size and its SPS and PPS (from avcC), sent before every keyframe.
    units: LengthPrefixed,
    /// Picture size from the track header (the clip ring's MP4 track).
    dims: (u32, u32),
    decoder: H264Decoder,
    ready: VecDeque<Decoded>,
    description: Option<String>,
    first_pts: Option<i64>,
    seq: u64,
    opened: Instant,
    opened_wall: SystemTime,
    opts: SourceOptions,
    counters: SourceCounters,
    finished: bool,
    annexb: Vec<u8>,
}

impl Mp4Source {
    pub(super) fn open(path: &Path, opts: &SourceOptions) -> Result<Self, SourceError> {
        let place = path.display().to_string();
        let container = |reason: String| SourceError::Container {
            place: place.clone(),
            reason,
        };
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let size = file
            .metadata()
            .map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let reader = Mp4Reader::read_header(BufReader::new(file), size).map_err(|e| {
            container(format!(
                "{e} (the file is truncated or not an mp4/mov; re-export or re-download it)"
            ))
        })?;
        let mut video: Vec<_> = reader
            .tracks()
            .values()
            .filter(|t| matches!(t.track_type(), Ok(TrackType::Video)))
            .collect();
        video.sort_by_key(|t| t.track_id());
        let Some(track) = video
            .iter()
            .find(|t| matches!(t.media_type(), Ok(MediaType::H264)))
        else {
            let found = match video.first().map(|t| t.media_type()) {
                None => "no video track".to_string(),
                Some(Ok(MediaType::H265)) => "an H.265 video track".to_string(),
                Some(Ok(m)) => format!("a {m} video track"),
                // The mp4 reader knows avc1, hev1 and vp09 only; `hvc1` is the other H.265 tag.
                Some(Err(_)) => {
                    "a video track in a codec the mp4 reader does not know (H.265 `hvc1`?)"
                        .to_string()
                }
            };
            return Err(container(format!(
                "has {found}; the built-in decoder reads H.264 only: set decoder = \"gstreamer\" on the camera (an edge-agent built with `--features gstreamer`), or transcode with `ffmpeg -i IN -c:v libx264 OUT.mp4`"
            )));
        };
        let units = LengthPrefixed::of_h264_track(track)
            .ok_or_else(|| container("H.264 track without an avc1 sample entry".into()))?;
        let description = format!(
            "H.264 {}x{} from {} ({} frames)",
            track.width(),
            track.height(),
            place,
            track.sample_count()
        );
        let track_id = track.track_id();
        let dims = (u32::from(track.width()), u32::from(track.height()));
        let sample_count = track.sample_count();
        let timescale = track.timescale().max(1);
        let decoder = H264Decoder::new().map_err(|reason| SourceError::Decode {
            place: place.clone(),
            reason,
        })?;
        tracing::debug!(file = %place, track_id, sample_count, timescale, "opened mp4");
        Ok(Self {
            place,
            reader,
            track_id,
            sample_count,
            next_sample: 1,
            timescale,
            units,
            dims,
            decoder,
            ready: VecDeque::new(),
            description: Some(description),
            first_pts: None,
            seq: 0,
            opened: Instant::now(),
            opened_wall: SystemTime::now(),
            opts: opts.clone(),
            counters: SourceCounters::default(),
            finished: false,
            annexb: Vec::new(),
        })
    }

    /// Reads and decodes the next sample; false once the track is exhausted and flushed.
    fn feed(&mut self) -> Result<bool, SourceError> {
        if self.next_sample > self.sample_count {
            match self.decoder.flush() {
                Ok(rest) => self.ready.extend(rest),
                Err(e) => {
                    self.counters.decode_errors += 1;
                    tracing::warn!(file = %self.place, error = %e, "flushing the decoder failed");
                }
            }
            self.finished = true;
            return Ok(!self.ready.is_empty());
        }
        let id = self.next_sample;
        self.next_sample += 1;
        let sample = match self.reader.read_sample(self.track_id, id) {
            Ok(Some(s)) => s,
            Ok(None) => return Err(self.truncated(id, "missing".into())),
            Err(e) => return Err(self.truncated(id, e.to_string())),
        };
        self.annexb.clear();
        let converted = self
            .units
            .write_annexb(&sample.bytes, sample.is_sync, &mut self.annexb);
        if let Err(e) = converted {
            self.counters.decode_errors += 1;
            tracing::warn!(file = %self.place, sample = id, error = %e, "skipping a malformed sample");
            return Ok(true);
        }
        let pts = sample.start_time as i64 + i64::from(sample.rendering_offset);
        if let Some(tap) = &self.opts.encoded {
            // every unit at its own presentation time: with B-frames the decoder answers a
            // sample with another (earlier) picture, or with none yet
            let t = stream_time(&mut self.first_pts, self.timescale, pts);
            let at = self.opened_wall + t;
            tap.push(t, at, VideoCodec::H264, &self.annexb, self.dims);
        }
        match self.decoder.push(&self.annexb, pts, self.opened_wall) {
            Ok(Some(d)) => self.ready.push_back(d),
            Ok(None) => {}
            Err(e) => {
                self.counters.decode_errors += 1;
                tracing::warn!(file = %self.place, sample = id, error = %e, "decoder rejected a sample");
            }
        }
        Ok(true)
    }

    fn truncated(&mut self, id: u32, why: String) -> SourceError {
        self.finished = true;
        SourceError::Container {
            place: self.place.clone(),
            reason: format!(
                "sample {id} of {} cannot be read ({why}); the file is probably truncated",
                self.sample_count
            ),
        }
    }

    fn make_frame(&mut self, d: Decoded) -> Frame {
        let stream_time = stream_time(&mut self.first_pts, self.timescale, d.pts);
        let frame = Frame {
            seq: self.seq,
            capture_time: self.opened_wall + stream_time,
            clock: super::CaptureClock::FileStart,
            stream_time,
            discontinuity: false,
            width: d.width,
            height: d.height,
            rgb: d.rgb,
        };
        self.seq += 1;
        self.counters.frames += 1;
        frame
    }
}

impl FrameSource for Mp4Source {
    fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        if let Some(description) = self.description.take() {
            return Ok(Some(SourceItem::Status(StreamStatus::Connected {
                description,
            })));
        }
        loop {
            if self.opts.stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(None);
            }
            if let Some(d) = self.ready.pop_front() {
                let frame = self.make_frame(d);
                if self.opts.realtime
                    && !super::sleep_until(self.opened + frame.stream_time, &self.opts.stop)
                {
                    return Ok(None);
                }
                return Ok(Some(SourceItem::Frame(frame)));
            }
            if self.finished || !self.feed()? {
                return Ok(None);
            }
        }
    }

    fn describe(&self) -> String {
        self.place.clone()
    }

    fn counters(&self) -> SourceCounters {
        self.counters
    }
}

/// Media time of a picture since the first one, `first` being set by the first call: a field
/// borrow, so a caller can hold another field (the clip tap) meanwhile.
fn stream_time(first: &mut Option<i64>, timescale: u32, pts: i64) -> Duration {
    let first = *first.get_or_insert(pts);
    let ticks = u128::try_from(pts - first).unwrap_or(0);
    let nanos = ticks * 1_000_000_000 / u128::from(timescale);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(name: &str) -> std::path::PathBuf {
        crate::plate::fixtures::footage_video(name)
    }

    #[test]
    fn reads_the_colour_range_from_each_clip_sps() {
        // The High-profile clips are yuvj420p (full range); the baseline copy is limited range.
        for (name, full) in [
            ("vn_citycam_haiphong.mp4", Some(true)),
            ("vn_citycam_haiphong_cbp640_10fps.mp4", None),
        ] {
            let src = Mp4Source::open(&clip(name), &SourceOptions::default()).unwrap();
            let sps = src.units.parameter_sets[0].clone();
            assert_eq!(sps[0] & 0x1f, 7);
            let got = super::super::h264::sps_full_range(&sps);
            assert!(
                got == full || (full.is_none() && got == Some(false)),
                "{name}: {got:?}"
            );
        }
    }
}
