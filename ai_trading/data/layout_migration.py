"""Convert a store of layout 1 (bars without a frequency, daily bars at their source's
clock time) to the current layout, explicitly and in one transaction.

Each symbol's frequency is inferred as ingest infers it (bars all at 00:00 UTC are
daily, else the median spacing decides) and daily bars are re-keyed by their session
dates under the bar-time convention of :mod:`ai_trading.data.bartime`. Two bars of one
symbol that fall on the same session date stop the conversion with nothing changed.
Running it on a converted store does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ai_trading.data.bartime import NS_PER_DAY, check_time_zone
from ai_trading.data.frequency import DAILY, frequency_of_spacing
from ai_trading.data.schema import BARS_DDL, BARS_TABLE, LAYOUT_VERSION, META_DDL, META_TABLE, NS_PER_US, VALUE_COLUMNS
from ai_trading.errors import DataConflictError, DataStoreError

logger = logging.getLogger(__name__)

US_PER_DAY = NS_PER_DAY // NS_PER_US
OLD_TABLE = "bars_layout1"


@dataclass(frozen=True)
class LayoutMigration:
    """What a conversion did.

    :param from_version: the layout found (the current one when nothing was to do)
    :param frequencies: symbol -> the frequency its bars were given
    :param rekeyed: daily bars whose timestamp moved to their session date
    """

    path: Path
    from_version: int
    frequencies: dict[str, str]
    rekeyed: int

    @property
    def changed(self) -> bool:
        return self.from_version != LAYOUT_VERSION


def _layout_version(con: duckdb.DuckDBPyConnection) -> int | None:
    tables = {str(row[0]) for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if META_TABLE in tables:
        found = con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'layout_version'").fetchone()
        return int(found[0]) if found else None
    return 1 if BARS_TABLE in tables else None


def _symbol_frequencies(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(
        f"""SELECT symbol, bool_and(epoch_us(ts) % {US_PER_DAY} = 0), quantile_disc(gap_us, 0.5)
            FROM (SELECT symbol, ts, epoch_us(ts) - lag(epoch_us(ts)) OVER (PARTITION BY symbol ORDER BY ts) AS gap_us
                  FROM {OLD_TABLE})
            GROUP BY symbol ORDER BY symbol"""
    ).fetchall()
    return {
        str(symbol): DAILY if midnight or gap is None else frequency_of_spacing(int(gap) / 1e6)
        for symbol, midnight, gap in rows
    }


def migrate_layout(path: Path, exchange_tz: str) -> LayoutMigration:
    """Convert the store at ``path`` to the current layout (see the module docstring).

    :raises DataStoreError: no store there, or one newer than this version reads
    :raises DataConflictError: two bars of a symbol share a session date; nothing changed
    """
    if not path.exists():
        raise DataStoreError(f"no market-data store at {path}")
    check_time_zone(exchange_tz)
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise DataStoreError(f"cannot open market-data store {path}: {exc}") from exc
    try:
        con.execute("SET TimeZone = 'UTC'")
        version = _layout_version(con)
        if version == LAYOUT_VERSION:
            return LayoutMigration(path, LAYOUT_VERSION, {}, 0)
        if version != 1:
            raise DataStoreError(f"{path} holds layout {version}; this version converts layout 1 to {LAYOUT_VERSION}")
        return _convert(con, path, exchange_tz)
    finally:
        con.close()


def _convert(con: duckdb.DuckDBPyConnection, path: Path, exchange_tz: str) -> LayoutMigration:
    con.begin()
    try:
        con.execute(f"ALTER TABLE {BARS_TABLE} RENAME TO {OLD_TABLE}")
        frequencies = _symbol_frequencies(con)
        con.execute("CREATE TEMP TABLE symbol_frequency (symbol VARCHAR, frequency VARCHAR)")
        if frequencies:  # an old store may hold no bars at all
            con.executemany("INSERT INTO symbol_frequency VALUES (?, ?)", list(frequencies.items()))
        session = "timezone('UTC', date_trunc('day', timezone($tz, ts)))"
        key = f"CASE WHEN f.frequency <> '{DAILY}' OR epoch_us(ts) % {US_PER_DAY} = 0 THEN ts ELSE {session} END"
        con.execute(
            f"CREATE TEMP TABLE converted AS SELECT symbol, f.frequency, {key} AS ts, ts AS old_ts, {', '.join(VALUE_COLUMNS)} "
            f"FROM {OLD_TABLE} JOIN symbol_frequency f USING (symbol)",
            {"tz": exchange_tz},
        )
        clash = con.execute(
            "SELECT symbol, ts, count(*) FROM converted GROUP BY symbol, frequency, ts HAVING count(*) > 1 ORDER BY symbol, ts LIMIT 1"
        ).fetchone()
        if clash is not None:
            raise DataConflictError(
                f"{path}: {clash[2]} bars of {clash[0]} fall on the session of {clash[1]:%Y-%m-%d} in {exchange_tz}; "
                "nothing was changed (fix the data, or set [data] exchange_tz to the exchange's zone)"
            )
        rekeyed = int(con.execute("SELECT count(*) FROM converted WHERE ts <> old_ts").fetchone()[0])  # type: ignore[index]
        con.execute(BARS_DDL)
        con.execute(f"INSERT INTO {BARS_TABLE} SELECT symbol, frequency, ts, {', '.join(VALUE_COLUMNS)} FROM converted ORDER BY ts, symbol")
        con.execute(f"DROP TABLE {OLD_TABLE}")
        con.execute(META_DDL)
        con.execute(f"INSERT INTO {META_TABLE} VALUES ('layout_version', ?)", [str(LAYOUT_VERSION)])
        con.commit()
    except (duckdb.Error, DataConflictError) as exc:
        con.rollback()
        if isinstance(exc, duckdb.Error):
            raise DataStoreError(f"converting {path} failed, nothing was changed: {exc}") from exc
        raise
    logger.info("DATA_LAYOUT_MIGRATED", extra={"path": str(path), "symbols": len(frequencies), "rekeyed": rekeyed})
    return LayoutMigration(path, 1, frequencies, rekeyed)
