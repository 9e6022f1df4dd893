"""The EWMA cost model: learning from fills, prediction, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit, uint64

from ai_trading.config import CostModelConfig, ExecutionConfig
from ai_trading.errors import ConfigError, DataValidationError, UnknownSymbolError
from ai_trading.execution.cost_model import STATE_COLUMNS, CostModel
from ai_trading.types import FillBatch
from kernels.cost_model import ewma_observe, ewma_update, moment_columns, zeros_cost_rows
from kernels.layout import C_IMPACT_ETA, C_SLIP_VOL_COEF, C_SPREAD_BPS, COST_ROW_WIDTH, N_COST_STATE

EXECUTION = ExecutionConfig()


def synthetic_fills(n: int, symbol: int, vol_coef: float, eta: float, spread: float, seed: int = 0, noise: float = 0.0) -> FillBatch:
    """Fills whose cost is exactly spread/2 + sigma * (vol_coef + eta * sqrt(participation))."""
    rng = np.random.default_rng(seed)
    participation = rng.uniform(0.001, 0.2, n)
    sigma = rng.uniform(20, 200, n)
    side = rng.choice([-1, 1], n)
    cost_bps = spread / 2 + sigma * (vol_coef + eta * np.sqrt(participation)) + noise * rng.normal(size=n)
    mid = rng.uniform(10, 100, n)
    return FillBatch(
        order_id=np.arange(n), symbol=np.full(n, symbol), bar=np.arange(n), ts=np.arange(n), side=side,
        qty=participation * 1e5, price=mid * (1 + side * cost_bps / 1e4), fee=np.zeros(n), mid=mid,
        participation=participation, sigma_bps=sigma, spread_bps=np.full(n, spread),
    )  # fmt: skip


def reference_state(fills: FillBatch, decay: float, beta: float) -> dict[str, float]:
    sums = dict.fromkeys(STATE_COLUMNS, 0.0)
    for k in range(len(fills)):
        cost = fills.side[k] * (fills.price[k] - fills.mid[k]) / fills.mid[k] * 1e4
        x = fills.participation[k] ** beta
        y = (cost - fills.spread_bps[k] / 2) / fills.sigma_bps[k]
        for name, value in (("weight", 1.0), ("sum_x", x), ("sum_y", y), ("sum_xx", x * x), ("sum_xy", x * y), ("spread_weight", 1.0), ("sum_spread", fills.spread_bps[k])):
            sums[name] = decay * sums[name] + value
    return sums


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 60), st.floats(1.0, 500.0), st.integers(0, 1000))
def test_ewma_sums_match_reference(n: int, halflife: float, seed: int) -> None:
    fills = synthetic_fills(n, 0, 0.1, 0.8, 4.0, seed=seed, noise=1.0)
    model = CostModel(CostModelConfig(halflife_fills=halflife), EXECUTION)
    model.update(fills, ["X"])
    expected = reference_state(fills, 0.5 ** (1 / halflife), EXECUTION.impact_beta)
    state = model.state_rows(["X"])[0]
    for name, column in STATE_COLUMNS.items():
        assert state[column] == pytest.approx(expected[name], rel=1e-9, abs=1e-12)


@njit
def _fold_moment_by_moment(state: np.ndarray, symbol: np.ndarray, x: np.ndarray, y: np.ndarray, spread: np.ndarray, decay: float) -> None:
    moments = moment_columns(state)
    for k in range(symbol.shape[0]):
        ewma_observe(moments, uint64(symbol[k]), x[k], y[k], spread[k], decay)


def python_ewma(n_symbols: int, symbol: np.ndarray, x: np.ndarray, y: np.ndarray, spread: np.ndarray, decay: float) -> np.ndarray:
    """The EWMA sums by their definition: a moment decays and adds only when observed."""
    state = np.zeros((n_symbols, N_COST_STATE))
    for k, s in enumerate(symbol):
        if not np.isnan(y[k]):
            for column, value in ((0, 1.0), (1, x[k]), (2, y[k]), (3, x[k] * x[k]), (4, x[k] * y[k])):
                state[s, column] = decay * state[s, column] + value
        if not np.isnan(spread[k]):
            for column, value in ((5, 1.0), (6, spread[k])):
                state[s, column] = decay * state[s, column] + value
    return state


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 6), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_ewma_update_folds_rows_like_moments(n: int, n_symbols: int, missing_y: float, missing_spread: float, seed: int) -> None:
    """Observations with y and spread take the one-vector row update, the others the
    per-moment folds: both must give the sums of the definition, and the same bits."""
    rng = np.random.default_rng(seed)
    symbol = rng.integers(0, n_symbols, n)
    x = rng.uniform(0.0, 0.5, n)
    y = np.where(rng.uniform(size=n) < missing_y, np.nan, rng.normal(0.1, 0.05, n))
    spread = np.where(rng.uniform(size=n) < missing_spread, np.nan, rng.uniform(1.0, 20.0, n))
    by_rows = zeros_cost_rows(n_symbols)
    ewma_update(by_rows, symbol, x, y, spread, 0.97)
    by_moments = zeros_cost_rows(n_symbols)
    _fold_moment_by_moment(by_moments, symbol, x, y, spread, 0.97)
    np.testing.assert_array_equal(by_rows, by_moments)
    np.testing.assert_allclose(by_rows[:, :N_COST_STATE], python_ewma(n_symbols, symbol, x, y, spread, 0.97), rtol=1e-12)
    assert not by_rows[:, N_COST_STATE:].any()
    again = zeros_cost_rows(n_symbols)
    ewma_update(again, symbol, x, y, spread, 0.97)
    np.testing.assert_array_equal(again, by_rows)


def test_state_rows_start_on_cache_lines_as_symbols_are_added() -> None:
    assert zeros_cost_rows(0).shape == (0, COST_ROW_WIDTH)
    for n in range(1, 10):
        rows = zeros_cost_rows(n)
        assert rows.shape == (n, COST_ROW_WIDTH) and rows.ctypes.data % 64 == 0 and not rows.any()
    model = CostModel(CostModelConfig(), EXECUTION)
    model.update(synthetic_fills(20, 0, 0.1, 1.0, 3.0), ["A"])
    before = model.state_rows(["A"])
    model.update(synthetic_fills(20, 1, 0.1, 1.0, 3.0), ["A", "B", "C"])
    np.testing.assert_array_equal(model.state_rows(["A"]), before)
    assert model.state_rows(["A", "B", "C"]).shape == (3, N_COST_STATE)
    assert model._state.ctypes.data % 64 == 0  # the speed of update() depends on it; nothing public shows it


def test_recovers_the_parameters_that_generated_the_fills() -> None:
    model = CostModel(CostModelConfig(halflife_fills=1e6, min_observations=10), EXECUTION)
    model.update(synthetic_fills(400, 0, vol_coef=0.07, eta=0.6, spread=6.0), ["A", "B"])
    model.update(synthetic_fills(400, 1, vol_coef=0.02, eta=1.4, spread=2.0, seed=1), ["A", "B"])
    coefs = model.coefficients(["A", "B", "NEVER_SEEN"])
    np.testing.assert_allclose(coefs[C_SLIP_VOL_COEF, :2], [0.07, 0.02], rtol=1e-6)
    np.testing.assert_allclose(coefs[C_IMPACT_ETA, :2], [0.6, 1.4], rtol=1e-6)
    np.testing.assert_allclose(coefs[C_SPREAD_BPS, :2], [6.0, 2.0], rtol=1e-9)
    assert coefs[C_IMPACT_ETA, 2] == EXECUTION.impact_eta
    assert np.isnan(coefs[C_SPREAD_BPS, 2])


def test_prediction_grows_with_size_and_uses_learned_estimates() -> None:
    model = CostModel(CostModelConfig(halflife_fills=1e6, min_observations=10), EXECUTION)
    model.update(synthetic_fills(300, 0, vol_coef=0.05, eta=2.0, spread=10.0), ["A"])
    sizes = np.array([10.0, 1e3, 1e4, 5e4])
    predicted = model.predict(["A"] * 4, price=50.0, qty=sizes, bar_volume=1e5, sigma_bps=100.0)
    assert np.all(np.diff(predicted) > 0)
    expected = 10.0 / 2 + 100.0 * (0.05 + 2.0 * np.sqrt(sizes / 1e5))
    np.testing.assert_allclose(predicted, expected, rtol=1e-6)
    unlearned = model.predict(["Z"], price=50.0, qty=1e3, bar_volume=1e5, sigma_bps=100.0)[0]
    prior = (EXECUTION.spread_floor_bps + EXECUTION.spread_vol_mult * 100) / 2 + EXECUTION.slippage_base_bps + EXECUTION.slippage_vol_coef * 100 + EXECUTION.impact_eta * 100 * np.sqrt(1e-2)
    assert unlearned == pytest.approx(prior)


def test_state_survives_save_and_load(tmp_path) -> None:
    config = CostModelConfig(state_path=tmp_path / "costs.arrow", min_observations=1)
    model = CostModel(config, EXECUTION)
    model.update(synthetic_fills(50, 1, 0.1, 1.0, 3.0, noise=0.5), ["A", "B"])
    model.save()
    loaded = CostModel.load(config, EXECUTION)
    assert loaded.symbols == model.symbols
    np.testing.assert_array_equal(loaded.state_rows(["A", "B"]), model.state_rows(["A", "B"]))
    with pytest.raises(ConfigError, match="impact_beta"):
        CostModel.load(config, ExecutionConfig(impact_beta=0.6))


def test_bad_fills_are_refused_before_any_state_changes() -> None:
    model = CostModel(CostModelConfig(), EXECUTION)
    fills = synthetic_fills(5, 0, 0.1, 1.0, 3.0)
    broken = FillBatch(**{**{k: getattr(fills, k) for k in STATE_KEYS}, "price": np.where(np.arange(5) == 3, np.nan, fills.price)})
    with pytest.raises(DataValidationError, match="row 3"):
        model.update(broken, ["A"])
    assert model.effective_observations("A") == 0.0
    with pytest.raises(UnknownSymbolError):
        model.update(fills, [])


STATE_KEYS = ("order_id", "symbol", "bar", "ts", "side", "qty", "price", "fee", "mid", "participation", "sigma_bps", "spread_bps")
