"""Arrays larger than memory: Dask arrays in, Dask arrays out, memmaps through.

A ``numpy.memmap`` needs nothing: the estimators validate it without a copy
(a float32 or float64 memmap is already an ndarray), and everything that
reads it whole (chunked transforms, the ridges' normal equations, the
engine's batches) reads it chunk by chunk, so only the chunks in use and the
operating system's page cache hold it.

A Dask array is what the user's data pipeline (zarr, NetCDF through xarray,
HDF5) hands over. Two rules, so that none is computed whole:

- :func:`spooled`: an estimator's validation stores it, block by block, into
  a temporary memory-mapped file and goes on with that memmap. A state
  array of 1.6e7 rows by 3 variables is 0.2-0.4 GB on disk; the features,
  the large array, are never spooled: they are computed chunk by chunk from
  the states.
- :func:`lazy_transform`: a transformer's ``transform`` of a Dask array
  returns a Dask array whose blocks are computed when (and only when) they
  are read, one ``transform`` call per block of rows, as
  ``dask_ml.wrappers.ParallelPostFit`` does (whose ``map_blocks`` is the same
  one line; it is not a dependency, and wraps these estimators as well).

Dask itself is only imported when given one of its arrays.
"""

import os
import tempfile

import numpy as np

__all__ = ["is_dask_array", "lazy_transform", "spooled"]


def is_dask_array(X):
    """Whether `X` is a ``dask.array.Array`` (without importing dask)."""
    return type(X).__name__ == "Array" and type(X).__module__.startswith("dask.")


def spooled(X, folder=None):
    """A read-only memmap holding the values of the Dask array `X`.

    The blocks are computed and written one row-block at a time, so memory
    holds one block. The file is unlinked at once: it lives as long as the
    returned memmap (POSIX keeps a mapped file until it is unmapped).
    Anything that is not a Dask array is returned as it is.
    """
    if not is_dask_array(X):
        return X
    import dask.array as da

    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    descriptor, path = tempfile.mkstemp(suffix=".dat", dir=folder)
    os.close(descriptor)
    try:
        shape = tuple(int(n) for n in X.shape)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        da.store(X.astype(dtype), out, lock=True, compute=True)
        out.flush()
        del out
        return np.load(path, mmap_mode="r")
    finally:
        os.unlink(path)


def lazy_transform(transform, X, n_columns, dtype):
    """``transform`` of each block of rows of the Dask array `X`, as a Dask array.

    Nothing is computed until the result is; `n_columns` and `dtype`
    describe one block's output.
    """
    X = X.rechunk({1: -1})  # a block of rows holds whole states
    return X.map_blocks(
        transform, dtype=np.dtype(dtype), chunks=(X.chunks[0], (int(n_columns),))
    )
