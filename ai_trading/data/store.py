"""The DuckDB market-data store: validated writes, symbol/time queries, panels.

One file holds the ``bars`` table (see :mod:`ai_trading.data.schema`), keyed by
(symbol, frequency, ts), and a ``store_meta`` table naming its layout version. Writes are
validated first and applied in one transaction. A bar that is already stored with the
same values is skipped, so re-ingesting a file changes nothing; one stored with different
values is refused (:class:`~ai_trading.errors.DataConflictError`, with the differences)
unless the caller asks to replace it. Reads come back as Arrow with the symbol as a
dictionary column whose codes index the requested symbols, which the panel builder uses
as-is. A panel holds one frequency: a request that mixes frequencies is refused unless it
asks for resampling to a coarser one.
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
import pyarrow.compute as pc

from ai_trading.config import DataConfig
from ai_trading.data.bartime import check_time_zone, conform_times
from ai_trading.data.frequency import DAILY as DAILY_FREQUENCY
from ai_trading.data.frequency import bar_seconds, parse_frequency
from ai_trading.data.ingest import DEFAULT_EXCHANGE_TZ, read_bars
from ai_trading.data.panel import panel_from_arrow
from ai_trading.data.schema import (
    BAR_COLUMNS,
    BARS_DDL,
    BARS_SCHEMA,
    BARS_TABLE,
    KEY_COLUMNS,
    LAYOUT_VERSION,
    META_DDL,
    META_TABLE,
    NS_PER_US,
    STORED_TS_TYPE,
    VALUE_COLUMNS,
)
from ai_trading.data.synthetic import DAILY, generate_bars
from ai_trading.data.validation import RowLocator, validate_bars
from ai_trading.errors import DataConflictError, DataStoreError, DataValidationError, UnknownSymbolError
from ai_trading.types import MarketPanel

logger = logging.getLogger(__name__)

TimeBound = str | date | datetime | int | np.datetime64 | None
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RULE_TIME_BOUND = "time bounds must be ISO-8601 dates/date-times, datetimes, dates or int nanoseconds UTC"
RULE_TIME_RANGE = "start must not be after end"
RULE_ONE_FREQUENCY = "a panel holds bars of one frequency"
CONFLICTS_SHOWN = 5
MIGRATE_HINT = "ai-trading data migrate --db {path}"


@dataclass(frozen=True)
class IngestReport:
    """What one write did.

    :param sources: the files (or generator) the rows came from
    :param symbols: symbols written, sorted
    :param rows: rows in the input
    :param replaced: rows whose key already existed with other values and were overwritten
    :param unchanged: rows already stored with the same values (nothing written)
    """

    sources: tuple[str, ...]
    symbols: tuple[str, ...]
    rows: int
    replaced: int
    unchanged: int = 0

    @property
    def inserted(self) -> int:
        return self.rows - self.replaced - self.unchanged


@dataclass(frozen=True)
class SymbolInfo:
    """One symbol's coverage at one frequency; ``bar_seconds`` is the median spacing
    (None for one bar)."""

    symbol: str
    frequency: str
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


def _key_collisions(tables: Sequence[pa.Table], sources: Sequence[str]) -> None:
    """Refuse bars of one write that share a key: two files would overwrite each other."""
    if len(tables) < 2:
        return
    keyed = pa.concat_tables(
        [t.select(list(KEY_COLUMNS)).append_column("source", pa.array([k] * t.num_rows, pa.int32())) for k, t in enumerate(tables)]
    )
    counts = keyed.group_by(list(KEY_COLUMNS)).aggregate([("source", "min"), ("source", "max"), ("source", "count")])
    clashes = counts.filter(pc.greater(counts.column("source_count"), 1))
    if clashes.num_rows:
        first = clashes.slice(0, 1).to_pylist()[0]
        raise DataConflictError(
            f"{clashes.num_rows} bars come from more than one file, e.g. {first['symbol']} {first['frequency']} "
            f"{first['ts']:%Y-%m-%d %H:%M} in both {sources[first['source_min']]} and {sources[first['source_max']]}: "
            "each symbol's bars must come from one file (a file without a symbol column takes its symbol from "
            "--symbol or its file name)"
        )


class MarketDataStore:
    """Bars in a DuckDB file.

    :param path: the DuckDB file; created with its tables when missing (unless read-only)
    :param read_only: open without write access, so several processes can read at once
        (DuckDB allows one writing process per file)
    :param exchange_tz: the zone whose calendar dates key daily bars (``[data] exchange_tz``)
    """

    def __init__(self, path: str | Path, read_only: bool = False, exchange_tz: str = DEFAULT_EXCHANGE_TZ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.exchange_tz = check_time_zone(exchange_tz)
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(self.path), read_only=read_only)
            self._con.execute("SET TimeZone = 'UTC'")
        except (duckdb.Error, OSError) as exc:
            raise DataStoreError(
                f"cannot open market-data store {self.path}: {exc} "
                "(another process may hold it open for writing; open it read-only or close that process)"
            ) from exc
        try:
            self._check_layout()
        except DataStoreError:
            self._con.close()
            raise

    def _tables(self) -> set[str]:
        rows = self._con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        return {str(row[0]) for row in rows}

    def layout_version(self) -> int | None:
        """The store's layout version: 1 for stores written before frequencies were kept,
        None for a file without bars."""
        tables = self._tables()
        if META_TABLE in tables:
            found = self._con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'layout_version'").fetchone()
            return int(found[0]) if found else None
        return 1 if BARS_TABLE in tables else None

    def _check_layout(self) -> None:
        version = self.layout_version()
        if version == LAYOUT_VERSION:
            return
        if version is None and not self.read_only:
            with self._con.cursor() as cursor:
                cursor.begin()
                cursor.execute(BARS_DDL)
                cursor.execute(META_DDL)
                cursor.execute(f"INSERT INTO {META_TABLE} VALUES ('layout_version', ?)", [str(LAYOUT_VERSION)])
                cursor.commit()
            return
        if version is None:
            raise DataStoreError(
                f"{self.path} holds no bars: write data first (ai-trading data generate, ai-trading data ingest)"
            )
        if version < LAYOUT_VERSION:
            raise DataStoreError(
                f"{self.path} uses store layout {version} (bars without a frequency, daily bars at their source's clock "
                f"time); this version reads layout {LAYOUT_VERSION}: convert it with `{MIGRATE_HINT.format(path=self.path)}`"
            )
        raise DataStoreError(f"{self.path} uses store layout {version}, newer than this version's {LAYOUT_VERSION}: upgrade ai-trading")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- writes -------------------------------------------------------------------------

    def _conflicts(self, cursor: duckdb.DuckDBPyConnection) -> tuple[int, list[str]]:
        """Incoming bars whose key is stored with other values: their count and a few, described."""
        differs = " OR ".join(f"b.{name} IS DISTINCT FROM i.{name}" for name in VALUE_COLUMNS)
        join = f"FROM {BARS_TABLE} b JOIN incoming i USING ({', '.join(KEY_COLUMNS)}) WHERE {differs}"
        total = int(cursor.execute(f"SELECT count(*) {join}").fetchone()[0])  # type: ignore[index]
        if not total:
            return 0, []
        picked = ", ".join(f"b.{name}, i.{name}" for name in VALUE_COLUMNS)
        rows = cursor.execute(f"SELECT symbol, frequency, ts, {picked} {join} ORDER BY symbol, ts LIMIT {CONFLICTS_SHOWN}").fetchall()
        shown = []
        for symbol, frequency, ts, *values in rows:
            pairs = zip(values[0::2], values[1::2], strict=True)
            changed = [f"{name} {old} -> {new}" for name, (old, new) in zip(VALUE_COLUMNS, pairs, strict=True) if old != new]
            shown.append(f"{symbol} {frequency} {ts:%Y-%m-%d %H:%M}: {', '.join(changed)}")
        return total, shown

    def _write(self, tables: Sequence[pa.Table], sources: Sequence[str], replace: bool = False) -> IngestReport:
        """Write validated bar tables in one transaction (all or nothing): new bars are
        inserted, identical ones skipped, changed ones refused unless ``replace``."""
        if self.read_only:
            raise DataStoreError(f"{self.path} is open read-only: open it without read_only to write")
        _key_collisions(tables, sources)
        replaced = unchanged = 0
        keys = ", ".join(KEY_COLUMNS)
        with self._con.cursor() as cursor:
            cursor.begin()
            try:
                for incoming, source in zip(tables, sources, strict=True):
                    cursor.register("incoming", incoming)
                    found = cursor.execute(f"SELECT count(*) FROM {BARS_TABLE} JOIN incoming USING ({keys})")
                    overlap = int(found.fetchone()[0])  # type: ignore[index]
                    changed, shown = self._conflicts(cursor) if overlap else (0, [])
                    if changed and not replace:
                        raise DataConflictError(
                            f"{source}: {changed} bars already stored with other values, nothing was written "
                            f"(pass --replace to overwrite them): {'; '.join(shown)}{' ...' if changed > len(shown) else ''}"
                        )
                    columns = ", ".join(BAR_COLUMNS)
                    if changed:
                        cursor.execute(f"INSERT OR REPLACE INTO {BARS_TABLE} SELECT {columns} FROM incoming")
                    elif overlap:
                        cursor.execute(
                            f"INSERT INTO {BARS_TABLE} SELECT {columns} FROM incoming ANTI JOIN {BARS_TABLE} USING ({keys})"
                        )
                    else:
                        # A plain INSERT keeps the incoming row order on disk (time-major
                        # rows then read back as long runs).
                        cursor.execute(f"INSERT INTO {BARS_TABLE} SELECT {columns} FROM incoming")
                    replaced += changed
                    unchanged += overlap - changed
                    cursor.unregister("incoming")
                cursor.commit()
            except duckdb.Error as exc:
                cursor.rollback()
                raise DataStoreError(f"writing to {self.path} failed, nothing was written: {exc}") from exc
            except DataConflictError:
                cursor.rollback()
                raise
        symbols = sorted({s for table in tables for s in table.column("symbol").unique().to_pylist()})
        report = IngestReport(tuple(sources), tuple(symbols), sum(t.num_rows for t in tables), replaced, unchanged)
        logger.info(
            "DATA_WRITTEN",
            extra={"path": str(self.path), "sources": report.sources, "rows": report.rows, "replaced": replaced, "unchanged": unchanged},
        )
        return report

    def ingest(
        self,
        paths: str | Path | Sequence[str | Path],
        symbol: str | None = None,
        frequency: str | None = None,
        replace: bool = False,
    ) -> IngestReport:
        """Read, validate and write bar files; if any file is bad, nothing is written.

        :param paths: one or more CSV/Parquet files (see :func:`~ai_trading.data.ingest.read_bars`)
        :param symbol: the symbol of files without a symbol column (default: the file name)
        :param frequency: the files' bar frequency; None infers it per symbol
        :param replace: overwrite stored bars whose values differ instead of refusing
        :raises DataValidationError: naming the file, the row and the rule
        :raises DataConflictError: files collide with each other, or with stored bars
            (unless ``replace``)
        """
        files = [paths] if isinstance(paths, (str, Path)) else list(paths)
        tables = [read_bars(path, symbol, frequency, self.exchange_tz) for path in files]
        return self._write(tables, [str(path) for path in files], replace)

    def write_source(self, table: pa.Table, source: str, frequency: str, replace: bool = False) -> IngestReport:
        """Write bars a program produced (a broker's response): ``symbol``, ``ts`` (the
        instants the source stamped, with a zone), the values; the bar-time convention,
        validation and conflict rules are those of :meth:`ingest`."""
        where = RowLocator(source)
        columns = {name: table.column(name) for name in ("symbol", "ts", *VALUE_COLUMNS) if name in table.column_names}
        if "spread_bps" not in columns:
            columns["spread_bps"] = pa.nulls(table.num_rows, pa.float64())
        raw = pa.table(columns).cast(BARS_SCHEMA.remove(1))
        conformed = conform_times(raw, True, False, frequency, self.exchange_tz, where)
        validate_bars(conformed, where)
        return self._write([conformed.cast(BARS_SCHEMA)], [source], replace)

    def generate(self, frequency: str, n_symbols: int, n_bars: int, seed: int) -> IngestReport:
        """Write the built-in generator's bars (see :mod:`ai_trading.data.synthetic`)."""
        table = generate_bars(n_symbols, n_bars, frequency, seed)
        return self._write([table], [f"synthetic {frequency} (seed {seed})"])

    # -- reads --------------------------------------------------------------------------

    def _fetchall(self, query: str, params: Sequence[object] | None = None) -> list[tuple[object, ...]]:
        with self._con.cursor() as cursor:
            return cursor.execute(query, params).fetchall()

    def row_count(self) -> int:
        return int(self._fetchall(f"SELECT count(*) FROM {BARS_TABLE}")[0][0])  # type: ignore[call-overload]

    def symbols(self) -> list[str]:
        return [str(row[0]) for row in self._fetchall(f"SELECT DISTINCT symbol FROM {BARS_TABLE} ORDER BY symbol")]

    def frequencies(self, symbols: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
        """The frequencies each symbol (None: every symbol) is stored at, finest first."""
        rows = self._fetchall(f"SELECT DISTINCT symbol, frequency FROM {BARS_TABLE} ORDER BY symbol")
        found: dict[str, list[str]] = {}
        for symbol, frequency in rows:
            if symbols is None or symbol in symbols:
                found.setdefault(str(symbol), []).append(str(frequency))
        return {symbol: tuple(sorted(names, key=bar_seconds)) for symbol, names in found.items()}

    def last_bar_times(self, symbols: Sequence[str], frequency: str) -> dict[str, datetime]:
        """The last stored bar's key of each symbol at ``frequency``; symbols without bars
        there are absent (daily keys are session dates at 00:00 UTC)."""
        query = f"SELECT symbol, epoch_us(max(ts)) FROM {BARS_TABLE} WHERE frequency = ? AND list_contains(?, symbol) GROUP BY symbol"
        rows = self._fetchall(query, [parse_frequency(frequency), list(symbols)])
        return {str(symbol): _as_datetime(int(us)) for symbol, us in rows}  # type: ignore[call-overload]

    def _names(self, symbols: Sequence[str] | None) -> tuple[str, ...]:
        stored = self.symbols()
        if symbols is None:
            return tuple(stored)
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
        return names

    def _frequency_of(self, names: tuple[str, ...], frequency: str | None, resample: bool) -> tuple[str, dict[str, str]]:
        """The panel's frequency and, per symbol, the stored frequency its bars come from."""
        stored = self.frequencies(names)
        if frequency is None:
            if resample:
                raise DataValidationError("panel request", None, "resampling needs the target frequency")
            kinds = sorted({f for found in stored.values() for f in found}, key=bar_seconds)
            if len(kinds) > 1:
                listing = "; ".join(f"{s}: {', '.join(stored[s])}" for s in names[:10] if s in stored)
                raise DataValidationError(
                    "panel request",
                    None,
                    RULE_ONE_FREQUENCY,
                    f"the symbols are stored at {', '.join(kinds)} ({listing}): ask for one frequency "
                    f"(--frequency {kinds[-1]}), or resample finer bars to it (--frequency {kinds[-1]} --resample)",
                )
            frequency = kinds[0] if kinds else DAILY_FREQUENCY
        target = parse_frequency(frequency)
        sources: dict[str, str] = {}
        for symbol in names:
            found = stored.get(symbol, ())
            if target in found:
                sources[symbol] = target
                continue
            finer = [f for f in found if bar_seconds(target) % bar_seconds(f) == 0 and bar_seconds(f) < bar_seconds(target)]
            if not (resample and finer):
                hint = f" (resample with --resample from {finer[-1]})" if finer else ""
                raise DataValidationError(
                    "panel request", None, RULE_ONE_FREQUENCY, f"{symbol} has no {target} bars, only {', '.join(found)}{hint}"
                )
            sources[symbol] = finer[-1]
        return target, sources

    def _selection(self, names: tuple[str, ...], start: TimeBound, end: TimeBound) -> tuple[str, dict[str, object]]:
        """The time/symbol conditions of a query and their parameters."""
        conditions = ["list_contains($symbols, symbol)"]
        params: dict[str, object] = {}
        bounds = {name: _to_us(bound, name) for name, bound in (("start", start), ("end", end))}
        if bounds["start"] is not None and bounds["end"] is not None and bounds["start"] > bounds["end"]:
            raise DataValidationError(
                f"start={start} end={end}", None, RULE_TIME_RANGE, "the end is exclusive: give an end after the start"
            )
        for name, op in (("start", ">="), ("end", "<")):
            if bounds[name] is not None:
                conditions.append(f"ts {op} ${name}")
                params[name] = _as_datetime(bounds[name])  # type: ignore[arg-type]
        return " AND ".join(conditions), params

    def _fetch(
        self,
        cursor: duckdb.DuckDBPyConnection,
        names: tuple[str, ...],
        frequency: str,
        sources: dict[str, str],
        start: TimeBound,
        end: TimeBound,
        sort: bool = False,
    ) -> pa.Table:
        where, params = self._selection(names, start, end)
        direct = [s for s in names if sources[s] == frequency]
        coded = "(list_position($symbols, symbol) - 1)::INTEGER AS code"
        parts = []
        if direct:
            parts.append(
                f"SELECT {coded}, ts, {', '.join(VALUE_COLUMNS)} FROM {BARS_TABLE} "
                f"WHERE frequency = '{frequency}' AND list_contains($direct, symbol) AND {where}"
            )
        for source in sorted({f for f in sources.values() if f != frequency}):
            parts.append(self._resampled(source, frequency, coded, where))
        query = " UNION ALL ".join(parts)
        params = {**params, "symbols": list(names), "direct": direct} if direct else {**params, "symbols": list(names)}
        for source in {f for f in sources.values() if f != frequency}:
            params[f"from_{source}"] = [s for s in names if sources[s] == source]
        if any(sources[s] != frequency for s in names) and frequency == DAILY_FREQUENCY:
            params["tz"] = self.exchange_tz
        raw = cursor.sql(query, params=params).to_arrow_table()
        dictionary = pa.array(names, pa.string())
        symbol = pa.chunked_array(
            [pa.DictionaryArray.from_arrays(chunk, dictionary) for chunk in raw.column("code").chunks],
            type=pa.dictionary(pa.int32(), pa.string()),
        )
        ts = raw.column(1).cast(STORED_TS_TYPE)  # DuckDB names the zone Etc/UTC; same instants
        freq = pa.array([frequency] * raw.num_rows, pa.string())
        table = pa.Table.from_arrays([symbol, freq, ts, *raw.columns[2:]], names=list(BAR_COLUMNS))
        if not sort:
            return table
        by_name = pc.rank(pa.array(names, pa.string()), sort_keys="ascending").to_numpy()[raw.column("code").to_numpy()]
        return table.take(np.lexsort((ts.cast(pa.int64()).to_numpy(), by_name)))

    @staticmethod
    def _resampled(source: str, target: str, coded: str, where: str) -> str:
        """SQL aggregating ``source`` bars into ``target`` bars: first open, highest high,
        lowest low, last close, summed volume, mean spread. Daily bars group by session
        date in the exchange zone (every stored bar of the day, regular hours or not);
        intraday bars by UTC buckets of the target length."""
        if target == DAILY_FREQUENCY:
            bucket = "timezone('UTC', date_trunc('day', timezone($tz, ts)))"
        else:
            bucket = f"time_bucket(INTERVAL '{bar_seconds(target)} seconds', ts)"
        return (
            f"SELECT {coded}, {bucket} AS bucket_ts, arg_min(open, ts) AS open, max(high) AS high, min(low) AS low, "
            f"arg_max(close, ts) AS close, sum(volume) AS volume, avg(spread_bps) AS spread_bps "
            f"FROM {BARS_TABLE} WHERE frequency = '{source}' AND list_contains($from_{source}, symbol) AND {where} "
            f"GROUP BY symbol, bucket_ts"
        )

    def query_arrow(
        self,
        symbols: Sequence[str] | None = None,
        start: TimeBound = None,
        end: TimeBound = None,
        sort: bool = False,
        frequency: str | None = None,
        resample: bool = False,
    ) -> pa.Table:
        """Bars of ``symbols`` (None: all) with ``start <= ts < end`` (None: unbounded).

        Columns: ``symbol`` (dictionary whose codes index ``symbols``), ``frequency``,
        ``ts`` (timestamp[us, UTC]), open, high, low, close, volume, spread_bps. Rows come
        in storage order unless ``sort`` (by symbol, then ts). ``frequency`` and
        ``resample`` as for :meth:`panel`.
        """
        names = self._names(symbols)
        target, sources = self._frequency_of(names, frequency, resample)
        with self._con.cursor() as cursor:
            return self._fetch(cursor, names, target, sources, start, end, sort)

    def panel(
        self,
        symbols: Sequence[str] | None = None,
        start: TimeBound = None,
        end: TimeBound = None,
        frequency: str | None = None,
        resample: bool = False,
    ) -> MarketPanel:
        """A time-major panel of ``symbols`` (None: all, sorted) over ``[start, end)``.

        The time axis is the union of the symbols' timestamps; missing bars are NaN with
        ``valid`` False. Bounds accept ISO strings, dates, datetimes (naive = UTC) and
        int nanoseconds.

        :param frequency: the panel's bar frequency; None: the one frequency the symbols
            are stored at (a mix is refused)
        :param resample: build ``frequency`` bars from finer stored bars where a symbol
            has none at ``frequency`` itself
        """
        names = self._names(symbols)
        target, sources = self._frequency_of(names, frequency, resample)
        with self._con.cursor() as cursor:
            table = self._fetch(cursor, names, target, sources, start, end)
        return panel_from_arrow(table, names, frequency=target)

    def info(self) -> StoreInfo:
        """Rows, time range and median bar spacing per symbol and frequency."""
        query = f"""
            SELECT symbol, frequency, count(*), epoch_us(min(ts)), epoch_us(max(ts)), quantile_disc(gap_us, 0.5)
            FROM (SELECT symbol, frequency, ts,
                         epoch_us(ts) - lag(epoch_us(ts)) OVER (PARTITION BY symbol, frequency ORDER BY ts) AS gap_us
                  FROM {BARS_TABLE})
            GROUP BY symbol, frequency ORDER BY symbol, frequency
        """
        rows = self._fetchall(query)
        symbols = tuple(
            SymbolInfo(
                str(symbol), str(freq), int(n), _as_datetime(int(first)), _as_datetime(int(last)),
                None if gap is None else int(gap) / 1e6,
            )
            for symbol, freq, n, first, last, gap in rows  # type: ignore[misc]
        )
        return StoreInfo(self.path, sum(s.rows for s in symbols), symbols)


def open_store(config: DataConfig, builtin: bool = True, read_only: bool = True) -> MarketDataStore:
    """The configured store, opened read-only (so that parallel jobs can share it) unless
    asked otherwise.

    :param builtin: fill a store without bars with the built-in daily data set (the
        configured store on first use); False requires ``config.db_path`` to exist, so
        that a mistyped ``--db PATH`` is an error naming the path, not a new store
    """
    path = config.db_path
    if builtin:
        _generate_default(config)
    elif not path.exists():
        raise DataStoreError(
            f"no market-data store at {path}: create one with `ai-trading data generate --db {path}` "
            f"or `ai-trading data ingest FILE --db {path}`"
        )
    return MarketDataStore(path, read_only=read_only, exchange_tz=config.exchange_tz)


def _generate_default(config: DataConfig) -> None:
    """Write the built-in data set into the default store if it holds no bars yet."""
    if config.db_path.exists():
        with MarketDataStore(config.db_path, read_only=True, exchange_tz=config.exchange_tz) as store:
            if store.row_count() > 0:
                return
    with MarketDataStore(config.db_path, exchange_tz=config.exchange_tz) as store:
        if store.row_count() == 0:  # another process may have filled it meanwhile
            report = store.generate(DAILY, config.synthetic_symbols, config.synthetic_daily_bars, config.synthetic_seed)
            logger.info(
                "DATA_BUILTIN_GENERATED",
                extra={"path": str(store.path), "symbols": len(report.symbols), "rows": report.rows, "seed": config.synthetic_seed},
            )
