"""SimBroker: durable paper broker on the execution simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from ai_trading.brokers.sim import SimBroker
from ai_trading.brokers.sim_market import StoreMarket, utc_datetime
from ai_trading.config import ExecutionConfig
from ai_trading.data.panel import panel_to_arrow
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import BrokerError, DuplicateOrderError, OrderRejected
from ai_trading.models.policy import panel_rows
from ai_trading.oms.broker import Broker, BrokerOrderStatus, OrderRequest
from ai_trading.types import MarketPanel

SYMBOLS = ("AAA", "BBB")
N_BARS = 60
EXECUTION = ExecutionConfig(seed=11, tif_bars=5, max_participation=0.05)


def _panel(n_bars: int = N_BARS, volume: float = 2_000.0) -> MarketPanel:
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, size=(n_bars, len(SYMBOLS))), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    return MarketPanel(
        ts=np.arange(n_bars, dtype=np.int64) * 60_000_000_000 + 1_700_000_000_000_000_000,
        symbols=SYMBOLS,
        open=open_,
        high=np.maximum(open_, close) * 1.001,
        low=np.minimum(open_, close) * 0.999,
        close=close,
        volume=np.full((n_bars, len(SYMBOLS)), volume),
        valid=np.ones((n_bars, len(SYMBOLS)), dtype=bool),
    )


def _request(cid: str = "c1", qty: str = "250", side: str = "buy", symbol: str = "AAA") -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=symbol, side=side, qty=Decimal(qty))


@pytest.fixture()
def broker(tmp_path: Path) -> SimBroker:
    return SimBroker(tmp_path / "broker.sqlite", _panel(), EXECUTION)


def test_satisfies_the_broker_protocol(broker: SimBroker) -> None:
    assert isinstance(broker, Broker)


def test_order_is_new_then_fills_over_bars_as_the_clock_advances(broker: SimBroker) -> None:
    order = broker.submit(_request(qty="250"))
    assert order.status is BrokerOrderStatus.NEW and order.filled_qty == 0
    assert broker.list_open_orders() == [order]
    assert broker.list_fills() == []
    seen = Decimal(0)
    for _ in range(EXECUTION.tif_bars + 2):
        broker.advance()
        now = broker.get_order("c1")
        assert now is not None and now.filled_qty >= seen
        seen = now.filled_qty
    fills = broker.list_fills()
    # 5% of 2000 shares per bar: 250 shares take several partial fills.
    assert len(fills) >= 2
    assert sum(f.qty for f in fills) == Decimal(250)
    done = broker.get_order("c1")
    assert done is not None and done.status is BrokerOrderStatus.FILLED and done.filled_qty == Decimal(250)
    assert broker.list_open_orders() == []
    assert [(p.symbol, p.qty) for p in broker.positions()] == [("AAA", Decimal(250))]


def test_an_order_too_large_for_its_time_in_force_expires_partly_filled(broker: SimBroker) -> None:
    broker.submit(_request(qty="100000"))
    broker.advance(EXECUTION.tif_bars + 3)
    order = broker.get_order("c1")
    assert order is not None and order.status is BrokerOrderStatus.CANCELED
    assert 0 < order.filled_qty < Decimal(100000)
    assert sum(f.qty for f in broker.list_fills()) == order.filled_qty


def test_duplicate_client_order_id_is_refused_and_audited(broker: SimBroker) -> None:
    broker.submit(_request())
    with pytest.raises(DuplicateOrderError, match="c1"):
        broker.submit(_request(qty="10"))
    assert len(broker.all_orders()) == 1
    assert [(s.client_order_id, s.accepted) for s in broker.submissions()] == [("c1", True), ("c1", False)]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    first = SimBroker(tmp_path / "b.sqlite", _panel(), EXECUTION)
    first.submit(_request())
    first.advance(3)
    again = SimBroker(tmp_path / "b.sqlite", _panel(), EXECUTION)
    assert again.clock == first.clock == utc_datetime(int(_panel().ts[3]))
    assert again.get_order("c1") == first.get_order("c1")
    with pytest.raises(DuplicateOrderError):
        again.submit(_request())


def test_reopening_bound_to_another_market_is_refused(tmp_path: Path) -> None:
    SimBroker(tmp_path / "b.sqlite", _panel(), EXECUTION)
    other_symbols = replace(_panel(), symbols=("AAA", "CCC"))
    later_start = panel_rows(_panel(), 1, N_BARS)
    for market in (other_symbols, later_start):
        with pytest.raises(BrokerError, match="is bound to the market"):
            SimBroker(tmp_path / "b.sqlite", market, EXECUTION)


def test_a_market_that_grew_is_the_same_market(tmp_path: Path) -> None:
    """New bars after the clock (a store being appended to) keep the broker working."""
    first = SimBroker(tmp_path / "b.sqlite", panel_rows(_panel(), 0, 20), EXECUTION)
    first.advance(19)
    grown = SimBroker(tmp_path / "b.sqlite", _panel(), EXECUTION)
    grown.advance(5)
    assert grown.clock == utc_datetime(int(_panel().ts[24]))


def test_unknown_symbol_is_rejected(broker: SimBroker) -> None:
    with pytest.raises(OrderRejected, match="ZZZ"):
        broker.submit(_request(symbol="ZZZ"))
    assert broker.all_orders() == []


def test_cancel_stops_later_fills(broker: SimBroker) -> None:
    order = broker.submit(_request(qty="1000"))
    broker.advance(2)
    broker.cancel(order.broker_order_id)
    filled_at_cancel = broker.get_order("c1").filled_qty  # type: ignore[union-attr]
    broker.advance(EXECUTION.tif_bars + 2)
    after = broker.get_order("c1")
    assert after is not None and after.status is BrokerOrderStatus.CANCELED
    assert after.filled_qty == filled_at_cancel < Decimal(1000)
    with pytest.raises(BrokerError, match="not cancelable"):
        broker.cancel(order.broker_order_id)


def test_fills_are_deterministic_across_brokers(tmp_path: Path) -> None:
    def run(path: Path, order: list[str]) -> dict[str, list[tuple[Decimal, Decimal]]]:
        broker = SimBroker(path, _panel(), EXECUTION)
        for cid in order:
            broker.submit(_request(cid=cid, qty="300"))
        broker.advance(EXECUTION.tif_bars + 2)
        by_cid: dict[str, list[tuple[Decimal, Decimal]]] = {}
        for fill in broker.list_fills():
            by_cid.setdefault(fill.client_order_id or "", []).append((fill.qty, fill.price))
        return by_cid

    first = run(tmp_path / "a.sqlite", ["x", "y", "z"])
    second = run(tmp_path / "b.sqlite", ["z", "x", "y"])
    assert first == second and len(first) == 3
    changed = SimBroker(tmp_path / "c.sqlite", _panel(), replace(EXECUTION, seed=12))
    changed.submit(_request(cid="x", qty="300"))
    changed.advance(EXECUTION.tif_bars + 2)
    assert [(f.qty, f.price) for f in changed.list_fills()] != first["x"]


def test_positions_net_buys_and_sells(broker: SimBroker) -> None:
    broker.submit(_request(cid="b", qty="50", side="buy"))
    broker.submit(_request(cid="s", qty="80", side="sell", symbol="BBB"))
    broker.advance(EXECUTION.tif_bars + 2)
    assert {p.symbol: p.qty for p in broker.positions()} == {"AAA": Decimal(50), "BBB": Decimal(-80)}


def test_fills_are_the_same_when_bars_arrive_one_at_a_time(tmp_path: Path) -> None:
    """Orders whose time in force outlives the known bars are simulated again as bars are
    appended to the store; the fills equal those of a broker that saw every bar at once."""
    panel = _panel()
    orders = [(10, "early", "1000"), (16, "late", "400")]

    def run(broker: SimBroker, append: Callable[[int], None]) -> list[tuple[str | None, Decimal, Decimal, object]]:
        for bar in range(8, 30):
            append(bar)
            broker.advance_to(utc_datetime(int(panel.ts[bar])))
            for decision, cid, qty in orders:
                if bar == decision:
                    broker.submit(_request(cid=cid, qty=qty))
        return [(f.client_order_id, f.qty, f.price, f.ts) for f in broker.list_fills()]

    whole = run(SimBroker(tmp_path / "a.sqlite", panel, EXECUTION), lambda bar: None)
    store = MarketDataStore(tmp_path / "bars.duckdb")
    table = panel_to_arrow(panel)

    def append(bar: int) -> None:  # the table is time-major and every bar is valid
        store.write_source(table.slice(bar * len(SYMBOLS), len(SYMBOLS)), "test feed", "1min")

    append_first = [append(bar) for bar in range(8)]
    assert len(append_first) == 8
    market = StoreMarket(store, SYMBOLS, "1min")
    growing = run(SimBroker(tmp_path / "b.sqlite", market, EXECUTION), append)
    assert whole == growing and len({cid for cid, *_ in whole}) == 2
    assert sum(q for cid, q, *_ in whole if cid == "late") == Decimal(400)


def test_an_order_at_a_time_without_a_bar_is_rejected(broker: SimBroker) -> None:
    broker.advance_to(utc_datetime(int(_panel().ts[2]) + 1_000_000_000))  # between two bars
    order = broker.submit(_request())
    assert order.status is BrokerOrderStatus.REJECTED


def test_the_clock_never_moves_back(broker: SimBroker) -> None:
    broker.advance(3)
    with pytest.raises(BrokerError, match="only moves forward"):
        broker.advance_to(utc_datetime(int(_panel().ts[1])))


def test_open_orders_are_every_order_whose_status_is_open(broker: SimBroker) -> None:
    """The indexed open-order query against the obvious reference, through filled, partly
    filled, expired, canceled and still-open orders (some past the last known bar)."""
    sizes = ("20", "250", "4000", "90000")
    for step in range(N_BARS - 1):
        requests = [_request(f"c{step}-{k}", sizes[(step + k) % len(sizes)], ("buy", "sell")[k % 2], SYMBOLS[k % 2]) for k in range(3)]
        broker.submit_batch(requests)
        if step % 7 == 3:
            broker.cancel(broker.get_order(f"c{step}-2").broker_order_id)  # type: ignore[union-attr]
        expected = [order for order in broker.all_orders() if order.status.is_open]
        assert broker.list_open_orders() == expected
        if step in (5, 40, N_BARS - 3):
            assert len(expected) > 0
        broker.advance()
    assert any(order.status is BrokerOrderStatus.CANCELED for order in broker.all_orders())
    assert any(order.status is BrokerOrderStatus.FILLED for order in broker.all_orders())
