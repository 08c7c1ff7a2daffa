//! Process memory: returning freed heap pages to the system, and the peak resident set size of a
//! stretch of work.
//!
//! The `scoop` binary keeps freed chunk buffers in the heap between chunks (no trimming), which
//! makes memory freed by one step still count in the resident set of the next. A workflow that
//! runs several steps in one process calls [`release_free_memory`] between them, so each step
//! starts from what is still in use, and measures each step with a [`PeakRss`].
//!
//! Both work from `/proc` and glibc on Linux and degrade to nothing elsewhere: the release is a
//! no-op, and a peak is `None` when it cannot be attributed to the stretch measured.

/// Returns the heap's free pages to the system (glibc's `malloc_trim(0)`, which also releases
/// free pages inside every arena); a no-op where the C library is not glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only gives free memory back to the OS; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's peak resident set size so far (`VmHWM` of `/proc/self/status`), in bytes;
/// `None` where it cannot be read.
pub fn peak_rss() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// The process's current resident set size (`VmRSS`), in bytes; `None` where it cannot be read.
pub fn current_rss() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Reads one `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&text, field)
}

/// The value of field `field` (including its colon) of a `/proc/PID/status` text, in KiB.
fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
}

/// Resets the kernel's peak resident set size to the current one (writing `5` to
/// `/proc/self/clear_refs`, Linux 4.0 and later); false where that is not allowed.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Measures the peak resident set size of the work done between [`PeakRss::start`] and
/// [`PeakRss::finish`] (the whole process's: every thread's memory counts).
#[derive(Clone, Copy, Debug)]
pub struct PeakRss {
    /// The kernel's peak was reset at the start.
    reset: bool,
    /// The peak before the start (when it could not be reset).
    before: Option<u64>,
}

impl PeakRss {
    /// Starts measuring: resets the kernel's peak where allowed, else notes the peak so far.
    pub fn start() -> Self {
        let reset = reset_peak_rss();
        PeakRss {
            reset,
            before: if reset { None } else { peak_rss() },
        }
    }

    /// The peak resident set size since [`Self::start`], in bytes. Where the kernel's peak could
    /// not be reset, only a peak above the one before the start is known to belong to this
    /// stretch; otherwise (or where `/proc` is unreadable) `None`.
    pub fn finish(&self) -> Option<u64> {
        let now = peak_rss()?;
        if self.reset {
            return Some(now);
        }
        match self.before {
            Some(before) if now > before => Some(now),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let text = "Name:\tscoop\nVmPeak:\t 1747512 kB\nVmHWM:\t 1448448 kB\nVmRSS:\t  307252 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM:"), Some(1_448_448));
        assert_eq!(parse_status_kib(text, "VmRSS:"), Some(307_252));
        assert_eq!(parse_status_kib(text, "VmSwap:"), None);
        assert_eq!(parse_status_kib("VmHWM:\tlots kB\n", "VmHWM:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peak_covers_memory_touched_while_measuring() {
        let rss = current_rss().expect("VmRSS on linux");
        let m = PeakRss::start();
        let size = 64 << 20;
        let mut v = vec![0u8; size];
        // Touch every page so it is resident.
        for i in (0..size).step_by(4096) {
            v[i] = 1;
        }
        std::hint::black_box(&v);
        let peak = m.finish();
        drop(v);
        release_free_memory();
        // Other tests' threads allocate too, so only a lower bound holds.
        if let Some(peak) = peak {
            assert!(
                peak >= rss + (size as u64) / 2,
                "peak {peak}, rss before {rss}"
            );
        }
        assert!(peak_rss().expect("VmHWM on linux") >= 64 << 20);
    }
}
