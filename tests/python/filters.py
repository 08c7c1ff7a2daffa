"""Compression-filter fixtures and checks for tests/filters.rs.

  filters.py make DIR
      Write DIR/plain.h5ad with anndata (uncompressed: X CSR float32, obs with strings,
      categoricals, numbers and nullable columns, var, obsm/X_pca) and DIR/dense_plain.h5ad (dense
      X), then copies in which EVERY dataset is rewritten through one filter pipeline with h5py and
      hdf5plugin, and copies stored with filters scoop does not have. Writes DIR/manifest.json:
      {"variants": [{name, base, x_words}], "unknown": [{name, element, id, filter}]}.
  filters.py check-written PLAIN COMPRESSED CODEC [--no-plugin]
      Load both files with anndata and require equal X, obs, var and obsm; require X/data and
      X/indices of COMPRESSED to carry CODEC's filter (gzip, lzf or zstd). With --no-plugin the
      files are read without importing hdf5plugin (gzip and lzf must load so).
"""
import json
import sys
from pathlib import Path

import numpy as np


def make_plain(d: Path):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    # Plain string arrays (anndata >= 0.13 with pandas 3 would write nullable strings, a separate
    # matter from compression).
    if hasattr(ad.settings, "allow_write_nullable_strings"):
        ad.settings.allow_write_nullable_strings = False
    rng = np.random.default_rng(7)
    n_obs, n_vars = 25_000, 200
    x = sp.random(n_obs, n_vars, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    x.data = np.round(x.data * 20).astype(np.float32) + 1
    lines = np.array(["A549", "HepG2", "K562", "MCF7", "PC3"])
    cat = pd.Categorical(lines[rng.integers(0, 5, n_obs)])
    cat[rng.random(n_obs) < 0.05] = np.nan
    counts = pd.array(rng.integers(0, 1000, n_obs), dtype="Int64")
    counts[rng.random(n_obs) < 0.1] = pd.NA
    obs = pd.DataFrame(
        {
            "cell_line": cat,
            "barcode": [f"BC{i:07d}-{rng.integers(1 << 30)}" for i in range(n_obs)],
            "n_counts": rng.random(n_obs) * 1e4,
            "n_genes": rng.integers(0, n_vars, n_obs).astype(np.int32),
            "passed": rng.random(n_obs) < 0.9,
            "umis": counts,
        },
        index=[f"cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(
        {
            "gene_symbol": [f"SYM{i}" for i in range(n_vars)],
            "mean": rng.random(n_vars),
            "chrom": pd.Categorical([f"chr{i % 23 + 1}" for i in range(n_vars)]),
        },
        index=[f"ENSG{i:011d}" for i in range(n_vars)],
    )
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.obsm["X_pca"] = rng.standard_normal((n_obs, 10)).astype(np.float32)
    a.uns["title"] = "filters"
    a.write_h5ad(d / "plain.h5ad")

    n_dense = 3000
    dense = ad.AnnData(
        X=(rng.random((n_dense, 60)) * (rng.random((n_dense, 60)) < 0.2)).astype(np.float32),
        obs=pd.DataFrame({"group": pd.Categorical(lines[rng.integers(0, 5, n_dense)])},
                         index=[f"c{i}" for i in range(n_dense)]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(60)]),
    )
    dense.write_h5ad(d / "dense_plain.h5ad")


def copy_attrs(src, dst):
    for k in src.attrs:
        dst.attrs.create(k, src.attrs[k], dtype=src.attrs.get_id(k).dtype)


def rewrite(src_path, dst_path, filt, only=None, x_chunks=None, x_contiguous=False, strings=True):
    """Copy src to dst, rewriting every dataset (those `only` accepts; string datasets only with
    `strings`: blosc crashes on them and fletcher32 refuses them) through `filt`."""
    import h5py

    with h5py.File(src_path, "r") as src, h5py.File(dst_path, "w") as dst:
        copy_attrs(src, dst)

        def visit(gs, gd):
            for name, obj in gs.items():
                if isinstance(obj, h5py.Group):
                    g = gd.create_group(name)
                    copy_attrs(obj, g)
                    visit(obj, g)
                    continue
                path = obj.name
                kw = {}
                is_str = obj.dtype.kind == "O"
                if (obj.shape != () and obj.size > 0 and (only is None or only(path))
                        and (strings or not is_str)):
                    kw = dict(filt)
                    kw["chunks"] = True
                    if x_chunks and path in ("/X/data", "/X/indices"):
                        kw["chunks"] = (x_chunks,)
                    if x_chunks and path == "/X" and obj.ndim == 2:
                        kw["chunks"] = (x_chunks, obj.shape[1])
                    if x_contiguous and path.startswith("/X"):
                        kw = {}
                ds = gd.create_dataset(name, data=obj[()], dtype=obj.dtype, **kw)
                copy_attrs(obj, ds)

        visit(src, dst)


def make(d: Path):
    import h5py
    import hdf5plugin as hp

    d.mkdir(parents=True, exist_ok=True)
    make_plain(d)
    plain, dense = d / "plain.h5ad", d / "dense_plain.h5ad"
    gzip = {"compression": "gzip", "compression_opts": 4}
    zstd5 = dict(hp.Zstd(clevel=5))
    bshuf_lz4 = dict(hp.Bitshuffle(cname="lz4"))
    NO_STR = {"strings": False}
    variants = [
        # name, base, filter kwargs, extra rewrite kwargs, inspect's wording of X's pipeline
        ("gzip_shuffle", plain, {**gzip, "shuffle": True}, {}, "gzip level 4 + shuffle"),
        ("lzf", plain, {"compression": "lzf"}, {}, "lzf"),
        ("blosc_lz4_shuffle", plain, dict(hp.Blosc("lz4", 5, hp.Blosc.SHUFFLE)), NO_STR,
         "blosc lz4 level 5 + shuffle"),
        ("blosc_zstd_bitshuffle", plain, dict(hp.Blosc("zstd", 5, hp.Blosc.BITSHUFFLE)), NO_STR,
         "blosc zstd level 5 + bitshuffle"),
        ("blosc_lz4hc_noshuffle", plain, dict(hp.Blosc("lz4hc", 3, hp.Blosc.NOSHUFFLE)), NO_STR,
         "blosc lz4hc level 3"),
        ("blosc_zlib_noshuffle", plain, dict(hp.Blosc("zlib", 6, hp.Blosc.NOSHUFFLE)), NO_STR,
         "blosc zlib level 6"),
        ("blosc_blosclz_bitshuffle", plain, dict(hp.Blosc("blosclz", 9, hp.Blosc.BITSHUFFLE)), NO_STR,
         "blosc blosclz level 9 + bitshuffle"),
        ("bitshuffle_lz4", plain, bshuf_lz4, {}, "bitshuffle lz4"),
        ("bitshuffle_zstd", plain, dict(hp.Bitshuffle(cname="zstd", clevel=5)), {},
         "bitshuffle zstd level 5"),
        ("bitshuffle_none", plain, dict(hp.Bitshuffle(cname="none")), {}, "bitshuffle"),
        ("bitshuffle_lz4_block64", plain, dict(hp.Bitshuffle(nelems=64, cname="lz4")), {},
         "bitshuffle lz4"),
        ("zstd", plain, zstd5, {}, "zstd level 5"),
        ("fletcher32_gzip", plain, {**gzip, "fletcher32": True}, NO_STR,
         "gzip level 4 + fletcher32"),
        ("fletcher32", plain, {"fletcher32": True}, NO_STR, "fletcher32"),
        # X/data chunks smaller and larger than a 10,000-row read (about 100,000 values).
        ("chunks_small_bitshuffle", plain, bshuf_lz4, {"x_chunks": 4099}, "bitshuffle lz4"),
        ("chunks_large_zstd", plain, zstd5, {"x_chunks": 150_001}, "zstd level 5"),
        ("contiguous_x_gzip", plain, gzip, {"x_contiguous": True}, "none"),
        ("dense_zstd", dense, zstd5, {"x_chunks": 450}, "zstd level 5"),
        ("dense_bitshuffle_zstd", dense, dict(hp.Bitshuffle(cname="zstd", clevel=2)),
         {"x_chunks": 333}, "bitshuffle zstd level 2"),
    ]
    manifest = {"variants": [], "unknown": []}
    for name, base, filt, extra, words in variants:
        rewrite(base, d / f"{name}.h5ad", filt, **extra)
        manifest["variants"].append({"name": name, "base": base.stem, "x_words": words})
    # Filters scoop does not have, each on one element.
    unknown = [
        ("unknown_lz4", "/X/data", dict(hp.LZ4()), 32004, "lz4"),
        ("unknown_bzip2", "/obs/n_counts", dict(hp.BZip2()), 307, "bzip2"),
    ]
    if h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP):
        unknown.append(("unknown_szip", "/var/mean", {"compression": "szip"}, 4, "szip"))
    for name, element, filt, fid, fname in unknown:
        rewrite(plain, d / f"{name}.h5ad", filt, only=lambda p, e=element: p == e)
        manifest["unknown"].append({"name": name, "element": element, "id": fid, "filter": fname})
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1))


def check_written(plain, comp, codec, plugin):
    if plugin:
        import hdf5plugin  # noqa: F401  (registers zstd with h5py's HDF5)
    import anndata as ad
    import h5py
    import pandas as pd

    a, b = ad.read_h5ad(plain), ad.read_h5ad(comp)
    errs = []
    if a.shape != b.shape:
        errs.append(f"shape {a.shape} != {b.shape}")
    else:
        xa, xb = a.X.tocsr(), b.X.tocsr()
        if (xa != xb).nnz or xa.dtype != xb.dtype:
            errs.append("X differs")
        for key in ("obs", "var"):
            try:
                pd.testing.assert_frame_equal(getattr(a, key), getattr(b, key))
            except AssertionError as e:
                errs.append(f"{key}: {e}")
        for k in a.obsm:
            if not np.array_equal(np.asarray(a.obsm[k]), np.asarray(b.obsm[k])):
                errs.append(f"obsm/{k} differs")
    want = {"gzip": "gzip", "lzf": "lzf", "zstd": "32015"}[codec.split(":")[0]]
    with h5py.File(comp, "r") as f:
        for name in ("X/data", "X/indices"):
            ds = f[name]
            if want not in ds._filters:
                errs.append(f"{name}: filters {ds._filters}, expected {want}")
    if errs:
        print("\n".join(errs))
        sys.exit(1)
    print(f"ok: {comp} ({codec}) reads like {plain}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(Path(sys.argv[2]))
    elif cmd == "check-written":
        check_written(sys.argv[2], sys.argv[3], sys.argv[4], "--no-plugin" not in sys.argv[5:])
    else:
        sys.exit(f"unknown command {cmd}")
