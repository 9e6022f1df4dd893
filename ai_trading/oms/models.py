"""OMS records: the intent life cycle as an explicit transition table, intents and fills.

An intent moves ``CREATED -> SUBMITTED -> ACKED -> PARTIAL_FILLED* -> FILLED | CANCELED |
REJECTED``. The table :data:`TRANSITIONS` is the single source of truth; the rules it
encodes beyond the happy path, and why:

- ``CREATED -> CANCELED | REJECTED``: an intent may be abandoned (canceled) or refused by
  a pre-trade check (rejected) before anything was sent.
- ``SUBMITTED -> PARTIAL_FILLED | FILLED | CANCELED``: the acknowledgement can be lost (a
  crash after send, before the ACK was persisted) and reconciliation then adopts the
  broker's later state directly.
- ``PARTIAL_FILLED -> PARTIAL_FILLED``: every further fill that leaves quantity open.
- Late fills after a cancel are real (the cancel raced an execution): ``CANCELED ->
  CANCELED`` when the fill leaves quantity open, ``CANCELED -> FILLED`` when it completes
  the order. These are the only ways out of a final state, and only fills take them.
- ``FILLED`` and ``REJECTED`` are terminal.

Quantities, prices and fees are :class:`~decimal.Decimal`; timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Self, TypeVar

from ai_trading.errors import IllegalTransition, OrderValidationError, OverfillError

ZERO = Decimal(0)
E = TypeVar("E", bound=StrEnum)


class IntentState(StrEnum):
    """Where an intent is in its life cycle (stored as the member's value)."""

    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    ACKED = "ACKED"
    PARTIAL_FILLED = "PARTIAL_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"

    @property
    def is_final(self) -> bool:
        """The broker works the order no more (late fills may still arrive after CANCELED)."""
        return self in FINAL_STATES


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells: the sign of the position change."""
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    """Broker time-in-force codes (Alpaca's spelling)."""

    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"


S = IntentState
FINAL_STATES: frozenset[IntentState] = frozenset({S.FILLED, S.CANCELED, S.REJECTED})
TRANSITIONS: Mapping[IntentState, frozenset[IntentState]] = {
    S.CREATED: frozenset({S.SUBMITTED, S.CANCELED, S.REJECTED}),
    S.SUBMITTED: frozenset({S.ACKED, S.PARTIAL_FILLED, S.FILLED, S.CANCELED, S.REJECTED}),
    S.ACKED: frozenset({S.PARTIAL_FILLED, S.FILLED, S.CANCELED, S.REJECTED}),
    S.PARTIAL_FILLED: frozenset({S.PARTIAL_FILLED, S.FILLED, S.CANCELED}),
    S.CANCELED: frozenset({S.CANCELED, S.FILLED}),
    S.FILLED: frozenset(),
    S.REJECTED: frozenset(),
}
# Targets reached only by recording a fill; every other target is an explicit state change.
FILL_DRIVEN: frozenset[tuple[IntentState, IntentState]] = frozenset(
    {(src, dst) for src, targets in TRANSITIONS.items() for dst in targets if dst in (S.PARTIAL_FILLED, S.FILLED)}
    | {(S.CANCELED, S.CANCELED)}
)
del S


def check_transition(src: IntentState, dst: IntentState) -> None:
    """Raise :class:`IllegalTransition` unless the table allows ``src -> dst``."""
    if dst not in TRANSITIONS[src]:
        allowed = ", ".join(sorted(TRANSITIONS[src])) or "nothing (terminal)"
        raise IllegalTransition(f"{src} -> {dst} is not allowed; from {src} an intent may go to {allowed}")


def state_after_fill(state: IntentState, filled_qty: Decimal, qty: Decimal) -> IntentState:
    """The state an intent in ``state`` reaches once its cumulative fills are ``filled_qty``.

    Raises :class:`IllegalTransition` when the state takes no fills and
    :class:`OverfillError` when ``filled_qty`` exceeds ``qty``.
    """
    if state is IntentState.CANCELED:
        dst = IntentState.FILLED if filled_qty == qty else IntentState.CANCELED
    else:
        dst = IntentState.FILLED if filled_qty == qty else IntentState.PARTIAL_FILLED
    check_transition(state, dst)
    if filled_qty > qty:
        raise OverfillError(f"fills would total {filled_qty}, above the order quantity {qty}")
    return dst


def utc_now() -> datetime:
    return datetime.now(UTC)


def _member(kind: type[E], value: object, name: str) -> E:
    try:
        return kind(value)
    except ValueError as exc:
        choices = ", ".join(member.value for member in kind)
        raise OrderValidationError(f"{name} must be one of {choices}, got {value!r}") from exc


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise OrderValidationError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _require_decimal(name: str, value: object, *, positive: bool) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise OrderValidationError(f"{name} must be a finite Decimal, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise OrderValidationError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")


@dataclass(frozen=True, kw_only=True)
class OrderIntent:
    """One order the OMS means to have at the broker, as persisted in the intent store.

    Build new ones with :meth:`new`; the store returns updated copies after each change.

    :param client_order_id: deterministic CIDv2 id (see :mod:`ai_trading.oms.idempotency`)
    :param strategy: name of the strategy that decided the order
    :param symbol: instrument symbol
    :param side: buy or sell
    :param qty: order quantity in shares, > 0
    :param order_type: market or limit
    :param limit_price: limit price (limit orders only)
    :param time_in_force: broker time-in-force code
    :param state: life-cycle state
    :param filled_qty: cumulative filled quantity, 0..qty
    :param filled_notional: cumulative sum of fill qty * price (exact; gives the average price)
    :param fees: cumulative fees of the fills
    :param broker_order_id: the broker's id once acknowledged
    :param version: optimistic-concurrency version, +1 on every change
    :param attempts: how many times the order was sent
    :param last_error: the last send/broker error, if any
    :param created_at: when the intent was first persisted (UTC)
    :param updated_at: when it last changed (UTC)
    """

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    created_at: datetime
    updated_at: datetime
    limit_price: Decimal | None = None
    state: IntentState = IntentState.CREATED
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    fees: Decimal = ZERO
    broker_order_id: str | None = None
    version: int = 1
    attempts: int = 0
    last_error: str | None = None

    def __post_init__(self) -> None:
        where = f"intent {self.client_order_id!r}"
        for name, kind in (("side", Side), ("order_type", OrderType), ("time_in_force", TimeInForce), ("state", IntentState)):
            object.__setattr__(self, name, _member(kind, getattr(self, name), f"{where}: {name}"))
        for name in ("client_order_id", "strategy", "symbol"):
            if not getattr(self, name):
                raise OrderValidationError(f"{where}: {name} must not be empty")
        _require_decimal(f"{where}: qty", self.qty, positive=True)
        _require_decimal(f"{where}: filled_qty", self.filled_qty, positive=False)
        _require_decimal(f"{where}: filled_notional", self.filled_notional, positive=False)
        _require_decimal(f"{where}: fees", self.fees, positive=False)
        if self.filled_qty > self.qty:
            raise OrderValidationError(f"{where}: filled_qty {self.filled_qty} exceeds qty {self.qty}")
        if (self.order_type is OrderType.LIMIT) != (self.limit_price is not None):
            raise OrderValidationError(f"{where}: limit orders (and only they) need a limit_price")
        if self.limit_price is not None:
            _require_decimal(f"{where}: limit_price", self.limit_price, positive=True)
        if self.version < 1 or self.attempts < 0:
            raise OrderValidationError(f"{where}: version must be >= 1 and attempts >= 0")
        _require_aware(f"{where}: created_at", self.created_at)
        _require_aware(f"{where}: updated_at", self.updated_at)

    @classmethod
    def new(
        cls,
        *,
        client_order_id: str,
        strategy: str,
        symbol: str,
        side: Side | str,
        qty: Decimal,
        order_type: OrderType | str = OrderType.MARKET,
        limit_price: Decimal | None = None,
        time_in_force: TimeInForce | str = TimeInForce.DAY,
        now: datetime | None = None,
    ) -> Self:
        """A fresh CREATED intent (version 1, nothing sent, nothing filled)."""
        stamp = utc_now() if now is None else now
        return cls(
            client_order_id=client_order_id,
            strategy=strategy,
            symbol=symbol,
            side=_member(Side, side, "side"),
            qty=qty,
            order_type=_member(OrderType, order_type, "order_type"),
            limit_price=limit_price,
            time_in_force=_member(TimeInForce, time_in_force, "time_in_force"),
            created_at=stamp,
            updated_at=stamp,
        )

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Quantity-weighted average fill price, None before the first fill."""
        return self.filled_notional / self.filled_qty if self.filled_qty else None

    def same_order(self, other: OrderIntent) -> bool:
        """True when both describe the same order (ignoring life-cycle fields)."""
        return all(getattr(self, name) == getattr(other, name) for name in ORDER_FIELDS)


ORDER_FIELDS: tuple[str, ...] = (
    "client_order_id",
    "strategy",
    "symbol",
    "side",
    "qty",
    "order_type",
    "limit_price",
    "time_in_force",
)


@dataclass(frozen=True, kw_only=True)
class Fill:
    """One execution reported by the broker.

    :param broker_fill_id: the broker's unique id of this execution; recording it twice is a no-op
    :param client_order_id: the intent it belongs to
    :param qty: filled quantity, > 0
    :param price: execution price, > 0
    :param fee: fee charged for this execution, >= 0
    :param ts: execution time, timezone-aware
    """

    broker_fill_id: str
    client_order_id: str
    qty: Decimal
    price: Decimal
    ts: datetime
    fee: Decimal = ZERO

    def __post_init__(self) -> None:
        where = f"fill {self.broker_fill_id!r} of {self.client_order_id!r}"
        if not self.broker_fill_id or not self.client_order_id:
            raise OrderValidationError(f"{where}: broker_fill_id and client_order_id must not be empty")
        _require_decimal(f"{where}: qty", self.qty, positive=True)
        _require_decimal(f"{where}: price", self.price, positive=True)
        _require_decimal(f"{where}: fee", self.fee, positive=False)
        _require_aware(f"{where}: ts", self.ts)


@dataclass(frozen=True, kw_only=True)
class IntentEvent:
    """One entry of an intent's append-only history.

    :param client_order_id: the intent
    :param event: what happened: ``CREATED``, ``TRANSITION``, ``FILL`` or ``ATTEMPT``
    :param from_state: state before (None for ``CREATED``)
    :param to_state: state after
    :param version: the intent's version after the change
    :param detail: event data (broker ids, fill quantities as strings, errors)
    :param ts: when it was recorded (UTC)
    """

    client_order_id: str
    event: str
    from_state: IntentState | None
    to_state: IntentState
    version: int
    detail: Mapping[str, str] | None
    ts: datetime


@dataclass(frozen=True, kw_only=True)
class ForeignOrder:
    """A broker order the OMS did not create; recorded by reconciliation, never touched.

    :param broker_order_id: the broker's id
    :param client_order_id: its client order id, if the broker reports one
    :param cid_shaped: True when that id is a well-formed CIDv2 id we do not know
        (another instance of this system, or an intent lost in a way that must be looked at)
    :param symbol: instrument symbol
    :param side: buy or sell
    :param qty: order quantity
    :param filled_qty: quantity filled so far
    :param status: the broker's status, as reported
    :param first_seen_at: first reconciliation that saw it (UTC)
    :param last_seen_at: latest reconciliation that saw it (UTC)
    """

    broker_order_id: str
    client_order_id: str | None
    cid_shaped: bool
    symbol: str
    side: Side
    qty: Decimal
    filled_qty: Decimal
    status: str
    first_seen_at: datetime
    last_seen_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", _member(Side, self.side, f"foreign order {self.broker_order_id}: side"))


class TradingState(StrEnum):
    """What an account may do: the kill switch sets it, the engine and the manager obey it.

    ``ACTIVE`` trades normally; ``REDUCING`` accepts only orders that bring a position
    closer to flat (never through it); ``HALTED`` accepts no new order. Cancels always pass.
    """

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


def reduces_exposure(before: Decimal, change: Decimal) -> bool:
    """True when a signed ``change`` moves the signed position ``before`` towards zero
    without crossing it (the one test of what ``REDUCING`` lets through)."""
    after = before + change
    return before != 0 and change != 0 and (after == 0 or (after > 0) == (before > 0)) and abs(after) < abs(before)


@dataclass(frozen=True, kw_only=True)
class TradingStateRecord:
    """An account's trading state as stored (``version`` 0: never set, so ACTIVE).

    :param account: the account the state belongs to
    :param state: the trading state
    :param reason: why it was set (free text, required)
    :param changed_by: who set it (an operator, ``alert:<rule>``, ...)
    :param changed_at: when (UTC); None when never set
    :param version: +1 on every change
    """

    account: str
    state: TradingState
    reason: str
    changed_by: str
    changed_at: datetime | None
    version: int


@dataclass(frozen=True, kw_only=True)
class DenialRecord:
    """One order refused by a pre-trade risk check, as persisted with its rebalance.

    :param reason: the check that refused it (e.g. ``max_order_notional``)
    :param limit: the limit that applied, as a decimal (0 for yes/no checks)
    :param value: the value that broke it, as a decimal (0 for yes/no checks)
    """

    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    limit_price: Decimal | None
    decision_price: Decimal
    reason: str
    limit: Decimal
    value: Decimal


@dataclass(frozen=True, kw_only=True)
class RebalanceRecord:
    """One rebalance decision: what was decided, how many orders passed, what was refused.

    Keyed by (account, strategy, session, horizon, signal_hash): recomputing the same
    decision after a crash finds the first record instead of writing a second one.

    :param strategy: the model name (the CIDv2 strategy field)
    :param model_version: the model version (the CIDv2 version field)
    :param trading_state: the account's state the checks saw
    :param equity: the equity the weights were sized with
    """

    account: str
    strategy: str
    model_version: str
    session: date
    horizon: str
    signal_hash: str
    decided_at: datetime
    trading_state: TradingState
    equity: Decimal
    n_orders: int
    n_denied: int
    denials: tuple[DenialRecord, ...] = ()
