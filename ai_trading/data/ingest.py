"""Read bar files (CSV, gzipped CSV or Parquet) in the usual spellings into validated Arrow tables.

Accepted spellings (case-insensitive): yfinance ``Date,Open,High,Low,Close,Adj Close,
Volume`` and the three-row header current yfinance versions write (``Price,Close,...`` /
``Ticker,SPY,...`` / ``Date,,...``, one or several tickers); Alpaca ``t,o,h,l,c,v`` (extra
columns such as ``vw`` and ``n`` are ignored); lowercase
``ts/timestamp/datetime,open,high,low,close,volume``; an optional ``spread_bps`` column.
The symbol comes from a ``symbol``/``ticker`` column, the yfinance ticker row, the symbol
argument, or else the file name (``SPY.csv`` and ``spy.csv.gz`` hold ``SPY``).
Timestamps follow the bar-time convention of :mod:`ai_trading.data.bartime`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ai_trading.data.bartime import conform_times
from ai_trading.data.schema import BARS_SCHEMA, TS_TYPE
from ai_trading.data.validation import (
    RULE_AMBIGUOUS,
    RULE_COLUMNS,
    RULE_MALFORMED,
    RULE_NUMBER,
    RULE_SYMBOL_SOURCE,
    RULE_TS_PARSE,
    RULE_UNREADABLE,
    RowLocator,
    validate_bars,
)

COLUMN_SPELLINGS: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol", "ticker", "sym", "s"),
    "ts": ("ts", "t", "timestamp", "time", "date", "datetime"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "v", "vol"),
    "spread_bps": ("spread_bps",),
}
REQUIRED_FIELDS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
CSV_SUFFIXES: tuple[str, ...] = (".csv", ".txt")
COMPRESSION_SUFFIXES: tuple[str, ...] = (".gz", ".bz2", ".zst")  # CSV only; Parquet compresses inside
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
YFINANCE_HEADER = ("price", "ticker")  # first cells of the first two lines of a yfinance >= 0.2.51 CSV
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._\-^=]*$")
DEFAULT_EXCHANGE_TZ = "America/New_York"

# Before validation a file may still hold empty symbols; validation reports them by row.
_UNCHECKED_SCHEMA = BARS_SCHEMA.remove(1).set(0, BARS_SCHEMA.field("symbol").with_nullable(True))
_FIELD_BY_SPELLING = {spelling: name for name, spellings in COLUMN_SPELLINGS.items() for spelling in spellings}


def _map_columns(names: list[str], where: RowLocator) -> dict[str, str]:
    """Field name -> the file's column name for every recognised column."""
    found: dict[str, str] = {}
    for column in names:
        field = _FIELD_BY_SPELLING.get(column.strip().lower())
        if field is None:
            continue
        if field in found:
            raise where.error(None, RULE_AMBIGUOUS, f"{field!r} appears as both {found[field]!r} and {column!r}")
        found[field] = column
    missing = [name for name in REQUIRED_FIELDS if name not in found]
    if missing:
        raise where.error(None, RULE_COLUMNS, f"missing {', '.join(missing)}; the file has {', '.join(names)}")
    return found


def _first_failing(array: pa.Array, convert: Callable[[pa.Array], pa.Array]) -> int:
    """Index of the first element ``convert`` rejects (bisection; ``array`` must fail)."""
    lo, hi = 0, len(array)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            convert(array.slice(lo, mid - lo))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
        else:
            lo = mid
    return lo


def _convert(array: pa.Array, convert: Callable[[pa.Array], pa.Array], where: RowLocator, rule: str, name: str) -> pa.Array:
    try:
        return convert(array)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        index = _first_failing(array, convert)
        raise where.error(index, rule, f"{name}={array[index].as_py()!r}") from exc


def _aware_to_utc_ns(array: pa.Array) -> pa.Array:
    return array.cast(TS_TYPE)


def _naive_to_utc_ns(array: pa.Array) -> pa.Array:
    return pc.assume_timezone(array.cast(pa.timestamp("ns")), "UTC").cast(TS_TYPE)


def _is_zoned(array: pa.Array, where: RowLocator, name: str) -> bool:
    """Whether the column holds instants with a zone; text columns follow their first row."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        return kind.tz is not None
    if pa.types.is_date(kind):
        return False
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            _aware_to_utc_ns(array.slice(0, 1))
        except pa.ArrowInvalid:
            return False
        return True
    raise where.error(None, RULE_TS_PARSE, f"{name} has type {kind}")


@dataclass(frozen=True)
class _Times:
    """A parsed timestamp column: UTC nanoseconds, and how the source wrote them."""

    ts: pa.Array
    zoned: bool
    date_typed: bool


def _parse_timestamps(array: pa.Array, where: RowLocator, name: str) -> _Times:
    if array.null_count:
        index = int(pc.index(array.is_null(), True).as_py())
        raise where.error(index, RULE_TS_PARSE, f"{name} is empty")
    zoned = _is_zoned(array, where, name)
    convert = _aware_to_utc_ns if zoned else _naive_to_utc_ns
    return _Times(_convert(array, convert, where, RULE_TS_PARSE, name), zoned, pa.types.is_date(array.type))


def _to_float(array: pa.Array) -> pa.Array:
    return array.cast(pa.float64())


def _symbol_column(table: pa.Table, columns: dict[str, str], symbol: str | None, where: RowLocator) -> pa.Array:
    """The rows' symbols: the file's symbol column (which must agree with ``symbol`` when
    both are given) or ``symbol`` (never None for a file without the column)."""
    if "symbol" not in columns:
        return pa.array([symbol] * table.num_rows, pa.string())
    values = table.column(columns["symbol"]).combine_chunks().cast(pa.string())
    if symbol is not None:
        differs = pc.fill_null(pc.not_equal(values, symbol), True)
        if pc.any(differs).as_py():
            index = int(pc.index(differs, True).as_py())
            raise where.error(index, RULE_SYMBOL_SOURCE, f"symbol column holds {values[index]}, argument says {symbol}")
    return values


def _normalise(table: pa.Table, symbol: str | None, where: RowLocator) -> tuple[pa.Table, _Times]:
    columns = _map_columns(table.column_names, where)
    times = _parse_timestamps(table.column(columns["ts"]).combine_chunks(), where, columns["ts"])
    out = {"symbol": _symbol_column(table, columns, symbol, where), "ts": times.ts}
    for name in ("open", "high", "low", "close", "volume", "spread_bps"):
        if name in columns:
            column = table.column(columns[name]).combine_chunks()
            out[name] = _convert(column, _to_float, where, RULE_NUMBER, columns[name])
        else:
            out[name] = pa.nulls(table.num_rows, pa.float64())
    return pa.Table.from_pydict(out, schema=_UNCHECKED_SCHEMA), times


def _text_lines(path: Path) -> Iterator[list[str]]:
    """The file's CSV rows as text, decompressed by its suffix (``.gz``, ``.bz2``, ``.zst``)."""
    with pa.input_stream(str(path), compression="detect") as raw:
        yield from csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))


def _malformed_line(path: Path, fields: int, header_lines: int) -> int | None:
    """1-based data row of the first line whose field count differs from the header's."""
    for index, row in enumerate(_text_lines(path)):
        if index >= header_lines and row and len(row) != fields:
            return index - header_lines + 1
    return None


@dataclass(frozen=True)
class _CsvLayout:
    """Where a CSV file's data starts and what its columns are called.

    :param names: one name per column (the yfinance layout gets unique generated names)
    :param tickers: per column, the yfinance ticker row's symbol (empty: none)
    """

    header_lines: int
    names: list[str]
    tickers: list[str]


def _csv_layout(path: Path, where: RowLocator) -> _CsvLayout:
    try:
        lines = _text_lines(path)
        first = next(lines, None)
        second = next(lines, None)
        third = next(lines, None)
    except UnicodeDecodeError as exc:
        raise where.error(None, RULE_UNREADABLE, f"not UTF-8 text: {exc}") from exc
    except (OSError, pa.ArrowInvalid) as exc:  # a corrupt .gz or .zst stream
        raise where.error(None, RULE_UNREADABLE, str(exc)) from exc
    if not first:
        raise where.error(None, RULE_COLUMNS, "the file is empty")
    starts = tuple(row[0].strip().lower() if row else "" for row in (first, second or []))
    if starts != YFINANCE_HEADER:
        return _CsvLayout(1, first, [""] * len(first))
    # yfinance: "Price,Close,High,..." / "Ticker,SPY,SPY,..." / "Date,,,..." then data.
    header_lines = 3 if third and third[0].strip().lower() in COLUMN_SPELLINGS["ts"] else 2
    tickers = [""] + [name.strip().upper() for name in (second or [])[1:]]
    if len(tickers) != len(first) or not all(tickers[1:]):
        raise where.error(None, RULE_COLUMNS, "the yfinance ticker row must name a ticker for every price column")
    names = ["Date"] + [f"{field}@{k}" for k, field in enumerate(first[1:], start=1)]
    return _CsvLayout(header_lines, names, tickers)


def _read_csv_columns(path: Path, layout: _CsvLayout, text_columns: list[str], where: RowLocator) -> pa.Table:
    read = pacsv.ReadOptions(skip_rows=layout.header_lines, column_names=layout.names)
    options = pacsv.ConvertOptions(column_types={name: pa.string() for name in text_columns})
    try:
        return pacsv.read_csv(path, read_options=read, convert_options=options)
    except pa.ArrowInvalid as exc:
        index = _malformed_line(path, len(layout.names), layout.header_lines)
        raise where.error(None if index is None else index - 1, RULE_MALFORMED, str(exc).splitlines()[0]) from exc


def _split_tickers(table: pa.Table, layout: _CsvLayout) -> pa.Table:
    """A yfinance wide table (``Close@1`` ... one column per field and ticker) in long form."""
    parts = []
    for ticker in dict.fromkeys(layout.tickers[1:]):
        columns = {"Date": table.column("Date")}
        for name, owner in zip(layout.names, layout.tickers, strict=True):
            if owner == ticker:
                columns[name.split("@")[0]] = table.column(name)
        parts.append(pa.table({"symbol": pa.array([ticker] * table.num_rows, pa.string()), **columns}))
    return pa.concat_tables(parts, promote_options="permissive")


def _read_csv(path: Path) -> tuple[pa.Table, RowLocator]:
    layout = _csv_layout(path, RowLocator(str(path)))
    where = RowLocator(str(path), header_lines=layout.header_lines)
    if layout.header_lines == 1:
        columns = _map_columns(layout.names, where)
        text = [columns[name] for name in ("ts", "symbol") if name in columns]
        table = _read_csv_columns(path, layout, text, where).select(list(columns.values()))
    else:
        table = _split_tickers(_read_csv_columns(path, layout, ["Date"], where), layout)
    if table.num_rows == 0:
        raise where.error(None, RULE_COLUMNS, "the file has a header but no bars")
    return table, where


def _read_parquet(path: Path, where: RowLocator) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise where.error(None, RULE_UNREADABLE, str(exc)) from exc
    if table.num_rows == 0:
        raise where.error(None, RULE_COLUMNS, "the file holds no bars")
    return table


def file_kind(path: Path) -> str:
    """``csv`` or ``parquet`` by the file's suffixes; a compressed CSV ends ``.csv.gz``."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
        if suffixes and suffixes[-1] in CSV_SUFFIXES:
            return "csv"
    elif suffixes and suffixes[-1] in CSV_SUFFIXES:
        return "csv"
    elif suffixes and suffixes[-1] in PARQUET_SUFFIXES:
        return "parquet"
    known = [*CSV_SUFFIXES, *(f".csv{c}" for c in COMPRESSION_SUFFIXES), *PARQUET_SUFFIXES]
    raise RowLocator(str(path)).error(
        None, RULE_UNREADABLE, f"unknown file type {''.join(path.suffixes) or 'without a suffix'!r}: use {', '.join(known)}"
    )


def symbol_from_file_name(path: Path) -> str:
    """The symbol a file without a symbol column holds: its name before the first dot,
    upper-cased (``spy.csv.gz`` -> ``SPY``)."""
    name = path.name.split(".")[0].upper()
    if not SYMBOL_PATTERN.match(name):
        raise RowLocator(str(path)).error(
            None, RULE_SYMBOL_SOURCE, f"the file has no symbol column and its name {path.name!r} is no symbol: pass --symbol SYM"
        )
    return name


def read_bars(
    path: str | Path, symbol: str | None = None, frequency: str | None = None, exchange_tz: str = DEFAULT_EXCHANGE_TZ
) -> pa.Table:
    """Read and validate one bar file; returns a table with :data:`BARS_SCHEMA` columns.

    :param path: a ``.csv`` (``.txt``; compressed ``.csv.gz``, ``.csv.bz2``, ``.csv.zst``)
        or ``.parquet`` (``.pq``) file
    :param symbol: the symbol of every row when the file has no symbol column (default:
        from the file name); when it has one, every row must match it
    :param frequency: the bars' frequency (``1d``, ``1min``, ...); None infers it per symbol
    :param exchange_tz: the zone whose calendar dates key daily bars
    :raises DataValidationError: naming the file, the row and the broken rule
    """
    path = Path(path)
    if not path.is_file():
        raise RowLocator(str(path)).error(None, RULE_UNREADABLE, "a directory, not a file" if path.is_dir() else "no such file")
    if file_kind(path) == "csv":
        raw, where = _read_csv(path)
    else:
        where = RowLocator(str(path))
        raw = _read_parquet(path, where)
    has_symbol = any(_FIELD_BY_SPELLING.get(name.strip().lower()) == "symbol" for name in raw.column_names)
    if symbol is None and not has_symbol:
        symbol = symbol_from_file_name(path)
    table, times = _normalise(raw, symbol, where)
    table = conform_times(table, times.zoned, times.date_typed, frequency, exchange_tz, where)
    validate_bars(table, where)
    return table.cast(BARS_SCHEMA)
