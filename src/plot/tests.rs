use super::palette::{default_palette, NA_COLOR};
use super::*;
use super::{svg, text};

fn opts(width_px: u32, point_size: f32) -> PlotOptions {
    PlotOptions {
        width_px,
        dpi: 100.0,
        point_size: Some(point_size),
        axis_labels: ("UMAP1".to_string(), "UMAP2".to_string()),
    }
}

fn panel<'a>(title: &str, n_cats: usize, codes: &'a [i32]) -> Panel<'a> {
    Panel {
        title: title.to_string(),
        coloring: Coloring::Categorical {
            categories: (0..n_cats).map(|i| format!("c{i}")).collect(),
            colors: default_palette(n_cats),
            codes,
        },
    }
}

/// The category colours of a categorical panel.
fn colors(p: &Panel) -> Vec<[u8; 3]> {
    match &p.coloring {
        Coloring::Categorical { colors, .. } => colors.clone(),
        Coloring::Continuous { .. } => panic!("not categorical"),
    }
}

/// The legend of a categorical panel's key.
fn legend(k: &Key) -> &Legend {
    match k {
        Key::Legend(l) => l,
        Key::Colorbar(_) => panic!("not a legend"),
    }
}

/// Whether `color` occurs in the columns `x0..x1` of `img`.
fn has_color(img: &Image, x0: u32, x1: u32, color: [u8; 3]) -> bool {
    (0..img.height).any(|y| (x0..x1.min(img.width)).any(|x| img.pixel(x, y) == color))
}

/// Deterministic pseudo-random numbers in [0, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `n` points in `k` Gaussian blobs; returns x, y and the blob of each point.
fn blobs(n: usize, k: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<i32>) {
    let mut rng = Rng(seed);
    let centres: Vec<(f64, f64)> = (0..k)
        .map(|_| (rng.next() * 20.0, rng.next() * 20.0))
        .collect();
    let (mut x, mut y, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let b = i % k;
        let s = 0.6 + 0.4 * (b % 3) as f64;
        x.push((centres[b].0 + s * rng.normal()) as f32);
        y.push((centres[b].1 + s * rng.normal()) as f32);
        c.push(b as i32);
    }
    (x, y, c)
}

#[test]
fn tiny_three_categories() {
    // Corners of data space: (0,0) c0, (1,1) c1, (0,1) c2, plus an NA point at (1,0).
    let x = [0.0, 1.0, 0.0, 1.0];
    let y = [0.0, 1.0, 1.0, 0.0];
    let codes = [0, 1, 2, -1];
    let p = panel("groups", 3, &codes);
    let o = opts(200, 100.0);
    let img = render(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    let (_, _, layout, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    assert_eq!(img.rgb.len(), (img.width * img.height * 3) as usize);
    assert!(img.width > 200 && img.width < 400, "width {}", img.width);
    assert!(
        img.height > 200 && img.height < 320,
        "height {}",
        img.height
    );

    let (left, top, side) = (layout.plot_left as u32, layout.panels[0].0 as u32, 200);
    let right = left + side + layout.lw as u32;
    // Frame: black just outside the plot area, white corner inside.
    assert_eq!(img.pixel(left - 1, top + side / 2), [0, 0, 0]);
    assert_eq!(img.pixel(left + side, top + side / 2), [0, 0, 0]);
    assert_eq!(img.pixel(left + side / 2, top - 1), [0, 0, 0]);
    assert_eq!(img.pixel(left + 1, top + side / 2), [255, 255, 255]);

    for &c in colors(&p).iter().chain([&NA_COLOR]) {
        assert!(has_color(&img, left, left + side, c), "{c:?} in plot");
        assert!(has_color(&img, right, img.width, c), "{c:?} in legend");
    }
    // y axis points up: data (1,1) is top-right, (0,0) bottom-left, (1,0) bottom-right.
    let at = |fx: f32, fy: f32| {
        img.pixel(
            left + (fx * side as f32) as u32,
            top + (fy * side as f32) as u32,
        )
    };
    let c = &colors(&p);
    assert_eq!(at(0.955, 0.045), c[1]);
    assert_eq!(at(0.045, 0.955), c[0]);
    assert_eq!(at(0.045, 0.045), c[2]);
    assert_eq!(at(0.955, 0.955), NA_COLOR);
    assert_eq!(at(0.5, 0.5), [255, 255, 255]);
}

#[test]
fn na_drawn_first_and_listed_last() {
    // Two points on the same spot: the NA one comes later in the input but is drawn first.
    let x = [0.0, 0.0, 1.0];
    let y = [0.0, 0.0, 1.0];
    let codes = [0, -1, 0];
    let p = panel("k", 1, &codes);
    let o = opts(100, 50.0);
    let img = render(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    let (_, keys, layout, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    assert_eq!(legend(&keys[0]).entries.last().unwrap().0, "NA");
    let (left, top) = (layout.plot_left as u32, layout.panels[0].0 as u32);
    let bottom_left = img.pixel(left + 5, top + 95);
    assert_eq!(bottom_left, colors(&p)[0]);
    // Without NA codes there is no NA entry.
    let codes = [0, 0, 0];
    let p = panel("k", 1, &codes);
    let (_, keys, _, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    assert_eq!(legend(&keys[0]).entries.len(), 1);
}

#[test]
fn legend_columns_widen_image() {
    let n = 40;
    let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let y: Vec<f32> = (0..n).map(|i| (i * 7 % 13) as f32).collect();
    let codes5: Vec<i32> = (0..n).map(|i| i % 5).collect();
    let codes20: Vec<i32> = (0..n).map(|i| i % 20).collect();
    let o = opts(150, 20.0);
    let p5 = [panel("five", 5, &codes5)];
    let p20 = [panel("twenty", 20, &codes20)];
    let (_, l5, _, _) = plan(&x, &y, &p5, &o).unwrap();
    let (_, l20, _, _) = plan(&x, &y, &p20, &o).unwrap();
    assert_eq!(legend(&l5[0]).col_rows, vec![5]);
    assert_eq!(legend(&l20[0]).col_rows, vec![10, 10]);
    let img5 = render(&x, &y, &p5, &o).unwrap();
    let img20 = render(&x, &y, &p20, &o).unwrap();
    assert!(
        img20.width > img5.width,
        "{} vs {}",
        img20.width,
        img5.width
    );
    // 31 categories: three columns, matplotlib-style split 11/10/10.
    let codes31: Vec<i32> = (0..n).map(|i| i % 31).collect();
    let (_, l31, _, _) = plan(&x, &y, &[panel("k", 31, &codes31)], &o).unwrap();
    assert_eq!(legend(&l31[0]).col_rows, vec![11, 10, 10]);
    // 15 entries counting NA: two columns (8/7).
    let codes14: Vec<i32> = (0..n).map(|i| if i == 0 { -1 } else { i % 14 }).collect();
    let (_, l14, _, _) = plan(&x, &y, &[panel("k", 14, &codes14)], &o).unwrap();
    assert_eq!(legend(&l14[0]).col_rows, vec![8, 7]);
}

#[test]
fn panels_stack_vertically() {
    let x = [0.0, 1.0];
    let y = [0.0, 1.0];
    let (a, b) = ([0, 1], [1, 0]);
    let o = opts(120, 10.0);
    let one = render(&x, &y, &[panel("a", 2, &a)], &o).unwrap();
    let two = render(&x, &y, &[panel("a", 2, &a), panel("b", 2, &b)], &o).unwrap();
    assert_eq!(one.width, two.width);
    assert_eq!(two.height, 2 * one.height);
}

#[test]
fn invalid_inputs() {
    let x = [0.0, 1.0];
    let y = [0.0, 1.0];
    let o = opts(100, 10.0);
    assert!(render(&x, &y[..1], &[panel("a", 2, &[0, 1])], &o).is_err());
    assert!(render(&x, &y, &[panel("a", 2, &[0])], &o).is_err());
    assert!(render(&x, &y, &[panel("a", 2, &[0, 2])], &o).is_err());
    assert!(render(&x, &y, &[], &o).is_err());
    let one_colour = Panel {
        title: "a".into(),
        coloring: Coloring::Categorical {
            categories: vec!["p".into(), "q".into()],
            colors: default_palette(1),
            codes: &[0, 1],
        },
    };
    assert!(render(&x, &y, &[one_colour], &o).is_err());
    let short = Panel {
        title: "v".into(),
        coloring: Coloring::Continuous { values: &[1.0] },
    };
    assert!(render(&x, &y, &[short], &o).is_err());
    let bad = PlotOptions {
        dpi: 0.0,
        ..opts(100, 1.0)
    };
    assert!(render(&x, &y, &[panel("a", 2, &[0, 1])], &bad).is_err());
    let bad = PlotOptions {
        width_px: 0,
        ..opts(100, 1.0)
    };
    assert!(render(&x, &y, &[panel("a", 2, &[0, 1])], &bad).is_err());
}

#[test]
fn degenerate_coordinates() {
    // All points equal, some non-finite, and no points at all: no panic, sane output.
    let x = [3.0, 3.0, f32::NAN];
    let y = [5.0, 5.0, 1.0];
    let img = render(&x, &y, &[panel("a", 1, &[0, 0, 0])], &opts(50, 10.0)).unwrap();
    assert!(has_color(&img, 0, img.width, default_palette(1)[0]));
    let img = render(&[], &[], &[panel("a", 1, &[])], &PlotOptions::default()).unwrap();
    assert!(img.width > 480 && img.height > 480);
}

#[test]
fn disc_mask_sizes() {
    assert_eq!(DiscMask::new(0.3).spans, vec![(0, 0, 0)]);
    assert_eq!(DiscMask::new(1.0).spans, vec![(0, 0, 0)]);
    let m = DiscMask::new(7.0);
    assert_eq!(m.reach, 3);
    let area: i32 = m.spans.iter().map(|&(_, a, b)| b - a + 1).sum();
    assert!((30..=45).contains(&area), "area {area}"); // pi * 3.5^2 = 38.5
}

#[test]
fn million_points_fast() {
    let (x, y, codes) = blobs(1_000_000, 12, 7);
    let cats = [
        panel("leiden", 12, &codes),
        panel("leiden again", 12, &codes),
    ];
    let t = std::time::Instant::now();
    let img = render(&x, &y, &cats, &PlotOptions::default()).unwrap();
    let dt = t.elapsed();
    eprintln!("1M points, 2 panels: {dt:?}");
    assert!(img.height > 960);
    assert!(dt.as_secs_f64() < 10.0, "took {dt:?}");
}

#[test]
fn writes_png() {
    let n = 5000;
    let (x, y, leiden) = blobs(n, 16, 42);
    // A second key: three samples mixed across clusters, with some cells unassigned.
    let mut rng = Rng(9);
    let sample: Vec<i32> = (0..n)
        .map(|_| match rng.next() {
            u if u < 0.05 => -1,
            u => (u * 3.0) as i32,
        })
        .collect();
    let panels = [
        Panel {
            title: "leiden".to_string(),
            coloring: Coloring::Categorical {
                categories: (0..16).map(|i| i.to_string()).collect(),
                colors: default_palette(16),
                codes: &leiden,
            },
        },
        Panel {
            title: "sample".to_string(),
            coloring: Coloring::Categorical {
                categories: vec![
                    "control".into(),
                    "treated_1".into(),
                    "treated_2 (µM)".into(),
                ],
                colors: default_palette(3),
                codes: &sample,
            },
        },
    ];
    let img = render(&x, &y, &panels, &PlotOptions::default()).unwrap();
    let path = std::env::temp_dir().join("scoop_plot_test.png");
    img.write_png(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!((info.width, info.height), (img.width, img.height));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    // Unwritable path: an Io error naming it.
    let bad = Path::new("/nonexistent-dir/x.png");
    match img.write_png(bad) {
        Err(Error::Io { path, .. }) => assert_eq!(path, bad),
        other => panic!("{other:?}"),
    }
}

#[test]
fn continuous_values_use_viridis_in_value_order() {
    let lut = |i: usize| palette::viridis((i as f64 + 0.5) / 256.0);
    assert_eq!(lut(0), [0x44, 0x01, 0x54]);
    assert_eq!(lut(255), [0xfd, 0xe7, 0x25]);
    // Corners: 0 at (0,0), 10 at (1,1), 5 at (0,1), NaN at (1,0); the centre holds 9 then 1
    // (input order): the higher value is drawn last, on top.
    let x = [0.0, 1.0, 0.0, 1.0, 0.5, 0.5];
    let y = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5];
    let values = [0.0, 10.0, 5.0, f32::NAN, 9.0, 1.0];
    let p = Panel {
        title: "v".into(),
        coloring: Coloring::Continuous { values: &values },
    };
    let o = opts(200, 100.0);
    let img = render(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    let (paints, keys, layout, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    assert_eq!(paints[0].order, vec![3, 0, 5, 2, 4, 1]);
    let (left, top, side) = (layout.plot_left as u32, layout.panels[0].0 as u32, 200);
    let at = |fx: f32, fy: f32| {
        img.pixel(
            left + (fx * side as f32) as u32,
            top + (fy * side as f32) as u32,
        )
    };
    assert_eq!(at(0.045, 0.955), lut(0));
    assert_eq!(at(0.955, 0.045), lut(255));
    assert_eq!(at(0.045, 0.045), lut(128));
    assert_eq!(at(0.955, 0.955), NA_COLOR);
    // 9 of [0, 10]: entry ⌊0.9 · 256⌋ = 230.
    assert_eq!(at(0.5, 0.5), lut(230));
    // The colorbar: the largest value's colour at its top, the smallest's at its bottom, ticks
    // every 2.
    let Key::Colorbar(bar) = &keys[0] else {
        panic!("a numeric panel has a colorbar")
    };
    let labels: Vec<&str> = bar.ticks.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(labels, ["0", "2", "4", "6", "8", "10"]);
    let bx = (layout.legend_left + layout.lw + bar.bar / 2) as u32;
    assert_eq!(img.pixel(bx, top), lut(255));
    assert_eq!(img.pixel(bx, top + side - 1), lut(0));
    // NaN and ±∞ are all missing: drawn first (in reverse input order), in the NA colour.
    let odd = [
        f32::INFINITY,
        2.0,
        f32::NAN,
        f32::NEG_INFINITY,
        1.0,
        f32::NAN,
    ];
    let p = Panel {
        title: "odd".into(),
        coloring: Coloring::Continuous { values: &odd },
    };
    let (paints, _, _, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    assert_eq!(paints[0].order, vec![5, 3, 2, 0, 4, 1]);
    assert_eq!(paints[0].code, vec![256, 255, 256, 256, 0, 256]);
    // All values equal: every point the lowest colour (matplotlib's Normalize).
    let same = [3.0f32; 6];
    let p = Panel {
        title: "s".into(),
        coloring: Coloring::Continuous { values: &same },
    };
    let (paints, _, _, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    assert!(paints[0].code.iter().all(|&c| c == 0));
}

#[test]
fn colorbar_ticks_are_round() {
    let labels =
        |lo: f64, hi: f64| -> Vec<String> { ticks(lo, hi).into_iter().map(|t| t.1).collect() };
    assert_eq!(labels(823.0, 11990.0), ["2500", "5000", "7500", "10000"]);
    assert_eq!(labels(0.013, 0.987), ["0.2", "0.4", "0.6", "0.8"]);
    assert_eq!(labels(-1.0, 1.0), ["-1.0", "-0.5", "0.0", "0.5", "1.0"]);
    assert_eq!(
        labels(0.0, 0.25),
        ["0.00", "0.05", "0.10", "0.15", "0.20", "0.25"]
    );
    assert_eq!(labels(3.0, 3.0), ["3"]);
    for (v, _) in ticks(4.3, 36.7) {
        assert!((4.3..=36.7).contains(&v));
    }
}

/// The rows of `img` between `y0` and `y1` (exclusive) holding a pixel inked more than half
/// (darker than mid grey), as the first and last such row.
fn ink_rows(img: &Image, x0: u32, x1: u32, y0: u32, y1: u32) -> Option<(u32, u32)> {
    let inked = |y: u32| (x0..x1).any(|x| img.pixel(x, y)[0] < 128);
    let first = (y0..y1).find(|&y| inked(y))?;
    let last = (y0..y1).rev().find(|&y| inked(y))?;
    Some((first, last))
}

#[test]
fn text_is_antialiased_truetype() {
    let x = [0.0, 1.0];
    let y = [0.0, 1.0];
    let codes = [0, 1];
    let p = panel("Antialiased title", 2, &codes);
    let o = opts(200, 10.0);
    let img = render(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    let (_, _, layout, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
    // The title band, above the frame: black glyph cores and grey edge pixels (coverage
    // blended on white), many distinct grey levels.
    let top = (layout.panels[0].0 - layout.lw) as u32;
    let mut greys = std::collections::HashSet::new();
    let mut black = 0;
    for yy in 0..top {
        for xx in 0..img.width {
            let [r, g, b] = img.pixel(xx, yy);
            assert!(r == g && g == b, "text is black on white: {:?}", [r, g, b]);
            match r {
                0 => black += 1,
                255 => {}
                v => {
                    greys.insert(v);
                }
            }
        }
    }
    assert!(black > 20, "{black} black title pixels");
    assert!(greys.len() > 30, "{} grey levels", greys.len());
}

#[test]
fn title_is_twelve_points_high() {
    // `H` stands its cap height high: 1493 / 2048 of the em; the em is 12 pt = 12 * dpi / 72 px.
    for dpi in [72.0f32, 100.0, 150.0, 300.0] {
        let x = [0.0, 1.0];
        let y = [0.0, 1.0];
        let codes = [0, 0];
        let p = panel("H", 1, &codes);
        let o = PlotOptions {
            dpi,
            ..opts(100, 10.0)
        };
        let img = render(&x, &y, std::slice::from_ref(&p), &o).unwrap();
        let (_, _, layout, _) = plan(&x, &y, std::slice::from_ref(&p), &o).unwrap();
        let (left, side) = (layout.plot_left as u32, 100);
        let top = (layout.panels[0].0 - layout.lw) as u32;
        let (a, b) = ink_rows(&img, left, left + side, 0, top).expect("a title");
        let want = 1493.0 / 2048.0 * 12.0 * dpi / 72.0;
        let have = (b - a + 1) as f32;
        assert!(
            (have - want).abs() <= 1.5,
            "dpi {dpi}: H {have} px, want {want}"
        );
        // The x label `UMAP1` is 10 pt: its capitals 1493 / 2048 of 10 pt high.
        let below = (layout.panels[0].0 + layout.lw) as u32 + side;
        let (a, b) = ink_rows(&img, left, left + side, below, img.height).unwrap();
        let want = 1493.0 / 2048.0 * 10.0 * dpi / 72.0;
        let have = (b - a + 1) as f32;
        assert!(
            (have - want).abs() <= 1.5,
            "dpi {dpi}: UMAP1 {have} px, want {want}"
        );
    }
}

#[test]
fn text_is_kerned() {
    // DejaVu Sans kerns `AV` (its `kern` table): the pair is narrower than its two advances.
    let (glyphs, width) = text::layout("AV", 100.0);
    let advances = text::text_width("A", 100.0) + text::text_width("V", 100.0);
    assert!(width < advances - 1.0, "{width} vs {advances}");
    assert!(glyphs[1].x < text::text_width("A", 100.0));
}

#[test]
fn figure_formats_follow_the_extension() {
    let f = |p: &str| FigureFormat::resolve(None, Path::new(p));
    assert_eq!(f("a/umap.png").unwrap(), FigureFormat::Png);
    assert_eq!(f("umap.SVG").unwrap(), FigureFormat::Svg);
    assert_eq!(f("umap.pdf").unwrap(), FigureFormat::Pdf);
    assert_eq!(f("umap").unwrap(), FigureFormat::Png);
    assert!(f("umap.jpg").is_err());
    let g = |fmt, p: &str| FigureFormat::resolve(Some(fmt), Path::new(p));
    assert_eq!(g(FigureFormat::Svg, "u.svg").unwrap(), FigureFormat::Svg);
    assert_eq!(g(FigureFormat::Pdf, "u.figure").unwrap(), FigureFormat::Pdf);
    let err = g(FigureFormat::Svg, "u.png").unwrap_err().to_string();
    assert!(err.contains("svg") && err.contains(".png"), "{err}");
}

#[test]
fn base64_matches_rfc4648() {
    for (raw, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(svg::base64(raw.as_bytes()), enc);
    }
}

#[test]
fn vector_figures_hold_text_and_the_points_image() {
    let (x, y, codes) = blobs(3000, 4, 3);
    let values: Vec<f32> = x.iter().map(|v| v * 1000.0).collect();
    let p = [
        panel("leiden & <co>", 4, &codes),
        Panel {
            title: "counts".into(),
            coloring: Coloring::Continuous { values: &values },
        },
    ];
    let fig = figure(&x, &y, &p, &PlotOptions::default()).unwrap();
    let svg = fig.to_svg().unwrap();
    assert!(svg.starts_with("<?xml"));
    assert!(
        svg.contains(">leiden &amp; &lt;co&gt;</text>"),
        "escaped title"
    );
    assert!(svg.contains("font-family=\"DejaVu Sans, sans-serif\""));
    assert!(svg.contains("rotate(-90"), "y label rotated");
    // Each panel's points and the colorbar's scale.
    assert_eq!(svg.matches("data:image/png;base64,").count(), 3);
    assert_eq!(svg.matches("<circle").count(), 4, "legend markers");
    // Points in the PDF as one image XObject; the xref offsets point at their objects.
    let pdf = fig.to_pdf().unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4"));
    let tail = String::from_utf8_lossy(&pdf[pdf.len() - 40..]).to_string();
    let start: usize = tail
        .rsplit("startxref\n")
        .next()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let xref = std::str::from_utf8(&pdf[start..]).unwrap();
    assert!(xref.starts_with("xref\n0 "));
    let mut n = 0;
    for (i, line) in xref
        .lines()
        .skip(3)
        .take_while(|l| l.ends_with(" n "))
        .enumerate()
    {
        let off: usize = line[..10].parse().unwrap();
        let head = format!("{} 0 obj", i + 1);
        assert!(pdf[off..].starts_with(head.as_bytes()), "object {}", i + 1);
        n += 1;
    }
    assert_eq!(n, 13, "catalog .. font .. three images, info");
    let count = |needle: &[u8]| pdf.windows(needle.len()).filter(|w| w == &needle).count();
    assert_eq!(count(b"/Subtype /Image"), 3);
    let dir = std::env::temp_dir();
    fig.write(&dir.join("scoop_fig_test.svg"), FigureFormat::Svg)
        .unwrap();
    fig.write(&dir.join("scoop_fig_test.pdf"), FigureFormat::Pdf)
        .unwrap();
    fig.write(&dir.join("scoop_fig_test.png"), FigureFormat::Png)
        .unwrap();
}
