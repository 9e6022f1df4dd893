"""The DuckDB market-data store: validated writes, symbol/time queries, panels.

One file holds one table, ``bars`` (see :mod:`ai_trading.data.schema`), keyed by
(symbol, ts). Writes are validated first and applied in one transaction, replacing rows
with the same key, so re-ingesting a file changes nothing. Reads come back as Arrow with
the symbol as a dictionary column whose codes index the requested symbols, which the
panel builder uses as-is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import duckdb
import numpy as np
import pyarrow as pa

from ai_trading.config import DataConfig
from ai_trading.data.ingest import read_bars
from ai_trading.data.panel import panel_from_arrow
from ai_trading.data.schema import BAR_COLUMNS, BARS_DDL, BARS_TABLE, NS_PER_US, STORED_TS_TYPE, VALUE_COLUMNS
from ai_trading.data.synthetic import DAILY, generate_bars
from ai_trading.errors import DataStoreError, DataValidationError, UnknownSymbolError
from ai_trading.types import MarketPanel

logger = logging.getLogger(__name__)

TimeBound = str | date | datetime | int | np.datetime64 | None
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RULE_TIME_BOUND = "time bounds must be ISO-8601 dates/date-times, datetimes, dates or int nanoseconds UTC"


@dataclass(frozen=True)
class IngestReport:
    """What one write did.

    :param sources: the files (or generator) the rows came from
    :param symbols: symbols written, sorted
    :param rows: rows written
    :param replaced: rows whose (symbol, ts) already existed and were overwritten
    """

    sources: tuple[str, ...]
    symbols: tuple[str, ...]
    rows: int
    replaced: int

    @property
    def inserted(self) -> int:
        return self.rows - self.replaced


@dataclass(frozen=True)
class SymbolInfo:
    """One symbol's coverage; ``bar_seconds`` is the median spacing (None for one bar)."""

    symbol: str
    rows: int
    first: datetime
    last: datetime
    bar_seconds: float | None


@dataclass(frozen=True)
class StoreInfo:
    path: Path
    rows: int
    symbols: tuple[SymbolInfo, ...]


def _to_us(value: TimeBound, name: str) -> int | None:
    """A time bound as microseconds UTC, rounded up (stored times are whole microseconds,
    so ``ts >= bound`` in ns and ``ts >= ceil(bound / 1000)`` in us select the same rows)."""
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        value = int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return -(-int(value) // NS_PER_US)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise DataValidationError(f"{name}={value!r}", None, RULE_TIME_BOUND) from exc
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise DataValidationError(f"{name}={value!r}", None, RULE_TIME_BOUND)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(microseconds=1)


def _as_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class MarketDataStore:
    """Bars in a DuckDB file.

    :param path: the DuckDB file; created with its table when missing (unless read-only)
    :param read_only: open without write access, so several processes can read at once
        (DuckDB allows one writing process per file)
    """

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(self.path), read_only=read_only)
            self._con.execute("SET TimeZone = 'UTC'")
            if not read_only:
                self._con.execute(BARS_DDL)
        except (duckdb.Error, OSError) as exc:
            raise DataStoreError(
                f"cannot open market-data store {self.path}: {exc} "
                "(another process may hold it open for writing; open it read-only or close that process)"
            ) from exc
        if read_only and not self._has_table():
            self._con.close()
            raise DataStoreError(f"{self.path} has no {BARS_TABLE} table: write data first (ai-trading data generate)")

    def _has_table(self) -> bool:
        query = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
        return bool(self._con.execute(query, [BARS_TABLE]).fetchone()[0])  # type: ignore[index]

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- writes -------------------------------------------------------------------------

    def _write(self, tables: Sequence[pa.Table], sources: Sequence[str]) -> IngestReport:
        """Upsert already validated bar tables in one transaction (all or nothing)."""
        if self.read_only:
            raise DataStoreError(f"{self.path} is open read-only: open it without read_only to write")
        replaced = 0
        with self._con.cursor() as cursor:
            cursor.begin()
            try:
                for incoming in tables:
                    cursor.register("incoming", incoming)
                    found = cursor.execute(f"SELECT count(*) FROM {BARS_TABLE} JOIN incoming USING (symbol, ts)")
                    overlap = int(found.fetchone()[0])  # type: ignore[index]
                    # A plain INSERT keeps the incoming row order on disk (time-major rows
                    # then read back as long runs); an upsert is needed only to replace.
                    verb = "INSERT OR REPLACE" if overlap else "INSERT"
                    cursor.execute(f"{verb} INTO {BARS_TABLE} SELECT {', '.join(BAR_COLUMNS)} FROM incoming")
                    replaced += overlap
                    cursor.unregister("incoming")
                cursor.commit()
            except duckdb.Error as exc:
                cursor.rollback()
                raise DataStoreError(f"writing to {self.path} failed, nothing was written: {exc}") from exc
        symbols = sorted({s for table in tables for s in table.column("symbol").unique().to_pylist()})
        report = IngestReport(tuple(sources), tuple(symbols), sum(t.num_rows for t in tables), replaced)
        logger.info(
            "DATA_WRITTEN",
            extra={"path": str(self.path), "sources": report.sources, "rows": report.rows, "replaced": replaced},
        )
        return report

    def ingest(self, paths: str | Path | Sequence[str | Path], symbol: str | None = None) -> IngestReport:
        """Read, validate and write bar files; if any file is bad, nothing is written.

        :param paths: one or more CSV/Parquet files (see :func:`~ai_trading.data.ingest.read_bars`)
        :param symbol: the symbol of files without a symbol column
        :raises DataValidationError: naming the file, the row and the rule
        """
        files = [paths] if isinstance(paths, (str, Path)) else list(paths)
        tables = [read_bars(path, symbol) for path in files]
        return self._write(tables, [str(path) for path in files])

    def generate(self, frequency: str, n_symbols: int, n_bars: int, seed: int) -> IngestReport:
        """Write the built-in generator's bars (see :mod:`ai_trading.data.synthetic`)."""
        table = generate_bars(n_symbols, n_bars, frequency, seed)
        return self._write([table], [f"synthetic {frequency} (seed {seed})"])

    # -- reads --------------------------------------------------------------------------

    def _fetchall(self, query: str) -> list[tuple[object, ...]]:
        with self._con.cursor() as cursor:
            return cursor.execute(query).fetchall()

    def row_count(self) -> int:
        return int(self._fetchall(f"SELECT count(*) FROM {BARS_TABLE}")[0][0])  # type: ignore[call-overload]

    def symbols(self) -> list[str]:
        return [str(row[0]) for row in self._fetchall(f"SELECT DISTINCT symbol FROM {BARS_TABLE} ORDER BY symbol")]

    def _selection(
        self, symbols: Sequence[str] | None, start: TimeBound, end: TimeBound
    ) -> tuple[tuple[str, ...], str, dict[str, object]]:
        """Requested symbols in panel order, a WHERE clause and its parameters."""
        stored = self.symbols()
        if symbols is None:
            names = tuple(stored)
            conditions = []
        else:
            names = tuple(symbols)
            unknown = sorted(set(names) - set(stored))
            if unknown:
                raise UnknownSymbolError(
                    f"{self.path} holds no bars for {', '.join(unknown[:10])}"
                    f"{' ...' if len(unknown) > 10 else ''}; it has {len(stored)} symbols"
                    f"{': ' + ', '.join(stored[:10]) if stored else ' (ingest or generate data first)'}"
                )
            if len(set(names)) != len(names):
                raise DataValidationError("symbols argument", None, "each symbol may be asked for once")
            conditions = ["list_contains($symbols, symbol)"]
        # DuckDB refuses unused parameters: bind only what the clause names.
        params: dict[str, object] = {"symbols": list(names)} if conditions else {}
        for name, bound, op in (("start", start, ">="), ("end", end, "<")):
            us = _to_us(bound, name)
            if us is not None:
                conditions.append(f"ts {op} ${name}")
                params[name] = _as_datetime(us)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return names, where, params

    def _fetch(
        self,
        cursor: duckdb.DuckDBPyConnection,
        names: tuple[str, ...],
        where: str,
        params: dict[str, object],
        sort: bool = False,
    ) -> pa.Table:
        query = (
            f"SELECT (list_position($symbols, symbol) - 1)::INTEGER AS code, ts, {', '.join(VALUE_COLUMNS)} "
            f"FROM {BARS_TABLE} {where} {'ORDER BY symbol, ts' if sort else ''}"
        )
        raw = cursor.sql(query, params={**params, "symbols": list(names)}).to_arrow_table()
        dictionary = pa.array(names, pa.string())
        symbol = pa.chunked_array(
            [pa.DictionaryArray.from_arrays(chunk, dictionary) for chunk in raw.column("code").chunks],
            type=pa.dictionary(pa.int32(), pa.string()),
        )
        ts = raw.column("ts").cast(STORED_TS_TYPE)  # DuckDB names the zone Etc/UTC; same instants
        return pa.Table.from_arrays([symbol, ts, *raw.columns[2:]], names=list(BAR_COLUMNS))

    def query_arrow(
        self, symbols: Sequence[str] | None = None, start: TimeBound = None, end: TimeBound = None, sort: bool = False
    ) -> pa.Table:
        """Bars of ``symbols`` (None: all) with ``start <= ts < end`` (None: unbounded).

        Columns: ``symbol`` (dictionary whose codes index ``symbols``), ``ts``
        (timestamp[us, UTC]), open, high, low, close, volume, spread_bps. Rows come in
        storage order unless ``sort`` (by symbol, then ts).
        """
        names, where, params = self._selection(symbols, start, end)
        with self._con.cursor() as cursor:
            return self._fetch(cursor, names, where, params, sort)

    def panel(self, symbols: Sequence[str] | None = None, start: TimeBound = None, end: TimeBound = None) -> MarketPanel:
        """A time-major panel of ``symbols`` (None: all, sorted) over ``[start, end)``.

        The time axis is the union of the symbols' timestamps; missing bars are NaN with
        ``valid`` False. Bounds accept ISO strings, dates, datetimes (naive = UTC) and
        int nanoseconds.
        """
        names, where, params = self._selection(symbols, start, end)
        with self._con.cursor() as cursor:
            return panel_from_arrow(self._fetch(cursor, names, where, params), names)

    def info(self) -> StoreInfo:
        """Rows, time range and median bar spacing per symbol."""
        query = f"""
            SELECT symbol, count(*), epoch_us(min(ts)), epoch_us(max(ts)), quantile_disc(gap_us, 0.5)
            FROM (SELECT symbol, ts, epoch_us(ts) - lag(epoch_us(ts)) OVER (PARTITION BY symbol ORDER BY ts) AS gap_us
                  FROM {BARS_TABLE})
            GROUP BY symbol ORDER BY symbol
        """
        rows = self._fetchall(query)
        symbols = tuple(
            SymbolInfo(str(symbol), int(n), _as_datetime(int(first)), _as_datetime(int(last)), None if gap is None else int(gap) / 1e6)
            for symbol, n, first, last, gap in rows  # type: ignore[misc]
        )
        return StoreInfo(self.path, sum(s.rows for s in symbols), symbols)


def _holds_bars(path: Path) -> bool:
    if not path.exists():
        return False
    with MarketDataStore(path, read_only=True) as store:
        return store.row_count() > 0


def open_store(config: DataConfig) -> MarketDataStore:
    """The configured store, opened read-only so that parallel jobs can share it.

    On first use (no file, or no bars yet) the built-in daily data set is written.
    """
    if not _holds_bars(config.db_path):
        with MarketDataStore(config.db_path) as store:
            if store.row_count() == 0:  # another process may have filled it meanwhile
                report = store.generate(DAILY, config.synthetic_symbols, config.synthetic_daily_bars, config.synthetic_seed)
                logger.info(
                    "DATA_BUILTIN_GENERATED",
                    extra={
                        "path": str(store.path),
                        "symbols": len(report.symbols),
                        "rows": report.rows,
                        "seed": config.synthetic_seed,
                    },
                )
    return MarketDataStore(config.db_path, read_only=True)
