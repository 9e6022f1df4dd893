"""Alpaca market-data bars: client paging, retries and errors, incremental fetch into the
store, and ``ai-trading data fetch``, against a local server speaking Alpaca's JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.brokers.alpaca_server import KEY_ID, SECRET_KEY, FakeAlpaca

from ai_trading.cli import main
from ai_trading.commands.data import ADJUSTMENT_CHOICES, FEED_CHOICES
from ai_trading.config import AlpacaConfig, load_config
from ai_trading.data import MarketDataStore
from ai_trading.data.alpaca_bars import (
    ADJUSTMENTS,
    BARS_PATH,
    FEEDS,
    RAW_SCHEMA,
    AlpacaBarsClient,
    PageProgress,
    alpaca_timeframe,
    fetch_bars,
)
from ai_trading.errors import ConfigError, DataConflictError, DataSourceError, DataValidationError
from ai_trading.http_retry import RetryPolicy, request_with_retries, retry_after_s

NEW_YORK = ZoneInfo("America/New_York")
TIMEOUT_S = 0.3
# Business days from 2 January to 28 March 2024: New York changes to summer time on
# 10 March, so Alpaca's midnight-New-York stamps move from 05:00Z to 04:00Z.
DAYS = [d.astype(object) for d in np.arange(np.datetime64("2024-01-02"), np.datetime64("2024-03-29")) if np.is_busday(d)]
SYMBOLS = ("SPY", "QQQ")
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 4, 1, tzinfo=UTC)
TIMEFRAMES = [("1Day", "1d", "1Day"), ("1d", "1d", "1Day"), ("1Min", "1min", "1Min"), ("5Min", "5min", "5Min"), ("1Hour", "1h", "1Hour")]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _bar(moment: datetime, price: float, volume: float) -> dict[str, Any]:
    return {"t": _stamp(moment), "o": price, "h": price + 1.0, "l": price - 1.0, "c": price + 0.5, "v": volume, "n": 7, "vw": price}


def daily_bars(base: float, days: list[date] = DAYS) -> list[dict[str, Any]]:
    """Alpaca's daily bars: stamped at midnight New York of the session date."""
    return [_bar(datetime(d.year, d.month, d.day, tzinfo=NEW_YORK), base + i, 1000.0 + i) for i, d in enumerate(days)]


def minute_bars(base: float, session: date, count: int) -> list[dict[str, Any]]:
    open_ = datetime(session.year, session.month, session.day, 9, 30, tzinfo=NEW_YORK)
    return [_bar(open_ + timedelta(minutes=i), base + 0.01 * i, 100.0 + i) for i in range(count)]


def reference_table(bars: dict[str, list[dict[str, Any]]], start: datetime, end: datetime) -> pa.Table:
    """What the client must return, computed directly from the served JSON."""
    rows = [
        (symbol, bar)
        for symbol in sorted(bars)
        for bar in bars[symbol]
        if start <= datetime.fromisoformat(bar["t"]) < end
    ]
    columns = {
        "symbol": [symbol for symbol, _ in rows],
        "ts": [datetime.fromisoformat(bar["t"]) for _, bar in rows],
        **{name: [float(bar[key]) for _, bar in rows] for name, key in zip(("open", "high", "low", "close", "volume"), "ohlcv")},
    }
    return pa.table(columns, schema=RAW_SCHEMA)


@pytest.fixture()
def server() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as running:
        yield running


def _config(server: FakeAlpaca, **changes: Any) -> AlpacaConfig:
    settings_ = {"data_url": server.base_url, "key_id": KEY_ID, "secret_key": SECRET_KEY, "timeout_s": TIMEOUT_S, "retry_backoff_s": 0.01}
    return AlpacaConfig(**{**settings_, **changes})


@pytest.fixture()
def client(server: FakeAlpaca) -> Iterator[AlpacaBarsClient]:
    with AlpacaBarsClient(_config(server)) as bars_client:
        yield bars_client


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[MarketDataStore]:
    with MarketDataStore(tmp_path / "bars.duckdb") as opened:
        yield opened


def _serve_daily(server: FakeAlpaca) -> dict[str, list[dict[str, Any]]]:
    bars = {"SPY": daily_bars(470.0), "QQQ": daily_bars(400.0)}
    for symbol, items in bars.items():
        server.add_bars(symbol, items)
    return bars


def _stored(store: MarketDataStore, symbols: tuple[str, ...] = SYMBOLS) -> pa.Table:
    return store.query_arrow(list(symbols), sort=True)


def _closes(store: MarketDataStore) -> dict[str, list[float]]:
    return {symbol: store.query_arrow([symbol], sort=True).column("close").to_pylist() for symbol in SYMBOLS}


# -- configuration and client ------------------------------------------------------------


def test_data_url_comes_from_the_alpaca_environment_variable() -> None:
    assert load_config(environ={"APCA_API_DATA_URL": "http://127.0.0.1:9"}).alpaca.data_url == "http://127.0.0.1:9"
    assert load_config(environ={}).alpaca.data_url == "https://data.alpaca.markets"


def test_cli_choices_are_the_clients() -> None:
    assert (ADJUSTMENT_CHOICES, FEED_CHOICES) == (ADJUSTMENTS, FEEDS)


@pytest.mark.parametrize(("spelled", "frequency", "alpaca"), TIMEFRAMES)
def test_timeframes_map_through_parse_frequency(spelled: str, frequency: str, alpaca: str) -> None:
    assert alpaca_timeframe(spelled) == alpaca_timeframe(frequency) == alpaca


def test_timeframe_alpaca_does_not_serve_is_refused() -> None:
    with pytest.raises(DataValidationError, match="Alpaca timeframes"):
        alpaca_timeframe("24h")


def test_missing_credentials_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID"):
        AlpacaBarsClient(AlpacaConfig(key_id="", secret_key=""))


def test_pages_cover_every_bar_of_several_symbols(server: FakeAlpaca, client: AlpacaBarsClient) -> None:
    bars = _serve_daily(server)
    server.state.bars_page_size = 7  # 2 x 61 bars: QQQ's last bars share a page with SPY's first
    table = client.bars(list(SYMBOLS), "1Day", START, END)
    assert table.equals(reference_table(bars, START, END))
    queries = server.bars_queries()
    assert len(queries) == -(-2 * len(DAYS) // 7)
    assert all(q["symbols"] == "SPY,QQQ" and q["timeframe"] == "1Day" and q["limit"] == "10000" for q in queries)
    assert "page_token" not in queries[0] and all("page_token" in q for q in queries[1:])
    assert (queries[0]["start"], queries[0]["end"], queries[0]["adjustment"]) == ("2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z", "raw")
    assert "feed" not in queries[0]


def test_end_is_exclusive_and_feed_and_adjustment_are_sent(server: FakeAlpaca, client: AlpacaBarsClient) -> None:
    bars = _serve_daily(server)
    end = datetime.fromisoformat(bars["SPY"][10]["t"])  # Alpaca's end is inclusive; ours is not
    table = client.bars(["SPY"], "1Day", START, end, adjustment="all", feed="iex")
    assert table.num_rows == 10 and table.equals(reference_table({"SPY": bars["SPY"]}, START, end))
    assert {k: server.bars_queries()[0][k] for k in ("adjustment", "feed")} == {"adjustment": "all", "feed": "iex"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    page_size=st.integers(1, 40),
    picked=st.lists(st.sampled_from(("SPY", "QQQ", "IWM")), min_size=1, max_size=3, unique=True),
    first=st.integers(0, 60),
    length=st.integers(1, 40),
)
def test_paging_matches_the_served_bars_for_any_page_size(
    server: FakeAlpaca, client: AlpacaBarsClient, page_size: int, picked: list[str], first: int, length: int
) -> None:
    if not server.state.bars:
        server.add_bars("SPY", daily_bars(470.0))
        server.add_bars("QQQ", daily_bars(400.0, DAYS[::2]))  # other days: the symbols' bars interleave
    server.state.bars_page_size = page_size
    start = datetime.combine(DAYS[first], datetime.min.time(), UTC)
    end = start + timedelta(days=length)
    served = {symbol: server.state.bars.get(symbol, []) for symbol in picked}
    assert client.bars(picked, "1Day", start, end).equals(reference_table(served, start, end))


# -- retries and errors ------------------------------------------------------------------


def test_retry_after_is_honoured(server: FakeAlpaca) -> None:
    _serve_daily(server)
    server.fault("GET", BARS_PATH, "retry_after:2")
    waits: list[float] = []
    with httpx.Client(base_url=server.base_url, headers={"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}) as http:
        response = request_with_retries(
            http, "GET", BARS_PATH, params={"symbols": "SPY", "timeframe": "1Day", "start": "2024-01-01T00:00:00Z",
            "end": "2024-01-10T00:00:00Z"}, policy=RetryPolicy(3, 0.01), error=DataSourceError, service="test",
            event="TEST_RETRY", sleep=waits.append,
        )  # fmt: skip
    assert response.status_code == 200 and len(response.json()["bars"]["SPY"]) == 6
    assert waits == [2.0]


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    asked = retry_after_s(httpx.Response(429, headers={"Retry-After": format_datetime(later, usegmt=True)}))
    assert asked is not None and 28.0 <= asked <= 30.0
    assert retry_after_s(httpx.Response(429)) is None
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "soon"})) is None


def test_429_then_success_fetches_everything(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    bars = _serve_daily(server)
    server.state.bars_page_size = 50
    server.fault("GET", BARS_PATH, "sleep:0")  # the first page passes, the second is throttled once
    server.fault("GET", BARS_PATH, "retry_after:0")
    report = fetch_bars(store, client, list(SYMBOLS), "1Day", START, END)
    assert report.rows == report.new == 2 * len(DAYS) and report.pages == 3
    assert len(server.bars_queries()) == 4
    assert _stored(store).num_rows == sum(len(items) for items in bars.values())


def test_5xx_until_retries_run_out_is_a_clear_error_and_nothing_is_written(
    server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore
) -> None:
    _serve_daily(server)
    server.state.bars_page_size = 50
    server.fault("GET", BARS_PATH, "sleep:0")  # page 1 arrives; page 2 never does
    for _ in range(1 + AlpacaConfig().max_retries):
        server.fault("GET", BARS_PATH, "status:503")
    with pytest.raises(DataSourceError, match=r"failed after 4 attempts: HTTP 503"):
        fetch_bars(store, client, list(SYMBOLS), "1Day", START, END)
    assert store.row_count() == 0


def test_a_timeout_is_retried(server: FakeAlpaca, client: AlpacaBarsClient) -> None:
    bars = _serve_daily(server)
    server.fault("GET", BARS_PATH, f"sleep:{TIMEOUT_S * 3}")
    assert client.bars(["SPY"], "1Day", START, END).equals(reference_table({"SPY": bars["SPY"]}, START, END))
    assert len(server.bars_queries()) == 2


def test_timeouts_until_retries_run_out_name_the_failure(server: FakeAlpaca) -> None:
    _serve_daily(server)
    for _ in range(2):
        server.fault("GET", BARS_PATH, f"sleep:{TIMEOUT_S * 3}")
    with AlpacaBarsClient(_config(server, max_retries=1)) as impatient:
        with pytest.raises(DataSourceError, match="failed after 2 attempts: ReadTimeout"):
            impatient.bars(["SPY"], "1Day", START, END)


def test_refused_credentials_name_the_fix_and_never_the_secret(server: FakeAlpaca, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-never-shown"
    with AlpacaBarsClient(_config(server, secret_key=wrong)) as refused:
        with pytest.raises(DataSourceError, match="HTTP 401.*APCA_API_KEY_ID and APCA_API_SECRET_KEY") as caught:
            refused.bars(["SPY"], "1Day", START, END)
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert wrong not in str(caught.value) and wrong not in logged and KEY_ID not in str(caught.value)


def test_422_shows_alpacas_message(server: FakeAlpaca, client: AlpacaBarsClient) -> None:
    with pytest.raises(DataSourceError, match="HTTP 422: invalid symbol: SP\\$Y"):
        client.bars(["SPY", "SP$Y"], "1Day", START, END)
    assert len(server.bars_queries()) == 1  # a 422 is final, not retried


def test_bad_bar_from_the_server_is_refused_and_nothing_is_written(
    server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore
) -> None:
    bars = _serve_daily(server)
    bars["QQQ"][30]["h"] = bars["QQQ"][30]["l"] - 0.5  # high < low
    with pytest.raises(DataValidationError, match="high must be >="):
        fetch_bars(store, client, list(SYMBOLS), "1Day", START, END)
    assert store.row_count() == 0


def test_a_bar_without_a_field_is_a_source_error(server: FakeAlpaca, client: AlpacaBarsClient) -> None:
    bars = daily_bars(470.0, DAYS[:3])
    del bars[1]["c"]
    server.add_bars("SPY", bars)
    with pytest.raises(DataSourceError, match="bar 2 of SPY lacks c"):
        client.bars(["SPY"], "1Day", START, END)


def test_a_bar_with_a_value_that_is_not_a_number_is_refused(server: FakeAlpaca, client: AlpacaBarsClient) -> None:
    bars = daily_bars(470.0, DAYS[:3])
    bars[2]["v"] = "lots"
    server.add_bars("SPY", bars)
    with pytest.raises(DataValidationError, match="numeric o/h/l/c/v"):
        client.bars(["SPY"], "1Day", START, END)


def test_start_not_before_end_is_refused(client: AlpacaBarsClient, store: MarketDataStore) -> None:
    with pytest.raises(DataValidationError, match="start must be before end"):
        fetch_bars(store, client, ["SPY"], "1Day", END, START)


# -- fetch into the store ----------------------------------------------------------------


def test_daily_bars_land_on_their_session_dates(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    bars = _serve_daily(server)
    assert {bars["SPY"][0]["t"][11:], bars["SPY"][-1]["t"][11:]} == {"05:00:00Z", "04:00:00Z"}  # both sides of DST
    fetch_bars(store, client, list(SYMBOLS), "1Day", START, END)
    stored = _stored(store)
    sessions = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in DAYS]
    assert stored.column("ts").to_pylist() == sessions + sessions
    assert set(stored.column("frequency").to_pylist()) == {"1d"}
    assert _closes(store) == {symbol: [b["c"] for b in items] for symbol, items in bars.items()}


def test_minute_bars_keep_the_instant_they_start(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    bars = minute_bars(470.0, date(2024, 3, 11), 90)
    server.add_bars("SPY", bars)
    server.state.bars_page_size = 40
    report = fetch_bars(store, client, ["SPY"], "1Min", START, END)
    assert (report.frequency, report.rows, report.pages) == ("1min", 90, 3)
    stored = store.query_arrow(["SPY"], sort=True)
    assert stored.column("ts").to_pylist() == [datetime.fromisoformat(b["t"]) for b in bars]
    assert stored.column("ts").to_pylist()[0] == datetime(2024, 3, 11, 13, 30, tzinfo=UTC)


def test_fetching_again_appends_only_the_missing_bars(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    bars = _serve_daily(server)
    middle = datetime(2024, 2, 1, tzinfo=UTC)
    first = fetch_bars(store, client, ["SPY"], "1Day", START, middle)
    in_january = sum(d.month == 1 for d in DAYS)
    assert first.rows == first.new == in_january
    second = fetch_bars(store, client, list(SYMBOLS), "1Day", START, END)
    queries = server.bars_queries()[1:]
    # QQQ has nothing stored and starts at START; SPY starts after its last stored bar.
    assert sorted((q["symbols"], q["start"]) for q in queries) == [("QQQ", "2024-01-01T00:00:00Z"), ("SPY", "2024-02-01T00:00:00Z")]
    assert {s.symbol: s.rows for s in second.symbols} == {"SPY": len(DAYS) - in_january, "QQQ": len(DAYS)}
    assert (second.new, second.present) == (2 * len(DAYS) - in_january, 0)
    assert _closes(store) == {symbol: [b["c"] for b in items] for symbol, items in bars.items()}
    # Both symbols now end on 28 March: one request from the 29th, which holds nothing.
    third = fetch_bars(store, client, list(SYMBOLS), "1Day", START, END)
    assert (third.pages, third.rows, third.new) == (1, 0, 0)
    assert (server.bars_queries()[-1]["symbols"], server.bars_queries()[-1]["start"]) == ("SPY,QQQ", "2024-03-29T00:00:00Z")
    up_to_date = fetch_bars(store, client, list(SYMBOLS), "1Day", START, datetime(2024, 3, 29, tzinfo=UTC))
    assert (up_to_date.pages, up_to_date.rows) == (0, 0) and len(server.bars_queries()) == 4


def test_incremental_minute_fetch_starts_at_the_next_minute(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    server.add_bars("SPY", minute_bars(470.0, date(2024, 1, 3), 30))
    fetch_bars(store, client, ["SPY"], "1Min", START, datetime(2024, 1, 3, 14, 40, tzinfo=UTC))
    report = fetch_bars(store, client, ["SPY"], "1Min", START, END)
    assert server.bars_queries()[-1]["start"] == "2024-01-03T14:40:00Z"
    assert (report.rows, report.new) == (20, 20) and store.row_count() == 30


def test_bars_still_forming_are_not_written(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    _serve_daily(server)
    last_session = datetime(2024, 3, 28, 15, 0, tzinfo=NEW_YORK)  # during the last served session
    report = fetch_bars(store, client, ["SPY"], "1Day", START, END, now=last_session)
    assert (report.rows, report.forming) == (len(DAYS) - 1, 1)
    after = fetch_bars(store, client, ["SPY"], "1Day", START, END, now=last_session + timedelta(days=1))
    assert (after.rows, after.new, after.forming) == (1, 1, 0) and store.row_count() == len(DAYS)


def test_replace_fetches_again_and_overwrites_changed_bars(
    server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore
) -> None:
    bars = _serve_daily(server)
    fetch_bars(store, client, ["SPY"], "1Day", START, END)
    bars["SPY"][5]["c"] += 0.25  # Alpaca corrected one bar
    report = fetch_bars(store, client, ["SPY"], "1Day", START, END, replace=True)
    assert (report.rows, report.new, report.present) == (len(DAYS), 0, len(DAYS))
    assert store.query_arrow(["SPY"], sort=True).column("close").to_pylist()[5] == bars["SPY"][5]["c"]


def test_changed_bars_are_refused_without_replace(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    bars = _serve_daily(server)
    fetch_bars(store, client, ["SPY"], "1Day", START, END)
    bars["SPY"][5]["c"] += 0.25
    # An incremental fetch never asks for stored bars again; the corrected range written
    # over the stored one, as --replace would fetch it, is refused without replace.
    with pytest.raises(DataConflictError, match="1 bars already stored with other values"):
        store.write_source(client.bars(["SPY"], "1Day", START, END), "alpaca", "1d")


def test_progress_is_reported_per_page(server: FakeAlpaca, client: AlpacaBarsClient, store: MarketDataStore) -> None:
    _serve_daily(server)
    server.state.bars_page_size = 100
    seen: list[PageProgress] = []
    fetch_bars(store, client, list(SYMBOLS), "1Day", START, END, on_page=seen.append)
    assert [(p.page, p.rows) for p in seen] == [(1, 100), (2, 2 * len(DAYS) - 100)]


def test_fetch_is_deterministic(server: FakeAlpaca, client: AlpacaBarsClient, tmp_path: Path) -> None:
    _serve_daily(server)
    server.state.bars_page_size = 13
    tables = []
    for name in ("a", "b"):
        with MarketDataStore(tmp_path / f"{name}.duckdb") as target:
            fetch_bars(target, client, list(SYMBOLS), "1Day", START, END)
            tables.append(_stored(target))
    assert tables[0].equals(tables[1])


# -- the same days from another source; the CLI ------------------------------------------


def _env(monkeypatch: pytest.MonkeyPatch, server: FakeAlpaca) -> None:
    monkeypatch.setenv("APCA_API_DATA_URL", server.base_url)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET_KEY)


def test_fetched_and_yfinance_csv_bars_of_the_same_days_share_every_bar(
    server: FakeAlpaca, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Needs the bar-time convention of ai_trading.data.bartime (issue 20): Alpaca's
    05:00Z/04:00Z daily stamps and yfinance's dates key the same sessions."""
    _serve_daily(server)
    _env(monkeypatch, server)
    db = str(tmp_path / "bars.duckdb")
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [f"{d.isoformat()},{50 + i},{51 + i},{49 + i},{50.5 + i},{50.5 + i},{2000 + i}" for i, d in enumerate(DAYS)]
    (tmp_path / "IWM.csv").write_text("\n".join(lines) + "\n")
    assert main(["data", "ingest", str(tmp_path / "IWM.csv"), "--db", db]) == 0
    assert main(["data", "fetch", "--source", "alpaca", "--symbols", "SPY", "--start", "2024-01-01", "--db", db]) == 0
    capsys.readouterr()
    with MarketDataStore(db, read_only=True) as opened:
        panel = opened.panel(["SPY", "IWM"])
    assert panel.ts.size == len(DAYS) and bool(panel.valid.all())


def test_cli_fetch_prints_a_report_and_json(
    server: FakeAlpaca, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve_daily(server)
    server.state.bars_page_size = 50
    _env(monkeypatch, server)
    db = str(tmp_path / "bars.duckdb")
    common = ["data", "fetch", "--source", "alpaca", "--symbols", "SPY,QQQ", "--timeframe", "1Day", "--db", db]
    assert main([*common, "--start", "2024-01-01", "--end", "2024-02-01"]) == 0
    out = capsys.readouterr().out
    in_january = sum(d.month == 1 for d in DAYS)
    assert f"{2 * in_january} 1d bars in 1 page(s)" in out and f"{2 * in_january} new, 0 already present" in out
    assert db in out and SECRET_KEY not in out
    assert main([*common, "--start", "2024-01-01", "--end", "2024-04-01", "--feed", "iex", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["new"], report["present"], report["pages"]) == (2 * (len(DAYS) - in_january), 0, 2)
    assert {s["symbol"]: s["rows"] for s in report["symbols"]} == {"SPY": len(DAYS) - in_january, "QQQ": len(DAYS) - in_january}
    assert report["frequency"] == "1d" and report["path"] == db
    assert server.bars_queries()[-1]["feed"] == "iex"


def test_cli_fetch_errors_are_clear(
    server: FakeAlpaca, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, server)
    monkeypatch.setenv("APCA_API_SECRET_KEY", "not-the-secret")
    db = str(tmp_path / "bars.duckdb")
    args = ["data", "fetch", "--source", "alpaca", "--symbols", "SPY", "--start", "2024-01-01", "--end", "2024-02-01", "--db", db]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "APCA_API_KEY_ID" in err and "not-the-secret" not in err
    with pytest.raises(SystemExit):
        main([*args[:-2], "--start", "yesterday"])
