"""The DuckDB store: panels equal a row-by-row reference of what was written, time bounds
select [start, end) whatever their spelling, the built-in set arrives on first use."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_trading.config import DataConfig, load_config
from ai_trading.data import DAILY, MINUTE, MarketDataStore, open_store
from ai_trading.errors import DataStoreError, DataValidationError

FIELDS = ("open", "high", "low", "close", "volume", "spread_bps")
DAY_NS = 86_400 * 10**9
BASE_NS = int(np.datetime64("2024-03-01", "ns").astype(np.int64))
# The same instant, 2024-03-05 00:00 UTC, spelled every accepted way.
BOUND_SPELLINGS = [
    "2024-03-05",
    "2024-03-05T00:00:00",
    "2024-03-05T01:00:00+01:00",
    date(2024, 3, 5),
    datetime(2024, 3, 5),
    datetime(2024, 3, 5, 1, tzinfo=timezone(timedelta(hours=1))),
    BASE_NS + 4 * DAY_NS,
    np.datetime64("2024-03-05T00:00", "ns"),
]


def bar_row(symbol: str, ts_ns: int, price: float, spread: float | None) -> dict[str, object]:
    return {"symbol": symbol, "ts": ts_ns, "open": price, "high": price * 1.01, "low": price * 0.99,
            "close": price * 1.005, "volume": price * 10, "spread_bps": spread}  # fmt: skip


def write_parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    columns = {name: [row[name] for row in rows] for name in ("symbol", *FIELDS)}
    ts = pa.array([row["ts"] for row in rows], pa.timestamp("ns", tz="UTC"))
    pq.write_table(pa.table({"ts": ts, **columns}), path)
    return path


def reference_panel(rows: list[dict[str, object]], symbols: list[str], start: int, end: int) -> dict[str, np.ndarray]:
    kept = [row for row in rows if start <= row["ts"] < end and row["symbol"] in symbols]
    times = sorted({row["ts"] for row in kept})
    out = {name: np.full((len(times), len(symbols)), np.nan) for name in FIELDS}
    out["valid"] = np.zeros((len(times), len(symbols)), dtype=bool)
    for row in kept:
        t, s = times.index(row["ts"]), symbols.index(row["symbol"])
        out["valid"][t, s] = True
        for name in FIELDS:
            out[name][t, s] = np.nan if row[name] is None else row[name]
    out["ts"] = np.array(times, dtype=np.int64)
    return out


@st.composite
def stored_rows(draw: st.DrawFn) -> tuple[list[list[dict[str, object]]], list[str], int, int]:
    """Rows of up to 4 symbols over up to 30 minutes, split into files per symbol group."""
    names = [f"S{i}" for i in range(draw(st.integers(1, 4)))]
    files = []
    for name in names:
        minutes = sorted(draw(st.sets(st.integers(0, 29), min_size=1, max_size=30)))
        price = draw(st.floats(1.0, 1000.0))
        files.append([bar_row(name, BASE_NS + m * 60 * 10**9, price + m, draw(st.none() | st.floats(0.0, 50.0))) for m in minutes])
    start = BASE_NS + draw(st.integers(-5, 30)) * 60 * 10**9
    end = start + draw(st.integers(0, 35)) * 60 * 10**9
    symbols = draw(st.permutations(names).map(lambda p: p[: draw(st.integers(1, len(p)))]))
    return files, list(symbols), start, end


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored_rows())
def test_panel_matches_reference_of_written_rows(tmp_path_factory: pytest.TempPathFactory, case) -> None:
    files, symbols, start, end = case
    directory = tmp_path_factory.mktemp("store")
    paths = [write_parquet(directory / f"f{k}.parquet", rows) for k, rows in enumerate(files)]
    with MarketDataStore(directory / "bars.duckdb") as store:
        store.ingest(paths, frequency="1min")  # sparse minutes: a spacing would not tell
        panel = store.panel(symbols, start, end)
    expected = reference_panel([row for rows in files for row in rows], symbols, start, end)
    assert panel.symbols == tuple(symbols)
    np.testing.assert_array_equal(panel.ts, expected["ts"])
    np.testing.assert_array_equal(panel.valid, expected["valid"])
    for name in FIELDS[:-1]:
        np.testing.assert_array_equal(getattr(panel, name), expected[name])
    if np.isnan(expected["spread_bps"]).all():
        assert panel.spread_bps is None
    else:
        np.testing.assert_array_equal(panel.spread_bps, expected["spread_bps"])


@pytest.fixture(scope="module")
def daily_store(tmp_path_factory: pytest.TempPathFactory) -> MarketDataStore:
    with MarketDataStore(tmp_path_factory.mktemp("daily") / "bars.duckdb") as store:
        rows = [bar_row(s, BASE_NS + d * DAY_NS, 10.0 + d, 1.0) for d in range(10) for s in ("A", "B")]
        store.ingest(write_parquet(store.path.parent / "bars.parquet", rows))
        yield store


@pytest.mark.parametrize("bound", BOUND_SPELLINGS, ids=[repr(b) for b in BOUND_SPELLINGS])
def test_time_bounds_in_every_spelling_select_start_inclusive_end_exclusive(daily_store: MarketDataStore, bound: object) -> None:
    after = daily_store.panel(["A"], start=bound)
    before = daily_store.panel(["A"], end=bound)
    assert after.ts[0] == BASE_NS + 4 * DAY_NS and after.n_bars == 6
    assert before.ts[-1] == BASE_NS + 3 * DAY_NS and before.n_bars == 4


def test_unparseable_bound_is_refused(daily_store: MarketDataStore) -> None:
    with pytest.raises(DataValidationError, match="start='next week'"):
        daily_store.panel(start="next week")


def test_query_arrow_columns_order_and_filters(daily_store: MarketDataStore) -> None:
    table = daily_store.query_arrow(["B", "A"], start="2024-03-02", end="2024-03-04", sort=True)
    assert table.column_names == ["symbol", "frequency", "ts", *FIELDS]
    assert set(table.column("frequency").to_pylist()) == {"1d"}
    assert table.column("symbol").cast(pa.string()).to_pylist() == ["A", "A", "B", "B"]
    assert table.column("ts").type == pa.timestamp("us", tz="UTC")
    assert table.column("ts").cast(pa.int64()).to_pylist() == [(BASE_NS + d * DAY_NS) // 1000 for d in (1, 2, 1, 2)]
    assert daily_store.query_arrow().num_rows == daily_store.row_count() == 20


def test_asking_for_a_symbol_twice_is_refused(daily_store: MarketDataStore) -> None:
    with pytest.raises(DataValidationError, match="once"):
        daily_store.panel(["A", "A"])


def test_info_reports_rows_range_and_spacing(tmp_path: Path) -> None:
    with MarketDataStore(tmp_path / "bars.duckdb") as store:
        store.generate(DAILY, 2, 30, seed=1)
        store.generate(MINUTE, 2, 100, seed=1)
        info = store.info()
    by_symbol = {s.symbol: s for s in info.symbols}
    assert info.rows == 2 * 30 + sum(by_symbol[s].rows for s in ("SYNM00", "SYNM01"))
    assert by_symbol["SYN00"].rows == 30 and by_symbol["SYN00"].bar_seconds == 86400.0
    assert by_symbol["SYNM00"].bar_seconds == 60.0
    assert by_symbol["SYN00"].first == datetime(2015, 1, 2, tzinfo=UTC)


def test_open_store_writes_the_builtin_set_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = DataConfig(db_path=tmp_path / "cache" / "bars.duckdb", synthetic_symbols=5, synthetic_daily_bars=50)
    with caplog.at_level(logging.INFO, logger="ai_trading.data.store"):
        with open_store(config) as store:
            first = store.query_arrow(sort=True).to_pylist()
        with open_store(config) as store:
            assert store.query_arrow(sort=True).to_pylist() == first
        assert store.read_only
    events = [record for record in caplog.records if record.getMessage() == "DATA_BUILTIN_GENERATED"]
    assert len(events) == 1 and events[0].rows == len(first) == 5 * 50


def test_read_only_store(tmp_path: Path) -> None:
    with pytest.raises(DataStoreError, match="cannot open"):
        MarketDataStore(tmp_path / "absent.duckdb", read_only=True)
    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    with pytest.raises(DataStoreError, match="holds no bars"):
        MarketDataStore(tmp_path / "other.duckdb", read_only=True)
    path = tmp_path / "bars.duckdb"
    MarketDataStore(path).close()
    with MarketDataStore(path, read_only=True) as store:
        with pytest.raises(DataStoreError, match="read-only"):
            store.generate(DAILY, 1, 5, seed=0)


def test_db_path_comes_from_the_environment(tmp_path: Path) -> None:
    config = load_config(environ={"AI_TRADING_DATA_DB": str(tmp_path / "x.duckdb")})
    assert config.data.db_path == tmp_path / "x.duckdb"
