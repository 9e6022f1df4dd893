"""SimBroker: a paper broker that fills orders through the execution simulator.

It behaves like a real broker towards the OMS: it keeps its own durable state (orders,
fills, an audit log of every submission and its market clock) in its own SQLite file, so
it survives the OMS process being killed; it refuses a second order with a
``client_order_id`` it already holds; and its fills appear over time.

It is bound to a market (:mod:`ai_trading.brokers.sim_market`): fixed symbols at one
frequency from a first bar on, read from a panel or from the market-data store, where
later bars may be appended while it runs. Its clock is a bar time: an order submitted
at the clock is decided on that bar's close and simulated with the seeded
:class:`~ai_trading.execution.simulator.ExecutionSimulator` (the random draws are keyed by
a hash of the client order id and the bar's position from the first bar, so the same
order fills the same way in any process); its fill events become visible as the clock
moves past their bars. An order whose time in force reaches beyond the bars known so far
is simulated again when later bars exist: the simulator is causal, so the fills already
recorded stay what they were and only later ones are added. Simulated float quantities
are turned into exact decimals by rounding the cumulative filled quantity to
:data:`~ai_trading.brokers.sim_schedule.QTY_QUANTUM`, so the fills of a filled order sum to its quantity.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np

from ai_trading.brokers.sim_market import PanelMarket, SimMarket, utc_datetime, utc_ns
from ai_trading.brokers.sim_schedule import PRICE_QUANTUM, schedule_orders
from ai_trading.config import ExecutionConfig
from ai_trading.errors import BrokerError, DuplicateOrderError, OrderRejected
from ai_trading.execution.simulator import ExecutionSimulator
from ai_trading.oms.broker import (
    BrokerFill,
    BrokerOrder,
    BrokerOrderStatus,
    BrokerPosition,
    OrderRequest,
    SubmitOutcome,
)
from ai_trading.types import MarketPanel

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
SQL_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit
LAYOUT = "2"  # bar times instead of indices of one frozen panel

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
    decision_ts INTEGER NOT NULL,
    expire_ts INTEGER,
    canceled_ts INTEGER,
    rejected INTEGER NOT NULL,
    simulated_through INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_orders_pending ON orders (expire_ts);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    ts INTEGER NOT NULL,
    qty TEXT NOT NULL,
    price TEXT NOT NULL,
    fee TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_fills_ts ON fills (ts);
CREATE INDEX IF NOT EXISTS ix_fills_order ON fills (order_id);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    accepted INTEGER NOT NULL
);
"""
_ORDER_COLUMNS = (
    "id, client_order_id, symbol, side, qty, order_type, limit_price, decision_ts, expire_ts, canceled_ts, rejected, simulated_through"
)


def _broker_order(row: tuple, fills: Sequence[tuple[int, str, str]], clock: int) -> BrokerOrder:
    """An order row as the broker reports it at ``clock``, from its fills ``(ts, qty, price)``
    (those after the clock are not visible yet, those after a cancel never)."""
    (order_id, cid, symbol, side, qty, order_type, limit_price, decision_ts, expire_ts, canceled_ts, rejected, _) = row
    horizon = clock if canceled_ts is None else min(clock, canceled_ts)
    visible = [(Decimal(fill_qty), Decimal(price)) for ts, fill_qty, price in fills if ts <= horizon]
    filled = sum((fill_qty for fill_qty, _ in visible), Decimal(0))
    notional = sum((fill_qty * price for fill_qty, price in visible), Decimal(0))
    if rejected:
        status = BrokerOrderStatus.REJECTED
    elif filled == Decimal(qty):
        status = BrokerOrderStatus.FILLED
    elif canceled_ts is not None or (expire_ts is not None and clock >= expire_ts):
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
        submitted_at=utc_datetime(decision_ts),
    )


@dataclass(frozen=True)
class SubmissionRecord:
    """One submit request as it reached the broker (accepted or refused as a duplicate)."""

    client_order_id: str
    accepted: bool


class SimBroker:
    """Paper :class:`~ai_trading.oms.broker.Broker` on the execution simulator.

    :param db_path: SQLite file of the broker's state (created on first use); reopening it
        bound to another market (other symbols, frequency or first bar) raises
        :class:`BrokerError`; a market with more bars than before is the same market
    :param market: the bars it trades: a :class:`MarketPanel`, or a
        :class:`~ai_trading.brokers.sim_market.StoreMarket` whose store may grow
    :param execution: simulator parameters (seeded: the same orders fill identically)
    """

    def __init__(self, db_path: Path, market: MarketPanel | SimMarket, execution: ExecutionConfig) -> None:
        self._path = Path(db_path)
        self._market: SimMarket = PanelMarket(market) if isinstance(market, MarketPanel) else market
        self._simulator = ExecutionSimulator(execution)
        self._local = threading.local()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)
        self._check_binding()

    # -- storage -----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (one per thread and process: SQLite connections are not
        shared across threads, and a forked child must not reuse its parent's)."""
        owner = (os.getpid(), threading.get_ident())
        local = self._local
        if getattr(local, "owner", None) != owner:
            local.db, local.owner = self._connect(), owner
        return local.db  # type: ignore[no-any-return]

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One snapshot (reads) or one atomic write (``BEGIN IMMEDIATE`` takes the lock first)."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _check_binding(self) -> None:
        binding = self._market.binding()
        first = int(self._market.panel_through(0).ts[0])
        with self._transaction(write=True) as db:
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not rows:
                db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("layout", LAYOUT), ("binding", binding), ("clock", str(first))],
                )
            elif rows.get("layout") != LAYOUT:
                raise BrokerError(
                    f"sim broker state {self._path} was written by an older version (bar indices of one panel): "
                    "move it aside or set a new broker.sim_db_path"
                )
            elif rows["binding"] != binding:
                raise BrokerError(
                    f"sim broker state {self._path} is bound to the market {rows['binding'][:120]}, not {binding[:120]} "
                    "(symbols|frequency|first bar ns): use the same symbols, frequency and start, or a new broker.sim_db_path"
                )

    @staticmethod
    def _clock(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()[0])

    @staticmethod
    def stored_binding(db_path: Path) -> str | None:
        """The market a state file is bound to (:func:`~ai_trading.brokers.sim_market.binding_text`),
        or None when there is no state yet."""
        if not Path(db_path).exists():
            return None
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)) as db:
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'binding'").fetchone()
            except sqlite3.OperationalError:
                return None
        return None if row is None else str(row[0])

    # -- clock -------------------------------------------------------------------------

    @property
    def clock(self) -> datetime:
        """The current bar time (UTC): orders submitted now are decided on this bar's close."""
        with self._transaction() as db:
            return utc_datetime(self._clock(db))

    @property
    def panel(self) -> MarketPanel:
        """The bars the broker trades, at least up to its clock."""
        with self._transaction() as db:
            return self._market.panel_through(self._clock(db))

    def advance(self, bars: int = 1) -> datetime:
        """Move the clock ``bars`` bars forward (not past the last known bar); fills up to
        the new bar appear."""
        if bars < 0:
            raise BrokerError(f"the sim broker clock only moves forward; got bars={bars}")
        with self._transaction() as db:
            clock = self._clock(db)
        ts = self._market.panel_through(clock + 1).ts
        position = int(np.searchsorted(ts, clock, side="right")) - 1
        return self.advance_to(utc_datetime(int(ts[min(max(position, 0) + bars, ts.size - 1)])))

    def advance_to(self, when: datetime) -> datetime:
        """Move the clock to the bar time ``when`` (never back); orders whose time in force
        reached beyond the bars known at their submission are simulated on the newer bars."""
        target = utc_ns(when)
        panel = self._market.panel_through(target)
        with self._transaction(write=True) as db:
            clock = self._clock(db)
            if target < clock:
                raise BrokerError(f"the sim broker clock only moves forward: it is at {utc_datetime(clock)}, asked {when}")
            db.execute("UPDATE meta SET value = ? WHERE key = 'clock'", (str(target),))
            pending = db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE expire_ts IS NULL AND rejected = 0 AND simulated_through < ?",
                (int(panel.ts[-1]),),
            ).fetchall()
            if pending:
                self._resimulate(db, pending, panel)
        return utc_datetime(target)

    def _resimulate(self, db: sqlite3.Connection, rows: Sequence[tuple], panel: MarketPanel) -> None:
        requests = [
            OrderRequest(
                client_order_id=row[1], symbol=row[2], side=row[3], qty=Decimal(row[4]), order_type=row[5],
                limit_price=None if row[6] is None else Decimal(row[6]),
            )
            for row in rows
        ]  # fmt: skip
        for row, request, scheduled in zip(rows, requests, schedule_orders(self._simulator, requests, [row[7] for row in rows], panel), strict=True):
            new = [fill for fill in scheduled.fills if fill[0] > row[11]]
            self._store_fills(db, row[0], new)
            db.execute(
                "UPDATE orders SET expire_ts = ?, simulated_through = ? WHERE id = ?",
                (scheduled.expire_ts, scheduled.simulated_through, row[0]),
            )
            logger.debug("SIM_BROKER_ORDER_RESIMULATED", extra={"client_order_id": request.client_order_id, "new_fills": len(new)})

    # -- Broker protocol -----------------------------------------------------------------

    def submit(self, request: OrderRequest) -> BrokerOrder:
        outcome = self.submit_batch([request])[0]
        if isinstance(outcome, BrokerOrder):
            return outcome
        raise outcome

    def submit_batch(self, requests: Sequence[OrderRequest]) -> list[SubmitOutcome]:
        """Book ``requests`` in one SQLite transaction (one fsync) with one simulation call.

        Each outcome is what one ``submit`` per request, in order, would give: the same
        order ids, fills and audit rows (the simulator's draws are keyed per order, never
        per batch), a duplicate id (stored before, or earlier in the batch) refused and
        audited, an unknown symbol rejected unaudited. A crash leaves the whole batch
        recorded or none of it.
        """
        outcomes: dict[int, SubmitOutcome] = {}
        symbols = set(self._market.symbols)
        for k, request in enumerate(requests):
            if request.symbol not in symbols:
                outcomes[k] = OrderRejected(f"sim broker does not trade {request.symbol!r}: it is not among the symbols it is bound to")
        candidates = [k for k in range(len(requests)) if k not in outcomes]
        booked: list[BrokerOrder] = []
        if candidates:
            with self._transaction() as db:
                clock = self._clock(db)
            panel = self._market.panel_through(clock)
            with self._transaction(write=True) as db:
                if self._clock(db) != clock:  # another process moved the clock meanwhile
                    clock = self._clock(db)
                    panel = self._market.panel_through(clock)
                held = self._held(db, [requests[k].client_order_id for k in candidates])
                accepted: list[int] = []
                for k in candidates:
                    cid = requests[k].client_order_id
                    if cid in held:
                        outcomes[k] = DuplicateOrderError(f"sim broker already holds an order with client_order_id {cid}")
                    else:
                        held.add(cid)
                        accepted.append(k)
                # Refusals are committed to the audit log before they are reported.
                db.executemany(
                    "INSERT INTO submissions (client_order_id, accepted) VALUES (?, ?)",
                    [(requests[k].client_order_id, int(k not in outcomes)) for k in candidates],
                )
                order_ids = self._book(db, [requests[k] for k in accepted], clock, panel)
                booked = self._orders(db, self._rows_by_id(db, order_ids), clock)
            outcomes.update(zip(accepted, booked, strict=True))
            bar = utc_datetime(clock).isoformat()
            for order in booked:
                logger.info(
                    "SIM_BROKER_ORDER_ACCEPTED",
                    extra={"client_order_id": order.client_order_id, "broker_order_id": order.broker_order_id, "bar": bar},
                )
        return [outcomes[k] for k in range(len(requests))]

    @staticmethod
    def _held(db: sqlite3.Connection, client_order_ids: Sequence[str]) -> set[str]:
        """Which of these client ids the broker already holds orders for."""
        held: set[str] = set()
        for start in range(0, len(client_order_ids), SQL_CHUNK):
            chunk = client_order_ids[start : start + SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            held.update(row[0] for row in db.execute(f"SELECT client_order_id FROM orders WHERE client_order_id IN ({marks})", chunk))
        return held

    @staticmethod
    def _rows_by_id(db: sqlite3.Connection, order_ids: Sequence[int]) -> list[tuple]:
        """The order rows of ``order_ids``, in that order."""
        rows: dict[int, tuple] = {}
        for start in range(0, len(order_ids), SQL_CHUNK):
            chunk = order_ids[start : start + SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows.update((row[0], row) for row in db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id IN ({marks})", chunk))
        return [rows[order_id] for order_id in order_ids]

    def _book(self, db: sqlite3.Connection, requests: Sequence[OrderRequest], clock: int, panel: MarketPanel) -> list[int]:
        """Simulate the orders from the clock bar (one simulator call) and store them with
        their scheduled fills; returns their order ids, in order."""
        if not requests:
            return []
        order_ids: list[int] = []
        for request, scheduled in zip(requests, schedule_orders(self._simulator, requests, [clock] * len(requests), panel), strict=True):
            cursor = db.execute(
                "INSERT INTO orders (client_order_id, symbol, side, qty, order_type, limit_price, decision_ts, "
                "expire_ts, canceled_ts, rejected, simulated_through) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (
                    request.client_order_id,
                    request.symbol,
                    request.side,
                    str(request.qty),
                    request.order_type,
                    None if request.limit_price is None else str(request.limit_price),
                    clock,
                    scheduled.expire_ts,
                    int(scheduled.rejected),
                    scheduled.simulated_through,
                ),
            )
            order_ids.append(int(cursor.lastrowid or 0))
            self._store_fills(db, order_ids[-1], scheduled.fills)
        return order_ids

    @staticmethod
    def _store_fills(db: sqlite3.Connection, order_id: int, fills: Sequence[tuple[int, Decimal, Decimal, Decimal]]) -> None:
        db.executemany(
            "INSERT INTO fills (order_id, ts, qty, price, fee) VALUES (?, ?, ?, ?, ?)",
            [(order_id, ts, str(qty), str(price), str(fee)) for ts, qty, price, fee in fills],
        )

    @staticmethod
    def _orders(db: sqlite3.Connection, rows: Sequence[tuple], clock: int) -> list[BrokerOrder]:
        """``rows`` as the broker reports them at ``clock`` (their fills read in one query)."""
        fills: dict[int, list[tuple[int, str, str]]] = {}
        order_ids = [row[0] for row in rows]
        for start in range(0, len(order_ids), SQL_CHUNK):
            chunk = order_ids[start : start + SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT order_id, ts, qty, price FROM fills WHERE order_id IN ({marks}) ORDER BY id"
            for order_id, ts, qty, price in db.execute(query, chunk):
                fills.setdefault(order_id, []).append((ts, qty, price))
        return [_broker_order(row, fills.get(row[0], []), clock) for row in rows]

    def cancel(self, broker_order_id: str) -> None:
        with self._transaction(write=True) as db:
            clock = self._clock(db)
            row = db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?", (self._order_number(broker_order_id),)
            ).fetchone()
            if row is None:
                raise BrokerError(f"sim broker has no order {broker_order_id}")
            order = self._orders(db, [row], clock)[0]
            if not order.status.is_open:
                raise BrokerError(f"sim broker order {broker_order_id} is {order.status}, not cancelable")
            db.execute("UPDATE orders SET canceled_ts = ? WHERE id = ?", (clock, row[0]))
        logger.info("SIM_BROKER_ORDER_CANCELED", extra={"broker_order_id": broker_order_id, "bar": utc_datetime(clock).isoformat()})

    @staticmethod
    def _order_number(broker_order_id: str) -> int:
        prefix, _, number = broker_order_id.partition("-")
        if prefix != "sim" or not number.isdigit():
            raise BrokerError(f"{broker_order_id!r} is not a sim broker order id (sim-<n>)")
        return int(number)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        with self._transaction() as db:
            row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
            return None if row is None else self._orders(db, [row], self._clock(db))[0]

    def list_open_orders(self) -> list[BrokerOrder]:
        with self._transaction() as db:
            clock = self._clock(db)
            # Through the expire_ts index: the planner would scan every order for ORDER BY id.
            rows = db.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders INDEXED BY ix_orders_pending WHERE rejected = 0 AND canceled_ts IS NULL "
                "AND (expire_ts IS NULL OR expire_ts > ?) ORDER BY id",
                (clock,),
            ).fetchall()
            orders = self._orders(db, rows, clock)
        return [order for order in orders if order.status.is_open]

    def list_fills(self, since: datetime | None = None) -> list[BrokerFill]:
        with self._transaction() as db:
            clock = self._clock(db)
            rows = db.execute(
                "SELECT f.id, o.id, o.client_order_id, o.symbol, o.side, f.qty, f.price, f.fee, f.ts "
                "FROM fills f JOIN orders o ON o.id = f.order_id "
                "WHERE f.ts <= ? AND f.ts >= ? AND (o.canceled_ts IS NULL OR f.ts <= o.canceled_ts) ORDER BY f.ts, f.id",
                (clock, -(2**63) if since is None else utc_ns(since)),
            ).fetchall()
        return [
            BrokerFill(
                fill_id=f"simfill-{fill_id}",
                broker_order_id=f"sim-{order_id}",
                client_order_id=cid,
                symbol=symbol,
                side=side,
                qty=Decimal(qty),
                price=Decimal(price),
                fee=Decimal(fee),
                ts=utc_datetime(ts),
            )
            for fill_id, order_id, cid, symbol, side, qty, price, fee, ts in rows
        ]

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
            return self._orders(db, rows, clock)
