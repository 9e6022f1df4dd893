"""The real-time :class:`~ai_trading.runtime.clock.Clock`: the next bar close on the exchange
calendar, waited for, then the bar's data.

:meth:`WallClock.next_tick` gives the bar after the loop's last one:

- before it closes, it sleeps in slices of at most ``slice_s`` (0.25 s), asking ``stop()``
  between slices, so SIGINT/SIGTERM stop a waiting loop within a second (it then returns
  None: the loop ends, nothing half-done);
- once it closed, when the bar after it has closed too, the loop is behind (a restart
  after a pause, a step slower than a bar): the bar is given with ``trade=False``, marked
  but not traded on, as deciding now on an older close would trade on stale prices;
- otherwise it waits for the bar's data: the tick comes when every symbol has the bar,
  or when ``partial_wait_s`` has passed and some have it (the others hold their
  positions). While no symbol has it ``grace_s`` after the close, the data is **stale**:
  a ``DATA_STALE`` log event and :meth:`WallClock.status` say so until it arrives or the
  next bar closes. A feed that cannot be reached (after its client's retries) counts as
  having no bar: the clock asks again at the next poll instead of ending the run.

The first bar of a run is the first one that closes after the run first started. Time
comes from ``now`` and waits go through ``sleep`` (real time and ``time.sleep`` in the
product; tests inject both so that they need not wait for real minutes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from ai_trading.brokers.sim_market import utc_datetime
from ai_trading.errors import DataSourceError
from ai_trading.runtime.clock import Tick
from ai_trading.runtime.sessions import ScheduledBar, Session, session_bars

logger = logging.getLogger(__name__)

CALENDAR_WINDOW_DAYS = 30  # sessions asked for at once; a month holds ~21 (NYSE)


class SessionSource(Protocol):
    """The exchange calendar (:class:`~ai_trading.runtime.alpaca_clock.AlpacaCalendar`)."""

    def sessions(self, start: date, end: date) -> list[Session]: ...


class BarAvailability(Protocol):
    """Which symbols have a bar (:class:`~ai_trading.runtime.live_feed.AlpacaBarFeed`)."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def source(self) -> str: ...

    def available(self, key: int) -> frozenset[str]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DataStatus:
    """Whether the feed keeps up with the calendar, for monitoring (``MarketDataStale``).

    :param bar: the bar the clock waits for or gave last (its store key as a datetime)
    :param expected_at: when that bar closed or will close
    :param seconds_late: how long after ``expected_at`` no symbol had it (0: current)
    :param stale: ``seconds_late`` is past the grace period
    :param missing: symbols without the bar when the clock last looked
    """

    feed: str
    bar: datetime | None
    expected_at: datetime | None
    seconds_late: float
    stale: bool
    missing: tuple[str, ...]
    checked_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WallClock:
    """Bar closes of the exchange calendar, in real time (see the module docstring).

    :param calendar: the sessions
    :param frequency: the bars' frequency
    :param data: tells which symbols have a bar
    :param stop: True once the process was asked to stop (SIGINT/SIGTERM)
    :param grace_s: after a close, how long no data is not yet stale (``[alerts]
        data_staleness_grace_s``)
    :param partial_wait_s: after a close, how long to wait for the symbols still missing
        before trading on those that have the bar
    :param poll_interval_s: how often to ask for a bar's data while it is missing
    :param started: when the run first started (its first bar is the first to close after
        it); None: when the clock is first asked
    :param now: the current time (aware UTC)
    :param sleep: waits that many seconds
    :param slice_s: the longest single sleep, the bound on how late a stop is noticed
    """

    def __init__(
        self,
        calendar: SessionSource,
        frequency: str,
        data: BarAvailability,
        stop: Callable[[], bool],
        *,
        grace_s: float,
        partial_wait_s: float,
        poll_interval_s: float,
        started: datetime | None = None,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        slice_s: float = 0.25,
    ) -> None:
        self._calendar = calendar
        self._frequency = frequency
        self._data = data
        self._stop = stop
        self._grace = grace_s
        self._partial_wait = partial_wait_s
        self._poll = poll_interval_s
        self._now = now
        self._sleep = sleep
        self._slice = slice_s
        self._started = started
        self._span: tuple[date, date] | None = None
        self._bars: list[ScheduledBar] = []
        self._status = DataStatus(data.source, None, None, 0.0, False, (), now())
        self._stale_logged: int | None = None
        self._observers: list[Callable[[DataStatus], None]] = []

    def status(self) -> DataStatus:
        """The feed's standing against the calendar as of the clock's last look."""
        return self._status

    def observe(self, callback: Callable[[DataStatus], None]) -> None:
        """Call ``callback`` with every status the clock sets (each look at the feed and
        each wait for a close), so a monitor judges staleness while the clock waits."""
        self._observers.append(callback)

    def _publish(self, status: DataStatus) -> None:
        self._status = status
        for callback in self._observers:
            callback(status)

    def _schedule(self, first: date, last: date) -> list[ScheduledBar]:
        """The bars of the sessions from ``first`` to ``last`` at least (cached)."""
        if self._span is None or first < self._span[0] or last > self._span[1]:
            start = first if self._span is None else min(first, self._span[0])
            end = max(last, start + timedelta(days=CALENDAR_WINDOW_DAYS))
            self._bars = session_bars(self._calendar.sessions(start, end), self._frequency)
            self._span = (start, end)
        return self._bars

    def _bar_and_next(self, after: int | None, now: datetime) -> tuple[ScheduledBar, ScheduledBar]:
        started = self._started or now
        first = (utc_datetime(after) if after is not None else started).date() - timedelta(days=1)
        last = max(first, now.date())
        for _ in range(12):
            bars = self._schedule(first, last)
            position = next(
                (i for i, bar in enumerate(bars) if (bar.key > after if after is not None else bar.close > started)), None
            )
            if position is not None and position + 1 < len(bars):
                return bars[position], bars[position + 1]
            last += timedelta(days=CALENDAR_WINDOW_DAYS)
        raise DataSourceError(f"the exchange calendar lists no sessions from {first} to {last}: check the calendar source")

    def _sleep_until(self, moment: datetime) -> bool:
        """Sleep until ``moment`` in slices; False when a stop was asked first."""
        while True:
            if self._stop():
                return False
            remaining = (moment - self._now()).total_seconds()
            if remaining <= 0:
                return True
            self._sleep(min(self._slice, remaining))

    def _set_status(self, bar: ScheduledBar, now: datetime, late: float, missing: tuple[str, ...]) -> None:
        stale = late > self._grace
        if self._status.stale and not stale:
            logger.info("DATA_CURRENT", extra={"feed": self._data.source, "bar": utc_datetime(bar.key).isoformat()})
        self._publish(DataStatus(self._data.source, utc_datetime(bar.key), bar.close, late, stale, missing, now))
        if stale and self._stale_logged != bar.key:
            self._stale_logged = bar.key
            logger.warning(
                "DATA_STALE",
                extra={"feed": self._data.source, "bar": utc_datetime(bar.key).isoformat(), "seconds_late": round(late, 1),
                       "grace_s": self._grace},
            )  # fmt: skip

    def next_tick(self, after: int | None) -> Tick | None:
        while not self._stop():
            now = self._now()
            if self._started is None:
                self._started = now
            bar, following = self._bar_and_next(after, now)
            if now < bar.close:
                self._publish(DataStatus(self._data.source, utc_datetime(bar.key), bar.close, 0.0, False, (), now))
                logger.info("LIVE_CLOCK_WAITING", extra={"bar": utc_datetime(bar.key).isoformat(), "closes_at": bar.close.isoformat()})
                if not self._sleep_until(bar.close):
                    return None
                continue
            if following.close <= now:
                logger.info("LIVE_BAR_PASSED", extra={"bar": utc_datetime(bar.key).isoformat(), "now": now.isoformat()})
                return Tick(bar.key, trade=False)
            try:
                have = self._data.available(bar.key)
            except DataSourceError as exc:  # an outage past the client's retries: ask again at the next poll
                logger.warning("DATA_FEED_UNREACHABLE", extra={"feed": self._data.source, "error": str(exc)})
                have = frozenset()
            missing = tuple(symbol for symbol in self._data.symbols if symbol not in have)
            since_close = (now - bar.close).total_seconds()
            self._set_status(bar, now, 0.0 if have else since_close, missing)
            if not missing or (have and since_close >= self._partial_wait):
                if missing:
                    logger.warning("DATA_PARTIAL", extra={"bar": utc_datetime(bar.key).isoformat(), "missing": ",".join(missing)})
                return Tick(bar.key)
            if not self._sleep_until(min(now + timedelta(seconds=self._poll), following.close)):
                return None
        return None
