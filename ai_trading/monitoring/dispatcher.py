"""Groups alerts by route and hands due notifications to the outbox, Alertmanager-style.

:meth:`Dispatcher.receive` takes alerts from the rules; each alert joins one group per
route that takes it (group key: the route and the values of its ``group_by`` labels),
deduplicated by fingerprint (a repeated alert updates its entry). :meth:`Dispatcher.tick`
flushes every group that is due: a new group ``group_wait`` after it was created, then
every ``group_interval``. A flush drops silenced and inhibited alerts and notifies the
route's receiver only when

- an alert fires that the last notification did not carry (or nothing was sent yet),
- every alert the receiver was told about has resolved (with ``send_resolved``, the
  resolved alerts are sent; without it nothing is, but the log is cleared),
- with ``send_resolved``, an alert resolved that was not reported resolved yet, or
- nothing changed but ``repeat_interval`` has passed since the last notification.

Resolved alerts leave their group once flushed; an empty group is dropped. Every
notification goes to ``sink`` (the outbox) with an idempotency key derived from its
content and the flush time, so the same flush enqueued twice is one notification.

Receivers that act rather than notify (the kill switch) are given as ``actions``: a
firing alert routed to one is handed to its action at once in :meth:`Dispatcher.receive`
(no group wait, no outbox; a silence still mutes it), and the alerts the action returns
(``KillSwitchEngaged``) are received in turn, so they reach people through the outbox.
:meth:`Dispatcher.flush` also flushes the groups still in their ``group_wait``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ai_trading.errors import ConfigError
from ai_trading.monitoring.alerts import Alert, AlertStatus, Clock, iso
from ai_trading.monitoring.routing import Route, RoutingConfig
from ai_trading.monitoring.silences import Silence

logger = logging.getLogger(__name__)

PAYLOAD_VERSION = "4"


@dataclass(frozen=True)
class Notification:
    """One message to one receiver: the Alertmanager webhook payload and its key."""

    receiver: str
    group_key: str
    idempotency_key: str
    payload: Mapping[str, Any]


@dataclass
class _Group:
    route: Route
    key: str
    labels: dict[str, str]
    next_flush: datetime
    alerts: dict[str, Alert] = field(default_factory=dict)
    waiting: bool = True  # in its group_wait: never flushed yet


@dataclass(frozen=True)
class _Sent:
    firing: frozenset[str]
    resolved: frozenset[str]
    at: datetime


class Dispatcher:
    """See the module docstring.

    :param routing: the routing tree, receivers and inhibition rules
    :param sink: takes every notification (``Outbox.enqueue``)
    :param clock: current UTC time
    :param silences: the silences in force at a moment (``SilenceStore.active``)
    :param external_url: sent as ``externalURL``
    :param actions: per kill-switch receiver name, what to do with a firing alert routed to
        it; returns the alerts it raises in consequence
    """

    def __init__(
        self,
        routing: RoutingConfig,
        sink: Callable[[Notification], object],
        clock: Clock,
        silences: Callable[[datetime], Sequence[Silence]] = lambda now: (),
        external_url: str = "",
        actions: Mapping[str, Callable[[Alert], Sequence[Alert]]] | None = None,
    ) -> None:
        self._actions = dict(actions or {})
        acting = {name for name, spec in routing.receivers.items() if spec.kill_switch is not None}
        if acting != set(self._actions):
            raise ConfigError(
                f"kill-switch receivers {sorted(acting)} need exactly one action each, got actions for {sorted(self._actions)}"
            )
        self._routing = routing
        self._sink = sink
        self._clock = clock
        self._silences = silences
        self._external_url = external_url
        self._groups: dict[str, _Group] = {}
        self._sent: dict[tuple[str, str], _Sent] = {}

    def receive(self, alerts: Iterable[Alert]) -> None:
        now = self._clock()
        consequences: list[Alert] = []
        for alert in alerts:
            for route in self._routing.route.match(alert.labels):
                action = self._actions.get(route.receiver)
                if action is not None:
                    if alert.status_at(now) is AlertStatus.FIRING and not any(s.is_active(now) and s.mutes(alert.labels) for s in self._silences(now)):
                        consequences.extend(action(alert))
                    continue
                key = route.group_key(alert.labels)
                group = self._groups.get(key)
                if group is None:
                    if alert.status_at(now) is AlertStatus.RESOLVED:
                        continue  # nobody was told it fired
                    group = self._groups[key] = _Group(
                        route, key, route.group_labels(alert.labels), now + timedelta(seconds=route.group_wait_s)
                    )
                known = group.alerts.get(alert.fingerprint)
                if known is not None and known.status_at(now) is AlertStatus.FIRING and known.starts_at < alert.starts_at:
                    alert = Alert(alert.name, alert.severity, alert.labels, alert.annotations, known.starts_at, alert.ends_at, alert.generator_url)
                group.alerts[alert.fingerprint] = alert
        if consequences:
            self.receive(consequences)

    def tick(self) -> list[Notification]:
        """Flush every due group; returns the notifications handed to the sink."""
        now = self._clock()
        return self._flush_groups([group for group in self._groups.values() if group.next_flush <= now], now)

    def flush(self) -> list[Notification]:
        """Flush every due group and every group still in its ``group_wait``, now (a
        process about to end, a command that runs once): what was received reaches the
        sink instead of being lost with the process. A group already notified keeps its
        ``group_interval``, as it would in a running process."""
        now = self._clock()
        return self._flush_groups([group for group in self._groups.values() if group.waiting or group.next_flush <= now], now)

    def _flush_groups(self, groups: Sequence[_Group], now: datetime) -> list[Notification]:
        if not groups:
            return []
        silences = [s for s in self._silences(now) if s.is_active(now)]
        firing = {a.fingerprint: a for g in self._groups.values() for a in g.alerts.values() if a.status_at(now) is AlertStatus.FIRING}
        sent = []
        for group in sorted(groups, key=lambda g: g.key):
            notification = self._flush(group, now, silences, list(firing.values()))
            if notification is not None:
                self._sink(notification)
                sent.append(notification)
                logger.info("ALERT_NOTIFICATION_QUEUED", extra={"receiver": notification.receiver, "group_key": group.key})
            group.next_flush = now + timedelta(seconds=group.route.group_interval_s)
            group.waiting = False
            for fp in [fp for fp, a in group.alerts.items() if a.status_at(now) is AlertStatus.RESOLVED]:
                del group.alerts[fp]
            if not group.alerts:
                del self._groups[group.key]
        return sent

    def muted(self, alert: Alert, silences: Sequence[Silence], firing: Sequence[Alert]) -> bool:
        return any(s.mutes(alert.labels) for s in silences) or any(r.mutes(alert, firing) for r in self._routing.inhibit_rules)

    def _flush(self, group: _Group, now: datetime, silences: Sequence[Silence], firing: Sequence[Alert]) -> Notification | None:
        visible = [a for a in group.alerts.values() if not self.muted(a, silences, firing)]
        firing_now = frozenset(a.fingerprint for a in visible if a.status_at(now) is AlertStatus.FIRING)
        resolved_now = frozenset(a.fingerprint for a in visible if a.status_at(now) is AlertStatus.RESOLVED)
        receiver = group.route.receiver
        send_resolved = self._routing.receivers[receiver].send_resolved
        last = self._sent.get((group.key, receiver))
        if not _needs_update(last, firing_now, resolved_now, send_resolved, now, group.route.repeat_interval_s):
            return None
        self._sent[(group.key, receiver)] = _Sent(firing_now, resolved_now, now)
        alerts = [a for a in visible if send_resolved or a.fingerprint in firing_now]
        if not alerts:
            return None
        ordered = sorted(alerts, key=lambda a: (a.starts_at, a.fingerprint))
        return build_notification(receiver, group.key, group.labels, ordered, now, self._external_url)

def _needs_update(
    last: _Sent | None, firing: frozenset[str], resolved: frozenset[str], send_resolved: bool, now: datetime, repeat_s: float
) -> bool:
    if last is None:
        return bool(firing)
    if not firing <= last.firing:
        return True
    if not firing:
        return bool(last.firing)
    if send_resolved and not resolved <= last.resolved:
        return True
    return now - last.at >= timedelta(seconds=repeat_s)


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map has with the same value."""
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def build_notification(
    receiver: str, group_key: str, group_labels: Mapping[str, str], alerts: Sequence[Alert], now: datetime, external_url: str
) -> Notification:
    """The notification of ``alerts`` to ``receiver``: the Alertmanager webhook payload
    (version 4) plus ``idempotencyKey``, a SHA-256 of the receiver, group, time and alerts."""
    entries = [a.to_payload(now) for a in alerts]
    key_source = json.dumps([receiver, group_key, iso(now), [(e["fingerprint"], e["status"]) for e in entries]])
    idempotency_key = hashlib.sha256(key_source.encode()).hexdigest()
    payload = {
        "version": PAYLOAD_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": AlertStatus.FIRING.value if any(e["status"] == "firing" for e in entries) else AlertStatus.RESOLVED.value,
        "receiver": receiver,
        "groupLabels": dict(group_labels),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": entries,
        "idempotencyKey": idempotency_key,
    }
    return Notification(receiver, group_key, idempotency_key, payload)
