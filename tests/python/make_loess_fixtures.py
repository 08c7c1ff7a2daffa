#!/usr/bin/env python3
"""Regenerate tests/fixtures/loess/cases.json with scikit-misc's LOESS.

The reference is exactly what scanpy's ``highly_variable_genes(flavor="seurat_v3")``
runs::

    from skmisc.loess import loess
    model = loess(x, y, span=span, degree=degree)  # gaussian, surface="interpolate"
    model.fit()
    fitted = model.outputs.fitted_values

Most cases are shaped like seurat_v3 usage: x = log10(gene mean), y = log10(gene
variance) of simulated sparse counts, which gives unsorted input with many exact
duplicate x values (genes with the same total count).  Inputs are rounded to a
few decimals before fitting so the JSON stays small; the rounded values are what
skmisc sees, so the fixture is still exact.

Usage (from the repository root, with scikit-misc and numpy installed)::

    python tests/python/make_loess_fixtures.py
"""

import json
import sys
import pathlib

import numpy as np
from skmisc.loess import loess

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "loess" / "cases.json"


def seurat_like(rng, n_genes, n_cells, decimals=5):
    """log10 mean / log10 variance (ddof=1) of simulated NB counts, zero-variance genes dropped."""
    mu = np.exp(rng.normal(-1.5, 1.6, size=n_genes))  # per-cell mean per gene
    theta = np.exp(rng.normal(0.5, 1.0, size=n_genes))  # NB dispersion
    p = theta / (theta + mu)
    counts = rng.negative_binomial(theta[None, :], p[None, :], size=(n_cells, n_genes))
    mean = counts.mean(axis=0)
    var = counts.var(axis=0, ddof=1)
    keep = var > 0
    x = np.round(np.log10(mean[keep]), decimals)
    y = np.round(np.log10(var[keep]), decimals)
    return x, y


def fit(x, y, span, degree):
    model = loess(x, y, span=span, degree=degree)
    model.fit()
    return np.asarray(model.outputs.fitted_values, dtype=np.float64)


def short_decimal(v):
    """True when repr(v) has at most 15 significant digits.

    serde_json's default float parser (no `float_roundtrip` feature) is only guaranteed to
    round correctly for such numbers, so every *input* value is kept that short; a one-ulp
    misread of x can flip skmisc's degenerate-case decisions. `fitted` may use all 17 digits
    (a one-ulp misread there is far below the test tolerance).
    """
    mantissa = repr(float(v)).lower().split("e")[0].replace("-", "").replace(".", "")
    return len(mantissa.strip("0")) <= 15


def case(name, x, y, span, degree, expect_error=False):
    """One fixture entry; with ``expect_error`` skmisc must refuse the input (fitted: null)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    assert all(short_decimal(v) for v in np.concatenate([x, y])), f"{name}: inputs too long"
    if expect_error:
        try:
            fit(x, y, span, degree)
        except ValueError as e:
            msg = e.args[0]
            msg = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
            return {
                "name": name,
                "span": span,
                "degree": degree,
                "x": [float(v) for v in x],
                "y": [float(v) for v in y],
                "fitted": None,
                "error": msg.strip(),
            }
        raise AssertionError(f"{name}: skmisc unexpectedly accepted this input")
    fitted = fit(x, y, span, degree)
    return {
        "name": name,
        "span": span,
        "degree": degree,
        "x": [float(v) for v in x],
        "y": [float(v) for v in y],
        "fitted": [float(v) for v in fitted],
    }


def main():
    rng = np.random.default_rng(2)
    cases = []

    # seurat_v3-shaped cases: few cells gives many duplicate means (ties).
    for name, n_genes, n_cells, span, degree in [
        ("seurat_small", 48, 60, 0.3, 2),
        ("seurat_fewcells", 200, 30, 0.3, 2),
        ("seurat_under500", 500, 300, 0.3, 2),
        ("seurat_span05", 760, 400, 0.5, 2),
        ("seurat_deg1", 1300, 500, 0.3, 1),
        ("seurat_large", 4000, 800, 0.3, 2),
    ]:
        x, y = seurat_like(rng, n_genes, n_cells)
        cases.append(case(f"{name}_{len(x)}", x, y, span, degree))

    # Simple synthetic curves.
    n = 120
    x = np.round(rng.uniform(-2.0, 3.0, size=n), 6)
    y = np.round(np.sin(1.3 * x) + 0.2 * x**2 + rng.normal(0, 0.15, size=n), 6)
    cases.append(case("sine_n120_span03", x, y, 0.3, 2))
    cases.append(case("sine_n120_deg1_span075", x, y, 0.75, 1))

    # Heavy ties on an integer grid, unsorted.
    n = 300
    x = rng.integers(0, 40, size=n).astype(np.float64)
    y = np.round(np.sqrt(x) + rng.normal(0, 0.3, size=n), 5)
    cases.append(case("integer_grid_ties_n300", x, y, 0.3, 2))

    # Tiny input where floor(n*span*cell) == 0 (cells split down to single points).
    x = np.arange(10.0)
    cases.append(case("tiny_n10_span04", x, np.round(np.sin(x), 6), 0.4, 2))

    # Descending x, exact quadratic (degree 2 reproduces it), span 1.
    x = np.linspace(5.0, -5.0, 41)
    cases.append(case("quadratic_desc_n41_span1", x, 0.5 * x**2 - x + 2.0, 1.0, 2))

    # Degree 0 (local constant) for completeness.
    x = np.round(rng.uniform(0.0, 10.0, size=80), 4)
    cases.append(case("deg0_n80", x, np.round(np.cos(x) + rng.normal(0, 0.1, 80), 5), 0.4, 0))

    # Inputs skmisc refuses (fitted is null, "error" holds skmisc's message).
    # Few cells: a third of the genes share the lowest mean, so the local quadratic at the
    # lower end is singular ("pseudoinverse used" / "near singularities").
    rng_err = np.random.default_rng(1)
    x, y = seurat_like(rng_err, 200, 25)
    cases.append(case(f"error_singular_fewcells_{len(x)}", x, y, 0.3, 2, expect_error=True))
    # Trace of the smoother below skmisc's parameter count ("Chernobyl! trL<k"): degree 0
    # is counted as two parameters, so a wide local-constant fit is refused.
    x = np.round(rng.uniform(0.0, 5.0, size=30), 3)
    y = np.round(np.sin(x) + rng.normal(0, 0.2, size=30), 3)
    cases.append(case("error_trace_deg0_n30_span09", x, y, 0.9, 0, True))
    # Fewer neighbours than coefficients ("Span too small").
    x = np.arange(10.0)
    cases.append(case("error_span_n10_span03", x, np.round(np.sin(x), 6), 0.3, 2, True))
    # Tree outgrows max(n, 200) cells ("k-d tree limited by memory").
    x = np.round(rng.normal(size=400), 4)
    cases.append(case("error_tree_n400_span002", x, np.round(x**2, 4), 0.02, 1, True))

    text = json.dumps(cases, separators=(",", ":"))
    if "--check" in sys.argv[1:]:
        same = OUT.read_text() == text + "\n"
        print("loess fixtures reproduce" if same else f"MISMATCH: {OUT} differs from a fresh run")
        sys.exit(0 if same else 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB)")
    for c in cases:
        tail = f" -> skmisc error {c['error']!r}" if c["fitted"] is None else ""
        print(f"  {c['name']}: n={len(c['x'])} span={c['span']} degree={c['degree']}{tail}")


if __name__ == "__main__":
    main()
