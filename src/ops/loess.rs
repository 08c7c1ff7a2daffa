//! One-predictor LOESS, reproducing the fit scanpy's
//! `highly_variable_genes(flavor="seurat_v3")` gets from scikit-misc:
//!
//! ```python
//! model = skmisc.loess.loess(x, y, span=0.3, degree=2)  # gaussian, surface="interpolate"
//! model.fit()
//! fitted = model.outputs.fitted_values
//! ```
//!
//! scikit-misc wraps Cleveland, Grosse & Shyu's `dloess` (netlib). With
//! `surface = "interpolate"` it does not fit a local regression at every point. Instead it:
//!
//! 1. Builds a k-d tree over `x` (one dimension here, so a recursive partition of the
//!    line). The bounding box is the data range widened by 0.5 % of its width on each side.
//!    A cell with more than `fc = floor(n * span * cell)` points (`cell = 0.2`) is split at
//!    the median order statistic; if the median value is tied with its neighbour the split
//!    point moves outwards (offsets `0, +1, -1, +2, -2, ...`) to the nearest gap so that ties
//!    stay together, and a cell whose split value would land on its own boundary becomes a
//!    leaf. Cells are processed breadth-first and the tree may hold at most
//!    `max(n, 200)` cells; skmisc treats hitting that limit as an error.
//! 2. At every cell vertex `v` fits a weighted local polynomial of the given degree to the
//!    `q = floor(n * span + 1e-5)` nearest points: the bandwidth is the distance to the
//!    `q`-th nearest point (squared-distance order statistic; `span <= 1` so no enlargement),
//!    weights are tricube `(1 - (d/h)^3)^3` (points at exactly the bandwidth get weight 0),
//!    and the least-squares problem is solved on column-equilibrated data through a
//!    Householder QR followed by an SVD of `R`. skmisc raises an error as soon as a local
//!    fit is numerically singular (smallest singular value `<= 100 * eps * largest`), and so
//!    do we. Each vertex keeps the fitted value *and* the fitted slope (the linear
//!    coefficient of the local polynomial).
//! 3. Evaluates the surface at every input `x` by cubic Hermite interpolation between the
//!    two vertices of the leaf cell containing it (a point on a split value belongs to the
//!    left cell, which gives the same value).
//!
//! skmisc also computes the trace of the smoother matrix for its statistics (exactly for
//! `n < 500`, by a closed-form approximation otherwise) and rejects fits whose trace falls
//! outside `[parameters, n]`; this module reproduces that check so it accepts and rejects the
//! same inputs. One deliberate difference: when the smoother interpolates the data (tiny `n`,
//! neighbourhoods of `coefficients + 1` points) the trace is `n` up to rounding, and skmisc's
//! verdict then depends on the sign of its rounding error; such fits are accepted here.
//!
//! Only what seurat_v3 needs is supported: one predictor, gaussian family, unit prior
//! weights, `surface = "interpolate"`, degree 0, 1 or 2. Work is `O(n log n)` for sorting plus
//! `O(#vertices * q)` for the local fits, so tens of thousands of points take milliseconds.

/// Fraction of `span` that bounds the number of points in a k-d tree leaf (skmisc's default
/// `cell = 0.2`).
const CELL: f64 = 0.2;

/// Below this many points skmisc computes the exact trace of the smoother, above it an
/// approximation.
const EXACT_TRACE_BELOW: usize = 500;

/// Why a LOESS fit was refused. Apart from [`LoessError::NonFinite`] (skmisc does not check
/// for NaN or infinity) every variant corresponds to inputs that scikit-misc's
/// `loess(...).fit()` also rejects (or, for empty input, crashes on).
#[derive(Debug, thiserror::Error)]
pub enum LoessError {
    /// `x` and `y` have different lengths.
    #[error("loess: x has {x_len} values but y has {y_len}; they must have the same length")]
    LengthMismatch {
        /// Length of `x`.
        x_len: usize,
        /// Length of `y`.
        y_len: usize,
    },
    /// `span` is not in `(0, 1]`.
    #[error("loess: span must be in (0, 1], got {0}")]
    InvalidSpan(f64),
    /// `degree` is not 0, 1 or 2.
    #[error("loess: degree must be 0, 1 or 2, got {0}")]
    InvalidDegree(usize),
    /// An input value is NaN or infinite.
    #[error("loess: {array}[{index}] = {value} is not finite")]
    NonFinite {
        /// Which input holds the value (`"x"` or `"y"`).
        array: &'static str,
        /// Position of the first non-finite value.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The neighbourhood (`floor(n * span)` points) is too small for the local polynomial:
    /// it must hold more points than the polynomial has coefficients.
    #[error(
        "loess: span {span} too small for {n} points: each local fit would use {neighbours} \
         points but a degree-{degree} fit needs at least {needed}"
    )]
    SpanTooSmall {
        /// Requested span.
        span: f64,
        /// Number of points.
        n: usize,
        /// Requested degree.
        degree: usize,
        /// Points in each local neighbourhood, `min(n, floor(n * span + 1e-5))`.
        neighbours: usize,
        /// Smallest neighbourhood size accepted for this degree (coefficients + 1).
        needed: usize,
    },
    /// The k-d tree hit its size limit of `max(n, 200)` cells (span too small relative to
    /// the number of points); skmisc reports "k-d tree limited by memory".
    #[error("loess: k-d tree limited by memory ({cells} cells, limit {limit}); make span bigger")]
    TreeTooLarge {
        /// Cells in the tree when it stopped.
        cells: usize,
        /// Maximum number of cells, `max(n, 200)`.
        limit: usize,
    },
    /// All `floor(n * span)` nearest neighbours of a vertex share its x value.
    #[error("loess: zero-width neighbourhood at x = {at}; make span bigger")]
    ZeroWidthNeighbourhood {
        /// Vertex where the local fit was attempted.
        at: f64,
    },
    /// Every neighbour of a vertex lies exactly on the neighbourhood boundary, so all
    /// tricube weights are zero.
    #[error("loess: all data on the boundary of the neighbourhood at x = {at}; make span bigger")]
    AllOnBoundary {
        /// Vertex where the local fit was attempted.
        at: f64,
    },
    /// A local least-squares problem is numerically singular (typically fewer distinct x
    /// values in the neighbourhood than polynomial coefficients). skmisc only warns
    /// ("pseudoinverse used") but that warning makes `fit()` raise.
    #[error(
        "loess: local fit at x = {at} is numerically singular (reciprocal condition number \
         {rcond:.3e}); too few distinct x values in the neighbourhood, make span bigger"
    )]
    Singular {
        /// Vertex where the local fit was attempted.
        at: f64,
        /// Smallest over largest singular value of the equilibrated local design matrix.
        rcond: f64,
    },
    /// The trace of the smoother matrix is outside `[parameters, n]` (skmisc's
    /// "Chernobyl!" check; the trace is exact for `n < 500` and skmisc's approximation
    /// otherwise). Happens for spans so small that the smoother interpolates, and for
    /// degree 0 with a large span (skmisc counts degree 0 as two parameters).
    #[error(
        "loess: trace of the smoother matrix ({trace:.4}) is outside [{parameters}, {n}]; \
         skmisc rejects this span/degree for this data"
    )]
    TraceOutOfRange {
        /// Trace of the smoother (exact for `n < 500`, approximated otherwise).
        trace: f64,
        /// Parameter count skmisc compares it with: 3 for degree 2, else 2.
        parameters: usize,
        /// Number of points.
        n: usize,
    },
}

/// Fits LOESS of `y` on `x` exactly as scikit-misc's `loess(x, y, span, degree).fit()` does
/// (gaussian family, `surface = "interpolate"`, `cell = 0.2`) and returns the fitted values at
/// the input points, in input order.
///
/// `x` need not be sorted and may contain ties. `span` must be in `(0, 1]` and `degree` 0, 1
/// or 2 (seurat_v3 uses `span = 0.3`, `degree = 2`). The result matches skmisc's
/// `outputs.fitted_values` to rounding error.
///
/// # Errors
///
/// Returns a [`LoessError`] for mismatched lengths, non-finite inputs, a span or degree out
/// of range, and for every degenerate configuration skmisc refuses: too few points for the
/// span and degree, a k-d tree that outgrows its limit, zero-width or all-boundary
/// neighbourhoods, numerically singular local fits, and an out-of-range smoother trace.
pub fn loess_fitted(
    x: &[f64],
    y: &[f64],
    span: f64,
    degree: usize,
) -> Result<Vec<f64>, LoessError> {
    if x.len() != y.len() {
        return Err(LoessError::LengthMismatch {
            x_len: x.len(),
            y_len: y.len(),
        });
    }
    if !(span > 0.0 && span <= 1.0) {
        return Err(LoessError::InvalidSpan(span));
    }
    if degree > 2 {
        return Err(LoessError::InvalidDegree(degree));
    }
    for (array, values) in [("x", x), ("y", y)] {
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(LoessError::NonFinite {
                array,
                index,
                value,
            });
        }
    }

    let n = x.len();
    let n_coef = degree + 1;
    // loess_workspace(): nf = min(n, floor(n * span + 1e-5)); ehg139 requires k <= nf - 1.
    let neighbours = ((n as f64 * span + 1e-5).floor() as usize).min(n);
    if neighbours < n_coef + 1 {
        return Err(LoessError::SpanTooSmall {
            span,
            n,
            degree,
            neighbours,
            needed: n_coef + 1,
        });
    }

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| x[a].total_cmp(&x[b]));
    let xs: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let ys: Vec<f64> = order.iter().map(|&i| y[i]).collect();

    let vertices = build_vertices(&xs, span)?;
    let fits = vertices
        .iter()
        .map(|&q| local_fit(&xs, &ys, q, neighbours, n_coef))
        .collect::<Result<Vec<_>, _>>()?;
    let surface = Surface::new(fits);

    let parameters = trace_parameters(degree);
    let trace = if n < EXACT_TRACE_BELOW {
        exact_trace(&surface, &xs, n_coef)
    } else {
        approximate_trace(parameters, span)
    };
    check_trace(trace, n, parameters)?;

    Ok(x.iter().map(|&z| surface.eval(z)).collect())
}

/// One k-d tree cell: the sorted-point index range `lo..=hi` (empty when `hi < lo`) and the
/// indices of its two vertices.
#[derive(Clone, Copy)]
struct Cell {
    lo: isize,
    hi: isize,
    v_lo: usize,
    v_hi: usize,
}

/// Builds the k-d tree over the sorted `xs` as `ehg126`/`ehg124` do and returns the vertex
/// coordinates in creation order (bounding box first).
fn build_vertices(xs: &[f64], span: f64) -> Result<Vec<f64>, LoessError> {
    let n = xs.len();
    // ehg126: widen the data range by 0.5 % (or a tiny absolute amount) on each side.
    let (alpha, beta) = (xs[0], xs[n - 1]);
    let margin = 0.005 * (beta - alpha).max(1e-10 * alpha.abs().max(beta.abs()) + 1e-30);
    let mut vertices = vec![alpha - margin, beta + margin];

    // Leaf size bound fc = floor(n * (span * cell)) and the nvmax = ncmax workspace limit.
    let leaf_size = (n as f64 * (span * CELL)).floor() as isize;
    let limit = n.max(200);

    let mut cells = vec![Cell {
        lo: 0,
        hi: n as isize - 1,
        v_lo: 0,
        v_hi: 1,
    }];
    let mut p = 0;
    while p < cells.len() {
        let Cell { lo, hi, v_lo, v_hi } = cells[p];
        p += 1;
        let width = vertices[v_hi] - vertices[v_lo];
        let diameter = (width * width).sqrt();
        // Leaf when it holds at most fc points (hi - lo + 1 <= fc) or has zero width.
        if hi - lo < leaf_size || diameter <= 0.0 {
            continue;
        }
        if limit < cells.len() + 2 || (limit as f64) < vertices.len() as f64 + 1.0 {
            continue;
        }
        // Median split; ties go with the upper son: search offsets 0, +1, -1, +2, -2, ...
        // for the nearest gap between consecutive order statistics.
        let mut m = (lo + hi) / 2;
        let mut offset: isize = 0;
        loop {
            let i = m + offset;
            if i >= hi || i < lo {
                break;
            }
            if xs[i as usize] == xs[i as usize + 1] {
                offset = -offset;
                if offset >= 0 {
                    offset += 1;
                }
            } else {
                m = i;
                break;
            }
        }
        let split = xs[m as usize];
        if vertices[v_lo] == split || vertices[v_hi] == split {
            continue;
        }
        let v_new = vertices.len();
        vertices.push(split);
        cells.push(Cell {
            lo,
            hi: m,
            v_lo,
            v_hi: v_new,
        });
        cells.push(Cell {
            lo: m + 1,
            hi,
            v_lo: v_new,
            v_hi,
        });
    }

    // lowesb: a tree that filled its workspace is an error.
    if (limit as f64) < vertices.len() as f64 + 1.0 || limit < cells.len() + 2 {
        return Err(LoessError::TreeTooLarge {
            cells: cells.len(),
            limit,
        });
    }
    Ok(vertices)
}

/// Local regression at one vertex.
struct VertexFit {
    /// Vertex coordinate.
    at: f64,
    /// Squared bandwidth (squared distance to the `q`-th nearest point).
    rho: f64,
    /// Fitted value at the vertex.
    value: f64,
    /// Fitted slope at the vertex.
    slope: f64,
    /// `(X' W X)^-1` of the local fit (first `n_coef` rows/columns used), for the trace.
    gram_inv: [[f64; 3]; 3],
}

/// Tricube weight of a point at squared distance `dist` for squared bandwidth `rho`
/// (`ehg127` with unit robustness weights), returned as its square root, the row scale of
/// the weighted least-squares problem.
fn sqrt_tricube(dist: f64, rho: f64) -> f64 {
    let r = (dist / rho).sqrt();
    let t = 1.0 - r * r * r;
    (t * t * t).sqrt()
}

/// Weighted local polynomial fit at `at` over the `neighbours` nearest points (`ehg127`).
fn local_fit(
    xs: &[f64],
    ys: &[f64],
    at: f64,
    neighbours: usize,
    n_coef: usize,
) -> Result<VertexFit, LoessError> {
    let n = xs.len();
    // The q nearest points of a sorted line form a contiguous window [lo, hi).
    let mut lo = xs.partition_point(|&v| v < at);
    let mut hi = lo;
    while hi - lo < neighbours {
        if lo == 0 {
            hi += 1;
        } else if hi == n || at - xs[lo - 1] <= xs[hi] - at {
            lo -= 1;
        } else {
            hi += 1;
        }
    }
    let sq = |v: f64| (v - at) * (v - at);
    let rho = sq(xs[lo]).max(sq(xs[hi - 1]));
    if rho <= 0.0 {
        return Err(LoessError::ZeroWidthNeighbourhood { at });
    }

    // Weighted design matrix (column-major, `rows` per column) and weighted response.
    let rows = hi - lo;
    let mut b = vec![0.0; rows * n_coef];
    let mut eta = vec![0.0; rows];
    let mut any_weight = false;
    for (r, i) in (lo..hi).enumerate() {
        let d = xs[i] - at;
        let w = sqrt_tricube(d * d, rho);
        any_weight |= w != 0.0;
        b[r] = w;
        if n_coef > 1 {
            b[rows + r] = w * d;
        }
        if n_coef > 2 {
            b[2 * rows + r] = w * (d * d);
        }
        eta[r] = w * ys[i];
    }
    if !any_weight {
        return Err(LoessError::AllOnBoundary { at });
    }

    // Equilibrate columns to unit norm.
    let mut col_norm = [1.0; 3];
    for (j, norm) in col_norm.iter_mut().enumerate().take(n_coef) {
        let col = &mut b[j * rows..(j + 1) * rows];
        let s = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        if s > 0.0 {
            col.iter_mut().for_each(|v| *v /= s);
            *norm = s;
        }
    }

    // Householder QR (LINPACK dqrdc, no pivoting), applying Q' to eta as we go (dqrsl).
    let mut r_mat = [[0.0; 3]; 3]; // r_mat[col][row], upper triangle
    for l in 0..n_coef {
        let (done, rest) = b.split_at_mut((l + 1) * rows);
        let v = &mut done[l * rows + l..];
        let mut norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm != 0.0 {
            if v[0] != 0.0 {
                norm = norm.copysign(v[0]);
            }
            v.iter_mut().for_each(|a| *a /= norm);
            v[0] += 1.0;
            let reflect = |target: &mut [f64]| {
                let t = -dot(v, target) / v[0];
                target
                    .iter_mut()
                    .zip(v.iter())
                    .for_each(|(a, &h)| *a += t * h);
            };
            for j in l + 1..n_coef {
                reflect(&mut rest[(j - l - 1) * rows + l..(j - l) * rows]);
            }
            reflect(&mut eta[l..]);
            r_mat[l][l] = -norm;
        }
        for j in l + 1..n_coef {
            r_mat[j][l] = rest[(j - l - 1) * rows + l];
        }
    }

    // SVD of R = U S V' (one-sided Jacobi on the columns of R).
    let mut a = r_mat;
    let mut v = [[0.0; 3]; 3];
    for (j, col) in v.iter_mut().enumerate().take(n_coef) {
        col[j] = 1.0;
    }
    jacobi_svd(&mut a, &mut v, n_coef);
    let sigma: Vec<f64> = (0..n_coef)
        .map(|j| dot(&a[j][..n_coef], &a[j][..n_coef]).sqrt())
        .collect();
    let s_max = sigma.iter().copied().fold(0.0, f64::max);
    let s_min = sigma.iter().copied().fold(f64::INFINITY, f64::min);
    if s_min <= s_max * (100.0 * f64::EPSILON) {
        return Err(LoessError::Singular {
            at,
            rcond: if s_max > 0.0 { s_min / s_max } else { 0.0 },
        });
    }

    // Coefficients: D^-1 V S^-1 U' (Q' eta)[..k], with U S = a.
    let qty = &eta[..n_coef];
    let gamma: Vec<f64> = (0..n_coef)
        .map(|j| dot(&a[j][..n_coef], qty) / (sigma[j] * sigma[j]))
        .collect();
    let coef =
        |i: usize| -> f64 { (0..n_coef).map(|j| v[j][i] * gamma[j]).sum::<f64>() / col_norm[i] };
    let value = coef(0);
    let slope = if n_coef > 1 { coef(1) } else { 0.0 };

    // (X' W X)^-1 = D^-1 V S^-2 V' D^-1, used only for the smoother trace.
    let mut gram_inv = [[0.0; 3]; 3];
    for (i, row) in gram_inv.iter_mut().enumerate().take(n_coef) {
        for (k, entry) in row.iter_mut().enumerate().take(n_coef) {
            let s: f64 = (0..n_coef)
                .map(|j| v[j][i] * v[j][k] / (sigma[j] * sigma[j]))
                .sum();
            *entry = s / (col_norm[i] * col_norm[k]);
        }
    }

    Ok(VertexFit {
        at,
        rho,
        value,
        slope,
        gram_inv,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One-sided (Hestenes) Jacobi SVD of the `k x k` column-major matrix `a`: on return the
/// columns of `a` are `U S` (mutually orthogonal) and `v` holds the right singular vectors.
fn jacobi_svd(a: &mut [[f64; 3]; 3], v: &mut [[f64; 3]; 3], k: usize) {
    for _sweep in 0..64 {
        let mut rotated = false;
        for p in 0..k {
            for q in p + 1..k {
                let alpha = dot(&a[p][..k], &a[p][..k]);
                let beta = dot(&a[q][..k], &a[q][..k]);
                let gamma = dot(&a[p][..k], &a[q][..k]);
                if gamma == 0.0 || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for m in [&mut *a, &mut *v] {
                    let (left, right) = m.split_at_mut(q);
                    for (xp, xq) in left[p][..k].iter_mut().zip(&mut right[0][..k]) {
                        let (u, w) = (*xp, *xq);
                        *xp = c * u - s * w;
                        *xq = s * u + c * w;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
}

/// The interpolated LOESS surface: vertices sorted by coordinate with their fits.
struct Surface {
    fits: Vec<VertexFit>,
}

/// Cubic Hermite basis `(phi0, phi1, psi0, psi1)` at relative position `h` in a cell.
fn hermite(h: f64) -> [f64; 4] {
    [
        (1.0 - h) * (1.0 - h) * (1.0 + 2.0 * h),
        h * h * (3.0 - 2.0 * h),
        h * (1.0 - h) * (1.0 - h),
        h * h * (h - 1.0),
    ]
}

impl Surface {
    fn new(mut fits: Vec<VertexFit>) -> Self {
        fits.sort_by(|a, b| a.at.total_cmp(&b.at));
        Surface { fits }
    }

    /// Leaf cell containing `z` as the pair of vertex positions in `fits`; a point on a
    /// split value descends to the lower cell, as `ehg128` does.
    fn cell(&self, z: f64) -> (usize, usize) {
        let right = self
            .fits
            .partition_point(|f| f.at < z)
            .clamp(1, self.fits.len() - 1);
        (right - 1, right)
    }

    /// Hermite interpolation of vertex values and slopes (`ehg128` for one dimension).
    fn eval(&self, z: f64) -> f64 {
        let (l, r) = self.cell(z);
        let (a, b) = (&self.fits[l], &self.fits[r]);
        let width = b.at - a.at;
        let [phi0, phi1, psi0, psi1] = hermite((z - a.at) / width);
        phi0 * a.value + phi1 * b.value + (psi0 * a.slope + psi1 * b.slope) * width
    }
}

/// Number of parameters skmisc's statistics assume: `(d+2)(d+1)/2 = 3` for degree 2 and
/// `d+1 = 2` otherwise (degree 0 is counted like degree 1 there).
fn trace_parameters(degree: usize) -> usize {
    if degree > 1 {
        3
    } else {
        2
    }
}

/// Exact trace of the interpolated smoother matrix, `sum_j d fitted_j / d y_j`, as `ehg139`
/// computes it for `n < 500`.
fn exact_trace(surface: &Surface, xs: &[f64], n_coef: usize) -> f64 {
    let mut trace = 0.0;
    for &z in xs {
        let (l, r) = surface.cell(z);
        let (a, b) = (&surface.fits[l], &surface.fits[r]);
        let width = b.at - a.at;
        let [phi0, phi1, psi0, psi1] = hermite((z - a.at) / width);
        for (fit, phi, psi) in [(a, phi0, psi0), (b, phi1, psi1)] {
            let d = z - fit.at;
            let dist = d * d;
            if dist >= fit.rho {
                continue;
            }
            // Influence of y_j on the vertex fit: (X' W X)^-1 x_j w_j.
            let w = sqrt_tricube(dist, fit.rho);
            let basis = [1.0, d, d * d];
            let row = |i: usize| w * w * dot(&fit.gram_inv[i][..n_coef], &basis[..n_coef]);
            let slope = if n_coef > 1 { row(1) } else { 0.0 };
            trace += phi * row(0) + psi * slope * width;
        }
    }
    trace
}

/// skmisc's approximation of the trace for `n >= 500` (`ehg196`/`ehg197` with `d = 1`).
fn approximate_trace(parameters: usize, span: f64) -> f64 {
    let d = 1.0;
    let g1 = (-0.08125 * d + 0.13) * d + 1.05;
    let factor = 1.0 + f64::max(0.0, (g1 - span) / span);
    let (linear, quadratic) = (2.0 * factor, 3.0 * factor);
    let alpha = (parameters as f64 - 2.0) / (3.0 - 2.0);
    (1.0 - alpha) * linear + alpha * quadratic
}

/// skmisc's sanity check on the smoother trace (`ehg141`, "Chernobyl!"): the fit is refused
/// when the trace is below the parameter count or above `n`. A trace equal to `n` up to
/// rounding (an interpolating smoother) is accepted; skmisc's verdict there depends on the
/// sign of its rounding error.
fn check_trace(trace: f64, n: usize, parameters: usize) -> Result<(), LoessError> {
    let k = parameters as f64;
    let n_f = n as f64;
    if (trace - n_f).abs() <= 1e-9 * n_f {
        return Ok(());
    }
    let corx = (k / n_f).sqrt();
    let z = ((k / trace).sqrt() - corx) / (1.0 - corx);
    // NaN compares false in skmisc's tests too, so it is not an error.
    if !z.is_nan() && !(0.0..=1.0).contains(&z) {
        return Err(LoessError::TraceOutOfRange {
            trace,
            parameters,
            n,
        });
    }
    Ok(())
}
