//! Why a video source could not be opened or read. Every message names the place (file path or
//! redacted URL) and says what to do, because installers read these in the camera health report.

use std::path::PathBuf;

/// A source failure. Live sources (RTSP, V4L2) report connection trouble as
/// [`StreamStatus`](super::StreamStatus) items and keep retrying; these errors are for things
/// retrying cannot fix (bad URL, missing or corrupt file, feature not built).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "{place}: unsupported source; expected rtsp://host/path, v4l2:///dev/videoN, a folder of .jpg/.png images or an .mp4/.mov file"
    )]
    Unsupported { place: String },
    #[error("{place}: {reason}")]
    BadUrl { place: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{place}: not a readable video: {reason}")]
    Container { place: String, reason: String },
    #[error("{place}: cannot decode: {reason}")]
    Decode { place: String, reason: String },
    #[error(
        "{place}: {what} support is not built in; rebuild with `cargo build --features {feature}`"
    )]
    FeatureMissing {
        place: String,
        what: &'static str,
        feature: &'static str,
    },
    #[error("{place}: the GStreamer element `{element}` is not installed; {hint}")]
    MissingElement {
        place: String,
        element: String,
        hint: String,
    },
    #[error("{place}: the capture thread stopped unexpectedly: {reason}")]
    Worker { place: String, reason: String },
}
