//! Writes a [`Figure`] as a one-page PDF 1.4 document.
//!
//! The page is the figure at `72 / dpi` points per pixel. Rectangles and markers are filled
//! paths (a marker is four Bézier arcs), images are `DeviceRGB` image XObjects with
//! `FlateDecode`, and text is shown in the embedded DejaVu Sans as a `Type0` font with
//! `Identity-H` encoding (two-byte glyph ids, widths from the font, kerning in `TJ`
//! arrays) and a `ToUnicode` map, so readers extract and search the text.

use super::figure::{Figure, Item};
use super::text::{advance_units, kern_units, layout, units_per_em, FONT_BYTES};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write;

/// `data` compressed in the zlib format (PDF's `FlateDecode`).
fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    crate::io::filters::deflate::deflate(data, 6)
        .map_err(|e| Error::InvalidArgument(format!("pdf: {e}")))
}

/// A number for a content stream: at most three decimals, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s.into()
    }
}

/// Accumulates numbered objects and writes the file with its cross-reference table.
struct Writer {
    out: Vec<u8>,
    offsets: Vec<usize>,
}

impl Writer {
    fn new() -> Self {
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        out.reserve(1 << 16);
        Writer {
            out,
            offsets: Vec::new(),
        }
    }

    /// Writes object `id` (ids are written in order 1, 2, ...) with dictionary or value `body`.
    fn object(&mut self, id: usize, body: &str) {
        debug_assert_eq!(id, self.offsets.len() + 1);
        self.offsets.push(self.out.len());
        self.out
            .extend_from_slice(format!("{id} 0 obj\n{body}\nendobj\n").as_bytes());
    }

    /// Writes stream object `id` with the extra dictionary entries `dict` and `data` as is.
    fn stream(&mut self, id: usize, dict: &str, data: &[u8]) {
        debug_assert_eq!(id, self.offsets.len() + 1);
        self.offsets.push(self.out.len());
        self.out.extend_from_slice(
            format!("{id} 0 obj\n<< {dict} /Length {} >>\nstream\n", data.len()).as_bytes(),
        );
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    /// The cross-reference table and trailer, with object 1 as the catalog.
    fn finish(mut self) -> Vec<u8> {
        let xref = self.out.len();
        let n = self.offsets.len() + 1;
        let mut t = format!("xref\n0 {n}\n0000000000 65535 f \n");
        for o in &self.offsets {
            let _ = writeln!(t, "{o:010} 00000 n ");
        }
        let _ = write!(
            t,
            "trailer\n<< /Size {n} /Root 1 0 R /Info {n_info} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            n_info = n - 1
        );
        self.out.extend_from_slice(t.as_bytes());
        self.out
    }
}

/// The four Bézier arcs of a circle of radius `r` around (`cx`, `cy`), filled.
fn circle(cx: f64, cy: f64, r: f64) -> String {
    let k = 0.552_284_749_8 * r;
    format!(
        "{} {} m {} {} {} {} {} {} c {} {} {} {} {} {} c {} {} {} {} {} {} c {} {} {} {} {} {} c f\n",
        num(cx + r), num(cy),
        num(cx + r), num(cy + k), num(cx + k), num(cy + r), num(cx), num(cy + r),
        num(cx - k), num(cy + r), num(cx - r), num(cy + k), num(cx - r), num(cy),
        num(cx - r), num(cy - k), num(cx - k), num(cy - r), num(cx), num(cy - r),
        num(cx + k), num(cy - r), num(cx + r), num(cy - k), num(cx + r), num(cy),
    )
}

/// `r g b` as PDF fill colour operands.
fn rgb(c: [u8; 3]) -> String {
    format!(
        "{} {} {}",
        num(f64::from(c[0]) / 255.0),
        num(f64::from(c[1]) / 255.0),
        num(f64::from(c[2]) / 255.0)
    )
}

/// The PDF document of `fig`.
pub(crate) fn to_pdf(fig: &Figure) -> Result<Vec<u8>> {
    let k = fig.pt_per_px();
    let page_h = f64::from(fig.height) * k;
    let (px_x, px_y) = (|x: f64| x * k, |y: f64| page_h - y * k);
    let upem = f64::from(units_per_em());
    // Scales font units to PDF text space units (1000 per em).
    let to_text = |u: f32| f64::from(u) * 1000.0 / upem;

    let mut content = String::new();
    let mut images = Vec::new();
    // Glyph id -> the character it shows (for ToUnicode) and its width in text space units.
    let mut used: BTreeMap<u16, (char, f64)> = BTreeMap::new();
    for item in &fig.items {
        match item {
            Item::Rect { x, y, w, h, color } => {
                let _ = writeln!(
                    content,
                    "{} rg {} {} {} {} re f",
                    rgb(*color),
                    num(px_x(*x)),
                    num(px_y(y + h)),
                    num(w * k),
                    num(h * k)
                );
            }
            Item::Disc {
                cx,
                cy,
                diameter,
                color,
            } => {
                let _ = write!(content, "{} rg ", rgb(*color));
                content.push_str(&circle(
                    px_x(cx.floor() + 0.5),
                    px_y(cy.floor() + 0.5),
                    diameter / 2.0 * k,
                ));
            }
            Item::Text {
                x,
                y,
                text,
                px,
                anchor,
                up,
            } => {
                let (glyphs, width) = layout(text, *px);
                let (x, y) = anchor.start(*x, *y, f64::from(width), *up);
                let size = f64::from(*px) * k;
                let matrix = if *up { "0 1 -1 0" } else { "1 0 0 1" };
                let _ = write!(
                    content,
                    "BT 0 0 0 rg /F1 {} Tf {matrix} {} {} Tm [<",
                    num(size),
                    num(px_x(x)),
                    num(px_y(y))
                );
                let mut prev = None;
                for g in &glyphs {
                    if let Some(p) = prev {
                        let kern = kern_units(p, g.id);
                        if kern != 0.0 {
                            // TJ numbers move the pen back by thousandths of the em.
                            let _ = write!(content, "> {} <", num(-to_text(kern)));
                        }
                    }
                    let _ = write!(content, "{:04x}", g.id.0);
                    used.entry(g.id.0)
                        .or_insert((g.ch, to_text(advance_units(g.id))));
                    prev = Some(g.id);
                }
                content.push_str(">] TJ ET\n");
            }
            Item::Image { x, y, image } => {
                let name = format!("Im{}", images.len());
                let _ = writeln!(
                    content,
                    "q {} 0 0 {} {} {} cm /{name} Do Q",
                    num(f64::from(image.width) * k),
                    num(f64::from(image.height) * k),
                    num(px_x(*x)),
                    num(px_y(y + f64::from(image.height)))
                );
                images.push((name, image));
            }
        }
    }

    // Objects: 1 catalog, 2 pages, 3 page, 4 content, 5 Type0 font, 6 CIDFont, 7 descriptor,
    // 8 font file, 9 ToUnicode, then the images, then the info dictionary.
    let mut w = Writer::new();
    w.object(1, "<< /Type /Catalog /Pages 2 0 R >>");
    w.object(2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    let xobjects: String = images
        .iter()
        .enumerate()
        .map(|(i, (name, _))| format!("/{name} {} 0 R ", 10 + i))
        .collect();
    w.object(
        3,
        &format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Contents 4 0 R \
             /Resources << /ProcSet [/PDF /Text /ImageC] /Font << /F1 5 0 R >> \
             /XObject << {xobjects}>> >> >>",
            num(f64::from(fig.width) * k),
            num(page_h)
        ),
    );
    w.stream(4, "/Filter /FlateDecode", &deflate(content.as_bytes())?);
    w.object(
        5,
        "<< /Type /Font /Subtype /Type0 /BaseFont /DejaVuSans /Encoding /Identity-H \
         /DescendantFonts [6 0 R] /ToUnicode 9 0 R >>",
    );
    let widths: String = used
        .iter()
        .map(|(gid, (_, wd))| format!("{gid} [{}] ", num(*wd)))
        .collect();
    w.object(
        6,
        &format!(
            "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /DejaVuSans \
             /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> \
             /FontDescriptor 7 0 R /CIDToGIDMap /Identity /DW 1000 /W [{widths}] >>"
        ),
    );
    // DejaVu Sans's head bounding box, hhea ascender and descender and the height of `H`,
    // in thousandths of the em.
    w.object(
        7,
        "<< /Type /FontDescriptor /FontName /DejaVuSans /Flags 32 \
         /FontBBox [-1021 -463 1794 1233] /ItalicAngle 0 /Ascent 928 /Descent -236 \
         /CapHeight 729 /StemV 80 /FontFile2 8 0 R >>",
    );
    w.stream(
        8,
        &format!("/Filter /FlateDecode /Length1 {}", FONT_BYTES.len()),
        &deflate(FONT_BYTES)?,
    );
    w.stream(9, "", to_unicode(&used).as_bytes());
    for (i, (_, image)) in images.iter().enumerate() {
        w.stream(
            10 + i,
            &format!(
                "/Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceRGB \
                 /BitsPerComponent 8 /Interpolate false /Filter /FlateDecode",
                image.width, image.height
            ),
            &deflate(&image.rgb)?,
        );
    }
    w.object(
        10 + images.len(),
        &format!("<< /Producer (scoop {}) >>", env!("CARGO_PKG_VERSION")),
    );
    Ok(w.finish())
}

/// A `ToUnicode` CMap from the used glyph ids to the characters they show.
fn to_unicode(used: &BTreeMap<u16, (char, f64)>) -> String {
    let mut s = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<_> = used.iter().collect();
    for block in entries.chunks(100) {
        let _ = writeln!(s, "{} beginbfchar", block.len());
        for (gid, (ch, _)) in block {
            let mut units = [0u16; 2];
            let hex: String = ch
                .encode_utf16(&mut units)
                .iter()
                .map(|u| format!("{u:04X}"))
                .collect();
            let _ = writeln!(s, "<{gid:04X}> <{hex}>");
        }
        s.push_str("endbfchar\n");
    }
    s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    s
}
