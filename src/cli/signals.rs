//! SIGINT and SIGTERM: staged outputs removed, one line, exit status 130 or 143.
//!
//! [`install`] blocks both signals in the calling thread before any other thread exists, so every
//! thread inherits the mask and only a dedicated thread receives them (`sigwait`): no code runs in
//! a signal handler. That thread removes the live staging directories
//! ([`crate::io::output::interrupt`], which waits for a commit in progress), prints one line and
//! ends the process with `_exit`, so no exit handler runs (HDF5's would close files other threads
//! are writing). A command that can resume names how with [`set_interrupt_line`].

use std::sync::OnceLock;

/// The line printed on an interrupt instead of the default one.
static INTERRUPT_LINE: OnceLock<Vec<u8>> = OnceLock::new();

/// Prints `line` (one line, without its newline) on SIGINT or SIGTERM instead of
/// `scoop: interrupted`. Set at most once; later calls are ignored.
pub fn set_interrupt_line(line: &str) {
    let mut bytes = line.replace('\n', " ").into_bytes();
    bytes.push(b'\n');
    let _ = INTERRUPT_LINE.set(bytes);
}

/// Routes SIGINT and SIGTERM to the cleanup thread. Call first, before any thread starts.
pub fn install() {
    // SAFETY: sigset operations on a local set; pthread_sigmask on the calling thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let spawned = std::thread::Builder::new()
        .name("scoop-signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: waits on the signals blocked above; `sig` outlives the call.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            let committed = crate::io::output::interrupt();
            let line: &[u8] = if let Some(l) = INTERRUPT_LINE.get() {
                l
            } else if committed {
                b"scoop: interrupted\n"
            } else {
                b"scoop: interrupted; nothing written\n"
            };
            // SAFETY: a plain write of a static buffer to stderr, then _exit: no Rust state is
            // touched (stderr's lock may be held by a progress bar) and no exit handler runs.
            unsafe {
                libc::write(2, line.as_ptr().cast(), line.len());
                libc::_exit(128 + sig);
            }
        });
    if spawned.is_err() {
        // No cleanup thread: the default action (end the process) applies again.
        // SAFETY: unblocking the signals for the calling thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// True once an interrupt is being handled: the process is about to end with the signal's
/// status, and nothing else needs reporting.
pub fn interrupted() -> bool {
    crate::io::output::interrupted()
}
