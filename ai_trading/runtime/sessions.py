"""Trading sessions and the bar closes they hold: when a real-time loop acts.

A :class:`Session` is one exchange day (its open and close as UTC instants; an early close
is simply an earlier close). :func:`session_bars` lists the bars of a frequency in a list of
sessions, each with the key the store gives it (``ai_trading.data.bartime``) and the instant
it closes:

- a daily bar is keyed by its session date at 00:00 UTC and closes at the session close;
- an intraday bar of length N is keyed by its start, a multiple of N since the epoch (how
  Alpaca aligns its bars), for every such period that overlaps the session; it closes N
  after its start or at the session close, whichever comes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ai_trading.brokers.sim_market import utc_ns
from ai_trading.data.frequency import DAILY, bar_seconds, parse_frequency
from ai_trading.errors import DataSourceError

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Session:
    """One exchange session: its date and its open and close (aware UTC datetimes)."""

    day: date
    open: datetime
    close: datetime

    def __post_init__(self) -> None:
        if self.open.tzinfo is None or self.close.tzinfo is None or self.open >= self.close:
            raise DataSourceError(f"session {self.day}: open {self.open} must be before close {self.close}, both with a zone")


@dataclass(frozen=True)
class ScheduledBar:
    """A bar the calendar expects: its store key (int64 ns UTC) and when it closes."""

    key: int
    close: datetime


def daily_key(day: date) -> int:
    """The store key of the daily bar of the session ``day``."""
    return utc_ns(datetime(day.year, day.month, day.day, tzinfo=UTC))


def session_bars(sessions: Sequence[Session], frequency: str) -> list[ScheduledBar]:
    """The bars of ``frequency`` in ``sessions`` (ordered by date), ordered by key."""
    canonical = parse_frequency(frequency)
    if canonical == DAILY:
        return [ScheduledBar(daily_key(s.day), s.close) for s in sessions]
    step_ns = bar_seconds(canonical) * NS_PER_S
    bars: list[ScheduledBar] = []
    for session in sessions:
        open_ns, close_ns = utc_ns(session.open), utc_ns(session.close)
        key = open_ns - open_ns % step_ns
        while key < close_ns:
            end = min(key + step_ns, close_ns)
            bars.append(ScheduledBar(key, datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=end // 1000)))
            key += step_ns
    return bars
