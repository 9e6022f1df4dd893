"""Routing, grouping, timing, dedup, resolved notifications, inhibition and silences, on a fake clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ai_trading.config import AlertsConfig
from ai_trading.errors import ConfigError
from ai_trading.monitoring.alerts import Alert, Severity
from ai_trading.monitoring.dispatcher import Dispatcher, Notification
from ai_trading.monitoring.matchers import Matcher
from ai_trading.monitoring.routing import RoutingConfig, parse_duration, parse_routing
from ai_trading.monitoring.silences import Silence
from tests.monitoring.helpers import FakeClock

WAIT, INTERVAL, REPEAT = 30, 300, 3600


def routing(**root: Any) -> RoutingConfig:
    document = {
        "route": {"receiver": "hook", "group_by": ["alertname", "account"], "group_wait": f"{WAIT}s",
                  "group_interval": f"{INTERVAL}s", "repeat_interval": f"{REPEAT}s", **root},
        "receivers": [
            {"name": "hook", "webhook": {"url": "http://127.0.0.1:1/hook"}},
            {"name": "pager", "webhook": {"url": "http://127.0.0.1:1/pager", "send_resolved": False}},
            {"name": "mail", "email": {"to": "ops@example.com", "from": "bot@example.com", "host": "127.0.0.1", "port": 25}},
        ],
        "inhibit_rules": [{"source_matchers": ["severity=critical"], "target_matchers": ["severity=warning"], "equal": ["account"]}],
    }  # fmt: skip
    return parse_routing(document, AlertsConfig(), "test")


def alert(clock: FakeClock, name: str = "CostSpike", severity: Severity = Severity.WARNING, **labels: str) -> Alert:
    return Alert(name, severity, {"account": "a1", **labels}, {"summary": name}, clock())


class Harness:
    def __init__(self, config: RoutingConfig, silences: list[Silence] | None = None) -> None:
        self.clock = FakeClock()
        self.sent: list[Notification] = []
        self.silences = silences if silences is not None else []
        self.dispatcher = Dispatcher(config, self.sent.append, self.clock, lambda now: self.silences, "http://trading.example")

    def at(self, seconds: float) -> list[Notification]:
        """Move to ``seconds`` after the start and flush what is due."""
        self.clock.now = self.clock.now.replace(hour=14, minute=30, second=0) + timedelta(seconds=seconds)
        return self.dispatcher.tick()


def fingerprints(notification: Notification) -> list[tuple[str, str]]:
    return [(a["labels"]["symbol"], a["status"]) for a in notification.payload["alerts"]]


def test_group_wait_then_one_grouped_notification_with_the_alertmanager_payload() -> None:
    h = Harness(routing())
    h.dispatcher.receive([alert(h.clock, symbol="AAA"), alert(h.clock, symbol="BBB"), alert(h.clock, account="a2", symbol="CCC")])
    assert h.at(WAIT - 1) == []
    sent = h.at(WAIT)
    assert len(sent) == 2  # grouped by (alertname, account): a1 holds two alerts, a2 one
    a1 = next(n for n in sent if n.payload["groupLabels"]["account"] == "a1")
    p = a1.payload
    assert (p["version"], p["status"], p["receiver"], p["truncatedAlerts"], p["externalURL"]) == ("4", "firing", "hook", 0, "http://trading.example")
    assert p["groupLabels"] == {"account": "a1", "alertname": "CostSpike"}
    assert p["commonLabels"] == {"account": "a1", "alertname": "CostSpike", "severity": "warning"}
    assert p["commonAnnotations"] == {"summary": "CostSpike"}
    assert p["groupKey"] == 'root/{}:{account="a1",alertname="CostSpike"}'
    assert sorted(fingerprints(a1)) == [("AAA", "firing"), ("BBB", "firing")]
    assert set(p["alerts"][0]) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert p["idempotencyKey"] == a1.idempotency_key and len(a1.idempotency_key) == 64


def test_flush_sends_the_groups_in_their_wait_and_keeps_group_interval() -> None:
    h = Harness(routing())
    h.dispatcher.receive([alert(h.clock, symbol="AAA"), alert(h.clock, account="a2", symbol="BBB")])
    h.at(1)
    assert h.dispatcher.tick() == []  # both groups are still in their group_wait
    flushed = h.dispatcher.flush()
    assert sorted(n.payload["groupLabels"]["account"] for n in flushed) == ["a1", "a2"] and h.sent == flushed
    assert h.dispatcher.flush() == []  # nothing changed: nothing to say again
    h.dispatcher.receive([alert(h.clock, symbol="CCC")])
    assert h.dispatcher.flush() == []  # a notified group keeps its group_interval
    assert h.at(1 + INTERVAL - 1) == []
    [update] = h.at(1 + INTERVAL)
    assert sorted(fingerprints(update)) == [("AAA", "firing"), ("CCC", "firing")]


def test_group_interval_batches_changes_and_repeat_interval_repeats_unchanged() -> None:
    h = Harness(routing())
    h.dispatcher.receive([alert(h.clock, symbol="AAA")])
    assert len(h.at(WAIT)) == 1
    h.dispatcher.receive([alert(h.clock, symbol="BBB")])  # a new alert joins the group
    assert h.at(WAIT + INTERVAL - 1) == []  # waits for group_interval
    [update] = h.at(WAIT + INTERVAL)
    assert sorted(fingerprints(update)) == [("AAA", "firing"), ("BBB", "firing")]
    for k in range(2, REPEAT // INTERVAL + 1):  # unchanged: nothing until repeat_interval has passed
        h.dispatcher.receive([alert(h.clock, symbol="AAA"), alert(h.clock, symbol="BBB")])
        assert h.at(WAIT + k * INTERVAL) == [], k
    [repeat] = h.at(WAIT + (REPEAT // INTERVAL + 1) * INTERVAL)
    assert repeat.idempotency_key not in (update.idempotency_key,)
    assert len(h.sent) == 3


def test_the_same_alert_received_again_is_deduplicated_by_fingerprint() -> None:
    h = Harness(routing())
    first = alert(h.clock, symbol="AAA")
    h.clock.advance(5)
    h.dispatcher.receive([first, alert(h.clock, symbol="AAA"), alert(h.clock, symbol="AAA")])
    [sent] = h.at(5 + WAIT)  # group_wait counts from when the group was created
    assert len(sent.payload["alerts"]) == 1
    assert sent.payload["alerts"][0]["startsAt"] == "2026-01-05T14:30:00Z"  # the earliest start is kept


def test_resolved_notifications_follow_send_resolved() -> None:
    config = routing(routes=[{"matchers": ["team=pager"], "receiver": "pager"}])
    h = Harness(config)
    hook_alert, pager_alert = alert(h.clock, symbol="AAA"), alert(h.clock, symbol="BBB", team="pager")
    h.dispatcher.receive([hook_alert, pager_alert])
    assert {n.receiver for n in h.at(WAIT)} == {"hook", "pager"}
    h.dispatcher.receive([hook_alert.resolved(h.clock.now + timedelta(seconds=60)), pager_alert.resolved(h.clock.now + timedelta(seconds=60))])
    [resolved] = h.at(WAIT + INTERVAL)  # the pager receiver does not send resolved notifications
    assert (resolved.receiver, resolved.payload["status"], fingerprints(resolved)) == ("hook", "resolved", [("AAA", "resolved")])
    assert resolved.payload["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert h.at(WAIT + 10 * INTERVAL) == []  # resolved alerts left their groups: nothing repeats


def test_fired_and_resolved_between_flushes_is_never_sent() -> None:
    h = Harness(routing())
    a = alert(h.clock, symbol="AAA")
    h.dispatcher.receive([a, a.resolved(h.clock.now + timedelta(seconds=10))])
    assert h.at(WAIT) == [] and h.at(WAIT + INTERVAL) == []


def test_routing_tree_first_match_continue_and_fallback() -> None:
    config = routing(routes=[
        {"matchers": ["severity=critical"], "receiver": "pager", "continue": True},
        {"matchers": ["alertname=~Oms.*"], "receiver": "mail", "group_by": ["..."]},
        {"matchers": ["alertname=~Oms.*"], "receiver": "hook"},
    ])  # fmt: skip
    root = config.route
    assert [r.receiver for r in root.match({"alertname": "OmsReconciliationMismatch", "severity": "critical"})] == ["pager", "mail"]
    assert [r.receiver for r in root.match({"alertname": "OmsX", "severity": "warning"})] == ["mail"]
    assert [r.receiver for r in root.match({"alertname": "CostSpike", "severity": "warning"})] == ["hook"]
    assert root.routes[1].group_by is None and root.routes[0].group_by == ("alertname", "account")  # inherited
    assert root.routes[0].group_wait_s == WAIT


def test_inhibition_a_critical_alert_mutes_the_warnings_of_its_account() -> None:
    h = Harness(routing(group_by=["account"]))
    h.dispatcher.receive([
        alert(h.clock, "Halt", Severity.CRITICAL, symbol="*"), alert(h.clock, symbol="AAA"),
        alert(h.clock, account="a2", symbol="BBB"),
    ])  # fmt: skip
    sent = {n.payload["groupLabels"]["account"]: n for n in h.at(WAIT)}
    assert [a["labels"]["alertname"] for a in sent["a1"].payload["alerts"]] == ["Halt"]  # a1's warning is muted
    assert fingerprints(sent["a2"]) == [("BBB", "firing")]  # another account's warning is not


def test_silence_mutes_until_it_expires() -> None:
    h = Harness(routing())
    silence = Silence("s1", (Matcher.parse("symbol=~A.*"),), "ops", "maintenance", h.clock.now, h.clock.now + timedelta(seconds=WAIT + INTERVAL + 1))
    h.silences.append(silence)
    h.dispatcher.receive([alert(h.clock, symbol="AAA")])
    assert h.at(WAIT) == [] and h.at(WAIT + INTERVAL) == []
    [after] = h.at(WAIT + 2 * INTERVAL)  # expired: the alert, still firing, is notified
    assert fingerprints(after) == [("AAA", "firing")]


MATCHER_CASES = [
    ("team=ops", {"team": "ops"}, True), ("team=ops", {}, False), ('team=""', {}, True), ("team!=ops", {"team": "dev"}, True),
    ("alertname=~Oms.*", {"alertname": "OmsX"}, True), ("alertname=~Oms", {"alertname": "OmsX"}, False),
    ("alertname!~Oms.*", {"alertname": "Cost"}, True), ('summary="a, b"', {"summary": "a, b"}, True),
]  # fmt: skip


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHER_CASES)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Matcher.parse(text).matches(labels) is expected


BAD_ROUTING = [
    ({"route": {"receiver": "nobody"}}, "receiver 'nobody' is not defined"),
    ({"route": {"receiver": "hook", "matchers": ["a=b"]}}, "root .* takes no matchers"),
    ({"route": {"receiver": "hook", "group_wait": "soon"}}, "not a duration"),
    ({"route": {"receiver": "hook", "routes": [{"matchers": ["a=~("]}]}}, "not a regular expression"),
    ({"route": {"receiver": "hook", "grup_by": []}}, "unknown key"),
]


@pytest.mark.parametrize(("document", "message"), BAD_ROUTING)
def test_bad_routing_files_are_refused_with_the_reason(document: dict[str, Any], message: str) -> None:
    receivers = [{"name": "hook", "webhook": {"url": "http://127.0.0.1:1/"}}]
    with pytest.raises(ConfigError, match=message):
        parse_routing({**document, "receivers": receivers}, AlertsConfig(), "test")


def test_durations() -> None:
    assert [parse_duration(t, "x") for t in ("30s", "5m", "1h30m", "2d", 45, "250ms")] == [30, 300, 5400, 172800, 45, 0.25]
    with pytest.raises(ConfigError):
        parse_duration("5 minutes", "x")


def test_example_routes_file_loads() -> None:
    from pathlib import Path

    from ai_trading.monitoring.routing import load_routing

    config = load_routing(Path(__file__).resolve().parents[2] / "examples" / "alerts.toml", AlertsConfig())
    assert config.route.routes and config.inhibit_rules and set(config.receivers) >= {"oncall-webhook", "ops-email"}
