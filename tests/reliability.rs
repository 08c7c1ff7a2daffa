//! Outputs under failure (issue 27): every command's outputs appear together or not at all,
//! whether the command is killed (SIGKILL), interrupted (SIGINT: exit 130 and one line), runs
//! out of space (a full tmpfs, when root), or races another writer; no temporary file outlives
//! the next run; errors name the output, not a staging path. Inputs are small plates made by
//! `scoop simulate`, shared by the tests of this binary.
//!
//! `SCOOP_BIN` runs the tests against another build (e.g. main's, to see them fail there).

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

fn bin() -> PathBuf {
    std::env::var_os("SCOOP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_scoop")))
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("-q").args(args);
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("run scoop")
}

fn ok(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Entries of `dir` that are scoop's temporaries (staging directories, or older versions'
/// `.NAME.scoop-tmp-PID`).
fn temps(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".scoop-") || n.contains(".scoop-tmp-"))
        .collect()
}

/// A staging directory of `dir` holding a commit journal: the set is committed (the next run
/// completes it).
fn committed_journal(dir: &Path) -> bool {
    temps(dir)
        .iter()
        .any(|n| dir.join(n).join(".commit").exists())
}

struct Fixture {
    _dir: tempfile::TempDir,
    plates: Vec<PathBuf>,
    /// Plate 1 with obsm/X_pca.
    pca: PathBuf,
    /// `pca` with the neighbors graph.
    nb: PathBuf,
    /// `nb` with obsm/X_umap.
    um: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ok(&[
            "simulate",
            "--out",
            s(d),
            "--plates",
            "3",
            "--cells-per-plate",
            "2500",
            "--genes",
            "600",
            "--seed",
            "27",
        ]);
        let plates: Vec<PathBuf> = (1..=3)
            .map(|i| d.join(format!("plate{i}_filtered.h5ad")))
            .collect();
        let (pca, nb, um) = (d.join("pca.h5ad"), d.join("nb.h5ad"), d.join("um.h5ad"));
        ok(&["pca", "--n-comps", "8", "--out", s(&pca), s(&plates[0])]);
        ok(&["neighbors", "--out", s(&nb), s(&pca)]);
        ok(&["umap", "--n-epochs", "30", "--out", s(&um), s(&nb)]);
        Fixture {
            _dir: dir,
            plates,
            pca,
            nb,
            um,
        }
    })
}

/// One writing command: its arguments for an output directory, and the outputs it makes there.
struct Case {
    name: &'static str,
    args: fn(&Fixture, &Path) -> Vec<String>,
    outputs: fn(&Path) -> Vec<PathBuf>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "concat",
            args: |f, o| {
                let mut a = strings(&["concat", "--out", s(&o.join("c.h5ad"))]);
                a.extend(f.plates.iter().map(|p| s(p).to_string()));
                a
            },
            outputs: |o| vec![o.join("c.h5ad")],
        },
        Case {
            name: "preprocess",
            args: |f, o| {
                let mut a = strings(&["preprocess", "--out-dir", s(&o.join("pp"))]);
                a.extend(f.plates.iter().map(|p| s(p).to_string()));
                a
            },
            outputs: |o| {
                let pp = o.join("pp");
                let mut v: Vec<PathBuf> = (1..=3)
                    .map(|i| pp.join(format!("plate{i}_filtered_preprocessed.h5ad")))
                    .collect();
                v.push(pp.join("genes.tsv"));
                v.push(pp.join("preprocess.json"));
                v
            },
        },
        Case {
            name: "pca --zarr",
            args: |f, o| {
                strings(&[
                    "pca",
                    "--n-comps",
                    "8",
                    "--out",
                    s(&o.join("p.h5ad")),
                    "--zarr",
                    s(&o.join("p.zarr")),
                    s(&f.plates[1]),
                ])
            },
            outputs: |o| vec![o.join("p.h5ad"), o.join("p.zarr")],
        },
        Case {
            name: "subsample",
            args: |f, o| {
                strings(&[
                    "subsample",
                    "--n",
                    "1000",
                    "--with-x",
                    "--out",
                    s(&o.join("s.h5ad")),
                    s(&f.pca),
                ])
            },
            outputs: |o| vec![o.join("s.h5ad")],
        },
        Case {
            name: "neighbors",
            args: |f, o| strings(&["neighbors", "--out", s(&o.join("n.h5ad")), s(&f.pca)]),
            outputs: |o| vec![o.join("n.h5ad")],
        },
        Case {
            name: "umap",
            args: |f, o| {
                strings(&[
                    "umap",
                    "--n-epochs",
                    "30",
                    "--out",
                    s(&o.join("u.h5ad")),
                    s(&f.nb),
                ])
            },
            outputs: |o| vec![o.join("u.h5ad")],
        },
    ]
}

fn spawn(args: &[String]) -> Child {
    cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scoop")
}

/// Where a command's outputs live, for temporaries and journals.
fn output_dirs(outputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = outputs
        .iter()
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    dirs.dedup();
    dirs
}

/// After a kill: every output or none (a committed journal counts as every output), and the
/// rerun without --force leaves the complete set and no temporary.
fn check_after_kill(case: &Case, f: &Fixture, out: &Path, what: &str) {
    let outputs = (case.outputs)(out);
    let dirs = output_dirs(&outputs);
    let present = outputs.iter().filter(|p| p.exists()).count();
    let journal = dirs.iter().any(|d| committed_journal(d));
    assert!(
        present == 0 || present == outputs.len() || journal,
        "{} {what}: {present} of {} outputs present: {:?}",
        case.name,
        outputs.len(),
        outputs.iter().filter(|p| p.exists()).collect::<Vec<_>>()
    );
    let args = (case.args)(f, out);
    let rerun = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&rerun.stderr);
    if present == outputs.len() || journal {
        // Committed: the rerun refuses to replace it, and the set is whole.
        assert_eq!(rerun.status.code(), Some(1), "{} {what}: {err}", case.name);
        assert!(err.contains("output exists"), "{} {what}: {err}", case.name);
    } else {
        assert!(
            rerun.status.success(),
            "{} {what}: rerun failed: {err}",
            case.name
        );
    }
    for p in &outputs {
        assert!(p.exists(), "{} {what}: {} missing", case.name, p.display());
        if p.extension().is_some_and(|e| e == "h5ad") {
            let i = run(&["inspect", s(p)]);
            assert!(
                i.status.success(),
                "{} {what}: {} unreadable",
                case.name,
                p.display()
            );
        }
    }
    for d in &dirs {
        assert_eq!(
            temps(d),
            Vec::<String>::new(),
            "{} {what}: temporaries",
            case.name
        );
    }
}

/// SIGKILL and SIGINT at seeded random points of every writing command: all outputs or none,
/// SIGINT exits 130 with one line, the rerun without --force succeeds and leaves no temporary.
#[test]
fn kill_matrix_leaves_all_outputs_or_none() {
    let f = fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(27);
    let root = tempfile::tempdir().unwrap();
    for (ci, case) in cases().iter().enumerate() {
        // The command's duration, to spread the kill points over it.
        let probe = root.path().join(format!("probe{ci}"));
        std::fs::create_dir(&probe).unwrap();
        let t = Instant::now();
        let args = (case.args)(f, &probe);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let took = t.elapsed();
        for trial in 0..6 {
            let sig = if trial % 2 == 0 {
                libc::SIGKILL
            } else {
                libc::SIGINT
            };
            let out = root.path().join(format!("c{ci}t{trial}"));
            std::fs::create_dir(&out).unwrap();
            let at = Duration::from_millis(20) + took.mul_f64(rng.random_range(0.0..1.1));
            let args = (case.args)(f, &out);
            let child = spawn(&args);
            std::thread::sleep(at);
            // SAFETY: signalling our own child by its PID.
            unsafe { libc::kill(child.id() as i32, sig) };
            let done = child.wait_with_output().unwrap();
            let what = format!("signal {sig} at {at:?}");
            let err = String::from_utf8_lossy(&done.stderr);
            if sig == libc::SIGINT && !done.status.success() {
                assert_eq!(done.status.code(), Some(130), "{} {what}: {err}", case.name);
                assert_eq!(
                    err.trim_end().lines().count(),
                    1,
                    "{} {what}: {err}",
                    case.name
                );
                assert!(
                    err.starts_with("scoop: interrupted"),
                    "{}: {err}",
                    case.name
                );
            }
            if sig == libc::SIGKILL && !done.status.success() {
                assert_eq!(
                    done.status.signal(),
                    Some(libc::SIGKILL),
                    "{}: {err}",
                    case.name
                );
            }
            check_after_kill(case, f, &out, &what);
        }
    }
}

/// Case 3: `preprocess` and `pca --zarr` killed the moment their first output appears (today's
/// code commits outputs one by one): the set is whole or absent, and the rerun is not blocked.
#[test]
fn case3_multi_output_commands_commit_together() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    for case in cases()
        .iter()
        .filter(|c| matches!(c.name, "preprocess" | "pca --zarr"))
    {
        let out = root.path().join(case.name.replace(' ', ""));
        std::fs::create_dir(&out).unwrap();
        let outputs = (case.outputs)(&out);
        let mut child = spawn(&(case.args)(f, &out));
        loop {
            if outputs.iter().any(|p| p.exists()) || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        check_after_kill(case, f, &out, "killed at its first output");
    }
}

/// Case 2: an interrupted run leaves no temporary, and a killed run's temporary is removed by
/// the next run (without touching a live run's).
#[test]
fn case2_no_temporaries_pile_up() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let case = &cases()[0];
    let out = root.path();
    let args = (case.args)(f, out);
    // SIGINT while writing: nothing left.
    let child = spawn(&args);
    let mut child = child;
    wait_for_temp(&mut child, out);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130));
    assert_eq!(temps(out), Vec::<String>::new(), "SIGINT left temporaries");
    // SIGKILL while writing: the temporary stays until the next run, which removes it.
    let mut child = spawn(&args);
    wait_for_temp(&mut child, out);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !temps(out).is_empty(),
        "the killed run's staging should remain"
    );
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        temps(out),
        Vec::<String>::new(),
        "the next run left temporaries"
    );
}

/// Waits until `child` has a temporary in `dir` past its creation (it is writing). A staging
/// directory still being made ends in `~` and is left alone by the next run for a grace period,
/// so a kill inside that window would not test recovery.
fn wait_for_temp(child: &mut Child, dir: &Path) {
    let t = Instant::now();
    while !temps(dir).iter().any(|n| !n.ends_with('~')) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before writing"
        );
        assert!(t.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Case 7: an output that appears while a command runs (another writer finished first) is not
/// replaced without --force: the command fails with "output exists".
#[test]
fn case7_an_output_appearing_meanwhile_is_not_replaced() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let out = root.path();
    let target = out.join("c.h5ad");
    let mut child = spawn(&(cases()[0].args)(f, out));
    wait_for_temp(&mut child, out);
    std::fs::write(&target, b"the other writer's").unwrap();
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{err}");
    assert!(err.contains("output exists"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"the other writer's");
    assert_eq!(temps(out), Vec::<String>::new());
}

/// Case 8: legal long output names work, 239 bytes and the 255-byte limit (the staging adds
/// nothing to an output's name).
#[test]
fn case8_long_output_names_work() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let name = format!("{}.h5ad", "n".repeat(239 - 5));
    let target = root.path().join(&name);
    let mut a = strings(&["concat", "--out", s(&target)]);
    a.extend(f.plates.iter().map(|p| s(p).to_string()));
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(target.exists());
    let zarr = root.path().join(format!("{}.zarr", "z".repeat(255 - 5)));
    let p = root.path().join(format!("{}.h5ad", "p".repeat(255 - 5)));
    ok(&[
        "pca",
        "--n-comps",
        "4",
        "--out",
        s(&p),
        "--zarr",
        s(&zarr),
        s(&f.plates[0]),
    ]);
    assert!(zarr.join(".zarray").exists() && p.exists());
    assert_eq!(temps(root.path()), Vec::<String>::new());
}

/// Case 10: an output equal to an input is refused, --force or not (plot once replaced its
/// input with a PNG); the input is unchanged.
#[test]
fn case10_output_equal_to_input_is_refused_even_with_force() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("um.h5ad");
    std::fs::copy(&f.um, &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec![
            "plot",
            "--basis",
            "umap",
            "--color",
            "drug",
            "--force",
            "--out",
            s(&input),
            s(&input),
        ],
        vec![
            "subsample",
            "--n",
            "10",
            "--force",
            "--out",
            s(&input),
            s(&input),
        ],
        vec!["neighbors", "--force", "--out", s(&input), s(&input)],
        vec![
            "umap",
            "--n-epochs",
            "5",
            "--force",
            "--out",
            s(&input),
            s(&input),
        ],
        vec![
            "pca",
            "--n-comps",
            "4",
            "--force",
            "--out",
            s(&input),
            s(&input),
        ],
        vec!["concat", "--force", "--out", s(&input), s(&input), s(&f.um)],
    ];
    for args in runs {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("is the input"), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(&input).unwrap(),
            before,
            "{args:?} changed its input"
        );
    }
}

/// Case 9: the output directory is checked before any work (pca's gram pass; here X has a bad
/// index, so a check after the pass would report X instead), and preprocess creates no --out-dir when
/// an input is bad.
#[test]
fn case9_output_directories_are_checked_first_and_not_left_behind() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    // A plate with a column index out of range near X's end: opening works, the gram pass fails.
    ok(&[
        "simulate",
        "--out",
        s(d),
        "--plates",
        "1",
        "--cells-per-plate",
        "2000",
        "--genes",
        "300",
    ]);
    let bad = d.join("plate1_filtered.h5ad");
    {
        let file = hdf5::File::open_rw(&bad).unwrap();
        let ds = file.dataset("X/indices").unwrap();
        let mut v: Vec<i32> = ds.read_raw().unwrap();
        let n = v.len();
        v[n - 3] = 1_000_000;
        ds.write_raw(&v).unwrap();
    }
    let probe = run(&[
        "pca",
        "--n-comps",
        "4",
        "--out",
        s(&d.join("ok.h5ad")),
        s(&bad),
    ]);
    assert_eq!(
        probe.status.code(),
        Some(1),
        "the corrupt plate should fail pca"
    );
    let not_dir = d.join("file");
    std::fs::write(&not_dir, b"").unwrap();
    let out = run(&[
        "pca",
        "--n-comps",
        "4",
        "--out",
        s(&not_dir.join("p.h5ad")),
        s(&bad),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("p.h5ad"), "{err}");
    assert!(!err.contains("/X"), "checked after reading X: {err}");

    let garbage = d.join("garbage.h5ad");
    std::fs::write(&garbage, b"not hdf5").unwrap();
    let new_dir = d.join("new");
    let out = run(&[
        "preprocess",
        "--out-dir",
        s(&new_dir),
        s(&f.plates[0]),
        s(&garbage),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!new_dir.exists(), "preprocess left an empty --out-dir");
}

/// Runs `args` with writes limited to `limit` bytes per file (RLIMIT_FSIZE, SIGXFSZ ignored):
/// a write failure any user can cause.
fn run_with_file_limit(args: &[&str], limit: u64) -> Output {
    let mut c = cmd(args);
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &l);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    c.output().expect("run scoop")
}

/// Cases 1 and 9: a write that fails part-way (file size limit) ends every writing command with
/// exit 1 and one line naming the output and the OS's reason; no crash, nothing left behind.
#[test]
fn case1_case9_failed_writes_exit_1_naming_the_output() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    for (i, case) in cases().iter().enumerate() {
        let out = root.path().join(format!("w{i}"));
        std::fs::create_dir(&out).unwrap();
        let args = (case.args)(f, &out);
        let done = run_with_file_limit(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            1 << 20,
        );
        check_failed_write(case.name, &done, &(case.outputs)(&out), "File too large");
    }
    let sim = root.path().join("sim");
    let done = run_with_file_limit(
        &[
            "simulate",
            "--out",
            s(&sim),
            "--plates",
            "2",
            "--cells-per-plate",
            "2000",
            "--genes",
            "500",
        ],
        1 << 20,
    );
    check_failed_write(
        "simulate",
        &done,
        &[sim.join("plate1_filtered.h5ad")],
        "File too large",
    );
    assert!(!sim.exists(), "simulate left its --out");
}

fn check_failed_write(name: &str, done: &Output, outputs: &[PathBuf], reason: &str) {
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(
        done.status.code(),
        Some(1),
        "{name}: status {:?}: {err}",
        done.status
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
    assert!(err.contains(reason), "{name}: {err}");
    assert!(
        outputs
            .iter()
            .any(|p| err.contains(p.file_name().unwrap().to_str().unwrap())),
        "{name}: names no output: {err}"
    );
    assert!(!err.contains(".scoop-"), "{name}: names a temporary: {err}");
    assert!(!err.contains("time ="), "{name}: HDF5 details: {err}");
    for p in outputs {
        assert!(!p.exists(), "{name}: {} exists", p.display());
    }
    for d in output_dirs(outputs) {
        assert_eq!(temps(&d), Vec::<String>::new(), "{name}: temporaries");
    }
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A small tmpfs at `dir`, when running as root and mounting works.
fn small_tmpfs(dir: &Path, size: &str) -> Result<Mount, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !st.status.success() {
        return Err(String::from_utf8_lossy(&st.stderr).trim().to_string());
    }
    Ok(Mount(dir.to_path_buf()))
}

/// Disk full (cases 1, 2, 9): every writing command into a full tmpfs exits 1 with one line
/// naming its output and "No space left on device", and leaves nothing behind.
#[test]
fn disk_full_fails_cleanly_for_every_writing_command() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("small");
    let _mount = match small_tmpfs(&mnt, "3m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIP disk_full_fails_cleanly_for_every_writing_command: {why}");
            return;
        }
    };
    for (i, case) in cases().iter().enumerate() {
        let out = mnt.join(format!("w{i}"));
        std::fs::create_dir(&out).unwrap();
        let args = (case.args)(f, &out);
        let done = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        check_failed_write(
            case.name,
            &done,
            &(case.outputs)(&out),
            "No space left on device",
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    let sim = mnt.join("sim");
    let done = run(&[
        "simulate",
        "--out",
        s(&sim),
        "--plates",
        "2",
        "--cells-per-plate",
        "2000",
        "--genes",
        "500",
    ]);
    check_failed_write(
        "simulate",
        &done,
        &[sim.join("plate1_filtered.h5ad")],
        "No space left on device",
    );
    assert!(!sim.exists(), "simulate left its --out");
    // plot writes little: fill the disk first.
    let filler = mnt.join("filler");
    let mut fill = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 1 << 16];
    while std::io::Write::write_all(&mut fill, &block).is_ok() {}
    drop(fill);
    let png = mnt.join("u.png");
    let done = run(&[
        "plot",
        "--basis",
        "umap",
        "--color",
        "drug",
        "--out",
        s(&png),
        s(&f.um),
    ]);
    check_failed_write("plot", &done, &[png], "No space left on device");
    std::fs::remove_file(&filler).unwrap();
    let left: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// An interrupted command exits quietly even while HDF5 files are open in other threads (no
/// exit handler runs): SIGTERM gives 143 and the same one line.
#[test]
fn sigterm_exits_143_with_one_line() {
    let f = fixture();
    let root = tempfile::tempdir().unwrap();
    let out = root.path();
    let mut child = spawn(&(cases()[4].args)(f, out));
    wait_for_temp(&mut child, out);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(143), "{err}");
    assert_eq!(err.trim_end(), "scoop: interrupted; nothing written");
    assert_eq!(temps(out), Vec::<String>::new());
}
