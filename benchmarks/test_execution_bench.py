"""Throughput of the execution core: fused fill + cost pipeline, EWMA update, order fills."""

from __future__ import annotations

import numpy as np
import pytest

from ai_trading.config import CostModelConfig, ExecutionConfig
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.parameters import panel_volatility_bps
from ai_trading.execution.portfolio import PortfolioSimulator
from ai_trading.execution.simulator import ExecutionSimulator
from ai_trading.types import MarketPanel, OrderBatch
from benchmarks.baselines import ewma_update_python, portfolio_numpy, reference_order_simulation
from kernels.cost_model import ewma_update, zeros_cost_rows
from kernels.layout import N_COST_STATE

MINUTE_NS = 60_000_000_000


def minute_panel(n_bars: int, n_symbols: int, seed: int = 0) -> MarketPanel:
    rng = np.random.default_rng(seed)
    close = rng.uniform(10, 300, n_symbols) * np.exp(np.cumsum(rng.normal(0, 8e-4, (n_bars, n_symbols)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    high = np.maximum(open_, close) * 1.0004
    low = np.minimum(open_, close) * 0.9996
    volume = rng.lognormal(8, 1, (n_bars, n_symbols))
    return MarketPanel(
        ts=np.arange(n_bars, dtype=np.int64) * MINUTE_NS, symbols=tuple(f"S{i:03d}" for i in range(n_symbols)),
        open=open_, high=high, low=low, close=close, volume=volume, valid=np.ones((n_bars, n_symbols), dtype=bool),
    )  # fmt: skip


@pytest.mark.parametrize("record_fills", [True, False], ids=["fills-recorded", "aggregates-only"])
def test_fused_fill_and_cost_pipeline(throughput, record_fills: bool) -> None:
    """Dense orders: every symbol rebalances to a new target at every 1-minute bar, with
    the cost model learning from every fill. ``aggregates-only`` is how evaluation runs
    it: the same fills, without writing the two ``[T, S]`` fill arrays."""
    n_bars, n_symbols = (100_000, 100) if throughput.full_size else (2_000, 50)
    panel = minute_panel(n_bars, n_symbols)
    targets = np.random.default_rng(1).uniform(-1, 1, (n_bars, n_symbols)) / n_symbols
    config = ExecutionConfig()
    model = CostModel(CostModelConfig(), config)
    simulator = PortfolioSimulator(config, model)
    simulator.run(targets[:50], minute_panel(50, n_symbols), learn=True)
    sigma = panel_volatility_bps(panel, config.vol_halflife_bars)
    baseline_bars = min(n_bars, 20_000)
    baseline_panel = minute_panel(baseline_bars, n_symbols)
    baseline_sigma = panel_volatility_bps(baseline_panel, config.vol_halflife_bars)
    result = throughput.measure(
        lambda: simulator.run(targets, panel, learn=True, record_fills=record_fills),
        items=n_bars * n_symbols,
        baseline=lambda: portfolio_numpy(config, targets[:baseline_bars], baseline_panel, baseline_sigma, 1e6),
        baseline_items=baseline_bars * n_symbols,
        rounds=3,
    )
    assert np.isfinite(result.equity).all() and sigma.shape == panel.close.shape
    assert all(model.effective_observations(s) > 0 for s in panel.symbols)


def test_ewma_cost_model_update(throughput) -> None:
    n_fills, n_symbols = (20_000_000, 500) if throughput.full_size else (200_000, 500)
    rng = np.random.default_rng(2)
    symbol = rng.integers(0, n_symbols, n_fills)
    x = rng.uniform(0, 0.5, n_fills)
    y = rng.normal(0.1, 0.05, n_fills)
    spread = rng.uniform(1, 20, n_fills)
    state = zeros_cost_rows(n_symbols)
    ewma_update(state, symbol[:10], x[:10], y[:10], spread[:10], 0.99)
    baseline_n = 200_000
    baseline_state = np.zeros((n_symbols, N_COST_STATE))
    throughput.measure(
        lambda: ewma_update(state, symbol, x, y, spread, 0.99),
        items=n_fills,
        baseline=lambda: ewma_update_python(baseline_state, symbol[:baseline_n], x[:baseline_n], y[:baseline_n], spread[:baseline_n], 0.99),
        baseline_items=baseline_n,
    )
    assert np.all(state[:, 0] > 0)


def test_order_simulator(throughput) -> None:
    """Order batches with partial fills over several bars, against the pure-Python reference."""
    n_bars, n_symbols, n_orders = (20_000, 100, 1_000_000) if throughput.full_size else (2_000, 50, 20_000)
    panel = minute_panel(n_bars, n_symbols, seed=3)
    rng = np.random.default_rng(4)
    orders = OrderBatch.market(
        np.arange(n_orders), rng.integers(0, n_symbols, n_orders), rng.integers(0, n_bars, n_orders),
        rng.choice([-1, 1], n_orders), rng.lognormal(6, 1.5, n_orders), 5,
    )  # fmt: skip
    config = ExecutionConfig()
    simulator = ExecutionSimulator(config)
    baseline_n = 2_000
    baseline_orders = OrderBatch.market(
        orders.order_id[:baseline_n], orders.symbol[:baseline_n], orders.bar[:baseline_n], orders.side[:baseline_n], orders.qty[:baseline_n], 5
    )
    small_panel = minute_panel(min(n_bars, 2_000), n_symbols, seed=3)
    baseline_orders = OrderBatch.market(
        baseline_orders.order_id, baseline_orders.symbol, baseline_orders.bar % small_panel.n_bars, baseline_orders.side, baseline_orders.qty, 5
    )
    result = throughput.measure(
        lambda: simulator.simulate(orders, panel),
        items=n_orders,
        baseline=reference_order_simulation(config, baseline_orders, small_panel),
        baseline_items=baseline_n,
        rounds=3,
        baseline_rounds=1,
    )
    assert result.totals().fill_rate > 0
