"""Ingest: every accepted spelling reads the same bars; every kind of bad file is refused
with the file, row and rule named, and leaves the store exactly as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ai_trading.data import MarketDataStore, read_bars
from ai_trading.data import validation as rules
from ai_trading.errors import DataConflictError, DataValidationError, UnknownSymbolError

GOOD_ROWS = [
    # ts, open, high, low, close, volume
    ("2024-01-02", 10.0, 11.0, 9.5, 10.5, 1000.0),
    ("2024-01-03", 10.5, 11.2, 10.1, 11.0, 1500.0),
    ("2024-01-04", 11.0, 11.5, 10.8, 10.9, 0.0),
]
EXPECTED_NS = np.array(["2024-01-02", "2024-01-03", "2024-01-04"], dtype="datetime64[ns]").astype(np.int64)

# (name, file text, symbol argument); each must read back as GOOD_ROWS for symbol "ABC".
SPELLINGS = [
    (
        "yfinance",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        + "".join(f"{d},{o},{h},{lo},{c},{c * 0.98},{int(v)}\n" for d, o, h, lo, c, v in GOOD_ROWS),
        "ABC",
    ),
    (
        "alpaca",
        "t,o,h,l,c,v,n,vw\n" + "".join(f"{d}T00:00:00Z,{o},{h},{lo},{c},{v},7,{c}\n" for d, o, h, lo, c, v in GOOD_ROWS),
        "ABC",
    ),
    (
        "lowercase with symbol column",
        "symbol,timestamp,open,high,low,close,volume\n"
        + "".join(f"ABC,{d} 00:00:00,{o},{h},{lo},{c},{v}\n" for d, o, h, lo, c, v in GOOD_ROWS),
        None,
    ),
    (
        "spreadsheet export with byte-order mark",
        "\ufeffDate,Open,High,Low,Close,Volume\n" + "".join(f"{d},{o},{h},{lo},{c},{v}\n" for d, o, h, lo, c, v in GOOD_ROWS),
        "ABC",
    ),
    (
        "zone offsets",
        "ticker,datetime,open,high,low,close,volume\n"
        + "".join(f"ABC,{d} 05:00:00+05:00,{o},{h},{lo},{c},{v}\n" for d, o, h, lo, c, v in GOOD_ROWS),
        "ABC",
    ),
]

HEADER = "Date,Open,High,Low,Close,Volume\n"
GOOD_LINE = "2024-01-02,10,11,9,10.5,1000\n"
# (case, CSV text, rule, data row or None); the bad line is always the second data row.
BAD_FILES = [
    ("malformed line", HEADER + GOOD_LINE + "2024-01-03,10,11\n", rules.RULE_MALFORMED, 2),
    ("unparseable timestamp", HEADER + GOOD_LINE + "2024-01-3x,10,11,9,10.5,1000\n", rules.RULE_TS_PARSE, 2),
    ("empty timestamp", HEADER + GOOD_LINE + ",10,11,9,10.5,1000\n", rules.RULE_TS_PARSE, 2),
    ("text price", HEADER + GOOD_LINE + "2024-01-03,ten,11,9,10.5,1000\n", rules.RULE_NUMBER, 2),
    ("NaN price", HEADER + GOOD_LINE + "2024-01-03,10,11,9,NaN,1000\n", rules.RULE_PRICE, 2),
    ("empty price", HEADER + GOOD_LINE + "2024-01-03,10,11,,10.5,1000\n", rules.RULE_PRICE, 2),
    ("infinite price", HEADER + GOOD_LINE + "2024-01-03,10,inf,9,10.5,1000\n", rules.RULE_PRICE, 2),
    ("negative price", HEADER + GOOD_LINE + "2024-01-03,-10,11,9,10.5,1000\n", rules.RULE_PRICE, 2),
    ("zero price", HEADER + GOOD_LINE + "2024-01-03,10,11,0,10.5,1000\n", rules.RULE_PRICE, 2),
    ("high below open", HEADER + GOOD_LINE + "2024-01-03,12,11.5,9,10.5,1000\n", rules.RULE_HIGH, 2),
    ("high below close", HEADER + GOOD_LINE + "2024-01-03,10,11,9,11.5,1000\n", rules.RULE_HIGH, 2),
    ("low above open", HEADER + GOOD_LINE + "2024-01-03,9,11,9.5,10.5,1000\n", rules.RULE_LOW, 2),
    ("low above close", HEADER + GOOD_LINE + "2024-01-03,10,11,9.5,9.2,1000\n", rules.RULE_LOW, 2),
    ("negative volume", HEADER + GOOD_LINE + "2024-01-03,10,11,9,10.5,-1\n", rules.RULE_VOLUME, 2),
    ("NaN volume", HEADER + GOOD_LINE + "2024-01-03,10,11,9,10.5,nan\n", rules.RULE_VOLUME, 2),
    ("duplicate timestamp", HEADER + GOOD_LINE + GOOD_LINE, rules.RULE_DUPLICATE, 2),
    ("decreasing timestamp", HEADER + GOOD_LINE + "2024-01-01,10,11,9,10.5,1000\n", rules.RULE_ORDER, 2),
    ("sub-microsecond timestamp", HEADER + "2024-01-02 15:00:00,10,11,9,10.5,1\n2024-01-02 15:01:00.000000001,10,11,9,10.5,1\n", rules.RULE_TS_PRECISION, 2),
    ("zone offset on some rows only", HEADER + GOOD_LINE + "2024-01-03T00:00:00Z,10,11,9,10.5,1\n", rules.RULE_TS_PARSE, 2),
    ("negative spread", HEADER.strip() + ",spread_bps\n2024-01-02,10,11,9,10.5,1000,2\n2024-01-03,10,11,9,10.5,1,-3\n", rules.RULE_SPREAD, 2),
    ("missing close column", "Date,Open,High,Low,Volume\n2024-01-02,10,11,9,1000\n", rules.RULE_COLUMNS, None),
    ("two timestamp columns", "Date,Datetime,Open,High,Low,Close,Volume\n", rules.RULE_AMBIGUOUS, None),
    ("empty file", "", rules.RULE_COLUMNS, None),
]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def contents(store: MarketDataStore) -> list[tuple[object, ...]]:
    return store.query_arrow(sort=True).to_pylist() if store.row_count() else []


@pytest.fixture
def store(tmp_path: Path) -> MarketDataStore:
    with MarketDataStore(tmp_path / "bars.duckdb") as store:
        store.generate("daily", 3, 20, seed=1)
        yield store


@pytest.mark.parametrize(("name", "text", "symbol"), SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_spellings_read_the_same_bars(tmp_path: Path, name: str, text: str, symbol: str | None) -> None:
    table = read_bars(write(tmp_path / "bars.csv", text), symbol)
    assert table.column("symbol").to_pylist() == ["ABC"] * len(GOOD_ROWS)
    np.testing.assert_array_equal(table.column("ts").cast(pa.int64()).to_numpy(), EXPECTED_NS)
    for k, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        np.testing.assert_array_equal(table.column(name).to_numpy(), [row[k] for row in GOOD_ROWS])
    assert table.column("spread_bps").null_count == len(GOOD_ROWS)


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_parquet_timestamp_columns(tmp_path: Path, tz: str | None) -> None:
    ts = pa.array(EXPECTED_NS, pa.timestamp("ns", tz=tz))
    columns = {name: [row[k] for row in GOOD_ROWS] for k, name in enumerate(("Open", "High", "Low", "Close", "Volume"), 1)}
    path = tmp_path / "bars.parquet"
    pq.write_table(pa.table({"Date": ts, **columns, "spread_bps": [1.5, None, 2.0]}), path)
    table = read_bars(path, "ABC")
    # Timezone-aware values are instants; naive ones are taken as UTC: same ns either way.
    np.testing.assert_array_equal(table.column("ts").cast(pa.int64()).to_numpy(), EXPECTED_NS)
    assert table.column("spread_bps").to_pylist() == [1.5, None, 2.0]


def test_parquet_date_column_and_symbol_column(tmp_path: Path) -> None:
    dates = pa.array(EXPECTED_NS.astype("datetime64[ns]").astype("datetime64[D]"), pa.date32())
    path = tmp_path / "bars.parquet"
    prices = {name: [row[k] for row in GOOD_ROWS] for k, name in enumerate(("open", "high", "low", "close", "volume"), 1)}
    pq.write_table(pa.table({"symbol": ["ABC"] * 3, "date": dates, **prices}), path)
    np.testing.assert_array_equal(read_bars(path).column("ts").cast(pa.int64()).to_numpy(), EXPECTED_NS)


@pytest.mark.parametrize(("case", "text", "rule", "row"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_refused_and_nothing_is_written(store: MarketDataStore, tmp_path: Path, case: str, text: str, rule: str, row: int | None) -> None:
    good = write(tmp_path / "good.csv", HEADER + GOOD_LINE)
    bad = write(tmp_path / "bad.csv", text)
    before = contents(store)
    with pytest.raises(DataValidationError) as caught:
        store.ingest([good, bad], symbol="NEW")  # the good file is not written either
    error = caught.value
    assert (error.source, error.row, error.rule) == (str(bad), row, rule)
    assert str(bad) in str(error) and rule in str(error)
    if row is not None:
        assert f"row {row}" in str(error) and f"file line {row + 1}" in str(error)
    assert contents(store) == before
    assert "NEW" not in store.symbols()


def test_parquet_errors_name_the_data_row(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    pq.write_table(pa.table({"ts": EXPECTED_NS.astype("datetime64[ns]"), "open": [1.0, 2.0, 3.0], "high": [1.0, 1.0, 3.0], "low": [1.0, 1.0, 1.0], "close": [1.0, 1.0, 1.0], "volume": [1.0, 1.0, 1.0]}), path)
    with pytest.raises(DataValidationError) as caught:
        read_bars(path, "ABC")
    assert (caught.value.row, caught.value.rule) == (2, rules.RULE_HIGH)
    assert "file line" not in str(caught.value)


def test_symbol_argument_must_match_symbol_column(tmp_path: Path) -> None:
    path = write(tmp_path / "bars.csv", "symbol,date,open,high,low,close,volume\nABC,2024-01-02,1,1,1,1,1\nXYZ,2024-01-03,1,1,1,1,1\n")
    with pytest.raises(DataValidationError) as caught:
        read_bars(path, "ABC")
    assert (caught.value.row, caught.value.rule) == (2, rules.RULE_SYMBOL_SOURCE)
    with pytest.raises(DataValidationError, match="--symbol"):
        read_bars(write(tmp_path / "no symbol here.csv", HEADER + GOOD_LINE))


def test_rows_of_several_symbols_are_ordered_per_symbol(tmp_path: Path) -> None:
    """Interleaved symbols are fine; only each symbol's own timestamps must increase."""
    text = "symbol,date,open,high,low,close,volume\nA,2024-01-03,1,1,1,1,1\nB,2024-01-02,1,1,1,1,1\nA,2024-01-04,1,1,1,1,1\nB,2024-01-02,1,1,1,1,1\n"
    assert read_bars(write(tmp_path / "ok.csv", text.rsplit("B,", 1)[0])).num_rows == 3
    with pytest.raises(DataValidationError) as caught:
        read_bars(write(tmp_path / "dup.csv", text))
    assert (caught.value.row, caught.value.rule) == (4, rules.RULE_DUPLICATE)


def test_unknown_file_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="unknown file type"):
        read_bars(write(tmp_path / "bars.json", "{}"), "A")
    with pytest.raises(DataValidationError, match="no such file"):
        read_bars(tmp_path / "absent.csv", "A")
    with pytest.raises(DataValidationError, match="a directory, not a file"):
        read_bars(tmp_path, "A")


def test_reingest_is_a_no_op_and_changed_bars_need_replace(store: MarketDataStore, tmp_path: Path) -> None:
    path = write(tmp_path / "abc.csv", SPELLINGS[0][1])
    first = store.ingest(path, symbol="ABC")
    after_first = contents(store)
    second = store.ingest(path, symbol="ABC")
    assert (first.inserted, first.unchanged, first.replaced) == (3, 0, 0)
    assert (second.inserted, second.unchanged, second.replaced) == (0, 3, 0)
    assert contents(store) == after_first
    corrected = write(tmp_path / "fix.csv", "Date,Open,High,Low,Close,Volume\n2024-01-03,10.5,11.2,10.1,11.1,1600\n")
    with pytest.raises(DataConflictError) as caught:
        store.ingest(corrected, symbol="ABC")
    assert "1 bars already stored with other values" in str(caught.value) and "--replace" in str(caught.value)
    assert "close 11.0 -> 11.1" in str(caught.value) and "volume 1500.0 -> 1600.0" in str(caught.value)
    assert contents(store) == after_first
    fixed = store.ingest(corrected, symbol="ABC", replace=True)
    assert (fixed.inserted, fixed.unchanged, fixed.replaced) == (0, 0, 1)
    assert store.row_count() == len(after_first)
    panel = store.panel(["ABC"])
    assert panel.close[1, 0] == 11.1 and panel.volume[1, 0] == 1600


def test_unknown_symbol_query(store: MarketDataStore) -> None:
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        store.panel(["SYN00", "NOPE"])
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        store.query_arrow(["NOPE"])
