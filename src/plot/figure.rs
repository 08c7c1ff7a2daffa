//! A laid-out figure as a list of drawing items in pixel coordinates, and the formats it is
//! written in: a PNG raster, or an SVG or PDF vector figure whose frames, text and legend
//! markers are vectors and whose scatter points are one embedded image (matplotlib's
//! `rasterized=True`, which scanpy sets for large numbers of points).

use super::{raster, svg, Image};
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

/// The file format of a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FigureFormat {
    /// 8-bit RGB PNG at the figure's dpi.
    #[default]
    Png,
    /// SVG 1.1: vector frames, text and markers; the points as an embedded PNG.
    Svg,
    /// PDF 1.4, one page: vector frames, text (DejaVu Sans embedded) and markers; the points as
    /// an embedded image.
    Pdf,
}

impl FigureFormat {
    /// All formats.
    pub const ALL: [FigureFormat; 3] = [FigureFormat::Png, FigureFormat::Svg, FigureFormat::Pdf];

    /// The file extension (lower case, no dot).
    pub fn extension(self) -> &'static str {
        match self {
            FigureFormat::Png => "png",
            FigureFormat::Svg => "svg",
            FigureFormat::Pdf => "pdf",
        }
    }

    /// The format named by `path`'s extension (case-insensitive): `Ok(None)` without an
    /// extension, an [`Error::InvalidArgument`] for an extension that names no format.
    pub fn from_path(path: &Path) -> Result<Option<FigureFormat>> {
        let Some(ext) = path.extension() else {
            return Ok(None);
        };
        let ext = ext.to_string_lossy();
        ext.parse().map(Some).map_err(|_| {
            Error::InvalidArgument(format!(
                "{}: cannot tell the figure format from extension .{ext} (png, svg or pdf; or \
                 pass --format)",
                path.display()
            ))
        })
    }

    /// The format to write `path` in: `given` when set, else the one its extension names, else
    /// PNG (matplotlib's `savefig` rule). Errors when `given` and a known extension disagree,
    /// or when nothing is given and the extension names no format.
    pub fn resolve(given: Option<FigureFormat>, path: &Path) -> Result<FigureFormat> {
        let from_ext = match given {
            Some(_) => {
                let ext = path.extension().map(|e| e.to_string_lossy().to_string());
                ext.and_then(|e| e.parse::<FigureFormat>().ok())
            }
            None => FigureFormat::from_path(path)?,
        };
        match (given, from_ext) {
            (Some(g), Some(e)) if g != e => Err(Error::InvalidArgument(format!(
                "{}: format {} does not match the extension .{}",
                path.display(),
                g.extension(),
                path.extension().unwrap_or_default().to_string_lossy()
            ))),
            (Some(g), _) => Ok(g),
            (None, e) => Ok(e.unwrap_or_default()),
        }
    }
}

impl FromStr for FigureFormat {
    type Err = String;

    /// `png`, `svg` or `pdf`, in any case.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        FigureFormat::ALL
            .into_iter()
            .find(|f| f.extension().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown figure format {s:?} (png, svg or pdf)"))
    }
}

impl std::fmt::Display for FigureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// Horizontal alignment of a text run on its anchor point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// The run starts at the point.
    Start,
    /// The run is centred on the point.
    Middle,
}

impl Anchor {
    /// Where a run of `width` pixels anchored at `(x, y)` starts; an `up` run (rotated to read
    /// bottom to top) is shifted along y instead of x.
    pub(crate) fn start(self, x: f64, y: f64, width: f64, up: bool) -> (f64, f64) {
        let shift = match self {
            Anchor::Start => 0.0,
            Anchor::Middle => width / 2.0,
        };
        if up {
            (x, y + shift)
        } else {
            (x - shift, y)
        }
    }
}

/// One thing drawn, in pixels from the figure's top-left corner (y down).
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// A filled axis-aligned rectangle.
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        color: [u8; 3],
    },
    /// A filled circle (a legend marker).
    Disc {
        cx: f64,
        cy: f64,
        diameter: f64,
        color: [u8; 3],
    },
    /// A run of black text at em size `px` on the baseline through (`x`, `y`); `up` rotates it
    /// 90° counter-clockwise about that point.
    Text {
        x: f64,
        y: f64,
        text: String,
        px: f32,
        anchor: Anchor,
        up: bool,
    },
    /// An image placed with its top-left corner at (`x`, `y`), one image pixel per figure
    /// pixel (the points of a panel, a colorbar's scale).
    Image { x: f64, y: f64, image: Image },
}

/// A laid-out figure: its size in pixels at `dpi` and what it draws, in order.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Dots per inch: a vector figure is `width * 72 / dpi` points wide.
    pub dpi: f32,
    pub(crate) items: Vec<Item>,
}

impl Figure {
    /// The figure as an RGB raster.
    pub fn rasterize(&self) -> Image {
        raster::rasterize(self)
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> Result<String> {
        svg::to_svg(self)
    }

    /// The figure as a one-page PDF document.
    pub fn to_pdf(&self) -> Result<Vec<u8>> {
        super::pdf::to_pdf(self)
    }

    /// The figure's bytes in `format`.
    pub fn encode(&self, format: FigureFormat) -> Result<Vec<u8>> {
        match format {
            FigureFormat::Png => self.rasterize().encode_png(),
            FigureFormat::Svg => self.to_svg().map(String::into_bytes),
            FigureFormat::Pdf => self.to_pdf(),
        }
    }

    /// Writes the figure in `format` at `path` (created or truncated).
    pub fn write(&self, path: &Path, format: FigureFormat) -> Result<()> {
        let bytes = self.encode(format)?;
        let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(path, e))?;
        f.flush().map_err(|e| Error::io(path, e))
    }

    /// Factor from figure pixels to points.
    pub(crate) fn pt_per_px(&self) -> f64 {
        72.0 / f64::from(self.dpi)
    }
}
