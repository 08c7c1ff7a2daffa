//! Progress of long steps: one bar per pass with cells/s and ETA, silent with `-q` or when stderr
//! is not a terminal; with JSON events ([`crate::events`]) no bar but a `progress` event at most
//! every [`TICK_SECONDS`] (and on the first cells of the pass).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Seconds between two JSON progress events of one pass.
pub const TICK_SECONDS: f64 = 2.0;

/// The JSON side of a counter.
struct Ticks {
    label: String,
    total: u64,
    started: Instant,
    done: AtomicU64,
    /// Milliseconds after `started` of the last event, plus one (0: none yet).
    last_ms: AtomicU64,
}

/// A progress counter in cells.
pub struct Progress {
    bar: ProgressBar,
    ticks: Option<Ticks>,
}

impl Progress {
    /// A bar for `total` cells labelled `label`; hidden when `quiet` (no JSON ticks either).
    pub fn new(label: &str, total: u64, quiet: bool) -> Self {
        let json = crate::events::json();
        let bar = if quiet || json {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{bar:30}] {human_pos}/{human_len} cells  {per_sec:>14}  eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let ticks = (json && !quiet).then(|| Ticks {
            label: label.to_string(),
            total,
            started: Instant::now(),
            done: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        });
        Progress { bar, ticks }
    }

    /// Counts `n` more cells.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(t) = &self.ticks {
            let done = t.done.fetch_add(n, Ordering::Relaxed) + n;
            let elapsed = t.started.elapsed().as_secs_f64();
            let now_ms = (elapsed * 1000.0) as u64 + 1;
            let last = t.last_ms.load(Ordering::Relaxed);
            let due = last == 0 || (now_ms - last.min(now_ms)) as f64 >= TICK_SECONDS * 1000.0;
            // One thread wins the tick.
            if due
                && t.last_ms
                    .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let rate = done as f64 / elapsed.max(1e-9);
                let eta = t.total.saturating_sub(done) as f64 / rate.max(1e-9);
                crate::events::emit(
                    "progress",
                    json!({
                        "pass": t.label,
                        "cells": done,
                        "total": t.total,
                        "cells_per_s": rate.round(),
                        "eta_s": (eta * 10.0).round() / 10.0,
                    }),
                );
            }
        }
    }

    /// Finishes and clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
