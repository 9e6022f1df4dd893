"""Replay throughput: bars per second of the demo policy over 40 symbols of daily bars,
through the whole trading loop (features, policy, engine and risk checks, the OMS on
SQLite, the SimBroker, fill feedback into the cost model and the execution log).

One item is one bar close (all symbols). The engine always submits a rebalance as one
batch, so there is no one-by-one path to compare with; the baseline is the backtest of
the same bars (the policy's target weights bar by bar, then the PortfolioSimulator), the
research path the replay reproduces (``speedup`` is far below 1: the price of durable,
crash-safe order handling per bar). ``backend`` names the OMS database: the replay's run
directory holds its own SQLite OMS.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ai_trading.models.demo import DemoPolicy
from tests.runtime.replay_harness import backtest, make_store, parity_config, replay

FULL = (40, 300, "2015-02-02", "2016-02-01")  # symbols, stored bars, range: a year of decisions
SMALL = (8, 60, "2015-02-02", "2015-03-16")


def test_replay_bars_per_second(throughput: Any, tmp_path: Path) -> None:
    n_symbols, n_bars, start, end = FULL if throughput.full_size else SMALL
    store = make_store(tmp_path / "bars.duckdb", n_bars=n_bars, n_symbols=n_symbols)
    symbols = tuple(f"SYN{i:02d}" for i in range(n_symbols))
    config = parity_config(tmp_path)
    runs = itertools.count()
    bars: list[int] = []
    throughput.benchmark.extra_info["backend"] = "sqlite"

    def run_replay() -> None:
        result = replay(config, store, tmp_path / f"run{next(runs)}", symbols=symbols, start=start, end=end)
        bars.append(len(result.equity))
        assert result.execution_log.num_rows > 0

    def run_backtest() -> Callable[[], None]:
        return lambda: backtest(config, store, DemoPolicy(symbols), start=start, end=end)

    run_replay()  # the number of bars in the range, and a first run that warms every cache
    items = bars[0]
    ts, result, targets = backtest(config, store, DemoPolicy(symbols), start=start, end=end)
    assert np.isfinite(targets).any() and result.equity.size == ts.size
    throughput.measure(run_replay, items, run_backtest(), items, rounds=2, baseline_rounds=3)
