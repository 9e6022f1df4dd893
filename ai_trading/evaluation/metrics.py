"""Performance metrics of executed strategies, overfitting statistics and the cost-adjusted report.

Returns are simple per-period returns ``r_t = E_t / E_{t-1} - 1`` in a finite 1-D array;
NaN or inf raise :class:`EvaluationError` (fill or drop missing periods first). The classic
ratios follow empyrical's definitions, including its edge cases (NaN when a ratio is
undefined, e.g. fewer than two periods or zero volatility); PSR, DSR and PBO follow
Bailey and López de Prado (2012, 2014) and Bailey, Borwein, López de Prado and Zhu (2015
working paper, J. Computational Finance 2017).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations
from statistics import NormalDist
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from ai_trading.errors import EvaluationError
from ai_trading.execution.pnl import fill_costs
from ai_trading.types import FillBatch, FloatArray

PERIODS_PER_YEAR = 252
"""Trading days per year: the annualisation default for daily bars."""
EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_CSCV_CHUNK = 2048
"""Combinations ranked per vectorised step in CSCV; bounds memory at chunk x configs floats."""


def _array(name: str, values: ArrayLike, ndim: int = 1) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"{name} must be numeric: {exc}") from exc
    if array.ndim != ndim:
        raise EvaluationError(f"{name} must be {ndim}-D, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        index = where if ndim > 1 else where[0]
        raise EvaluationError(f"{name} holds NaN or inf at index {index}: fill or drop missing periods first")
    return array


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise EvaluationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _periods(periods_per_year: float) -> float:
    numeric = isinstance(periods_per_year, (int, float, np.number)) and not isinstance(periods_per_year, bool)
    if not (numeric and math.isfinite(periods_per_year) and periods_per_year > 0):
        raise EvaluationError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    return float(periods_per_year)


def _sample_std(r: FloatArray) -> float:
    """``std(r, ddof=1)`` of >= 2 values; exactly 0 for constant input (a rounded mean leaves ~1e-17)."""
    return 0.0 if bool(np.all(r == r[0])) else float(np.std(r, ddof=1))


def _per_period_sharpe(r: FloatArray) -> float:
    if r.size < 2:
        return math.nan
    std = _sample_std(r)
    return math.nan if std == 0.0 else float(np.mean(r)) / std


def sharpe_ratio(returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``; NaN for < 2 periods or zero std."""
    return _per_period_sharpe(_array("returns", returns)) * math.sqrt(_periods(periods_per_year))


def sortino_ratio(returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR, required_return: float = 0.0) -> float:
    """``mean(d) / sqrt(mean(min(d, 0)**2)) * sqrt(periods_per_year)`` with ``d = r - required_return``.

    The downside deviation averages over *all* periods (empyrical's ``downside_risk``).
    NaN for < 2 periods or when every ``d`` is 0; +inf when no period falls below the
    required return and the mean is positive (as empyrical).
    """
    d = _array("returns", returns) - required_return
    ppy = _periods(periods_per_year)
    if d.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(d, 0.0) ** 2)))
    mean = float(np.mean(d))
    if downside == 0.0:
        return math.inf if mean > 0 else math.nan
    return mean / downside * math.sqrt(ppy)


def _wealth(r: FloatArray) -> FloatArray:
    """Compounded wealth ``W_t = prod_{s<=t}(1 + r_s)`` with the starting ``W_0 = 1`` prepended."""
    return np.concatenate(([1.0], np.cumprod(1.0 + r)))


def max_drawdown(returns: ArrayLike) -> float:
    """``min_t (W_t / max_{s<=t} W_s - 1)`` on compounded wealth starting at 1 (a peak itself).

    Zero or negative (``-0.25`` is a 25 % fall from the running peak); NaN for no periods.
    Takes no ``periods_per_year``: a drawdown is not annualised.
    """
    r = _array("returns", returns)
    if r.size == 0:
        return math.nan
    wealth = _wealth(r)
    return float(np.min(wealth / np.maximum.accumulate(wealth) - 1.0))


def annual_return(returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """CAGR ``W_T ** (periods_per_year / T) - 1``; NaN for no periods, -1 when wealth ends <= 0."""
    r = _array("returns", returns)
    ppy = _periods(periods_per_year)
    if r.size == 0:
        return math.nan
    final = float(np.prod(1.0 + r))
    return -1.0 if final <= 0.0 else final ** (ppy / r.size) - 1.0


def annual_volatility(returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """``std(r, ddof=1) * sqrt(periods_per_year)``; NaN for < 2 periods."""
    r = _array("returns", returns)
    ppy = _periods(periods_per_year)
    return math.nan if r.size < 2 else _sample_std(r) * math.sqrt(ppy)


def calmar_ratio(returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """``annual_return / |max_drawdown|``; NaN when there is no drawdown (as empyrical)."""
    drawdown = max_drawdown(returns)
    if not drawdown < 0.0:
        return math.nan
    return annual_return(returns, periods_per_year) / abs(drawdown)


def hit_rate(returns: ArrayLike) -> float:
    """Share of periods with a gain among periods that moved: ``#(r > 0) / #(r != 0)``; NaN if none moved."""
    r = _array("returns", returns)
    moved = int(np.count_nonzero(r))
    return math.nan if moved == 0 else int(np.count_nonzero(r > 0)) / moved


def psr_from_moments(sharpe: float, n_obs: int, skewness: float, kurtosis: float, benchmark_sharpe: float = 0.0) -> float:
    """Probabilistic Sharpe Ratio from summary statistics (Bailey and López de Prado 2012).

    ``PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR**2))``,
    with per-period (not annualised) ``SR`` and ``SR*``, skewness ``g3`` and kurtosis ``g4``
    (3 for a normal distribution, not excess). The probability that the true Sharpe ratio
    exceeds ``SR*``. NaN when undefined (NaN Sharpe, ``n < 2``, non-positive variance term).
    """
    variance_term = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if n_obs < 2 or not math.isfinite(sharpe) or not variance_term > 0.0:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark_sharpe) * math.sqrt(n_obs - 1) / math.sqrt(variance_term))


def probabilistic_sharpe_ratio(
    returns: ArrayLike, benchmark_sharpe: float = 0.0, periods_per_year: float = PERIODS_PER_YEAR
) -> float:
    """PSR of ``returns`` against an *annualised* ``benchmark_sharpe`` (see :func:`psr_from_moments`).

    ``SR`` is ``mean / std(ddof=1)`` per period; ``SR* = benchmark_sharpe / sqrt(periods_per_year)``;
    skewness and kurtosis are the sample moments ``m3 / m2**1.5`` and ``m4 / m2**2``.
    """
    r = _array("returns", returns)
    ppy = _periods(periods_per_year)
    sharpe = _per_period_sharpe(r)
    if math.isnan(sharpe):
        return math.nan
    centered = r - r.mean()
    m2 = float(np.mean(centered**2))
    skewness = float(np.mean(centered**3)) / m2**1.5
    kurtosis = float(np.mean(centered**4)) / m2**2
    return psr_from_moments(sharpe, r.size, skewness, kurtosis, benchmark_sharpe / math.sqrt(ppy))


def expected_max_sharpe(n_trials: int, trials_sharpe_variance: float) -> float:
    """Expected best Sharpe of ``n_trials`` skill-less trials (Bailey and López de Prado 2014).

    ``SR0 = sqrt(V) * ((1 - gamma) * Z(1 - 1/N) + gamma * Z(1 - 1/(N e)))`` with ``Z`` the
    standard normal quantile and ``gamma`` the Euler-Mascheroni constant; in the units of
    ``sqrt(V)`` (pass the variance of annualised Sharpes to get an annualised ``SR0``).
    One trial involves no selection: ``SR0 = 0``.
    """
    _integer("n_trials", n_trials, 1)
    if not (math.isfinite(trials_sharpe_variance) and trials_sharpe_variance >= 0):
        raise EvaluationError(f"trials_sharpe_variance must be a finite number >= 0, got {trials_sharpe_variance!r}")
    if n_trials == 1:
        return 0.0
    quantiles = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials) + EULER_GAMMA * _NORMAL.inv_cdf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return math.sqrt(trials_sharpe_variance) * quantiles


def deflated_sharpe_ratio(
    returns: ArrayLike, n_trials: int, trials_sharpe_variance: float, periods_per_year: float = PERIODS_PER_YEAR
) -> float:
    """Deflated Sharpe Ratio: ``PSR(SR0)`` with ``SR0`` the :func:`expected_max_sharpe` of the trials.

    :param n_trials: number of independent configurations tried before picking this one
    :param trials_sharpe_variance: variance across those trials of their *annualised* Sharpe ratios
    """
    benchmark = expected_max_sharpe(n_trials, trials_sharpe_variance)
    return probabilistic_sharpe_ratio(returns, benchmark, periods_per_year)


def _subset_sharpe(sums: FloatArray, sumsq: FloatArray, count: int, column_mean: FloatArray) -> FloatArray:
    """Per-period Sharpe (ddof=1) from sums of column-centred returns; 0/0 -> 0, x/0 -> +-inf."""
    centered_mean = sums / count
    std = np.sqrt(np.maximum(sumsq - count * centered_mean**2, 0.0) / (count - 1))
    mean = centered_mean + column_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mean / std
    return np.where(std > 0, ratio, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)))


def cscv_logits(returns_matrix: ArrayLike, n_submatrices: int = 16) -> FloatArray:
    """Logits ``lambda_c`` of combinatorially symmetric cross-validation (Bailey et al. 2017).

    The ``[T, N]`` matrix (T periods, N configurations) is cut into ``S`` contiguous row
    blocks of ``T // S`` rows (the oldest ``T mod S`` rows are dropped). For each of the
    ``C(S, S/2)`` ways to pick half the blocks as in-sample ``J`` (the rest, ``J-bar``, is
    out-of-sample): ``n* = argmax_n SR_J(n)``; ``w = rank of SR_Jbar(n*) / (N + 1)`` with
    ranks 1 (worst) .. N (best), ties at mid-rank; ``lambda = ln(w / (1 - w))``. The
    performance statistic is the per-period Sharpe ratio (ddof=1).
    """
    m = _array("returns_matrix", returns_matrix, ndim=2)
    n_rows, n_configs = m.shape
    if _integer("n_submatrices", n_submatrices, 2) % 2:
        raise EvaluationError(f"n_submatrices must be even (half the blocks are in-sample), got {n_submatrices}")
    rows = n_rows // n_submatrices
    if n_configs < 2 or rows < 2:
        raise EvaluationError(
            f"CSCV needs >= 2 configurations and >= 2 rows per submatrix; got {n_configs} configurations and "
            f"{n_rows} rows for {n_submatrices} submatrices: add data or use fewer submatrices"
        )
    m = m[n_rows - rows * n_submatrices :]
    column_mean = m.mean(axis=0)
    blocks = (m - column_mean).reshape(n_submatrices, rows, n_configs)
    block_sum, block_sumsq = blocks.sum(axis=1), (blocks**2).sum(axis=1)
    half = n_submatrices // 2
    chosen = np.array(list(combinations(range(n_submatrices), half)), dtype=np.int64)
    in_sample = np.zeros((chosen.shape[0], n_submatrices))
    in_sample[np.arange(chosen.shape[0])[:, None], chosen] = 1.0
    count = half * rows
    logits = np.empty(chosen.shape[0])
    for lo in range(0, chosen.shape[0], _CSCV_CHUNK):
        is_mask = in_sample[lo : lo + _CSCV_CHUNK]
        oos_mask = 1.0 - is_mask
        is_sharpe = _subset_sharpe(is_mask @ block_sum, is_mask @ block_sumsq, count, column_mean)
        oos_sharpe = _subset_sharpe(oos_mask @ block_sum, oos_mask @ block_sumsq, count, column_mean)
        best = np.argmax(is_sharpe, axis=1)
        chosen_oos = oos_sharpe[np.arange(best.size), best][:, None]
        rank = np.sum(oos_sharpe < chosen_oos, axis=1) + (np.sum(oos_sharpe == chosen_oos, axis=1) + 1) / 2.0
        omega = rank / (n_configs + 1)
        logits[lo : lo + best.size] = np.log(omega / (1.0 - omega))
    return logits


def probability_of_backtest_overfitting(returns_matrix: ArrayLike, n_submatrices: int = 16) -> float:
    """PBO by CSCV: the share of splits whose in-sample best is at or below the out-of-sample median.

    ``PBO = #(lambda_c <= 0) / C(S, S/2)`` over the :func:`cscv_logits`. Near 0: the selection
    generalises; near 0.5 or above: choosing the in-sample best is no better than chance.
    Takes no ``periods_per_year``: annualising does not change the ranking.
    """
    return float(np.mean(cscv_logits(returns_matrix, n_submatrices) <= 0.0))


def turnover(traded_notional: ArrayLike, equity_before: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """Annualised two-sided turnover: ``mean_t(traded_notional_t / equity_{t-1}) * periods_per_year``.

    Buys and sells both count, so rotating the whole book once per year is 2.0.
    """
    traded = _array("traded_notional", traded_notional)
    base = _array("equity_before", equity_before)
    return math.nan if traded.size == 0 else float(np.mean(traded / base)) * _periods(periods_per_year)


def exposure(gross_exposure: ArrayLike, equity: ArrayLike) -> float:
    """Mean gross leverage: ``mean_t(sum_s |position value_{t,s}| / equity_t)``; NaN for no periods."""
    gross = _array("gross_exposure", gross_exposure)
    base = _array("equity", equity)
    return math.nan if gross.size == 0 else float(np.mean(gross / base))


@dataclass(frozen=True)
class ReturnMetrics:
    """Every return-based metric of one return series; each field is the function of that name."""

    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe_ratio: float
    sortino_ratio: float
    max_drawdown: float
    calmar_ratio: float
    hit_rate: float
    probabilistic_sharpe_ratio: float

    @classmethod
    def from_returns(cls, returns: ArrayLike, periods_per_year: float = PERIODS_PER_YEAR) -> Self:
        r = _array("returns", returns)
        return cls(
            total_return=float(_wealth(r)[-1] - 1.0),
            annual_return=annual_return(r, periods_per_year),
            annual_volatility=annual_volatility(r, periods_per_year),
            sharpe_ratio=sharpe_ratio(r, periods_per_year),
            sortino_ratio=sortino_ratio(r, periods_per_year),
            max_drawdown=max_drawdown(r),
            calmar_ratio=calmar_ratio(r, periods_per_year),
            hit_rate=hit_rate(r),
            probabilistic_sharpe_ratio=probabilistic_sharpe_ratio(r, 0.0, periods_per_year),
        )


@dataclass(frozen=True)
class CostAdjustedMetrics:
    """Net and gross performance of executed trades, what the costs took, and how much was traded.

    :param net: metrics of the net returns ``r_t = E_t / E_{t-1} - 1`` of the equity curve
    :param gross: metrics of the returns of the gross curve ``G_t = E_t + sum_{s<=t} cost_s``
        (``G_0 = E_0``): the same fills with every cost handed back, so the gross total
        return is ``gross_pnl / E_0`` (the simulator's ``gross_equity``)
    :param net_pnl: ``E_T - E_0`` in currency; ``gross_pnl = net_pnl + total_costs``
    :param total_costs: execution costs in currency (spread, slippage, impact vs mid, plus fees)
    :param fees: the fees within ``total_costs``, currency; NaN when not given (the rest is
        what fill prices paid beyond their reference mids)
    :param cost_bps: ``total_costs / traded_notional * 1e4``; NaN when nothing traded
    :param cost_drag: annualised costs as a fraction of equity, ``mean(cost_t / E_{t-1}) * ppy``
    :param turnover: annualised two-sided turnover (see :func:`turnover`)
    :param exposure: mean gross leverage (see :func:`exposure`)
    :param time_in_market: share of periods ending with a non-zero position
    :param deflated_sharpe_ratio: DSR of the net returns when the trial count was given, else None
    """

    n_periods: int
    periods_per_year: float
    net: ReturnMetrics
    gross: ReturnMetrics
    net_pnl: float
    gross_pnl: float
    total_costs: float
    fees: float
    cost_bps: float
    cost_drag: float
    traded_notional: float
    turnover: float
    exposure: float
    time_in_market: float
    deflated_sharpe_ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of numbers (NaN stays NaN), ready for a JSON report."""
        return asdict(self)


def bar_costs(fills: FillBatch, n_bars: int, start_bar: int = 0) -> tuple[FloatArray, FloatArray]:
    """Per-bar execution costs and traded notional (both currency) of ``fills``.

    ``cost = side * (price - mid) * qty + fee`` per fill (positive = paid) and
    ``notional = qty * price``, summed over the fills of each bar ``start_bar .. start_bar + n_bars - 1``.
    """
    offsets = fills.bar - start_bar
    outside = (offsets < 0) | (offsets >= n_bars)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise EvaluationError(
            f"fill row {row} is at bar {int(fills.bar[row])}, outside [{start_bar}, {start_bar + n_bars}): "
            "pass the fills of this window only"
        )
    for name in ("qty", "price", "mid", "fee"):
        _array(f"fill {name}", getattr(fills, name))
    cost = fill_costs(fills)
    notional = fills.qty * fills.price
    return (
        np.bincount(offsets, weights=cost, minlength=n_bars).astype(np.float64),
        np.bincount(offsets, weights=notional, minlength=n_bars).astype(np.float64),
    )


def cost_adjusted_metrics(
    equity: ArrayLike,
    costs: ArrayLike,
    traded_notional: ArrayLike,
    gross_exposure: ArrayLike,
    initial_equity: float,
    periods_per_year: float = PERIODS_PER_YEAR,
    n_trials: int | None = None,
    trials_sharpe_variance: float | None = None,
    fees: ArrayLike | None = None,
) -> CostAdjustedMetrics:
    """The full metric set of an executed run, from its equity curve and per-bar execution data.

    :param equity: net equity at the end of each period ``[T]``, currency, > 0
    :param costs: execution costs paid in each period ``[T]`` (e.g. from :func:`bar_costs`)
    :param traded_notional: ``sum |qty * price|`` of the fills of each period ``[T]``
    :param gross_exposure: ``sum_s |position value|`` at the end of each period ``[T]``
    :param initial_equity: capital before the first period, > 0
    :param n_trials: configurations tried before this one; with ``trials_sharpe_variance``
        (variance of their annualised Sharpes) it adds the deflated Sharpe ratio
    :param fees: fees paid in each period ``[T]``, part of ``costs``; reported apart
    """
    named = {"equity": equity, "costs": costs, "traded_notional": traded_notional, "gross_exposure": gross_exposure}
    if fees is not None:
        named["fees"] = fees
    arrays = {name: _array(name, values) for name, values in named.items()}
    n = arrays["equity"].size
    if n == 0 or any(a.size != n for a in arrays.values()):
        raise EvaluationError(
            f"{', '.join(arrays)} need the same length >= 1, "
            f"got {[a.size for a in arrays.values()]}"
        )
    if not (math.isfinite(initial_equity) and initial_equity > 0) or not bool(np.all(arrays["equity"] > 0)):
        raise EvaluationError("equity must stay > 0 (initial_equity too): returns are undefined once the capital is gone")
    for name in ("traded_notional", "gross_exposure"):
        if bool(np.any(arrays[name] < 0)):
            raise EvaluationError(f"{name} must be >= 0 (it sums absolute values)")
    if (n_trials is None) != (trials_sharpe_variance is None):
        raise EvaluationError("pass both n_trials and trials_sharpe_variance for the deflated Sharpe ratio, or neither")
    ppy = _periods(periods_per_year)
    equity_now, cost = arrays["equity"], arrays["costs"]
    equity_before = np.concatenate(([float(initial_equity)], equity_now[:-1]))
    net_returns = equity_now / equity_before - 1.0
    gross_equity = equity_now + np.cumsum(cost)
    gross_returns = gross_equity / np.concatenate(([float(initial_equity)], gross_equity[:-1])) - 1.0
    total_costs = float(cost.sum())
    traded = float(arrays["traded_notional"].sum())
    net_pnl = float(equity_now[-1] - initial_equity)
    return CostAdjustedMetrics(
        n_periods=n,
        periods_per_year=ppy,
        net=ReturnMetrics.from_returns(net_returns, ppy),
        gross=ReturnMetrics.from_returns(gross_returns, ppy),
        net_pnl=net_pnl,
        gross_pnl=net_pnl + total_costs,
        total_costs=total_costs,
        fees=float(arrays["fees"].sum()) if "fees" in arrays else math.nan,
        cost_bps=total_costs / traded * 1e4 if traded > 0 else math.nan,
        cost_drag=float(np.mean(cost / equity_before)) * ppy,
        traded_notional=traded,
        turnover=turnover(arrays["traded_notional"], equity_before, ppy),
        exposure=exposure(arrays["gross_exposure"], equity_now),
        time_in_market=float(np.mean(arrays["gross_exposure"] > 0)),
        deflated_sharpe_ratio=None
        if n_trials is None or trials_sharpe_variance is None
        else deflated_sharpe_ratio(net_returns, n_trials, trials_sharpe_variance, ppy),
    )
