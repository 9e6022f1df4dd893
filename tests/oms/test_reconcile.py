"""Reconciliation: adopt broker state, apply fills idempotently, foreign orders, positions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from ai_trading.brokers.alpaca import AlpacaBroker
from ai_trading.brokers.sim import SimBroker
from ai_trading.cli import main
from ai_trading.config import AlpacaConfig, ManagerConfig
from ai_trading.oms.broker import BrokerOrder, BrokerOrderStatus, OrderRequest
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import IntentState
from ai_trading.oms.reconcile import Reconciler
from tests.brokers.alpaca_server import KEY_ID, SECRET_KEY, FakeAlpaca
from tests.oms.oms_harness import NO_GRACE, check_invariants, make_intents, open_broker

FOREIGN_CID = "CIDv2:other:SYN01:sell:20240105:1d:0123456789abcdef:5:1"


@pytest.fixture()
def broker(tmp_path: Path) -> SimBroker:
    return open_broker(tmp_path / "broker.sqlite")


def _started(store: IntentStore, broker: SimBroker) -> OrderManager:
    manager = OrderManager(store, broker, NO_GRACE)
    assert manager.start().passed
    return manager


def test_missing_fills_are_applied_once(oms_store: IntentStore, broker: SimBroker) -> None:
    manager = _started(oms_store, broker)
    intents = make_intents(0, 3)
    manager.submit_all(intents)
    broker.advance(6)  # fills happen while the OMS is "down"
    first = Reconciler(oms_store, broker, NO_GRACE).run()
    assert first.passed and first.fills_applied == len(broker.list_fills()) > 0
    assert {cid for cid, _, _ in first.adopted} <= {i.client_order_id for i in intents}
    versions = {i.client_order_id: oms_store.get(i.client_order_id).version for i in intents}  # type: ignore[union-attr]
    again = Reconciler(oms_store, broker, NO_GRACE).run()
    assert again.passed and again.fills_applied == 0 and again.adopted == []
    assert versions == {i.client_order_id: oms_store.get(i.client_order_id).version for i in intents}  # type: ignore[union-attr]
    assert check_invariants(oms_store, broker, intents) == []


def test_foreign_orders_are_recorded_flagged_and_never_touched(oms_store: IntentStore, broker: SimBroker) -> None:
    manual = broker.submit(OrderRequest(client_order_id="manual-7", symbol="SYN00", side="buy", qty=Decimal(10)))
    shaped = broker.submit(OrderRequest(client_order_id=FOREIGN_CID, symbol="SYN01", side="sell", qty=Decimal(5)))
    report = Reconciler(oms_store, broker, NO_GRACE).run()
    assert {o.broker_order_id for o in report.foreign_orders} == {manual.broker_order_id, shaped.broker_order_id}
    assert [o.client_order_id for o in report.cid_shaped_foreign] == [FOREIGN_CID]
    assert {o.broker_order_id: o.cid_shaped for o in oms_store.foreign_orders()} == {
        manual.broker_order_id: False,
        shaped.broker_order_id: True,
    }
    assert {o.broker_order_id for o in broker.list_open_orders()} == {manual.broker_order_id, shaped.broker_order_id}
    assert oms_store.list_intents() == []
    # Nothing has filled yet, so positions still agree and trading may start.
    assert report.passed


def test_position_mismatch_fails_and_is_reported_as_json(oms_store: IntentStore, broker: SimBroker) -> None:
    broker.submit(OrderRequest(client_order_id="manual-8", symbol="SYN00", side="buy", qty=Decimal(10)))
    broker.advance(6)
    report = Reconciler(oms_store, broker, NO_GRACE).run()
    assert not report.passed
    data = json.loads(report.to_json())
    assert data["passed"] is False
    assert data["position_mismatches"] == [{"symbol": "SYN00", "oms_qty": "0", "broker_qty": "10", "adopted_qty": "0"}]
    assert data["foreign_orders"][0]["status"] == "seen_in_fills"


def test_acked_intent_unknown_to_the_broker_blocks_trading(oms_store: IntentStore, broker: SimBroker) -> None:
    intent = oms_store.create(make_intents(1, 1)[0])
    intent = oms_store.transition(oms_store.transition(intent, IntentState.SUBMITTED), IntentState.ACKED, broker_order_id="sim-999")
    manager = OrderManager(oms_store, broker, NO_GRACE)
    report = manager.start()
    assert [(i.kind, i.client_order_id) for i in report.issues] == [("missing_at_broker", intent.client_order_id)]
    assert not manager.trading_allowed
    assert broker.all_orders() == []


class _StaleLookups:
    """A broker whose listings are briefly stale: the order exists but is not yet reported."""

    def __init__(self, inner: SimBroker) -> None:
        self.inner = inner
        self.misses = 1

    def list_open_orders(self) -> list[BrokerOrder]:
        return []

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        if self.misses:
            self.misses -= 1
            return None
        return self.inner.get_order(client_order_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_duplicate_reply_on_resend_is_resolved_by_lookup(oms_store: IntentStore, broker: SimBroker) -> None:
    intent = oms_store.transition(oms_store.create(make_intents(2, 1)[0]), IntentState.SUBMITTED)
    broker.submit(OrderRequest(client_order_id=intent.client_order_id, symbol=intent.symbol, side=intent.side.value, qty=intent.qty))
    report = Reconciler(oms_store, _StaleLookups(broker), ManagerConfig(resend_grace_s=0)).run()  # type: ignore[arg-type]
    assert report.passed and report.resent == [intent.client_order_id]
    assert oms_store.get(intent.client_order_id).state is IntentState.ACKED  # type: ignore[union-attr]
    assert [s.accepted for s in broker.submissions()] == [True, False]
    assert len(broker.all_orders()) == 1


def test_recent_submitted_intent_is_left_to_its_sender(oms_store: IntentStore, broker: SimBroker) -> None:
    intent = oms_store.transition(oms_store.create(make_intents(3, 1)[0]), IntentState.SUBMITTED)
    report = Reconciler(oms_store, broker, ManagerConfig(resend_grace_s=60)).run()
    assert report.in_flight == [intent.client_order_id] and report.resent == []
    assert broker.submissions() == []


@pytest.fixture()
def alpaca() -> Iterator[tuple[FakeAlpaca, AlpacaBroker]]:
    with FakeAlpaca() as server:
        config = AlpacaConfig(base_url=server.base_url, key_id=KEY_ID, secret_key=SECRET_KEY, timeout_s=1.0)
        with AlpacaBroker(config) as adapter:
            yield server, adapter


def test_alpaca_fills_are_matched_by_broker_order_id(
    oms_store: IntentStore, alpaca: tuple[FakeAlpaca, AlpacaBroker]
) -> None:
    server, broker = alpaca
    manager = OrderManager(oms_store, broker, NO_GRACE)
    assert manager.start().passed
    intent = manager.submit(make_intents(4, 1)[0])
    assert intent.state is IntentState.ACKED and intent.broker_order_id is not None
    server.state.execute(intent.broker_order_id, format(intent.qty - 1, "f"), "101.25")
    server.state.execute(intent.broker_order_id, "1", "101.5")
    report = Reconciler(oms_store, broker, NO_GRACE).run()
    assert report.passed and report.fills_applied == 2
    done = oms_store.get(intent.client_order_id)
    assert done is not None and done.state is IntentState.FILLED and done.filled_qty == intent.qty
    assert broker.get_order(intent.client_order_id).status is BrokerOrderStatus.FILLED  # type: ignore[union-attr]


def test_cli_status_and_reconcile(oms_store: IntentStore, oms_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AI_TRADING_OMS_DSN", oms_database_url)
    monkeypatch.setenv("AI_TRADING_DATA_DB", str(tmp_path / "market.duckdb"))
    monkeypatch.setenv("AI_TRADING_BROKER__SIM_DB_PATH", str(tmp_path / "sim.sqlite"))
    assert main(["oms", "--json", "reconcile"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    oms_store.create(make_intents(5, 1)[0])
    assert main(["oms", "--json", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["intents"]["CREATED"] == 1 and status["open"][0]["state"] == "CREATED"
    assert main(["oms", "status"]) == 0
    assert "CREATED 1" in capsys.readouterr().out
