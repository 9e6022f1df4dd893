"""Shared pieces of the paper and live tests: a fake Alpaca market (calendar, daily bars
published at each close, an opening auction filling open orders), the settings, and a run
of the real-time loop in-process or in a child process, on the server's time.

Time is the server's (``FakeAlpaca.set_time``): the loop's ``now`` reads it and its
``sleep`` moves it, ``SPEED`` times faster than asked, so a trading day passes in a few
hundred of the wall clock's 0.25 s slices instead of 345,600.

Run as a script (``python -m tests.runtime.live_harness URL ROOT MODE UNTIL``), it is the
child of the restart test: the same run, its time read from ``GET /v2/clock`` and moved by
``POST /_test/advance``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np

from ai_trading.config import (
    AlpacaConfig,
    AppConfig,
    DataConfig,
    EngineConfig,
    RuntimeConfig,
)
from ai_trading.data.store import MarketDataStore
from ai_trading.runtime.realtime import RealtimeRequest, open_realtime
from ai_trading.runtime.session import run_session
from ai_trading.runtime.sessions import daily_key
from tests.brokers.alpaca_server import KEY_ID, SECRET_KEY, FakeAlpaca, FakeSession
from tests.runtime.replay_harness import NO_LIMITS

NEW_YORK = ZoneInfo("America/New_York")
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE")
HISTORY_DAYS = 30
TRADE_DAYS = 5
FIRST_DAY = date(2024, 3, 1)
EARLY_CLOSE_AT = 2  # the third trading day closes at 13:00 (as the day after Thanksgiving)
PUBLISH_DELAY_S = 5.0
SPEED = 600.0
CASH = 100_000.0
SEED = 11


def weekday_sessions(first: date, count: int, early: dict[date, str] | None = None) -> list[FakeSession]:
    days: list[FakeSession] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(FakeSession(day, close=(early or {}).get(day, "16:00")))
        day += timedelta(days=1)
    return days


@dataclass(frozen=True)
class FakeMarket:
    """The sessions and the daily bars the server publishes: ``ohlc[day, symbol, 4]``."""

    sessions: list[FakeSession]
    ohlc: np.ndarray

    @property
    def trade_days(self) -> list[FakeSession]:
        return self.sessions[HISTORY_DAYS:]

    def key(self, index: int) -> int:
        """The store key of the daily bar of trading day ``index``."""
        return daily_key(self.trade_days[index].day)

    def start_time(self) -> datetime:
        """Noon of the first trading day, New York time: the run starts then."""
        return datetime.combine(self.trade_days[0].day, time(12, 0), NEW_YORK).astimezone(UTC)


def make_market(n_days: int = HISTORY_DAYS + TRADE_DAYS + 3, seed: int = SEED) -> FakeMarket:
    rng = np.random.default_rng(seed)
    first_trade = weekday_sessions(FIRST_DAY, HISTORY_DAYS + EARLY_CLOSE_AT + 1)[-1].day
    sessions = weekday_sessions(FIRST_DAY, n_days, {first_trade: "13:00"})
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_days, len(SYMBOLS))), axis=0))
    opens = close * np.exp(rng.normal(0.0, 0.005, close.shape))
    high = np.maximum(opens, close) * 1.01
    low = np.minimum(opens, close) * 0.99
    return FakeMarket(sessions, np.round(np.stack([opens, high, low, close], axis=-1), 2))


def publish(server: FakeAlpaca, market: FakeMarket) -> None:
    """The calendar; each daily bar published a few seconds after its session's close; its
    open is the price the opening auction fills at."""
    server.set_sessions(market.sessions)
    for j, symbol in enumerate(SYMBOLS):
        bars, visible = [], []
        for i, session in enumerate(market.sessions):
            o, h, lo, c = (float(v) for v in market.ohlc[i, j])
            stamp = datetime.combine(session.day, time(0, 0), NEW_YORK).astimezone(UTC)
            bars.append({"t": stamp.isoformat().replace("+00:00", "Z"), "o": o, "h": h, "l": lo, "c": c, "v": 1e6, "n": 1000, "vw": c})
            visible.append(session.bounds()[1] + timedelta(seconds=PUBLISH_DELAY_S))
        server.add_bars(symbol, bars, visible)
    for i, session in enumerate(market.sessions):
        server.state.opening_prices[session.day] = {s: f"{market.ohlc[i, j, 0]:.2f}" for j, s in enumerate(SYMBOLS)}


def live_config(root: Path, url: str) -> AppConfig:
    return AppConfig(
        data=DataConfig(db_path=root / "market.duckdb"),
        alpaca=AlpacaConfig(base_url=url, data_url=url, key_id=KEY_ID, secret_key=SECRET_KEY, timeout_s=0.5, retry_backoff_s=0.01),
        runtime=RuntimeConfig(initial_cash=CASH, runs_dir=root / "runs", history_bars=HISTORY_DAYS),
        engine=EngineConfig(lot_size=1.0, min_order_notional=0.0, max_cost_share=1e9),
        risk=NO_LIMITS,
    )  # fmt: skip


def run_until(config: AppConfig, run_dir: Path, mode: str, until: int, now: Callable[[], datetime], sleep: Callable[[float], None]) -> bool:
    """Trade until the bar ``until`` is done; True when the run stopped there (not earlier)."""
    done: list[bool] = [False]
    request = RealtimeRequest(mode, "demo", SYMBOLS, "1d", run_dir)
    with MarketDataStore(config.data.db_path, exchange_tz=config.data.exchange_tz) as store:
        session = open_realtime(config, request, store, lambda: done[0], now=now, sleep=sleep)
        try:
            return run_session(session, lambda: done[0], lambda report: done.__setitem__(0, report.tick.bar_ts >= until))
        finally:
            session.close()


def run_in_process(config: AppConfig, server: FakeAlpaca, run_dir: Path, mode: str, until: int) -> bool:
    """:func:`run_until` on ``server``'s time."""
    return run_until(config, run_dir, mode, until, server.state.now, lambda seconds: server.advance(seconds * SPEED))


def _child(url: str, root: Path, mode: str, until: int) -> None:
    client = httpx.Client(base_url=url, headers={"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY})

    def now() -> datetime:
        return datetime.fromisoformat(client.get("/v2/clock").json()["timestamp"]).astimezone(UTC)

    def sleep(seconds: float) -> None:
        client.post("/_test/advance", params={"seconds": seconds * SPEED})

    run_until(live_config(root, url), root / "run", mode, until, now, sleep)


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
