"""Read bar files (CSV or Parquet) in the usual spellings into validated Arrow tables.

Accepted spellings (case-insensitive): yfinance ``Date,Open,High,Low,Close,Adj Close,
Volume``; Alpaca ``t,o,h,l,c,v`` (extra columns such as ``vw`` and ``n`` are ignored);
lowercase ``ts/timestamp/datetime,open,high,low,close,volume``; an optional
``spread_bps`` column; the symbol from a ``symbol``/``ticker`` column or an argument.
Timestamps without a zone offset are taken as UTC.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

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
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
CSV_HEADER_LINES = 1

# Before validation a file may still hold empty symbols; validation reports them by row.
_UNCHECKED_SCHEMA = BARS_SCHEMA.set(0, BARS_SCHEMA.field("symbol").with_nullable(True))
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


def _timestamp_converter(array: pa.Array, where: RowLocator, name: str) -> Callable[[pa.Array], pa.Array]:
    """How this column becomes ns UTC; text columns follow their first row (offset or not)."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        return _naive_to_utc_ns if kind.tz is None else _aware_to_utc_ns
    if pa.types.is_date(kind):
        return _naive_to_utc_ns
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            _aware_to_utc_ns(array.slice(0, 1))
        except pa.ArrowInvalid:
            return _naive_to_utc_ns
        return _aware_to_utc_ns
    raise where.error(None, RULE_TS_PARSE, f"{name} has type {kind}")


def _parse_timestamps(array: pa.Array, where: RowLocator, name: str) -> pa.Array:
    if array.null_count:
        index = int(pc.index(array.is_null(), True).as_py())
        raise where.error(index, RULE_TS_PARSE, f"{name} is empty")
    return _convert(array, _timestamp_converter(array, where, name), where, RULE_TS_PARSE, name)


def _to_float(array: pa.Array) -> pa.Array:
    return array.cast(pa.float64())


def _symbol_column(table: pa.Table, columns: dict[str, str], symbol: str | None, where: RowLocator) -> pa.Array:
    if "symbol" not in columns:
        if symbol is None:
            raise where.error(None, RULE_SYMBOL_SOURCE, "the file has no symbol column: pass the symbol (--symbol SYM)")
        return pa.array([symbol] * table.num_rows, pa.string())
    values = table.column(columns["symbol"]).combine_chunks().cast(pa.string())
    if symbol is not None:
        differs = pc.fill_null(pc.not_equal(values, symbol), True)
        if pc.any(differs).as_py():
            index = int(pc.index(differs, True).as_py())
            raise where.error(index, RULE_SYMBOL_SOURCE, f"symbol column holds {values[index]}, argument says {symbol}")
    return values


def _normalise(table: pa.Table, symbol: str | None, where: RowLocator) -> pa.Table:
    columns = _map_columns(table.column_names, where)
    out = {
        "symbol": _symbol_column(table, columns, symbol, where),
        "ts": _parse_timestamps(table.column(columns["ts"]).combine_chunks(), where, columns["ts"]),
    }
    for name in ("open", "high", "low", "close", "volume", "spread_bps"):
        if name in columns:
            column = table.column(columns[name]).combine_chunks()
            out[name] = _convert(column, _to_float, where, RULE_NUMBER, columns[name])
        else:
            out[name] = pa.nulls(table.num_rows, pa.float64())
    return pa.Table.from_pydict(out, schema=_UNCHECKED_SCHEMA)


def _malformed_line(path: Path, fields: int) -> int | None:
    """1-based data row of the first line whose field count differs from the header's."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for index, row in enumerate(csv.reader(handle)):
            if index and row and len(row) != fields:
                return index
    return None


def _read_csv(path: Path, where: RowLocator) -> pa.Table:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise where.error(None, RULE_UNREADABLE, f"not UTF-8 text: {exc}") from exc
    if not header:
        raise where.error(None, RULE_COLUMNS, "the file is empty")
    columns = _map_columns(header, where)
    as_text = {columns[name]: pa.string() for name in ("ts", "symbol") if name in columns}
    options = pacsv.ConvertOptions(column_types=as_text, include_columns=list(columns.values()))
    try:
        return pacsv.read_csv(path, convert_options=options)
    except pa.ArrowInvalid as exc:
        index = _malformed_line(path, len(header))
        raise where.error(None if index is None else index - 1, RULE_MALFORMED, str(exc).splitlines()[0]) from exc


def _read_parquet(path: Path, where: RowLocator) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise where.error(None, RULE_UNREADABLE, str(exc)) from exc


def read_bars(path: str | Path, symbol: str | None = None) -> pa.Table:
    """Read and validate one bar file; returns a table with :data:`BARS_SCHEMA` columns.

    :param path: a ``.csv`` (``.txt``) or ``.parquet`` (``.pq``) file
    :param symbol: the symbol of every row when the file has no symbol column; when it
        has one, every row must match it
    :raises DataValidationError: naming the file, the row and the broken rule
    """
    path = Path(path)
    if not path.is_file():
        raise RowLocator(str(path)).error(None, RULE_UNREADABLE, "no such file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        where = RowLocator(str(path), header_lines=CSV_HEADER_LINES)
        raw = _read_csv(path, where)
    elif suffix in PARQUET_SUFFIXES:
        where = RowLocator(str(path))
        raw = _read_parquet(path, where)
    else:
        raise RowLocator(str(path)).error(
            None, RULE_UNREADABLE, f"unknown file type {suffix!r}: use {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
        )
    table = _normalise(raw, symbol, where)
    validate_bars(table, where)
    return table.cast(BARS_SCHEMA)
