"""Adopting broker positions that predate the OMS: reconciliation passes on a funded
account, adoption happens once (re-adoption and forcing are explicit and audited), an
unreachable broker adopts nothing; the average-cost book against an exact reference."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.brokers.alpaca import AlpacaBroker
from ai_trading.brokers.sim import SimBroker
from ai_trading.config import AlpacaConfig
from ai_trading.errors import AdoptionRefused
from ai_trading.oms.adoption import (
    AdoptedPosition,
    AdoptionStore,
    adopt_positions,
    with_adopted,
)
from ai_trading.oms.broker import OrderRequest
from ai_trading.oms.idempotency import build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import OrderIntent, utc_now
from ai_trading.oms.position_book import PositionBook
from ai_trading.oms.reconcile import Reconciler
from tests.brokers.alpaca_server import KEY_ID, SECRET_KEY, AlpacaState, FakeAlpaca
from tests.oms.oms_harness import NO_GRACE, open_broker

ACCOUNT = "desk-1"
HOLDINGS = {"SPY": (Decimal(100), Decimal("420.5")), "QQQ": (Decimal(30), Decimal("350.25"))}
MAX_BARS = 60


class FundedAlpacaState(AlpacaState):
    """An Alpaca account funded with holdings: positions no fill of the activity feed
    explains (shares transferred in), plus whatever the fills add."""

    def __init__(self, holdings: dict[str, tuple[Decimal, Decimal]]) -> None:
        super().__init__()
        self.holdings = holdings

    def positions(self) -> list[dict[str, Any]]:
        traded = {row["symbol"]: Decimal(row["qty"]) * (1 if row["side"] == "long" else -1) for row in super().positions()}
        rows = []
        for symbol in sorted(set(traded) | set(self.holdings)):
            qty = traded.get(symbol, Decimal(0)) + self.holdings.get(symbol, (Decimal(0), Decimal(0)))[0]
            price = self.holdings.get(symbol, (Decimal(0), Decimal("100.0")))[1]
            if qty:
                rows.append({"symbol": symbol, "qty": str(abs(qty)), "side": "long" if qty > 0 else "short",
                             "avg_entry_price": str(price)})  # fmt: skip
        return rows


def funded_alpaca(holdings: dict[str, tuple[Decimal, Decimal]]) -> FakeAlpaca:
    """The local Alpaca server for an account funded with ``holdings`` (symbol: qty, avg price)."""
    server = FakeAlpaca()
    server.state = FundedAlpacaState(holdings)
    server._server.state = server.state  # the handler reads the state from the server object
    return server


@pytest.fixture()
def broker(tmp_path: Path) -> SimBroker:
    return open_broker(tmp_path / "broker.sqlite")


def _fill_by_hand(broker: SimBroker, cid: str, symbol: str, qty: int) -> Decimal:
    """Buy ``qty`` of ``symbol`` outside the OMS and wait until it filled; the position after."""
    broker.submit(OrderRequest(client_order_id=cid, symbol=symbol, side="buy", qty=Decimal(qty)))
    for _ in range(MAX_BARS):
        order = broker.get_order(cid)
        if order is not None and not order.status.is_open:
            break
        broker.advance()
    return {p.symbol: p.qty for p in broker.positions()}[symbol]


def _reconcile(store: IntentStore, broker: Any, account: str = ACCOUNT) -> Any:
    return Reconciler(store, broker, NO_GRACE, account=account).run()


def test_hand_bought_holding_blocks_reconciliation_until_adopted(oms_store: IntentStore, broker: SimBroker) -> None:
    held = _fill_by_hand(broker, "by-hand-1", "SYN00", 300)
    before = _reconcile(oms_store, broker)
    assert not before.passed
    assert [(m.symbol, m.oms_qty, m.broker_qty) for m in before.position_mismatches] == [("SYN00", 0, held)]
    adopted = adopt_positions(oms_store, broker, ACCOUNT, symbols=None, reason="funded account", adopted_by="ops")
    broker_avg = {p.symbol: p.avg_entry_price for p in broker.positions()}["SYN00"]
    assert [(p.symbol, p.qty, p.avg_price, p.adopted_by, p.version) for p in adopted] == [("SYN00", held, broker_avg, "ops", 1)]
    assert _reconcile(oms_store, broker).passed
    assert not _reconcile(oms_store, broker, account="another").passed  # adoption belongs to its account
    audit = AdoptionStore(oms_store.engine).audit(ACCOUNT)
    assert [(a.symbol, a.action, a.qty, a.previous_qty, a.broker_qty, a.fills_qty, a.forced, a.adopted_by, a.reason) for a in audit] == [
        ("SYN00", "adopt", held, None, held, 0, False, "ops", "funded account")
    ]


def test_adopting_twice_is_refused_and_replacing_is_audited(oms_store: IntentStore, broker: SimBroker) -> None:
    held = _fill_by_hand(broker, "by-hand-2", "SYN01", 200)
    adopt_positions(oms_store, broker, ACCOUNT, symbols=["SYN01"], reason="funded", adopted_by="ops")
    store = AdoptionStore(oms_store.engine)
    first = store.adopted(ACCOUNT)
    with pytest.raises(AdoptionRefused, match=r"SYN01: already adopted .* pass --replace"):
        adopt_positions(oms_store, broker, ACCOUNT, symbols=["SYN01"], reason="again", adopted_by="ops")
    with pytest.raises(AdoptionRefused, match="nothing to adopt: every broker position equals the OMS's"):
        adopt_positions(oms_store, broker, ACCOUNT, symbols=None, reason="again", adopted_by="ops")
    assert store.adopted(ACCOUNT) == first and len(store.audit(ACCOUNT)) == 1
    more = _fill_by_hand(broker, "by-hand-3", "SYN01", 50)  # bought by hand again, outside the OMS
    assert not _reconcile(oms_store, broker).passed
    adopt_positions(oms_store, broker, ACCOUNT, symbols=["SYN01"], reason="second transfer", adopted_by="lead", replace=True)
    assert store.adopted(ACCOUNT)["SYN01"].qty == more and store.adopted(ACCOUNT)["SYN01"].version == 2
    assert [(a.action, a.qty, a.previous_qty, a.adopted_by) for a in store.audit(ACCOUNT)] == [
        ("adopt", held, None, "ops"),
        ("replace", more, held, "lead"),
    ]
    assert _reconcile(oms_store, broker).passed


def test_symbol_the_oms_trades_is_refused_unless_forced(oms_store: IntentStore, broker: SimBroker) -> None:
    manager = OrderManager(oms_store, broker, NO_GRACE, account=ACCOUNT)
    assert manager.start().passed
    cid = build_client_order_id("ops", "SYN02", "buy", "20240105", "1d", signal_hash({"k": 1}), Decimal(100), 1)
    manager.submit(OrderIntent.new(client_order_id=cid, strategy="ops", symbol="SYN02", side="buy", qty=Decimal(100)))
    with pytest.raises(AdoptionRefused, match=r"SYN02: the OMS has fills .* or open intents .* --force"):
        adopt_positions(oms_store, broker, ACCOUNT, symbols=["SYN02"], reason="r", adopted_by="ops")
    for _ in range(MAX_BARS):
        if oms_store.get(cid).is_final:  # type: ignore[union-attr]
            break
        broker.advance()
        manager.poll()
    fills_qty = oms_store.positions()["SYN02"]
    held = _fill_by_hand(broker, "by-hand-4", "SYN02", 70)
    assert not _reconcile(oms_store, broker).passed
    with pytest.raises(AdoptionRefused, match="--force"):
        adopt_positions(oms_store, broker, ACCOUNT, symbols=["SYN02"], reason="r", adopted_by="ops")
    assert AdoptionStore(oms_store.engine).audit(ACCOUNT) == []
    adopted = adopt_positions(oms_store, broker, ACCOUNT, symbols=["SYN02"], reason="hand trade", adopted_by="ops", force=True)
    assert [p.qty for p in adopted] == [held - fills_qty]
    assert [(a.forced, a.fills_qty, a.broker_qty) for a in AdoptionStore(oms_store.engine).audit(ACCOUNT)] == [(True, fills_qty, held)]
    assert _reconcile(oms_store, broker).passed


def test_unreachable_broker_adopts_nothing(oms_store: IntentStore) -> None:
    with FakeAlpaca() as server:
        url = server.base_url
    config = AlpacaConfig(base_url=url, key_id=KEY_ID, secret_key=SECRET_KEY, timeout_s=0.5, max_retries=0)
    with AlpacaBroker(config) as broker, pytest.raises(AdoptionRefused, match="broker could not be asked"):
        adopt_positions(oms_store, broker, ACCOUNT, symbols=None, reason="r", adopted_by="ops")
    assert AdoptionStore(oms_store.engine).adopted(ACCOUNT) == {} and AdoptionStore(oms_store.engine).audit(ACCOUNT) == []


@pytest.fixture()
def funded() -> Iterator[AlpacaBroker]:
    with funded_alpaca(HOLDINGS) as server:
        config = AlpacaConfig(base_url=server.base_url, key_id=KEY_ID, secret_key=SECRET_KEY, timeout_s=2.0)
        with AlpacaBroker(config) as adapter:
            yield adapter


def test_funded_alpaca_account_reconciles_after_adoption(oms_store: IntentStore, funded: AlpacaBroker) -> None:
    before = _reconcile(oms_store, funded)
    assert sorted((m.symbol, m.broker_qty) for m in before.position_mismatches) == [("QQQ", 30), ("SPY", 100)]
    adopted = adopt_positions(oms_store, funded, ACCOUNT, symbols=["SPY", "QQQ"], reason="account funded with holdings", adopted_by="ops")
    assert {p.symbol: (p.qty, p.avg_price) for p in adopted} == HOLDINGS
    assert _reconcile(oms_store, funded).passed


def test_a_symbol_the_broker_does_not_hold_is_refused(oms_store: IntentStore, funded: AlpacaBroker) -> None:
    with pytest.raises(AdoptionRefused, match=r"IWM: nothing to adopt \(broker holds 0"):
        adopt_positions(oms_store, funded, ACCOUNT, symbols=["SPY", "IWM"], reason="r", adopted_by="ops")
    assert AdoptionStore(oms_store.engine).adopted(ACCOUNT) == {}  # SPY was not written either


# -- arithmetic ------------------------------------------------------------------------

SYMBOLS = st.sampled_from(["A", "B", "C"])
QTY = st.integers(-500, 500).filter(bool).map(Decimal)
PRICE = st.integers(1, 50_000).map(lambda cents: Decimal(cents) / 100)


def _adopted(symbol: str, qty: Decimal, price: Decimal | None = None) -> AdoptedPosition:
    return AdoptedPosition(account=ACCOUNT, symbol=symbol, qty=qty, avg_price=price, adopted_at=utc_now(), adopted_by="t", reason="t", version=1)


@given(fills=st.dictionaries(SYMBOLS, QTY), adopted=st.dictionaries(SYMBOLS, QTY))
def test_with_adopted_is_fills_plus_adopted(fills: dict[str, Decimal], adopted: dict[str, Decimal]) -> None:
    expected = {}
    for symbol in "ABC":
        total = fills.get(symbol, Decimal(0)) + adopted.get(symbol, Decimal(0))
        if total:
            expected[symbol] = total
    assert with_adopted(fills, [_adopted(s, q) for s, q in adopted.items()]) == expected


def _reference_book(trades: list[tuple[Decimal, Decimal]]) -> tuple[Fraction, Fraction | None, Fraction]:
    """Average cost with exact rationals, one share at a time: a share bought into a long
    (sold into a short) joins the lot at its price; a share closed realizes price - average."""
    held, cost, realized = Fraction(0), Fraction(0), Fraction(0)
    for qty, price in trades:
        step = 1 if qty > 0 else -1
        for _ in range(int(abs(qty))):
            if held == 0 or (held > 0) == (step > 0):
                held, cost = held + step, cost + step * Fraction(price)
            else:
                average = cost / held
                realized += (Fraction(price) - average) * (1 if held > 0 else -1)
                held, cost = held + step, cost + step * average
    return held, (cost / held if held else None), realized


@settings(max_examples=200, deadline=None)
@given(trades=st.lists(st.tuples(QTY, PRICE), max_size=12), mark=PRICE)
def test_position_book_matches_share_by_share_reference(trades: list[tuple[Decimal, Decimal]], mark: Decimal) -> None:
    book = PositionBook()
    if trades:
        book.adopt("A", *trades[0])
    for qty, price in trades[1:]:
        book.trade("A", qty, price)
    held, average, realized = _reference_book(trades)
    if not trades:
        assert book.positions() == []
        return
    (position,) = book.positions()
    assert position.qty == held and position.adopted_qty == trades[0][0]
    assert (position.avg_cost is None) == (average is None)
    if average is not None:
        assert abs(Fraction(position.avg_cost) - average) < Fraction(1, 10**15)  # type: ignore[arg-type]
        # Conservation: what was paid and received plus the position at the mark is realized + unrealized.
        cash = -sum(Fraction(q) * Fraction(p) for q, p in trades)
        total = Fraction(position.realized_pnl) + Fraction(position.unrealized_pnl(mark))  # type: ignore[arg-type]
        assert abs(total - (cash + held * Fraction(mark))) < Fraction(1, 10**9)
    assert abs(Fraction(position.realized_pnl) - realized) < Fraction(1, 10**9)


def test_unknown_adopted_price_leaves_the_average_unknown_until_flat() -> None:
    book = PositionBook()
    book.adopt("A", Decimal(10), None)
    book.trade("A", Decimal(5), Decimal(20))
    assert book.positions()[0].avg_cost is None and book.positions()[0].unrealized_pnl(Decimal(30)) is None
    book.trade("A", Decimal(-15), Decimal(25))
    book.trade("A", Decimal(4), Decimal(12))
    assert (book.positions()[0].qty, book.positions()[0].avg_cost) == (4, Decimal(12))
