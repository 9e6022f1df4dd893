"""The bar-time convention every source goes through before a bar is stored.

- A **daily** bar is keyed by its exchange session date, stored as that date at 00:00
  UTC, whatever clock time the source stamped: yfinance's ``2024-01-02``, Alpaca's
  ``2024-01-02T05:00:00Z`` (midnight New York) and a close stamp ``2024-01-02T21:00Z``
  are all the session of 2 January. A timestamp with a zone is read in the exchange's
  zone (``[data] exchange_tz``); one without a zone is already a wall-clock date. A
  timestamp at exactly 00:00 UTC is read as a date, as many exports write dates that way
  (in New York it would otherwise fall on the evening before).
- An **intraday** bar keeps the UTC instant it starts; a timestamp without a zone is UTC.

The frequency of a file's symbol is given (``--frequency``) or inferred from the spacing
of its bars (:func:`~ai_trading.data.frequency.infer_frequency`); a date-typed column or
bars all stamped at midnight are daily.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ai_trading.data.frequency import DAILY, infer_frequency, parse_frequency
from ai_trading.data.schema import TS_TYPE
from ai_trading.data.validation import RowLocator
from ai_trading.errors import ConfigError

NS_PER_DAY = 86_400 * 1_000_000_000
RULE_FREQUENCY_UNKNOWN = "the bar frequency must be knowable: two or more bars per symbol, dates, or --frequency"


def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"[data] exchange_tz {name!r} is not an IANA time zone (e.g. America/New_York)") from exc
    return name


def session_dates(ts: pa.Array, zoned: bool, exchange_tz: str) -> pa.Array:
    """Daily keys (session date at 00:00 UTC) of ``ts`` (timestamp[ns, UTC]).

    :param zoned: the source stamped instants with a zone; False for wall-clock dates and
        times, which were read as UTC and keep their calendar date
    """
    utc = ts.cast(TS_TYPE)
    if zoned:
        local = pc.local_timestamp(utc.cast(pa.timestamp("ns", tz=check_time_zone(exchange_tz))))
        midnight_utc = pc.equal(pc.floor_temporal(utc, unit="day"), utc)
        local = pc.if_else(midnight_utc, pc.local_timestamp(utc), local)
    else:
        local = pc.local_timestamp(utc)
    return pc.assume_timezone(pc.floor_temporal(local, unit="day"), "UTC").cast(TS_TYPE)


def _all_at_midnight(ts_ns: np.ndarray) -> bool:
    return bool(ts_ns.size) and not bool(np.any(ts_ns % NS_PER_DAY))


def infer_symbol_frequency(ts_ns: np.ndarray, date_typed: bool) -> str | None:
    """One symbol's frequency from its bars' UTC nanoseconds; None when unknowable."""
    if date_typed or _all_at_midnight(ts_ns):
        return DAILY
    return infer_frequency(ts_ns)


def conform_times(
    table: pa.Table, zoned: bool, date_typed: bool, frequency: str | None, exchange_tz: str, where: RowLocator
) -> pa.Table:
    """``table`` (``symbol``, ``ts`` as timestamp[ns, UTC], values) with a ``frequency``
    column after ``symbol`` and daily bars keyed by their session dates.

    :param frequency: the frequency of every row; None infers it per symbol
    :raises DataValidationError: a symbol's frequency cannot be inferred
    """
    ts = table.column("ts").combine_chunks()
    symbols = table.column("symbol").combine_chunks()
    if frequency is not None:
        per_row = pa.array([parse_frequency(frequency)] * table.num_rows, pa.string())
    else:
        encoded = pc.dictionary_encode(symbols)
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        raw = ts.cast(pa.int64()).to_numpy()
        names = []
        for code, symbol in enumerate(encoded.dictionary.to_pylist()):
            found = infer_symbol_frequency(raw[codes == code], date_typed)
            if found is None:
                raise where.error(None, RULE_FREQUENCY_UNKNOWN, f"symbol {symbol} has one intraday bar")
            names.append(found)
        per_row = pa.DictionaryArray.from_arrays(encoded.indices, pa.array(names, pa.string())).cast(pa.string())
    daily = pc.equal(per_row, DAILY)
    if pc.any(daily).as_py():
        ts = pc.if_else(daily, session_dates(ts, zoned, exchange_tz), ts)
    position = table.column_names.index("symbol") + 1
    out = table.set_column(table.column_names.index("ts"), "ts", ts)
    return out.add_column(position, "frequency", per_row)
