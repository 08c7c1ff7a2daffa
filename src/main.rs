fn main() {
    if let Err(e) = scoop::cli::run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
