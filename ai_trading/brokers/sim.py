"""SimBroker: a paper broker that fills orders through the execution simulator.

It behaves like a real broker towards the OMS: it keeps its own durable state (orders,
fills, an audit log of every submission and its market clock) in its own SQLite file, so
it survives the OMS process being killed; it refuses a second order with a
``client_order_id`` it already holds; and its fills appear over time.

Time is the bar clock of a :class:`~ai_trading.types.MarketPanel`. An order submitted at
clock bar ``t`` is decided on that bar's close and simulated at once with the seeded
:class:`~ai_trading.execution.simulator.ExecutionSimulator` (the random draws are keyed by
a hash of the client order id, so the same order fills the same way in any process); its
fill events become visible as :meth:`SimBroker.advance` moves the clock past their bars.
Simulated float quantities are turned into exact decimals by rounding the cumulative
filled quantity to :data:`QTY_QUANTUM`, so the fills of a filled order sum to its quantity.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from ai_trading.config import ExecutionConfig
from ai_trading.errors import BrokerError, DuplicateOrderError, OrderRejected
from ai_trading.execution.simulator import ExecutionSimulator
from ai_trading.oms.broker import BrokerFill, BrokerOrder, BrokerOrderStatus, BrokerPosition, OrderRequest
from ai_trading.types import BUY, LIMIT, MARKET, SELL, MarketPanel, OrderBatch
from kernels.layout import S_FILLED, S_NO_DECISION_PRICE

logger = logging.getLogger(__name__)

QTY_QUANTUM = Decimal("0.000001")  # shares
PRICE_QUANTUM = Decimal("0.0001")  # currency per share
FEE_QUANTUM = Decimal("0.0001")  # currency
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty TEXT NOT NULL,
    order_type TEXT NOT NULL,
    limit_price TEXT,
    decision_bar INTEGER NOT NULL,
    expire_bar INTEGER NOT NULL,
    canceled_bar INTEGER,
    rejected INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    bar INTEGER NOT NULL,
    qty TEXT NOT NULL,
    price TEXT NOT NULL,
    fee TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_fills_bar ON fills (bar);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    accepted INTEGER NOT NULL
);
"""
_ORDER_COLUMNS = "id, client_order_id, symbol, side, qty, order_type, limit_price, decision_bar, expire_bar, canceled_bar, rejected"


def _decimal(value: float, quantum: Decimal) -> Decimal:
    return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN)


def simulator_order_id(client_order_id: str) -> int:
    """A positive int64 derived from the client id: keys the simulator's random draws."""
    return int.from_bytes(hashlib.sha256(client_order_id.encode()).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class SubmissionRecord:
    """One submit request as it reached the broker (accepted or refused as a duplicate)."""

    client_order_id: str
    accepted: bool


class SimBroker:
    """Paper :class:`~ai_trading.oms.broker.Broker` on the execution simulator.

    :param db_path: SQLite file of the broker's state (created on first use); reopening it
        with a different panel raises :class:`BrokerError`
    :param panel: the market the broker trades; its bars are the broker's clock
    :param execution: simulator parameters (seeded: the same orders fill identically)
    """

    def __init__(self, db_path: Path, panel: MarketPanel, execution: ExecutionConfig) -> None:
        self._path = Path(db_path)
        self._panel = panel
        self._simulator = ExecutionSimulator(execution)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)
        self._check_panel()

    # -- storage -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One snapshot (reads) or one atomic write (``BEGIN IMMEDIATE`` takes the lock first)."""
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            # Reached only without an exception; otherwise closing the connection with the
            # transaction still open rolls it back (SQLite discards uncommitted work on close).
            db.execute("COMMIT")

    def _panel_identity(self) -> str:
        panel = self._panel
        return f"{','.join(panel.symbols)}|{panel.n_bars}|{int(panel.ts[0]) if panel.n_bars else 0}"

    def _check_panel(self) -> None:
        identity = self._panel_identity()
        with self._transaction(write=True) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'panel'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('panel', ?), ('clock', '0')", (identity,))
            elif row[0] != identity:
                raise BrokerError(
                    f"sim broker state {self._path} belongs to another market panel ({row[0][:80]}); "
                    "use the same panel or a new broker.sim_db_path"
                )

    @staticmethod
    def _clock(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()[0])

    # -- clock -------------------------------------------------------------------------

    @property
    def clock(self) -> int:
        """The current bar index: orders submitted now are decided on this bar's close."""
        with self._transaction() as db:
            return self._clock(db)

    def now(self) -> datetime:
        """Market time of the clock bar (UTC)."""
        return self._bar_time(self.clock)

    def advance(self, bars: int = 1) -> int:
        """Move the clock forward (not past the last bar); fills up to the new bar appear."""
        if bars < 0:
            raise BrokerError(f"the sim broker clock only moves forward; got bars={bars}")
        with self._transaction(write=True) as db:
            clock = min(self._clock(db) + bars, self._panel.n_bars - 1)
            db.execute("UPDATE meta SET value = ? WHERE key = 'clock'", (str(clock),))
        return clock

    def _bar_time(self, bar: int) -> datetime:
        seconds, nanos = divmod(int(self._panel.ts[bar]), 1_000_000_000)
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)

    # -- Broker protocol -----------------------------------------------------------------

    def submit(self, request: OrderRequest) -> BrokerOrder:
        if request.symbol not in self._panel.symbols:
            raise OrderRejected(f"sim broker does not trade {request.symbol!r}: it is not in the market panel")
        with self._transaction(write=True) as db:
            clock = self._clock(db)
            duplicate = db.execute(
                "SELECT 1 FROM orders WHERE client_order_id = ?", (request.client_order_id,)
            ).fetchone()
            db.execute(
                "INSERT INTO submissions (client_order_id, accepted) VALUES (?, ?)",
                (request.client_order_id, int(duplicate is None)),
            )
            if duplicate is None:
                order_id = self._book(db, request, clock)
                row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?", (order_id,)).fetchone()
                order = self._order(db, row, clock)
        if duplicate is not None:
            # The refusal is committed to the audit log before it is reported.
            raise DuplicateOrderError(f"sim broker already holds an order with client_order_id {request.client_order_id}")
        logger.info(
            "SIM_BROKER_ORDER_ACCEPTED",
            extra={"client_order_id": request.client_order_id, "broker_order_id": order.broker_order_id, "bar": clock},
        )
        return order

    def _book(self, db: sqlite3.Connection, request: OrderRequest, clock: int) -> int:
        """Simulate the order from the clock bar and store it with its scheduled fills."""
        qty = float(request.qty)
        batch = OrderBatch(
            order_id=[simulator_order_id(request.client_order_id)],
            symbol=[self._panel.symbol_index(request.symbol)],
            bar=[clock],
            side=[BUY if request.side == "buy" else SELL],
            qty=[qty],
            order_type=[LIMIT if request.order_type == "limit" else MARKET],
            limit_price=[float(request.limit_price) if request.limit_price is not None else np.nan],
            tif_bars=[self._simulator.config.tif_bars],
        )
        result = self._simulator.simulate(batch, self._panel)
        status = int(result.status[0])
        cursor = db.execute(
            "INSERT INTO orders (client_order_id, symbol, side, qty, order_type, limit_price, decision_bar, "
            "expire_bar, canceled_bar, rejected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            (
                request.client_order_id,
                request.symbol,
                request.side,
                str(request.qty),
                request.order_type,
                None if request.limit_price is None else str(request.limit_price),
                clock,
                max(int(result.last_bar[0]), clock),
                int(status == S_NO_DECISION_PRICE),
            ),
        )
        order_id = int(cursor.lastrowid or 0)
        cumulative = Decimal(0)
        fills = result.fills
        for k in range(len(fills)):
            is_last = k == len(fills) - 1
            target = request.qty if is_last and status == S_FILLED else min(
                request.qty, _decimal(float(np.sum(fills.qty[: k + 1])), QTY_QUANTUM)
            )
            if target <= cumulative:
                continue
            db.execute(
                "INSERT INTO fills (order_id, bar, qty, price, fee) VALUES (?, ?, ?, ?, ?)",
                (
                    order_id,
                    int(fills.bar[k]),
                    str(target - cumulative),
                    str(_decimal(fills.price[k], PRICE_QUANTUM)),
                    str(_decimal(fills.fee[k], FEE_QUANTUM)),
                ),
            )
            cumulative = target
        return order_id

    def _visible_fills(self, db: sqlite3.Connection, order_row: tuple, clock: int) -> list[tuple]:
        horizon = clock if order_row[9] is None else min(clock, order_row[9])
        return db.execute(
            "SELECT id, bar, qty, price, fee FROM fills WHERE order_id = ? AND bar <= ? ORDER BY id",
            (order_row[0], horizon),
        ).fetchall()

    def _order(self, db: sqlite3.Connection, row: tuple, clock: int) -> BrokerOrder:
        (order_id, cid, symbol, side, qty, order_type, limit_price, decision_bar, expire_bar, canceled_bar, rejected) = row
        fills = self._visible_fills(db, row, clock)
        filled = sum((Decimal(f[2]) for f in fills), Decimal(0))
        notional = sum((Decimal(f[2]) * Decimal(f[3]) for f in fills), Decimal(0))
        if rejected:
            status = BrokerOrderStatus.REJECTED
        elif filled == Decimal(qty):
            status = BrokerOrderStatus.FILLED
        elif canceled_bar is not None or clock >= expire_bar:
            status = BrokerOrderStatus.CANCELED
        else:
            status = BrokerOrderStatus.PARTIALLY_FILLED if filled > 0 else BrokerOrderStatus.NEW
        return BrokerOrder(
            broker_order_id=f"sim-{order_id}",
            client_order_id=cid,
            symbol=symbol,
            side=side,
            qty=Decimal(qty),
            filled_qty=filled,
            filled_avg_price=(notional / filled).quantize(PRICE_QUANTUM) if filled else None,
            status=status,
            order_type=order_type,
            limit_price=None if limit_price is None else Decimal(limit_price),
            submitted_at=self._bar_time(decision_bar),
        )

    def cancel(self, broker_order_id: str) -> None:
        with self._transaction(write=True) as db:
            clock = self._clock(db)
            row = db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?", (self._order_number(broker_order_id),)
            ).fetchone()
            if row is None:
                raise BrokerError(f"sim broker has no order {broker_order_id}")
            order = self._order(db, row, clock)
            if not order.status.is_open:
                raise BrokerError(f"sim broker order {broker_order_id} is {order.status}, not cancelable")
            db.execute("UPDATE orders SET canceled_bar = ? WHERE id = ?", (clock, row[0]))
        logger.info("SIM_BROKER_ORDER_CANCELED", extra={"broker_order_id": broker_order_id, "bar": clock})

    @staticmethod
    def _order_number(broker_order_id: str) -> int:
        prefix, _, number = broker_order_id.partition("-")
        if prefix != "sim" or not number.isdigit():
            raise BrokerError(f"{broker_order_id!r} is not a sim broker order id (sim-<n>)")
        return int(number)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        with self._transaction() as db:
            row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
            return None if row is None else self._order(db, row, self._clock(db))

    def list_open_orders(self) -> list[BrokerOrder]:
        with self._transaction() as db:
            clock = self._clock(db)
            rows = db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE rejected = 0 AND canceled_bar IS NULL AND expire_bar > ? "
                "ORDER BY id",
                (clock,),
            ).fetchall()
            orders = [self._order(db, row, clock) for row in rows]
        return [order for order in orders if order.status.is_open]

    def list_fills(self, since: datetime | None = None) -> list[BrokerFill]:
        with self._transaction() as db:
            clock = self._clock(db)
            rows = db.execute(
                "SELECT f.id, o.id, o.client_order_id, o.symbol, o.side, f.qty, f.price, f.fee, f.bar "
                "FROM fills f JOIN orders o ON o.id = f.order_id "
                "WHERE f.bar <= ? AND (o.canceled_bar IS NULL OR f.bar <= o.canceled_bar) ORDER BY f.bar, f.id",
                (clock,),
            ).fetchall()
        fills = [
            BrokerFill(
                fill_id=f"simfill-{fill_id}",
                broker_order_id=f"sim-{order_id}",
                client_order_id=cid,
                symbol=symbol,
                side=side,
                qty=Decimal(qty),
                price=Decimal(price),
                fee=Decimal(fee),
                ts=self._bar_time(bar),
            )
            for fill_id, order_id, cid, symbol, side, qty, price, fee, bar in rows
        ]
        return [fill for fill in fills if since is None or fill.ts >= since]

    def positions(self) -> list[BrokerPosition]:
        """Net positions from the visible fills, with an average-cost entry price."""
        book: dict[str, tuple[Decimal, Decimal]] = {}
        for fill in self.list_fills():
            held, avg = book.get(fill.symbol, (Decimal(0), Decimal(0)))
            change = fill.signed_qty
            after = held + change
            if held == 0 or (held > 0) == (change > 0):
                avg = (avg * abs(held) + fill.price * abs(change)) / abs(after)
            elif after != 0 and (after > 0) != (held > 0):
                avg = fill.price
            book[fill.symbol] = (after, avg)
        return [
            BrokerPosition(symbol=symbol, qty=qty, avg_entry_price=avg.quantize(PRICE_QUANTUM))
            for symbol, (qty, avg) in sorted(book.items())
            if qty != 0
        ]

    # -- audit -------------------------------------------------------------------------

    def submissions(self) -> list[SubmissionRecord]:
        """Every submit that reached the broker, in arrival order (duplicates included)."""
        with self._transaction() as db:
            rows = db.execute("SELECT client_order_id, accepted FROM submissions ORDER BY id").fetchall()
        return [SubmissionRecord(client_order_id=cid, accepted=bool(accepted)) for cid, accepted in rows]

    def all_orders(self) -> list[BrokerOrder]:
        """Every order the broker holds, open or not, in booking order."""
        with self._transaction() as db:
            clock = self._clock(db)
            rows = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders ORDER BY id").fetchall()
            return [self._order(db, row, clock) for row in rows]
