"""Alerts raised by the running trading loop, delivered through routes to a local webhook;
a kill-switch receiver halting a replay; a registry rollback (by hand from another process,
or automatic on a live breach) picked up by the loop at its next bar."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, select

from ai_trading.brokers.sim_market import utc_datetime
from ai_trading.cli import main
from ai_trading.config import AlertsConfig, AppConfig, load_config
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import BrokerError
from ai_trading.monitoring.notify import UNROUTED
from ai_trading.monitoring.outbox import Outbox
from ai_trading.monitoring.rollback import ROLLED_BACK_ALERT
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import TradingState
from ai_trading.oms.schema import intents
from ai_trading.oms.trading_state import TradingStateStore
from ai_trading.runtime.loop import StepReport
from ai_trading.runtime.model_watch import SWITCHED_ALERT, ModelSwitches
from ai_trading.runtime.replay import OMS_FILE, ReplayRequest, open_replay, run_replay
from ai_trading.runtime.session import TradingSession
from ai_trading.runtime.summary import RunSummary, run_summary
from tests.monitoring.helpers import WebhookLog, serve_webhook
from tests.runtime.replay_harness import SYMBOLS, make_store, parity_config
from tests.runtime.test_replay_ml_parity import LENIENT

START, END = "2015-09-01", "2015-10-01"  # 21 bars, after the demo's warm-up
MODEL = "ridge-m"
ML_SYMBOLS = "SYN00,SYN01,SYN02,SYN03,SYN04,SYN05"
ML_START, ML_END = "2016-10-03", "2016-11-01"


@dataclass
class Replayed:
    summary: RunSummary
    reports: list[StepReport]


def replay(config: AppConfig, store_path: Path, run_dir: Path, on_step: Callable[[TradingSession, StepReport], None] | None = None,
           model: str = "demo", symbols: tuple[str, ...] | None = SYMBOLS, start: str = START, end: str = END,
           dsn: str | None = None) -> Replayed:  # fmt: skip
    reports: list[StepReport] = []
    with MarketDataStore(store_path, read_only=True) as store:
        session = open_replay(config, ReplayRequest(model, start, end, symbols, None, run_dir, dsn), store)
        try:

            def step(report: StepReport) -> None:
                reports.append(report)
                if on_step is not None:
                    on_step(session, report)

            stopped = run_replay(session, on_step=step)
            summary = run_summary(session.state, session.manager.store, session.identity.name, session.initial_cash, stopped)
        finally:
            session.close()
    return Replayed(summary, reports)


def routes_file(path: Path, port: int, kill_on: str | None = None, group_wait: str = "0s") -> Path:
    """A webhook ``hook`` taking every alert grouped by name (sent after ``group_wait``,
    changes after an hour); with ``kill_on``, that alert also goes to a kill-switch receiver first."""
    text = f'[[receivers]]\nname = "hook"\n[receivers.webhook]\nurl = "http://127.0.0.1:{port}/alerts"\n'
    if kill_on is not None:
        text += '[[receivers]]\nname = "kill"\n[receivers.kill_switch]\n'
    text += f'[route]\nreceiver = "hook"\ngroup_by = ["alertname"]\ngroup_wait = "{group_wait}"\ngroup_interval = "1h"\nrepeat_interval = "4h"\n'
    if kill_on is not None:
        text += f'[[route.routes]]\nmatchers = ["alertname={kill_on}"]\nreceiver = "kill"\ncontinue = true\n'
        text += '[[route.routes]]\nreceiver = "hook"\n'
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("bars") / "bars.duckdb")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, store_path: Path) -> Path:
    """A finished demo replay (no routes: its alerts stay in the outbox), read by reference tests."""
    root = tmp_path_factory.mktemp("demo")
    replay(parity_config(root), store_path, root / "run")
    return root / "run"


@pytest.fixture
def webhook() -> Iterator[tuple[WebhookLog, int]]:
    log = WebhookLog()
    server = serve_webhook(log)
    try:
        yield log, int(server.server_address[1])
    finally:
        server.shutdown()


def notifications(log: WebhookLog, alertname: str) -> list[dict[str, Any]]:
    return [p for p in log.payloads.values() if p["groupLabels"].get("alertname") == alertname]


def with_alerts(root: Path, **alerts: Any) -> AppConfig:
    config = parity_config(root)
    return replace(config, alerts=replace(config.alerts, **alerts))


def test_a_cost_spike_sends_one_grouped_alertmanager_notification(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path, store_path: Path, webhook: tuple[WebhookLog, int]
) -> None:
    log, port = webhook
    config = with_alerts(tmp_path, routes_file=routes_file(tmp_path / "routes.toml", port), cost_spike_ratio=0.0, cost_spike_min_excess_bps=-1e9)
    result = replay(config, store_path, tmp_path / "run", dsn=oms_database_url)
    assert result.summary.fills > 5
    [payload] = notifications(log, "ExecutionCostSpike")  # every spike of the run in one group, sent once
    assert payload["version"] == "4" and payload["status"] == "firing" and payload["receiver"] == "hook"
    assert payload["groupKey"].endswith('{alertname="ExecutionCostSpike"}')
    assert payload["commonLabels"]["alertname"] == "ExecutionCostSpike" and payload["commonLabels"]["severity"] == "warning"
    assert payload["externalURL"] == "" and payload["truncatedAlerts"] == 0
    alerts = payload["alerts"]
    assert {a["labels"]["scope"] for a in alerts} == {"fill", "day"}  # per fill and per day
    for alert in alerts:
        assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z" and len(alert["fingerprint"]) == 64
        assert "bps predicted" in alert["annotations"]["description"]
    assert log.received[payload["idempotencyKey"]] == 1
    assert Outbox(oms_store.engine).entries() == []  # delivered, nothing pending or failed


class FailingCalls:
    """Makes the broker's ``names`` raise BrokerError for the next ``times`` calls each."""

    def __init__(self, broker: object, names: tuple[str, ...], times: int = 1) -> None:
        self.left = {name: times for name in names}
        for name in names:
            original = getattr(broker, name)
            setattr(broker, name, self._failing(name, original))

    def _failing(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.left[name] > 0:
                self.left[name] -= 1
                raise BrokerError(f"connection refused (injected into {name})")
            return original(*args, **kwargs)

        return call


def test_a_critical_alert_to_a_kill_switch_halts_the_running_replay(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path, store_path: Path, webhook: tuple[WebhookLog, int]
) -> None:
    log, port = webhook
    config = with_alerts(
        tmp_path, routes_file=routes_file(tmp_path / "routes.toml", port, kill_on="BrokerUnreachable"),
        broker_unreachable_for_s=0.0, kill_switch_halt_on="BrokerUnreachable", kill_switch_reduce_on="", risk_denials_per_bar=0,
    )  # fmt: skip
    halted_at: list[StepReport] = []

    def on_step(session: TradingSession, report: StepReport) -> None:
        if len(halted_at) == 0 and report.cursor.orders > 0 and report.tick.trade:
            halted_at.append(report)
            FailingCalls(session.broker, ("list_open_orders",))  # the next poll cannot reach the broker

    result = replay(config, store_path, tmp_path / "run", on_step, dsn=oms_database_url)
    [before] = halted_at
    after = [r for r in result.reports if r.tick.bar_ts > before.tick.bar_ts]
    assert len(after) > 5 and all(r.orders == 0 for r in after)  # nothing sent from the failed poll on
    assert result.summary.orders == before.cursor.orders
    assert result.summary.denials_by_reason.get("trading_halted", 0) > 0 and result.summary.risk_denials > 0
    engine = oms_store.engine
    state = TradingStateStore(engine).get(config.risk.account)
    assert state.state is TradingState.HALTED and state.changed_by == "alert:BrokerUnreachable"
    with engine.connect() as connection:
        decided = [row[0] for row in connection.execute(select(intents.c.created_at))]
    assert len(decided) == before.cursor.orders  # not one intent written after the halt
    assert max(d if d.tzinfo else d.replace(tzinfo=UTC) for d in decided) <= utc_datetime(before.tick.bar_ts)
    assert notifications(log, "BrokerUnreachable") and notifications(log, "KillSwitchEngaged")
    [engaged] = notifications(log, "KillSwitchEngaged")
    assert engaged["alerts"][0]["annotations"]["cause"] == "BrokerUnreachable"
    [denied] = notifications(log, "RiskDenialsHigh")  # every order of the halted bars is denied
    assert denied["alerts"][0]["labels"]["account"] == config.risk.account


def test_a_step_over_its_budget_raises_an_slo_alert(tmp_path: Path, store_path: Path, webhook: tuple[WebhookLog, int]) -> None:
    log, port = webhook
    config = with_alerts(tmp_path, routes_file=routes_file(tmp_path / "routes.toml", port), step_budget_s=1e-9)
    replay(config, store_path, tmp_path / "run", end="2015-09-08")
    [payload] = notifications(log, "TradingStepOverBudget")
    [alert] = payload["alerts"]
    assert alert["labels"] == {"alertname": "TradingStepOverBudget", "severity": "warning", "loop": "replay"}
    assert float(alert["annotations"]["value"]) > 1e-9 and alert["annotations"]["threshold"] == "1e-09"


def test_an_unreachable_broker_on_send_raises_an_alert_and_the_run_recovers(
    tmp_path: Path, store_path: Path, webhook: tuple[WebhookLog, int]
) -> None:
    log, port = webhook
    config = with_alerts(tmp_path, routes_file=routes_file(tmp_path / "routes.toml", port), broker_unreachable_for_s=0.0, kill_switch_reduce_on="")
    failed: list[StepReport] = []

    def on_step(session: TradingSession, report: StepReport) -> None:
        if not failed and report.cursor.orders > 0:
            failed.append(report)
            FailingCalls(session.broker, ("submit", "get_order"))  # the next send's outcome is unknown

    result = replay(config, store_path, tmp_path / "run", on_step)
    [payload] = notifications(log, "BrokerUnreachable")
    [alert] = payload["alerts"]
    assert alert["labels"]["broker"] == "sim" and alert["labels"]["severity"] == "critical"
    assert "connection refused (injected into" in alert["annotations"]["description"]
    skipped = next(r for r in result.reports if r.tick.bar_ts > failed[0].tick.bar_ts)
    assert skipped.orders == 0  # that bar's decision was skipped, the run went on
    assert any(r.orders > 0 for r in result.reports if r.tick.bar_ts > skipped.tick.bar_ts)
    broker_orders = _broker_client_ids(tmp_path / "run")
    with create_engine(f"sqlite:///{tmp_path / 'run' / OMS_FILE}").connect() as connection:
        written = [str(row[0]) for row in connection.execute(select(intents.c.client_order_id))]
    # the written-ahead intent of the failed send reached the broker through the next poll's
    # reconciliation, under its own id: every intent is at the broker exactly once
    assert sorted(broker_orders) == sorted(written)


def _broker_client_ids(run_dir: Path) -> list[str]:
    from tests.runtime.replay_harness import outcome

    return outcome(run_dir, parity_config(run_dir)).broker_orders


@pytest.fixture
def two_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``MODEL`` trained and promoted twice: v2 current, v1 previous (ML ridge, lenient gate)."""
    for name, value in {
        "AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH": tmp_path / "keys" / "signing.key",
        "AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR": tmp_path / "keys" / "trusted",
        "AI_TRADING_ARTIFACTS__TRUST_STATE_PATH": tmp_path / "trust.json",
        "AI_TRADING_ARTIFACTS__REGISTRY_DIR": tmp_path / "registry",
        "AI_TRADING_DATA__DB_PATH": tmp_path / "bars.duckdb",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "lenient.toml").write_text(LENIENT)
    assert main(["keys", "generate"]) == 0
    assert main(["data", "generate", "--symbols", "6", "--bars", "600"]) == 0
    for version, end in enumerate(("2016-06-01", "2016-09-01"), start=1):
        if version > 1:
            time.sleep(1.0 - time.time() % 1.0 + 0.01)  # versions are seconds since the epoch
        train = ["ml", "train", "--name", MODEL, "--symbols", ML_SYMBOLS, "--start", "2015-01-01", "--end", end]
        assert main([*train, "--out", str(tmp_path / f"model-v{version}"), "--config", str(tmp_path / "lenient.toml")]) == 0
        assert main(["registry", "promote", str(tmp_path / f"model-v{version}"), "--config", str(tmp_path / "lenient.toml")]) == 0
    return tmp_path


def _ml_config(root: Path, **alerts: Any) -> AppConfig:
    config = replace(parity_config(root), artifacts=load_config().artifacts)
    return replace(config, alerts=replace(config.alerts, **alerts))


def _unrouted(run_dir: Path, alertname: str) -> list[dict[str, Any]]:
    """The outbox's pending notifications of ``alertname`` (no routes file: nothing sends them)."""
    entries = Outbox(create_engine(f"sqlite:///{run_dir / OMS_FILE}")).entries(("pending",))
    assert all(e.receiver == UNROUTED for e in entries)
    return [e.payload for e in entries if e.payload["groupLabels"].get("alertname") == alertname]


def _versions_by_bar(run_dir: Path) -> dict[int, set[str]]:
    from ai_trading.oms.idempotency import parse_client_order_id
    from ai_trading.runtime.run_state import RunState

    with RunState(run_dir, read_only=True) as state:
        log = state.execution_log().to_pylist()
    found: dict[int, set[str]] = {}
    for row in log:
        found.setdefault(int(row["decision_ts"]), set()).add(parse_client_order_id(str(row["client_order_id"])).version)
    return found


def test_a_rollback_from_another_process_switches_the_running_loop_at_its_next_bar(two_versions: Path) -> None:
    from ai_trading.artifacts.registry import ModelRegistry

    config = _ml_config(two_versions)
    before = ModelRegistry.from_config(config.artifacts).slots(MODEL)
    assert before.previous is not None
    rolled_after: list[int] = []

    def on_step(session: TradingSession, report: StepReport) -> None:
        if len(rolled_after) == 0 and report.orders > 0:
            rolled_after.append(report.tick.bar_ts)
            cli = Path(sys.executable).parent / "ai-trading"
            subprocess.run([str(cli), "registry", "rollback", MODEL], check=True, env=os.environ, capture_output=True)

    run_dir = two_versions / "run"
    result = replay(config, two_versions / "bars.duckdb", run_dir, on_step, model=MODEL, symbols=None, start=ML_START, end=ML_END)
    switches = ModelSwitches(run_dir).all()
    [switch] = switches
    next_bar = min(r.tick.bar_ts for r in result.reports if r.tick.bar_ts > rolled_after[0])
    assert switch.bar_ts == next_bar  # picked up at the very next bar, before deciding
    assert (switch.from_manifest, switch.to_manifest) == (before.current.manifest_sha256, before.previous.manifest_sha256)
    assert (switch.from_version, switch.to_version) == (str(before.current.version), str(before.previous.version))
    versions = _versions_by_bar(run_dir)
    assert {v for bar, vs in versions.items() if bar < next_bar for v in vs} == {str(before.current.version)}
    assert {v for bar, vs in versions.items() if bar >= next_bar for v in vs} == {str(before.previous.version)}
    [announced] = _unrouted(run_dir, SWITCHED_ALERT)
    assert f"v{before.previous.version}" in announced["alerts"][0]["annotations"]["summary"]


def test_a_live_breach_rolls_back_and_the_loop_trades_the_previous_model(two_versions: Path) -> None:
    from ai_trading.artifacts.registry import ModelRegistry

    config = _ml_config(two_versions, loop_auto_rollback=True, rollback_on="drawdown", rollback_window_bars=3, rollback_drawdown_multiple=1e-9)
    registry = ModelRegistry.from_config(config.artifacts)
    before = registry.slots(MODEL)
    assert before.previous is not None
    run_dir = two_versions / "run"
    replay(config, two_versions / "bars.duckdb", run_dir, model=MODEL, symbols=None, start=ML_START, end=ML_END)
    [switch] = ModelSwitches(run_dir).all()  # rolled back once; v2 is never restored
    assert (switch.from_manifest, switch.to_manifest) == (before.current.manifest_sha256, before.previous.manifest_sha256)
    assert registry.slots(MODEL).current.manifest_sha256 == before.previous.manifest_sha256
    audit = [json.loads(line) for line in registry.audit_path.read_text().splitlines()]
    rollbacks = [a for a in audit if a["action"] == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["by"] == "auto-rollback" and rollbacks[0]["reason"].startswith("drawdown: trailing 3-bar")
    [rolled] = _unrouted(run_dir, ROLLED_BACK_ALERT)
    assert rolled["alerts"][0]["labels"]["trigger"] == "drawdown"
    assert _unrouted(run_dir, SWITCHED_ALERT)


def test_the_feed_staleness_hook_fires_after_its_for_duration_and_engages_the_kill_switch(
    oms_store: IntentStore, tmp_path: Path, webhook: tuple[WebhookLog, int]
) -> None:
    from ai_trading.runtime.monitor import open_monitor
    from tests.monitoring.helpers import FakeClock

    log, port = webhook
    clock = FakeClock()
    routes = routes_file(tmp_path / "routes.toml", port, kill_on="MarketDataStale")
    alerts = AlertsConfig(routes_file=routes, data_staleness_grace_s=120.0, data_staleness_for_s=60.0)
    config = replace(AppConfig(), alerts=alerts)
    monitor = open_monitor(config, oms_store.engine, loop="live", broker="alpaca", clock=clock)
    states = TradingStateStore(oms_store.engine)
    monitor.data_staleness("alpaca-bars", 100.0)  # within the grace: not stale
    monitor.data_staleness("alpaca-bars", 130.0)  # stale: pending for 60 s
    clock.advance(59.0)
    monitor.data_staleness("alpaca-bars", 189.0)
    assert states.get(config.risk.account).state is TradingState.ACTIVE
    clock.advance(1.0)
    monitor.data_staleness("alpaca-bars", 190.0)  # has persisted 60 s: fires, the switch acts at once
    assert states.get(config.risk.account).state is TradingState.REDUCING
    monitor.close()
    [stale] = notifications(log, "MarketDataStale")
    assert stale["alerts"][0]["labels"]["feed"] == "alpaca-bars" and stale["alerts"][0]["labels"]["severity"] == "critical"
    assert notifications(log, "KillSwitchEngaged")


def test_delivery_never_blocks_a_step_and_shutdown_delivers_what_waits(oms_store: IntentStore, tmp_path: Path) -> None:
    from ai_trading.runtime.monitor import open_monitor
    from tests.monitoring.helpers import FakeClock

    log = WebhookLog(behaviours=["slow"], slow_s=1.0)
    server = serve_webhook(log)
    try:
        port = int(server.server_address[1])
        routes = routes_file(tmp_path / "routes.toml", port, group_wait="30s")
        clock = FakeClock()
        config = replace(AppConfig(), alerts=AlertsConfig(routes_file=routes, step_budget_s=0.5))
        monitor = open_monitor(config, oms_store.engine, loop="replay", broker="sim", clock=clock)
        monitor.step_took(2.0)
        clock.advance(30.0)
        started = time.perf_counter()
        monitor.pump()  # queues the group and starts a delivery pass to the slow receiver
        monitor.step_took(0.1)  # resolves
        monitor.pump()
        assert time.perf_counter() - started < 0.5  # the 1 s answer is not waited for
        monitor.broker(BrokerError("refused"))  # pending: broker_unreachable_for_s is 30 s
        clock.advance(30.0)
        monitor.broker(BrokerError("refused"))  # fires; its group waits 30 s
        monitor.close()  # waits for the slow pass, then queues and delivers the waiting group
    finally:
        server.shutdown()
    assert [p["alerts"][0]["labels"]["alertname"] for p in notifications(log, "TradingStepOverBudget")] == ["TradingStepOverBudget"]
    [unreachable] = notifications(log, "BrokerUnreachable")
    assert unreachable["alerts"][0]["annotations"]["description"] == "sim unreachable: refused"
    assert Outbox(oms_store.engine).entries() == []


def test_cost_observations_equal_a_plain_python_reference(demo_run: Path) -> None:
    from ai_trading.runtime.monitor import cost_observations
    from ai_trading.runtime.run_state import RunState

    with RunState(demo_run, read_only=True) as state:
        fills = state.query("SELECT * FROM applied_fills ORDER BY oms_fill_id").to_pylist()
        orders = {o["client_order_id"]: o for o in state.query("SELECT * FROM orders").to_pylist()}
        log = state.execution_log().to_pylist()
        cut = fills[len(fills) // 2]["oms_fill_id"]
        observed = cost_observations(state, cut)
    new = [f for f in fills if f["oms_fill_id"] > cut and f["mid"] is not None and f["mid"] > 0]
    expected_fills = [
        (f["symbol"], f["side"] * (f["price"] - f["mid"]) / f["mid"] * 1e4, orders[f["client_order_id"]]["expected_cost_bps"]) for f in new
    ]
    got_fills = [(o.symbol, o.realized_bps, o.predicted_bps) for o in observed if o.scope == "fill"]
    assert len(got_fills) == len(expected_fills) > 0
    for got, want in zip(got_fills, expected_fills, strict=True):
        assert got[0] == want[0] and got[1] == pytest.approx(want[1], abs=1e-9) and got[2] == pytest.approx(want[2])
    days = sorted({str(orders[f["client_order_id"]]["decision_ts"] // 86_400_000_000_000) for f in new})
    expected_days = []
    for day in days:
        rows = [r for r in log if str(r["decision_ts"] // 86_400_000_000_000) == day and r["filled_qty"] > 0 and r["arrival_price"] is not None]
        notional = sum(r["filled_qty"] * r["avg_price"] for r in rows)
        realized = sum(r["slippage_bps_arrival"] * r["filled_qty"] * r["avg_price"] for r in rows) / notional
        predicted = sum(r["expected_cost_bps"] * r["filled_qty"] * r["avg_price"] for r in rows) / notional
        expected_days.append((realized, predicted))
    got_days = [(o.realized_bps, o.predicted_bps) for o in observed if o.scope == "day"]
    assert len(got_days) == len(expected_days) > 0
    np.testing.assert_allclose(np.array(got_days), np.array(expected_days), rtol=1e-12)


def test_tca_day_rows_are_the_day_table_rows_of_those_days(demo_run: Path) -> None:
    from ai_trading.runtime.run_state import RunState
    from ai_trading.runtime.tca import NS_PER_DAY, day_rows, tca_tables

    with RunState(demo_run, read_only=True) as state:
        table = tca_tables(state)["day"]
        decisions = sorted(set(state.query("SELECT decision_ts FROM orders").column("decision_ts").to_pylist()))
        picked = decisions[::5] + [decisions[-1] + 3 * NS_PER_DAY]  # a day without orders has no row
        got = day_rows(state, picked)
    days = {str(np.datetime64(ts // NS_PER_DAY, "D")) for ts in picked}
    expected = [row for row in table if row["day"] in days]
    assert [row["day"] for row in got] == [row["day"] for row in expected] and len(got) > 3
    for got_row, want in zip(got, expected, strict=True):
        assert got_row.pop("day") == want.pop("day") and got_row == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(("since_index", "last"), [(None, 5), (3, 4), (10, 100), (19, 3)])
def test_the_live_returns_window_equals_a_plain_python_reference(demo_run: Path, since_index: int | None, last: int) -> None:
    from ai_trading.runtime.model_watch import returns_since
    from ai_trading.runtime.run_state import RunState

    with RunState(demo_run, read_only=True) as state:
        curve = state.equity_curve().to_pylist()
        since = None if since_index is None else curve[since_index]["bar_ts"]
        got = returns_since(state, since, last)
    equity = [row["equity"] for row in curve if since is None or row["bar_ts"] >= since]
    expected = [b / a - 1.0 for a, b in itertools.pairwise(equity)][-last:]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert len(got) == min(last, len(equity) - 1)


def test_reconciliation_mismatches_and_the_reject_rate_are_recorded_without_a_routes_file(oms_store: IntentStore) -> None:
    from decimal import Decimal

    from ai_trading.oms.reconcile import Issue, PositionMismatch, ReconciliationReport
    from ai_trading.runtime.monitor import open_monitor
    from tests.monitoring.helpers import START, FakeClock

    clock = FakeClock()
    alerts = AlertsConfig(reject_rate_min_orders=20, reject_rate_window_orders=25, max_reject_rate=0.1, reject_rate_for_s=60.0)
    monitor = open_monitor(replace(AppConfig(), alerts=alerts), oms_store.engine, loop="live", broker="alpaca", clock=clock)
    report = ReconciliationReport(started_at=START)
    report.position_mismatches.append(PositionMismatch("SYN01", Decimal(10), Decimal(7)))
    report.issues.append(Issue("missing_at_broker", "CIDv2:x", "the broker does not know it"))
    monitor.reconciliation(report)  # reconcile_for_s = 0: fires at once
    monitor.orders(20, 0)
    monitor.orders(5, 3)  # 3 of the last 25 orders: 12 % > 10 %, pending for 60 s
    clock.advance(60.0)
    monitor.orders(0, 0)  # still 3 of 25: fires
    clock.advance(30.0)
    monitor.pump()  # group_wait (30 s) is over: both groups are queued
    monitor.orders(30, 0)  # the window holds the last 25 only: 0 %, resolved
    monitor.close()
    entries = Outbox(oms_store.engine).entries(("pending",))
    assert {e.receiver for e in entries} == {UNROUTED}
    by_name = {e.payload["groupLabels"]["alertname"]: e.payload for e in entries}
    mismatch = {a["labels"]["check"] for a in by_name["OmsReconciliationMismatch"]["alerts"]}
    assert mismatch == {"position", "missing_at_broker"}
    [rate] = by_name["OrderRejectRateHigh"]["alerts"]
    assert rate["annotations"]["value"] == "0.12" and rate["labels"]["account"] == AppConfig().risk.account
    assert TradingStateStore(oms_store.engine).get(AppConfig().risk.account).state is TradingState.ACTIVE  # no kill-switch route


def test_a_run_that_switched_model_resumes_and_a_change_while_stopped_is_recorded(two_versions: Path) -> None:
    """Crash-only with a registry-named model: after a switch, the restarted run resumes
    on the model it last traded; a rollback while it was stopped is taken up at the start
    and recorded as a switch, like one at a bar."""
    from ai_trading.artifacts.registry import ModelRegistry

    config = _ml_config(two_versions)
    slots = ModelRegistry.from_config(config.artifacts).slots(MODEL)
    run_dir = two_versions / "run"
    cli = [str(Path(sys.executable).parent / "ai-trading"), "registry", "rollback", MODEL]
    bars: list[int] = []

    def stop_after_a_switch(session: TradingSession, report: StepReport) -> None:
        bars.append(report.tick.bar_ts)
        if len(bars) == 3:
            subprocess.run(cli, check=True, env=os.environ, capture_output=True)
        if len(bars) == 6:
            raise KeyboardInterrupt  # the process dies mid-run

    with pytest.raises(KeyboardInterrupt):
        replay(config, two_versions / "bars.duckdb", run_dir, stop_after_a_switch, model=MODEL, symbols=None, start=ML_START, end=ML_END)
    [first] = ModelSwitches(run_dir).all()
    assert first.to_manifest == slots.previous.manifest_sha256
    subprocess.run(cli, check=True, env=os.environ, capture_output=True)  # back to the current one while stopped
    replay(config, two_versions / "bars.duckdb", run_dir, model=MODEL, symbols=None, start=ML_START, end=ML_END)
    switches = ModelSwitches(run_dir).all()
    assert [s.to_manifest for s in switches] == [slots.previous.manifest_sha256, slots.current.manifest_sha256]
    assert switches[1].from_manifest == slots.previous.manifest_sha256 and switches[1].bar_ts == bars[-1]  # the last bar finished before the stop
