"""Paper trading end to end: Alpaca's calendar and bars from the local server, the SimBroker
filling the orders on the bars as they arrive. The run equals a replay over the bars it
stored, and nothing is sent to the Alpaca trading API."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ai_trading.brokers.sim_market import utc_datetime
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import StartupGateFailed
from ai_trading.runtime.realtime import RealtimeRequest, open_realtime
from tests.brokers.alpaca_server import FakeAlpaca
from tests.runtime.live_harness import (
    SYMBOLS,
    live_config,
    make_market,
    publish,
    run_in_process,
)
from tests.runtime.replay_harness import outcome, replay


def test_paper_run_equals_a_replay_of_the_bars_it_stored(tmp_path: Path) -> None:
    market = make_market()
    with FakeAlpaca() as server:
        publish(server, market)
        server.set_time(market.start_time())
        config = live_config(tmp_path, server.base_url)
        assert run_in_process(config, server, tmp_path / "paper", "paper", market.key(4))
        assert server.client_order_ids() == []  # the SimBroker filled everything
        assert server.count("POST", "/v2/orders") == 0
    paper = outcome(tmp_path / "paper", config)
    assert sorted(paper.equity) == [market.key(i) for i in range(5)]
    assert paper.execution_log.num_rows > 0 and paper.refused_duplicates == 0
    start = utc_datetime(market.key(0)).date().isoformat()
    end = utc_datetime(market.key(4) + 86_400 * 10**9).date().isoformat()
    replayed = replay(config, config.data.db_path, tmp_path / "replay", symbols=SYMBOLS, start=start, end=end)
    # The replay's last bar only marks the book; the paper run traded it too.
    last_day = utc_datetime(market.key(4)).strftime("%Y%m%d")
    assert replayed.broker_orders and replayed.broker_orders == [cid for cid in paper.broker_orders if f":{last_day}:" not in cid]
    assert replayed.equity == pytest.approx(paper.equity, rel=1e-12)


def test_a_second_start_resumes_after_the_last_finished_bar(tmp_path: Path) -> None:
    market = make_market()
    with FakeAlpaca() as server:
        publish(server, market)
        server.set_time(market.start_time())
        config = live_config(tmp_path, server.base_url)
        assert run_in_process(config, server, tmp_path / "paper", "paper", market.key(1))
        first = outcome(tmp_path / "paper", config)
        assert run_in_process(config, server, tmp_path / "paper", "paper", market.key(3))
    second = outcome(tmp_path / "paper", config)
    assert sorted(second.equity) == [market.key(i) for i in range(4)]
    assert second.broker_orders[: len(first.broker_orders)] == first.broker_orders
    assert second.refused_duplicates == 0


def test_a_run_directory_of_another_mode_is_refused(tmp_path: Path) -> None:
    market = make_market()
    with FakeAlpaca() as server:
        publish(server, market)
        server.set_time(market.start_time())
        config = live_config(tmp_path, server.base_url)
        assert run_in_process(config, server, tmp_path / "run", "paper", market.key(0))
        with pytest.raises(StartupGateFailed, match="holds another paper run .*mode"):
            run_in_process(config, server, tmp_path / "run", "live", market.key(1))


def test_too_little_history_fails_the_history_gate(tmp_path: Path) -> None:
    market = make_market()
    with FakeAlpaca() as server:
        publish(server, market)
        server.set_time(market.start_time())
        config = live_config(tmp_path, server.base_url)
        config = replace(config, runtime=replace(config.runtime, history_bars=5))
        with MarketDataStore(config.data.db_path) as store, pytest.raises(StartupGateFailed, match="history.*history_bars"):
            open_realtime(config, RealtimeRequest("paper", "demo", SYMBOLS, "1d", tmp_path / "run"), store, lambda: False, now=server.state.now)
