"""The one shape of bars: the DuckDB table and the Arrow schema every layer converts to.

Every bar carries its frequency (``1d``, ``1min``, ... see :mod:`ai_trading.data.frequency`)
and is keyed by (symbol, frequency, ts), so a symbol may hold daily and minute bars side
by side. ``ts`` follows the bar-time convention of :mod:`ai_trading.data.bartime`: a
daily bar's session date at 00:00 UTC, an intraday bar's start instant.

DuckDB keeps timestamps in microseconds; the Arrow side uses nanoseconds UTC like
:class:`~ai_trading.types.MarketPanel`, so ingest refuses sub-microsecond timestamps
instead of letting the store silently merge them.
"""

from __future__ import annotations

import pyarrow as pa

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume", "spread_bps")
BAR_COLUMNS: tuple[str, ...] = ("symbol", "frequency", "ts", *VALUE_COLUMNS)
KEY_COLUMNS: tuple[str, ...] = ("symbol", "frequency", "ts")

TS_TYPE = pa.timestamp("ns", tz="UTC")
STORED_TS_TYPE = pa.timestamp("us", tz="UTC")  # what the store's queries return

BARS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("frequency", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        *(pa.field(name, pa.float64(), nullable=False) for name in (*PRICE_COLUMNS, "volume")),
        pa.field("spread_bps", pa.float64(), nullable=True),
    ]
)

BARS_TABLE = "bars"
META_TABLE = "store_meta"
LAYOUT_VERSION = 2  # 1: bars without a frequency, daily bars at the source's clock time

BARS_DDL = f"""
CREATE TABLE IF NOT EXISTS {BARS_TABLE} (
    symbol VARCHAR NOT NULL,
    frequency VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    spread_bps DOUBLE,
    PRIMARY KEY (symbol, frequency, ts)
)
"""

META_DDL = f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"

NS_PER_US = 1_000
