"""The same loop with another market-data source: bars arrive one bar close at a time
through a `BarFeed` (as a paper or live feed delivers them), are appended to the store
through the validated ingest, and the SimBroker keeps trading on the growing store. The
run equals a replay over the same bars already stored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from ai_trading.brokers.sim import SimBroker
from ai_trading.brokers.sim_market import StoreMarket
from ai_trading.config import OmsConfig
from ai_trading.data.store import MarketDataStore
from ai_trading.execution.engine import ExecutionEngine
from ai_trading.features import FeatureBuilder
from ai_trading.models.demo import DemoPolicy
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.migrate import upgrade
from ai_trading.runtime import ModelIdentity, ReplayClock, RunState, TradingLoop
from ai_trading.runtime.fill_feedback import FillFeedback
from tests.runtime.replay_harness import (
    START,
    SYMBOLS,
    make_store,
    outcome,
    parity_config,
    replay,
)

END = "2015-06-01"  # three months of bar closes


class SourceFeed:
    """Bars of another store, handed out up to the bar close asked for."""

    source = "test feed"

    def __init__(self, source: MarketDataStore) -> None:
        self._source = source
        self.delivered = 0

    def new_bars(self, through: int) -> pa.Table | None:
        table = self._source.query_arrow(SYMBOLS, through, through + 1, sort=True)
        self.delivered += table.num_rows
        columns = ("symbol", "ts", "open", "high", "low", "close", "volume", "spread_bps")
        return table.select(columns).set_column(0, "symbol", table.column("symbol").cast(pa.string())) if table.num_rows else None


def test_bars_fed_one_close_at_a_time_trade_like_stored_bars(tmp_path: Path) -> None:
    config = parity_config(tmp_path)
    source_path = make_store(tmp_path / "source.duckdb")
    stored = replay(config, source_path, tmp_path / "stored", end=END)

    start_ns = int(np.datetime64(START, "ns").astype(np.int64))
    end_ns = int(np.datetime64(END, "ns").astype(np.int64))
    with MarketDataStore(source_path, read_only=True) as source, MarketDataStore(tmp_path / "live.duckdb") as live:
        history = source.query_arrow(SYMBOLS, None, start_ns, sort=True)
        live.write_source(history.set_column(0, "symbol", history.column("symbol").cast(pa.string())), "history", "1d")
        calendar = source.panel(SYMBOLS, start_ns, end_ns).ts
        run_dir = tmp_path / "fed"
        oms_config = OmsConfig(dsn=f"sqlite:///{tmp_path / 'oms.sqlite'}")
        upgrade(oms_config)
        feed = SourceFeed(source)
        with IntentStore.open(oms_config) as intents, RunState(run_dir) as state:
            broker = SimBroker(run_dir / "sim_broker.sqlite", StoreMarket(live, SYMBOLS, "1d"), config.execution)
            manager = OrderManager(intents, broker, replace(config.manager, resend_grace_s=0.0))
            assert manager.start().passed
            cost_model = state.load_cost_model(config.cost_model, config.execution)
            loop = TradingLoop(
                clock=ReplayClock(calendar), feed=feed, market=StoreMarket(live, SYMBOLS, "1d"), store=live, frequency="1d",
                policy=DemoPolicy(SYMBOLS), builder=FeatureBuilder(), model=ModelIdentity("demo", "1"),
                engine=ExecutionEngine(manager, cost_model, config.engine, config.risk), manager=manager,
                feedback=FillFeedback(intents, state, cost_model, config.execution.vol_halflife_bars), state=state,
                initial_cash=config.runtime.initial_cash, horizon=config.runtime.horizon,
                halflife_bars=config.execution.vol_halflife_bars, broker_clock=broker,
            )  # fmt: skip
            assert not loop.run().stopped
        assert feed.delivered == calendar.size * len(SYMBOLS)
        assert live.row_count() == history.num_rows + feed.delivered

    fed = outcome(run_dir, config)
    assert list(fed.equity) == list(stored.equity) and len(fed.equity) > 50
    np.testing.assert_allclose(list(fed.equity.values()), list(stored.equity.values()), rtol=1e-12)
    assert fed.broker_orders == stored.broker_orders and fed.positions == stored.positions
