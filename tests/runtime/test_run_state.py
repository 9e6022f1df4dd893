"""RunState: the running book equals the slow sum over every fill; schema version steps."""

from __future__ import annotations

import itertools
import math
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.config import CostModelConfig, ExecutionConfig
from ai_trading.errors import DataStoreError
from ai_trading.execution.cost_model import CostModel
from ai_trading.runtime.run_state import (
    RUN_DB,
    SCHEMA_VERSION,
    AppliedFill,
    PlannedOrderRecord,
    RunState,
)

SYMBOLS = ("AAA", "BBB", "CCC")
CASH = 1_000_000.0
DAY_NS = 86_400 * 10**9

# The layout before schema versions (user_version 0), frozen here as it was written.
SCHEMA_0 = """
CREATE TABLE cursor (id INTEGER PRIMARY KEY, bar_ts INTEGER, orders INTEGER NOT NULL, denials INTEGER NOT NULL, cost_generation INTEGER NOT NULL);
INSERT INTO cursor VALUES (1, NULL, 0, 0, 0);
CREATE TABLE applied_fills (
    fill_id TEXT PRIMARY KEY, oms_fill_id INTEGER NOT NULL, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL,
    side INTEGER NOT NULL, qty REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL, ts INTEGER NOT NULL,
    mid REAL, participation REAL, sigma_bps REAL, spread_bps REAL
);
CREATE INDEX ix_applied_fills_oms ON applied_fills (oms_fill_id);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side INTEGER NOT NULL, qty REAL NOT NULL,
    decision_ts INTEGER NOT NULL, decision_price REAL NOT NULL, arrival_price REAL, expected_cost_bps REAL NOT NULL
);
CREATE TABLE equity (bar_ts INTEGER PRIMARY KEY, cash REAL NOT NULL, equity REAL NOT NULL, gross REAL NOT NULL);
CREATE VIEW execution_log AS
WITH filled AS (
    SELECT client_order_id, sum(qty) AS filled_qty, sum(qty * price) / sum(qty) AS avg_price, sum(fee) AS fees
    FROM applied_fills GROUP BY client_order_id
)
SELECT o.client_order_id, o.symbol, o.side, o.qty, o.decision_ts, date(o.decision_ts / 1000000000, 'unixepoch') AS day,
       o.decision_price, o.arrival_price, f.avg_price, coalesce(f.filled_qty, 0) AS filled_qty,
       coalesce(f.fees, 0) AS fees,
       o.side * (f.avg_price - o.decision_price) / o.decision_price * 1e4 AS slippage_bps_decision,
       o.side * (f.avg_price - o.arrival_price) / o.arrival_price * 1e4 AS slippage_bps_arrival,
       coalesce(o.side * (f.avg_price - o.decision_price) * f.filled_qty, 0) + coalesce(f.fees, 0) AS realized_cost,
       o.expected_cost_bps,
       o.expected_cost_bps * 1e-4 * o.decision_price * coalesce(f.filled_qty, 0) AS predicted_cost
FROM orders o LEFT JOIN filled f USING (client_order_id);
"""

fill_values = st.tuples(
    st.sampled_from(SYMBOLS),
    st.sampled_from((1, -1)),
    st.floats(0.000001, 5_000.0),
    st.floats(0.5, 2_000.0),
    st.floats(0.0, 25.0),
)


def fills_of(values: list[tuple[str, int, float, float, float]]) -> list[AppliedFill]:
    return [
        AppliedFill(f"f{k}", k + 1, f"o{k % 7}", symbol, side, qty, price, fee, k, price, 0.01, 20.0, 5.0)
        for k, (symbol, side, qty, price, fee) in enumerate(values)
    ]


def reference_book(fills: list[AppliedFill]) -> tuple[float, dict[str, float]]:
    """The obvious book: cash and shares summed over every fill, exactly rounded."""
    cash = CASH - math.fsum(f.side * f.qty * f.price + f.fee for f in fills)
    shares = {s: math.fsum(f.side * f.qty for f in fills if f.symbol == s) for s in {f.symbol for f in fills}}
    return cash, shares


def commit(state: RunState, fills: list[AppliedFill]) -> None:
    state.commit_fills(fills, {}, CostModel(CostModelConfig(), ExecutionConfig()))


def assert_book(state: RunState, fills: list[AppliedFill]) -> None:
    cash, shares = state.cash_and_positions(CASH)
    want_cash, want_shares = reference_book(fills)
    assert cash == pytest.approx(want_cash, rel=1e-12, abs=1e-6)
    assert shares.keys() == want_shares.keys()
    for symbol, qty in shares.items():
        assert qty == pytest.approx(want_shares[symbol], rel=1e-12, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(fill_values, min_size=1, max_size=60), cuts=st.lists(st.integers(1, 60), max_size=6))
def test_the_running_book_equals_the_sum_over_every_fill(values: list[tuple[str, int, float, float, float]], cuts: list[int]) -> None:
    fills = fills_of(values)
    bounds = sorted({0, len(fills), *(c for c in cuts if c < len(fills))})
    with tempfile.TemporaryDirectory() as directory:
        with RunState(Path(directory)) as state:
            assert state.cash_and_positions(CASH) == (CASH, {})
            for start, end in itertools.pairwise(bounds):  # batches as the loop's steps commit them
                commit(state, fills[start:end])
                assert_book(state, fills[:end])
        with RunState(Path(directory), read_only=True) as reopened:
            assert_book(reopened, fills)


def test_a_refused_commit_leaves_the_book_as_it_was(tmp_path: Path) -> None:
    fills = fills_of([("AAA", 1, 10.0, 100.0, 1.0), ("BBB", -1, 3.0, 50.0, 0.5)])
    with RunState(tmp_path) as state:
        commit(state, fills[:1])
        before = state.cash_and_positions(CASH)
        with pytest.raises(sqlite3.IntegrityError):
            commit(state, fills[1:] + fills[:1])  # the second fill was applied already: nothing of the batch is kept
        assert state.cash_and_positions(CASH) == before
        assert state.last_oms_fill_id() == 1


def write_schema_0(directory: Path, fills: list[AppliedFill]) -> None:
    with closing(sqlite3.connect(directory / RUN_DB)) as db, db:
        db.executescript(SCHEMA_0)
        db.executemany(
            "INSERT INTO applied_fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[f.fill_id, f.oms_fill_id, f.client_order_id, f.symbol, f.side, f.qty, f.price, f.fee, f.ts_ns, f.mid, 0.01, 20.0, 5.0] for f in fills],
        )
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, 1, 100.0, ?, 99.0, ?, 4.0)",
            [(f"o{k}", SYMBOLS[k % 3], k * DAY_NS // 3, None if k == 5 else 99.5) for k in range(8)],
        )


def test_a_file_of_the_layout_before_versions_is_upgraded_when_opened_for_writing(tmp_path: Path) -> None:
    fills = fills_of([(SYMBOLS[k % 3], (1, -1)[k % 2], 1.5 + k, 100.0 + k, 0.1 * k) for k in range(30)])
    write_schema_0(tmp_path, fills)
    with closing(sqlite3.connect(tmp_path / RUN_DB)) as db:
        old_log = db.execute("SELECT * FROM execution_log ORDER BY decision_ts, client_order_id").fetchall()
    with RunState(tmp_path, read_only=True) as old, pytest.raises(DataStoreError, match="run its `ai-trading replay`"):
        old.cash_and_positions(CASH)  # never a book of zeros read from a file that has fills
    with RunState(tmp_path) as state:
        assert_book(state, fills)  # backfilled from the fills
        new_log = state.execution_log()
        later = fills_of([("AAA", 1, 2.0, 10.0, 0.0)] * 31)[30:]  # the next fill id
        commit(state, later)
        assert_book(state, fills + later)
    assert [tuple(row.values()) for row in new_log.to_pylist()] == old_log  # the same log, read through the indexes
    with closing(sqlite3.connect(tmp_path / RUN_DB)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_file_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    RunState(tmp_path).close()
    with closing(sqlite3.connect(tmp_path / RUN_DB)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DataStoreError, match="upgrade ai-trading"):
        RunState(tmp_path)


def test_a_day_of_the_execution_log_is_read_through_the_decision_time_index(tmp_path: Path) -> None:
    with RunState(tmp_path) as state:
        state.finish_bar(0, [PlannedOrderRecord("o1", "AAA", 1, 1.0, DAY_NS, 10.0, 3.0)], 0, CASH, CASH, 0.0)
        plan = state.query(
            "EXPLAIN QUERY PLAN SELECT * FROM execution_log WHERE decision_ts >= ? AND decision_ts < ?", (DAY_NS, 2 * DAY_NS)
        ).column("detail").to_pylist()
    assert any("ix_orders_decision" in step for step in plan) and not any(step.startswith("SCAN") for step in plan), plan
