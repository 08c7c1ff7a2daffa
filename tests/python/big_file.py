"""A CSR h5ad with more than 2^31 stored values in a few MB, for tests/big_file.rs.

  big_file.py make PATH N_ROWS N_COLS NNZ CHUNK

X/data and X/indices are chunked (CHUNK values per chunk, gzip) and NNZ long, with int64 indptr.
Only the first row (the first 1,000 values) and the last row (the last 1,000 values) are written:
every other chunk stays unallocated and reads as the fill value, so the middle rows, whose indptr
spans cover the rest evenly, hold explicit zeros in column 0. Prints JSON: the first and last rows'
totals and columns as h5py reads them back.
"""

import json
import sys

import anndata as ad
import h5py
import numpy as np
import pandas as pd


def make(path, n_rows, n_cols, nnz, chunk):
    k = 1000
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n_rows)])
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_cols)])
    ad.AnnData(obs=obs, var=var).write_h5ad(path)
    first_cols = np.arange(0, 2 * k, 2, dtype=np.int32)
    first_vals = (np.arange(k) % 7 + 1).astype(np.float32)
    last_cols = np.arange(n_cols - k, n_cols, dtype=np.int32)
    last_vals = (np.arange(k) % 5 + 0.5).astype(np.float32)
    # Rows 1..n_rows-1 split the values between the two real rows evenly.
    middle = np.linspace(k, nnz - k, n_rows - 1).round().astype(np.int64)
    indptr = np.concatenate([[0], middle, [nnz]]).astype(np.int64)
    with h5py.File(path, "r+") as f:
        if "X" in f:
            del f["X"]
        g = f.create_group("X")
        g.attrs["encoding-type"] = "csr_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array([n_rows, n_cols], dtype=np.int64)
        opts = dict(shape=(nnz,), chunks=(chunk,), compression="gzip", fillvalue=0)
        data = g.create_dataset("data", dtype=np.float32, **opts)
        indices = g.create_dataset("indices", dtype=np.int32, **opts)
        g.create_dataset("indptr", data=indptr)
        data[:k], indices[:k] = first_vals, first_cols
        data[nnz - k :], indices[nnz - k :] = last_vals, last_cols
    with h5py.File(path, "r") as f:
        g = f["X"]
        first = g["data"][:k].astype(np.float64)
        last = g["data"][nnz - k :].astype(np.float64)
        stored = g["data"].id.get_num_chunks()
        print(
            json.dumps(
                {
                    "first_total": float(first.sum()),
                    "last_total": float(last.sum()),
                    "first_cols": g["indices"][:k].tolist(),
                    "last_cols": g["indices"][nnz - k :].tolist(),
                    "allocated_chunks": int(stored),
                }
            )
        )


if __name__ == "__main__":
    if sys.argv[1] != "make":
        sys.exit(f"unknown command {sys.argv[1]}")
    make(sys.argv[2], *(int(a) for a in sys.argv[3:7]))
