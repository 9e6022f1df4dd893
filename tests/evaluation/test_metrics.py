"""Metrics against slow, loop-based references, hand-computed values and the papers' examples."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.config import ExecutionConfig
from ai_trading.errors import EvaluationError
from ai_trading.evaluation.metrics import (
    CostAdjustedMetrics,
    annual_return,
    annual_volatility,
    bar_costs,
    calmar_ratio,
    cost_adjusted_metrics,
    cscv_logits,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    exposure,
    hit_rate,
    max_drawdown,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    psr_from_moments,
    sharpe_ratio,
    sortino_ratio,
    turnover,
)
from ai_trading.execution.portfolio import PortfolioSimulator
from ai_trading.types import FillBatch, MarketPanel

SETTINGS = settings(max_examples=80, deadline=None)
PPY = 252
# returns on a 1e-4 grid: exact enough that loop and vectorised sums agree to rounding
RETURNS = st.lists(st.integers(-3000, 3000).map(lambda x: x / 1e4), min_size=0, max_size=60)


def ref_sharpe(r: list[float]) -> float:
    if len(r) < 2 or statistics.stdev(r) == 0:
        return math.nan
    return statistics.mean(r) / statistics.stdev(r) * math.sqrt(PPY)


def ref_sortino(r: list[float]) -> float:
    if len(r) < 2:
        return math.nan
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    mean = sum(r) / len(r)
    if downside == 0:
        return math.inf if mean > 0 else math.nan
    return mean / downside * math.sqrt(PPY)


def ref_max_drawdown(r: list[float]) -> float:
    if not r:
        return math.nan
    wealth = peak = 1.0
    worst = 0.0
    for x in r:
        wealth *= 1 + x
        peak = max(peak, wealth)
        worst = min(worst, wealth / peak - 1)
    return worst


def ref_annual_return(r: list[float]) -> float:
    if not r:
        return math.nan
    wealth = math.prod(1 + x for x in r)
    return -1.0 if wealth <= 0 else wealth ** (PPY / len(r)) - 1


def ref_psr(r: list[float], benchmark_annual: float) -> float:
    n = len(r)
    if n < 2 or statistics.stdev(r) == 0:
        return math.nan
    mean = sum(r) / n
    m2, m3, m4 = (sum((x - mean) ** k for x in r) / n for k in (2, 3, 4))
    sr = mean / statistics.stdev(r)
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    z = (sr - benchmark_annual / math.sqrt(PPY)) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return NormalDist().cdf(z)


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@SETTINGS
@given(r=RETURNS)
def test_classic_ratios_match_loop_references(r: list[float]) -> None:
    assert close(sharpe_ratio(r), ref_sharpe(r))
    assert close(sortino_ratio(r), ref_sortino(r))
    assert close(max_drawdown(r), ref_max_drawdown(r))
    assert close(annual_return(r), ref_annual_return(r))
    vol = annual_volatility(r)
    assert close(vol, math.nan if len(r) < 2 else statistics.stdev(r) * math.sqrt(PPY))
    mdd = ref_max_drawdown(r)
    assert close(calmar_ratio(r), ref_annual_return(r) / abs(mdd) if mdd < 0 else math.nan)
    moved = [x for x in r if x != 0]
    assert close(hit_rate(r), sum(x > 0 for x in moved) / len(moved) if moved else math.nan)


@SETTINGS
@given(r=RETURNS, benchmark=st.floats(-2.0, 2.0))
def test_psr_matches_loop_reference(r: list[float], benchmark: float) -> None:
    expected = ref_psr(r, benchmark)
    got = probabilistic_sharpe_ratio(r, benchmark)
    assert (math.isnan(got) and math.isnan(expected)) or math.isclose(got, expected, rel_tol=1e-7, abs_tol=1e-9)


HAND_VALUES = [
    (lambda: sharpe_ratio([0.01, 0.02, 0.03]), 2.0 * math.sqrt(252)),  # mean 0.02, stdev 0.01
    (lambda: sharpe_ratio([0.01, 0.02, 0.03], periods_per_year=12), 2.0 * math.sqrt(12)),
    (lambda: max_drawdown([0.1, -0.5, 0.2]), -0.5),  # wealth 1, 1.1, 0.55, 0.66
    (lambda: max_drawdown([-0.2, 0.1]), -0.2),  # the starting capital is the first peak
    (lambda: annual_return([0.01] * 252), 1.01**252 - 1),
    (lambda: annual_return([0.21, 0.0], periods_per_year=1), 0.1),  # 1.21 over two years
    (lambda: annual_return([-1.5, 0.1]), -1.0),  # wealth went negative: everything lost
    (lambda: calmar_ratio([0.21, -0.5], periods_per_year=1), ((1.21 * 0.5) ** 0.5 - 1) / 0.5),
    (lambda: sortino_ratio([0.02, -0.02, 0.03, -0.01]), 0.005 / math.sqrt((0.0004 + 0.0001) / 4) * math.sqrt(252)),
    (lambda: hit_rate([0.01, 0.0, -0.02, 0.03]), 2 / 3),
    (lambda: turnover([100.0, 0.0, 300.0], [1000.0, 1000.0, 1000.0], periods_per_year=1), 4 / 30),
    (lambda: exposure([500.0, 1500.0], [1000.0, 1000.0]), 1.0),
    # The Deflated Sharpe Ratio (Bailey and López de Prado 2014), numerical example: 100 trials,
    # variance 1/2 of annualised Sharpes, 250 days a year -> SR0 ~ 0.1132 per day
    (lambda: expected_max_sharpe(100, 0.5 / 250), pytest.approx(0.1132, abs=5e-5)),  # rounded in the paper
    # ... and an annualised SR of 2.5 over 1250 days, skew -3, kurtosis 10 -> DSR ~ 0.9004
    (
        lambda: psr_from_moments(2.5 / math.sqrt(250), 1250, -3.0, 10.0, expected_max_sharpe(100, 0.5 / 250)),
        pytest.approx(0.9004, abs=5e-5),
    ),
    (lambda: psr_from_moments(0.0, 100, 0.0, 3.0, 0.0), 0.5),  # SR equal to the benchmark
    (lambda: expected_max_sharpe(1, 4.0), 0.0),
]


@pytest.mark.parametrize(("compute", "expected"), HAND_VALUES)
def test_hand_computed_values(compute, expected: object) -> None:  # type: ignore[no-untyped-def]
    assert compute() == (expected if not isinstance(expected, float) else pytest.approx(expected, rel=1e-9))


EDGE_CASES = [
    (lambda: sharpe_ratio([]), math.nan),
    (lambda: sharpe_ratio([0.01]), math.nan),
    (lambda: sharpe_ratio([0.1] * 7), math.nan),  # constant: zero volatility, undefined
    (lambda: annual_volatility([0.1] * 7), 0.0),
    (lambda: sortino_ratio([0.01, 0.02]), math.inf),  # no downside at all (empyrical)
    (lambda: sortino_ratio([0.0, 0.0]), math.nan),
    (lambda: max_drawdown([]), math.nan),
    (lambda: max_drawdown([0.01, 0.02]), 0.0),
    (lambda: calmar_ratio([0.01, 0.02]), math.nan),  # no drawdown
    (lambda: annual_return([]), math.nan),
    (lambda: hit_rate([0.0, 0.0]), math.nan),
    (lambda: probabilistic_sharpe_ratio([0.01] * 5), math.nan),
    (lambda: turnover([], []), math.nan),
]


@pytest.mark.parametrize(("compute", "expected"), EDGE_CASES)
def test_documented_edge_values(compute, expected: float) -> None:  # type: ignore[no-untyped-def]
    got = compute()
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


BAD_INPUTS = [
    (lambda: sharpe_ratio([0.01, math.nan, 0.02]), "NaN or inf at index 1"),
    (lambda: max_drawdown([[0.01, 0.02]]), "1-D"),
    (lambda: annual_return(["x"]), "numeric"),
    (lambda: sharpe_ratio([0.01, 0.02], periods_per_year=0), "periods_per_year"),
    (lambda: sharpe_ratio([0.01, 0.02], periods_per_year="252"), "periods_per_year"),  # type: ignore[arg-type]
    (lambda: expected_max_sharpe(0, 1.0), "n_trials"),
    (lambda: expected_max_sharpe(5, -1.0), "trials_sharpe_variance"),
    (lambda: probability_of_backtest_overfitting(np.zeros((64, 3)), 5), "even"),
    (lambda: probability_of_backtest_overfitting(np.zeros((64, 1)), 4), "configurations"),
    (lambda: probability_of_backtest_overfitting(np.zeros((7, 3)), 4), "rows per submatrix"),
]


@pytest.mark.parametrize(("compute", "needle"), BAD_INPUTS)
def test_bad_input_raises_evaluation_error(compute, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EvaluationError, match=needle):
        compute()


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_trials=st.integers(2, 1000), variance=st.floats(0.01, 4.0))
def test_deflated_sharpe_is_below_probabilistic_sharpe(seed: int, n_trials: int, variance: float) -> None:
    r = np.random.default_rng(seed).normal(0.001, 0.01, 300)
    psr = probabilistic_sharpe_ratio(r)
    dsr = deflated_sharpe_ratio(r, n_trials, variance)
    assert 0.0 <= dsr < psr <= 1.0 or (dsr == 0.0 and psr < 1e-12)
    assert deflated_sharpe_ratio(r, 1, variance) == psr


def ref_subset_sharpe(column: list[float]) -> float:
    mean, sd = statistics.mean(column), statistics.stdev(column)
    if sd == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / sd


def ref_cscv_logits(m: np.ndarray, s: int) -> np.ndarray:
    """Bailey et al. (2017) step by step, one combination at a time."""
    rows = m.shape[0] // s
    m = m[m.shape[0] - rows * s :]
    blocks = [m[i * rows : (i + 1) * rows] for i in range(s)]
    out = []
    for chosen in itertools.combinations(range(s), s // 2):
        train = np.vstack([blocks[i] for i in chosen])
        test = np.vstack([blocks[i] for i in range(s) if i not in chosen])
        is_sr = [ref_subset_sharpe(c) for c in train.T.tolist()]
        oos_sr = [ref_subset_sharpe(c) for c in test.T.tolist()]
        best = is_sr.index(max(is_sr))
        rank = sum(x < oos_sr[best] for x in oos_sr) + (sum(x == oos_sr[best] for x in oos_sr) + 1) / 2  # mid-rank
        omega = rank / (len(oos_sr) + 1)
        out.append(math.log(omega / (1 - omega)))
    return np.array(out)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_configs=st.integers(2, 6), s=st.sampled_from([2, 4, 6]), extra=st.integers(0, 5))
def test_cscv_matches_reference(seed: int, n_configs: int, s: int, extra: int) -> None:
    rows = s * 4 + extra
    m = np.random.default_rng(seed).normal(0.0005, 0.01, (rows, n_configs))
    np.testing.assert_allclose(cscv_logits(m, s), ref_cscv_logits(m, s), rtol=1e-9, atol=1e-12)


def test_cscv_ranks_ties_at_mid_rank() -> None:
    # two never-trading configurations tie at Sharpe 0; whenever one of them is the in-sample best,
    # its out-of-sample rank is shared with the other
    m = np.zeros((48, 3))
    m[:, 2] = np.random.default_rng(6).normal(0.0, 0.01, 48)
    logits = cscv_logits(m, 6)
    np.testing.assert_allclose(logits, ref_cscv_logits(m, 6))
    tied = {round(math.log(w / (1 - w)), 12) for w in (1.5 / 4, 2.5 / 4)}
    assert tied & {round(x, 12) for x in logits}


def test_pbo_is_zero_when_one_configuration_dominates() -> None:
    rng = np.random.default_rng(1)
    m = rng.normal(0.0, 0.01, (400, 10))
    m[:, 3] = m.max(axis=1) + 0.001  # better than every other configuration in every period
    assert probability_of_backtest_overfitting(m, 8) == 0.0


def test_pbo_of_pure_noise_is_near_one_half() -> None:
    rng = np.random.default_rng(2)
    pbos = [probability_of_backtest_overfitting(rng.normal(0.0, 0.01, (320, 20)), 8) for _ in range(8)]
    assert 0.3 < float(np.mean(pbos)) < 0.7
    assert all(0.0 <= p <= 1.0 for p in pbos)


def test_pbo_drops_oldest_remainder_rows_and_handles_flat_configurations() -> None:
    rng = np.random.default_rng(3)
    m = rng.normal(0.0, 0.01, (103, 5))
    assert probability_of_backtest_overfitting(m, 4) == probability_of_backtest_overfitting(m[3:], 4)
    m[:, 0] = 0.0  # a never-trading configuration: Sharpe 0, still ranked
    logits = cscv_logits(m, 4)
    assert logits.shape == (math.comb(4, 2),) and np.all(np.isfinite(logits))


def _fills() -> FillBatch:
    n = 4
    return FillBatch(
        order_id=np.arange(n),
        symbol=np.zeros(n),
        bar=np.array([10, 10, 12, 13]),
        ts=np.zeros(n),
        side=np.array([1, -1, 1, -1]),
        qty=np.array([10.0, 5.0, 2.0, 7.0]),
        price=np.array([100.1, 99.8, 50.05, 20.0]),
        fee=np.array([1.0, 0.5, 0.35, 0.35]),
        mid=np.array([100.0, 100.0, 50.0, 20.02]),
        participation=np.full(n, 0.01),
        sigma_bps=np.full(n, 10.0),
        spread_bps=np.full(n, np.nan),
    )


def test_bar_costs_match_per_fill_loop() -> None:
    fills = _fills()
    costs, notional = bar_costs(fills, n_bars=5, start_bar=10)
    expected_costs = np.zeros(5)
    expected_notional = np.zeros(5)
    for i in range(len(fills)):
        paid_vs_mid = (fills.price[i] - fills.mid[i]) * fills.qty[i] * fills.side[i]
        expected_costs[fills.bar[i] - 10] += paid_vs_mid + fills.fee[i]
        expected_notional[fills.bar[i] - 10] += fills.qty[i] * fills.price[i]
    np.testing.assert_allclose(costs, expected_costs)
    np.testing.assert_allclose(notional, expected_notional)
    assert costs[0] == pytest.approx(1.0 + 1.0 + 1.0 + 0.5)  # 10 * 0.1 + fee, 5 * 0.2 + fee
    with pytest.raises(EvaluationError, match="outside"):
        bar_costs(fills, n_bars=3, start_bar=10)


def _run(seed: int = 4, n: int = 300) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    costs = rng.uniform(0.0, 5.0, n)
    traded = rng.uniform(0.0, 20_000.0, n)
    gross_exposure = np.where(rng.random(n) < 0.8, rng.uniform(50_000, 150_000, n), 0.0)
    equity = 100_000 * np.cumprod(1 + rng.normal(0.0005, 0.01, n))
    return equity, costs, traded, gross_exposure


def test_cost_adjusted_metrics_decompose_gross_and_net() -> None:
    equity, costs, traded, gross_exposure = _run()
    report = cost_adjusted_metrics(equity, costs, traded, gross_exposure, initial_equity=100_000.0)
    before = np.concatenate(([100_000.0], equity[:-1]))
    net = equity / before - 1
    gross_equity = [100_000.0]
    for e, c in zip(equity, np.cumsum(costs), strict=True):
        gross_equity.append(e + c)
    gross = np.diff(gross_equity) / np.array(gross_equity[:-1])
    assert report.net.sharpe_ratio == pytest.approx(sharpe_ratio(net))
    assert report.gross.sharpe_ratio == pytest.approx(sharpe_ratio(gross))
    assert report.gross.annual_return > report.net.annual_return
    assert report.net.total_return == pytest.approx(equity[-1] / 100_000.0 - 1)
    assert report.gross_pnl - report.net_pnl == pytest.approx(costs.sum())
    assert report.gross.total_return == pytest.approx(report.gross_pnl / 100_000.0)
    assert report.cost_bps == pytest.approx(costs.sum() / traded.sum() * 1e4)
    assert report.cost_drag == pytest.approx(np.mean(costs / before) * 252)
    assert report.turnover == pytest.approx(np.mean(traded / before) * 252)
    assert report.exposure == pytest.approx(np.mean(gross_exposure / equity))
    assert report.time_in_market == pytest.approx(np.mean(gross_exposure > 0))
    assert report.deflated_sharpe_ratio is None


def test_cost_free_run_has_identical_gross_and_net_and_serialises() -> None:
    equity, _, traded, gross_exposure = _run(seed=5)
    report = cost_adjusted_metrics(equity, np.zeros_like(equity), traded, gross_exposure, 100_000.0, n_trials=20, trials_sharpe_variance=0.5)
    assert report.gross == report.net
    assert report.total_costs == 0.0 and report.cost_bps == 0.0
    assert report.deflated_sharpe_ratio is not None and report.deflated_sharpe_ratio < report.net.probabilistic_sharpe_ratio
    as_dict = report.to_dict()
    assert as_dict["net"]["sharpe_ratio"] == report.net.sharpe_ratio
    assert json.loads(json.dumps(as_dict))["n_periods"] == equity.size
    again = cost_adjusted_metrics(equity, np.zeros_like(equity), traded, gross_exposure, 100_000.0, n_trials=20, trials_sharpe_variance=0.5)
    assert again == report  # deterministic
    assert isinstance(report, CostAdjustedMetrics)


REPORT_ERRORS = [
    ({"equity": np.array([1.0, -1.0])}, "equity must stay > 0"),
    ({"equity": np.array([1.0, np.nan])}, "NaN or inf"),
    ({"costs": np.zeros(3)}, "same length"),
    ({"traded_notional": np.array([-1.0, 0.0])}, "traded_notional must be >= 0"),
    ({"n_trials": 5}, "both n_trials and trials_sharpe_variance"),
]


@pytest.mark.parametrize(("override", "needle"), REPORT_ERRORS)
def test_cost_adjusted_metrics_rejects_bad_input(override: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {
        "equity": np.array([101.0, 102.0]),
        "costs": np.zeros(2),
        "traded_notional": np.zeros(2),
        "gross_exposure": np.zeros(2),
        "initial_equity": 100.0,
    }
    args.update(override)
    with pytest.raises(EvaluationError, match=needle):
        cost_adjusted_metrics(**args)  # type: ignore[arg-type]


def test_report_of_a_simulated_portfolio_agrees_with_its_curves() -> None:
    """The report takes the portfolio simulator's per-bar arrays as they are (bar 0 = flat start)."""
    rng = np.random.default_rng(7)
    n_bars, n_symbols = 200, 3
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bars, n_symbols)), axis=0))
    panel = MarketPanel(
        ts=np.arange(n_bars, dtype=np.int64) * 86_400 * 10**9,
        symbols=("A", "B", "C"),
        open=close,
        high=close * 1.01,
        low=close * 0.99,
        close=close,
        volume=np.full((n_bars, n_symbols), 1e6),
        valid=np.ones((n_bars, n_symbols), dtype=bool),
    )
    targets = np.where(rng.random((n_bars, n_symbols)) < 0.5, 0.3, -0.2)
    result = PortfolioSimulator(ExecutionConfig()).run(targets, panel, initial_cash=1e6)
    report = cost_adjusted_metrics(
        result.equity[1:], result.cost[1:], result.traded_notional[1:], result.gross_exposure[1:], initial_equity=result.equity[0]
    )
    assert report.total_costs > 0 and report.traded_notional > 0
    assert report.net.sharpe_ratio == pytest.approx(sharpe_ratio(result.net_returns))
    assert report.gross.sharpe_ratio == pytest.approx(sharpe_ratio(result.gross_returns))
    assert report.gross_pnl == pytest.approx(result.gross_equity[-1] - result.equity[0])
    assert report.gross.total_return > report.net.total_return


def test_fees_are_reported_apart_within_the_costs() -> None:
    equity = np.array([100.0, 101.0, 100.5])
    costs, fees = np.array([0.3, 0.2, 0.1]), np.array([0.1, 0.05, 0.0])
    zero = np.zeros(3)
    report = cost_adjusted_metrics(equity, costs, zero + 10.0, equity, initial_equity=100.0, fees=fees)
    assert report.fees == pytest.approx(0.15) and report.total_costs == pytest.approx(0.6)
    assert math.isnan(cost_adjusted_metrics(equity, costs, zero, equity, initial_equity=100.0).fees)
    with pytest.raises(EvaluationError, match="fees need the same length"):
        cost_adjusted_metrics(equity, costs, zero, equity, initial_equity=100.0, fees=fees[:2])
