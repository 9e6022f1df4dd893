"""The outbox and the delivery worker against a local webhook server, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import random

import pytest
from sqlalchemy import select

from ai_trading.config import AlertsConfig
from ai_trading.monitoring.alerts import Alert, Severity
from ai_trading.monitoring.dispatcher import Notification, build_notification
from ai_trading.monitoring.outbox import DELIVERY_REJECTED_ALERT, DeliveryWorker, Outbox
from ai_trading.monitoring.receivers import (
    WebhookReceiver,
    WebhookSpec,
    build_receiver,
    parse_receiver,
)
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.schema import alert_notifications
from tests.monitoring.helpers import FakeClock, WebhookLog, free_port, serve_webhook

CONFIG = AlertsConfig(receiver_timeout_s=0.5, delivery_backoff_base_s=1.0, delivery_backoff_max_s=60.0, delivery_max_attempts=12)
TOKEN = "s3cret-token-value"


def notifications(clock: FakeClock, n: int, receiver: str = "hook") -> list[Notification]:
    alerts = [Alert("CostSpike", Severity.WARNING, {"symbol": f"S{i}"}, {"summary": "x"}, clock()) for i in range(n)]
    return [build_notification(receiver, f"g{i}", {"symbol": f"S{i}"}, [a], clock(), "") for i, a in enumerate(alerts)]


def drain(worker: DeliveryWorker, clock: FakeClock, rounds: int = 30) -> int:
    """Run the worker until nothing is pending; returns the passes needed."""
    for done in range(1, rounds + 1):
        worker.run_once()
        if not worker._outbox.entries(["pending"]):
            return done
        clock.advance(CONFIG.delivery_backoff_max_s)
    raise AssertionError("the outbox did not empty")


def test_webhook_500_timeout_slow_refused_then_recovered_delivers_each_once(oms_store: IntentStore) -> None:
    clock = FakeClock()
    outbox = Outbox(oms_store.engine, clock)
    queued = notifications(clock, 6)
    assert all(outbox.enqueue(n) for n in queued)
    assert not outbox.enqueue(queued[0])  # the same key is stored once
    port = free_port()
    receiver = WebhookReceiver("hook", WebhookSpec(f"http://127.0.0.1:{port}/hook"), CONFIG.receiver_timeout_s, TOKEN)
    worker = DeliveryWorker(outbox, {"hook": receiver}, CONFIG, random.Random(1), clock)

    refused = worker.run_once()  # nothing listens on the port yet: connection refused
    assert len(refused.retried) == 6 and refused.delivered == []
    log = WebhookLog(behaviours=["500", "timeout", "slow", "500", "timeout", "ok", "slow"], hang_s=1.0)
    server = serve_webhook(log, port)
    try:
        clock.advance(CONFIG.delivery_backoff_max_s)
        drain(worker, clock)
    finally:
        server.shutdown()
    keys = {n.idempotency_key for n in queued}
    assert log.unique_accepted() == keys  # every notification reached the receiver...
    assert set(log.accepted.values()) == {1}  # ...and was accepted once per key
    assert any(count > 1 for count in log.received.values())  # timeouts made the worker resend under the same key
    assert outbox.entries() == []  # nothing pending or failed
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h in log.headers)
    assert all(log.payloads[k]["idempotencyKey"] == k for k in keys)


def test_4xx_is_not_retried_and_raises_a_local_alert(oms_store: IntentStore) -> None:
    clock = FakeClock()
    outbox = Outbox(oms_store.engine, clock)
    [queued] = notifications(clock, 1)
    outbox.enqueue(queued)
    log = WebhookLog(behaviours=["400", "ok"])
    server = serve_webhook(log)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        worker = DeliveryWorker(outbox, {"hook": WebhookReceiver("hook", WebhookSpec(url), 1.0)}, CONFIG, random.Random(0), clock)
        report = worker.run_once()
        clock.advance(3600)
        again = worker.run_once()
    finally:
        server.shutdown()
    assert report.failed == [queued.idempotency_key] and again.failed == again.delivered == []
    assert sum(log.received.values()) == 1  # never sent twice
    [local] = report.alerts
    assert (local.name, local.severity, local.labels["receiver"]) == (DELIVERY_REJECTED_ALERT, Severity.CRITICAL, "hook")
    assert "HTTP 400" in local.annotations["description"]
    [failed] = outbox.entries()
    assert (failed.status, failed.attempts) == ("failed", 1)


def test_retries_stop_after_max_attempts_with_a_local_alert(oms_store: IntentStore) -> None:
    clock = FakeClock()
    config = AlertsConfig(delivery_max_attempts=3, receiver_timeout_s=0.2)
    outbox = Outbox(oms_store.engine, clock)
    outbox.enqueue(notifications(clock, 1)[0])
    receiver = WebhookReceiver("hook", WebhookSpec(f"http://127.0.0.1:{free_port()}/"), 0.2)
    worker = DeliveryWorker(outbox, {"hook": receiver}, config, random.Random(0), clock)
    reports = []
    for _ in range(5):
        reports.append(worker.run_once())
        clock.advance(config.delivery_backoff_max_s)
    assert [len(r.retried) for r in reports] == [1, 1, 0, 0, 0] and len(reports[2].failed) == 1
    assert reports[2].alerts[0].name == DELIVERY_REJECTED_ALERT


def test_backoff_is_exponential_with_full_jitter() -> None:
    worker = DeliveryWorker.__new__(DeliveryWorker)
    worker._config, worker._rng = AlertsConfig(delivery_backoff_base_s=2.0, delivery_backoff_max_s=100.0), random.Random(3)
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (4, 16.0), (10, 100.0)]:
        draws = [worker.backoff_s(attempts) for _ in range(2000)]
        assert 0.0 <= min(draws) and max(draws) <= ceiling
        assert max(draws) > 0.9 * ceiling and min(draws) < 0.1 * ceiling  # spread over the whole range


def test_a_lease_is_owned_by_one_worker_until_it_runs_out(oms_store: IntentStore) -> None:
    clock = FakeClock()
    first, second = Outbox(oms_store.engine, clock), Outbox(oms_store.engine, clock)
    first.enqueue(notifications(clock, 1)[0])
    [claimed] = first.claim(["hook"], 10, lease_s=60)
    assert second.claim(["hook"], 10, lease_s=60) == []  # leased
    clock.advance(61)
    [reclaimed] = second.claim(["hook"], 10, lease_s=60)  # the first worker is presumed dead
    assert reclaimed.idempotency_key == claimed.idempotency_key and reclaimed.attempts == 2
    assert not first.finish(claimed, "delivered", error=None)  # its lease was lost: its outcome does not count
    assert second.finish(reclaimed, "delivered", error=None)
    assert first.entries() == []
    assert first.claim(["other"], 10, 60) == []


def test_secrets_never_reach_the_outbox_or_the_logs(
    oms_store: IntentStore, tmp_path: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    outbox = Outbox(oms_store.engine, clock)
    token_file = tmp_path / "token"  # type: ignore[operator]
    token_file.write_text(TOKEN + "\n")
    log = WebhookLog(behaviours=["500", "400"])
    server = serve_webhook(log)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        spec = parse_receiver({"name": "hook", "webhook": {"url": url, "bearer_token_file": str(token_file)}}, "test")
        receiver = build_receiver(spec, 1.0, environ={})
        assert TOKEN not in repr(receiver)
        worker = DeliveryWorker(outbox, {"hook": receiver}, CONFIG, random.Random(0), clock)
        for n in notifications(clock, 2):
            outbox.enqueue(n)
        report = worker.run_once()
    finally:
        server.shutdown()
    assert len(report.retried) == 1 and len(report.failed) == 1
    assert log.headers[0]["Authorization"] == f"Bearer {TOKEN}"  # it was used on the wire
    with oms_store.engine.connect() as connection:
        rows = [tuple(str(v) for v in row) for row in connection.execute(select(alert_notifications))]
    assert rows and not any(TOKEN in value or url in value for row in rows for value in row)
    assert TOKEN not in caplog.text and all(TOKEN not in str(r.__dict__) for r in caplog.records)
    assert TOKEN not in str([a.annotations for a in report.alerts])


def test_missing_secret_is_a_clear_error() -> None:
    from ai_trading.errors import ConfigError

    spec = parse_receiver({"name": "hook", "webhook": {"url": "https://x", "bearer_token_env": "NO_SUCH_VAR"}}, "test")
    with pytest.raises(ConfigError, match="environment variable NO_SUCH_VAR is not set"):
        build_receiver(spec, 1.0, environ={})
