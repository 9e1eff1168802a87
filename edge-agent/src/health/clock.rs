//! Whether the device clock is synchronised, as the kernel sees it: `adjtimex(2)` read-only
//! (`STA_UNSYNC` and the maximum error that NTP/chrony keep up to date), with `timedatectl show` as
//! the fallback where the call is not available. Evidence timestamps are only worth as much as this.

use crate::events::TimeSync;
pub use crate::events::status::ClockState;

/// Above this maximum error (µs) the clock is not trusted even if the kernel says synced: 1 s.
const MAX_TRUSTED_ERROR_US: i64 = 1_000_000;

impl ClockState {
    /// A one-line description for logs and `probe`.
    pub fn describe(&self) -> String {
        let sync = match self.sync {
            TimeSync::Synced => "synchronised",
            TimeSync::Unsynced => "NOT synchronised",
            TimeSync::Unknown => "unknown",
        };
        match self.max_error_us {
            Some(e) => format!(
                "{sync} (max error {:.3} s, via {})",
                e as f64 / 1e6,
                self.source
            ),
            None => format!("{sync} (via {})", self.source),
        }
    }
}

/// Reads the clock state now. Never fails: an unanswerable question is `Unknown`.
pub fn clock_state() -> ClockState {
    if let Some(s) = from_adjtimex() {
        return s;
    }
    if let Some(s) = from_timedatectl() {
        return s;
    }
    ClockState {
        sync: TimeSync::Unknown,
        max_error_us: None,
        est_error_us: None,
        source: "none".into(),
    }
}

/// Reads `adjtimex` with `modes = 0` (no change, no privilege needed).
fn from_adjtimex() -> Option<ClockState> {
    // SAFETY: an all-zero `timex` is a valid argument; with modes = 0 the kernel only fills it in.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed `timex` for the duration of the call.
    let rc = unsafe { libc::adjtimex(&mut tx) };
    if rc < 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "adjtimex unavailable");
        return None;
    }
    // `c_long` is i64 here but i32 on armv7.
    #[allow(clippy::useless_conversion)]
    Some(interpret_adjtimex(
        rc,
        tx.status,
        i64::from(tx.maxerror),
        i64::from(tx.esterror),
    ))
}

/// Turns adjtimex's answer into a state: `TIME_ERROR` or `STA_UNSYNC` or a maximum error over 1 s
/// means unsynchronised.
pub fn interpret_adjtimex(
    rc: i32,
    status: i32,
    max_error_us: i64,
    est_error_us: i64,
) -> ClockState {
    let unsync = rc == libc::TIME_ERROR
        || status & libc::STA_UNSYNC != 0
        || max_error_us >= MAX_TRUSTED_ERROR_US;
    ClockState {
        sync: if unsync {
            TimeSync::Unsynced
        } else {
            TimeSync::Synced
        },
        max_error_us: Some(max_error_us),
        est_error_us: Some(est_error_us),
        source: "adjtimex".into(),
    }
}

fn from_timedatectl() -> Option<ClockState> {
    let out = std::process::Command::new("timedatectl")
        .args(["show", "--property=NTPSynchronized", "--value"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let sync = match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => TimeSync::Synced,
        "no" => TimeSync::Unsynced,
        _ => return None,
    };
    Some(ClockState {
        sync,
        max_error_us: None,
        est_error_us: None,
        source: "timedatectl".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_flags_are_interpreted() {
        assert_eq!(interpret_adjtimex(0, 0, 12_000, 500).sync, TimeSync::Synced);
        assert_eq!(
            interpret_adjtimex(0, libc::STA_UNSYNC, 12_000, 500).sync,
            TimeSync::Unsynced
        );
        assert_eq!(
            interpret_adjtimex(libc::TIME_ERROR, 0, 12_000, 500).sync,
            TimeSync::Unsynced
        );
        assert_eq!(
            interpret_adjtimex(0, 0, 16_000_000, 500).sync,
            TimeSync::Unsynced
        );
    }

    #[test]
    fn this_machine_answers() {
        // adjtimex is available on every Linux kernel; the answer itself depends on the host.
        let s = clock_state();
        assert_eq!(s.source, "adjtimex", "{s:?}");
        assert!(s.max_error_us.is_some());
        assert!(!s.describe().is_empty());
    }
}
