"""Paper and live trading: the trading loop on the exchange calendar, with Alpaca's bars.

Both modes wait for each bar close on Alpaca's calendar (:class:`~ai_trading.runtime.
wall_clock.WallClock`) and append the bars Alpaca's market-data API published since the
last stored one (:class:`~ai_trading.runtime.live_feed.AlpacaBarFeed`). They differ in the
broker:

- ``paper``: the :class:`~ai_trading.brokers.sim.SimBroker` fills the orders on the
  arriving bars (a desk without a paper account); its state lives in the run directory;
- ``live``: :class:`~ai_trading.brokers.alpaca.AlpacaBroker`, on the paper endpoint
  unless ``real_money`` is set: a base URL that is neither Alpaca's paper endpoint nor a
  local test server is refused without it, whatever the configuration says.

Before the gates, the store is brought up to the latest closed bar (at least
``[runtime] history_bars`` of history), so that the ``history`` gate judges what the
first decision will see. Then the gates of :mod:`ai_trading.runtime.session` run in
order; the ``history`` gate also checks this machine's clock against Alpaca's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ai_trading.brokers.alpaca import AlpacaBroker
from ai_trading.brokers.sim import SimBroker
from ai_trading.brokers.sim_market import StoreMarket, utc_datetime
from ai_trading.config import AppConfig
from ai_trading.data.alpaca_bars import AlpacaBarsClient
from ai_trading.data.frequency import parse_frequency
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import StartupGateFailed
from ai_trading.features.fingerprint import dataset_fingerprint
from ai_trading.models.policy import Policy
from ai_trading.oms.broker import Broker
from ai_trading.runtime.alpaca_clock import AlpacaCalendar
from ai_trading.runtime.live_feed import AlpacaBarFeed
from ai_trading.runtime.loop import BrokerClock, ModelIdentity
from ai_trading.runtime.session import (
    BROKER_FILE,
    SessionRequest,
    Timing,
    TradingSession,
    gate,
    open_session,
)
from ai_trading.runtime.sessions import ScheduledBar, session_bars
from ai_trading.runtime.wall_clock import WallClock, utc_now

PAPER_ENDPOINT_HOST = "paper-api.alpaca.markets"
LIVE_ENDPOINT = "https://api.alpaca.markets"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MODES = ("paper", "live")
STARTED_AT = "clock_started_at"
LAST_POSSIBLE_BAR = 2**63 - 1  # int64 ns
_HISTORY_WINDOWS_DAYS = (30, 120, 400, 1500, 5500)


@dataclass(frozen=True)
class RealtimeRequest:
    """A paper or live run.

    :param mode: ``paper`` (SimBroker) or ``live`` (AlpacaBroker)
    :param model: ``demo``, a registered model name or a signed artifact directory
    :param symbols: the demo's universe (a registered model trades its own); None: every stored symbol
    :param frequency: the bars' frequency (``1d``, ``1min``, ...)
    :param run_dir: the run directory (a second start resumes the run in it)
    :param dsn: the OMS database; None: ``run_dir/oms.sqlite``
    :param real_money: live only: allow a base URL that is not a paper endpoint
    :param feed: Alpaca's data feed (``iex``, ``sip``); None: the account's default
    """

    mode: str
    model: str
    symbols: tuple[str, ...] | None
    frequency: str
    run_dir: Path
    dsn: str | None = None
    real_money: bool = False
    feed: str | None = None


def default_run_dir(config: AppConfig, mode: str, model: str) -> Path:
    """``<runs_dir>/<mode>_<model>``: starting the same run again resumes it."""
    return config.runtime.runs_dir / re.sub(r"[^A-Za-z0-9._-]+", "-", f"{mode}_{Path(model).name}")


def trading_base_url(base_url: str, real_money: bool) -> str:
    """The Alpaca trading endpoint a live run may use.

    Without ``real_money`` only Alpaca's paper endpoint or a local server (tests) pass;
    with it, the configured URL when it is not the paper endpoint, else the live one.

    :raises StartupGateFailed: a real-money endpoint without ``real_money``
    """
    host = urlparse(base_url).hostname or ""
    paper = host == PAPER_ENDPOINT_HOST or host in LOCAL_HOSTS
    if real_money:
        return LIVE_ENDPOINT if host == PAPER_ENDPOINT_HOST else base_url
    if not paper:
        raise StartupGateFailed(
            "config",
            f"the Alpaca base URL {base_url} is not the paper endpoint: orders there trade real money. Pass "
            f"--i-mean-real-money to trade it, or set APCA_API_BASE_URL / [alpaca] base_url to https://{PAPER_ENDPOINT_HOST}",
        )
    return base_url


def history_start(bars: list[ScheduledBar], count: int) -> datetime | None:
    """The key of the first of the last ``count`` bars of ``bars``, None when they are fewer."""
    return utc_datetime(bars[-count].key) if len(bars) >= count else None


class RealtimeMode:
    """The paper and live parts of the wiring (:class:`~ai_trading.runtime.session.TradingMode`)."""

    def __init__(
        self,
        request: RealtimeRequest,
        config: AppConfig,
        calendar: AlpacaCalendar,
        feed: AlpacaBarFeed,
        stop: Callable[[], bool],
        now: Callable[[], datetime],
        sleep: Callable[[float], None],
    ) -> None:
        self.name = request.mode
        self.broker_label = "sim" if request.mode == "paper" else "alpaca"
        self._request = request
        self._config = config
        self._calendar = calendar
        self._feed = feed
        self._stop = stop
        self._now = now
        self._sleep = sleep

    def check(self, config: AppConfig) -> None:
        if self._request.mode not in MODES:
            raise StartupGateFailed("config", f"mode {self._request.mode!r} is not one of {', '.join(MODES)}")

    def request_record(self, config: AppConfig) -> dict[str, Any]:
        record: dict[str, Any] = {"mode": self._request.mode}
        if self._request.mode == "live":
            record["base_url"] = trading_base_url(config.alpaca.base_url, self._request.real_money)
        return record

    def open_broker(self, store: MarketDataStore, symbols: tuple[str, ...], frequency: str, resources: ExitStack) -> tuple[Broker, BrokerClock | None]:
        if self._request.mode == "paper":
            broker = SimBroker(self._request.run_dir / BROKER_FILE, StoreMarket(store, symbols, frequency), self._config.execution)
            return broker, broker
        alpaca = replace(self._config.alpaca, base_url=trading_base_url(self._config.alpaca.base_url, self._request.real_money))
        return resources.enter_context(AlpacaBroker(alpaca)), None

    def timing(self, store: MarketDataStore, market: StoreMarket, policy: Policy, identity: ModelIdentity, record: dict[str, Any] | None) -> Timing:
        market_clock = self._calendar.market_clock()
        skew = abs((market_clock.timestamp - self._now()).total_seconds())
        if skew > self._config.runtime.max_clock_skew_s:
            raise StartupGateFailed(
                "history",
                f"this machine's clock is {skew:.1f} s off Alpaca's (/v2/clock {market_clock.timestamp.isoformat()}), more than "
                f"[runtime] max_clock_skew_s = {self._config.runtime.max_clock_skew_s}: synchronise it (NTP) and start again",
            )
        panel = market.panel_through(LAST_POSSIBLE_BAR)  # every stored bar
        if panel.n_bars < policy.lookback:
            raise StartupGateFailed(
                "history",
                f"model {identity.name!r} needs {policy.lookback} bars before its first decision, the store holds {panel.n_bars}: "
                "raise [runtime] history_bars",
            )
        # The run's first bar is the first to close after it first started, also when the
        # first start died before finishing it.
        started = datetime.fromisoformat(record[STARTED_AT]) if record is not None and STARTED_AT in record else self._now()
        clock = WallClock(
            self._calendar, self._request.frequency, self._feed, self._stop, grace_s=self._config.alerts.data_staleness_grace_s,
            partial_wait_s=self._config.runtime.partial_bar_wait_s, poll_interval_s=self._config.runtime.feed_poll_interval_s,
            started=started, now=self._now, sleep=self._sleep,
        )  # fmt: skip
        return Timing(clock, self._feed, dataset_fingerprint(panel), None, {STARTED_AT: started.isoformat()}, clock.status, clock.observe)


def _closed_bars(calendar: AlpacaCalendar, frequency: str, now: datetime, count: int) -> list[ScheduledBar]:
    """At least the last ``count`` bars closed at ``now`` (fewer when the calendar has fewer)."""
    closed: list[ScheduledBar] = []
    for days in _HISTORY_WINDOWS_DAYS:
        sessions = calendar.sessions((now - timedelta(days=days)).date(), now.date())
        closed = [bar for bar in session_bars(sessions, frequency) if bar.close <= now]
        if len(closed) >= count:
            break
    return closed


def open_realtime(
    config: AppConfig,
    request: RealtimeRequest,
    store: MarketDataStore,
    stop: Callable[[], bool],
    now: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> TradingSession:
    """Fetch the history up to the latest closed bar, pass the start-up gates and return the
    ready session (its clock waits in real time; ``now`` and ``sleep`` are for tests).

    :param store: the market-data store, writable (the feed appends to it)
    :param stop: True once the process was asked to stop; a waiting clock then returns
    """
    resources = ExitStack()
    try:
        with gate("config"):
            frequency = parse_frequency(request.frequency)
            if request.mode == "live":
                trading_base_url(config.alpaca.base_url, request.real_money)
            calendar = resources.enter_context(AlpacaCalendar(config.alpaca, config.data.exchange_tz))
            client = resources.enter_context(AlpacaBarsClient(config.alpaca))
            symbols = request.symbols if request.symbols is not None else tuple(store.symbols())
            if not symbols:
                raise StartupGateFailed("config", f"the store {store.path} holds no symbols: pass --symbols")
        with gate("history"):
            closed = _closed_bars(calendar, frequency, now(), config.runtime.history_bars)
            if not closed:
                raise StartupGateFailed("history", "the exchange calendar lists no session that has closed yet")
            first = history_start(closed, config.runtime.history_bars) or utc_datetime(closed[0].key)
            feed = AlpacaBarFeed(client, store, symbols, frequency, config.data.exchange_tz, first, feed=request.feed)
            backfill = feed.new_bars(closed[-1].key)
            if backfill is not None:
                store.write_source(backfill, feed.source, frequency)
        mode = RealtimeMode(request, config, calendar, feed, stop, now, sleep)
        session_request = SessionRequest(request.model, request.symbols, frequency, request.run_dir, request.dsn)
        session = open_session(config, mode, session_request, store)
        session.hold(resources.pop_all())
        return session
    except BaseException:
        resources.close()
        raise
