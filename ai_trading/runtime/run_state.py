"""The durable state of one trading run, beside the OMS: where it stopped and what it learned.

An SQLite file in the run directory (WAL, synchronous commits) holds, each change in one
transaction:

- ``cursor``: the last bar the loop finished, the orders it sent so far and the
  generation of the cost-model file that includes every applied fill;
- ``applied_fills``: every broker fill already folded into the cost model (keyed by the
  broker's fill id, so a fill is never counted twice), with what TCA needs (reference mid,
  participation, volatility, spread): also the run's cash ledger;
- ``book``: per symbol, the running totals of those fills (shares, cash spent, fees),
  updated in the transaction that records them, so the book is not re-summed every bar;
- ``orders``: each sent order's decision bar and price and the cost the model predicted;
- ``equity``: the book marked at every bar close;
- ``execution_log``: a view, per order: decision price, arrival price, average fill,
  slippage against each (bps, positive = paid), fees, realized and predicted cost;
  exported as ``execution_log.parquet`` when a run stops or ends.

Times are int64 nanoseconds UTC. The schema is versioned (``PRAGMA user_version``): a
writer applies the missing steps when it opens the file, each in one transaction.

The cost model is saved to ``cost_model.<generation>.arrow`` before the transaction that
makes that generation current: a crash in between leaves the previous generation, and the
fills it lacks, to be applied again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pyarrow as pa

from ai_trading.config import CostModelConfig, ExecutionConfig
from ai_trading.errors import DataStoreError
from ai_trading.execution.cost_model import CostModel

logger = logging.getLogger(__name__)

EXECUTION_LOG_PARQUET = "execution_log.parquet"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (
    id INTEGER PRIMARY KEY, bar_ts INTEGER, orders INTEGER NOT NULL, denials INTEGER NOT NULL, cost_generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO cursor VALUES (1, NULL, 0, 0, 0);
CREATE TABLE IF NOT EXISTS applied_fills (
    fill_id TEXT PRIMARY KEY, oms_fill_id INTEGER NOT NULL, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL,
    side INTEGER NOT NULL, qty REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL, ts INTEGER NOT NULL,
    mid REAL, participation REAL, sigma_bps REAL, spread_bps REAL
);
CREATE INDEX IF NOT EXISTS ix_applied_fills_oms ON applied_fills (oms_fill_id);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side INTEGER NOT NULL, qty REAL NOT NULL,
    decision_ts INTEGER NOT NULL, decision_price REAL NOT NULL, arrival_price REAL, expected_cost_bps REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS equity (bar_ts INTEGER PRIMARY KEY, cash REAL NOT NULL, equity REAL NOT NULL, gross REAL NOT NULL);
"""
# Schema version steps (``PRAGMA user_version``), each applied once in one transaction.
# 1: running totals per symbol (``book``, backfilled from the applied fills) and an execution
#    log that reads each order's fills through an index, so a read of a few days (by
#    ``decision_ts``) costs the same at the end of a year as on its first day.
_UPGRADES: tuple[tuple[str, ...], ...] = (
    (
        "CREATE INDEX IF NOT EXISTS ix_applied_fills_order ON applied_fills (client_order_id)",
        "CREATE INDEX IF NOT EXISTS ix_orders_decision ON orders (decision_ts)",
        "CREATE TABLE book (symbol TEXT PRIMARY KEY, qty REAL NOT NULL, spent REAL NOT NULL, fees REAL NOT NULL)",
        "INSERT INTO book SELECT symbol, sum(side * qty), sum(side * qty * price), sum(fee) FROM applied_fills GROUP BY symbol",
        "DROP VIEW IF EXISTS execution_log",
        """CREATE VIEW execution_log AS
WITH filled AS (
    SELECT o.*,
           (SELECT sum(qty) FROM applied_fills f WHERE f.client_order_id = o.client_order_id) AS filled,
           (SELECT sum(qty * price) FROM applied_fills f WHERE f.client_order_id = o.client_order_id) AS notional,
           (SELECT sum(fee) FROM applied_fills f WHERE f.client_order_id = o.client_order_id) AS paid
    FROM orders o
)
SELECT client_order_id, symbol, side, qty, decision_ts, date(decision_ts / 1000000000, 'unixepoch') AS day,
       decision_price, arrival_price, notional / filled AS avg_price, coalesce(filled, 0) AS filled_qty,
       coalesce(paid, 0) AS fees,
       side * (notional / filled - decision_price) / decision_price * 1e4 AS slippage_bps_decision,
       side * (notional / filled - arrival_price) / arrival_price * 1e4 AS slippage_bps_arrival,
       coalesce(side * (notional / filled - decision_price) * filled, 0) + coalesce(paid, 0) AS realized_cost,
       expected_cost_bps,
       expected_cost_bps * 1e-4 * decision_price * coalesce(filled, 0) AS predicted_cost
FROM filled""",
    ),
)
SCHEMA_VERSION = len(_UPGRADES)
RUN_DB = "run.sqlite"
BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Cursor:
    """Where the run stopped: the last finished bar (None before the first), orders sent,
    orders the risk checks denied, and the current cost-model generation."""

    bar_ts: int | None
    orders: int
    denials: int
    cost_generation: int


@dataclass(frozen=True)
class AppliedFill:
    """A broker fill as folded into the cost model and the cash ledger (side +1 buy, -1 sell)."""

    fill_id: str
    oms_fill_id: int
    client_order_id: str
    symbol: str
    side: int
    qty: float
    price: float
    fee: float
    ts_ns: int
    mid: float
    participation: float
    sigma_bps: float
    spread_bps: float


@dataclass(frozen=True)
class PlannedOrderRecord:
    """A sent order as TCA needs it."""

    client_order_id: str
    symbol: str
    side: int
    qty: float
    decision_ts_ns: int
    decision_price: float
    expected_cost_bps: float


class RunState:
    """The run directory's SQLite file (see the module docstring).

    :param directory: the run directory (created if missing)
    :param read_only: open for reading (``ai-trading tca``) while no loop writes it
    """

    def __init__(self, directory: Path, read_only: bool = False) -> None:
        self.directory = Path(directory)
        path = self.directory / RUN_DB
        if read_only and not path.exists():
            raise DataStoreError(f"{self.directory} holds no trading run ({RUN_DB} is missing): pass the run directory of a replay")
        try:
            if not read_only:
                self.directory.mkdir(parents=True, exist_ok=True)
            target = f"file:{path}?mode=ro" if read_only else str(path)
            self._con = sqlite3.connect(target, uri=read_only, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            if not read_only:
                self._con.execute("PRAGMA journal_mode=WAL")
                self._con.execute("PRAGMA synchronous=FULL")
                self._con.executescript(_SCHEMA)
                self._upgrade()
            self._version = int(self._rows("PRAGMA user_version")[0][0])
        except sqlite3.Error as exc:
            raise DataStoreError(f"cannot open the run state {path}: {exc}") from exc
        if self._version > SCHEMA_VERSION:
            self._con.close()
            raise DataStoreError(
                f"the run state {path} has schema version {self._version}, this version of ai-trading knows {SCHEMA_VERSION}: "
                "upgrade ai-trading to read it"
            )

    def _upgrade(self) -> None:
        """Apply the schema version steps this file lacks, in order."""
        for version, statements in enumerate(_UPGRADES, start=1):
            if self._apply_step(version, statements):
                logger.info("RUN_STATE_UPGRADED", extra={"directory": str(self.directory), "schema_version": version})

    def _apply_step(self, version: int, statements: Sequence[str]) -> bool:
        """One step in one transaction; False when the file has it already (a concurrent
        opener waits for the lock and then finds the step done)."""
        with self._transaction() as db:
            if int(db.execute("PRAGMA user_version").fetchone()[0]) >= version:
                return False
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version}")
        return True

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, params).fetchall()

    def _arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        cursor = self._con.execute(sql, params)
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
        return pa.table({name: [row[k] for row in rows] for k, name in enumerate(names)})

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    # -- reads --------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        row = self._rows("SELECT bar_ts, orders, denials, cost_generation FROM cursor WHERE id = 1")[0]  # inserted on open
        return Cursor(None if row[0] is None else int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def last_oms_fill_id(self) -> int:
        return int(self._rows("SELECT coalesce(max(oms_fill_id), 0) FROM applied_fills")[0][0])

    def applied_ids(self, fill_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for fill_id in fill_ids:
            found.update(str(r[0]) for r in self._rows("SELECT fill_id FROM applied_fills WHERE fill_id = ?", (fill_id,)))
        return found

    def orders_of(self, client_order_ids: Sequence[str]) -> dict[str, tuple[int, float | None]]:
        """Decision bar (ns) and arrival price of the given orders."""
        found: dict[str, tuple[int, float | None]] = {}
        for cid in client_order_ids:
            for ts, arrival in self._rows("SELECT decision_ts, arrival_price FROM orders WHERE client_order_id = ?", (cid,)):
                found[cid] = (int(ts), None if arrival is None else float(arrival))
        return found

    def cash_and_positions(self, initial_cash: float) -> tuple[float, dict[str, float]]:
        """Cash and shares per symbol from every applied fill (their running totals, kept
        with the fills by :meth:`commit_fills`)."""
        if self._version < SCHEMA_VERSION:
            raise DataStoreError(
                f"the run state in {self.directory} was written by an older version (schema {self._version}, current "
                f"{SCHEMA_VERSION}) and opened read-only: run its `ai-trading replay` (or paper/live) command again with the "
                "same run directory, which upgrades it on start"
            )
        rows = self._rows("SELECT symbol, qty, spent, fees FROM book ORDER BY symbol")
        cash = initial_cash - sum(float(spent) + float(fee) for _, _, spent, fee in rows)
        return cash, {str(symbol): float(qty) for symbol, qty, _, _ in rows}

    def peak_equity(self, initial_cash: float) -> float:
        peak = self._rows("SELECT max(equity) FROM equity")[0][0]
        return initial_cash if peak is None else max(initial_cash, float(peak))

    def equity_curve(self) -> pa.Table:
        return self._arrow("SELECT bar_ts, cash, equity, gross FROM equity ORDER BY bar_ts")

    def execution_log(self) -> pa.Table:
        return self._arrow("SELECT * FROM execution_log ORDER BY decision_ts, client_order_id")

    def query(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        """A read of the run's tables (TCA)."""
        return self._arrow(sql, params)

    # -- writes -------------------------------------------------------------------------

    def cost_model_path(self, generation: int) -> Path:
        return self.directory / f"cost_model.{generation}.arrow"

    def load_cost_model(self, config: CostModelConfig, execution: ExecutionConfig) -> CostModel:
        """The cost model of the current generation (generation 0: the configured prior,
        loaded from ``cost_model.state_path`` when that file exists)."""
        generation = self.cursor().cost_generation
        if generation > 0:
            return CostModel.load(config, execution, self.cost_model_path(generation))
        if config.state_path is not None and config.state_path.exists():
            return CostModel.load(config, execution)
        return CostModel(config, execution)

    def commit_fills(self, fills: Sequence[AppliedFill], arrivals: dict[str, float], model: CostModel) -> None:
        """Save ``model`` (which has learned ``fills``) as the next generation, then record
        the fills, the orders' arrival prices and the generation in one transaction."""
        generation = self.cursor().cost_generation + 1
        model.save(self.cost_model_path(generation))
        with self._transaction() as db:
            db.executemany(  # callers pass at least one fill
                "INSERT INTO applied_fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [f.fill_id, f.oms_fill_id, f.client_order_id, f.symbol, f.side, f.qty, f.price, f.fee, f.ts_ns,
                     f.mid, f.participation, f.sigma_bps, f.spread_bps]
                    for f in fills
                ],
            )  # fmt: skip
            db.executemany(
                "INSERT INTO book VALUES (?, ?, ?, ?) ON CONFLICT (symbol) "
                "DO UPDATE SET qty = qty + excluded.qty, spent = spent + excluded.spent, fees = fees + excluded.fees",
                [[f.symbol, f.side * f.qty, f.side * f.qty * f.price, f.fee] for f in fills],
            )
            for cid, price in arrivals.items():
                db.execute("UPDATE orders SET arrival_price = ? WHERE client_order_id = ? AND arrival_price IS NULL", (price, cid))
            db.execute("UPDATE cursor SET cost_generation = ? WHERE id = 1", (generation,))
        self.cost_model_path(generation - 1).unlink(missing_ok=True)
        logger.info("RUN_FILLS_APPLIED", extra={"fills": len(fills), "cost_generation": generation})

    def finish_bar(self, bar_ts: int, orders: Sequence[PlannedOrderRecord], denials: int, cash: float, equity: float, gross: float) -> Cursor:
        """Record the bar's sent orders, its marked book and the cursor, in one transaction."""
        with self._transaction() as db:
            if orders:
                db.executemany(
                    "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                    [[o.client_order_id, o.symbol, o.side, o.qty, o.decision_ts_ns, o.decision_price, o.expected_cost_bps] for o in orders],
                )
            db.execute("INSERT OR REPLACE INTO equity VALUES (?, ?, ?, ?)", (bar_ts, cash, equity, gross))
            db.execute(
                "UPDATE cursor SET bar_ts = ?, orders = orders + ?, denials = denials + ? WHERE id = 1",
                (bar_ts, len(orders), denials),
            )
        return self.cursor()

    def export_execution_log(self) -> Path:
        """Write the execution log as Parquet beside the run's database (replaced atomically)."""
        import pyarrow.parquet as pq

        target = self.directory / EXECUTION_LOG_PARQUET
        temporary = target.with_name(f".{target.name}.tmp")
        pq.write_table(self.execution_log(), temporary)
        temporary.replace(target)
        return target
