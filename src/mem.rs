//! Process memory: returning freed heap pages to the system, and the peak resident set size of a
//! stretch of work.
//!
//! The `scoop` binary keeps freed chunk buffers in the heap between chunks (no trimming), which
//! makes memory freed by one step still count in the resident set of the next. A workflow that
//! runs several steps in one process calls [`release_free_memory`] between them, so each step
//! starts from what is still in use, and measures each step with a [`PeakRss`].
//!
//! Both work from `/proc` and glibc on Linux and degrade to nothing elsewhere: the release is a
//! no-op, and a peak is `None` where `/proc` cannot be read.

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

/// How often a [`PeakRss`] samples the resident set size.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// Measures the peak resident set size of the work done between [`PeakRss::start`] and
/// [`PeakRss::finish`] (the whole process's: every thread's memory counts).
///
/// The process's own peak (`VmHWM`) is never reset, so `/usr/bin/time`, schedulers and other
/// outside tools still see the whole run's peak. Where the process peak rose during the
/// stretch, that peak is the stretch's, exactly; otherwise the stretch's peak is the largest
/// resident size a background thread sampled every 20 ms (a peak shorter than that can be
/// missed).
#[derive(Debug)]
pub struct PeakRss {
    /// The process peak before the start.
    before: Option<u64>,
    /// Stops the sampler.
    stop: std::sync::mpsc::Sender<()>,
    /// The sampler: the largest resident size it saw.
    sampler: Option<std::thread::JoinHandle<Option<u64>>>,
}

impl PeakRss {
    /// Starts measuring.
    pub fn start() -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let sampler = std::thread::Builder::new()
            .name("scoop-rss".into())
            .spawn(move || {
                let mut max = current_rss();
                loop {
                    let done = !matches!(
                        stopped.recv_timeout(SAMPLE_EVERY),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    );
                    max = max.max(current_rss());
                    if done {
                        return max;
                    }
                }
            })
            .ok();
        PeakRss {
            before: peak_rss(),
            stop,
            sampler,
        }
    }

    /// The peak resident set size since [`Self::start`], in bytes; `None` where `/proc` cannot
    /// be read.
    pub fn finish(mut self) -> Option<u64> {
        let _ = self.stop.send(());
        let sampled = self.sampler.take().and_then(|h| h.join().ok()).flatten();
        let rose = match (self.before, peak_rss()) {
            (Some(before), Some(now)) if now > before => Some(now),
            _ => None,
        };
        rose.or(sampled)
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
        let during = current_rss().expect("VmRSS on linux");
        // Held past a few samples, so it is seen whether or not the process peak rises.
        std::thread::sleep(SAMPLE_EVERY * 5);
        let peak = m.finish();
        drop(v);
        release_free_memory();
        // Other tests' threads allocate and free too (the process's RSS before is no baseline):
        // every sample while `v` was held counts its pages, and the peak is at least what was
        // resident while it was held, less what other threads may have freed meanwhile.
        let peak = peak.expect("a peak on linux");
        assert!(
            peak >= size as u64,
            "peak {peak} below the {size} bytes held"
        );
        assert!(
            peak + (16 << 20) >= during,
            "peak {peak}, resident while held {during}, before {rss}"
        );
        assert!(peak_rss().expect("VmHWM on linux") >= 64 << 20);
    }

    /// Measuring a stretch leaves the process's own peak alone (what `/usr/bin/time` reports).
    #[cfg(target_os = "linux")]
    #[test]
    fn measuring_keeps_the_process_peak() {
        let v = vec![1u8; 48 << 20];
        std::hint::black_box(&v);
        drop(v);
        let before = peak_rss().expect("VmHWM on linux");
        let m = PeakRss::start();
        release_free_memory();
        let _ = m.finish();
        assert!(peak_rss().expect("VmHWM on linux") >= before);
    }
}
