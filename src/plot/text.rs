//! Bitmap text from `font8x8`, scaled by an integer factor, drawn straight into an [`Image`].

use super::Image;
use font8x8::{UnicodeFonts, BASIC_FONTS};

/// Glyph cell size of the unscaled font, in pixels.
pub(crate) const CELL: u32 = 8;

/// The 8x8 bitmap of `c`: row `r` is byte `r`, bit `b` set means column `b` (from the left) is inked.
/// Characters outside printable ASCII are drawn as `?`.
fn glyph(c: char) -> [u8; 8] {
    let c = if c == ' ' || c.is_ascii_graphic() {
        c
    } else {
        '?'
    };
    BASIC_FONTS.get(c).unwrap_or([0; 8])
}

/// Width in pixels of `s` drawn at `scale`.
pub(crate) fn text_width(s: &str, scale: u32) -> u32 {
    s.chars().count() as u32 * CELL * scale
}

/// Draws `s` horizontally with its top-left corner at (`x`, `y`); pixels off the image are skipped.
pub(crate) fn draw_text(img: &mut Image, x: i64, y: i64, s: &str, scale: u32, color: [u8; 3]) {
    let sc = i64::from(scale);
    for (k, c) in s.chars().enumerate() {
        let gx0 = x + k as i64 * i64::from(CELL) * sc;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    img.fill_rect(gx0 + col * sc, y + row as i64 * sc, sc, sc, color);
                }
            }
        }
    }
}

/// Draws `s` rotated 90° counter-clockwise (reading bottom to top), with the glyphs' tops
/// facing left: the text occupies columns `x .. x + 8*scale` and rows `y_bottom - width .. y_bottom`.
pub(crate) fn draw_text_up(
    img: &mut Image,
    x: i64,
    y_bottom: i64,
    s: &str,
    scale: u32,
    color: [u8; 3],
) {
    let sc = i64::from(scale);
    for (k, c) in s.chars().enumerate() {
        let along0 = k as i64 * i64::from(CELL) * sc;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    // Glyph (col, row) -> image (x + row, y_bottom - 1 - along).
                    let along = along0 + col * sc;
                    img.fill_rect(x + row as i64 * sc, y_bottom - along - sc, sc, sc, color);
                }
            }
        }
    }
}
