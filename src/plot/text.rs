//! Text from the embedded DejaVu Sans (matplotlib's default font): metrics for layout, kerned
//! glyph runs for the vector writers, and antialiased rasterization onto an [`Image`].
//!
//! Sizes are em sizes in pixels (`pt * dpi / 72`), as matplotlib sizes text. Glyphs are placed
//! by their advances plus the font's `kern` table, as FreeType's `FT_Get_Kerning` gives them
//! to matplotlib. Rasterized coverage is blended onto the image in its 8-bit RGB values.

use super::Image;
use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera license, see `assets/fonts/LICENSE_DEJAVU`).
pub(crate) const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name the vector writers declare.
pub(crate) const FAMILY: &str = "DejaVu Sans";

/// The parsed embedded font.
pub(crate) fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("embedded DejaVu Sans parses"))
}

/// ab_glyph's scale (pixel height of ascent − descent) for an em size of `px` pixels.
fn scale(px: f32) -> PxScale {
    let f = font();
    PxScale::from(px * f.height_unscaled() / units_per_em())
}

/// Font units per em.
pub(crate) fn units_per_em() -> f32 {
    font().units_per_em().unwrap_or(2048.0)
}

/// Distance from the baseline up to the font's ascender line, in pixels at em size `px`.
pub(crate) fn ascent(px: f32) -> f32 {
    font().as_scaled(scale(px)).ascent()
}

/// Distance from the baseline down to the font's descender line (positive), in pixels at em
/// size `px`.
pub(crate) fn descent(px: f32) -> f32 {
    -font().as_scaled(scale(px)).descent()
}

/// One glyph of a run: its id, the character it shows, and its pen position from the run's
/// start in pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    pub id: GlyphId,
    pub ch: char,
    pub x: f32,
}

/// The glyphs of `s` at em size `px` with advances and kerning, and the run's total advance.
/// Characters the font lacks show its `.notdef` glyph.
pub(crate) fn layout(s: &str, px: f32) -> (Vec<Placed>, f32) {
    let f = font().as_scaled(scale(px));
    let mut out = Vec::with_capacity(s.len());
    let mut pen = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    for ch in s.chars() {
        let id = f.glyph_id(ch);
        if let Some(p) = prev {
            pen += f.kern(p, id);
        }
        out.push(Placed { id, ch, x: pen });
        pen += f.h_advance(id);
        prev = Some(id);
    }
    (out, pen)
}

/// Advance width in pixels of `s` at em size `px`.
pub(crate) fn text_width(s: &str, px: f32) -> f32 {
    layout(s, px).1
}

/// Advance of glyph `id` in font units.
pub(crate) fn advance_units(id: GlyphId) -> f32 {
    font().h_advance_unscaled(id)
}

/// Kerning between glyphs `a` and `b` in font units.
pub(crate) fn kern_units(a: GlyphId, b: GlyphId) -> f32 {
    font().kern_unscaled(a, b)
}

/// Antialiased coverage of a run: `w * h` values in `0..=1`, row-major, with the pen's start on
/// the baseline at (`origin_x`, `origin_y`) in bitmap coordinates.
struct Coverage {
    w: i64,
    h: i64,
    alpha: Vec<f32>,
    origin_x: i64,
    origin_y: i64,
}

/// Rasterizes `s` at em size `px`, the pen starting on an integer pixel.
fn rasterize(s: &str, px: f32) -> Coverage {
    let f = font();
    let sc = scale(px);
    let (glyphs, _) = layout(s, px);
    let outlined: Vec<_> = glyphs
        .iter()
        .filter_map(|g| f.outline_glyph(g.id.with_scale_and_position(sc, point(g.x, 0.0))))
        .collect();
    let (mut x0, mut y0, mut x1, mut y1) = (0i64, 0i64, 0i64, 0i64);
    for o in &outlined {
        let b = o.px_bounds();
        x0 = x0.min(b.min.x.floor() as i64);
        y0 = y0.min(b.min.y.floor() as i64);
        x1 = x1.max(b.max.x.ceil() as i64);
        y1 = y1.max(b.max.y.ceil() as i64);
    }
    let (w, h) = (x1 - x0, y1 - y0);
    let mut alpha = vec![0f32; (w * h) as usize];
    for o in &outlined {
        let b = o.px_bounds();
        let (bx, by) = (b.min.x as i64 - x0, b.min.y as i64 - y0);
        o.draw(|gx, gy, c| {
            let (x, y) = (bx + i64::from(gx), by + i64::from(gy));
            if (0..w).contains(&x) && (0..h).contains(&y) {
                let a = &mut alpha[(y * w + x) as usize];
                *a = (*a + c).min(1.0);
            }
        });
    }
    Coverage {
        w,
        h,
        alpha,
        origin_x: -x0,
        origin_y: -y0,
    }
}

/// Blends `color` at coverage `a` onto pixel (`x`, `y`); pixels off the image are skipped.
fn blend(img: &mut Image, x: i64, y: i64, a: f32, color: [u8; 3]) {
    if a <= 0.0 || x < 0 || y < 0 || x >= i64::from(img.width) || y >= i64::from(img.height) {
        return;
    }
    let o = (y as usize * img.width as usize + x as usize) * 3;
    for (k, &c) in color.iter().enumerate() {
        let bg = f32::from(img.rgb[o + k]);
        img.rgb[o + k] = (bg + (f32::from(c) - bg) * a.min(1.0)).round() as u8;
    }
}

/// Draws `s` at em size `px` with its pen starting on the baseline at (`x`, `y`) (rounded to
/// whole pixels, as matplotlib's Agg backend places text). `up` rotates it 90°
/// counter-clockwise about that point, to read bottom to top.
pub(crate) fn draw_text(
    img: &mut Image,
    x: f32,
    y: f32,
    s: &str,
    px: f32,
    up: bool,
    color: [u8; 3],
) {
    let cov = rasterize(s, px);
    let (x, y) = (x.round() as i64, y.round() as i64);
    for by in 0..cov.h {
        for bx in 0..cov.w {
            let a = cov.alpha[(by * cov.w + bx) as usize];
            let (dx, dy) = (bx - cov.origin_x, by - cov.origin_y);
            // Rotating by 90° counter-clockwise maps (dx, dy) to (dy, -dx) in image coordinates.
            let (ix, iy) = if up {
                (x + dy, y - dx)
            } else {
                (x + dx, y + dy)
            };
            blend(img, ix, iy, a, color);
        }
    }
}
