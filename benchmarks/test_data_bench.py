"""DuckDB -> Arrow -> MarketPanel throughput, in bar rows per second (target >= 20M/s).

Two storage layouts: rows written time-major (the built-in data set) and symbol by
symbol (what ingesting one file per symbol gives). Baseline: the straightforward way,
fetch the rows as Python tuples and fill the panel arrays in a Python loop, over a
time window of the same store holding fewer rows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ai_trading.data import MINUTE, MarketDataStore, generate_bars
from ai_trading.types import MarketPanel

FULL_SIZE = (40, 120_000)  # symbols, 1-minute bars per symbol: 4.8M rows
REDUCED_SIZE = (8, 2_000)
BASELINE_BARS = 5_000  # bars per symbol in the baseline's window
SEED = 3
LAYOUTS = ("time-major", "symbol-major")


def python_panel(path: Path, start_ns: int, end_ns: int) -> MarketPanel:
    """Rows as tuples, dicts for the axes, one Python assignment per value."""
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "SELECT symbol, epoch_ns(ts), open, high, low, close, volume, spread_bps FROM bars "
        "WHERE epoch_ns(ts) >= ? AND epoch_ns(ts) < ?",
        [start_ns, end_ns],
    ).fetchall()
    con.close()
    symbols = sorted({row[0] for row in rows})
    times = sorted({row[1] for row in rows})
    s_index = {symbol: s for s, symbol in enumerate(symbols)}
    t_index = {ts: t for t, ts in enumerate(times)}
    fields = [np.full((len(times), len(symbols)), np.nan) for _ in range(6)]
    valid = np.zeros((len(times), len(symbols)), dtype=np.bool_)
    for symbol, ts, *values in rows:
        t, s = t_index[ts], s_index[symbol]
        valid[t, s] = True
        for field, value in zip(fields, values, strict=True):
            field[t, s] = np.nan if value is None else value
    open_, high, low, close, volume, spread = fields
    return MarketPanel(np.array(times), tuple(symbols), open_, high, low, close, volume, valid, spread)


def write_store(path: Path, layout: str, n_symbols: int, n_bars: int) -> None:
    with MarketDataStore(path) as store:
        if layout == "time-major":
            store.generate(MINUTE, n_symbols, n_bars, SEED)
            return
        bars = generate_bars(n_symbols, n_bars, MINUTE, SEED)
        by_symbol = np.argsort(pc.dictionary_encode(bars.column("symbol")).combine_chunks().indices, kind="stable")
        pq.write_table(bars.take(by_symbol), path.with_suffix(".parquet"))
        store.ingest(path.with_suffix(".parquet"))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_store_to_panel(throughput, tmp_path: Path, layout: str) -> None:
    n_symbols, n_bars = FULL_SIZE if throughput.full_size else REDUCED_SIZE
    path = tmp_path / "bench.duckdb"
    write_store(path, layout, n_symbols, n_bars)
    store = MarketDataStore(path, read_only=True)
    rows = store.row_count()
    full = store.panel()
    window = full.ts[[0, min(BASELINE_BARS, full.n_bars - 1)]]
    baseline_rows = int(full.valid[: min(BASELINE_BARS, full.n_bars - 1)].sum())

    panel = throughput.measure(store.panel, rows, lambda: python_panel(path, int(window[0]), int(window[1])), baseline_rows)

    assert int(panel.valid.sum()) == rows
    reference = python_panel(path, int(window[0]), int(window[1]))
    assert reference.symbols == panel.symbols
    np.testing.assert_array_equal(panel.close[: reference.n_bars], reference.close)
    np.testing.assert_array_equal(panel.valid[: reference.n_bars], reference.valid)
    store.close()
