//! Categorical colour palettes as scanpy picks them, and colour-string parsing.
//!
//! scanpy colours a categorical key with `n` categories from the first `n` entries of:
//! matplotlib's colour cycle (`tab10`) when `n <= 10`, its `default_20` when `n <= 20`,
//! `default_28` (Zeileis) when `n <= 28`, `default_102` (godsnot) when `n <= 102`, and
//! plain `grey` for every category beyond that. Missing values are drawn `lightgray`.

/// Colour of points whose category is missing (matplotlib `lightgray`, `#d3d3d3`).
pub const NA_COLOR: [u8; 3] = [0xd3, 0xd3, 0xd3];

/// Colour of every category when there are more than 102 (matplotlib `grey`, `#808080`).
pub const GREY: [u8; 3] = [0x80, 0x80, 0x80];

/// matplotlib's `tab10` colour cycle (its default `axes.prop_cycle`), used for up to 10 categories.
pub const TAB10: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// scanpy's `default_20` (a reordered `tab20`), used for 11 to 20 categories.
pub const DEFAULT_20: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc", "#8c564b", "#e377c2", "#b5bd61",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#dbdb8d", "#9edae5", "#ad494a", "#8c6d31",
];

/// scanpy's `zeileis_28` (`default_28`), used for 21 to 28 categories.
pub const ZEILEIS_28: [&str; 28] = [
    "#023fa5", "#7d87b9", "#bec1d4", "#d6bcc0", "#bb7784", "#8e063b", "#4a6fe3", "#8595e1",
    "#b5bbe3", "#e6afb9", "#e07b91", "#d33f6a", "#11c638", "#8dd593", "#c6dec7", "#ead3c6",
    "#f0b98d", "#ef9708", "#0fcfc0", "#9cded6", "#d5eae7", "#f3e1eb", "#f6c4e1", "#f79cd4",
    "#7f7f7f", "#c7c7c7", "#1ce6ff", "#336600",
];

/// scanpy's `godsnot_102` (`default_102`), used for 29 to 102 categories.
pub const GODSNOT_102: [&str; 102] = [
    "#ffff00", "#1ce6ff", "#ff34ff", "#ff4a46", "#008941", "#006fa6", "#a30059", "#ffdbe5",
    "#7a4900", "#0000a6", "#63ffac", "#b79762", "#004d43", "#8fb0ff", "#997d87", "#5a0007",
    "#809693", "#6a3a4c", "#1b4400", "#4fc601", "#3b5dff", "#4a3b53", "#ff2f80", "#61615a",
    "#ba0900", "#6b7900", "#00c2a0", "#ffaa92", "#ff90c9", "#b903aa", "#d16100", "#ddefff",
    "#000035", "#7b4f4b", "#a1c299", "#300018", "#0aa6d8", "#013349", "#00846f", "#372101",
    "#ffb500", "#c2ffed", "#a079bf", "#cc0744", "#c0b9b2", "#c2ff99", "#001e09", "#00489c",
    "#6f0062", "#0cbd66", "#eec3ff", "#456d75", "#b77b68", "#7a87a1", "#788d66", "#885578",
    "#fad09f", "#ff8a9a", "#d157a0", "#bec459", "#456648", "#0086ed", "#886f4c", "#34362d",
    "#b4a8bd", "#00a6aa", "#452c2c", "#636375", "#a3c8c9", "#ff913f", "#938a81", "#575329",
    "#00fecf", "#b05b6f", "#8cd0ff", "#3b9700", "#04f757", "#c8a1a1", "#1e6e00", "#7900d7",
    "#a77500", "#6367a9", "#a05837", "#6b002c", "#772600", "#d790ff", "#9b9700", "#549e79",
    "#fff69f", "#201625", "#72418f", "#bc23ff", "#99adc0", "#3a2465", "#922329", "#5b4534",
    "#fde8dc", "#404e55", "#0089a3", "#cb7e98", "#a4e804", "#324e72",
];

/// The colours scanpy assigns by default to `n_categories` categories, in category order.
pub fn default_palette(n_categories: usize) -> Vec<[u8; 3]> {
    let list: &[&str] = if n_categories <= TAB10.len() {
        &TAB10
    } else if n_categories <= DEFAULT_20.len() {
        &DEFAULT_20
    } else if n_categories <= ZEILEIS_28.len() {
        &ZEILEIS_28
    } else if n_categories <= GODSNOT_102.len() {
        &GODSNOT_102
    } else {
        return vec![GREY; n_categories];
    };
    list[..n_categories]
        .iter()
        .map(|s| parse_hex(s).expect("built-in palette entries are valid hex"))
        .collect()
}

/// matplotlib's named colours understood by [`parse_hex`] (lower case), with their RGB values.
const NAMED: &[(&str, [u8; 3])] = &[
    // matplotlib's single-letter base colours.
    ("b", [0, 0, 255]),
    ("g", [0, 128, 0]),
    ("r", [255, 0, 0]),
    ("c", [0, 191, 191]),
    ("m", [191, 0, 191]),
    ("y", [191, 191, 0]),
    ("k", [0, 0, 0]),
    ("w", [255, 255, 255]),
    // Tableau colours.
    ("tab:blue", [0x1f, 0x77, 0xb4]),
    ("tab:orange", [0xff, 0x7f, 0x0e]),
    ("tab:green", [0x2c, 0xa0, 0x2c]),
    ("tab:red", [0xd6, 0x27, 0x28]),
    ("tab:purple", [0x94, 0x67, 0xbd]),
    ("tab:brown", [0x8c, 0x56, 0x4b]),
    ("tab:pink", [0xe3, 0x77, 0xc2]),
    ("tab:gray", [0x7f, 0x7f, 0x7f]),
    ("tab:grey", [0x7f, 0x7f, 0x7f]),
    ("tab:olive", [0xbc, 0xbd, 0x22]),
    ("tab:cyan", [0x17, 0xbe, 0xcf]),
    // A selection of CSS4 names.
    ("black", [0, 0, 0]),
    ("white", [255, 255, 255]),
    ("red", [255, 0, 0]),
    ("green", [0, 128, 0]),
    ("blue", [0, 0, 255]),
    ("grey", [0x80, 0x80, 0x80]),
    ("gray", [0x80, 0x80, 0x80]),
    ("lightgray", [0xd3, 0xd3, 0xd3]),
    ("lightgrey", [0xd3, 0xd3, 0xd3]),
    ("darkgray", [0xa9, 0xa9, 0xa9]),
    ("darkgrey", [0xa9, 0xa9, 0xa9]),
    ("dimgray", [0x69, 0x69, 0x69]),
    ("dimgrey", [0x69, 0x69, 0x69]),
    ("silver", [0xc0, 0xc0, 0xc0]),
    ("gainsboro", [0xdc, 0xdc, 0xdc]),
    ("whitesmoke", [0xf5, 0xf5, 0xf5]),
    ("orange", [0xff, 0xa5, 0x00]),
    ("yellow", [0xff, 0xff, 0x00]),
    ("purple", [0x80, 0x00, 0x80]),
    ("magenta", [0xff, 0x00, 0xff]),
    ("fuchsia", [0xff, 0x00, 0xff]),
    ("cyan", [0x00, 0xff, 0xff]),
    ("aqua", [0x00, 0xff, 0xff]),
    ("brown", [0xa5, 0x2a, 0x2a]),
    ("pink", [0xff, 0xc0, 0xcb]),
    ("navy", [0x00, 0x00, 0x80]),
    ("teal", [0x00, 0x80, 0x80]),
    ("olive", [0x80, 0x80, 0x00]),
    ("maroon", [0x80, 0x00, 0x00]),
    ("lime", [0x00, 0xff, 0x00]),
    ("darkred", [0x8b, 0x00, 0x00]),
    ("darkblue", [0x00, 0x00, 0x8b]),
    ("darkgreen", [0x00, 0x64, 0x00]),
    ("lightblue", [0xad, 0xd8, 0xe6]),
    ("lightgreen", [0x90, 0xee, 0x90]),
];

/// Parses a matplotlib-style colour: `#rrggbb`, `#rrggbbaa`, `#rgb`, `#rgba` (alpha is
/// ignored) or a named colour (`lightgray`, `grey`, `tab:blue`, `k`, ...), case-insensitively.
/// Returns `None` for anything else.
pub fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let nib = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return match hex.len() {
            6 | 8 => Some([byte(0)?, byte(2)?, byte(4)?]),
            3 | 4 => Some([nib(0)? * 17, nib(1)? * 17, nib(2)? * 17]),
            _ => None,
        };
    }
    let lower = s.to_ascii_lowercase();
    NAMED
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|&(_, rgb)| rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_lengths_and_ends() {
        assert_eq!(TAB10.len(), 10);
        assert_eq!(DEFAULT_20.len(), 20);
        assert_eq!(ZEILEIS_28.len(), 28);
        assert_eq!(GODSNOT_102.len(), 102);
        assert_eq!((TAB10[0], TAB10[9]), ("#1f77b4", "#17becf"));
        assert_eq!((DEFAULT_20[0], DEFAULT_20[19]), ("#1f77b4", "#8c6d31"));
        assert_eq!((DEFAULT_20[2], DEFAULT_20[7]), ("#279e68", "#b5bd61"));
        assert_eq!((ZEILEIS_28[0], ZEILEIS_28[27]), ("#023fa5", "#336600"));
        assert_eq!((GODSNOT_102[0], GODSNOT_102[101]), ("#ffff00", "#324e72"));
        for list in [&TAB10[..], &DEFAULT_20, &ZEILEIS_28, &GODSNOT_102] {
            assert!(list.iter().all(|s| parse_hex(s).is_some()));
        }
    }

    #[test]
    fn default_palette_picks_scanpy_lists() {
        assert!(default_palette(0).is_empty());
        assert_eq!(default_palette(3)[2], [0x2c, 0xa0, 0x2c]); // tab10 green
        assert_eq!(default_palette(10).len(), 10);
        let p = default_palette(11);
        assert_eq!(
            (p.len(), p[2], p[10]),
            (11, [0x27, 0x9e, 0x68], [0xff, 0xbb, 0x78])
        );
        assert_eq!(default_palette(21)[0], [0x02, 0x3f, 0xa5]);
        assert_eq!(default_palette(28)[27], [0x33, 0x66, 0x00]);
        let p = default_palette(102);
        assert_eq!((p[0], p[101]), ([0xff, 0xff, 0x00], [0x32, 0x4e, 0x72]));
        let p = default_palette(103);
        assert_eq!(p.len(), 103);
        assert!(p.iter().all(|&c| c == GREY));
    }

    #[test]
    fn parse_colours() {
        assert_eq!(parse_hex("#1f77b4"), Some([0x1f, 0x77, 0xb4]));
        assert_eq!(parse_hex("#1F77B4"), Some([0x1f, 0x77, 0xb4]));
        assert_eq!(parse_hex("#1f77b480"), Some([0x1f, 0x77, 0xb4]));
        assert_eq!(parse_hex("#fff"), Some([255, 255, 255]));
        assert_eq!(parse_hex("lightgray"), Some(NA_COLOR));
        assert_eq!(parse_hex("LightGrey"), Some(NA_COLOR));
        assert_eq!(parse_hex("grey"), Some(GREY));
        assert_eq!(parse_hex("gray"), Some(GREY));
        assert_eq!(parse_hex("black"), Some([0, 0, 0]));
        assert_eq!(parse_hex("white"), Some([255, 255, 255]));
        assert_eq!(parse_hex("red"), Some([255, 0, 0]));
        assert_eq!(parse_hex("green"), Some([0, 128, 0]));
        assert_eq!(parse_hex("blue"), Some([0, 0, 255]));
        assert_eq!(parse_hex("tab:blue"), Some([0x1f, 0x77, 0xb4]));
        assert_eq!(parse_hex("tab:olive"), Some([0xbc, 0xbd, 0x22]));
        for bad in [
            "",
            "#",
            "#12345",
            "#1234567",
            "#gggggg",
            "#+1+2+3",
            "notacolor",
            "1f77b4",
        ] {
            assert_eq!(parse_hex(bad), None, "{bad}");
        }
    }
}
