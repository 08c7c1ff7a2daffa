//! The step runner of `scoop run`: runs a step or skips it against `run.json`, records what it
//! did, and the report printed at the end.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

use super::state::{hash_text, Fingerprint, InputRecord, OutputRecord, RunState, StepRecord};
use crate::error::Result;
use crate::mem::PeakRss;

/// What one step did in this invocation.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// Step name.
    pub name: String,
    /// False when it was skipped as fresh (its figures are then the recorded run's).
    pub ran: bool,
    /// Wall seconds.
    pub seconds: f64,
    /// Cells per second.
    pub cells_per_s: f64,
    /// Stored values per second.
    pub values_per_s: f64,
    /// Peak resident set size while it ran, in bytes, where measured.
    pub peak_rss_bytes: Option<u64>,
    /// What it wrote.
    pub outputs: Vec<PathBuf>,
}

/// What `run` did.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// `DIR/run.json`.
    pub run_json: PathBuf,
    /// Wall seconds of this invocation.
    pub seconds: f64,
    /// The backend.
    pub backend: String,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max(4);
        writeln!(
            f,
            "{:<w$} {:>7} {:>9} {:>12} {:>14} {:>9}  outputs",
            "step", "status", "seconds", "cells/s", "values/s", "peak MiB"
        )?;
        for s in &self.steps {
            let outputs: Vec<String> = s.outputs.iter().map(|p| p.display().to_string()).collect();
            let peak = s
                .peak_rss_bytes
                .map_or_else(|| "-".into(), |b| format!("{:.0}", b as f64 / 1048576.0));
            writeln!(
                f,
                "{:<w$} {:>7} {:>9.2} {:>12.0} {:>14.0} {:>9}  {}",
                s.name,
                if s.ran { "ran" } else { "skipped" },
                s.seconds,
                s.cells_per_s,
                s.values_per_s,
                peak,
                outputs.join(", ")
            )?;
        }
        let ran = self.steps.iter().filter(|s| s.ran).count();
        write!(
            f,
            "{ran} of {} steps run in {:.2} s on {}; record: {}",
            self.steps.len(),
            self.seconds,
            self.backend,
            self.run_json.display()
        )
    }
}

/// What a step's body reports: per input (in the order given to [`Runner::step`]) the streaming
/// passes, rows and stored values read; the outputs; the cells and values processed; results
/// later steps need.
pub(crate) struct Outcome {
    pub(crate) reads: Vec<(u32, u64, u64)>,
    pub(crate) outputs: Vec<PathBuf>,
    pub(crate) cells: u64,
    pub(crate) values: u64,
    pub(crate) result: Value,
}

/// Runs or skips steps against the recorded state.
pub(crate) struct Runner {
    pub(crate) state: RunState,
    pub(crate) state_path: PathBuf,
    /// A step of the chain ran in this invocation: the later ones run too.
    pub(crate) dirty: bool,
    pub(crate) reports: Vec<StepReport>,
}

impl Runner {
    /// Runs step `name` unless its record is fresh (and, for a chained step, nothing before it
    /// ran); returns the step's result either way.
    pub(crate) fn step(
        &mut self,
        name: &str,
        params: Value,
        inputs: &[PathBuf],
        chained: bool,
        body: impl FnOnce() -> Result<Outcome>,
    ) -> Result<Value> {
        let params_hash = hash_text(&params.to_string());
        if let Some(rec) = self.state.step(name) {
            if !(chained && self.dirty) && rec.fresh(&params_hash) {
                self.reports.push(StepReport {
                    name: name.into(),
                    ran: false,
                    seconds: rec.seconds,
                    cells_per_s: rec.cells_per_s,
                    values_per_s: rec.values_per_s,
                    peak_rss_bytes: rec.peak_rss_bytes,
                    outputs: rec.outputs.iter().map(|o| o.path.clone()).collect(),
                });
                crate::events::emit(
                    "step_skipped",
                    json!({
                        "step": name,
                        "reason": "fresh",
                        "recorded_seconds": rec.seconds,
                        "outputs": rec.outputs.iter().map(|o| &o.path).collect::<Vec<_>>(),
                    }),
                );
                let result = rec.result.clone();
                self.state.last_run.skipped.push(name.into());
                return Ok(result);
            }
        }
        self.dirty = true;
        let fingerprints = inputs
            .iter()
            .map(|p| Fingerprint::of(p))
            .collect::<Result<Vec<_>>>()?;
        // Memory earlier steps freed goes back to the system first, so the step's peak is its own.
        crate::mem::release_free_memory();
        crate::events::emit("step_start", json!({ "step": name }));
        let peak = PeakRss::start();
        let t = Instant::now();
        let out = body()?;
        let seconds = t.elapsed().as_secs_f64();
        let peak_rss_bytes = peak.finish();
        let rate = |n: u64| n as f64 / seconds.max(1e-9);
        let record = StepRecord {
            name: name.into(),
            params,
            params_hash,
            inputs: fingerprints
                .into_iter()
                .zip(out.reads.iter().chain(std::iter::repeat(&(0, 0, 0))))
                .map(|(fingerprint, &(passes, cells, values))| InputRecord {
                    fingerprint,
                    passes,
                    cells,
                    values,
                })
                .collect(),
            outputs: out
                .outputs
                .iter()
                .map(|p| OutputRecord::of(p))
                .collect::<Result<_>>()?,
            seconds,
            cells: out.cells,
            values: out.values,
            cells_per_s: rate(out.cells),
            values_per_s: rate(out.values),
            result: out.result.clone(),
            runs: 0,
            peak_rss_bytes,
        };
        let bytes_read: u64 = record
            .inputs
            .iter()
            .map(|i| i.fingerprint.bytes * u64::from(i.passes))
            .sum();
        let bytes_written: u64 = record.outputs.iter().map(|o| o.bytes).sum();
        crate::events::emit(
            "step_finish",
            json!({
                "step": name,
                "seconds": seconds,
                "cells": record.cells,
                "values": record.values,
                "bytes_read": bytes_read,
                "bytes_written": bytes_written,
                "cells_per_s": record.cells_per_s.round(),
                "values_per_s": record.values_per_s.round(),
                "peak_rss_bytes": peak_rss_bytes,
                "outputs": &out.outputs,
            }),
        );
        self.reports.push(StepReport {
            name: name.into(),
            ran: true,
            seconds,
            cells_per_s: record.cells_per_s,
            values_per_s: record.values_per_s,
            peak_rss_bytes,
            outputs: out.outputs,
        });
        self.state.put(record);
        self.state.last_run.ran.push(name.into());
        self.state.save(&self.state_path)?;
        Ok(out.result)
    }
}
