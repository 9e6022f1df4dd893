"""Scatter bar rows (one row per symbol and timestamp, any order) into time-major ``[T, S]`` planes.

Two passes per Arrow record batch. :func:`locate_rows` finds each row's cell
``t * S + s`` and groups consecutive rows that land in consecutive cells into runs;
:func:`copy_runs` then copies one value column into one flattened plane run by run.
Rows stored time-major (as the built-in data set is) form one run per batch, so the
copy is a memcpy; symbol-major rows form runs of one cell. The time index of a row is
found by guessing ``cursor[s] + 1`` first (rows of one symbol usually arrive in time
order) and by binary search only when the guess misses: O(1) per row for ordered input,
O(log T) otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Status of append_sorted_unique.
AXIS_OK = 0
AXIS_NOT_SORTED = 1  # the values decrease somewhere; the caller sorts instead

# Status codes of locate_rows; the failing row index is written to bad_row[0].
SCATTER_OK = 0
SCATTER_UNKNOWN_TS = 1  # a row's timestamp is not on the time axis
SCATTER_DUPLICATE = 2  # two rows for the same symbol and timestamp
SCATTER_BAD_SYMBOL = 3  # symbol code outside [0, S)


@njit(cache=True, nogil=True)
def append_sorted_unique(values, out, count):
    """Append the distinct values of non-decreasing ``values`` to ``out[count[0]:]``.

    Carries ``count[0]`` (values in ``out`` so far) across calls, so a column arriving in
    chunks yields its distinct values in one O(n) pass. Returns AXIS_NOT_SORTED at the
    first decrease (``out`` and ``count`` are then meaningless).
    """
    n = count[0]
    for i in range(values.size):
        value = values[i]
        if n > 0 and value <= out[n - 1]:
            if value == out[n - 1]:
                continue
            return AXIS_NOT_SORTED
        out[n] = value
        n += 1
    count[0] = n
    return AXIS_OK


@njit(cache=True, nogil=True)
def locate_rows(ts, ts_scale, symbol, axis, cursor, valid, run_row, run_cell, n_runs, bad_row):
    """Mark each row's cell in ``valid[T, S]`` and record runs of consecutive cells.

    Row ``i`` belongs to cell ``t * S + s`` with ``s = symbol[i]`` and ``axis[t] ==
    ts[i] * ts_scale`` (``axis``: strictly increasing int64 ns; ``ts`` in any unit).
    ``cursor`` (int64[S], start -1) keeps the last time index per symbol across calls.
    Run ``k`` starts at row ``run_row[k]`` and cell ``run_cell[k]``; ``run_row`` and
    ``run_cell`` have room for one run per row; the count goes to ``n_runs[0]``.
    Returns a status code.
    """
    n_times, n_symbols = valid.shape
    runs = 0
    previous_cell = -2
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
        if cell != previous_cell + 1:
            run_row[runs] = i
            run_cell[runs] = cell
            runs += 1
        previous_cell = cell
    n_runs[0] = runs
    return SCATTER_OK


@njit(cache=True, nogil=True)
def copy_runs(values, run_row, run_cell, n_runs, plane):
    """Copy ``values`` (one batch column) into the flattened ``[T * S]`` ``plane`` run by run."""
    n_rows = values.size
    for k in range(n_runs):
        start = run_row[k]
        stop = run_row[k + 1] if k + 1 < n_runs else n_rows
        cell = run_cell[k]
        plane[cell : cell + stop - start] = values[start:stop]


@njit(cache=True, nogil=True)
def fill_missing(valid, planes):
    """Write NaN into every plane of ``planes[F, T, S]`` where ``valid`` is False (missing bars)."""
    n_times, n_symbols = valid.shape
    for t in range(n_times):
        for s in range(n_symbols):
            if not valid[t, s]:
                for f in range(planes.shape[0]):
                    planes[f, t, s] = np.nan
