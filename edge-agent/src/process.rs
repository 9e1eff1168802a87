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
