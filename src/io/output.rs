//! The output-commit protocol: every output of a command becomes visible together, or none does.
//!
//! An [`OutputSet`] stages each output under its final file name inside a staging directory
//! `.scoop-XXXXXXXX` (8 hex digits) created in the output's own directory, so a rename moves it
//! into place on the same file system and a legal 255-byte name stays legal. The process holds an
//! exclusive `flock` on each staging directory while it runs and records its PID in it (`.pid`);
//! a staging directory is made locked under a `~` name and then renamed to its staging name.
//!
//! [`OutputSet::commit`] writes a journal (`.commit`, listing staged path and target of every
//! output) into the set's first staging directory, then renames each output into place, then
//! removes the staging directories. The journal is the commit point: a set whose journal exists
//! is committed, and a run killed while renaming is completed by the next run that recovers the
//! directory ([`recover`]), which renames what is left. Without `force`, each rename refuses to
//! replace an existing path (`renameat2(RENAME_NOREPLACE)`, or `link` + `unlink` where the file
//! system lacks it), so an output that appeared while the command ran is never replaced: the
//! outputs already renamed are moved back and the commit fails with [`Error::OutputExists`].
//!
//! A staging directory is stale when its lock can be taken: its process has ended (the lock is
//! released with the process). Every [`OutputSet`] first recovers the stale staging directories
//! in its outputs' directories: uncommitted ones are removed, committed ones completed. A live
//! process's directory (lock held) is never touched.
//!
//! Interruption: the CLI's signal thread calls [`interrupt`], which waits for a commit in
//! progress, removes every live staging directory and returns; the caller then ends the process
//! without running exit handlers.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Prefix of a staging directory's name; 8 lowercase hex digits follow.
pub const STAGE_PREFIX: &str = ".scoop-";
/// Length of a staging directory's name.
const STAGE_NAME_LEN: usize = STAGE_PREFIX.len() + 8;
/// The PID record (for people looking at a leftover; staleness is decided by the lock).
const PID_FILE: &str = ".pid";
/// The other staging directories of the set (multi-directory sets), the journal's first.
const SET_FILE: &str = ".set";
/// The commit journal, in the set's first staging directory.
const JOURNAL: &str = ".commit";
/// Suffix of a staging directory being made (locked, then renamed to its staging name).
const FRESH_SUFFIX: &str = "~";
/// A lockable directory being made is stale after this long (its creator died between `mkdir`
/// and `flock`).
const UNLOCKED_GRACE: Duration = Duration::from_secs(10);

/// Staging directories of this process's uncommitted sets. Held during a commit, so that
/// [`interrupt`] never removes a set half renamed.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static COMMITTED: AtomicBool = AtomicBool::new(false);

fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// True once [`interrupt`] has run: the process is ending, errors need not be reported.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Removes every live staging directory and blocks all further commits (the registry stays
/// locked). Returns true when some set was committed before (so "nothing written" would be
/// false). For the signal thread: the caller must end the process right after.
pub fn interrupt() -> bool {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let guard = live();
    for stage in guard.iter() {
        // Renamed first, so that other threads still writing can create nothing more in it
        // (their paths name the old place); files they hold open go with it.
        let doomed = stage.with_file_name(format!("{STAGE_PREFIX}{:08x}", rand::random::<u32>()));
        match std::fs::rename(stage, &doomed) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&doomed);
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(stage);
            }
        }
        // A plain file in its place stops other threads' writers from recreating the directory
        // (`create_dir_all`) before the process ends; recovery removes such files.
        let _ = std::fs::File::create(stage);
        let _ = std::fs::remove_file(stage);
    }
    std::mem::forget(guard);
    COMMITTED.load(Ordering::SeqCst)
}

/// `path` as the user knows it: a staging directory component (`.scoop-XXXXXXXX`) removed, so
/// an error on a staged file names the output it becomes.
pub fn visible_path(path: &Path) -> PathBuf {
    if !path
        .components()
        .any(|c| matches!(c, Component::Normal(n) if is_stage_name(n.as_bytes())))
    {
        return path.to_path_buf();
    }
    path.components()
        .filter(|c| !matches!(c, Component::Normal(n) if is_stage_name(n.as_bytes())))
        .collect()
}

fn is_stage_name(name: &[u8]) -> bool {
    name.len() == STAGE_NAME_LEN
        && name.starts_with(STAGE_PREFIX.as_bytes())
        && name[STAGE_PREFIX.len()..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// A file that is `a` itself (same device and inode), when both exist.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The directory `target` is written in (`.` for a bare name).
fn dir_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// One staging directory, locked for the life of the value.
struct Stage {
    path: PathBuf,
    lock: Option<File>,
}

impl Stage {
    /// Creates and locks a fresh staging directory in `dir`; errors name `target`.
    fn create(dir: &Path, target: &Path) -> Result<Stage> {
        // Made locked under a `~` name and then renamed, so that a directory with a staging
        // name whose lock is free is always stale.
        let mut tries = 0;
        let (path, fresh) = loop {
            let path = dir.join(format!("{STAGE_PREFIX}{:08x}", rand::random::<u32>()));
            let fresh = PathBuf::from(format!("{}{FRESH_SUFFIX}", path.display()));
            match std::fs::create_dir(&fresh) {
                Ok(()) if std::fs::symlink_metadata(&path).is_err() => break (path, fresh),
                Ok(()) => {
                    let _ = std::fs::remove_dir(&fresh);
                    tries += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
                Err(e) => return Err(Error::io(target, e)),
            }
        };
        let mut stage = Stage {
            path: fresh,
            lock: None,
        };
        let locked = File::open(&stage.path).and_then(|lock| {
            flock(&lock, false)?;
            stage.lock = Some(lock);
            std::fs::write(
                stage.path.join(PID_FILE),
                format!("{}\n", std::process::id()),
            )?;
            rename_noreplace(&stage.path, &path)?;
            stage.path = path;
            Ok(())
        });
        if let Err(e) = locked {
            stage.remove();
            return Err(Error::io(target, e));
        }
        Ok(stage)
    }

    fn remove(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        self.lock = None;
    }
}

/// `flock(LOCK_EX)`, blocking or not.
fn flock(f: &File, nonblocking: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let op = libc::LOCK_EX | if nonblocking { libc::LOCK_NB } else { 0 };
    // SAFETY: flock on a descriptor owned by `f`, alive for the call.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Renames `from` onto `to`, failing with `AlreadyExists` when `to` exists.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        let a = CString::new(from.as_os_str().as_bytes())?;
        let b = CString::new(to.as_os_str().as_bytes())?;
        // SAFETY: both paths are NUL-terminated strings alive for the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
            return Err(e);
        }
    }
    // No RENAME_NOREPLACE here: a hard link fails atomically on an existing name; a directory
    // cannot be linked, so it is checked first (a race remains only for directories).
    if std::fs::symlink_metadata(from)?.is_dir() {
        if std::fs::symlink_metadata(to).is_ok() {
            return Err(std::io::ErrorKind::AlreadyExists.into());
        }
        return std::fs::rename(from, to);
    }
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

/// Moves the staged `from` onto `to`; with `force` an existing `to` is replaced (a directory is
/// first moved into `stage` and removed after).
fn place(from: &Path, to: &Path, force: bool, stage: &Path) -> std::io::Result<()> {
    if !force {
        return rename_noreplace(from, to);
    }
    match std::fs::symlink_metadata(to) {
        Ok(m) if m.is_dir() => {
            let old = stage.join(".old");
            std::fs::rename(to, &old)?;
            std::fs::rename(from, to)?;
            std::fs::remove_dir_all(&old)
        }
        _ => std::fs::rename(from, to),
    }
}

/// The journal's text: `force` flag, then staged path and target of each output, NUL-separated.
fn journal_bytes(force: bool, outputs: &[(PathBuf, PathBuf)]) -> Vec<u8> {
    let mut b = vec![if force { b'1' } else { b'0' }, 0];
    for (target, staged) in outputs {
        for p in [staged, target] {
            b.extend_from_slice(p.as_os_str().as_bytes());
            b.push(0);
        }
    }
    b
}

/// Parses [`journal_bytes`]: (force, [(staged, target)]).
fn parse_journal(bytes: &[u8]) -> Option<(bool, Vec<(PathBuf, PathBuf)>)> {
    let mut fields = bytes
        .split(|&c| c == 0)
        .map(|f| PathBuf::from(OsString::from_vec(f.to_vec())));
    let force = fields.next()? == Path::new("1");
    let rest: Vec<PathBuf> = fields.filter(|p| !p.as_os_str().is_empty()).collect();
    if !rest.len().is_multiple_of(2) {
        return None;
    }
    let pairs = rest
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    Some((force, pairs))
}

/// Removes this directory's stale staging directories (lock free: their process has ended),
/// completing those whose set was committed; also removes leftovers of older scoop versions
/// (`.NAME.scoop-tmp-PID` of a PID no longer running). Best effort: errors are ignored.
pub fn recover(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let path = entry.path();
        let bytes = name.as_bytes();
        if is_stage_name(bytes) {
            recover_stage(&path);
        } else if bytes
            .strip_suffix(FRESH_SUFFIX.as_bytes())
            .is_some_and(is_stage_name)
        {
            remove_fresh_if_stale(&path);
        } else if let Some(pid) = legacy_temp_pid(name.as_bytes()) {
            // SAFETY: kill with signal 0 only checks that the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
            }
        }
    }
}

/// Removes a staging directory being made (`FRESH_SUFFIX`) whose lock is free and that is older
/// than [`UNLOCKED_GRACE`]: its creator died between `mkdir` and `flock`.
fn remove_fresh_if_stale(path: &Path) {
    let Ok(lock) = File::open(path) else { return };
    if flock(&lock, true).is_err() {
        return;
    }
    let old = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= UNLOCKED_GRACE);
    if old {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// The PID of a `.NAME.scoop-tmp-PID` name.
fn legacy_temp_pid(name: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(name).ok()?;
    let (head, pid) = s.rsplit_once(".scoop-tmp-")?;
    if !head.starts_with('.') {
        return None;
    }
    pid.parse().ok()
}

fn recover_stage(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        // What `interrupt` leaves in a removed directory's place.
        let _ = std::fs::remove_file(path);
        return;
    }
    let Ok(lock) = File::open(path) else { return };
    if flock(&lock, true).is_err() {
        return; // a live process's
    }
    let stages: Vec<PathBuf> = std::fs::read(path.join(SET_FILE))
        .ok()
        .and_then(|b| parse_journal(&b))
        .map(|(_, s)| s.into_iter().flat_map(|(a, b)| [a, b]).collect())
        .unwrap_or_else(|| vec![path.to_path_buf()]);
    let journal = stages
        .first()
        .and_then(|first| std::fs::read(first.join(JOURNAL)).ok())
        .and_then(|b| parse_journal(&b));
    if let Some((force, outputs)) = journal {
        for (staged, target) in outputs {
            if std::fs::symlink_metadata(&staged).is_ok() {
                let stage = staged.parent().unwrap_or(path);
                let _ = place(&staged, &target, force, stage);
            }
        }
        for s in &stages {
            let _ = std::fs::remove_dir_all(s);
        }
    }
    let _ = std::fs::remove_dir_all(path);
}

/// Writes `bytes` to `target` as a set of its own (staged, then renamed into place), replacing
/// an existing file: for small files a command rewrites as it goes (`scoop run`'s `run.json`).
pub fn write_file(target: &Path, bytes: &[u8]) -> Result<()> {
    let set = OutputSet::create(&[target], &OutputOptions::new(true))?;
    std::fs::write(set.staged(target), bytes).map_err(|e| Error::io(target, e))?;
    set.commit()
}

/// How an [`OutputSet`] is created: the inputs no output may be, `--force`, and whether missing
/// output directories are created (and removed again, when still empty, if nothing is committed).
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    /// The command's inputs; an output that is one of them is refused, `force` or not.
    pub inputs: Vec<PathBuf>,
    /// Replace existing outputs.
    pub force: bool,
    /// Create a missing output directory (`preprocess --out-dir`, `simulate --out`).
    pub make_dirs: bool,
}

impl OutputOptions {
    /// Options with `force` and no inputs.
    pub fn new(force: bool) -> Self {
        OutputOptions {
            force,
            ..Self::default()
        }
    }

    /// Adds inputs no output may be.
    pub fn inputs<P: AsRef<Path>>(mut self, inputs: impl IntoIterator<Item = P>) -> Self {
        self.inputs
            .extend(inputs.into_iter().map(|p| p.as_ref().to_path_buf()));
        self
    }

    /// Creates missing output directories.
    pub fn make_dirs(mut self) -> Self {
        self.make_dirs = true;
        self
    }
}

/// The outputs of one command, staged until [`OutputSet::commit`]; dropped uncommitted, every
/// staged output is removed (and the output directories it created, when empty).
pub struct OutputSet {
    force: bool,
    /// (target, staged path), in commit order.
    outputs: Vec<(PathBuf, PathBuf)>,
    stages: Vec<Stage>,
    made_dirs: Vec<PathBuf>,
}

impl OutputSet {
    /// Checks every target and stages the set, before the command does any work: each target's
    /// directory exists (or is created with `make_dirs`) and is writable (a staging directory is
    /// created in it), no target is an input or named twice, and without `force` none exists.
    /// Stale staging directories in those directories are recovered first ([`recover`]).
    pub fn create<P: AsRef<Path>>(targets: &[P], opts: &OutputOptions) -> Result<OutputSet> {
        let mut set = OutputSet {
            force: opts.force,
            outputs: Vec::new(),
            stages: Vec::new(),
            made_dirs: Vec::new(),
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        for target in targets {
            let target = target.as_ref();
            let name = target.file_name().ok_or_else(|| {
                Error::InvalidArgument(format!("{}: not a file name", target.display()))
            })?;
            if name.as_bytes().starts_with(STAGE_PREFIX.as_bytes()) {
                return Err(Error::InvalidArgument(format!(
                    "{}: names starting with {STAGE_PREFIX} are reserved for scoop's staging",
                    target.display()
                )));
            }
            if let Some(input) = opts.inputs.iter().find(|i| same_file(i, target)) {
                return Err(Error::InvalidArgument(format!(
                    "output {} is the input {}; inputs are never modified",
                    target.display(),
                    input.display()
                )));
            }
            if set.outputs.iter().any(|(t, _)| t == target) {
                return Err(Error::InvalidArgument(format!(
                    "{} is named as two outputs",
                    target.display()
                )));
            }
            let dir = dir_of(target);
            if !dir.is_dir() {
                if opts.make_dirs && std::fs::symlink_metadata(&dir).is_err() {
                    set.make_dir(&dir, target)?;
                } else {
                    return Err(Error::io(
                        target,
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("output directory {} does not exist", dir.display()),
                        ),
                    ));
                }
            }
            if !dirs.contains(&dir) {
                recover(&dir);
                dirs.push(dir);
            }
            if !opts.force && std::fs::symlink_metadata(target).is_ok() {
                return Err(Error::OutputExists(target.to_path_buf()));
            }
            set.outputs.push((target.to_path_buf(), PathBuf::new()));
        }
        for dir in &dirs {
            let first = set
                .outputs
                .iter()
                .find(|(t, _)| dir_of(t) == *dir)
                .map(|(t, _)| t.clone())
                .expect("every directory has an output");
            // Registered before it exists: an interrupt meanwhile waits, then removes it.
            let mut live = live();
            let stage = Stage::create(dir, &first)?;
            live.push(stage.path.clone());
            drop(live);
            set.stages.push(stage);
        }
        for (target, staged) in &mut set.outputs {
            let dir = dir_of(target);
            let k = dirs.iter().position(|d| *d == dir).expect("listed");
            *staged = set.stages[k]
                .path
                .join(target.file_name().expect("checked"));
        }
        if set.stages.len() > 1 {
            // Every staging directory names the set's, the journal's first.
            let pairs: Vec<(PathBuf, PathBuf)> = set
                .stages
                .iter()
                .map(|s| {
                    let abs = std::path::absolute(&s.path).unwrap_or_else(|_| s.path.clone());
                    (abs.clone(), abs)
                })
                .collect();
            let text = journal_bytes(false, &pairs);
            for s in &set.stages {
                std::fs::write(s.path.join(SET_FILE), &text)
                    .map_err(|e| Error::io(&set.outputs[0].0, e))?;
            }
        }
        Ok(set)
    }

    fn make_dir(&mut self, dir: &Path, target: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut d = Some(dir);
        while let Some(x) = d.filter(|x| !x.as_os_str().is_empty() && !x.exists()) {
            missing.push(x.to_path_buf());
            d = x.parent();
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(target, e))?;
        self.made_dirs.extend(missing);
        Ok(())
    }

    /// Where `target`'s content is written until the commit (a path inside a staging
    /// directory, under the target's file name). `target` must be one of the set's.
    pub fn staged(&self, target: &Path) -> &Path {
        self.outputs
            .iter()
            .find(|(t, _)| t == target)
            .map(|(_, s)| s.as_path())
            .expect("target is one of the set's outputs")
    }

    /// The targets, in commit order.
    pub fn targets(&self) -> impl Iterator<Item = &Path> {
        self.outputs.iter().map(|(t, _)| t.as_path())
    }

    /// Moves every staged output into place, together: see the module docs. Each output must be
    /// complete and closed (files written by [`crate::io::OutputFile`] closed with its `close`).
    pub fn commit(mut self) -> Result<()> {
        let mut live = live();
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err(Error::InvalidArgument("interrupted".into()));
        }
        for (target, staged) in &self.outputs {
            if std::fs::symlink_metadata(staged).is_err() {
                return Err(Error::io(
                    target,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "output was not written"),
                ));
            }
            if !self.force && std::fs::symlink_metadata(target).is_ok() {
                return Err(Error::OutputExists(target.clone()));
            }
        }
        let journal = self.stages[0].path.join(JOURNAL);
        if self.outputs.len() > 1 {
            let tmp = self.stages[0].path.join(".commit-tmp");
            let first = &self.outputs[0].0;
            let mut f = File::create(&tmp).map_err(|e| Error::io(first, e))?;
            let absolute: Vec<(PathBuf, PathBuf)> = self
                .outputs
                .iter()
                .map(|(t, s)| {
                    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
                    (abs(t), abs(s))
                })
                .collect();
            f.write_all(&journal_bytes(self.force, &absolute))
                .and_then(|()| f.sync_all())
                .map_err(|e| Error::io(first, e))?;
            std::fs::rename(&tmp, &journal).map_err(|e| Error::io(first, e))?;
        }
        for (i, (target, staged)) in self.outputs.iter().enumerate() {
            let stage = staged.parent().expect("inside a staging directory");
            if let Err(e) = place(staged, target, self.force, stage) {
                // Not committed after all: undo the renames done (without force nothing was
                // replaced, so moving them back restores the state before the commit).
                for (t, s) in &self.outputs[..i] {
                    let _ = std::fs::rename(t, s);
                }
                let _ = std::fs::remove_file(&journal);
                return Err(match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::OutputExists(target.clone()),
                    _ => Error::io(target, e),
                });
            }
        }
        COMMITTED.store(true, Ordering::SeqCst);
        for stage in &mut self.stages {
            live.retain(|p| *p != stage.path);
            stage.remove();
        }
        self.made_dirs.clear();
        Ok(())
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        let mut live = live();
        for stage in &mut self.stages {
            live.retain(|p| *p != stage.path);
            stage.remove();
        }
        for dir in &self.made_dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_path_drops_the_staging_component() {
        let p = Path::new("out/.scoop-0a1b2c3d/x.zarr/0.0");
        assert_eq!(visible_path(p), Path::new("out/x.zarr/0.0"));
        let q = Path::new("out/.scoop-0a1b2c3z/x");
        assert_eq!(visible_path(q), q);
    }

    #[test]
    fn journal_round_trips() {
        let o = vec![
            (PathBuf::from("a b\tc"), PathBuf::from("s/a b\tc")),
            (PathBuf::from("d"), PathBuf::from("s/d")),
        ];
        let (force, pairs) = parse_journal(&journal_bytes(true, &o)).unwrap();
        assert!(force);
        assert_eq!(
            pairs[0],
            (PathBuf::from("s/a b\tc"), PathBuf::from("a b\tc"))
        );
        assert_eq!(pairs[1], (PathBuf::from("s/d"), PathBuf::from("d")));
    }

    #[test]
    fn legacy_temp_names() {
        assert_eq!(legacy_temp_pid(b".c.h5ad.scoop-tmp-1811"), Some(1811));
        assert_eq!(legacy_temp_pid(b"c.h5ad.scoop-tmp-1811"), None);
    }
}
