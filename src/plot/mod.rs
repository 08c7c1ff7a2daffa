//! A small rasterizer for scanpy-style embedding plots.
//!
//! [`render`] draws what `sc.pl.umap(adata, color=[k1, k2, ...], ncols=1)` draws: one panel
//! per key, stacked vertically, each a framed square scatter plot without ticks, with the key
//! as title and axis labels at the bottom and left. Points are opaque discs sized by
//! matplotlib's rule (`s` is the marker area in pt², default `120000 / n_points` as in
//! scanpy). A categorical key has a legend of its categories in the right margin; points with
//! a missing category are drawn first in [`palette::NA_COLOR`], the rest in input order. A
//! continuous key is coloured by viridis between its smallest and largest value, with a
//! colorbar in the right margin; missing values (NaN, ±∞) are drawn first in the NA colour, the
//! rest in ascending order of value (scanpy's `sort_order`, ties in reverse input order), so
//! high values stay visible. Text is DejaVu Sans (matplotlib's default font) at matplotlib's
//! default sizes: titles 12 pt, axis and legend labels 10 pt, at `px = pt * dpi / 72`.
//!
//! [`figure`] lays the panels out as a [`Figure`], which is written as a PNG raster or as an
//! SVG or PDF vector figure (see [`FigureFormat`]); [`render`] rasterizes it into an [`Image`].

mod figure;
pub mod palette;
mod pdf;
mod raster;
mod svg;
mod text;

#[cfg(test)]
mod tests;

use crate::{Error, Result};
use palette::NA_COLOR;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;
use text::{ascent, descent, text_width};

use figure::{Anchor, Item};
pub use figure::{Figure, FigureFormat};

/// The largest accepted [`PlotOptions::width_px`].
const MAX_SIDE_PX: u32 = 16384;

/// One panel: a colouring of the points.
#[derive(Debug, Clone)]
pub struct Panel<'a> {
    /// Title drawn above the panel (usually the obs key).
    pub title: String,
    /// How the points are coloured.
    pub coloring: Coloring<'a>,
}

/// How a panel colours its points.
#[derive(Debug, Clone)]
pub enum Coloring<'a> {
    /// A category per point, with a legend.
    Categorical {
        /// Category labels, in legend order.
        categories: Vec<String>,
        /// One RGB colour per category (see [`palette::default_palette`]).
        colors: Vec<[u8; 3]>,
        /// Per point, the index into `categories`; any negative value means missing (NA).
        codes: &'a [i32],
    },
    /// A number per point (NaN or ±∞: missing), viridis between the smallest and largest, with a
    /// colorbar.
    Continuous {
        /// Per point, its value.
        values: &'a [f32],
    },
}

/// Size and style settings shared by all panels.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Side length in pixels of each panel's square plot area (inside the frame).
    pub width_px: u32,
    /// Dots per inch: converts point sizes (pt) of markers, text and lines to pixels.
    pub dpi: f32,
    /// matplotlib `scatter` marker area `s` in pt²; `None` uses scanpy's `120000 / n_points`.
    pub point_size: Option<f32>,
    /// Axis labels (x, y), e.g. `("UMAP1", "UMAP2")`.
    pub axis_labels: (String, String),
}

impl Default for PlotOptions {
    /// A 480 px plot area at 100 dpi, scanpy's default point size, UMAP axis labels.
    fn default() -> Self {
        PlotOptions {
            width_px: 480,
            dpi: 100.0,
            point_size: None,
            axis_labels: ("UMAP1".to_string(), "UMAP2".to_string()),
        }
    }
}

/// An 8-bit RGB raster, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, row-major, R G B per pixel.
    pub rgb: Vec<u8>,
}

impl Image {
    /// A white image of the given size.
    fn white(width: u32, height: u32) -> Self {
        Image {
            width,
            height,
            rgb: vec![255; width as usize * height as usize * 3],
        }
    }

    /// The colour of pixel (`x`, `y`), `(0, 0)` being the top-left corner.
    ///
    /// Panics if the pixel lies outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside image"
        );
        let o = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[o], self.rgb[o + 1], self.rgb[o + 2]]
    }

    /// Fills the rectangle at (`x`, `y`) of size `w` x `h`, clipped to the image.
    fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + w).min(i64::from(self.width));
        let y1 = (y + h).min(i64::from(self.height));
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let width = self.width as usize;
        for row in y0 as usize..y1 as usize {
            let start = (row * width + x0 as usize) * 3;
            let end = (row * width + x1 as usize) * 3;
            for px in self.rgb[start..end].chunks_exact_mut(3) {
                px.copy_from_slice(&color);
            }
        }
    }

    /// Fills the disc described by `mask` centred on pixel (`cx`, `cy`), clipped to the image.
    fn fill_disc(&mut self, cx: i64, cy: i64, mask: &DiscMask, color: [u8; 3]) {
        for &(dy, x0, x1) in &mask.spans {
            let (dy, x0, x1) = (i64::from(dy), i64::from(x0), i64::from(x1));
            self.fill_rect(cx + x0, cy + dy, x1 - x0 + 1, 1, color);
        }
    }

    /// Copies `src` with its top-left corner at (`x`, `y`), clipped to the image.
    fn blit(&mut self, x: i64, y: i64, src: &Image) {
        let x0 = x.max(0);
        let x1 = (x + i64::from(src.width)).min(i64::from(self.width));
        if x0 >= x1 {
            return;
        }
        let (sw, dw) = (src.width as usize * 3, self.width as usize * 3);
        for r in 0..i64::from(src.height) {
            let row = y + r;
            if row < 0 || row >= i64::from(self.height) {
                continue;
            }
            let s0 = r as usize * sw + (x0 - x) as usize * 3;
            let d0 = row as usize * dw + x0 as usize * 3;
            let len = (x1 - x0) as usize * 3;
            self.rgb[d0..d0 + len].copy_from_slice(&src.rgb[s0..s0 + len]);
        }
    }

    /// The image as an 8-bit RGB PNG file's bytes.
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let enc_err =
            |e: png::EncodingError| Error::InvalidArgument(format!("PNG encoding failed: {e}"));
        let mut writer = encoder.write_header().map_err(enc_err)?;
        writer.write_image_data(&self.rgb).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
        Ok(out)
    }

    /// Writes the image as an 8-bit RGB PNG at `path` (created or truncated).
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let bytes = self.encode_png()?;
        let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        file.write_all(&bytes).map_err(|e| Error::io(path, e))?;
        file.flush().map_err(|e| Error::io(path, e))
    }
}

/// A filled disc as horizontal spans `(dy, dx_first, dx_last)` relative to its centre pixel.
#[derive(Debug, Clone)]
struct DiscMask {
    /// Inclusive spans, one per row.
    spans: Vec<(i32, i32, i32)>,
    /// Rows (and columns) reach `-reach ..= reach` around the centre.
    reach: i32,
}

impl DiscMask {
    /// The pixels whose centres lie within `diameter / 2` of the centre pixel's centre
    /// (always at least the centre pixel).
    fn new(diameter: f64) -> Self {
        let r = (diameter.max(1.0) / 2.0).min(4096.0);
        let r2 = r * r + 1e-9;
        let reach = r.floor() as i32;
        let mut spans = Vec::new();
        for dy in -reach..=reach {
            let half = (r2 - f64::from(dy * dy)).max(0.0).sqrt().floor() as i32;
            spans.push((dy, -half, half));
        }
        DiscMask { spans, reach }
    }
}

/// Text sizes and spacings at a dpi, from matplotlib's rcParams defaults (sizes in pt,
/// converted at `px = pt * dpi / 72`).
#[derive(Debug, Clone)]
struct Style {
    /// Pixels per point.
    pt: f64,
    /// Title em size (`axes.titlesize` = large = 12 pt).
    title_px: f32,
    /// Em size of axis labels, legend labels and colorbar tick labels (`axes.labelsize`,
    /// `legend.fontsize`, `ytick.labelsize` = medium = 10 pt).
    label_px: f32,
    /// Frame line width (`axes.linewidth` = 0.8 pt), at least one pixel.
    lw: i64,
    /// Blank margin around the figure (`savefig.pad_inches` = 0.1 in).
    pad: i64,
    /// Gap between the frame and the title's baseline (`axes.titlepad` = 6 pt).
    title_pad: i64,
    /// Gap between the frame and an axis label's box (`axes.labelpad` = 4 pt).
    label_pad: i64,
    /// Height of a label line box (ascent + descent), rounded up.
    label_line: i64,
    /// Ascent of a label line.
    label_ascent: f64,
    /// Descent of a label line.
    label_descent: f64,
    /// Ascent of the title, rounded up.
    title_ascent: i64,
}

impl Style {
    fn new(dpi: f32) -> Self {
        let pt = f64::from(dpi) / 72.0;
        let (title_px, label_px) = ((12.0 * pt) as f32, (10.0 * pt) as f32);
        let (la, ld) = (f64::from(ascent(label_px)), f64::from(descent(label_px)));
        Style {
            pt,
            title_px,
            label_px,
            lw: frame_width(dpi),
            pad: (7.2 * pt).round() as i64,
            title_pad: (6.0 * pt).round() as i64,
            label_pad: (4.0 * pt).round() as i64,
            label_line: (la + ld).ceil() as i64,
            label_ascent: la,
            label_descent: ld,
            title_ascent: f64::from(ascent(title_px)).ceil() as i64,
        }
    }

    /// Width of `s` at the label size, rounded up.
    fn label_width(&self, s: &str) -> i64 {
        f64::from(text_width(s, self.label_px)).ceil() as i64
    }

    /// A label-size text item.
    fn label(&self, x: f64, y: f64, s: &str, anchor: Anchor, up: bool) -> Item {
        Item::Text {
            x,
            y,
            text: s.to_string(),
            px: self.label_px,
            anchor,
            up,
        }
    }
}

/// Line width of the axes frame in pixels (matplotlib's 0.8 pt).
fn frame_width(dpi: f32) -> i64 {
    ((0.8 * dpi / 72.0).round() as i64).max(1)
}

/// The right-margin legend of one panel.
#[derive(Debug, Clone)]
struct Legend {
    /// Label and colour of each entry, in order (NA last when present).
    entries: Vec<Entry>,
    /// Number of entries in each column (filled column by column).
    col_rows: Vec<usize>,
    /// Width of each column in pixels.
    col_widths: Vec<i64>,
    /// Total width in pixels (0 without entries).
    width: i64,
    /// Total height in pixels (0 without entries).
    height: i64,
}

/// Legend metrics, from matplotlib's `legend.*` rcParams in units of the legend font size.
#[derive(Debug, Clone)]
struct LegendStyle {
    /// Width of the marker slot (`handlelength` = 2); the marker is centred in it.
    handle: i64,
    /// Gap between marker slot and label (`handletextpad` = 0.8).
    text_pad: i64,
    /// Gap between columns (`columnspacing` = 2).
    col_gap: i64,
    /// Height of one entry's line box.
    line: i64,
    /// Vertical distance between consecutive entries (line plus `labelspacing` = 0.5).
    pitch: i64,
    /// Marker diameter (matplotlib's default marker size, 6 pt).
    marker: f64,
    /// Gap between the frame and the legend's entries (`borderaxespad` + `borderpad`).
    gap: i64,
}

impl LegendStyle {
    fn new(style: &Style) -> Self {
        let fs = f64::from(style.label_px);
        LegendStyle {
            handle: (2.0 * fs).round() as i64,
            text_pad: (0.8 * fs).round() as i64,
            col_gap: (2.0 * fs).round() as i64,
            line: style.label_line,
            pitch: style.label_line + (0.5 * fs).round() as i64,
            marker: (6.0 * style.pt).round().max(1.0),
            gap: (0.9 * fs).round() as i64,
        }
    }
}

impl Legend {
    fn new(entries: Vec<Entry>, style: &Style, ls: &LegendStyle) -> Self {
        let n = entries.len();
        if n == 0 {
            return Legend {
                entries,
                col_rows: Vec::new(),
                col_widths: Vec::new(),
                width: 0,
                height: 0,
            };
        }
        // scanpy: one column up to 14 entries, two up to 30, else three.
        let ncols = if n <= 14 {
            1
        } else if n <= 30 {
            2
        } else {
            3
        };
        // matplotlib fills columns top to bottom; the first `n % ncols` get one more entry.
        let (rows, large) = (n / ncols, n % ncols);
        let col_rows: Vec<usize> = (0..ncols).map(|c| rows + usize::from(c < large)).collect();
        let mut col_widths = Vec::with_capacity(ncols);
        let mut start = 0;
        for &r in &col_rows {
            let text = entries[start..start + r]
                .iter()
                .map(|(label, _)| style.label_width(label))
                .max()
                .unwrap_or(0);
            col_widths.push(ls.handle + ls.text_pad + text);
            start += r;
        }
        let width = col_widths.iter().sum::<i64>() + (ncols as i64 - 1) * ls.col_gap;
        let max_rows = col_rows[0] as i64;
        let height = (max_rows - 1) * ls.pitch + ls.line;
        Legend {
            entries,
            col_rows,
            col_widths,
            width,
            height,
        }
    }

    /// The legend's items with its top-left corner at (`left`, `top`).
    fn draw(&self, items: &mut Vec<Item>, left: i64, top: i64, style: &Style, ls: &LegendStyle) {
        let mut entries = self.entries.iter();
        let mut x = left;
        for (&rows, &w) in self.col_rows.iter().zip(&self.col_widths) {
            for row in 0..rows as i64 {
                let Some((label, color)) = entries.next() else {
                    return;
                };
                let y = top + row * ls.pitch;
                items.push(Item::Disc {
                    cx: (x + ls.handle / 2) as f64,
                    cy: (y + ls.line / 2) as f64,
                    diameter: ls.marker,
                    color: *color,
                });
                items.push(style.label(
                    (x + ls.handle + ls.text_pad) as f64,
                    y as f64 + style.label_ascent,
                    label,
                    Anchor::Start,
                    false,
                ));
            }
            x += w + ls.col_gap;
        }
    }
}

/// The right-margin key of a panel.
enum Key {
    /// Categories and their colours.
    Legend(Legend),
    /// The colour scale of a continuous key.
    Colorbar(Colorbar),
}

impl Key {
    fn width(&self) -> i64 {
        match self {
            Key::Legend(l) => l.width,
            Key::Colorbar(c) => c.width,
        }
    }

    fn height(&self) -> i64 {
        match self {
            Key::Legend(l) => l.height,
            Key::Colorbar(c) => c.height,
        }
    }
}

/// A vertical colour scale as tall as the plot area (matplotlib's `colorbar(aspect=30)`), with
/// ticks at round values labelled on the right.
struct Colorbar {
    /// The values at the bottom and the top.
    lo: f64,
    hi: f64,
    /// Tick values and labels, ascending.
    ticks: Vec<(f64, String)>,
    /// Bar width.
    bar: i64,
    /// Tick length (`ytick.major.size` = 3.5 pt).
    tick: i64,
    /// Gap between tick and label (`ytick.major.pad` = 3.5 pt).
    tick_pad: i64,
    /// Total width and height in pixels.
    width: i64,
    height: i64,
}

impl Colorbar {
    fn new(lo: f64, hi: f64, side: i64, style: &Style) -> Self {
        let lw = style.lw;
        let (bar, tick) = ((side / 30).max(2), ((3.5 * style.pt).round() as i64).max(2));
        let tick_pad = (3.5 * style.pt).round() as i64;
        let ticks = ticks(lo, hi);
        let label_w = ticks
            .iter()
            .map(|t| style.label_width(&t.1))
            .max()
            .unwrap_or(0);
        Colorbar {
            lo,
            hi,
            ticks,
            bar,
            tick,
            tick_pad,
            width: lw + bar + lw + tick + tick_pad + label_w,
            height: side,
        }
    }

    /// The colorbar's items with its top-left corner (frame included) at (`left`, `top`).
    fn draw(&self, items: &mut Vec<Item>, left: i64, top: i64, style: &Style) {
        let black = [0, 0, 0];
        let lw = style.lw;
        let (x0, h) = (left + lw, self.height);
        let mut scale = Image::white(self.bar as u32, h as u32);
        for r in 0..h {
            let t = ((h - 1 - r) as f64 + 0.5) / h as f64;
            scale.fill_rect(0, r, self.bar, 1, palette::viridis(t));
        }
        items.push(Item::Image {
            x: x0 as f64,
            y: top as f64,
            image: scale,
        });
        let rect = |x: i64, y: i64, w: i64, h: i64| Item::Rect {
            x: x as f64,
            y: y as f64,
            w: w as f64,
            h: h as f64,
            color: black,
        };
        items.push(rect(left, top - lw, self.bar + 2 * lw, lw));
        items.push(rect(left, top + h, self.bar + 2 * lw, lw));
        items.push(rect(left, top, lw, h));
        items.push(rect(x0 + self.bar, top, lw, h));
        let right = x0 + self.bar + lw;
        // Labels are centred on their tick by the height of a digit (the cap height).
        let half_cap = 0.729 / 2.0 * f64::from(style.label_px);
        for (v, label) in &self.ticks {
            let f = if self.hi > self.lo {
                (v - self.lo) / (self.hi - self.lo)
            } else {
                0.5
            };
            let y = top + ((1.0 - f) * (h - 1) as f64).round() as i64;
            items.push(rect(right, y - lw / 2, self.tick, lw));
            items.push(style.label(
                (right + self.tick + self.tick_pad) as f64,
                y as f64 + half_cap,
                label,
                Anchor::Start,
                false,
            ));
        }
    }
}

/// Round tick values within [`lo`, `hi`] (steps of 1, 2, 2.5 or 5 times a power of ten, at
/// most six ticks, as matplotlib's `MaxNLocator` picks them) with labels that show the step's
/// digits.
fn ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let label = |v: f64, decimals: usize| {
        let s = format!("{v:.decimals$}");
        if s.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            format!("{:.decimals$}", 0.0)
        } else {
            s
        }
    };
    if !(hi - lo).is_finite() || hi <= lo {
        let decimals = if lo.fract() == 0.0 { 0 } else { 3 };
        return vec![(lo, label(lo, decimals))];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let mult = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&m| m * mag >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0);
    let step = mult * mag;
    let decimals = (-(step.log10().floor()) as i64 + i64::from(mult == 2.5)).max(0) as usize;
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            (v, label(v, decimals))
        })
        .collect()
}

/// Where everything goes.
#[derive(Debug, Clone)]
struct Layout {
    /// Frame line width.
    lw: i64,
    /// Plot-area side.
    side: i64,
    /// First pixel column of every plot area.
    plot_left: i64,
    /// First pixel column of every legend or colorbar.
    legend_left: i64,
    /// Per panel: first pixel row of its plot area, and the top row of its legend or colorbar.
    panels: Vec<(i64, i64)>,
    /// Image size.
    width: u32,
    height: u32,
}

impl Layout {
    fn new(keys: &[Key], opts: &PlotOptions, style: &Style, ls: &LegendStyle) -> Self {
        let lw = style.lw;
        let side = i64::from(opts.width_px);
        // Left margin: pad, rotated y label, label pad, frame.
        let plot_left = style.pad + style.label_line + style.label_pad + lw;
        let legend_left = plot_left + side + lw + ls.gap;
        let legend_w = keys.iter().map(Key::width).max().unwrap_or(0);
        let width = if legend_w > 0 {
            legend_left + legend_w + style.pad
        } else {
            plot_left + side + lw + style.pad
        };
        // Above the plot: pad, title ascent, title pad, frame; below: frame, label pad, x
        // label, pad.
        let head = style.pad + style.title_ascent + style.title_pad + lw;
        let foot = lw + style.label_pad + style.label_line + style.pad;
        let mut y = 0;
        let mut panels = Vec::with_capacity(keys.len());
        for key in keys {
            let inner = side.max(key.height());
            let plot_top = y + head + (inner - side) / 2;
            let legend_top = y + head + (inner - key.height()) / 2;
            panels.push((plot_top, legend_top));
            y += head + inner + foot;
        }
        Layout {
            lw,
            side,
            plot_left,
            legend_left,
            panels,
            width: width as u32,
            height: y.max(1) as u32,
        }
    }
}

/// Axis limits as matplotlib's autoscaling picks them for a scatter: the data range of the
/// finite points widened by 5% on each side (a degenerate range is widened first).
fn limits(v: impl Iterator<Item = (f32, f32)>) -> ([f64; 2], [f64; 2]) {
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for (a, b) in v {
        if a.is_finite() && b.is_finite() {
            for (k, t) in [f64::from(a), f64::from(b)].into_iter().enumerate() {
                lo[k] = lo[k].min(t);
                hi[k] = hi[k].max(t);
            }
        }
    }
    let axis = |lo: f64, hi: f64| -> [f64; 2] {
        if lo > hi {
            return [0.0, 1.0]; // no finite points: matplotlib's empty axes
        }
        let (lo, hi) = if hi - lo <= 1e-12 * lo.abs().max(hi.abs()).max(1e-300) {
            let d = if lo == 0.0 { 0.05 } else { 0.05 * lo.abs() };
            (lo - d, hi + d)
        } else {
            (lo, hi)
        };
        let m = 0.05 * (hi - lo);
        [lo - m, hi + m]
    };
    (axis(lo[0], hi[0]), axis(lo[1], hi[1]))
}

/// Marks a point that is not drawn (non-finite coordinates).
const SKIP: [i32; 2] = [i32::MIN, i32::MIN];

/// Pixel position of every point relative to the plot area's top-left pixel (y upward in data).
fn project(x: &[f32], y: &[f32], side: i64) -> Vec<[i32; 2]> {
    let (xl, yl) = limits(x.iter().copied().zip(y.iter().copied()));
    let s = side as f64;
    let (sx, sy) = (s / (xl[1] - xl[0]), s / (yl[1] - yl[0]));
    x.par_iter()
        .zip(y.par_iter())
        .map(|(&a, &b)| {
            if !(a.is_finite() && b.is_finite()) {
                return SKIP;
            }
            let px = ((f64::from(a) - xl[0]) * sx).floor();
            let py = ((yl[1] - f64::from(b)) * sy).floor();
            // Finite points lie inside the limits; clamp only guards against rounding.
            [px.clamp(-1.0, s) as i32, py.clamp(-1.0, s) as i32]
        })
        .collect()
}

/// Draws one panel's points into its plot area in `paint.order`. The plot area is split into
/// row bands drawn in parallel; within a band points are drawn in order, so overlaps come out
/// as with a sequential draw.
fn draw_points(
    img: &mut Image,
    pts: &[[i32; 2]],
    paint: &Paint,
    mask: &DiscMask,
    plot_left: i64,
    plot_top: i64,
    side: i64,
) {
    let side_u = side as usize;
    let threads = rayon::current_num_threads().max(1);
    let n_bands = (threads * 4).min(side_u).max(1);
    let band_h = side_u.div_ceil(n_bands);
    let n_bands = side_u.div_ceil(band_h);
    let reach = mask.reach as i64;

    // Bucket point indices by the bands their disc touches, in drawing order.
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); n_bands];
    let mut push = |i: usize| {
        let py = i64::from(pts[i][1]);
        let r0 = (py - reach).max(0);
        let r1 = (py + reach).min(side - 1);
        if pts[i] == SKIP || r0 > r1 {
            return;
        }
        for bucket in &mut buckets[r0 as usize / band_h..=r1 as usize / band_h] {
            bucket.push(i as u32);
        }
    };
    paint.order.iter().for_each(|&i| push(i as usize));

    let width = img.width as usize;
    let row_bytes = width * 3;
    let start = plot_top as usize * row_bytes;
    let area = &mut img.rgb[start..start + side_u * row_bytes];
    area.par_chunks_mut(band_h * row_bytes)
        .zip(buckets.par_iter())
        .enumerate()
        .for_each(|(b, (band, bucket))| {
            let r0 = (b * band_h) as i64;
            let rows = (band.len() / row_bytes) as i64;
            for &i in bucket {
                let [px, py] = pts[i as usize];
                let color = paint.palette[paint.code[i as usize] as usize];
                for &(dy, dx0, dx1) in &mask.spans {
                    let r = i64::from(py) + i64::from(dy) - r0;
                    if r < 0 || r >= rows {
                        continue;
                    }
                    let xa = (i64::from(px) + i64::from(dx0)).max(0);
                    let xb = (i64::from(px) + i64::from(dx1)).min(side - 1);
                    if xa > xb {
                        continue;
                    }
                    let o = r as usize * row_bytes + (plot_left + xa) as usize * 3;
                    let e = r as usize * row_bytes + (plot_left + xb + 1) as usize * 3;
                    for p in band[o..e].chunks_exact_mut(3) {
                        p.copy_from_slice(&color);
                    }
                }
            }
        });
}

/// A legend entry: label and colour.
type Entry = (String, [u8; 3]);

/// What a panel draws: each point's colour and the drawing order.
struct Paint {
    /// The colours; the last is the NA colour.
    palette: Vec<[u8; 3]>,
    /// Per point, its index into `palette`.
    code: Vec<u32>,
    /// Every point once, in drawing order (later ones on top).
    order: Vec<u32>,
}

/// What a panel's right-margin key shows.
enum KeySpec {
    /// Legend entries (categories, then NA if any point's code is negative).
    Legend(Vec<Entry>),
    /// A colorbar over the finite values' range.
    Colorbar(f64, f64),
}

/// The paint and key of a categorical panel.
fn categorical(codes: &[i32], categories: &[String], colors: &[[u8; 3]]) -> (Paint, KeySpec) {
    let na = colors.len() as u32;
    let mut palette = colors.to_vec();
    palette.push(NA_COLOR);
    let code: Vec<u32> = codes
        .par_iter()
        .map(|&c| if c < 0 { na } else { c as u32 })
        .collect();
    // NA points first, then the rest in input order.
    let order: Vec<u32> = (0..code.len() as u32)
        .filter(|&i| code[i as usize] == na)
        .chain((0..code.len() as u32).filter(|&i| code[i as usize] != na))
        .collect();
    let mut entries: Vec<Entry> = categories.iter().cloned().zip(colors.to_vec()).collect();
    if order.first().is_some_and(|&i| code[i as usize] == na) {
        entries.push(("NA".to_string(), NA_COLOR));
    }
    (
        Paint {
            palette,
            code,
            order,
        },
        KeySpec::Legend(entries),
    )
}

/// The paint and key of a continuous panel: viridis over [min, max] of the finite values
/// (matplotlib's `Normalize`; every point gets the lowest colour when they are all equal),
/// non-finite values missing.
fn continuous(values: &[f32]) -> (Paint, KeySpec) {
    let (lo, hi) = values
        .par_iter()
        .filter(|v| v.is_finite())
        .map(|&v| (f64::from(v), f64::from(v)))
        .reduce(
            || (f64::INFINITY, f64::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        );
    let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
    let mut palette: Vec<[u8; 3]> = (0..palette::VIRIDIS.len())
        .map(palette::viridis_rgb)
        .collect();
    let na = palette.len() as u32;
    palette.push(NA_COLOR);
    let code: Vec<u32> = values
        .par_iter()
        .map(|&v| {
            if !v.is_finite() {
                return na;
            }
            let t = if hi > lo {
                (f64::from(v) - lo) / (hi - lo)
            } else {
                0.0
            };
            palette::viridis_index(t) as u32
        })
        .collect();
    // Missing first, then ascending by value, ties in reverse input order (scanpy draws
    // `argsort(-values, kind="stable")[::-1]`).
    let mut order: Vec<u32> = (0..values.len() as u32).collect();
    // Missing values all sort as one key (a total order: NaN and ±∞ never meet in a comparison).
    let key = |i: u32| {
        let v = values[i as usize];
        (v.is_finite(), if v.is_finite() { v } else { 0.0 })
    };
    order.par_sort_unstable_by(|&a, &b| {
        let ((fa, va), (fb, vb)) = (key(a), key(b));
        fa.cmp(&fb).then(va.total_cmp(&vb)).then(b.cmp(&a))
    });
    (
        Paint {
            palette,
            code,
            order,
        },
        KeySpec::Colorbar(lo, hi),
    )
}

/// Checks the inputs and returns each panel's paint and key.
fn check(
    x: &[f32],
    y: &[f32],
    panels: &[Panel],
    opts: &PlotOptions,
) -> Result<Vec<(Paint, KeySpec)>> {
    let bad = |m: String| Err(Error::InvalidArgument(m));
    if x.len() != y.len() {
        return bad(format!(
            "plot: {} x coordinates but {} y coordinates",
            x.len(),
            y.len()
        ));
    }
    if panels.is_empty() {
        return bad("plot: no panels to draw".to_string());
    }
    if opts.width_px == 0 || opts.width_px > MAX_SIDE_PX {
        return bad(format!(
            "plot: width_px must be in 1..={MAX_SIDE_PX}, got {}",
            opts.width_px
        ));
    }
    if !(opts.dpi.is_finite() && opts.dpi > 0.0 && opts.dpi <= 10000.0) {
        return bad(format!("plot: dpi must be positive, got {}", opts.dpi));
    }
    if let Some(s) = opts.point_size {
        if !(s.is_finite() && s >= 0.0) {
            return bad(format!(
                "plot: point size must be a non-negative number, got {s}"
            ));
        }
    }
    let mut all = Vec::with_capacity(panels.len());
    for p in panels {
        match &p.coloring {
            Coloring::Categorical {
                categories,
                colors,
                codes,
            } => {
                let ncat = categories.len();
                if colors.len() != ncat {
                    return bad(format!(
                        "plot: panel {:?}: {} categories but {} colours",
                        p.title,
                        ncat,
                        colors.len()
                    ));
                }
                if codes.len() != x.len() {
                    return bad(format!(
                        "plot: panel {:?}: {} codes for {} points",
                        p.title,
                        codes.len(),
                        x.len()
                    ));
                }
                if let Some(&c) = codes
                    .par_iter()
                    .find_any(|&&c| c >= 0 && c as usize >= ncat)
                {
                    return bad(format!(
                        "plot: panel {:?}: code {c} but {ncat} categories",
                        p.title
                    ));
                }
                all.push(categorical(codes, categories, colors));
            }
            Coloring::Continuous { values } => {
                if values.len() != x.len() {
                    return bad(format!(
                        "plot: panel {:?}: {} values for {} points",
                        p.title,
                        values.len(),
                        x.len()
                    ));
                }
                all.push(continuous(values));
            }
        }
    }
    Ok(all)
}

/// The parts [`plan`] lays out: paints, keys, positions and text metrics.
type Plan = (Vec<Paint>, Vec<Key>, Layout, (Style, LegendStyle));

/// Checks the inputs and lays out the figure.
fn plan(x: &[f32], y: &[f32], panels: &[Panel], opts: &PlotOptions) -> Result<Plan> {
    let specs = check(x, y, panels, opts)?;
    let style = Style::new(opts.dpi);
    let ls = LegendStyle::new(&style);
    let (paints, keys): (Vec<Paint>, Vec<Key>) = specs
        .into_iter()
        .map(|(paint, spec)| {
            let key = match spec {
                KeySpec::Legend(e) => Key::Legend(Legend::new(e, &style, &ls)),
                KeySpec::Colorbar(lo, hi) => {
                    Key::Colorbar(Colorbar::new(lo, hi, i64::from(opts.width_px), &style))
                }
            };
            (paint, key)
        })
        .unzip();
    let layout = Layout::new(&keys, opts, &style, &ls);
    Ok((paints, keys, layout, (style, ls)))
}

/// Lays out the panels (one per key, stacked top to bottom) for the points at (`x[i]`,
/// `y[i]`) as `sc.pl.embedding(..., color=keys, ncols=1)` would, the points of each panel
/// rasterized at `opts.dpi`.
///
/// Errors with [`Error::InvalidArgument`] when `x` and `y` differ in length, a panel's
/// `codes` or `values` do not have one entry per point, its codes hold one past its
/// categories, it has not one colour per category, there are no panels, or the options are
/// out of range.
pub fn figure(x: &[f32], y: &[f32], panels: &[Panel], opts: &PlotOptions) -> Result<Figure> {
    let (paints, keys, layout, (style, ls)) = plan(x, y, panels, opts)?;
    let mut items = Vec::new();

    let n = x.len();
    let s = opts
        .point_size
        .map_or(120000.0 / n.max(1) as f64, f64::from);
    let mask = DiscMask::new(s.sqrt() * f64::from(opts.dpi) / 72.0);
    let pts = project(x, y, layout.side);

    let (side, lw, left) = (layout.side, layout.lw, layout.plot_left);
    let black = [0, 0, 0];
    for (((panel, paint), key), &(top, key_top)) in
        panels.iter().zip(&paints).zip(&keys).zip(&layout.panels)
    {
        let mut area = Image::white(side as u32, side as u32);
        draw_points(&mut area, &pts, paint, &mask, 0, 0, side);
        items.push(Item::Image {
            x: left as f64,
            y: top as f64,
            image: area,
        });
        // Frame just outside the plot area.
        for (rx, ry, rw, rh) in [
            (left - lw, top - lw, side + 2 * lw, lw),
            (left - lw, top + side, side + 2 * lw, lw),
            (left - lw, top, lw, side),
            (left + side, top, lw, side),
        ] {
            items.push(Item::Rect {
                x: rx as f64,
                y: ry as f64,
                w: rw as f64,
                h: rh as f64,
                color: black,
            });
        }
        // Title centred above on its baseline, x label centred below, y label rotated on the
        // left with its box's right edge a label pad from the frame.
        let centre_x = (left * 2 + side) as f64 / 2.0;
        items.push(Item::Text {
            x: centre_x,
            y: (top - lw - style.title_pad) as f64,
            text: panel.title.clone(),
            px: style.title_px,
            anchor: Anchor::Middle,
            up: false,
        });
        let (xlabel, ylabel) = &opts.axis_labels;
        let below = (top + side + lw + style.label_pad) as f64 + style.label_ascent;
        items.push(style.label(centre_x, below, xlabel, Anchor::Middle, false));
        let beside = (left - lw - style.label_pad) as f64 - style.label_descent;
        let centre_y = (top * 2 + side) as f64 / 2.0;
        items.push(style.label(beside, centre_y, ylabel, Anchor::Middle, true));
        match key {
            Key::Legend(l) => l.draw(&mut items, layout.legend_left, key_top, &style, &ls),
            Key::Colorbar(c) => c.draw(&mut items, layout.legend_left, key_top, &style),
        }
    }
    Ok(Figure {
        width: layout.width,
        height: layout.height,
        dpi: opts.dpi,
        items,
    })
}

/// [`figure`] drawn into an RGB image.
pub fn render(x: &[f32], y: &[f32], panels: &[Panel], opts: &PlotOptions) -> Result<Image> {
    Ok(figure(x, y, panels, opts)?.rasterize())
}
