"""The durable notification outbox in the OMS database, and the worker that empties it.

Every notification is written to ``alert_notifications`` before any attempt to send it
(idempotent on its key: enqueueing the same notification twice stores it once). A
:class:`DeliveryWorker` claims due rows, sends each through its receiver and records
the outcome, so nothing is lost when a process dies:

- claiming is ``UPDATE ... SET version = version + 1, lease_until = now + lease WHERE
  id = ? AND version = ?``: of two workers (two processes, PostgreSQL or SQLite) only
  one wins a row, and a row whose lease has run out (its worker was killed mid-delivery)
  is claimed again and resent under the same idempotency key;
- success marks the row delivered; a transient failure schedules the next attempt after
  an exponential backoff with full jitter (``uniform(0, min(cap, base * 2**(n-1)))``, or
  longer when the server asked with ``Retry-After``) until ``delivery_max_attempts``;
  a permanent refusal (4xx) marks it failed at once and raises a local alert.

A resend after a crash reaches the receiver under the key it already saw: receivers
that deduplicate on the ``Idempotency-Key`` header or the payload's ``idempotencyKey``
see each notification once. Payloads hold no secrets (receivers add them on the wire).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ai_trading.config import AlertsConfig
from ai_trading.monitoring.alerts import Alert, Clock, Severity
from ai_trading.monitoring.dispatcher import Notification
from ai_trading.monitoring.receivers import DeliveryResult, Outcome, Receiver
from ai_trading.oms.engine import connect, transaction
from ai_trading.oms.migrate import require_head
from ai_trading.oms.models import utc_now
from ai_trading.oms.schema import alert_notifications

logger = logging.getLogger(__name__)

N = alert_notifications.c
DELIVERY_REJECTED_ALERT = "AlertDeliveryRejected"


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    idempotency_key: str
    receiver: str
    payload: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "idempotency_key": self.idempotency_key, "receiver": self.receiver, "status": self.status,
            "attempts": self.attempts, "next_attempt_at": self.next_attempt_at.isoformat(), "last_error": self.last_error,
            "created_at": self.created_at.isoformat(), "group_key": self.payload.get("groupKey"),
            "alerts": len(self.payload.get("alerts", [])),
        }  # fmt: skip


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        row.id, row.idempotency_key, row.receiver, json.loads(row.payload), row.status, row.attempts,
        row.next_attempt_at, row.last_error, row.created_at, row.delivered_at, row.version,
    )  # fmt: skip


class Outbox:
    """The ``alert_notifications`` table.

    :param engine: engine of the OMS database at the head revision
    :param clock: current UTC time
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        require_head(engine)
        self._engine = engine
        self._clock = clock
        insert: Callable[..., Any] = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        self._insert = insert(alert_notifications).on_conflict_do_nothing(index_elements=[N.idempotency_key]).returning(N.id)

    def enqueue(self, notification: Notification) -> bool:
        """Store a notification for delivery; False when its key was already stored."""
        now = self._clock()
        with connect(self._engine) as connection, transaction(connection):
            inserted = connection.execute(self._insert, {
                "idempotency_key": notification.idempotency_key, "receiver": notification.receiver,
                "payload": json.dumps(notification.payload, sort_keys=True), "status": "pending", "attempts": 0,
                "next_attempt_at": now, "lease_until": None, "version": 0, "last_error": None,
                "created_at": now, "delivered_at": None,
            }).first() is not None  # fmt: skip
        logger.info("ALERT_OUTBOX_ENQUEUED", extra={"idempotency_key": notification.idempotency_key, "receiver": notification.receiver, "new": bool(inserted)})
        return bool(inserted)

    def entries(self, statuses: Sequence[str] = ("pending", "failed")) -> list[OutboxEntry]:
        """Notifications in ``statuses``, oldest first."""
        with connect(self._engine) as connection, transaction(connection):
            rows = connection.execute(select(alert_notifications).where(N.status.in_(statuses)).order_by(N.id))
            return [_entry(row) for row in rows]

    def claim(self, receivers: Sequence[str], limit: int, lease_s: float) -> list[OutboxEntry]:
        """Take up to ``limit`` due pending notifications of ``receivers`` for ``lease_s``;
        each claimed row counts one attempt. Rows another worker took first are skipped."""
        now = self._clock()
        due = (
            select(N.id, N.version)
            .where(N.status == "pending", N.next_attempt_at <= now, N.receiver.in_(receivers))
            .where(or_(N.lease_until.is_(None), N.lease_until <= now))
            .order_by(N.next_attempt_at, N.id)
            .limit(limit)
        )
        claimed = []
        with connect(self._engine) as connection:
            with transaction(connection):
                candidates = connection.execute(due).all()
            for candidate in candidates:
                with transaction(connection):
                    won = connection.execute(
                        update(alert_notifications)
                        .where(and_(N.id == candidate.id, N.version == candidate.version, N.status == "pending"))
                        .values(version=N.version + 1, attempts=N.attempts + 1, lease_until=now + timedelta(seconds=lease_s))
                    ).rowcount
                    if won:
                        row = connection.execute(select(alert_notifications).where(N.id == candidate.id)).one()
                        claimed.append(_entry(row))
        return claimed

    def finish(self, entry: OutboxEntry, status: str, *, error: str | None, next_attempt_at: datetime | None = None) -> bool:
        """Record the outcome of a claimed entry; False when its lease was lost (another
        worker claimed it again, and its own outcome counts)."""
        now = self._clock()
        values: dict[str, Any] = {"status": status, "last_error": error, "lease_until": None, "version": entry.version + 1}
        if status == "delivered":
            values["delivered_at"] = now
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        with connect(self._engine) as connection, transaction(connection):
            return bool(connection.execute(
                update(alert_notifications).where(N.id == entry.id, N.version == entry.version).values(**values)
            ).rowcount)  # fmt: skip


@dataclass
class DeliveryReport:
    """One worker pass: keys per outcome, and the local alerts raised for refusals."""

    delivered: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    by_receiver: dict[str, list[DeliveryResult]] = field(default_factory=dict)


class DeliveryWorker:
    """Claims due notifications and sends them; see the module docstring.

    :param receivers: the configured receivers by name; rows of other receivers stay pending
    :param rng: source of the jitter (seeded in tests)
    """

    def __init__(
        self, outbox: Outbox, receivers: Mapping[str, Receiver], config: AlertsConfig, rng: random.Random | None = None, clock: Clock = utc_now
    ) -> None:
        self._outbox = outbox
        self._receivers = receivers
        self._config = config
        self._rng = rng or random.Random()
        self._clock = clock

    def run_once(self) -> DeliveryReport:
        """Claim and send one batch of due notifications."""
        report = DeliveryReport()
        c = self._config
        for entry in self._outbox.claim(sorted(self._receivers), c.delivery_batch, c.delivery_lease_s):
            result = self._receivers[entry.receiver].send(entry.payload, entry.idempotency_key)
            report.by_receiver.setdefault(entry.receiver, []).append(result)
            self._record(entry, result, report)
        return report

    def backoff_s(self, attempts: int) -> float:
        """Full jitter: uniform in ``[0, min(cap, base * 2**(attempts - 1))]``."""
        c = self._config
        ceiling = min(c.delivery_backoff_max_s, c.delivery_backoff_base_s * 2 ** max(attempts - 1, 0))
        return self._rng.uniform(0.0, ceiling)

    def _record(self, entry: OutboxEntry, result: DeliveryResult, report: DeliveryReport) -> None:
        log = {"idempotency_key": entry.idempotency_key, "receiver": entry.receiver, "attempt": entry.attempts, "detail": result.detail}
        if result.outcome is Outcome.DELIVERED:
            self._outbox.finish(entry, "delivered", error=None)
            report.delivered.append(entry.idempotency_key)
            logger.info("ALERT_DELIVERED", extra=log)
        elif result.outcome is Outcome.RETRY and entry.attempts < self._config.delivery_max_attempts:
            delay = max(self.backoff_s(entry.attempts), result.retry_after_s or 0.0)
            self._outbox.finish(entry, "pending", error=result.detail, next_attempt_at=self._clock() + timedelta(seconds=delay))
            report.retried.append(entry.idempotency_key)
            logger.warning("ALERT_DELIVERY_RETRY", extra={**log, "delay_s": delay})
        else:
            self._outbox.finish(entry, "failed", error=result.detail)
            report.failed.append(entry.idempotency_key)
            report.alerts.append(self._refusal_alert(entry, result))
            logger.error("ALERT_DELIVERY_FAILED", extra=log)

    def _refusal_alert(self, entry: OutboxEntry, result: DeliveryResult) -> Alert:
        gave_up = "refused" if result.outcome is Outcome.REJECTED else f"failed {entry.attempts} times"
        return Alert(
            name=DELIVERY_REJECTED_ALERT,
            severity=Severity.CRITICAL,
            labels={"receiver": entry.receiver},
            annotations={
                "summary": f"receiver {entry.receiver} {gave_up}: a notification was not delivered",
                "description": f"notification {entry.idempotency_key} ({entry.payload.get('groupKey')}): {result.detail}",
                "runbook": "README.md#monitoring: fix the receiver's configuration; `ai-trading alerts outbox` lists failed notifications",
            },
            starts_at=self._clock(),
        )
