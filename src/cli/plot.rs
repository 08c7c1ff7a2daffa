use std::path::PathBuf;
use std::time::Instant;

use crate::cli::choices::FigureFormatArg;
use crate::workflow::plot::{plot_as, PlotRunOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad with the embedding (obsm/<basis> or obsm/X_<basis>).
    input: PathBuf,
    /// Embedding to draw: obsm/<basis>, else obsm/X_<basis> (as scanpy looks it up).
    #[arg(long, default_value = "umap")]
    basis: String,
    /// obs columns to color by (comma-separated), one panel each, stacked.
    #[arg(long, value_delimiter = ',', required = true)]
    color: Vec<String>,
    /// Output figure: .png, .svg or .pdf (the format, unless --format names it).
    #[arg(long)]
    out: PathBuf,
    /// Figure format; default: from --out's extension (PNG without one). A format that
    /// contradicts the extension is an error.
    #[arg(long, value_enum)]
    format: Option<FigureFormatArg>,
    /// Point size (matplotlib's s, in points²); default 120000 / cells, as scanpy.
    #[arg(long, allow_negative_numbers = true)]
    size: Option<f32>,
    /// Dots per inch.
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    dpi: f32,
    /// Side of each panel's plot area, in pixels.
    #[arg(long, default_value_t = 480)]
    panel_px: u32,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let t = Instant::now();
    let out = plot_as(
        &PlotRunOptions {
            input: a.input,
            output: a.out,
            basis: a.basis,
            color: a.color,
            size_px: a.panel_px,
            dpi: a.dpi,
            point_size: a.size,
            force: a.force,
        },
        a.format.map(Into::into),
    )?;
    println!("{:.2} s -> {}", t.elapsed().as_secs_f64(), out.display());
    Ok(())
}
