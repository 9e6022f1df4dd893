"""Scatter bar rows (one row per symbol and timestamp, any order) into time-major ``[T, S]`` planes.

Two passes per Arrow record batch. :func:`locate_rows` finds each row's cell
``t * S + s`` and groups consecutive rows whose cells advance by a constant step into
runs; :func:`copy_runs` then copies one value column into one flattened plane run by
run. Rows stored time-major (as the built-in data set is) form runs of step 1, so the
copy streams; rows stored symbol-major (one file per symbol) form runs of step S. The
time index of a row is found by guessing ``cursor[s] + 1`` first (rows of one symbol
usually arrive in time order) and by binary search only when the guess misses: O(1)
per row for ordered input, O(log T) otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Status codes of locate_rows; the failing row index is written to bad_row[0].
SCATTER_OK = 0
SCATTER_UNKNOWN_TS = 1  # a row's timestamp is not on the time axis
SCATTER_DUPLICATE = 2  # two rows for the same symbol and timestamp
SCATTER_BAD_SYMBOL = 3  # symbol code outside [0, S)

# Columns of the run table runs[R, N_RUN_FIELDS].
RUN_ROW = 0  # first row of the run in the batch
RUN_CELL = 1  # flat cell t * S + s of that row
RUN_STEP = 2  # cell increment from one row of the run to the next (> 0)
RUN_LENGTH = 3  # rows in the run
N_RUN_FIELDS = 4


@njit(cache=True, nogil=True)
def locate_rows(ts, ts_scale, symbol, axis, cursor, valid, runs, n_runs, bad_row):
    """Mark each row's cell in ``valid[T, S]`` and record runs of evenly spaced cells.

    Row ``i`` belongs to cell ``t * S + s`` with ``s = symbol[i]`` and ``axis[t] ==
    ts[i] * ts_scale`` (``axis``: strictly increasing int64 ns; ``ts`` in any unit).
    ``cursor`` (int64[S], start -1) keeps the last time index per symbol across calls.
    ``runs`` (int64[rows, N_RUN_FIELDS]) receives the runs; their count goes to
    ``n_runs[0]``. Returns a status code.
    """
    n_times, n_symbols = valid.shape
    r = -1
    for i in range(ts.size):
        s = np.int64(symbol[i])
        if s < 0 or s >= n_symbols:
            bad_row[0] = i
            return SCATTER_BAD_SYMBOL
        stamp = ts[i] * ts_scale
        t = cursor[s] + 1
        if t >= n_times or axis[t] != stamp:
            t = np.searchsorted(axis, stamp)
            if t >= n_times or axis[t] != stamp:
                bad_row[0] = i
                return SCATTER_UNKNOWN_TS
        if valid[t, s]:
            bad_row[0] = i
            return SCATTER_DUPLICATE
        cursor[s] = t
        valid[t, s] = True
        cell = t * n_symbols + s
        if r >= 0:
            last = runs[r, RUN_CELL] + (runs[r, RUN_LENGTH] - 1) * runs[r, RUN_STEP]
            if runs[r, RUN_LENGTH] == 1 and cell > last:
                runs[r, RUN_STEP] = cell - last
                runs[r, RUN_LENGTH] = 2
                continue
            if cell == last + runs[r, RUN_STEP]:
                runs[r, RUN_LENGTH] += 1
                continue
        r += 1
        runs[r, RUN_ROW] = i
        runs[r, RUN_CELL] = cell
        runs[r, RUN_STEP] = 1
        runs[r, RUN_LENGTH] = 1
    n_runs[0] = r + 1
    return SCATTER_OK


@njit(cache=True, nogil=True)
def copy_runs(values, runs, n_runs, plane):
    """Copy ``values`` (one batch column) into the flattened ``[T * S]`` ``plane`` run by run."""
    for k in range(n_runs):
        row = runs[k, RUN_ROW]
        cell = runs[k, RUN_CELL]
        step = runs[k, RUN_STEP]
        length = runs[k, RUN_LENGTH]
        if step == 1:
            plane[cell : cell + length] = values[row : row + length]
        else:
            for j in range(length):
                plane[cell + j * step] = values[row + j]


@njit(cache=True, nogil=True)
def fill_missing(valid, planes):
    """Write NaN into every plane of ``planes[F, T, S]`` where ``valid`` is False (missing bars)."""
    n_times, n_symbols = valid.shape
    for t in range(n_times):
        for s in range(n_symbols):
            if not valid[t, s]:
                for f in range(planes.shape[0]):
                    planes[f, t, s] = np.nan
