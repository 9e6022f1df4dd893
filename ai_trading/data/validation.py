"""The rules every bar must pass before it is written, whatever its source.

File ingest and the built-in generator both go through :func:`validate_bars`, so the
store only ever holds bars that kernels can trust. A violation raises
:class:`~ai_trading.errors.DataValidationError` naming the source, the 1-based data row
(plus the file line where the source is a CSV file) and the rule.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ai_trading.data.schema import NS_PER_US, PRICE_COLUMNS
from ai_trading.errors import DataValidationError

RULE_MALFORMED = "the file must be a well-formed CSV with the header's number of fields on every line"
RULE_UNREADABLE = "the file must be a readable CSV or Parquet file"
RULE_COLUMNS = "required columns: a timestamp (date/datetime/timestamp/t) plus open, high, low, close, volume"
RULE_AMBIGUOUS = "each field may appear under one spelling only"
RULE_SYMBOL_SOURCE = "the symbol comes from a symbol column or from the symbol argument, consistently"
RULE_SYMBOL = "symbol must be a non-empty string"
RULE_TS_PARSE = "timestamps must be ISO-8601 dates/date-times (no zone offset = UTC) or timestamp columns"
RULE_TS_PRECISION = "timestamps must be whole microseconds (the store keeps microseconds)"
RULE_NUMBER = "prices, volume and spread must be numbers"
RULE_PRICE = "prices must be finite and > 0"
RULE_HIGH = "high must be >= max(open, close)"
RULE_LOW = "low must be <= min(open, close)"
RULE_VOLUME = "volume must be finite and >= 0"
RULE_SPREAD = "spread_bps must be empty or finite and >= 0"
RULE_DUPLICATE = "no two bars may share a symbol and timestamp"
RULE_ORDER = "timestamps must increase strictly per symbol"


class RowLocator:
    """Turns a 0-based row index into the error's 1-based row and a file-line hint.

    :param source: what is validated (a file path, or a name like ``synthetic daily``)
    :param header_lines: lines before the first data row in a text file; None for
        sources without lines (Parquet, generated data)
    """

    def __init__(self, source: str, header_lines: int | None = None) -> None:
        self.source = source
        self.header_lines = header_lines

    def error(self, index: int | None, rule: str, detail: str = "") -> DataValidationError:
        if index is None:
            return DataValidationError(self.source, None, rule, detail)
        row = index + 1
        if self.header_lines is not None:
            line = f"file line {row + self.header_lines}"
            detail = f"{line}; {detail}" if detail else line
        return DataValidationError(self.source, row, rule, detail)


def _format_ts(ns: int) -> str:
    return f"{np.datetime64(int(ns), 'ns')}Z"


def _first(mask: NDArray[np.bool_]) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _check_values(table: pa.Table, where: RowLocator) -> None:
    symbol = table.column("symbol")
    bad_symbol = pc.fill_null(pc.equal(pc.utf8_length(symbol), 0), True)
    index = _first(bad_symbol.to_numpy(zero_copy_only=False))
    if index is not None:
        raise where.error(index, RULE_SYMBOL)
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    index = _first(ts % NS_PER_US != 0)
    if index is not None:
        raise where.error(index, RULE_TS_PRECISION, f"ts={_format_ts(ts[index])}")

    prices = {name: pc.fill_null(table.column(name), np.nan).to_numpy() for name in PRICE_COLUMNS}
    for name, values in prices.items():
        index = _first(~(np.isfinite(values) & (values > 0)))
        if index is not None:
            raise where.error(index, RULE_PRICE, f"{name}={float(values[index])}")
    o, h, low, c = (prices[name] for name in PRICE_COLUMNS)
    index = _first(h < np.maximum(o, c))
    if index is not None:
        raise where.error(index, RULE_HIGH, f"open={float(o[index])}, high={float(h[index])}, close={float(c[index])}")
    index = _first(low > np.minimum(o, c))
    if index is not None:
        raise where.error(index, RULE_LOW, f"open={float(o[index])}, low={float(low[index])}, close={float(c[index])}")
    volume = pc.fill_null(table.column("volume"), np.nan).to_numpy()
    index = _first(~(np.isfinite(volume) & (volume >= 0)))
    if index is not None:
        raise where.error(index, RULE_VOLUME, f"volume={float(volume[index])}")
    spread = table.column("spread_bps").to_numpy(zero_copy_only=False)
    present = ~np.asarray(table.column("spread_bps").is_null().to_numpy(zero_copy_only=False))
    index = _first(present & ~(np.isfinite(spread) & (spread >= 0)))
    if index is not None:
        raise where.error(index, RULE_SPREAD, f"spread_bps={float(spread[index])}")


def _check_order(table: pa.Table, where: RowLocator) -> None:
    """Per symbol, in file order, each timestamp must be later than the previous one."""
    if table.num_rows < 2:
        return
    codes = pc.dictionary_encode(table.column("symbol").combine_chunks()).indices.to_numpy()
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    order = np.argsort(codes, kind="stable")
    same_symbol = codes[order[1:]] == codes[order[:-1]]
    step = ts[order[1:]] - ts[order[:-1]]
    bad = same_symbol & (step <= 0)
    if not bad.any():
        return
    later = order[1:][bad]
    k = int(np.argmin(later))
    index, previous = int(later[k]), int(order[:-1][bad][k])
    rule = RULE_DUPLICATE if step[bad][k] == 0 else RULE_ORDER
    detail = (
        f"symbol {table.column('symbol')[index]}, ts {_format_ts(ts[index])} "
        f"after row {previous + 1}'s {_format_ts(ts[previous])}"
    )
    raise where.error(index, rule, detail)


def validate_bars(table: pa.Table, where: RowLocator) -> None:
    """Raise :class:`DataValidationError` for the first row of ``table`` breaking a rule.

    ``table`` has the columns of :data:`~ai_trading.data.schema.BARS_SCHEMA` in source row
    order. Value rules are checked first (first failing rule, then its first row), then
    the per-symbol ordering rules.
    """
    _check_values(table, where)
    _check_order(table, where)
