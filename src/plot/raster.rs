//! Draws a [`Figure`] into an RGB [`Image`].

use super::figure::{Figure, Item};
use super::text::{draw_text, text_width};
use super::{DiscMask, Image};

/// The figure's items drawn in order on white.
pub(crate) fn rasterize(fig: &Figure) -> Image {
    let mut img = Image::white(fig.width, fig.height);
    for item in &fig.items {
        match item {
            Item::Rect { x, y, w, h, color } => {
                let (x0, y0) = (x.round() as i64, y.round() as i64);
                let (x1, y1) = ((x + w).round() as i64, (y + h).round() as i64);
                img.fill_rect(x0, y0, x1 - x0, y1 - y0, *color);
            }
            Item::Disc {
                cx,
                cy,
                diameter,
                color,
            } => {
                let mask = DiscMask::new(*diameter);
                img.fill_disc(cx.floor() as i64, cy.floor() as i64, &mask, *color);
            }
            Item::Text {
                x,
                y,
                text,
                px,
                anchor,
                up,
            } => {
                let (x, y) = anchor.start(*x, *y, f64::from(text_width(text, *px)), *up);
                draw_text(&mut img, x as f32, y as f32, text, *px, *up, [0, 0, 0]);
            }
            Item::Image { x, y, image } => img.blit(x.round() as i64, y.round() as i64, image),
        }
    }
    img
}
