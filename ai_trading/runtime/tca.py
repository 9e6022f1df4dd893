"""Transaction cost analysis of a trading run: realized against predicted cost, by symbol and by day.

Read from the run's execution log (:mod:`ai_trading.runtime.run_state`), over filled
orders; bps are weighted by filled notional. ``realized_bps_arrival`` (fill against
arrival price, fees excluded) is the figure the cost model predicts (``predicted_bps``);
their difference says how far the model is off. ``realized_bps_decision`` adds the drift
between decision and arrival, ``fees`` are apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ai_trading.runtime.run_state import RunState

GROUPINGS: dict[str, str] = {"symbol": "symbol", "day": "day"}

_AGGREGATES = """
    count(*) AS orders,
    sum(filled_qty * avg_price) AS notional,
    sum(slippage_bps_arrival * filled_qty * avg_price) / sum(filled_qty * avg_price) AS realized_bps_arrival,
    sum(expected_cost_bps * filled_qty * avg_price) / sum(filled_qty * avg_price) AS predicted_bps,
    sum(slippage_bps_decision * filled_qty * avg_price) / sum(filled_qty * avg_price) AS realized_bps_decision,
    sum(fees) AS fees,
    sum(realized_cost) AS realized_cost,
    sum(predicted_cost) AS predicted_cost
"""


_FILLED = "FROM execution_log WHERE filled_qty > 0 AND arrival_price IS NOT NULL"
NS_PER_DAY = 86_400 * 10**9


def tca_tables(state: RunState) -> dict[str, list[dict[str, Any]]]:
    """Rows per symbol, per day and in total, each with the aggregates above."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, column in GROUPINGS.items():
        sql = f"SELECT {column} AS {name}, {_AGGREGATES} {_FILLED} GROUP BY {column} ORDER BY {column}"
        tables[name] = state.query(sql).to_pylist()
    tables["total"] = state.query(f"SELECT {_AGGREGATES} {_FILLED}").to_pylist()
    return tables


def day_rows(state: RunState, decision_ts_ns: Iterable[int]) -> list[dict[str, Any]]:
    """The ``day`` rows of :func:`tca_tables` for the UTC days holding these decision times
    only, in day order (a day without a filled order has no row). Each day is read by its
    ``decision_ts`` range, through the index, so the cost does not grow with the run."""
    rows: list[dict[str, Any]] = []
    for day in sorted({int(ts) // NS_PER_DAY for ts in decision_ts_ns}):
        sql = f"SELECT day, {_AGGREGATES} {_FILLED} AND decision_ts >= ? AND decision_ts < ? GROUP BY day"
        rows.extend(state.query(sql, (day * NS_PER_DAY, (day + 1) * NS_PER_DAY)).to_pylist())
    return rows
