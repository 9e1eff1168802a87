//! A folder of still images as a source: exported snapshots and extracted frames replay through
//! the same pipeline as a camera, at a fixed frame rate since images carry no timing.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::{
    Frame, FrameSource, SourceCounters, SourceError, SourceItem, SourceOptions, StreamStatus,
};
use crate::imageio;

/// Sorted `*.jpg`/`*.jpeg`/`*.png` files of one folder (not recursive).
pub(crate) struct FolderSource {
    place: String,
    files: Vec<PathBuf>,
    next: usize,
    interval: Duration,
    seq: u64,
    opened: Instant,
    opened_wall: SystemTime,
    opts: SourceOptions,
    counters: SourceCounters,
    announced: bool,
}

impl FolderSource {
    pub(super) fn open(dir: &Path, opts: &SourceOptions) -> Result<Self, SourceError> {
        let io = |source| SourceError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if path.is_file() && matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png")) {
                files.push(path);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(SourceError::Container {
                place: dir.display().to_string(),
                reason: "the folder has no .jpg or .png images".into(),
            });
        }
        if !(opts.folder_fps.is_finite() && opts.folder_fps > 0.0) {
            return Err(SourceError::BadUrl {
                place: dir.display().to_string(),
                reason: format!(
                    "folder frame rate must be positive, got {}",
                    opts.folder_fps
                ),
            });
        }
        Ok(Self {
            place: dir.display().to_string(),
            files,
            next: 0,
            interval: Duration::from_secs_f64(1.0 / opts.folder_fps),
            seq: 0,
            opened: Instant::now(),
            opened_wall: SystemTime::now(),
            opts: opts.clone(),
            counters: SourceCounters::default(),
            announced: false,
        })
    }
}

impl FrameSource for FolderSource {
    /// A file that cannot be decoded is an error naming it; calling again goes on with the next.
    fn next_item(&mut self) -> Result<Option<SourceItem>, SourceError> {
        if !self.announced {
            self.announced = true;
            let description = format!("{} images from {}", self.files.len(), self.place);
            return Ok(Some(SourceItem::Status(StreamStatus::Connected {
                description,
            })));
        }
        if self.opts.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let Some(path) = self.files.get(self.next).cloned() else {
            return Ok(None);
        };
        self.next += 1;
        let img = imageio::read_rgb(&path).map_err(|e| {
            self.counters.decode_errors += 1;
            SourceError::Decode {
                place: path.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        let stream_time = self.interval * u32::try_from(self.seq).unwrap_or(u32::MAX);
        if self.opts.realtime && !super::sleep_until(self.opened + stream_time, &self.opts.stop) {
            return Ok(None);
        }
        let (width, height) = img.dimensions();
        let frame = Frame {
            seq: self.seq,
            capture_time: self.opened_wall + stream_time,
            clock: super::CaptureClock::FileStart,
            stream_time,
            discontinuity: false,
            width,
            height,
            rgb: img.into_raw(),
        };
        self.seq += 1;
        self.counters.frames += 1;
        Ok(Some(SourceItem::Frame(frame)))
    }

    fn describe(&self) -> String {
        self.place.clone()
    }

    fn counters(&self) -> SourceCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32, v: u8) {
        image::RgbImage::from_pixel(w, h, image::Rgb([v, v, v]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn plays_sorted_images_at_the_configured_rate_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("b_002.png"), 4, 2, 20);
        write_png(&dir.path().join("a_001.png"), 4, 2, 10);
        std::fs::write(dir.path().join("c_003.jpg"), b"not a jpeg").unwrap();
        std::fs::write(dir.path().join("readme.txt"), b"ignored").unwrap();
        let opts = SourceOptions {
            folder_fps: 4.0,
            ..SourceOptions::default()
        };
        let mut src = FolderSource::open(dir.path(), &opts).unwrap();
        let Some(SourceItem::Status(StreamStatus::Connected { description })) =
            src.next_item().unwrap()
        else {
            panic!("expected Connected first");
        };
        assert!(description.starts_with("3 images"), "{description}");
        let mut frames = Vec::new();
        for _ in 0..2 {
            match src.next_item().unwrap() {
                Some(SourceItem::Frame(f)) => frames.push(f),
                other => panic!("expected a frame, got {other:?}"),
            }
        }
        assert_eq!(frames[0].rgb[0], 10, "a_001 first");
        assert_eq!(frames[1].rgb[0], 20);
        assert_eq!(
            (frames[1].seq, frames[1].width, frames[1].height),
            (1, 4, 2)
        );
        assert_eq!(frames[1].stream_time, Duration::from_millis(250));
        let err = src.next_item().unwrap_err().to_string();
        assert!(err.contains("c_003.jpg"), "{err}");
        assert!(src.next_item().unwrap().is_none());
        assert_eq!(src.counters().frames, 2);
        assert_eq!(src.counters().decode_errors, 1);
    }

    #[test]
    fn an_empty_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = FolderSource::open(dir.path(), &SourceOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no .jpg or .png"), "{err}");
    }
}
