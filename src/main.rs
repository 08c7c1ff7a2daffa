fn main() {
    tune_allocator();
    if let Err(e) = scoop::cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Streaming allocates and frees a few chunk-sized buffers (tens of MiB) per chunk. glibc serves
/// such sizes with fresh `mmap`s, so every chunk paid for page faults on memory it had just
/// returned. Keeping them in the heap (no mmap below 512 MiB, no trimming) lets the same pages be
/// reused; memory stays bounded by the chunk size.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only adjusts allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
