//! Writing result lines to stdout, ending quietly when the reader has gone (`| head`).

use std::io::Write;

/// Marks a broken stdout pipe so `main` can exit quietly instead of reporting an error.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed")]
pub struct StdoutClosed;

/// Prints one line; a closed pipe becomes [`StdoutClosed`].
pub fn line(text: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(e.into()),
    }
}
