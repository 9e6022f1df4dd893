"""Feature kernels over time-major bar arrays ``[T, S]``.

Every kernel is strictly causal: the value at bar ``t`` reads bars ``t - lookback .. t``
only. A value is written only where every bar of that lookback window is valid, which the
caller proves with ``run``, the count of consecutive valid bars ending at each bar
(:func:`valid_run_length`); everywhere else the kernel writes NaN. Log returns are the
exception: they need only the bars at their endpoints. Feature kernels write
column ``col`` of a preallocated float32 output ``[T, S, F]`` and compute in float64.
They return a status code and never raise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

STATUS_OK = 0
STATUS_BAD_WINDOW = 1
STATUS_BAD_SHAPE = 2

NO_BAD_BAR = -1

# 3 - 2*sqrt(2): the constant of the Corwin-Schultz (2012) estimator, equation (18).
_CS_DENOM = 3.0 - 2.0 * np.sqrt(2.0)


@njit(cache=True, nogil=True)
def valid_run_length(valid, run):
    """``run[t, s]`` = number of consecutive valid bars ending at bar ``t`` (0 if ``t`` is missing)."""
    n_bars, n_symbols = valid.shape
    if run.shape != valid.shape:
        return STATUS_BAD_SHAPE
    for t in range(n_bars):
        for s in range(n_symbols):
            if valid[t, s]:
                run[t, s] = run[t - 1, s] + 1 if t > 0 else 1
            else:
                run[t, s] = 0
    return STATUS_OK


@njit(cache=True, nogil=True)
def first_bad_bar(open_, high, low, close, volume, valid):
    """Flat index ``t * S + s`` of the first valid bar that breaks the bar rules, else -1.

    Rules for a valid bar: open, high, low, close finite and > 0; high >= low; volume
    finite and >= 0.
    """
    n_bars, n_symbols = close.shape
    for t in range(n_bars):
        for s in range(n_symbols):
            if not valid[t, s]:
                continue
            o = open_[t, s]
            h = high[t, s]
            lo = low[t, s]
            c = close[t, s]
            v = volume[t, s]
            prices_ok = o > 0.0 and h > 0.0 and lo > 0.0 and c > 0.0
            finite = np.isfinite(o) and np.isfinite(h) and np.isfinite(lo) and np.isfinite(c) and np.isfinite(v)
            if not (prices_ok and finite and h >= lo and v >= 0.0):
                return t * n_symbols + s
    return NO_BAD_BAR


@njit(cache=True, nogil=True)
def natural_log(x, out):
    """``out = ln(x)`` elementwise into float64 ``[T, S]``; NaN where ``x`` is not > 0."""
    n_bars, n_symbols = x.shape
    for t in range(n_bars):
        for s in range(n_symbols):
            value = x[t, s]
            out[t, s] = np.log(value) if value > 0.0 else np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def log_return(log_close, valid, lag, skip, out, col):
    """``out = ln(close[t - skip]) - ln(close[t - lag])``, dimensionless log return.

    ``skip = 0`` is the plain ``lag``-bar log return; ``skip > 0`` is momentum that leaves
    out the most recent ``skip`` bars (Jegadeesh and Titman 1993, "12-1" momentum).
    Valid where bars ``t``, ``t - skip`` and ``t - lag`` are valid: a return needs only its
    two endpoints, so one missing bar does not blank a year of momentum.
    """
    n_bars, n_symbols = log_close.shape
    if lag < 1 or skip < 0 or skip >= lag:
        return STATUS_BAD_WINDOW
    for t in range(n_bars):
        for s in range(n_symbols):
            if t >= lag and valid[t, s] and valid[t - skip, s] and valid[t - lag, s]:
                out[t, s, col] = log_close[t - skip, s] - log_close[t - lag, s]
            else:
                out[t, s, col] = np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def bar_log_return(log_close, run, out):
    """One-bar log returns ``ln(close[t]) - ln(close[t-1])`` into a float64 ``[T, S]`` series."""
    n_bars, n_symbols = log_close.shape
    for t in range(n_bars):
        for s in range(n_symbols):
            out[t, s] = log_close[t, s] - log_close[t - 1, s] if run[t, s] > 1 else np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def _window_sum(x, first, last, acc):
    """``acc[s] = sum(x[first .. last, s])``; the inner loop runs over contiguous symbols (SIMD)."""
    acc[:] = 0.0
    for k in range(first, last + 1):
        for s in range(x.shape[1]):
            acc[s] += x[k, s]


@njit(cache=True, nogil=True)
def _window_sum_sq(x, first, last, center, acc):
    """``acc[s] = sum((x[first .. last, s] - center[s]) ** 2)``."""
    acc[:] = 0.0
    for k in range(first, last + 1):
        for s in range(x.shape[1]):
            d = x[k, s] - center[s]
            acc[s] += d * d


@njit(cache=True, nogil=True)
def rolling_rms(x, run, window, min_run, out, col):
    """``out = sqrt(mean(x[t - window + 1 .. t] ** 2))``, in the units of ``x``.

    Over one-bar log returns this is realized volatility per bar with the zero-mean
    convention (Andersen et al. 2001). Valid where ``run >= min_run``.
    """
    n_bars, n_symbols = x.shape
    if window < 1 or min_run < window:
        return STATUS_BAD_WINDOW
    zero = np.zeros(n_symbols)
    acc = np.empty(n_symbols)
    for t in range(n_bars):
        if t + 1 >= min_run:
            _window_sum_sq(x, t - window + 1, t, zero, acc)
        for s in range(n_symbols):
            out[t, s, col] = np.sqrt(acc[s] / window) if run[t, s] >= min_run else np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def rolling_zscore(x, run, window, min_run, out, col):
    """``out = (x[t] - mean(w)) / std(w)`` with ``w = x[t - window .. t - 1]``, sample std (ddof 1).

    The current bar is scored against the ``window`` bars before it, so a spike does not
    dampen its own score. NaN where the window has zero dispersion. Valid where
    ``run >= min_run``.
    """
    n_bars, n_symbols = x.shape
    if window < 2 or min_run < window + 1:
        return STATUS_BAD_WINDOW
    mean = np.empty(n_symbols)
    squares = np.empty(n_symbols)
    for t in range(n_bars):
        if t + 1 >= min_run:
            _window_sum(x, t - window, t - 1, mean)
            mean /= window
            _window_sum_sq(x, t - window, t - 1, mean, squares)
        for s in range(n_symbols):
            out[t, s, col] = np.nan
            if run[t, s] >= min_run:
                std = np.sqrt(squares[s] / (window - 1))
                if std > 0.0:
                    out[t, s, col] = (x[t, s] - mean[s]) / std
    return STATUS_OK


@njit(cache=True, nogil=True)
def sma_gap(close, run, window, out, col):
    """``out = ln(close[t] / mean(close[t - window + 1 .. t]))``: distance from the moving average."""
    n_bars, n_symbols = close.shape
    if window < 1:
        return STATUS_BAD_WINDOW
    acc = np.empty(n_symbols)
    for t in range(n_bars):
        if t + 1 >= window:
            _window_sum(close, t - window + 1, t, acc)
        for s in range(n_symbols):
            out[t, s, col] = np.log(close[t, s] * window / acc[s]) if run[t, s] >= window else np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def average_true_range(high, low, close, run, window, out, col):
    """``out = mean(TR[t - window + 1 .. t]) / close[t]``, fraction of price (Wilder 1978, simple mean).

    ``TR[k] = max(high[k] - low[k], |high[k] - close[k-1]|, |low[k] - close[k-1]|)``.
    Valid where bars ``t - window .. t`` are all valid.
    """
    n_bars, n_symbols = close.shape
    if window < 1:
        return STATUS_BAD_WINDOW
    acc = np.empty(n_symbols)
    for t in range(n_bars):
        if t >= window:
            acc[:] = 0.0
            for k in range(t - window + 1, t + 1):
                for s in range(n_symbols):
                    prev = close[k - 1, s]
                    acc[s] += max(high[k, s] - low[k, s], max(abs(high[k, s] - prev), abs(low[k, s] - prev)))
        for s in range(n_symbols):
            out[t, s, col] = acc[s] / window / close[t, s] if run[t, s] > window else np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def hl_range(log_high, log_low, run, out, col):
    """``out = ln(high[t]) - ln(low[t])``: the bar's log range (Parkinson 1980 input)."""
    n_bars, n_symbols = log_high.shape
    for t in range(n_bars):
        for s in range(n_symbols):
            out[t, s, col] = log_high[t, s] - log_low[t, s] if run[t, s] >= 1 else np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def corwin_schultz_spread(log_high, log_low, run, out, col):
    """Bid-ask spread in bps estimated from the highs and lows of bars ``t-1`` and ``t``.

    Corwin and Schultz (2012), equations (14) and (18)::

        beta  = ln(H[t]/L[t])**2 + ln(H[t-1]/L[t-1])**2
        gamma = ln(max(H[t], H[t-1]) / min(L[t], L[t-1]))**2
        alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))
        spread = 2 (e**alpha - 1) / (1 + e**alpha), floored at 0, times 1e4
    """
    n_bars, n_symbols = log_high.shape
    for t in range(n_bars):
        for s in range(n_symbols):
            if run[t, s] > 1:
                b1 = log_high[t, s] - log_low[t, s]
                b0 = log_high[t - 1, s] - log_low[t - 1, s]
                beta = b1 * b1 + b0 * b0
                g = max(log_high[t, s], log_high[t - 1, s]) - min(log_low[t, s], log_low[t - 1, s])
                alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _CS_DENOM - np.sqrt(g * g / _CS_DENOM)
                e = np.exp(alpha)
                out[t, s, col] = max(0.0, 2.0 * (e - 1.0) / (1.0 + e)) * 1e4
            else:
                out[t, s, col] = np.nan
    return STATUS_OK


@njit(cache=True, nogil=True)
def quoted_spread(spread_bps, run, min_run, out, col):
    """``out = spread_bps[t]``, the quoted spread in bps of mid, where quoted and ``run >= min_run``."""
    n_bars, n_symbols = spread_bps.shape
    if min_run < 1:
        return STATUS_BAD_WINDOW
    for t in range(n_bars):
        for s in range(n_symbols):
            value = spread_bps[t, s]
            out[t, s, col] = value if run[t, s] >= min_run and np.isfinite(value) else np.nan
    return STATUS_OK
