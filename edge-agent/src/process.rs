//! What the agent's own process uses: resident memory, threads, open descriptors. Read from
//! `/proc/self` (Linux); `None` elsewhere. `/metrics`, the `health` message and the soak sample it.

/// The process's footprint now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    /// Resident set size (`VmRSS`), bytes.
    pub resident_bytes: u64,
    /// Peak resident set size since start (`VmHWM`), bytes.
    pub peak_resident_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
}

/// Keeps glibc's allocator from holding freed memory (no-op on other C libraries).
///
/// The broker's ~140 KB evidence buffers are freed on other threads than the ones that made them;
/// glibc then raises its adaptive mmap threshold and serves such buffers from per-thread arenas
/// that fragment. A fixed 128 KiB mmap threshold returns every large buffer when it is freed, and
/// at most two arenas keep small allocations from spreading over one arena per thread. Measured in
/// the 2-hour soak with a live subscriber (docs/performance.md): RSS 105 MB at 10 min where it was
/// 174 MB. (The ~22 MB/h rise with a subscriber was the embedded broker's log pinning read
/// buffers, bounded since: `publish::embedded`.) `MALLOC_ARENA_MAX` or
/// `MALLOC_MMAP_THRESHOLD_` in the environment win, for anyone who measures otherwise.
pub fn bound_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;
        const ARENAS: libc::c_int = 2;
        // SAFETY: mallopt only changes allocator parameters; called before other threads start.
        unsafe {
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
            }
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            }
        }
    }
}

/// Reads `/proc/self/status` and counts `/proc/self/fd`.
pub fn stats() -> Option<ProcessStats> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(ProcessStats {
        resident_bytes: field("VmRSS:")? * 1024,
        peak_resident_bytes: field("VmHWM:")? * 1024,
        threads: field("Threads:")?,
        open_fds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footprint_counts_what_the_process_holds() {
        let before = stats().expect("Linux /proc");
        // other tests run in parallel threads: hold much more than they could release meanwhile
        let files: Vec<std::fs::File> = (0..64)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        // a non-zero fill writes every page, so it is resident, not just reserved
        let held = vec![1u8; 96 << 20];
        let after = stats().unwrap();
        assert!(
            after.open_fds >= before.open_fds + 32,
            "{before:?} {after:?}"
        );
        assert!(after.resident_bytes >= 96 << 20, "{after:?}");
        assert!(after.peak_resident_bytes >= after.resident_bytes);
        assert!(after.threads >= 1);
        drop((files, held));
    }
}
