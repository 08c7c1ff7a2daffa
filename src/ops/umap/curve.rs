//! umap's a/b: the curve 1 / (1 + a·x^(2b)) fitted to the membership that `min_dist` and
//! `spread` ask for.

/// a, b of the curve 1 / (1 + a·x^(2b)) fitted (least squares, Levenberg–Marquardt from
/// a = b = 1, as scipy's `curve_fit`) to 1 below `min_dist` and exp(−(x − min_dist)/spread)
/// above, on 300 points of [0, 3·spread].
pub fn find_ab_params(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| (1.0 / (1.0 + a * x.powf(2.0 * b)) - y).powi(2))
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut lambda = 1e-3;
    let mut c = cost(a, b);
    for _ in 0..500 {
        // Normal equations JᵀJ δ = −Jᵀr of the residuals r = f − y.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            let p = if x > 0.0 { x.powf(2.0 * b) } else { 0.0 };
            let f = 1.0 / (1.0 + a * p);
            let r = f - y;
            let da = -p * f * f;
            let db = if x > 0.0 {
                -a * p * 2.0 * x.ln() * f * f
            } else {
                0.0
            };
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let (m11, m22) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m11 * m22 - jab * jab;
            if det.abs() < 1e-300 {
                lambda *= 10.0;
                continue;
            }
            let da = -(m22 * ga - jab * gb) / det;
            let db = -(m11 * gb - jab * ga) / det;
            let c_new = cost(a + da, b + db);
            if c_new < c {
                let rel = (c - c_new) / c.max(1e-300);
                a += da;
                b += db;
                c = c_new;
                lambda = (lambda / 10.0).max(1e-12);
                improved = rel > 1e-15;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a, b)
}
