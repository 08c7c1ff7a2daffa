//! `DIR/run.json`: what each step of a run read, wrote and took, and the fingerprints that let a
//! rerun skip it.
//!
//! A step is *fresh* when its record holds the same parameter hash, every input still has the
//! recorded fingerprint (size, modification time, and a hash of its first and last MiB), and
//! every output is still there with its recorded size. The file is rewritten through a temporary
//! name and a rename after each step, so a kill leaves either the old or the new record.

use std::hash::Hasher;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Bytes hashed at each end of a file.
const HASHED_END: u64 = 1 << 20;

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn fnv() -> Fnv {
    Fnv(0xcbf2_9ce4_8422_2325)
}

/// FNV-1a of `text`, as 16 hex digits.
pub fn hash_text(text: &str) -> String {
    let mut h = fnv();
    h.write(text.as_bytes());
    format!("{:016x}", h.finish())
}

/// Identity of an input file as a rerun sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    /// FNV-1a of its first and last MiB (the whole file when smaller), 16 hex digits.
    pub hash: String,
}

impl Fingerprint {
    /// Fingerprints `path`.
    pub fn of(path: &Path) -> Result<Fingerprint> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        let bytes = meta.len();
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut h = fnv();
        let mut buf = Vec::new();
        (&mut f)
            .take(HASHED_END)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        h.write(&buf);
        if bytes > HASHED_END {
            let tail = HASHED_END.min(bytes - HASHED_END);
            f.seek(SeekFrom::End(-(tail as i64)))
                .map_err(|e| Error::io(path, e))?;
            buf.clear();
            f.take(tail)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(path, e))?;
            h.write(&buf);
        }
        Ok(Fingerprint {
            path: path.to_path_buf(),
            bytes,
            mtime_ns,
            hash: format!("{:016x}", h.finish()),
        })
    }
}

/// One input of a step: its fingerprint and what the step read of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputRecord {
    /// The file when the step started.
    pub fingerprint: Fingerprint,
    /// Streaming passes over its matrix (X); 0 when only annotations or a small file were read.
    pub passes: u32,
    /// Rows streamed (all passes).
    pub cells: u64,
    /// Stored values streamed (all passes).
    pub values: u64,
}

/// One output of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The file or directory (Zarr store).
    pub path: PathBuf,
    /// Its size (a directory's: the sum of its files).
    pub bytes: u64,
}

impl OutputRecord {
    /// Records `path` as it is now.
    pub fn of(path: &Path) -> Result<OutputRecord> {
        Ok(OutputRecord {
            path: path.to_path_buf(),
            bytes: size_of(path)?,
        })
    }

    /// True when the output is still there with the recorded size.
    pub fn intact(&self) -> bool {
        size_of(&self.path).is_ok_and(|b| b == self.bytes)
    }
}

/// Size of a file, or the total of a directory's files.
fn size_of(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        total += size_of(&entry.path())?;
    }
    Ok(total)
}

/// A finished step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name (`stats:PLATE`, `select`, `merge`, `pca`, `neighbors`, `umap`, `plot`).
    pub name: String,
    /// The parameters that decide its outputs.
    pub params: Value,
    /// [`hash_text`] of `params`' JSON.
    pub params_hash: String,
    /// What it read.
    pub inputs: Vec<InputRecord>,
    /// What it wrote.
    pub outputs: Vec<OutputRecord>,
    /// Wall seconds.
    pub seconds: f64,
    /// Cells processed.
    pub cells: u64,
    /// Stored values processed.
    pub values: u64,
    /// cells / seconds.
    pub cells_per_s: f64,
    /// values / seconds.
    pub values_per_s: f64,
    /// What later steps need of its results (per-plate statistics, the selected genes, ...).
    pub result: Value,
    /// Times this step has run in this directory.
    pub runs: u32,
    /// Peak resident set size of the process while the step ran, in bytes (freed memory of
    /// earlier steps returned first; `None` where it could not be measured).
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
}

impl StepRecord {
    /// True when a rerun may skip the step: same parameters, unchanged inputs, outputs intact.
    pub fn fresh(&self, params_hash: &str) -> bool {
        self.params_hash == params_hash
            && self
                .inputs
                .iter()
                .all(|i| Fingerprint::of(&i.fingerprint.path).is_ok_and(|f| f == i.fingerprint))
            && self.outputs.iter().all(OutputRecord::intact)
    }
}

/// Which steps the latest invocation ran and which it skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLog {
    /// Steps run, in order.
    pub ran: Vec<String>,
    /// Steps skipped as fresh, in order.
    pub skipped: Vec<String>,
}

/// The whole of `run.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// scoop's version.
    pub scoop_version: String,
    /// Every parameter of the latest invocation.
    pub params: Value,
    /// The backend ([`crate::backend::Backend::name`]).
    pub backend: String,
    /// CUDA devices asked for.
    pub devices: Vec<usize>,
    /// Finished steps, in plan order.
    pub steps: Vec<StepRecord>,
    /// The latest invocation.
    pub last_run: RunLog,
}

impl RunState {
    /// Reads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<RunState> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunState::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        serde_json::from_str(&text).map_err(|e| {
            Error::format(
                path,
                "run.json",
                format!("{e}; remove it to start the run afresh"),
            )
        })
    }

    /// Writes `path` whole or not at all ([`crate::io::output::write_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("a run state serializes");
        text.push('\n');
        crate::io::output::write_file(path, text.as_bytes())
    }

    /// The record of step `name`.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Stores `record`, replacing the step's earlier one (its run count carries on).
    pub fn put(&mut self, mut record: StepRecord) {
        match self.steps.iter_mut().find(|s| s.name == record.name) {
            Some(old) => {
                record.runs = old.runs + 1;
                *old = record;
            }
            None => {
                record.runs = 1;
                self.steps.push(record);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_sees_changes_at_either_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = vec![7u8; 3 << 20];
        std::fs::write(&p, &data).unwrap();
        let a = Fingerprint::of(&p).unwrap();
        assert_eq!(a, Fingerprint::of(&p).unwrap());
        let last = data.len() - 1;
        data[last] = 8;
        std::fs::write(&p, &data).unwrap();
        let b = Fingerprint::of(&p).unwrap();
        assert_ne!(a.hash, b.hash);
        data[0] = 8;
        std::fs::write(&p, &data).unwrap();
        assert_ne!(b.hash, Fingerprint::of(&p).unwrap().hash);
    }

    #[test]
    fn state_round_trips_and_counts_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        let mut s = RunState::load(&path).unwrap();
        let rec = StepRecord {
            name: "pca".into(),
            params: serde_json::json!({"n_comps": 5}),
            params_hash: hash_text("x"),
            inputs: vec![],
            outputs: vec![],
            seconds: 1.0,
            cells: 1,
            values: 2,
            cells_per_s: 1.0,
            values_per_s: 2.0,
            result: Value::Null,
            runs: 0,
            peak_rss_bytes: Some(3 << 20),
        };
        s.put(rec.clone());
        s.put(rec);
        s.save(&path).unwrap();
        let back = RunState::load(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.step("pca").unwrap().runs, 2);
        assert!(back.step("pca").unwrap().fresh(&hash_text("x")));
        assert!(!back.step("pca").unwrap().fresh(&hash_text("y")));
    }
}
