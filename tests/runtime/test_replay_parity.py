"""Replay equals backtest: the trading loop with the SimBroker reproduces the
PortfolioSimulator on the same policy's target weights, and each difference by design
(whole shares, minimum notional, no-trade band) shows only when it is switched on.

Stated tolerance: equity within 2e-5 of the initial cash at every bar, positions within
the same value per symbol. The SimBroker keeps prices and fees to 1e-4 and quantities to
1e-6 shares (exact decimals for the OMS) where the fused simulator keeps float64, and the
engine rounds to its 1e-6 lot; these rounding differences move a 1,000,000 book by a few
units of currency over the range.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ai_trading.data.store import MarketDataStore
from ai_trading.models.demo import DemoPolicy
from tests.runtime.replay_harness import (
    CASH,
    END,
    SYMBOLS,
    ReplayOutcome,
    backtest,
    make_store,
    parity_config,
    replay,
)

TOLERANCE = 2e-5 * CASH
MAX_MOVE = 40.0  # no close of the built-in data set moves more than this from one bar to the next (checked)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("bars") / "bars.duckdb")


@pytest.fixture(scope="module")
def parity(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ReplayOutcome, np.ndarray, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("parity")
    config = parity_config(root)
    result = replay(config, store_path, root / "run")
    ts, backtested, _ = backtest(config, store_path, DemoPolicy(SYMBOLS))
    assert backtested.fill_qty is not None
    with MarketDataStore(store_path, read_only=True) as store:
        close = store.panel(SYMBOLS, None, END).close
    assert np.nanmax(np.abs(np.diff(close, axis=0))) < MAX_MOVE
    return result, ts, backtested.equity, np.cumsum(backtested.fill_qty, axis=0)


def test_replay_equity_curve_equals_the_backtest(parity: tuple[ReplayOutcome, np.ndarray, np.ndarray, np.ndarray]) -> None:
    result, ts, equity, _ = parity
    bars = np.array(sorted(result.equity), dtype=np.int64)
    index = np.searchsorted(ts, bars)
    assert np.array_equal(ts[index], bars) and bars.size > 150
    replayed = np.array([result.equity[b] for b in bars])
    np.testing.assert_allclose(replayed, equity[index], rtol=0, atol=TOLERANCE)
    assert abs(replayed[-1] - CASH) > 100 * TOLERANCE  # the book really traded and moved


def test_replay_positions_equal_the_backtest(store_path: Path, parity: tuple[ReplayOutcome, np.ndarray, np.ndarray, np.ndarray]) -> None:
    result, ts, _, held = parity
    last = int(np.searchsorted(ts, max(result.equity)))
    with MarketDataStore(store_path, read_only=True) as store:
        close = store.panel(SYMBOLS, None, END).close[last]
    assert any(abs(held[last]) > 100)
    for k, symbol in enumerate(SYMBOLS):  # the value of the difference, at the last close
        assert abs(result.positions.get(symbol, 0.0) - held[last, k]) * close[k] < TOLERANCE, symbol


def test_whole_shares_round_every_order_and_move_equity_by_less_than_the_rounding(store_path: Path, tmp_path: Path,
                                                                                   parity: tuple[ReplayOutcome, np.ndarray, np.ndarray, np.ndarray]) -> None:  # fmt: skip
    config = parity_config(tmp_path)
    whole = replay(replace(config, engine=replace(config.engine, lot_size=1.0)), store_path, tmp_path / "run")
    assert whole.execution_log.num_rows > 0
    assert all(float(q).is_integer() for q in whole.execution_log.column("qty").to_pylist())
    fractional, *_ = parity
    assert any(not float(q).is_integer() for q in fractional.execution_log.column("qty").to_pylist())
    gap = max(abs(whole.equity[b] - fractional.equity[b]) for b in fractional.equity)
    # Half a share of each symbol at each bar, times the largest bar-to-bar move, summed over the bars, bounds it.
    assert 0 < gap < 0.5 * len(SYMBOLS) * MAX_MOVE * len(fractional.equity)


def test_min_notional_skips_small_trades(store_path: Path, tmp_path: Path,
                                         parity: tuple[ReplayOutcome, np.ndarray, np.ndarray, np.ndarray]) -> None:  # fmt: skip
    floor = 20_000.0
    config = parity_config(tmp_path)
    skipped = replay(replace(config, engine=replace(config.engine, min_order_notional=floor)), store_path, tmp_path / "run")
    log = skipped.execution_log
    notional = np.array(log.column("qty").to_pylist()) * np.array(log.column("decision_price").to_pylist())
    assert notional.size > 0 and notional.min() >= floor
    fractional, *_ = parity
    full = np.array(fractional.execution_log.column("qty").to_pylist()) * np.array(fractional.execution_log.column("decision_price").to_pylist())
    assert (full < floor).sum() > 0 and log.num_rows < fractional.execution_log.num_rows


def test_no_trade_band_skips_trades_expected_to_cost_too_much(store_path: Path, tmp_path: Path,
                                                               parity: tuple[ReplayOutcome, np.ndarray, np.ndarray, np.ndarray]) -> None:  # fmt: skip
    fractional, *_ = parity
    predicted = np.array(fractional.execution_log.column("expected_cost_bps").to_pylist())
    band_bps = float(np.median(predicted))
    config = parity_config(tmp_path)
    banded = replay(replace(config, engine=replace(config.engine, max_cost_share=band_bps * 1e-4)), store_path, tmp_path / "run")
    kept = np.array(banded.execution_log.column("expected_cost_bps").to_pylist())
    assert kept.size > 0 and kept.max() <= band_bps
    assert banded.execution_log.num_rows < fractional.execution_log.num_rows
