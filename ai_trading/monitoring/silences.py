"""Silences: matchers that mute alerts for a while, kept in the OMS database.

A silence is in force from ``starts_at`` until ``ends_at`` and mutes every alert whose
labels match all its matchers. ``alerts unsilence`` expires it (ends it now) rather than
deleting it, so what was silenced, by whom and why stays on record.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from ai_trading.errors import ConfigError
from ai_trading.monitoring.alerts import Clock, iso
from ai_trading.monitoring.matchers import Matcher, all_match, parse_matchers
from ai_trading.oms.engine import connect, transaction
from ai_trading.oms.migrate import require_head
from ai_trading.oms.models import utc_now
from ai_trading.oms.schema import alert_silences

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    creator: str
    comment: str
    starts_at: datetime
    ends_at: datetime

    def is_active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str]) -> bool:
        return all_match(self.matchers, labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "creator": self.creator,
            "comment": self.comment,
            "startsAt": iso(self.starts_at),
            "endsAt": iso(self.ends_at),
        }


class SilenceStore:
    """Creates, lists and expires silences.

    :param engine: engine of the OMS database at the head revision
    :param clock: current UTC time
    """

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        require_head(engine)
        self._engine = engine
        self._clock = clock

    def add(self, matchers: Sequence[str], duration_s: float, creator: str, comment: str) -> Silence:
        """A silence from now for ``duration_s``; matchers, creator and comment are required."""
        parsed = parse_matchers(matchers, "silence")
        if not parsed:
            raise ConfigError("a silence needs at least one matcher (--matcher name=value); one without would mute every alert")
        if duration_s <= 0:
            raise ConfigError(f"a silence needs a positive duration, got {duration_s} s")
        if not creator.strip() or not comment.strip():
            raise ConfigError("a silence needs a creator (--author) and a comment (--comment) saying why")
        now = self._clock()
        silence = Silence(str(uuid.uuid4()), parsed, creator, comment, now, now + timedelta(seconds=duration_s))
        with connect(self._engine) as connection, transaction(connection):
            connection.execute(alert_silences.insert(), {
                "id": silence.id, "matchers": json.dumps([str(m) for m in parsed]), "creator": creator,
                "comment": comment, "starts_at": silence.starts_at, "ends_at": silence.ends_at,
            })  # fmt: skip
        logger.info("ALERT_SILENCE_ADDED", extra={"silence_id": silence.id, "matchers": [str(m) for m in parsed], "creator": creator})
        return silence

    def active(self, now: datetime | None = None) -> list[Silence]:
        """Silences in force at ``now`` (default: the clock's now)."""
        at = self._clock() if now is None else now
        query = select(alert_silences).where(alert_silences.c.starts_at <= at, alert_silences.c.ends_at > at)
        return self._read(query)

    def all(self) -> list[Silence]:
        """Every silence, expired ones included, newest first."""
        return self._read(select(alert_silences).order_by(alert_silences.c.starts_at.desc(), alert_silences.c.id))

    def expire(self, silence_id: str) -> Silence:
        """End the silence now; an unknown or already expired id is a clear error."""
        now = self._clock()
        with connect(self._engine) as connection, transaction(connection):
            row = connection.execute(select(alert_silences).where(alert_silences.c.id == silence_id)).first()
            if row is None:
                raise ConfigError(f"no silence with id {silence_id!r}: see `ai-trading alerts silences`")
            if row.ends_at <= now:
                raise ConfigError(f"silence {silence_id} already expired at {iso(row.ends_at)}")
            connection.execute(alert_silences.update().where(alert_silences.c.id == silence_id).values(ends_at=now))
        logger.info("ALERT_SILENCE_EXPIRED", extra={"silence_id": silence_id})
        return replace(_silence(row), ends_at=now)

    def _read(self, query: Any) -> list[Silence]:
        with connect(self._engine) as connection, transaction(connection):
            return [_silence(row) for row in connection.execute(query)]


def _silence(row: Any) -> Silence:
    matchers = parse_matchers(json.loads(row.matchers), f"silence {row.id}")
    return Silence(row.id, matchers, row.creator, row.comment, row.starts_at, row.ends_at)
