"""Fixtures and file surgery for tests/parallel_read.rs.

  parallel_read.py make DIR
      Write DIR/plain.h5ad with anndata (uncompressed CSR float32 counts), DIR/gzip.h5ad with
      anndata's compression="gzip", and copies whose X datasets h5py (+ hdf5plugin) rewrites
      through one filter pipeline, chunk size, dtype or layout each. DIR/manifest.json lists
      {"variants": [{name, parallel, zero_ranges, indptr_parallel, indptr_chunks}]}: `parallel`
      says whether scoop's parallel path must map both X/data and X/indices; `zero_ranges` are
      X/data element ranges that must read as zeros (chunks left unallocated);
      `indptr_parallel` whether it must map X/indptr; `indptr_chunks` how many filtered chunks
      X/indptr is stored in (0 when unfiltered).
  parallel_read.py chunk FILE ELEMENT INDEX
      Print the chunk's element offset, file address and stored size as JSON.
  parallel_read.py garble FILE ELEMENT INDEX
      Overwrite 64 bytes in the middle of the chunk's stored bytes.
  parallel_read.py flip FILE ELEMENT INDEX
      Flip one bit in the middle of the chunk's stored bytes.
  parallel_read.py misplace FILE ELEMENT INDEX
      Rewrite the chunk's address in the file's (v1 B-tree) chunk index to point 1 GB past the
      end of the file.
  parallel_read.py indptr FILE ROW VALUE
      Set X/indptr[ROW] to VALUE (through h5py, so the dataset's filters still decode).
"""
import json
import sys
from pathlib import Path

import numpy as np


def make_plain(d: Path):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    if hasattr(ad.settings, "allow_write_nullable_strings"):
        ad.settings.allow_write_nullable_strings = False
    rng = np.random.default_rng(26)
    n_obs, n_vars = 4000, 2000
    # Gene means spread over three decades so that highly variable genes are well defined.
    means = np.exp(rng.uniform(-3, 2.5, n_vars))
    per_row = rng.poisson(120, n_obs)
    rows, cols = [], []
    p = means / means.sum()
    for i, k in enumerate(per_row):
        c = np.sort(rng.choice(n_vars, size=min(k, n_vars), replace=False, p=p))
        rows.append(np.full(len(c), i))
        cols.append(c)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    vals = (rng.negative_binomial(2, 2 / (2 + means[cols])) + 1).astype(np.float32)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n_obs, n_vars), dtype=np.float32)
    obs = pd.DataFrame(
        {"plate": pd.Categorical(["p1"] * n_obs), "n": rng.integers(0, 9, n_obs)},
        index=[f"cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=[f"gene{i}" for i in range(n_vars)])
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.write_h5ad(d / "plain.h5ad")
    a.write_h5ad(d / "gzip.h5ad", compression="gzip")


def copy_attrs(src, dst):
    for k in src.attrs:
        dst.attrs.create(k, src.attrs[k], dtype=src.attrs.get_id(k).dtype)


def variant(base, dst, data_kw=None, ind_kw=None, data_dtype=None, ind_dtype=None,
            userblock=None, skip_chunks=None, ptr_kw=None, ptr_dtype=None):
    """Copy `base`, rewriting X/data and X/indices with the given h5py keyword arguments and
    dtypes, and X/indptr too when `ptr_kw` is given (else it keeps its storage).
    `skip_chunks`: (chunk length, chunk numbers) of X/data left unwritten, so unallocated."""
    import h5py

    kw = {"userblock_size": userblock} if userblock else {}
    with h5py.File(base, "r") as s, h5py.File(dst, "w", **kw) as d:
        copy_attrs(s, d)
        for k in s:
            if k != "X":
                s.copy(s[k], d, k)
        gx = d.create_group("X")
        copy_attrs(s["X"], gx)
        if ptr_kw is None:
            s.copy(s["X/indptr"], gx, "indptr")
        else:
            ptr = s["X/indptr"][()].astype(ptr_dtype or s["X/indptr"].dtype)
            gx.create_dataset("indptr", data=ptr, **ptr_kw)
        data = s["X/data"][()]
        if data_dtype:
            data = data.astype(data_dtype)
        ind = s["X/indices"][()]
        if ind_dtype:
            ind = ind.astype(ind_dtype)
        gx.create_dataset("indices", data=ind, **(ind_kw if ind_kw is not None else data_kw or {}))
        if skip_chunks:
            step, skip = skip_chunks
            ds = gx.create_dataset("data", shape=data.shape, dtype=data.dtype, chunks=(step,),
                                   **(data_kw or {}))
            for i in range(0, len(data), step):
                if i // step not in skip:
                    ds[i:i + step] = data[i:i + step]
            return [[i * step, min((i + 1) * step, len(data))] for i in sorted(skip)]
        gx.create_dataset("data", data=data, **(data_kw or {}))
    return []


def make(d: Path):
    import hdf5plugin as hp

    d.mkdir(parents=True, exist_ok=True)
    make_plain(d)
    plain = d / "plain.h5ad"
    gz = {"compression": "gzip", "compression_opts": 4}
    variants = [
        # name, data kwargs, extra
        ("contiguous", {}, {}),
        ("chunked_raw", {"chunks": (50_000,)}, {}),
        ("gzip_shuffle", {**gz, "shuffle": True}, {}),
        ("gzip_small_chunks", {**gz, "chunks": (1000,)}, {}),
        ("gzip_large_chunks", {**gz, "chunks": (300_001,)}, {}),
        ("gzip_unaligned", {**gz, "chunks": (12_345,)}, {}),
        ("lzf", {"compression": "lzf", "fillvalue": 0}, {}),
        ("zstd", dict(hp.Zstd(clevel=5)), {}),
        ("blosc_lz4_shuffle", dict(hp.Blosc("lz4", 5, hp.Blosc.SHUFFLE)), {}),
        ("blosc_zstd_bitshuffle", dict(hp.Blosc("zstd", 5, hp.Blosc.BITSHUFFLE)), {}),
        ("bitshuffle_lz4", dict(hp.Bitshuffle(cname="lz4")), {}),
        ("bitshuffle_zstd", dict(hp.Bitshuffle(cname="zstd", clevel=3)), {}),
        ("fletcher32", {"fletcher32": True, "chunks": (20_000,)}, {}),
        ("fletcher32_gzip_shuffle", {**gz, "shuffle": True, "fletcher32": True}, {}),
        ("float64_gzip", gz, {"data_dtype": "<f8"}),
        ("bigendian_gzip_shuffle", {**gz, "shuffle": True},
         {"data_dtype": ">f4", "ind_dtype": ">i4"}),
        ("int32_data_lzf", {"compression": "lzf"}, {"data_dtype": "<i4"}),
        ("uint16_data_gzip", gz, {"data_dtype": "<u2"}),
        ("int64_indices_zstd", dict(hp.Zstd(clevel=3)), {"ind_dtype": "<i8"}),
        ("userblock_gzip", gz, {"userblock": 4096}),
        ("unallocated_gzip", gz, {"skip_chunks": (1000, {3, 4, 10})}),
        ("unallocated_raw", {}, {"skip_chunks": (1000, {0, 7})}),
        # indptr stored otherwise: compressed in chunks smaller than a stream chunk's rows or
        # holding all rows, contiguous, int32 and int64, big-endian.
        ("indptr_int64_gzip_small_chunks", gz,
         {"ptr_kw": {**gz, "chunks": (250,)}, "ptr_dtype": "<i8"}),
        ("indptr_int32_gzip_one_chunk", gz, {"ptr_kw": {**gz, "chunks": (4001,)}}),
        ("indptr_int64_zstd", dict(hp.Zstd(clevel=3)),
         {"ptr_kw": {**hp.Zstd(clevel=3), "chunks": (1000,)}, "ptr_dtype": "<i8"}),
        ("indptr_int64_bigendian_gzip_shuffle", gz,
         {"ptr_kw": {**gz, "shuffle": True, "chunks": (700,)}, "ptr_dtype": ">i8"}),
        ("indptr_int64_contiguous", {"chunks": (50_000,)}, {"ptr_kw": {}, "ptr_dtype": "<i8"}),
        ("indptr_int32_contiguous", {}, {"ptr_kw": {}}),
        # uint64 offsets do not convert exactly to int64: indptr goes through HDF5.
        ("indptr_uint64_gzip", gz, {"ptr_kw": gz, "ptr_dtype": "<u8"}),
    ]
    manifest = {"variants": [
        {"name": "plain", "parallel": True, "zero_ranges": [], **indptr_facts(plain)},
        {"name": "gzip", "parallel": True, "zero_ranges": [], **indptr_facts(d / "gzip.h5ad")},
    ]}
    for name, kw, extra in variants:
        zero = variant(plain, d / f"{name}.h5ad", kw, **extra)
        manifest["variants"].append({"name": name, "parallel": True, "zero_ranges": zero,
                                     **indptr_facts(d / f"{name}.h5ad")})
    # A non-zero fill value: unallocated chunks read as 7, so X goes through HDF5.
    zero = variant(plain, d / "fill7.h5ad", {**gz, "fillvalue": 7}, ind_kw=gz,
                   skip_chunks=(1000, {2}))
    manifest["variants"].append({"name": "fill7", "parallel": False, "zero_ranges": [],
                                 **indptr_facts(d / "fill7.h5ad")})
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1))


def indptr_facts(path):
    """Whether scoop's parallel path must map X/indptr (int32 or int64; these files' fill
    values are zero and their filters supported), and its filtered chunks."""
    import h5py

    with h5py.File(path, "r") as f:
        ds = f["X/indptr"]
        filtered = ds.chunks is not None and ds.id.get_create_plist().get_nfilters() > 0
        return {
            "indptr_parallel": ds.dtype.kind == "i" and ds.dtype.itemsize in (4, 8),
            "indptr_chunks": -(-ds.shape[0] // ds.chunks[0]) if filtered else 0,
        }


def chunk_info(path, element, index):
    import h5py

    with h5py.File(path, "r") as f:
        info = f[element].id.get_chunk_info(index)
        return {"offset": int(info.chunk_offset[0]), "addr": int(info.byte_offset),
                "size": int(info.size)}


def patch(path, at, new):
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(new)


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        make(Path(sys.argv[2]))
        return
    if cmd == "indptr":
        import h5py

        with h5py.File(sys.argv[2], "r+") as f:
            f["X/indptr"][int(sys.argv[3])] = int(sys.argv[4])
        return
    path, element, index = sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = chunk_info(path, element, index)
    if cmd == "chunk":
        print(json.dumps(c))
    elif cmd == "garble":
        patch(path, c["addr"] + c["size"] // 2, bytes(range(7, 7 + 64)))
    elif cmd == "flip":
        at = c["addr"] + c["size"] // 2
        with open(path, "rb") as fh:
            fh.seek(at)
            b = fh.read(1)[0]
        patch(path, at, bytes([b ^ 0x10]))
    elif cmd == "misplace":
        raw = Path(path).read_bytes()
        old = c["addr"].to_bytes(8, "little")
        hits = [i for i in range(len(raw) - 7) if raw[i:i + 8] == old]
        # The chunk's bytes hold its address only by chance; the index holds it once.
        hits = [i for i in hits if not c["addr"] <= i < c["addr"] + c["size"]]
        if len(hits) != 1:
            sys.exit(f"address {c['addr']} found {len(hits)} times outside the chunk")
        patch(path, hits[0], (len(raw) + (1 << 30)).to_bytes(8, "little"))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
