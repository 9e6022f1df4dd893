"""The kill switch: `ai-trading kill`, the kill-switch receiver, and a second process that
stops sending within the latency budget."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ai_trading.cli import main
from ai_trading.commands.oms import create_broker
from ai_trading.config import AlertsConfig, load_config
from ai_trading.data.store import open_store
from ai_trading.errors import ConfigError
from ai_trading.monitoring.alerts import Alert, Severity
from ai_trading.monitoring.dispatcher import Dispatcher, Notification
from ai_trading.monitoring.kill_switch import (
    KILL_SWITCH_ENGAGED,
    KillSwitch,
    kill_switch_actions,
)
from ai_trading.monitoring.outbox import Outbox
from ai_trading.monitoring.receivers import build_receiver
from ai_trading.monitoring.routing import RoutingConfig, parse_routing
from ai_trading.oms.idempotency import build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import IntentState, OrderIntent, TradingState
from ai_trading.oms.trading_state import TradingStateStore
from tests.monitoring.helpers import FakeClock
from tests.monitoring.order_sender import race

ACCOUNT = "acct"
LATENCY_BUDGET_S = 1.0
ROOT = Path(__file__).resolve().parents[2]
CONFIG = AlertsConfig(kill_switch_halt_on="OmsReconciliationMismatch", kill_switch_reduce_on="MarketDataStale")


def _config_file(tmp_path: Path, dsn: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[oms]\ndsn = "{dsn}"\n[risk]\naccount = "{ACCOUNT}"\n[manager]\nresend_grace_s = 0.0\n'
        f'[broker]\nkind = "sim"\nsim_db_path = "{tmp_path / "sim.sqlite"}"\n'
        f'[data]\ndb_path = "{tmp_path / "market.duckdb"}"\nsynthetic_symbols = 3\nsynthetic_daily_bars = 300\n'
        "synthetic_minute_bars = 390\n"
        "[execution]\nmax_participation = 0.5\n"
    )
    return config


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def _routing() -> RoutingConfig:
    document = {
        "route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "30s",
                  "routes": [{"matchers": ["severity=~critical|warning"], "receiver": "kill", "continue": True},
                             {"matchers": ["alertname=~.+"], "receiver": "hook"}]},
        "receivers": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:1/hook"}},
                      {"name": "kill", "kill_switch": {"account": ACCOUNT}}],
    }  # fmt: skip
    return parse_routing(document, CONFIG, "test")


def _alert(name: str, severity: Severity, clock: FakeClock, **labels: str) -> Alert:
    return Alert(name, severity, {"account": ACCOUNT, **labels}, {"summary": f"{name} test"}, clock())


def test_kill_on_status_off_text_and_json_with_both_changes_audited(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AI_TRADING_OMS_DSN", raising=False)
    cfg = ["--config", str(_config_file(tmp_path, oms_database_url))]
    code, out = _cli(capsys, "kill", "status", *cfg)
    assert code == 0 and out.startswith(f"{ACCOUNT}: ACTIVE (never set)")
    code, out = _cli(capsys, "kill", "on", "--reason", "desk drill", "--by", "alice", *cfg)
    assert code == 0 and f"kill switch ON: {ACCOUNT} is HALTED (by alice: desk drill" in out
    code, out = _cli(capsys, "kill", "status", "--json", *cfg)
    status = json.loads(out)
    assert (status["state"], status["changed_by"], status["reason"], status["version"]) == ("HALTED", "alice", "desk drill", 1)
    code, out = _cli(capsys, "kill", "off", "--reason", "drill over", "--by", "bob", "--json", *cfg)
    off = json.loads(out)
    assert code == 0 and off["previous_state"] == "HALTED" and off["state"]["state"] == "ACTIVE"
    code, out = _cli(capsys, "kill", "status", *cfg)
    assert out.startswith(f"{ACCOUNT}: ACTIVE (since ") and "HALTED    by alice: desk drill" in out and "ACTIVE    by bob: drill over" in out
    audit = TradingStateStore(oms_store.engine).audit(ACCOUNT)
    assert [(a.state, a.changed_by, a.reason) for a in audit] == [
        (TradingState.HALTED, "alice", "desk drill"), (TradingState.ACTIVE, "bob", "drill over")
    ]
    assert all(isinstance(a.changed_at, datetime) for a in audit)
    with pytest.raises(SystemExit):
        main(["kill", "off", *cfg])  # a reset needs a reason
    assert TradingStateStore(oms_store.engine).get(ACCOUNT).state is TradingState.ACTIVE


def test_kill_on_cancel_open_and_flatten_through_the_cli(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AI_TRADING_OMS_DSN", raising=False)
    config_file = _config_file(tmp_path, oms_database_url)
    config = load_config(config_file)
    broker = create_broker(config)
    manager = OrderManager(oms_store, broker, config.manager, account=ACCOUNT)
    assert manager.start().passed
    with open_store(config.data) as market:
        held, resting = market.symbols()[:2]

    def intent(symbol: str, qty: int, tag: str) -> OrderIntent:
        cid = build_client_order_id("model", symbol, "buy", "20240105", "1d", signal_hash({"tag": tag}), qty, 1)
        return OrderIntent.new(client_order_id=cid, strategy="model", symbol=symbol, side="buy", qty=Decimal(qty))

    manager.submit(intent(held, 100, "held"))
    for _ in range(20):
        broker.advance()
        manager.poll()
    assert oms_store.positions() == {held: Decimal(100)}
    manager.submit(intent(resting, 50, "resting"))  # acknowledged, not filled: the broker's clock stands still
    code, out = _cli(capsys, "kill", "on", "--cancel-open", "--flatten", "--reason", "flatten drill", "--by", "alice", "--json", "--config", str(config_file))
    document = json.loads(out)
    assert code == 0, document
    assert document["state"]["state"] == "HALTED"
    assert [(c["symbol"], c["state_after"]) for c in document["canceled"]] == [(resting, "CANCELED")]
    [order] = document["flatten"]["orders"]
    assert (order["symbol"], order["side"], order["qty"]) == (held, "sell", "100")
    assert order["client_order_id"].startswith("CIDv2:flatten:") and document["flatten"]["error"] is None
    assert [a.authorised_by for a in manager.flatten_audit()] == ["alice"]
    for _ in range(20):
        broker.advance()
        manager.poll()
    assert oms_store.positions() == {}
    code, out = _cli(capsys, "kill", "on", "--flatten", "--reason", "again", "--config", str(config_file))
    assert code == 0 and "no positions to flatten" in out
    assert len(manager.flatten_audit()) == 1  # nothing sent twice
    code, _ = _cli(capsys, "kill", "off", "--reason", "drill over", "--config", str(config_file))
    assert code == 0 and manager.submit(intent(held, 10, "after reset")).state is IntentState.ACKED  # trading resumes


def test_halted_by_kill_on_stops_a_second_process_within_the_budget(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AI_TRADING_OMS_DSN", raising=False)
    config = _config_file(tmp_path, oms_database_url)
    outputs: list[str] = []

    def kill_on() -> None:
        command = [sys.executable, "-m", "ai_trading.cli", "kill", "on", "--reason", "latency test", "--json", "--config", str(config)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        outputs.append(done.stdout)

    result = race(oms_database_url, tmp_path / "sender.sqlite", ACCOUNT, kill_on)
    committed_at = datetime.fromisoformat(json.loads(outputs[0])["state"]["changed_at"]).timestamp()
    assert len(result.accepted) >= 10 and len(result.refused) >= 20
    assert all(o["t_start"] < result.engaged_by for o in result.accepted), "an order started after the kill was sent"
    first_refused = min(o["k"] for o in result.refused)
    assert all(o["state"] == "REJECTED" for o in result.orders if o["k"] >= first_refused), "an order passed after a refusal"
    assert result.latency_s(committed_at) < LATENCY_BUDGET_S


def test_a_critical_alert_halts_a_second_process_within_the_budget(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    outbox = Outbox(oms_store.engine, clock)
    routing = _routing()
    dispatcher = Dispatcher(routing, outbox.enqueue, clock, actions=kill_switch_actions(routing, oms_store.engine, CONFIG, ACCOUNT))
    timings: dict[str, float] = {}

    def alert() -> None:
        timings["sent"] = time.time()
        dispatcher.receive([_alert("OmsReconciliationMismatch", Severity.CRITICAL, clock, check="position")])

    result = race(oms_database_url, tmp_path / "sender.sqlite", ACCOUNT, alert)
    record = TradingStateStore(oms_store.engine).get(ACCOUNT)
    assert record.state is TradingState.HALTED and record.changed_by == "alert:OmsReconciliationMismatch"
    assert record.changed_at is not None and record.changed_at.timestamp() - timings["sent"] < LATENCY_BUDGET_S
    assert all(o["t_start"] < result.engaged_by for o in result.accepted)
    assert result.latency_s(record.changed_at.timestamp()) < LATENCY_BUDGET_S
    assert outbox.entries() == []  # the group waits; the kill switch did not
    clock.advance(30)
    dispatcher.tick()
    queued = outbox.entries()
    assert {e.receiver for e in queued} == {"hook"}  # people are told through the outbox; the switch never is
    names = {a["labels"]["alertname"] for e in queued for a in e.payload["alerts"]}
    assert names == {"OmsReconciliationMismatch", KILL_SWITCH_ENGAGED}


def _dispatcher(oms_store: IntentStore, clock: FakeClock, sent: list[Notification]) -> Dispatcher:
    routing = _routing()
    return Dispatcher(routing, sent.append, clock, actions=kill_switch_actions(routing, oms_store.engine, CONFIG, ACCOUNT))


def test_a_warning_configured_as_reduce_only_sets_reducing_and_never_loosens(oms_store: IntentStore) -> None:
    clock, sent = FakeClock(), []
    dispatcher = _dispatcher(oms_store, clock, sent)
    states = TradingStateStore(oms_store.engine)
    stale = _alert("MarketDataStale", Severity.WARNING, clock, feed="bars")
    dispatcher.receive([stale])
    assert states.get(ACCOUNT).state is TradingState.REDUCING
    dispatcher.receive([stale, _alert("ExecutionCostSpike", Severity.WARNING, clock)])  # repeated / not configured
    assert len(states.audit(ACCOUNT)) == 1
    dispatcher.receive([_alert("OmsReconciliationMismatch", Severity.CRITICAL, clock)])
    dispatcher.receive([stale, _alert("OmsReconciliationMismatch", Severity.CRITICAL, clock).resolved(clock())])
    audit = states.audit(ACCOUNT)
    assert [(a.state, a.changed_by) for a in audit] == [
        (TradingState.REDUCING, "alert:MarketDataStale"), (TradingState.HALTED, "alert:OmsReconciliationMismatch")
    ]
    assert "MarketDataStale (warning)" in audit[0].reason and stale.fingerprint[:16] in audit[0].reason
    dispatcher.receive([_alert("OmsReconciliationMismatch", Severity.CRITICAL, clock, account="other")])
    assert len(states.audit(ACCOUNT)) == 2 and states.get("other").version == 0  # another account's alert
    clock.advance(30)
    engaged = [a for n in dispatcher.tick() for a in n.payload["alerts"] if a["labels"]["alertname"] == KILL_SWITCH_ENGAGED]
    assert sorted(a["labels"]["state"] for a in engaged) == ["HALTED", "REDUCING"]


def test_a_silenced_alert_does_not_engage_the_switch(oms_store: IntentStore) -> None:
    from ai_trading.monitoring.matchers import parse_matchers
    from ai_trading.monitoring.silences import Silence

    clock = FakeClock()
    routing = _routing()
    silence = Silence("s1", parse_matchers(["alertname=MarketDataStale"], "test"), "ops", "feed maintenance", clock(), clock().replace(year=2030))
    dispatcher = Dispatcher(routing, lambda n: None, clock, lambda now: [silence], actions=kill_switch_actions(routing, oms_store.engine, CONFIG, ACCOUNT))
    dispatcher.receive([_alert("MarketDataStale", Severity.WARNING, clock)])
    assert TradingStateStore(oms_store.engine).get(ACCOUNT).version == 0


def test_kill_switch_receivers_are_parsed_and_never_built_for_the_outbox(oms_store: IntentStore) -> None:
    routing = _routing()
    spec = routing.receivers["kill"]
    assert spec.kill_switch is not None and spec.kill_switch.account == ACCOUNT and not spec.send_resolved
    with pytest.raises(ConfigError, match="is a kill switch"):
        build_receiver(spec, 1.0)
    with pytest.raises(ConfigError, match="need exactly one action each"):
        Dispatcher(routing, lambda n: None, FakeClock())
    bad = {"route": {"receiver": "k"}, "receivers": [{"name": "k", "kill_switch": {"acount": "x"}}]}
    with pytest.raises(ConfigError, match="unknown key"):
        parse_routing(bad, CONFIG, "test")
    with pytest.raises(ConfigError, match="both name"):
        KillSwitch(TradingStateStore(oms_store.engine), ACCOUNT, AlertsConfig(kill_switch_halt_on="A,B", kill_switch_reduce_on="B"))


def test_a_halted_account_refuses_new_orders_and_lets_cancels_pass(oms_store: IntentStore, tmp_path: Path) -> None:
    from tests.oms.oms_harness import NO_GRACE, open_broker

    broker = open_broker(tmp_path / "sim.sqlite")
    manager = OrderManager(oms_store, broker, NO_GRACE, account=ACCOUNT)
    assert manager.start().passed
    cid = build_client_order_id("model", "SYN00", "buy", "20240105", "1d", signal_hash({"x": 1}), 10, 1)
    resting = manager.submit(OrderIntent.new(client_order_id=cid, strategy="model", symbol="SYN00", side="buy", qty=Decimal(10)))
    KillSwitch(TradingStateStore(oms_store.engine), ACCOUNT, CONFIG)(_alert("OmsReconciliationMismatch", Severity.CRITICAL, FakeClock()))
    cid2 = build_client_order_id("model", "SYN01", "buy", "20240105", "1d", signal_hash({"x": 2}), 10, 1)
    refused = manager.submit(OrderIntent.new(client_order_id=cid2, strategy="model", symbol="SYN01", side="buy", qty=Decimal(10)))
    assert refused.state is IntentState.REJECTED and "HALTED" in (refused.last_error or "")
    [outcome] = manager.cancel_open()
    assert outcome.before.client_order_id == resting.client_order_id and outcome.after is not None
    assert outcome.after.state is IntentState.CANCELED
