"""Checks files scoop wrote with --compression against their uncompressed twins (tests/writer.rs).

  writer.py check PLAIN COMPRESSED CODEC [PLAIN COMPRESSED CODEC ...]

Both files load in anndata with equal contents (X exactly: values, columns, row pointers and
dtypes; obs, var, obsm, layers), and h5py reports CODEC's filter, level included, on X/data and
X/indices. zstd files are read after `import hdf5plugin`; the other codecs without it.
"""

import sys

import numpy as np
import pandas as pd


def expected_filter(codec):
    name, _, level = codec.partition(":")
    if name == "gzip":
        return ("gzip", int(level or 4))
    if name == "zstd":
        return ("zstd", int(level or 3))
    return (name, None)


def filter_of(ds):
    """(codec, level) of an h5py dataset's pipeline."""
    plist = ds.id.get_create_plist()
    found = []
    for i in range(plist.get_nfilters()):
        fid, _flags, cd, _name = plist.get_filter(i)
        found.append((fid, tuple(cd)))
    if not found:
        return ("none", None)
    if len(found) != 1:
        return ("several", found)
    fid, cd = found[0]
    if fid == 1:
        return ("gzip", cd[0])
    if fid == 32000:
        return ("lzf", None)
    if fid == 32015:
        return ("zstd", cd[0] if cd else 3)
    return (f"filter {fid}", cd)


def check(plain, comp, codec):
    """The differences between the two files, as lines."""
    import anndata as ad
    import h5py

    errs = []
    with h5py.File(comp, "r") as f:
        for name in ("X/data", "X/indices"):
            got = filter_of(f[name])
            if got != expected_filter(codec):
                errs.append(f"{name}: filter {got}, expected {expected_filter(codec)}")
        if "zstd" not in codec:
            # Without hdf5plugin the whole of X must decode.
            f["X/data"][:], f["X/indices"][:]
    a, b = ad.read_h5ad(plain), ad.read_h5ad(comp)
    if a.shape != b.shape:
        errs.append(f"shape {a.shape} != {b.shape}")
    else:
        xa, xb = a.X, b.X
        for part in ("data", "indices", "indptr"):
            pa, pb = getattr(xa, part), getattr(xb, part)
            if pa.dtype != pb.dtype or not np.array_equal(pa, pb):
                errs.append(f"X.{part} differs ({pa.dtype}, {pb.dtype})")
        for key in ("obs", "var"):
            try:
                pd.testing.assert_frame_equal(getattr(a, key), getattr(b, key))
            except AssertionError as e:
                errs.append(f"{key}: {e}")
        for group in ("obsm", "layers"):
            ga, gb = getattr(a, group), getattr(b, group)
            if set(ga) != set(gb):
                errs.append(f"{group} keys {sorted(ga)} != {sorted(gb)}")
            for k in ga:
                va, vb = ga[k], gb.get(k)
                va = va.toarray() if hasattr(va, "toarray") else np.asarray(va)
                vb = vb.toarray() if hasattr(vb, "toarray") else np.asarray(vb)
                if not np.array_equal(va, vb):
                    errs.append(f"{group}/{k} differs")
    return [f"{comp} ({codec}): {e}" for e in errs]


if __name__ == "__main__":
    if sys.argv[1] != "check" or len(sys.argv) % 3 != 2:
        sys.exit("usage: writer.py check PLAIN COMPRESSED CODEC [...]")
    triples = [sys.argv[i : i + 3] for i in range(2, len(sys.argv), 3)]
    # zstd files are read after hdf5plugin registers zstd with h5py's HDF5, so check the other
    # codecs first: they must read without it.
    triples.sort(key=lambda t: t[2].startswith("zstd"))
    errs = []
    for plain, comp, codec in triples:
        if codec.startswith("zstd"):
            import hdf5plugin  # noqa: F401
        errs += check(plain, comp, codec)
    if errs:
        print("\n".join(errs))
        sys.exit(1)
    print(f"ok: {len(triples)} files")
