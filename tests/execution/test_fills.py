"""Property tests of the order fill kernel against the pure-Python reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.config import ExecutionConfig
from ai_trading.execution.simulator import STATUS_NAMES, ExecutionSimulator, SimExecutionResult
from ai_trading.types import LIMIT, MarketPanel, OrderBatch
from tests.execution import reference
from tests.execution.strategies import order_batches, panels

SETTINGS = settings(max_examples=60, deadline=None)

configs = st.builds(
    ExecutionConfig,
    seed=st.integers(0, 2**40),
    latency_median_ms=st.sampled_from([0.0, 5.0, 50.0, 2000.0]),
    latency_sigma=st.sampled_from([0.0, 0.5, 1.5]),
    slippage_noise_bps=st.sampled_from([0.0, 2.0]),
    max_participation=st.sampled_from([0.01, 0.1, 1.0]),
    fee_min=st.sampled_from([0.0, 0.35, 50.0]),
    fee_bps=st.sampled_from([0.0, 1.0]),
    use_data_spread=st.booleans(),
)

ZERO_COST = ExecutionConfig(
    latency_sigma=0.0,
    spread_floor_bps=0.0,
    spread_vol_mult=0.0,
    tick_size=0.0,
    slippage_base_bps=0.0,
    slippage_vol_coef=0.0,
    impact_eta=0.0,
    slippage_noise_bps=0.0,
    fee_bps=0.0,
    fee_per_share=0.0,
    fee_min=0.0,
    use_data_spread=False,
)


def simulate(config: ExecutionConfig, orders: OrderBatch, panel: MarketPanel) -> SimExecutionResult:
    return ExecutionSimulator(config).simulate(orders, panel)


def subset(orders: OrderBatch, index: np.ndarray) -> OrderBatch:
    return OrderBatch(**{f.name: getattr(orders, f.name)[index] for f in dataclasses.fields(orders)})


@st.composite
def scenarios(draw: st.DrawFn, limits: bool = True) -> tuple[MarketPanel, OrderBatch]:
    panel = draw(panels())
    return panel, draw(order_batches(panel, limits=limits))


@SETTINGS
@given(scenarios(), configs)
def test_kernel_agrees_with_reference(scenario: tuple[MarketPanel, OrderBatch], config: ExecutionConfig) -> None:
    panel, orders = scenario
    result = simulate(config, orders, panel)
    expected = reference.simulate_orders(config, orders, panel)
    assert [STATUS_NAMES[int(s)] for s in result.status] == [e.status for e in expected]
    np.testing.assert_allclose(result.filled_qty, [e.filled for e in expected], rtol=1e-12)
    np.testing.assert_allclose(result.avg_price, [e.avg_price for e in expected], rtol=1e-9)
    np.testing.assert_allclose(result.fees, [e.fees for e in expected], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.arrival_price, [e.arrival_price for e in expected], rtol=1e-12)
    np.testing.assert_array_equal(result.arrival_bar, [e.arrival_bar for e in expected])
    ref_fills = [f for e in expected for f in e.fills]
    assert len(result.fills) == len(ref_fills)
    np.testing.assert_array_equal(result.fills.bar, [f.bar for f in ref_fills])
    np.testing.assert_array_equal(result.fills.order_id, [orders.order_id[f.order] for f in ref_fills])
    np.testing.assert_allclose(result.fills.qty, [f.qty for f in ref_fills], rtol=1e-12)
    np.testing.assert_allclose(result.fills.price, [f.price for f in ref_fills], rtol=1e-12)
    np.testing.assert_allclose(result.fills.fee, [f.fee for f in ref_fills], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.fills.mid, [f.mid for f in ref_fills], rtol=1e-12)


@SETTINGS
@given(scenarios(), configs)
def test_quantities_respect_order_size_and_participation_cap(scenario: tuple[MarketPanel, OrderBatch], config: ExecutionConfig) -> None:
    panel, orders = scenario
    result = simulate(config, orders, panel)
    assert np.all(result.filled_qty <= orders.qty * (1 + 1e-12))
    assert np.all(result.fills.qty > 0)
    bar_volume = panel.volume[result.fills.bar, result.fills.symbol]
    assert np.all(result.fills.qty <= config.max_participation * bar_volume * (1 + 1e-12))
    per_order = np.zeros(len(orders))
    position = {int(oid): i for i, oid in enumerate(orders.order_id)}
    for oid, qty in zip(result.fills.order_id, result.fills.qty):
        per_order[position[int(oid)]] += qty
    np.testing.assert_allclose(per_order, result.filled_qty, rtol=1e-9)


@SETTINGS
@given(scenarios(limits=False), configs)
def test_without_noise_buys_pay_up_and_sells_give_up(scenario: tuple[MarketPanel, OrderBatch], config: ExecutionConfig) -> None:
    panel, orders = scenario
    orders = dataclasses.replace(orders, tif_bars=np.ones(len(orders), dtype=np.int64))
    result = simulate(dataclasses.replace(config, slippage_noise_bps=0.0), orders, panel)
    fills = result.fills
    assert np.all(fills.side * (fills.price - fills.mid) >= 0)
    done = result.filled_qty > 0
    assert np.all(orders.side[done] * (result.avg_price[done] - result.arrival_price[done]) >= 0)


@SETTINGS
@given(scenarios(), configs)
def test_limit_orders_never_fill_beyond_their_limit(scenario: tuple[MarketPanel, OrderBatch], config: ExecutionConfig) -> None:
    panel, orders = scenario
    result = simulate(config, orders, panel)
    position = {int(oid): i for i, oid in enumerate(orders.order_id)}
    rows = np.array([position[int(oid)] for oid in result.fills.order_id], dtype=np.int64)
    is_limit = orders.order_type[rows] == LIMIT
    limits = orders.limit_price[rows][is_limit]
    assert np.all(result.fills.side[is_limit] * (result.fills.price[is_limit] - limits) <= 1e-9 * limits)


@SETTINGS
@given(scenarios(limits=False))
def test_zero_cost_configuration_fills_exactly_at_reference(scenario: tuple[MarketPanel, OrderBatch]) -> None:
    panel, orders = scenario
    result = simulate(ZERO_COST, orders, panel)
    np.testing.assert_array_equal(result.fills.price, result.fills.mid)
    assert np.all(result.fills.fee == 0)


@SETTINGS
@given(scenarios(), configs, st.integers(0, 2**32 - 1))
def test_seeded_results_are_identical_twice_and_under_any_batching(
    scenario: tuple[MarketPanel, OrderBatch], config: ExecutionConfig, split_seed: int
) -> None:
    panel, orders = scenario
    whole = simulate(config, orders, panel)
    again = simulate(config, orders, panel)
    for name in ("status", "filled_qty", "avg_price", "fees", "arrival_price"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(again, name))
    rng = np.random.default_rng(split_seed)
    permutation = rng.permutation(len(orders))
    cut = int(rng.integers(0, len(orders) + 1))
    for part in (permutation[:cut], permutation[cut:]):
        batch = simulate(config, subset(orders, part), panel)
        np.testing.assert_array_equal(batch.filled_qty, whole.filled_qty[part])
        np.testing.assert_array_equal(batch.avg_price, whole.avg_price[part])
        np.testing.assert_array_equal(batch.fees, whole.fees[part])


@SETTINGS
@given(panels(with_spread=False), st.integers(0, 10**6))
def test_cost_grows_with_order_size(panel: MarketPanel, seed: int) -> None:
    config = ExecutionConfig(seed=seed, slippage_noise_bps=0.0, max_participation=1.0, fee_per_share=0.0, fee_min=0.0)
    rng = np.random.default_rng(seed)
    symbol = int(rng.integers(0, panel.n_symbols))
    bar = int(rng.integers(0, panel.n_bars))
    sizes = np.array([1.0, 10.0, 100.0, 1e3, 1e4])
    n = sizes.size
    orders = OrderBatch.market(np.zeros(n), np.full(n, symbol), np.full(n, bar), np.full(n, 1), sizes, 1)
    results = [simulate(config, subset(orders, np.array([i])), panel) for i in range(n)]
    costs = np.array([r.slippage_bps_arrival[0] for r in results])
    filled = np.array([r.filled_qty[0] for r in results])
    # Orders the cap stops at one quantity fill alike, to the last bit, whatever their size.
    same = filled[1:] == filled[:-1]
    np.testing.assert_array_equal(costs[1:][same], costs[:-1][same])
    # A larger fill costs more, up to the rounding of price * qty / qty: an ulp of the price, 2e-12 bps.
    traded = costs[filled > 0]
    assert np.all(np.diff(traded) >= -1e-11)


def test_filled_quantity_of_a_capped_order_is_its_fills_to_the_last_bit() -> None:
    close = np.full((3, 1), 100.0)
    volume = np.array([[1e6], [0.3], [1e6]])
    panel = MarketPanel(ts=np.arange(3) * 60_000_000_000, symbols=("A",), open=close, high=close, low=close, close=close, volume=volume, valid=np.ones((3, 1), bool))
    config = ExecutionConfig(latency_median_ms=0.0, max_participation=1.0, slippage_noise_bps=0.0)
    orders = OrderBatch.market(np.arange(2), np.zeros(2), np.zeros(2), np.ones(2), np.array([0.5, 1e9]), 1)
    result = simulate(config, orders, panel)
    np.testing.assert_array_equal(result.fills.qty, [0.3, 0.3])
    np.testing.assert_array_equal(result.filled_qty, [0.3, 0.3])  # 1e9 - (1e9 - 0.3) would be 0.29999995
    assert result.avg_price[0] == result.avg_price[1]


def test_volatility_kernel_matches_reference() -> None:
    rng = np.random.default_rng(3)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, (80, 3)), axis=0))
    valid = rng.uniform(size=close.shape) > 0.2
    from ai_trading.execution.parameters import panel_volatility_bps

    panel = MarketPanel(
        ts=np.arange(80), symbols=("A", "B", "C"), open=close, high=close, low=close, close=close, volume=np.ones_like(close), valid=valid
    )
    np.testing.assert_allclose(panel_volatility_bps(panel, 10.0), reference.volatility_bps(close, valid, 10.0), rtol=1e-10, atol=1e-12)


BAD_ORDERS = [
    ("qty", -5.0, "qty must be finite and > 0"),
    ("qty", np.nan, "qty must be finite and > 0"),
    ("side", 0, "side must be"),
    ("symbol", 7, "symbol must index"),
    ("bar", -1, "bar must be in"),
    ("tif_bars", 0, "tif_bars must be >= 1"),
]


@pytest.mark.parametrize(("column", "value", "message"), BAD_ORDERS)
def test_bad_orders_are_rejected_with_the_row_and_rule(column: str, value: float, message: str) -> None:
    from ai_trading.errors import OrderValidationError

    close = np.full((5, 2), 10.0)
    panel = MarketPanel(ts=np.arange(5), symbols=("A", "B"), open=close, high=close, low=close, close=close, volume=close, valid=np.ones((5, 2), bool))
    orders = OrderBatch.market(np.arange(3), np.zeros(3), np.zeros(3), np.ones(3), np.ones(3), 1)
    broken = getattr(orders, column).copy()
    broken[2] = value
    with pytest.raises(OrderValidationError, match=rf"row 2 .*{message}"):
        simulate(ExecutionConfig(), dataclasses.replace(orders, **{column: broken}), panel)
