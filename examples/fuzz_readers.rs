//! A seeded mutation fuzzer for scoop's h5ad readers (see docs/fuzzing.md).
//!
//! ```text
//! fuzz_readers run --seeds DIR --out DIR --seconds N [--rng-seed S] [--jobs J]
//! fuzz_readers one FILE
//! ```
//!
//! `run` takes the small valid `.h5ad` files in `--seeds` (tests/python/fuzz_seeds.py and
//! `scoop simulate` make them), and until `--seconds` have passed writes mutants of them (bit
//! flips, byte and integer overwrites, splices, block copies, truncations; 1 to 4 per mutant, at
//! offsets in the seeds' non-zero pages, where HDF5's metadata lives) and runs `one` on each in
//! a child process, so that a crash inside HDF5's C library is observed and not suffered.
//! Outcomes: `ok` (read in full), `error` (exit 1, one line), `panic` (exit 101 or "panicked"
//! on stderr), `signal` (killed by a signal: a crash or an abort), `hang` (no exit within the
//! time limit), `other`. Each panic, signal, hang and other input is kept under `--out/found/`
//! (at most three per distinct signature) with its stderr; the totals are printed at the end.
//!
//! `one` runs the reader entry points on FILE (tests/support/read_all.rs) under a 4 GiB address
//! space limit, and exits 0, or 1 with the error on one line.

#[path = "../tests/support/read_all.rs"]
mod read_all;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long one child may run.
const CHILD_LIMIT: Duration = Duration::from_secs(4);
/// Address space of a child: an allocation sized from corrupt contents fails instead of swapping.
const CHILD_MEMORY: u64 = 4 << 30;
/// Inputs kept per signature.
const KEEP_PER_SIGNATURE: usize = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("one") if args.len() == 2 => one(Path::new(&args[1])),
        Some("run") => match Config::parse(&args[1..]) {
            Ok(c) => run(c),
            Err(e) => {
                eprintln!("fuzz_readers: {e}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!(
                "usage: fuzz_readers run --seeds DIR --out DIR --seconds N [--rng-seed S] \
                 [--jobs J]\n       fuzz_readers one FILE"
            );
            ExitCode::from(2)
        }
    }
}

fn one(path: &Path) -> ExitCode {
    let limit = libc::rlimit {
        rlim_cur: CHILD_MEMORY,
        rlim_max: CHILD_MEMORY,
    };
    // SAFETY: setrlimit only changes this process's limits.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &limit);
    }
    match read_all::read_all(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

struct Config {
    seeds: PathBuf,
    out: PathBuf,
    seconds: u64,
    rng_seed: u64,
    jobs: usize,
}

impl Config {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut c = Config {
            seeds: PathBuf::new(),
            out: PathBuf::new(),
            seconds: 600,
            rng_seed: 1,
            jobs: 2,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                "--seeds" => c.seeds = value.into(),
                "--out" => c.out = value.into(),
                "--seconds" => c.seconds = number()?,
                "--rng-seed" => c.rng_seed = number()?,
                "--jobs" => c.jobs = number()?.max(1) as usize,
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if c.seeds.as_os_str().is_empty() || c.out.as_os_str().is_empty() {
            return Err("--seeds and --out are required".into());
        }
        Ok(c)
    }
}

/// A seed file and the 256-byte pages of it holding a non-zero byte.
struct Seed {
    name: String,
    bytes: Vec<u8>,
    pages: Vec<usize>,
}

const PAGE: usize = 256;

fn load_seeds(dir: &Path) -> std::io::Result<Vec<Seed>> {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "h5ad") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p)?;
            let pages = (0..bytes.len().div_ceil(PAGE))
                .filter(|&k| {
                    bytes[k * PAGE..((k + 1) * PAGE).min(bytes.len())]
                        .iter()
                        .any(|&b| b != 0)
                })
                .collect();
            Ok(Seed {
                name: p.file_stem().unwrap_or_default().to_string_lossy().into(),
                bytes,
                pages,
            })
        })
        .collect()
}

/// An offset in one of `seed`'s non-zero pages.
fn offset(rng: &mut StdRng, seed: &Seed, len: usize) -> usize {
    let page = seed.pages[rng.random_range(0..seed.pages.len())];
    (page * PAGE + rng.random_range(0..PAGE)).min(len.saturating_sub(1))
}

/// Applies one random mutation to `bytes` (a copy of `seed`), naming it.
fn mutate(rng: &mut StdRng, seed: &Seed, seeds: &[Seed], bytes: &mut Vec<u8>) -> String {
    const INTERESTING: [u64; 10] = [
        0,
        1,
        2,
        0x7f,
        0xff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        u64::MAX,
        1 << 40,
    ];
    if bytes.is_empty() {
        return "empty".into();
    }
    let at = offset(rng, seed, bytes.len());
    match rng.random_range(0..100) {
        0..=29 => {
            let bit = rng.random_range(0..8);
            bytes[at] ^= 1 << bit;
            format!("flip {at}:{bit}")
        }
        30..=49 => {
            let n = rng.random_range(1..=8).min(bytes.len() - at);
            rng.fill(&mut bytes[at..at + n]);
            format!("random {at}+{n}")
        }
        50..=69 => {
            let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
            let width = [1, 2, 4, 8][rng.random_range(0..4)];
            let n = width.min(bytes.len() - at);
            bytes[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
            format!("int {at}={v:#x}/{width}")
        }
        70..=84 => {
            let other = &seeds[rng.random_range(0..seeds.len())];
            let from = offset(rng, other, other.bytes.len());
            let n = rng
                .random_range(1..=256)
                .min(other.bytes.len() - from)
                .min(bytes.len() - at);
            bytes[at..at + n].copy_from_slice(&other.bytes[from..from + n]);
            format!("splice {}@{from}+{n}->{at}", other.name)
        }
        85..=94 => {
            let from = offset(rng, seed, bytes.len());
            let n = rng
                .random_range(1..=64)
                .min(bytes.len() - from)
                .min(bytes.len() - at);
            bytes.copy_within(from..from + n, at);
            format!("copy {from}+{n}->{at}")
        }
        _ => {
            bytes.truncate(at);
            format!("truncate {at}")
        }
    }
}

/// What a child did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Error,
    Panic,
    Signal,
    Hang,
    Other,
}

/// Runs `one` on `file` in a child; returns the outcome and a signature (the panic's location,
/// the signal, the stderr's last line).
fn child(exe: &Path, file: &Path) -> (Outcome, String, String) {
    let mut c = match Command::new(exe)
        .arg("one")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (Outcome::Other, format!("spawn: {e}"), String::new()),
    };
    let mut stderr = c.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(e, &mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = Instant::now();
    let status = loop {
        match c.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > CHILD_LIMIT => {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let err = reader.join().unwrap_or_default();
    // A panic's signature: where it happened, and the first frame in scoop when there is one.
    let panic_at = err.lines().find(|l| l.contains("panicked at")).map(|l| {
        let frame = err.lines().find(|l| l.contains("scoop::")).unwrap_or("");
        format!(
            "{} {}",
            &l[l.find("panicked at").unwrap_or(0)..],
            frame.trim()
        )
    });
    let last = err.lines().last().unwrap_or("").to_string();
    use std::os::unix::process::ExitStatusExt;
    let (outcome, sig) = match (status, panic_at) {
        (_, Some(p)) => (Outcome::Panic, p),
        (None, None) => (Outcome::Hang, "hang".into()),
        (Some(s), None) => match (s.code(), s.signal()) {
            (Some(0), _) => (Outcome::Ok, String::new()),
            (Some(1), _) if err.lines().count() == 1 => (Outcome::Error, String::new()),
            (Some(101), _) => (Outcome::Panic, last.clone()),
            (None, Some(sig)) => (Outcome::Signal, format!("signal {sig}: {last}")),
            (code, _) => (
                Outcome::Other,
                format!(
                    "exit {code:?}, {} stderr lines: {last}",
                    err.lines().count()
                ),
            ),
        },
    };
    (outcome, sig, err)
}

#[derive(Default)]
struct Tally {
    executions: u64,
    by_outcome: BTreeMap<Outcome, u64>,
    /// Signature -> (count, inputs kept).
    found: BTreeMap<String, (u64, usize)>,
}

fn run(c: Config) -> ExitCode {
    let seeds = match load_seeds(&c.seeds) {
        Ok(s) if !s.is_empty() => Arc::new(s),
        Ok(_) => {
            eprintln!("fuzz_readers: no .h5ad seeds in {}", c.seeds.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("fuzz_readers: {}: {e}", c.seeds.display());
            return ExitCode::from(2);
        }
    };
    let exe = std::env::current_exe().expect("own path");
    let (work, found) = (c.out.join("work"), c.out.join("found"));
    for d in [&work, &found] {
        std::fs::create_dir_all(d).expect("create --out");
    }
    // Each seed must read cleanly, or its mutants say nothing.
    for s in seeds.iter() {
        let p = work.join(format!("check-{}.h5ad", s.name));
        std::fs::write(&p, &s.bytes).expect("write seed copy");
        let (o, sig, _) = child(&exe, &p);
        if o != Outcome::Ok {
            eprintln!("fuzz_readers: seed {} does not read: {o:?} {sig}", s.name);
            return ExitCode::from(2);
        }
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(c.seconds);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for job in 0..c.jobs {
            let (seeds, tally, exe, work, found) = (&seeds, &tally, &exe, &work, &found);
            let mut rng = StdRng::seed_from_u64(c.rng_seed.wrapping_mul(1000) + job as u64);
            scope.spawn(move || {
                let file = work.join(format!("mutant-{job}.h5ad"));
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let seed = &seeds[rng.random_range(0..seeds.len())];
                    let mut bytes = seed.bytes.clone();
                    let n = rng.random_range(1..=4);
                    let ops: Vec<String> = (0..n)
                        .map(|_| mutate(&mut rng, seed, seeds, &mut bytes))
                        .collect();
                    if std::fs::write(&file, &bytes).is_err() {
                        continue;
                    }
                    let (outcome, sig, err) = child(exe, &file);
                    let mut t = tally.lock().expect("tally");
                    t.executions += 1;
                    *t.by_outcome.entry(outcome).or_default() += 1;
                    if matches!(outcome, Outcome::Ok | Outcome::Error) {
                        continue;
                    }
                    let entry = t.found.entry(sig.clone()).or_default();
                    entry.0 += 1;
                    if entry.1 < KEEP_PER_SIGNATURE {
                        entry.1 += 1;
                        let name = format!("{outcome:?}-{job}-{i}-{}", seed.name).to_lowercase();
                        let _ = std::fs::write(found.join(format!("{name}.h5ad")), &bytes);
                        let _ = std::fs::write(
                            found.join(format!("{name}.txt")),
                            format!("seed {}\nmutations {ops:?}\n{sig}\n\n{err}", seed.name),
                        );
                        eprintln!("{outcome:?}: {sig} ({name})");
                    }
                }
            });
        }
        // Progress once a minute.
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(60).min(deadline - Instant::now()));
            let t = tally.lock().expect("tally");
            eprintln!(
                "{:>5.0} s: {} executions {:?}",
                started.elapsed().as_secs_f64(),
                t.executions,
                t.by_outcome
            );
        }
    });
    let t = tally.lock().expect("tally");
    println!(
        "{} executions in {:.0} s over {} seeds ({} jobs, rng seed {}): {:?}",
        t.executions,
        started.elapsed().as_secs_f64(),
        seeds.len(),
        c.jobs,
        c.rng_seed,
        t.by_outcome
    );
    for (sig, (count, _)) in &t.found {
        println!("  {count:>6} x {sig}");
    }
    if t.found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
