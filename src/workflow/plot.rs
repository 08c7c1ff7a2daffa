//! `scoop plot`: an embedding (`obsm/X_umap`, ...) colored by obs columns, one panel per key
//! stacked, as scanpy's `pl.embedding(adata, basis, color=[...], ncols=1)` draws it.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::io::{ColumnValues, DenseRowReader, Element, H5adReader};
use crate::plot::palette::{default_palette, parse_hex};
use crate::plot::{figure, Coloring, FigureFormat, Panel, PlotOptions};

/// Everything `scoop plot` needs.
#[derive(Clone, Debug)]
pub struct PlotRunOptions {
    /// Input `.h5ad` with `obsm/<basis>` or `obsm/X_<basis>`.
    pub input: PathBuf,
    /// Output figure (PNG, SVG or PDF; see [`plot_as`]).
    pub output: PathBuf,
    /// Embedding name: the obsm key itself, else with `X_` put before it (`umap` reads
    /// `obsm/X_umap`).
    pub basis: String,
    /// obs columns to color by, one panel each.
    pub color: Vec<String>,
    /// Side of each square plot area in pixels.
    pub size_px: u32,
    /// Dots per inch (scales point size, text and lines).
    pub dpi: f32,
    /// Point size (matplotlib's s, points²); `None` = 120000 / cells.
    pub point_size: Option<f32>,
    /// Overwrite an existing output.
    pub force: bool,
}

/// The coloring of an obs column.
#[derive(Clone, Debug, PartialEq)]
pub enum ObsColoring {
    /// Categories (categorical, string and boolean columns).
    Categorical {
        /// Category of each cell, −1 for missing.
        codes: Vec<i32>,
        /// Category labels.
        categories: Vec<String>,
        /// One color per category.
        colors: Vec<[u8; 3]>,
    },
    /// Numbers (integer and float columns), drawn with viridis and a colorbar as scanpy draws
    /// a numeric column; NaN and ±∞ are missing.
    Continuous(Vec<f32>),
}

impl ObsColoring {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            ObsColoring::Categorical { codes, .. } => codes.len(),
            ObsColoring::Continuous(v) => v.len(),
        }
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How an obs column colors: categories with their codes and labels, or numbers.
enum Read {
    Categories(Vec<i32>, Vec<String>),
    Numbers(Vec<f32>),
}

/// An obs column read for coloring: categoricals as stored; strings and booleans by their
/// sorted distinct values (as pandas makes categories); integers and floats as numbers (scanpy
/// colors a numeric column on a continuous scale).
fn read_coloring(values: ColumnValues, path: &std::path::Path, key: &str) -> Result<Read> {
    match values {
        ColumnValues::Categorical {
            codes, categories, ..
        } => Ok(Read::Categories(
            codes,
            (0..categories.len()).map(|i| categories.label(i)).collect(),
        )),
        ColumnValues::Strings(s) => Ok(by_value(s.into_iter().map(|v| (0, v)).collect())),
        ColumnValues::Array(v) if v.dtype().name() == "bool" => {
            let f = v.to_f64();
            Ok(by_value(
                (0..v.len()).map(|i| (f[i] as i128, v.display(i))).collect(),
            ))
        }
        ColumnValues::Array(v) => Ok(Read::Numbers(
            v.to_f64().into_iter().map(|x| x as f32).collect(),
        )),
        other => Err(Error::format(
            path,
            format!("/obs/{key}"),
            format!("{} columns cannot color a plot", other.encoding()),
        )),
    }
}

/// Codes into the sorted distinct (sort key, label) pairs, and their labels.
fn by_value(sortable: Vec<(i128, String)>) -> Read {
    let mut distinct = sortable.clone();
    distinct.sort();
    distinct.dedup();
    let cats: Vec<String> = distinct.iter().map(|d| d.1.clone()).collect();
    let codes = sortable
        .iter()
        .map(|v| distinct.binary_search(v).expect("present") as i32)
        .collect();
    Read::Categories(codes, cats)
}

/// The coloring of obs column `key`. Categories take their colors from `uns/<key>_colors`
/// when it lists one per category, else scanpy's default palette for that many categories.
pub fn coloring(reader: &H5adReader, key: &str) -> Result<ObsColoring> {
    let obs = reader.obs_reader()?;
    if !obs.column_names().iter().any(|c| c == key) {
        return Err(Error::format(
            reader.path(),
            format!("/obs/{key}"),
            format!(
                "no such obs column (columns: {})",
                obs.column_names().join(", ")
            ),
        ));
    }
    let values = obs.read_column(key, 0..obs.len())?;
    let (codes, categories) = match read_coloring(values, reader.path(), key)? {
        Read::Numbers(v) => return Ok(ObsColoring::Continuous(v)),
        Read::Categories(codes, categories) => (codes, categories),
    };
    let stored = format!("{key}_colors");
    let mut colors = None;
    if reader.keys("uns")?.contains(&stored) {
        if let Ok(Element::StringArray { values, .. }) = reader.element("uns", &stored) {
            let parsed: Option<Vec<[u8; 3]>> = values.iter().map(|c| parse_hex(c)).collect();
            colors = parsed.filter(|p| p.len() == categories.len());
        }
    }
    let colors = colors.unwrap_or_else(|| default_palette(categories.len()));
    Ok(ObsColoring::Categorical {
        codes,
        categories,
        colors,
    })
}

/// The axis name of a basis, as scanpy's `_basis2name`: `UMAP`, `PC`, `tSNE`, `DC` for umap, pca,
/// tsne and diffmap, the upper-cased layout of a `draw_graph_*` basis, else the basis as given
/// (axes are then labelled `<name>1`, `<name>2`).
pub fn axis_name(basis: &str) -> String {
    match basis {
        "umap" => "UMAP".into(),
        "pca" => "PC".into(),
        "tsne" => "tSNE".into(),
        "diffmap" => "DC".into(),
        b if b.contains("draw_graph") => b.replace("draw_graph_", "").to_uppercase(),
        b => b.into(),
    }
}

/// Draws the plot and writes it in the format its output's extension names (`.png`, `.svg`,
/// `.pdf`; PNG without an extension): [`plot_as`] with no format given.
pub fn plot(opts: &PlotRunOptions) -> Result<PathBuf> {
    plot_as(opts, None)
}

/// Draws the plot and writes it (staged, committed when complete) in `format`, or when `None`
/// in the format the output's extension names (PNG without an extension). Errors with
/// [`Error::InvalidArgument`] when a given format and a known extension disagree, or when
/// none is given and the extension names no format.
pub fn plot_as(opts: &PlotRunOptions, format: Option<FigureFormat>) -> Result<PathBuf> {
    let set = super::single_output(&opts.input, &opts.output, opts.force)?;
    let format = FigureFormat::resolve(format, &opts.output)?;
    if opts.color.is_empty() {
        return Err(Error::InvalidArgument("--color names no obs column".into()));
    }
    let reader = H5adReader::open(&opts.input)?;
    // As scanpy's `_get_basis`: obsm/<basis> itself, else obsm/X_<basis>.
    let keys = reader.keys("obsm")?;
    let key = match [opts.basis.clone(), format!("X_{}", opts.basis)]
        .into_iter()
        .find(|k| keys.contains(k))
    {
        Some(k) => k,
        None => {
            return Err(Error::format(
                reader.path(),
                format!("/obsm/X_{}", opts.basis),
                format!(
                    "not found, nor /obsm/{} (run `scoop {}` first)",
                    opts.basis, opts.basis
                ),
            ))
        }
    };
    let obsm = reader.group("obsm")?;
    let r = DenseRowReader::open(&obsm, &key)?;
    let (n, d) = r.shape();
    if d < 2 {
        return Err(Error::format(
            reader.path(),
            format!("/obsm/{key}"),
            "needs 2 columns",
        ));
    }
    let xy = r.read_all(2, 1 << 16)?;
    let x: Vec<f32> = xy.iter().step_by(2).copied().collect();
    let y: Vec<f32> = xy.iter().skip(1).step_by(2).copied().collect();
    let colorings: Vec<ObsColoring> = opts
        .color
        .iter()
        .map(|k| coloring(&reader, k))
        .collect::<Result<_>>()?;
    for (c, k) in colorings.iter().zip(&opts.color) {
        if c.len() != n {
            return Err(Error::format(
                reader.path(),
                format!("/obs/{k}"),
                format!("has {} rows, {key} has {n}", c.len()),
            ));
        }
    }
    let panels: Vec<Panel> = colorings
        .iter()
        .zip(&opts.color)
        .map(|(c, k)| Panel {
            title: k.clone(),
            coloring: match c {
                ObsColoring::Categorical {
                    codes,
                    categories,
                    colors,
                } => Coloring::Categorical {
                    categories: categories.clone(),
                    colors: colors.clone(),
                    codes,
                },
                ObsColoring::Continuous(values) => Coloring::Continuous { values },
            },
        })
        .collect();
    let label = axis_name(&opts.basis);
    let fig = figure(
        &x,
        &y,
        &panels,
        &PlotOptions {
            width_px: opts.size_px,
            dpi: opts.dpi,
            point_size: opts.point_size,
            axis_labels: (format!("{label}1"), format!("{label}2")),
        },
    )?;
    fig.write(set.staged(&opts.output), format)?;
    set.commit()?;
    Ok(opts.output.clone())
}
