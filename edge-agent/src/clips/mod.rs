//! Event clips: each camera keeps its last seconds of encoded video as it came from the camera or
//! file (a bounded ring of H.264 or H.265 access units), and a rule event gets an MP4 cut from that ring by
//! remuxing — no decode, no encode, the stream's own timing — from the last keyframe before
//! `pre_s` to `post_s` after the event.
//!
//! The source pushes access units through an [`EncodedTap`]; the event sink asks for a clip when a
//! rule event is made and collects the finished clips later ([`EncodedTap::take_ready`]). Clips
//! hold unpixelated people, so by default they stay on the device ([`ClipStore`], bounded in
//! bytes and age) and only their hash and length travel in an `update` of the event.

pub mod config;
mod mp4;
#[cfg(test)]
pub(crate) mod probe;
mod recorder;
mod ring;
mod store;

pub use crate::source::{CodecDataError, LengthPrefixed, VideoCodec};
pub use config::{ClipMode, ClipsConfig};
pub use mp4::remux;
pub use recorder::{ClipCounts, ClipEvent, ClipRecorder, ClipStats};
pub use ring::{AccessUnit, ClipCut, EncodedTap, RingStats};
pub use store::ClipStore;

/// Why a clip could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("no keyframe with its parameter sets (SPS, PPS) in the {0} access units kept")]
    NoKeyframe(usize),
    #[error("the picture size {0}x{1} does not fit an MP4 track")]
    Size(u32, u32),
    #[error("writing the MP4: {0}")]
    Mux(String),
    #[error(
        "no room for a clip of {bytes} bytes in {dir}: the disk is down to the spool's reserve ([storage] min_free_mb)"
    )]
    NoRoom { dir: std::path::PathBuf, bytes: u64 },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
