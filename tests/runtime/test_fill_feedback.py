"""Live cost feedback: the execution log holds what the OMS recorded, measured against the
store's bars, and the cost model counts every fill exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ai_trading.config import OmsConfig
from ai_trading.data.store import MarketDataStore
from ai_trading.oms.intent_store import IntentStore
from ai_trading.runtime.fill_feedback import FillFeedback
from ai_trading.runtime.replay import OMS_FILE
from ai_trading.runtime.run_state import RunState
from tests.runtime.replay_harness import SYMBOLS, make_store, parity_config, replay

START, END = "2015-03-02", "2015-05-01"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("feedback")
    store = make_store(root / "bars.duckdb", n_bars=120)
    replay(parity_config(root), store, root / "run", start=START, end=END)
    return root


def test_the_execution_log_matches_the_oms_and_the_bars(finished: Path) -> None:
    with RunState(finished / "run", read_only=True) as state:
        log = state.execution_log().to_pylist()
    with IntentStore.open(OmsConfig(dsn=f"sqlite:///{finished / 'run' / OMS_FILE}")) as oms:
        intents = {i.client_order_id: i for i in oms.list_intents()}
    with MarketDataStore(finished / "bars.duckdb", read_only=True) as store:
        panel = store.panel(SYMBOLS, None, END)
    filled = [row for row in log if row["filled_qty"] > 0]
    assert len(filled) > 50 and len(log) == len(intents)
    for row in filled:
        intent = intents[row["client_order_id"]]
        s = panel.symbols.index(row["symbol"])
        d = int(np.searchsorted(panel.ts, row["decision_ts"]))
        assert row["decision_price"] == pytest.approx(panel.close[d, s], rel=1e-12)
        assert row["arrival_price"] == pytest.approx(panel.open[d + 1, s], rel=1e-12)
        assert row["filled_qty"] == pytest.approx(float(intent.filled_qty), rel=1e-12)
        assert row["avg_price"] == pytest.approx(float(intent.avg_fill_price), rel=1e-9)
        assert row["fees"] == pytest.approx(float(intent.fees), rel=1e-12)
        side = 1 if intent.side.value == "buy" else -1
        shortfall = side * (row["avg_price"] - row["decision_price"]) * row["filled_qty"] + row["fees"]
        assert row["realized_cost"] == pytest.approx(shortfall, rel=1e-9)
        assert row["slippage_bps_arrival"] == pytest.approx(side * (row["avg_price"] / row["arrival_price"] - 1) * 1e4, rel=1e-9)
        assert row["predicted_cost"] == pytest.approx(row["expected_cost_bps"] * 1e-4 * row["decision_price"] * row["filled_qty"])


def test_applying_fills_again_counts_none_twice(finished: Path) -> None:
    config = parity_config(finished)
    with MarketDataStore(finished / "bars.duckdb", read_only=True) as store:
        panel = store.panel(SYMBOLS, None, END)
    with RunState(finished / "run") as state, IntentStore.open(OmsConfig(dsn=f"sqlite:///{finished / 'run' / OMS_FILE}")) as oms:
        before = state.cursor().cost_generation
        model = state.load_cost_model(config.cost_model, config.execution)
        moments = model.state_rows(SYMBOLS).copy()
        applied = FillFeedback(oms, state, model, config.execution.vol_halflife_bars).apply(panel)
        assert applied == 0 and state.cursor().cost_generation == before > 0
        np.testing.assert_array_equal(model.state_rows(SYMBOLS), moments)
        assert model.effective_observations(SYMBOLS[0]) > 0  # it did learn from the run's fills
        assert not state.cost_model_path(before - 1).exists() and state.cost_model_path(before).exists()
