use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, with large requests rounded up to one of four size classes per power of
/// two (at most 25% over). Streaming allocates and frees chunk-sized buffers whose sizes differ a
/// little from chunk to chunk; with the heap kept (see [`tune_allocator`]), a freed buffer's hole
/// was often a few bytes too small for the next chunk's, so the heap grew with the number of
/// chunks. With size classes a hole fits the next buffer of its class and peak memory stays
/// bounded by the chunk size.
struct SizeClassAlloc;

/// Requests from this size up are rounded to a size class.
const SIZE_CLASS_MIN: usize = 1 << 20;

fn size_class(size: usize) -> usize {
    if size < SIZE_CLASS_MIN {
        return size;
    }
    let step = (size.next_power_of_two() >> 3).max(1);
    size.div_ceil(step).saturating_mul(step)
}

fn classed(layout: Layout) -> Layout {
    Layout::from_size_align(size_class(layout.size()), layout.align()).unwrap_or(layout)
}

/// Requests from this size up ask for transparent huge pages.
const HUGE_MIN: usize = 4 << 20;

/// Asks the kernel to back the whole 2 MiB pages inside `size` bytes at `ptr` with huge pages
/// (where transparent huge pages are enabled, as `madvise`, the default): a chunk buffer's first
/// touch then costs one fault per 2 MiB instead of one per 4 KiB, which bound the uncompressed
/// read path. Advice only; failure changes nothing.
#[cfg(target_os = "linux")]
fn advise_huge(ptr: *mut u8, size: usize) {
    const HUGE: usize = 2 << 20;
    if ptr.is_null() || size < HUGE_MIN {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + size) & !(HUGE - 1);
    if start < end {
        // SAFETY: the range lies inside the allocation just handed out; MADV_HUGEPAGE changes no
        // contents and no mapping.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_: *mut u8, _: usize) {}

// SAFETY: every call forwards to `System` with the same rounding applied to the size on
// allocation, reallocation and deallocation, so `System` always sees the layout it handed out.
unsafe impl GlobalAlloc for SizeClassAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let layout = classed(layout);
        let ptr = System.alloc(layout);
        advise_huge(ptr, layout.size());
        ptr
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(classed(layout))
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, classed(layout))
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old, new) = (classed(layout), size_class(new_size));
        if old.size() == new {
            return ptr;
        }
        let ptr = System.realloc(ptr, old, new);
        advise_huge(ptr, new);
        ptr
    }
}

#[global_allocator]
static ALLOC: SizeClassAlloc = SizeClassAlloc;

fn main() {
    tune_allocator();
    // Output piped into `head` ends the process quietly, as other command-line tools do, instead
    // of a panic on the broken pipe (Rust ignores SIGPIPE by default).
    // SAFETY: restoring a signal's default disposition before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if let Err(e) = scoop::cli::run() {
        if scoop::cli::interrupted() {
            // The signal thread is removing the staged outputs and ends the process.
            loop {
                std::thread::park();
            }
        }
        if scoop::events::json() {
            scoop::events::emit("error", serde_json::json!({ "message": format!("{e:#}") }));
        } else {
            eprintln!("error: {e:#}");
        }
        // Ends without exit handlers: after a failed write (a full disk), HDF5 handles are
        // deliberately left open (see `OutputFile`), and HDF5's exit handler would close them.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: _exit ends the process; staged outputs were removed when the error unwound.
        unsafe { libc::_exit(1) }
    }
}

/// Streaming allocates and frees a few chunk-sized buffers (tens of MiB) per chunk. glibc serves
/// such sizes with fresh `mmap`s, so every chunk paid for page faults on memory it had just
/// returned. Keeping them in the heap (no mmap below 512 MiB, no trimming) lets the same pages be
/// reused; memory stays bounded by the chunk size.
///
/// One arena for every thread: the heap a step no longer uses can then all go back to the system
/// between steps (`malloc_trim` trims the main arena's top; other arenas' tops only shrink on a
/// `free` past the trim threshold, never here). Threads allocate per chunk or task, not per
/// value, and small blocks come from glibc's per-thread caches, so one arena costs no contention
/// that shows.
///
/// `SCOOP_MALLOC_ARENA_MAX=N` replaces the one arena by N for measuring (0: glibc's own default,
/// 8 per core), e.g. allocation contention on many cores; a value that is not a count keeps one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    let arenas = std::env::var("SCOOP_MALLOC_ARENA_MAX")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|n| *n >= 0)
        .unwrap_or(1);
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        if arenas > 0 {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
