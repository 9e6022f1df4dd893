"""Live trading against a local server speaking Alpaca's JSON (trading, clock, calendar, bars):
the wall clock on injected time, the bar feed, faults on every kind of request, a restart
mid-session by SIGKILL, and the refusal of a real-money endpoint without its flag."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.brokers.sim_market import utc_datetime
from ai_trading.config import AlpacaConfig
from ai_trading.data.alpaca_bars import AlpacaBarsClient
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import BrokerError, DataSourceError, StartupGateFailed
from ai_trading.runtime.alpaca_clock import AlpacaCalendar
from ai_trading.runtime.live_feed import AlpacaBarFeed
from ai_trading.runtime.realtime import LIVE_ENDPOINT, trading_base_url
from ai_trading.runtime.run_state import RunState
from ai_trading.runtime.sessions import Session, daily_key, session_bars
from ai_trading.runtime.wall_clock import WallClock
from tests.brokers.alpaca_server import KEY_ID, SECRET_KEY, FakeAlpaca
from tests.runtime.live_harness import (
    NEW_YORK,
    SYMBOLS,
    FakeMarket,
    live_config,
    make_market,
    publish,
    run_in_process,
)

REPO = Path(__file__).resolve().parents[2]
GRACE_S = 120.0
PARTIAL_S = 10.0
POLL_S = 5.0


@pytest.fixture()
def server() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as running:
        yield running


@pytest.fixture()
def market(server: FakeAlpaca) -> FakeMarket:
    fake = make_market()
    publish(server, fake)
    server.set_time(fake.start_time())
    return fake


def _alpaca(server: FakeAlpaca) -> AlpacaConfig:
    return AlpacaConfig(
        base_url=server.base_url, data_url=server.base_url, key_id=KEY_ID, secret_key=SECRET_KEY, timeout_s=0.3, retry_backoff_s=0.01
    )


# --- sessions and bar closes -------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    open_minute=st.integers(0, 23 * 60),
    length=st.integers(1, 12 * 60),
    bar_minutes=st.sampled_from([1, 2, 5, 15, 30, 60, 120]),
)
def test_intraday_bars_tile_the_session(open_minute: int, length: int, bar_minutes: int) -> None:
    day = date(2024, 3, 4)
    opens = datetime(2024, 3, 4, tzinfo=UTC) + timedelta(minutes=open_minute)
    closes = opens + timedelta(minutes=length)
    bars = session_bars([Session(day, opens, closes)], f"{bar_minutes}min")
    # Reference: every aligned period that overlaps [open, close), by brute force over minutes.
    step = bar_minutes * 60 * 10**9
    touched = sorted({(int((opens + timedelta(minutes=m)).timestamp()) * 10**9) // step * step for m in range(length)})
    assert [bar.key for bar in bars] == touched
    assert bars[-1].close == closes
    for bar in bars:
        assert utc_datetime(bar.key) < bar.close <= min(utc_datetime(bar.key + step), closes)


def test_a_daily_bar_closes_at_the_session_close_also_on_an_early_close(server: FakeAlpaca, market: FakeMarket) -> None:
    with AlpacaCalendar(_alpaca(server), "America/New_York") as calendar:
        sessions = calendar.sessions(market.trade_days[0].day, market.trade_days[3].day)
    bars = session_bars(sessions, "1d")
    assert [bar.key for bar in bars] == [market.key(i) for i in range(4)]
    local = [bar.close.astimezone(NEW_YORK).strftime("%H:%M") for bar in bars]
    assert local == ["16:00", "16:00", "13:00", "16:00"]


def test_market_clock_reads_is_open_and_the_next_open_and_close(server: FakeAlpaca, market: FakeMarket) -> None:
    with AlpacaCalendar(_alpaca(server), "America/New_York") as calendar:
        clock = calendar.market_clock()
        server.set_time(market.trade_days[0].bounds()[1] + timedelta(hours=1))
        after_close = calendar.market_clock()
    assert clock.is_open and clock.timestamp == market.start_time()
    assert clock.next_close == market.trade_days[0].bounds()[1] and clock.next_open == market.trade_days[1].bounds()[0]
    assert not after_close.is_open and after_close.next_open == market.trade_days[1].bounds()[0]


FAULTS = ("status:503", "retry_after:0", "sleep:0.5")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("path", ["/v2/clock", "/v2/calendar"])
def test_clock_and_calendar_requests_are_retried(server: FakeAlpaca, market: FakeMarket, path: str, fault: str) -> None:
    server.fault("GET", path, fault)
    with AlpacaCalendar(_alpaca(server), "America/New_York") as calendar:
        assert calendar.market_clock().is_open
        assert len(calendar.sessions(market.trade_days[0].day, market.trade_days[0].day)) == 1
    assert server.count("GET", path) == 2


def test_clock_gives_up_with_a_clear_error_when_alpaca_keeps_failing(server: FakeAlpaca, market: FakeMarket) -> None:
    for _ in range(4):
        server.fault("GET", "/v2/clock", "status:500")
    with AlpacaCalendar(_alpaca(server), "America/New_York") as calendar, pytest.raises(BrokerError, match="4 attempts"):
        calendar.market_clock()


# --- the bar feed ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [None, *FAULTS])
def test_feed_is_incremental_and_never_returns_a_forming_bar(tmp_path: Path, server: FakeAlpaca, market: FakeMarket, fault: str | None) -> None:
    # Every bar published at once: the one of the bar after `through` is still forming.
    server.state.visible_from.clear()
    with AlpacaBarsClient(_alpaca(server)) as client, MarketDataStore(tmp_path / "m.duckdb") as store:
        start = utc_datetime(daily_key(market.sessions[0].day))
        feed = AlpacaBarFeed(client, store, SYMBOLS, "1d", "America/New_York", start)
        if fault is not None:
            server.fault("GET", "/v2/stocks/bars", fault)
        first = feed.new_bars(market.key(0))
        assert first is not None and first.num_rows == (len(market.sessions) - len(market.trade_days) + 1) * len(SYMBOLS)
        store.write_source(first, feed.source, "1d")
        assert store.last_bar_times(SYMBOLS, "1d") == dict.fromkeys(SYMBOLS, utc_datetime(market.key(0)))
        assert feed.available(market.key(1)) == frozenset(SYMBOLS)
        second = feed.new_bars(market.key(1))
    assert second is not None and second.num_rows == len(SYMBOLS)
    last_query = server.bars_queries()[-1]
    assert last_query["start"] == (utc_datetime(market.key(0)) + timedelta(days=1)).isoformat().replace("+00:00", "Z")


def test_minute_feed_returns_the_closed_minutes_only(tmp_path: Path, server: FakeAlpaca, market: FakeMarket) -> None:
    opens = market.trade_days[0].bounds()[0]
    minutes = [opens + timedelta(minutes=m) for m in range(6)]
    for j, symbol in enumerate(SYMBOLS):
        bars = [{"t": m.isoformat().replace("+00:00", "Z"), "o": 10.0 + j, "h": 11.0 + j, "l": 9.0 + j, "c": 10.5 + j, "v": 100.0,
                 "n": 5, "vw": 10.2 + j} for m in minutes]  # fmt: skip
        server.add_bars(symbol, bars)  # all served at once: minutes 4 and 5 are still forming at minute 3's close
    third = int(minutes[3].timestamp()) * 10**9
    with AlpacaBarsClient(_alpaca(server)) as client, MarketDataStore(tmp_path / "m.duckdb") as store:
        feed = AlpacaBarFeed(client, store, SYMBOLS, "1min", "America/New_York", opens)
        table = feed.new_bars(third)
        assert table is not None
        store.write_source(table, feed.source, "1min")
        assert store.last_bar_times(SYMBOLS, "1min") == dict.fromkeys(SYMBOLS, minutes[3])
        assert table.num_rows == 4 * len(SYMBOLS)
        more = feed.new_bars(third + 60 * 10**9)
    assert more is not None and more.num_rows == len(SYMBOLS)


# --- the wall clock on injected time -----------------------------------------------------


class FakeData:
    """Symbols that have a bar from given moments on."""

    def __init__(self, now: Callable[[], datetime], published: dict[int, dict[str, datetime]]) -> None:
        self._now = now
        self._published = published
        self.symbols = SYMBOLS
        self.source = "fake feed"

    def available(self, key: int) -> frozenset[str]:
        return frozenset(s for s, at in self._published.get(key, {}).items() if at <= self._now())


class FakeTime:
    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def _sessions(market: FakeMarket) -> list[Session]:
    return [Session(s.day, *s.bounds()) for s in market.sessions]


class ListCalendar:
    def __init__(self, sessions: list[Session]) -> None:
        self._sessions = sessions

    def sessions(self, start: date, end: date) -> list[Session]:
        return [s for s in self._sessions if start <= s.day <= end]


def _clock(
    market: FakeMarket, fake: FakeTime, published: dict[int, dict[str, datetime]], stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] | None = None,
) -> WallClock:
    return WallClock(
        ListCalendar(_sessions(market)), "1d", FakeData(lambda: fake.now, published), stop,
        grace_s=GRACE_S, partial_wait_s=PARTIAL_S, poll_interval_s=POLL_S, now=lambda: fake.now, sleep=sleep or fake.sleep,
    )  # fmt: skip


def _everyone_at(moment: datetime) -> dict[str, datetime]:
    return dict.fromkeys(SYMBOLS, moment)


def test_wall_clock_waits_for_the_close_in_short_slices_then_for_the_data(market: FakeMarket) -> None:
    fake = FakeTime(market.start_time())
    close = market.trade_days[0].bounds()[1]
    clock = _clock(market, fake, {market.key(0): _everyone_at(close + timedelta(seconds=3))})
    tick = clock.next_tick(None)
    assert tick is not None and tick.bar_ts == market.key(0) and tick.trade
    assert close + timedelta(seconds=3) <= fake.now < close + timedelta(seconds=3 + POLL_S + 1)
    assert max(fake.sleeps) <= 0.25 and not clock.status().stale


def test_wall_clock_stops_waiting_when_asked(market: FakeMarket) -> None:
    fake = FakeTime(market.start_time())
    asked = [False]

    def sleep(seconds: float) -> None:  # the stop arrives while it waits
        fake.sleep(seconds)
        asked[0] = len(fake.sleeps) >= 3

    assert _clock(market, fake, {}, stop=lambda: asked[0], sleep=sleep).next_tick(None) is None
    assert len(fake.sleeps) == 3 and sum(fake.sleeps) <= 0.75


def test_wall_clock_reports_stale_data_then_moves_on_when_the_next_bar_closes(market: FakeMarket, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime(market.start_time())
    statuses = []

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        statuses.append(clock.status())

    clock = _clock(market, fake, {}, sleep=sleep)  # Alpaca never publishes the bar
    with caplog.at_level(logging.WARNING, logger="ai_trading.runtime.wall_clock"):
        tick = clock.next_tick(None)
    assert tick is not None and tick.bar_ts == market.key(0) and not tick.trade
    stale = [s for s in statuses if s.stale]
    assert stale and all(s.seconds_late > GRACE_S and s.missing == SYMBOLS for s in stale)
    assert not any(s.stale for s in statuses if s.checked_at < market.trade_days[0].bounds()[1] + timedelta(seconds=GRACE_S))
    assert stale[0].to_dict()["feed"] == "fake feed"
    assert [r.message for r in caplog.records].count("DATA_STALE") == 1


def test_wall_clock_trades_a_partial_bar_after_the_partial_wait(market: FakeMarket) -> None:
    fake = FakeTime(market.start_time())
    close = market.trade_days[0].bounds()[1]
    published = {market.key(0): _everyone_at(close) | {"EEE": close + timedelta(hours=5)}}
    tick = (clock := _clock(market, fake, published)).next_tick(None)
    assert tick is not None and tick.trade and close + timedelta(seconds=PARTIAL_S) <= fake.now
    assert clock.status().missing == ("EEE",) and not clock.status().stale


class FlakyData(FakeData):
    """Unreachable (past the client's retries) for the first ``failures`` questions."""

    def __init__(self, now: Callable[[], datetime], published: dict[int, dict[str, datetime]], failures: int) -> None:
        super().__init__(now, published)
        self.failures = failures

    def available(self, key: int) -> frozenset[str]:
        if self.failures:
            self.failures -= 1
            raise DataSourceError("Alpaca market data GET /v2/stocks/bars failed after 4 attempts: HTTP 503")
        return super().available(key)


def test_wall_clock_rides_out_a_market_data_outage(market: FakeMarket, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime(market.start_time())
    close = market.trade_days[0].bounds()[1]
    data = FlakyData(lambda: fake.now, {market.key(0): _everyone_at(close)}, failures=3)
    clock = WallClock(
        ListCalendar(_sessions(market)), "1d", data, lambda: False, grace_s=GRACE_S, partial_wait_s=PARTIAL_S,
        poll_interval_s=POLL_S, now=lambda: fake.now, sleep=fake.sleep,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="ai_trading.runtime.wall_clock"):
        tick = clock.next_tick(None)
    assert tick is not None and tick.trade and data.failures == 0
    assert close + timedelta(seconds=3 * POLL_S) <= fake.now
    assert [r.message for r in caplog.records].count("DATA_FEED_UNREACHABLE") == 3


def test_wall_clock_catches_up_without_trading_on_passed_bars(market: FakeMarket) -> None:
    fake = FakeTime(market.trade_days[3].bounds()[1] + timedelta(minutes=1))
    everything = {market.key(i): _everyone_at(market.trade_days[i].bounds()[1]) for i in range(5)}
    clock = _clock(market, fake, everything)
    ticks = [clock.next_tick(market.key(0)), clock.next_tick(market.key(1)), clock.next_tick(market.key(2))]
    assert [(t.bar_ts, t.trade) for t in ticks if t is not None] == [(market.key(1), False), (market.key(2), False), (market.key(3), True)]
    assert fake.sleeps == []


# --- the live loop -----------------------------------------------------------------------


def test_live_loop_trades_each_close_through_alpaca(tmp_path: Path, server: FakeAlpaca, market: FakeMarket) -> None:
    config = live_config(tmp_path, server.base_url)
    assert run_in_process(config, server, tmp_path / "run", "live", market.key(3))
    cids = server.client_order_ids()
    assert cids and len(cids) == len(set(cids))
    with RunState(tmp_path / "run", read_only=True) as state:
        bars = state.equity_curve().column("bar_ts").to_pylist()
        assert bars == [market.key(i) for i in range(4)]
        assert state.cursor().orders == len(cids)
        fills = int(state.query("SELECT count(*) AS n FROM applied_fills").column("n")[0].as_py())
    assert fills == len(server.state.activities) > 0  # every fill folded in once
    with MarketDataStore(config.data.db_path, read_only=True) as store:  # the forming bar never stored
        assert store.last_bar_times(SYMBOLS, "1d") == dict.fromkeys(SYMBOLS, utc_datetime(market.key(3)))


SAFE_REQUEST_FAULTS = [
    ("GET", "/v2/stocks/bars", "status:503"),
    ("GET", "/v2/stocks/bars", "retry_after:0"),
    ("GET", "/v2/stocks/bars", "sleep:0.5"),
    ("GET", "/v2/clock", "status:502"),
    ("GET", "/v2/calendar", "sleep:0.5"),
    ("GET", "/v2/orders", "retry_after:0"),
    ("GET", "/v2/orders", "sleep:0.5"),
    ("GET", "/v2/account/activities/FILL", "status:500"),
    ("GET", "/v2/account/activities/FILL", "sleep:0.5"),
    ("GET", "/v2/positions", "status:429"),
    ("GET", "/v2/positions", "sleep:0.5"),
]
SUBMIT_FAULTS = ["status:503", "accept_then_sleep:0.5", "accept_then_drop", "retry_after:0"]


def _clean_run(tmp_path: Path, market: FakeMarket, until: int) -> list[str]:
    with FakeAlpaca() as clean:
        publish(clean, market)
        clean.set_time(market.start_time())
        assert run_in_process(live_config(tmp_path / "clean", clean.base_url), clean, tmp_path / "clean" / "run", "live", until)
        return sorted(clean.client_order_ids())


def test_retried_request_faults_change_nothing(tmp_path: Path, server: FakeAlpaca, market: FakeMarket) -> None:
    """429, 5xx and timeouts on every kind of safe request: retried, the same orders result."""
    expected = _clean_run(tmp_path, market, market.key(3))
    for method, path, action in SAFE_REQUEST_FAULTS:
        server.fault(method, path, action)
    assert run_in_process(live_config(tmp_path / "faulty", server.base_url), server, tmp_path / "faulty" / "run", "live", market.key(3))
    assert server.state.faults == []  # each fault was met
    assert sorted(server.client_order_ids()) == expected


def test_order_submission_faults_never_duplicate_an_order(tmp_path: Path, server: FakeAlpaca, market: FakeMarket) -> None:
    """A submission that failed (429, 5xx) or whose answer was lost (timeout, dropped
    connection) is looked up by client order id and, when it never arrived, resent under
    the same id at the next poll: each order reaches Alpaca exactly once."""
    for action in SUBMIT_FAULTS:
        server.fault("POST", "/v2/orders", action)
    assert run_in_process(live_config(tmp_path, server.base_url), server, tmp_path / "run", "live", market.key(4))
    assert server.state.faults == []
    cids = server.client_order_ids()
    assert len(cids) == len(set(cids)), "an order reached Alpaca twice"
    with RunState(tmp_path / "run", read_only=True) as state:
        assert state.cursor().orders == len(cids)  # and none was lost


def test_restart_mid_session_sends_no_order_twice_and_resumes_at_the_right_bar(tmp_path: Path, server: FakeAlpaca, market: FakeMarket) -> None:
    until = market.key(4)
    expected = _clean_run(tmp_path, market, until)
    root = tmp_path / "killed"
    root.mkdir()
    command = [sys.executable, "-m", "tests.runtime.live_harness", server.base_url, str(root), "live", str(until)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    kills = 0
    for delay in (3.0, 1.0, 1.5):  # the first start pays for the imports
        child = subprocess.Popen(command, cwd=REPO, env=env)
        seen = len(server.client_order_ids())
        deadline = time.monotonic() + delay + 30
        while time.monotonic() < deadline and child.poll() is None and len(server.client_order_ids()) == seen:
            time.sleep(0.05)
        time.sleep(delay * 0.1)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
    final = subprocess.run(command, check=False, cwd=REPO, env=env, timeout=120)
    assert final.returncode == 0 and kills >= 2
    cids = server.client_order_ids()
    assert len(cids) == len(set(cids)), "an order was sent twice"
    assert sorted(cids) == expected
    with RunState(root / "run", read_only=True) as state:
        assert state.equity_curve().column("bar_ts").to_pylist() == [market.key(i) for i in range(5)]


# --- the real-money flag -----------------------------------------------------------------


def test_a_live_base_url_is_refused_without_the_flag() -> None:
    with pytest.raises(StartupGateFailed, match="--i-mean-real-money"):
        trading_base_url(LIVE_ENDPOINT, real_money=False)
    with pytest.raises(StartupGateFailed, match="real money"):
        trading_base_url("https://alpaca-proxy.example.com", real_money=False)
    assert trading_base_url("https://paper-api.alpaca.markets", real_money=False) == "https://paper-api.alpaca.markets"
    assert trading_base_url("https://paper-api.alpaca.markets", real_money=True) == LIVE_ENDPOINT
    assert trading_base_url(LIVE_ENDPOINT, real_money=True) == LIVE_ENDPOINT


def test_live_command_refuses_the_live_endpoint_before_any_request(tmp_path: Path, server: FakeAlpaca) -> None:
    env = os.environ | {
        "APCA_API_BASE_URL": LIVE_ENDPOINT, "APCA_API_DATA_URL": server.base_url, "APCA_API_KEY_ID": KEY_ID,
        "APCA_API_SECRET_KEY": SECRET_KEY, "AI_TRADING_CONFIG": "",
    }  # fmt: skip
    command = [str(REPO / ".venv/bin/ai-trading"), "live", "--model", "demo", "--broker", "alpaca", "--symbols", "AAA",
               "--db", str(tmp_path / "m.duckdb"), "--out", str(tmp_path / "run"), "--dsn", f"sqlite:///{tmp_path / 'oms.sqlite'}"]  # fmt: skip
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--i-mean-real-money" in result.stderr and "real money" in result.stderr
    assert server.state.requests == []  # refused before anything was asked of any server


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_paper_cli_stops_within_a_second_on_a_signal_while_waiting_for_a_close(tmp_path: Path, server: FakeAlpaca, signum: int) -> None:
    # Real time: today's session closes in two hours; the history is the days before.
    market = make_market()
    now = datetime.now(UTC)
    local = now.astimezone(NEW_YORK)
    today = len(market.sessions) - 2  # then tomorrow's session, so that the market clock knows a next open
    sessions = [replace(s, day=local.date() + timedelta(days=i - today), close="16:00") for i, s in enumerate(market.sessions)]
    opens, closes = (local - timedelta(hours=1)).strftime("%H:%M"), (local + timedelta(hours=2)).strftime("%H:%M")
    if closes < opens:
        pytest.skip("the two-hour session would cross midnight in New York: run again later")
    sessions[today] = replace(sessions[today], open=opens, close=closes)
    publish(server, FakeMarket(sessions, market.ohlc))
    config_file = tmp_path / "config.toml"
    config_file.write_text(_config_toml(tmp_path))
    env = os.environ | {
        "APCA_API_BASE_URL": server.base_url, "APCA_API_DATA_URL": server.base_url, "APCA_API_KEY_ID": KEY_ID,
        "APCA_API_SECRET_KEY": SECRET_KEY,
    }  # fmt: skip
    command = [str(REPO / ".venv/bin/ai-trading"), "paper", "--model", "demo", "--symbols", ",".join(SYMBOLS),
               "--db", str(tmp_path / "m.duckdb"), "--out", str(tmp_path / "run"), "--config", str(config_file), "--json"]  # fmt: skip
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "run" / "run.json").exists() and child.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    sent = time.monotonic()
    child.send_signal(signum)
    out, err = child.communicate(timeout=30)
    elapsed = time.monotonic() - sent
    assert child.returncode == 0, err
    assert elapsed < 1.0 + 0.5  # the clock notices within a slice; the summary takes the rest
    assert f"paper stopped by signal {int(signum)}" in err
    assert json.loads(out)["stopped"] is True and json.loads(out)["mode"] == "paper"


def _config_toml(root: Path) -> str:
    return f'[runtime]\nhistory_bars = 30\nruns_dir = "{root / "runs"}"\n'
