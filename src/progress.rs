//! Progress bars with cells/s for long steps; silent with `-q` or when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress counter in cells.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `total` cells labelled `label`; hidden when `quiet`.
    pub fn new(label: &str, total: u64, quiet: bool) -> Self {
        let bar = if quiet {
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
        Progress { bar }
    }

    /// Counts `n` more cells.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Finishes and clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
