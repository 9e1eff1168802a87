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

/// Runs `each` on every input path; a failure is reported with the path and the loop goes on, a
/// closed stdout ends it. Exits non-zero when any input failed.
pub fn for_each_input(
    paths: &[std::path::PathBuf],
    mut each: impl FnMut(&std::path::PathBuf) -> anyhow::Result<()>,
) -> anyhow::Result<std::process::ExitCode> {
    for_each_group(paths, 1, |group| group.iter().map(&mut each).collect())
}

/// [`for_each_input`] for inputs handled `n` at a time: `each` returns one result per path of its
/// group, in order.
pub fn for_each_group(
    paths: &[std::path::PathBuf],
    n: usize,
    mut each: impl FnMut(&[std::path::PathBuf]) -> Vec<anyhow::Result<()>>,
) -> anyhow::Result<std::process::ExitCode> {
    let mut failed = 0;
    for group in paths.chunks(n.max(1)) {
        for (path, result) in group.iter().zip(each(group)) {
            if let Err(e) = result {
                if e.is::<StdoutClosed>() {
                    return Err(e);
                }
                failed += 1;
                eprintln!("error: {}: {e:#}", path.display());
            }
        }
    }
    Ok(if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
