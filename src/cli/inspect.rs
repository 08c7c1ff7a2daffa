use std::path::PathBuf;
use std::time::Instant;

use super::GlobalArgs;
use crate::stream::{scan_x, RowSelection};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad file.
    file: PathBuf,
    /// Also stream X once (as every command's first pass does) and print its totals and read
    /// rate: rows, stored values, their sum, seconds and stored values per second.
    #[arg(long)]
    stats: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    print!("{}", crate::io::inspect::describe(&a.file)?);
    if a.stats {
        let t = Instant::now();
        let s = scan_x(&a.file, RowSelection::All, g.stream_options())?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "X pass: {} rows, {} stored values, sum {}, {secs:.3} s, {:.3e} stored values/s",
            s.rows,
            s.nnz,
            s.sum,
            s.nnz as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}
