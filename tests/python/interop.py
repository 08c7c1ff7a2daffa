"""anndata <-> scoop interop driver for tests/anndata_interop.rs.

  interop.py write DIR        write h5ad files with anndata (several encodings) + canonical JSON dumps
  interop.py dump FILE OUT    read FILE with anndata (read_h5ad, and X via read_elem_lazy) and dump it
  interop.py write-old DIR     a file in anndata <= 0.7's layout (categories under __categories)
  interop.py write-concat DIR  write plates with disagreeing obs columns for the concat test
  interop.py concat [--join=J] OUT IN..  anndata.experimental.concat_on_disk(IN, OUT, label="plate",
                              keys=stems, join=J)
  interop.py write-csc DIR     csc.h5ad (X, a layer, raw/X, obsm and obsp entries as csc_matrix,
                              gzip, a column with unsorted rows, an empty row and column) and
                              csr.h5ad, the same with every matrix .tocsr()
  interop.py check-csr A B    every sparse matrix of A is csr_matrix with B's arrays exactly
                              (indptr, indices, data and dtype), and the rest of A equals B
  interop.py compare A B [--only=P,..]  compare two canonical dumps (or only the dotted paths P);
                              exit 1 with the differences

The canonical dump is plain JSON: obs/var as {index, columns: {name: {kind, values}}}, X as dense
rows, obsm as nested lists, uns as nested dicts; NaN as the string "NaN", missing values as null.
"""
import json
import math
import sys

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp


def val(x):
    if x is None or x is pd.NA:
        return None
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return "NaN" if math.isnan(x) else float(x)
    return x


def col_dump(s: pd.Series):
    if isinstance(s.dtype, pd.CategoricalDtype):
        return {"kind": "categorical", "ordered": bool(s.cat.ordered),
                "categories": [val(c) for c in s.cat.categories],
                "values": [None if pd.isna(v) else val(v) for v in s.astype(object)]}
    if isinstance(s.dtype, pd.BooleanDtype):
        return {"kind": "nullable-boolean", "values": [None if v is pd.NA else bool(v) for v in s]}
    if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) and s.dtype.kind in "iu":
        return {"kind": "nullable-integer", "values": [None if v is pd.NA else int(v) for v in s]}
    if s.dtype == bool:
        return {"kind": "bool", "values": [bool(v) for v in s]}
    if s.dtype.kind in "iu":
        return {"kind": "int", "values": [int(v) for v in s]}
    if s.dtype.kind == "f":
        return {"kind": "float", "values": [val(v) for v in s]}
    return {"kind": "string", "values": [None if (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))) else str(v) for v in s]}


def df_dump(df: pd.DataFrame):
    return {"index": [str(i) for i in df.index], "columns": {c: col_dump(df[c]) for c in df.columns}}


def uns_dump(x):
    if x is None:
        return {"null": True}
    if isinstance(x, dict):
        return {k: uns_dump(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "OUS":
            return {"strings": np.asarray(x, dtype=object).astype(str).tolist()}
        return {"array": np.vectorize(val, otypes=[object])(x).tolist() if x.size else [], "shape": list(x.shape)}
    if isinstance(x, str):
        return {"string": x}
    if isinstance(x, (bool, np.bool_)):
        return {"scalar": bool(x)}
    if isinstance(x, (int, float, np.integer, np.floating)):
        return {"scalar": val(x)}
    raise TypeError(f"uns value of type {type(x)}")


def dense(x):
    if sp.issparse(x):
        x = x.toarray()
    return np.asarray(x, dtype=np.float64).tolist()


def dump(a: ad.AnnData):
    d = {
        "shape": list(a.shape),
        "obs": df_dump(a.obs),
        "var": df_dump(a.var),
        "X": dense(a.X) if a.X is not None else None,
        "obsm": {k: np.asarray(v, dtype=np.float64).tolist() for k, v in a.obsm.items()},
        "obsp": {k: dense(v) for k, v in a.obsp.items()},
        "uns": uns_dump(dict(a.uns)),
    }
    # Only where present, so dumps of files without them compare with scoop's plain dumps.
    layers = {k: dense(v) for k, v in a.layers.items() if k is not None}  # 0.13 lists X as None
    if layers:
        d["layers"] = layers
    if a.raw is not None:
        d["raw"] = {"X": dense(a.raw.X), "var": df_dump(a.raw.var)}
    return d


def pandas3_case(rng):
    """What anndata 0.13 writes under pandas 3's defaults: a nullable-string index and string
    columns with NA, categoricals with NA, Int64 with NA, float64 CSR with int64 indices,
    duplicated obs names, layers and raw. Under anndata 0.12 / pandas 2 the same frame is written
    in that stack's encodings (string-array index, categoricals)."""
    n, g = 31, 9
    x = sp.random(n, g, density=0.4, random_state=3, format="csr", dtype=np.float64)
    x.data = np.round(x.data * 30 + 1)
    x.indices = x.indices.astype(np.int64)
    x.indptr = x.indptr.astype(np.int64)
    names = [f"bc{i // 2}" for i in range(n)]  # duplicated obs names
    obs = pd.DataFrame(
        {
            "barcode_note": pd.array([None if i % 6 == 1 else f"note {i}" for i in range(n)], dtype="string"),
            "well": pd.array([f"w{i}" for i in range(n)], dtype="string"),
            "cell_line": pd.Categorical([None if i % 5 == 2 else ["A549", "K562"][i % 2] for i in range(n)]),
            "pass_filter": pd.Categorical(["full" if i % 4 else "minimal" for i in range(n)]),
            "umis": pd.array([None if i % 7 == 3 else i * 11 for i in range(n)], dtype="Int64"),
        },
        index=pd.Index(names, dtype="string"),
    )
    var = pd.DataFrame(
        {"gene_symbol": pd.array([f"SYM{j}" if j != 4 else None for j in range(g)], dtype="string")},
        index=pd.Index([f"ENSG{j:03d}" for j in range(g)], dtype="string"),
    )
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.layers["counts"] = x.copy()
    a.layers["dense"] = (x.toarray() * 0.5).astype(np.float32)
    raw = ad.AnnData(
        X=sp.random(n, g + 3, density=0.3, random_state=4, format="csr", dtype=np.float32),
        var=pd.DataFrame({"kind": ["a", "b", "c"] * 4}, index=[f"RAW{j}" for j in range(g + 3)]),
    )
    a.raw = raw
    return a


def write_cases(d):
    rng = np.random.default_rng(7)
    cases = {}
    n, g = 57, 23
    counts = sp.random(n, g, density=0.2, random_state=1, format="csr", dtype=np.float32)
    counts.data = np.round(counts.data * 20 + 1)
    counts[3, :] = 0  # an empty row
    counts.eliminate_zeros()
    obs = pd.DataFrame(
        {
            "cell_line": pd.Categorical(rng.choice(["A549", "HepG2", "K562"], n)),
            "ordered_cat": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"], ordered=True),
            "cat_with_nan": pd.Categorical(rng.choice(["x", "y", None], n)),
            "label": [f"cell {i} é" for i in range(n)],
            "n_counts": rng.integers(0, 5000, n).astype(np.int64),
            "small_int": rng.integers(-5, 5, n).astype(np.int32),
            "frac": rng.random(n),
            "frac32": rng.random(n).astype(np.float32),
            "flag": rng.random(n) < 0.5,
            "maybe_int": pd.array([None if i % 5 == 0 else i for i in range(n)], dtype="Int64"),
            "maybe_bool": pd.array([None if i % 7 == 0 else bool(i % 2) for i in range(n)], dtype="boolean"),
        },
        index=[f"cell_{i}" for i in range(n)],
    )
    obs.loc[obs.index[2], "frac"] = np.nan
    var = pd.DataFrame({"gene_symbol": [f"G{i}" for i in range(g)], "mt": [i < 3 for i in range(g)]},
                       index=[f"ENSG{i:05d}" for i in range(g)])
    uns = {
        "log1p": {"base": None} if False else {"note": "scalar and nested values"},
        "params": {"n": 5, "x": 0.25, "flag": True, "name": "seurat", "arr": np.arange(6, dtype=np.int64).reshape(2, 3)},
        "colors": np.array(["#1f77b4", "#ff7f0e"], dtype=object),
    }
    obsm = {"X_pca": rng.standard_normal((n, 4)).astype(np.float32), "X_umap": rng.standard_normal((n, 2))}
    obsp = {"distances": sp.random(n, n, density=0.05, random_state=2, format="csr", dtype=np.float64)}

    base = ad.AnnData(X=counts, obs=obs, var=var, uns=uns, obsm=obsm, obsp=obsp)
    cases["csr_f32"] = base
    c = base.copy()
    c.X = c.X.astype(np.int64)
    cases["csr_int64_data"] = c
    c = base.copy()
    c.X = c.X.astype(np.float64)
    cases["csr_f64"] = c
    c = base.copy()
    c.X = c.X.toarray()
    cases["dense_f32"] = c
    cases["pandas3_defaults"] = pandas3_case(rng)
    string_obs = cases["pandas3_defaults"].obs.copy()
    for name, a in cases.items():
        a.write_h5ad(f"{d}/{name}.h5ad")
    # write_h5ad turns string columns with repeats or NA into categoricals (in place); write obs
    # again as write_elem does (concat_on_disk, and other tools writing elements) to keep them.
    with h5py.File(f"{d}/pandas3_defaults.h5ad", "r+") as f:
        del f["obs"]
        ad.io.write_elem(f, "obs", string_obs)
    cases["pandas3_defaults"].obs = string_obs
    # int64 indptr/indices: rewrite the index arrays in place.
    base.write_h5ad(f"{d}/csr_int64_index.h5ad")
    with h5py.File(f"{d}/csr_int64_index.h5ad", "r+") as f:
        for k in ("indptr", "indices"):
            v = f["X"][k][...].astype(np.int64)
            del f["X"][k]
            f["X"].create_dataset(k, data=v)
    cases["csr_int64_index"] = base
    # Fixed-length strings (as h5py writes numpy "S"/UTF-8 arrays): obs/label and the var index.
    base.write_h5ad(f"{d}/fixed_strings.h5ad")
    with h5py.File(f"{d}/fixed_strings.h5ad", "r+") as f:
        for grp, key, values in (("obs", "label", base.obs["label"]), ("var", "_index", base.var_names)):
            del f[grp][key]
            data = np.array([v.encode() for v in values], dtype=h5py.string_dtype("utf-8", 40))
            ds = f[grp].create_dataset(key, data=data)
            ds.attrs["encoding-type"] = "string-array"
            ds.attrs["encoding-version"] = "0.2.0"
    cases["fixed_strings"] = base
    for name, a in cases.items():
        with open(f"{d}/{name}.json", "w") as fh:
            json.dump(dump(a), fh)
    print("\n".join(cases))


def write_old(d):
    """A file in anndata <= 0.7's layout: a categorical as codes with an object reference to its
    categories under obs/__categories."""
    n = 6
    a = ad.AnnData(X=sp.csr_matrix(np.eye(n, 3, dtype=np.float32)),
                   obs=pd.DataFrame({"kind": pd.Categorical(list("abcabc"))}, index=[f"c{i}" for i in range(n)]))
    path = f"{d}/anndata07.h5ad"
    a.write_h5ad(path)
    with h5py.File(path, "r+") as f:
        del f["obs/kind"]
        cats = f["obs"].create_group("__categories").create_dataset("kind", data=np.array([b"a", b"b", b"c"]))
        codes = f["obs"].create_dataset("kind", data=np.array([0, 1, 2, 0, 1, 2], dtype=np.int8))
        codes.attrs["categories"] = cats.ref
    print(path)


def write_concat_inputs(d):
    """Three plates whose obs disagree the ways real plates do: nullable strings with NA (and a
    categorical of the same name in one plate), categoricals with different categories and with NA,
    an ordered categorical shared by all, Int64 with NA, a column only two plates have, and genes
    that overlap only in part."""
    rng = np.random.default_rng(5)
    genes = [f"G{j}" for j in range(12)]
    plates = {"p1": (0, 10, genes[:10]), "p2": (1, 8, genes[2:12]), "p3": (2, 9, genes[1:11])}
    paths = []
    for name, (k, n, g) in plates.items():
        x = sp.random(n, len(g), density=0.4, random_state=k, format="csr", dtype=np.float32)
        cols = {
            "note": pd.array([None if (i + k) % 4 == 0 else f"{name}-{i}" for i in range(n)], dtype="string"),
            "line": pd.Categorical([None if i == 3 else f"L{(i + k) % (3 + k)}" for i in range(n)]),
            "grade": pd.Categorical([["lo", "mid", "hi"][i % 3] for i in range(n)], categories=["lo", "mid", "hi"], ordered=True),
            "umis": pd.array([None if i % 5 == k else i * 3 for i in range(n)], dtype="Int64"),
            "score": rng.random(n) if k != 1 else rng.integers(0, 9, n),
        }
        if k != 2:
            cols["batch"] = pd.Categorical([f"b{k}"] * n)
        # Categories in a non-sorted order: all plates' sets agree for "drug" (the first order
        # wins), not for "site" (the natural-sorted union, site2 < site10).
        cols["drug"] = pd.Categorical([["Vorinostat", "DMSO", "Bortezomib"][i % 3] for i in range(n)],
                                      categories=["Vorinostat", "DMSO", "Bortezomib"])
        sites = ["site10", "site2"] + (["site1"] if k == 1 else [])
        cols["site"] = pd.Categorical([sites[i % len(sites)] for i in range(n)], categories=sites)
        if k == 1 and int(pd.__version__.split(".")[0]) >= 3:
            # (pandas 2 concatenates this to an object column with NA that anndata 0.12 cannot write)
            cols["note"] = pd.Categorical([f"n{i % 2}" for i in range(n)])
        obs = pd.DataFrame(cols, index=pd.Index([f"{name}_c{i}" for i in range(n)], dtype="string"))
        a = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(g, dtype="string")))
        path = f"{d}/{name}.h5ad"
        a.write_h5ad(path)
        with h5py.File(path, "r+") as f:  # keep strings as strings (see write_cases)
            del f["obs"]
            ad.io.write_elem(f, "obs", obs)
        paths.append(path)
    print("\n".join(paths))


def write_csc(d):
    rng = np.random.default_rng(7)
    n, g = 700, 90
    x = sp.random(n, g, density=0.08, format="coo", random_state=3, dtype=np.float32)
    keep = (x.row != 5) & (x.col != 11)  # an empty row and an empty column
    data = np.ceil(x.data[keep] * 30).astype(np.float32)
    x = sp.csc_matrix((data, (x.row[keep], x.col[keep])), shape=(n, g))
    s, e = x.indptr[3], x.indptr[4]  # column 3's rows stored in descending order
    x.indices[s:e] = x.indices[s:e][::-1].copy()
    x.data[s:e] = x.data[s:e][::-1].copy()
    x.has_sorted_indices = False
    obs = pd.DataFrame(
        {"cell_line": pd.Categorical(rng.choice(["A549", "HepG2", "MCF7"], n))},
        index=[f"cell{i}" for i in range(n)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(g)])
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.layers["counts"] = x.astype(np.int32)
    a.obsm["X_sparse"] = sp.random(n, 6, density=0.4, format="csc", random_state=4)
    a.obsp["graph"] = sp.random(n, n, density=0.01, format="csc", random_state=5, dtype=np.float32)
    a.uns["note"] = "csc"
    a.raw = a.copy()
    a.write_h5ad(f"{d}/csc.h5ad", compression="gzip")
    b = a.copy()
    b.X = x.tocsr()
    b.layers["counts"] = a.layers["counts"].tocsr()
    b.obsm["X_sparse"] = a.obsm["X_sparse"].tocsr()
    b.obsp["graph"] = a.obsp["graph"].tocsr()
    b.raw = b.copy()
    b.write_h5ad(f"{d}/csr.h5ad")


def check_csr(path, expected):
    a, b = ad.read_h5ad(path), ad.read_h5ad(expected)
    pairs = [("X", a.X, b.X), ("raw.X", a.raw.X, b.raw.X)]
    pairs += [(f"layers/{k}", a.layers[k], b.layers[k]) for k in b.layers.keys() if k is not None]
    pairs += [(f"obsm/{k}", a.obsm[k], b.obsm[k]) for k in b.obsm.keys()]
    pairs += [(f"obsp/{k}", a.obsp[k], b.obsp[k]) for k in b.obsp.keys()]
    errs = []
    for name, m, e in pairs:
        if not sp.issparse(m) or m.format != "csr":
            errs.append(f"{name}: {type(m).__name__}, not csr_matrix")
            continue
        if m.dtype != e.dtype or m.shape != e.shape:
            errs.append(f"{name}: {m.dtype} {m.shape} vs {e.dtype} {e.shape}")
            continue
        for arr in ("indptr", "indices", "data"):
            if not np.array_equal(getattr(m, arr), getattr(e, arr)):
                errs.append(f"{name}: {arr} differs")
    for part in ("obs", "var"):
        errs += compare(df_dump(getattr(a, part)), df_dump(getattr(b, part)), part)
    errs += compare(df_dump(a.raw.var), df_dump(b.raw.var), "raw.var")
    errs += compare(uns_dump(dict(a.uns)), uns_dump(dict(b.uns)), "uns")
    if errs:
        sys.exit("\n".join(errs))
    print(f"{len(pairs)} matrices equal")


def dump_file(path, out):
    a = ad.read_h5ad(path)
    with h5py.File(path) as f:
        lazy = ad.experimental.read_elem_lazy(f["X"], chunks=(7, a.n_vars)).compute()
        diff = abs(sp.csr_matrix(lazy) - sp.csr_matrix(a.X)).max() if a.n_obs else 0
        if diff != 0:
            sys.exit(f"{path}: read_elem_lazy X differs from read_h5ad X by {diff}")
    if hasattr(ad.experimental, "read_lazy"):  # anndata >= 0.12 with xarray
        try:
            import xarray  # noqa: F401
        except ImportError:
            pass
        else:
            lazy = ad.experimental.read_lazy(path).to_memory()
            theirs, ours = dump(a), dump(lazy)
            theirs.pop("raw", None)  # read_lazy leaves raw out
            ours.pop("raw", None)
            errs = compare(theirs, ours)
            if errs:
                sys.exit(f"{path}: read_lazy differs from read_h5ad:\n" + "\n".join(errs[:20]))
    with open(out, "w") as fh:
        json.dump(dump(a), fh)


def compare(a, b, path="", errs=None):
    errs = [] if errs is None else errs
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            errs.append(f"{path}: keys {sorted(a)} vs {sorted(b)}")
        for k in set(a) & set(b):
            compare(a[k], b[k], f"{path}/{k}", errs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            errs.append(f"{path}: length {len(a)} vs {len(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                compare(x, y, f"{path}[{i}]", errs)
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)):
            errs.append(f"{path}: {a!r} vs {b!r}")
    elif a != b:
        errs.append(f"{path}: {a!r} vs {b!r}")
    return errs


if __name__ == "__main__":
    if hasattr(ad.settings, "allow_write_nullable_strings"):
        ad.settings.allow_write_nullable_strings = True  # 0.13's default; 0.12 needs the opt-in
    cmd = sys.argv[1]
    if cmd == "write":
        write_cases(sys.argv[2])
    elif cmd == "dump":
        dump_file(sys.argv[2], sys.argv[3])
    elif cmd == "write-old":
        write_old(sys.argv[2])
    elif cmd == "write-concat":
        write_concat_inputs(sys.argv[2])
    elif cmd == "concat":
        join = "inner"
        if sys.argv[2].startswith("--join="):
            join = sys.argv.pop(2).split("=", 1)[1]
        out, inputs = sys.argv[2], sys.argv[3:]
        keys = [p.rsplit("/", 1)[-1].rsplit(".", 1)[0] for p in inputs]
        ad.experimental.concat_on_disk(inputs, out, label="plate", keys=keys, join=join)
    elif cmd == "write-csc":
        write_csc(sys.argv[2])
    elif cmd == "check-csr":
        check_csr(sys.argv[2], sys.argv[3])
    elif cmd == "compare":
        a, b = (json.load(open(p)) for p in sys.argv[2:4])
        if len(sys.argv) > 4 and sys.argv[4].startswith("--only="):
            # Compare only these parts, as dotted paths (obs, X, var.columns.highly_variable, ...).
            def part(d, path):
                for k in path.split("."):
                    d = d.get(k) if isinstance(d, dict) else None
                return d
            paths = sys.argv[4].split("=", 1)[1].split(",")
            a, b = ({p: part(x, p) for p in paths} for x in (a, b))
        errs = compare(a, b)
        if errs:
            print(f"{len(errs)} differences between {sys.argv[2]} and {sys.argv[3]}:")
            print("\n".join(errs[:40]))
            sys.exit(1)
    else:
        sys.exit(f"unknown command {cmd}")
