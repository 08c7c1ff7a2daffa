//! Writes a [`Figure`] as SVG 1.1: the user space is the figure's pixels, the document's size is
//! given in points (`px * 72 / dpi`, as matplotlib's SVG backend sizes it). Text is real
//! `<text>` in `DejaVu Sans` (falling back to `sans-serif`), images are inline PNGs.

use super::figure::{Anchor, Figure, Item};
use super::text::FAMILY;
use crate::Result;
use std::fmt::Write;

/// Standard base64 (RFC 4648, with padding).
pub(crate) fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `s` with XML's special characters escaped (for text and attribute values).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `#rrggbb`.
fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// A coordinate with at most three decimals and no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// The SVG document of `fig`.
pub(crate) fn to_svg(fig: &Figure) -> Result<String> {
    let (w, h) = (f64::from(fig.width), f64::from(fig.height));
    let k = fig.pt_per_px();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"no\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" \
         version=\"1.1\" width=\"{}pt\" height=\"{}pt\" viewBox=\"0 0 {} {}\">",
        num(w * k),
        num(h * k),
        num(w),
        num(h)
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
        num(w),
        num(h)
    );
    for item in &fig.items {
        match item {
            Item::Rect { x, y, w, h, color } => {
                let _ = writeln!(
                    s,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
                    num(*x),
                    num(*y),
                    num(*w),
                    num(*h),
                    hex(*color)
                );
            }
            Item::Disc {
                cx,
                cy,
                diameter,
                color,
            } => {
                // The raster draws a disc around pixel (cx, cy); its centre is that pixel's centre.
                let _ = writeln!(
                    s,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"/>",
                    num(cx.floor() + 0.5),
                    num(cy.floor() + 0.5),
                    num(diameter / 2.0),
                    hex(*color)
                );
            }
            Item::Text {
                x,
                y,
                text,
                px,
                anchor,
                up,
            } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                };
                let rotate = if *up {
                    format!(" transform=\"rotate(-90 {} {})\"", num(*x), num(*y))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "<text x=\"{}\" y=\"{}\" font-family=\"{FAMILY}, sans-serif\" \
                     font-size=\"{}\" text-anchor=\"{anchor}\" fill=\"#000000\" \
                     xml:space=\"preserve\"{rotate}>{}</text>",
                    num(*x),
                    num(*y),
                    num(f64::from(*px)),
                    escape(text)
                );
            }
            Item::Image { x, y, image } => {
                let png = image.encode_png()?;
                let _ = writeln!(
                    s,
                    "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" \
                     preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" \
                     xlink:href=\"data:image/png;base64,{}\"/>",
                    num(*x),
                    num(*y),
                    image.width,
                    image.height,
                    base64(&png)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    Ok(s)
}
