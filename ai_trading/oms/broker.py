"""The `Broker` protocol the OMS talks to, and the broker-side records it exchanges.

The OMS never imports a concrete adapter: :class:`~ai_trading.brokers.sim.SimBroker` and
:class:`~ai_trading.brokers.alpaca.AlpacaBroker` both satisfy this protocol. Quantities
and prices are exact :class:`~decimal.Decimal`; timestamps are timezone-aware UTC.

Every adapter keeps the two promises reconciliation relies on: ``submit`` refuses a
``client_order_id`` it has seen before with :class:`~ai_trading.errors.DuplicateOrderError`,
and an outcome it cannot know (the request may have reached the broker) raises
:class:`~ai_trading.errors.UnknownOutcomeError`, to be resolved with ``get_order``.

A broker that can take many orders in one request also implements :class:`BatchBroker`;
:func:`submit_many` sends through it when present and otherwise one ``submit`` per order,
which is what a broker without a batch endpoint (Alpaca) really does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, TypeAlias, runtime_checkable

from ai_trading.errors import BrokerError, DuplicateOrderError, OrderValidationError

SIDES: tuple[str, ...] = ("buy", "sell")
ORDER_TYPES: tuple[str, ...] = ("market", "limit")


class BrokerOrderStatus(StrEnum):
    """A broker's order status, normalised to what the OMS needs to decide."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self in (BrokerOrderStatus.NEW, BrokerOrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True)
class OrderRequest:
    """What the OMS asks a broker to do for one intent.

    :param client_order_id: the intent's deterministic CIDv2 id; the broker refuses a second
        order with the same id
    :param symbol: instrument symbol
    :param side: ``buy`` or ``sell``
    :param qty: shares, > 0
    :param order_type: ``market`` or ``limit``
    :param limit_price: limit price for limit orders, None for market orders
    :param time_in_force: broker time-in-force code (``day``, ``gtc``, ``ioc``, ...)
    """

    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    order_type: str = "market"
    limit_price: Decimal | None = None
    time_in_force: str = "day"

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise OrderValidationError(f"{self.client_order_id}: side must be one of {SIDES}, got {self.side!r}")
        if self.order_type not in ORDER_TYPES:
            raise OrderValidationError(
                f"{self.client_order_id}: order_type must be one of {ORDER_TYPES}, got {self.order_type!r}"
            )
        if not self.qty.is_finite() or self.qty <= 0:
            raise OrderValidationError(f"{self.client_order_id}: qty must be > 0, got {self.qty}")
        if (self.order_type == "limit") != (self.limit_price is not None):
            raise OrderValidationError(f"{self.client_order_id}: limit orders (and only they) need a limit_price")
        if self.limit_price is not None and self.limit_price <= 0:
            raise OrderValidationError(f"{self.client_order_id}: limit_price must be > 0, got {self.limit_price}")


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it.

    :param broker_order_id: the broker's own id
    :param client_order_id: the id the client sent (or the broker generated for foreign orders)
    :param filled_avg_price: average fill price, None until something fills
    :param submitted_at: when the broker accepted the order
    """

    broker_order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    status: BrokerOrderStatus
    order_type: str
    limit_price: Decimal | None
    submitted_at: datetime

    @property
    def signed_filled_qty(self) -> Decimal:
        return self.filled_qty if self.side == "buy" else -self.filled_qty


@dataclass(frozen=True)
class BrokerFill:
    """One execution reported by the broker; ``fill_id`` is unique per broker.

    :param client_order_id: the order's client id when the broker reports it with the fill
        (Alpaca's activity feed does not; the OMS then maps ``broker_order_id``)
    :param fee: fees charged for this execution, in currency
    """

    fill_id: str
    broker_order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    ts: datetime

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side == "buy" else -self.qty


@dataclass(frozen=True)
class BrokerPosition:
    """A net position at the broker: ``qty`` > 0 long, < 0 short."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal | None


@runtime_checkable
class Broker(Protocol):
    """What the OMS needs from a broker; every adapter implements exactly this."""

    def submit(self, request: OrderRequest) -> BrokerOrder:
        """Place an order; raises DuplicateOrderError if the client id exists, UnknownOutcomeError
        if the request may have reached the broker without an answer."""
        ...

    def cancel(self, broker_order_id: str) -> None:
        """Ask the broker to cancel an open order."""
        ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client id, or None if the broker never received it."""
        ...

    def list_open_orders(self) -> list[BrokerOrder]:
        """All orders still working at the broker, the OMS's and foreign ones."""
        ...

    def list_fills(self, since: datetime | None = None) -> list[BrokerFill]:
        """Executions at or after ``since`` (all when None), oldest first."""
        ...

    def positions(self) -> list[BrokerPosition]:
        """Net positions held at the broker (non-zero only)."""
        ...


SubmitOutcome: TypeAlias = BrokerOrder | DuplicateOrderError | BrokerError
"""One order's answer to a submission: the accepted order, or the error ``submit`` would
have raised for it (duplicate id, :class:`~ai_trading.errors.OrderRejected`,
:class:`~ai_trading.errors.UnknownOutcomeError`, ...)."""


@runtime_checkable
class BatchBroker(Protocol):
    """A broker that takes many orders in one request (optional, beside :class:`Broker`)."""

    def submit_batch(self, requests: Sequence[OrderRequest]) -> list[SubmitOutcome]:
        """Place every order of ``requests``; one outcome per request, in order, each the
        same as that request's single ``submit`` would give (a duplicate id refused per
        order). Raises only when the request as a whole failed (every outcome unknown)."""
        ...


def submit_many(broker: Broker, requests: Sequence[OrderRequest]) -> list[SubmitOutcome]:
    """Submit ``requests`` through ``broker``'s batch capability when it has one, else one
    ``submit`` after another, each outcome caught per order; outcomes in request order."""
    if isinstance(broker, BatchBroker):
        return broker.submit_batch(requests)
    outcomes: list[SubmitOutcome] = []
    for request in requests:
        try:
            outcomes.append(broker.submit(request))
        except (DuplicateOrderError, BrokerError) as exc:
            outcomes.append(exc)
    return outcomes
