"""Arrow -> MarketPanel against a slow row-by-row reference, whatever the row order,
chunking, symbol encoding or timestamp unit."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.data import generate_panel, panel_from_arrow, panel_to_arrow
from ai_trading.data.panel import _values
from ai_trading.errors import DataValidationError, UnknownSymbolError

FIELDS = ("open", "high", "low", "close", "volume", "spread_bps")
TS_UNITS = ("s", "ms", "us", "ns")
NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def reference_panel(rows: list[dict[str, object]], symbols: list[str]) -> dict[str, np.ndarray]:
    """One Python assignment per value: the obviously correct panel."""
    times = sorted({row["ts_ns"] for row in rows})
    out = {name: np.full((len(times), len(symbols)), np.nan) for name in FIELDS}
    out["valid"] = np.zeros((len(times), len(symbols)), dtype=bool)
    out["ts"] = np.array(times, dtype=np.int64)
    for row in rows:
        t, s = times.index(row["ts_ns"]), symbols.index(row["symbol"])
        out["valid"][t, s] = True
        for name in FIELDS:
            out[name][t, s] = np.nan if row[name] is None else row[name]
    return out


@st.composite
def bar_tables(draw: st.DrawFn) -> tuple[pa.Table, list[dict[str, object]], list[str]]:
    n_symbols = draw(st.integers(1, 5))
    symbols = [f"S{i}" for i in range(n_symbols)]
    unit = draw(st.sampled_from(TS_UNITS))
    stamps = sorted(draw(st.sets(st.integers(0, 10**6), min_size=1, max_size=25)))
    cells = [(t, s) for t in stamps for s in symbols if draw(st.booleans())] or [(stamps[0], symbols[0])]
    order = draw(st.permutations(range(len(cells))))
    value = st.floats(0.01, 1e6, allow_nan=False)
    rows = []
    for k in order:
        t, s = cells[k]
        rows.append(
            {"symbol": s, "ts_ns": t * NS_PER_UNIT[unit], "ts": t, **{name: draw(value) for name in FIELDS[:-1]},
             "spread_bps": draw(st.none() | value)}
        )  # fmt: skip
    symbol_column = pa.array([row["symbol"] for row in rows], pa.string())
    if draw(st.booleans()):
        symbol_column = symbol_column.dictionary_encode()
    table = pa.table(
        {"symbol": symbol_column, "ts": pa.array([row["ts"] for row in rows], pa.timestamp(unit, tz="UTC")),
         **{name: pa.array([row[name] for row in rows], pa.float64()) for name in FIELDS}}
    )  # fmt: skip
    chunk = draw(st.integers(1, max(1, len(rows))))
    table = pa.Table.from_batches(table.to_batches(max_chunksize=chunk))
    return table, rows, symbols


@settings(max_examples=150, deadline=None)
@given(bar_tables())
def test_panel_matches_row_by_row_reference(case: tuple[pa.Table, list[dict[str, object]], list[str]]) -> None:
    table, rows, symbols = case
    panel = panel_from_arrow(table, symbols)
    expected = reference_panel(rows, symbols)
    np.testing.assert_array_equal(panel.ts, expected["ts"])
    np.testing.assert_array_equal(panel.valid, expected["valid"])
    for name in FIELDS[:-1]:
        array = getattr(panel, name)
        assert array.flags.c_contiguous and array.dtype == np.float64 and array.shape == (len(expected["ts"]), len(symbols))
        np.testing.assert_array_equal(array, expected[name])
    if all(row["spread_bps"] is None for row in rows):
        assert panel.spread_bps is None
    else:
        np.testing.assert_array_equal(panel.spread_bps, expected["spread_bps"])


def test_round_trip_through_arrow() -> None:
    panel = generate_panel(6, 50, "1min", seed=4)
    back = panel_from_arrow(panel_to_arrow(panel), panel.symbols)
    for name in ("ts", "valid", *FIELDS):
        np.testing.assert_array_equal(getattr(back, name), getattr(panel, name))


def test_requested_symbols_without_rows_are_all_missing() -> None:
    table = panel_to_arrow(generate_panel(2, 5, seed=1))
    panel = panel_from_arrow(table, ["EMPTY", "SYN01", "SYN00"])
    assert panel.symbols == ("EMPTY", "SYN01", "SYN00")
    assert not panel.valid[:, 0].any() and np.isnan(panel.close[:, 0]).all()
    assert panel.valid[:, 1:].all()


def test_duplicate_rows_are_refused_with_their_row() -> None:
    table = panel_to_arrow(generate_panel(2, 5, seed=1))
    doubled = pa.concat_tables([table, table.slice(3, 1)])
    with pytest.raises(DataValidationError) as caught:
        panel_from_arrow(doubled)
    assert caught.value.row == table.num_rows + 1
    assert "share a symbol and timestamp" in caught.value.rule


def test_symbols_outside_the_requested_list_are_refused() -> None:
    table = panel_to_arrow(generate_panel(2, 5, seed=1))
    with pytest.raises(UnknownSymbolError, match="SYN01"):
        panel_from_arrow(table, ["SYN00"])


def test_bad_columns_are_refused() -> None:
    table = panel_to_arrow(generate_panel(1, 3, seed=1))
    with pytest.raises(DataValidationError, match="missing columns: close"):
        panel_from_arrow(table.drop_columns(["close"]))
    with pytest.raises(DataValidationError, match="timestamp"):
        panel_from_arrow(table.set_column(table.column_names.index("ts"), "ts", table.column("ts").cast(pa.int64())))


def test_null_free_float_columns_are_read_without_copying() -> None:
    batch = panel_to_arrow(generate_panel(2, 5, seed=1)).to_batches()[0]
    view = _values(batch, "close")
    assert view.ctypes.data == batch.column("close").buffers()[1].address + 8 * batch.column("close").offset
