"""Arrow bar tables <-> :class:`~ai_trading.types.MarketPanel`.

Rows go straight from the Arrow buffers (zero-copy for null-free float64 columns) into
one preallocated ``[F, T, S]`` block (planes in :data:`VALUE_COLUMNS` order) by the
Numba kernels of :mod:`kernels.panel`; the panel's arrays are the block's C-contiguous
planes. The time axis is the union of the rows' timestamps; cells without a row are NaN
with ``valid`` False.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ai_trading.data.frequency import panel_frequency
from ai_trading.data.schema import BARS_SCHEMA, TS_TYPE, VALUE_COLUMNS
from ai_trading.errors import DataValidationError, UnknownSymbolError
from ai_trading.types import IntArray, MarketPanel
from kernels.panel import (
    N_RUN_FIELDS,
    SCATTER_BAD_SYMBOL,
    SCATTER_DUPLICATE,
    SCATTER_OK,
    SCATTER_UNKNOWN_TS,
    copy_runs,
    fill_missing,
    locate_rows,
)

NS_PER_UNIT: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
SOURCE = "Arrow bar table"

_SCATTER_RULES = {
    SCATTER_UNKNOWN_TS: "every row's timestamp must be on the time axis",
    SCATTER_DUPLICATE: "no two rows may share a symbol and timestamp",
    SCATTER_BAD_SYMBOL: "symbol codes must index the symbol list",
}


def _check_columns(table: pa.Table) -> int:
    """Raise unless the table can become a panel; return the ns per unit of ``ts``."""
    missing = [name for name in ("symbol", "ts", *VALUE_COLUMNS[:-1]) if name not in table.column_names]
    if missing:
        raise DataValidationError(SOURCE, None, f"missing columns: {', '.join(missing)}")
    kind = table.schema.field("ts").type
    if not pa.types.is_timestamp(kind):
        raise DataValidationError(SOURCE, None, f"ts must be a timestamp column, not {kind}")
    for name in ("symbol", "ts"):
        if table.column(name).null_count:
            raise DataValidationError(SOURCE, None, f"{name} must not be null")
    return NS_PER_UNIT[kind.unit]


def _raw_ts(column: pa.Array) -> NDArray[np.int64]:
    """The int64 values of a timestamp array, zero-copy."""
    return column.view(pa.int64()).to_numpy()


def _symbol_codes(column: pa.Array, symbols: tuple[str, ...]) -> NDArray[np.integer]:
    """Index into ``symbols`` of each row; zero-copy when the dictionary already matches."""
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    dictionary = encoded.dictionary.to_pylist()
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    if tuple(dictionary) == symbols[: len(dictionary)]:
        return indices
    position = {name: k for k, name in enumerate(symbols)}
    unknown = [name for name in dictionary if name not in position]
    if unknown:
        raise UnknownSymbolError(f"the table holds symbols outside the requested list: {', '.join(unknown[:10])}")
    lookup = np.array([position[name] for name in dictionary], dtype=np.int64)
    return lookup[indices]


def _values(batch: pa.RecordBatch, name: str) -> NDArray[np.float64]:
    """A value column as float64, zero-copy when it is float64 without nulls (nulls -> NaN)."""
    if name not in batch.schema.names:
        return np.full(batch.num_rows, np.nan)
    column = batch.column(name)
    if column.type == pa.float64() and column.null_count == 0:
        return column.to_numpy(zero_copy_only=True)  # a view of the Arrow buffer
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)  # nulls become NaN


def _time_axis(table: pa.Table, ns_per_unit: int) -> IntArray:
    """Sorted distinct timestamps in ns.

    A stable sort is NumPy's timsort, which merges presorted runs: near O(n) for rows
    stored time-major or symbol by symbol, O(n log n) only for shuffled rows.
    """
    ts = np.sort(_raw_ts(table.column("ts").combine_chunks()), kind="stable")
    first = np.ones(ts.size, dtype=np.bool_)
    np.not_equal(ts[1:], ts[:-1], out=first[1:])
    return ts[first] * ns_per_unit


def panel_from_arrow(table: pa.Table, symbols: Sequence[str] | None = None, frequency: str | None = None) -> MarketPanel:
    """Build a time-major panel from bar rows in any order.

    :param table: columns ``symbol`` (string or dictionary), ``ts`` (timestamp, any unit),
        ``open``, ``high``, ``low``, ``close``, ``volume`` and optionally ``spread_bps``
    :param symbols: the panel's symbols in order (may include symbols without rows);
        default: the table's symbols, sorted
    :param frequency: the bars' frequency, recorded on the panel
    :raises DataValidationError: duplicate (symbol, ts) rows, bad or missing columns
    :raises UnknownSymbolError: the table holds a symbol that ``symbols`` lacks
    """
    ns_per_unit = _check_columns(table)
    if symbols is None:
        symbols = sorted(pc.unique(table.column("symbol").cast(pa.string())).to_pylist())
    symbols = tuple(symbols)
    axis = _time_axis(table, ns_per_unit)
    n_times, n_symbols = axis.size, len(symbols)
    block = np.empty((len(VALUE_COLUMNS), n_times, n_symbols))
    planes = block.reshape(len(VALUE_COLUMNS), -1)
    valid = np.zeros((n_times, n_symbols), dtype=np.bool_)
    cursor = np.full(n_symbols, -1, dtype=np.int64)
    batches = table.to_batches()
    longest = max((batch.num_rows for batch in batches), default=0)
    runs = np.empty((longest, N_RUN_FIELDS), dtype=np.int64)
    n_runs, bad_row = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    offset = 0
    for batch in batches:
        codes = _symbol_codes(batch.column("symbol"), symbols)
        ts = _raw_ts(batch.column("ts"))
        status = locate_rows(ts, ns_per_unit, codes, axis, cursor, valid, runs, n_runs, bad_row)
        if status != SCATTER_OK:
            raise DataValidationError(SOURCE, offset + int(bad_row[0]) + 1, _SCATTER_RULES[status])
        for plane, name in zip(planes, VALUE_COLUMNS, strict=True):
            copy_runs(_values(batch, name), runs, int(n_runs[0]), plane)
        offset += batch.num_rows
    fill_missing(valid, block)
    has_spread = "spread_bps" in table.column_names and table.column("spread_bps").null_count < table.num_rows
    fields = dict(zip(VALUE_COLUMNS, block, strict=True))
    spread = fields.pop("spread_bps")
    return MarketPanel(
        ts=axis, symbols=symbols, valid=valid, spread_bps=spread if has_spread else None, frequency=frequency, **fields
    )


def panel_to_arrow(panel: MarketPanel) -> pa.Table:
    """The panel's valid cells as bar rows (time-major order) with :data:`BARS_SCHEMA`; the
    frequency is the panel's, or the one its time axis is spaced at."""
    t_index, s_index = np.nonzero(panel.valid)
    spread = None if panel.spread_bps is None else panel.spread_bps[t_index, s_index]
    symbol_names = pa.array(panel.symbols, pa.string())
    return pa.table(
        {
            "symbol": pa.DictionaryArray.from_arrays(s_index.astype(np.int32), symbol_names).cast(pa.string()),
            "frequency": pa.array([panel_frequency(panel)] * t_index.size, pa.string()),
            "ts": pa.array(panel.ts[t_index], TS_TYPE),
            "open": panel.open[t_index, s_index],
            "high": panel.high[t_index, s_index],
            "low": panel.low[t_index, s_index],
            "close": panel.close[t_index, s_index],
            "volume": panel.volume[t_index, s_index],
            "spread_bps": pa.nulls(t_index.size, pa.float64()) if spread is None else pa.array(spread, from_pandas=True),
        },
        schema=BARS_SCHEMA,
    )
