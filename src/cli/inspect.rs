use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad file.
    file: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    print!("{}", crate::io::inspect::describe(&a.file)?);
    Ok(())
}
