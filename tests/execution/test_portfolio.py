"""The fused target-weight kernel against the pure-Python reference, and its contract."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.config import CostModelConfig, ExecutionConfig
from ai_trading.errors import ConfigError, OrderValidationError
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.portfolio import PortfolioSimulator
from ai_trading.types import MarketPanel
from tests.execution import reference
from tests.execution.strategies import panels

SETTINGS = settings(max_examples=40, deadline=None)

configs = st.builds(
    ExecutionConfig,
    seed=st.integers(0, 2**40),
    latency_median_ms=st.sampled_from([0.0, 10.0]),
    latency_sigma=st.sampled_from([0.0, 0.8]),
    slippage_noise_bps=st.sampled_from([0.0, 3.0]),
    max_participation=st.sampled_from([0.05, 1.0]),
    fee_min=st.sampled_from([0.0, 1.0]),
)


def random_targets(panel: MarketPanel, seed: int, hold_rows: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    targets = rng.uniform(-0.6, 0.6, (panel.n_bars, panel.n_symbols)) / panel.n_symbols
    if hold_rows:
        targets[rng.uniform(size=panel.n_bars) < 0.2] = np.nan
    return targets


@SETTINGS
@given(panels(max_bars=20, with_spread=None).filter(lambda p: p.bar_seconds >= 1.0), configs, st.integers(0, 2**32 - 1))
def test_equity_matches_reference(panel: MarketPanel, config: ExecutionConfig, seed: int) -> None:
    targets = random_targets(panel, seed)
    result = PortfolioSimulator(config).run(targets, panel, initial_cash=1e6)
    expected = reference.simulate_portfolio(config, targets, panel, 1e6)
    np.testing.assert_allclose(result.equity, expected, rtol=1e-9)


@SETTINGS
@given(panels(max_bars=20).filter(lambda p: p.bar_seconds >= 1.0), configs, st.integers(0, 2**32 - 1))
def test_costs_explain_the_gap_between_gross_and_net(panel: MarketPanel, config: ExecutionConfig, seed: int) -> None:
    result = PortfolioSimulator(config).run(random_targets(panel, seed), panel)
    assert np.all(result.fees >= 0)
    assert np.all(result.cost >= result.fees - 1e-6) or config.slippage_noise_bps > 0
    np.testing.assert_allclose(result.gross_equity - result.equity, np.cumsum(result.cost))
    traded = np.nansum(np.abs(result.fill_qty) * result.fill_price, axis=1)
    np.testing.assert_allclose(traded, result.traded_notional, rtol=1e-12)


def test_same_seed_same_result_and_learning_updates_the_cost_model() -> None:
    rng = np.random.default_rng(1)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 4)), axis=0))
    panel = MarketPanel(
        ts=np.arange(300) * 60_000_000_000, symbols=("A", "B", "C", "D"), open=close, high=close * 1.01, low=close * 0.99,
        close=close, volume=np.full_like(close, 1e5), valid=np.ones_like(close, dtype=bool),
    )  # fmt: skip
    targets = rng.uniform(-0.2, 0.2, close.shape)
    config = ExecutionConfig(seed=5)
    first = PortfolioSimulator(config).run(targets, panel)
    second = PortfolioSimulator(config).run(targets, panel)
    np.testing.assert_array_equal(first.equity, second.equity)
    other = PortfolioSimulator(dataclasses.replace(config, seed=6)).run(targets, panel)
    assert not np.array_equal(first.equity, other.equity)
    model = CostModel(CostModelConfig(min_observations=5), config)
    PortfolioSimulator(config, model).run(targets, panel, learn=True)
    assert all(model.effective_observations(s) > 5 for s in panel.symbols)


@SETTINGS
@given(panels(max_bars=20).filter(lambda p: p.bar_seconds >= 1.0), configs, st.integers(0, 2**32 - 1))
def test_learning_folds_every_fill_like_the_reference(panel: MarketPanel, config: ExecutionConfig, seed: int) -> None:
    model = CostModel(CostModelConfig(halflife_fills=5.0, min_observations=1e9), config)
    result = PortfolioSimulator(config, model).run(random_targets(panel, seed), panel, learn=True)
    expected = reference.learned_cost_state(config, panel, result.fill_qty, result.fill_price, model.decay)
    np.testing.assert_allclose(model.state_rows(panel.symbols), expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(panels(max_bars=20).filter(lambda p: p.bar_seconds >= 1.0), configs, st.integers(0, 2**32 - 1))
def test_a_run_without_recorded_fills_is_the_same_run(panel: MarketPanel, config: ExecutionConfig, seed: int) -> None:
    targets = random_targets(panel, seed)
    models = [CostModel(CostModelConfig(halflife_fills=5.0), config) for _ in range(2)]
    recorded = PortfolioSimulator(config, models[0]).run(targets, panel, learn=True)
    aggregates = PortfolioSimulator(config, models[1]).run(targets, panel, learn=True, record_fills=False)
    assert aggregates.fill_qty is None and aggregates.fill_price is None and recorded.fill_qty is not None
    for name in ("equity", "cost", "fees", "traded_notional", "gross_exposure", "net_exposure"):
        np.testing.assert_array_equal(getattr(aggregates, name), getattr(recorded, name))
    np.testing.assert_array_equal(models[1].state_rows(panel.symbols), models[0].state_rows(panel.symbols))


def test_rejects_bad_targets_and_latency_longer_than_a_bar() -> None:
    close = np.full((4, 2), 10.0)
    panel = MarketPanel(ts=np.arange(4) * 1_000_000, symbols=("A", "B"), open=close, high=close, low=close, close=close, volume=close, valid=np.ones((4, 2), bool))
    simulator = PortfolioSimulator(ExecutionConfig(latency_median_ms=0.0))
    with pytest.raises(OrderValidationError, match="shape"):
        simulator.run(np.zeros((3, 2)), panel)
    partial = np.zeros((4, 2))
    partial[1, 0] = np.nan
    with pytest.raises(OrderValidationError, match="row 1"):
        simulator.run(partial, panel)
    infinite = np.zeros((4, 2))
    infinite[2] = np.inf
    with pytest.raises(OrderValidationError, match="row 2"):
        simulator.run(infinite, panel)
    with pytest.raises(ConfigError, match="sub-bar latency"):
        PortfolioSimulator(ExecutionConfig(latency_median_ms=50.0)).run(np.zeros((4, 2)), panel)


def first_invalid_row(targets: np.ndarray) -> int:
    """The rule, row by row: every weight finite, or every weight NaN."""
    for t, row in enumerate(targets):
        if not (np.isfinite(row).all() or np.isnan(row).all()):
            return t
    return -1


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 12),
    st.sampled_from([2, 3000, 4100]),  # the kernel checks rows a block (8192 // symbols) at a time
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 4099), st.sampled_from([np.nan, np.inf, -np.inf])), max_size=3),
    st.lists(st.integers(0, 11), max_size=3),
)
def test_a_bad_target_row_anywhere_is_named_and_the_cost_model_keeps_its_state(
    n_bars: int, n_symbols: int, bad_weights: list[tuple[int, int, float]], hold_rows: list[int]
) -> None:
    close = np.repeat(10.0 + 0.5 * (np.arange(n_bars) % 2), n_symbols).reshape(n_bars, n_symbols)  # volatile from bar 1
    panel = MarketPanel(
        ts=np.arange(n_bars) * 60_000_000_000, symbols=tuple(f"S{i}" for i in range(n_symbols)), open=close, high=close,
        low=close, close=close, volume=np.full_like(close, 1e6), valid=np.ones_like(close, dtype=bool),
    )  # fmt: skip
    targets = np.full(close.shape, 0.5 / n_symbols)
    targets[[row for row in hold_rows if row < n_bars]] = np.nan
    for row, symbol, weight in bad_weights:
        if row < n_bars:
            targets[row, symbol % n_symbols] = weight
    config = ExecutionConfig(latency_median_ms=10.0)
    model = CostModel(CostModelConfig(), config)
    expected = first_invalid_row(targets)
    if expected < 0:
        result = PortfolioSimulator(config, model).run(targets, panel, learn=True, record_fills=False)
        assert (result.traded_notional.sum() > 0) == np.isfinite(targets[:-1]).any()
        learned = sum(model.effective_observations(s) for s in panel.symbols)
        assert (learned > 0) == np.isfinite(targets[1:-1]).any()  # from bar 1 on, with a volatility to learn against
    else:
        with pytest.raises(OrderValidationError, match=f"targets row {expected}:"):
            PortfolioSimulator(config, model).run(targets, panel, learn=True, record_fills=False)
        assert all(model.effective_observations(s) == 0.0 for s in panel.symbols)
