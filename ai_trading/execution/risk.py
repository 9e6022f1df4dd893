"""Pre-trade risk checks: every order of a rebalance is judged before anything is persisted or sent.

The checks follow what a broker-dealer's market access controls (SEC Rule 15c3-5) and a
trading engine's risk engine look at, in this order, the first failure refusing the order:

1. restricted symbol;                      6. position notional after the order;
2. quantity sanity (finite, > 0, lots);    7. gross exposure of the book after it;
3. trading state (HALTED, REDUCING);       8. net exposure of the book after it;
4. a reference price for the symbol;       9. orders per trailing minute.
5. price collar and order notional;

A refusal is a :class:`RiskDenied` value (not an exception): it is logged, returned and
persisted with the rebalance; the refused order is never persisted as an intent, so it
can never be half-sent. Position and exposure limits refuse only orders that *increase*
what breaks them, so a book that drifted past a limit can always be brought back.
Orders that reduce exposure are judged first: the room they free is available to the rest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ai_trading.config import RiskConfig
from ai_trading.errors import ConfigError, OrderValidationError
from ai_trading.oms.models import ZERO, DenialRecord, OrderType, Side, TradingState, reduces_exposure

logger = logging.getLogger(__name__)

RATE_WINDOW_S = 60.0


class DenialReason(StrEnum):
    """Which check refused an order (stored as the member's value)."""

    RESTRICTED_SYMBOL = "restricted_symbol"
    INVALID_QUANTITY = "invalid_quantity"
    TRADING_HALTED = "trading_halted"
    NOT_REDUCING = "not_reducing"
    NO_PRICE = "no_price"
    PRICE_COLLAR = "price_collar"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    MAX_NET_EXPOSURE = "max_net_exposure"
    RATE_LIMIT = "rate_limit"


@dataclass(frozen=True)
class ProposedOrder:
    """An order the engine wants to place, before risk checks.

    :param decision_price: the close of the decision bar (kept for TCA); market orders are
        checked against the collar at this price, limit orders at their limit
    """

    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    limit_price: Decimal | None
    decision_price: float

    @property
    def signed_qty(self) -> Decimal:
        return self.side.sign * self.qty

    @property
    def reference_price(self) -> float:
        return float(self.limit_price) if self.limit_price is not None else self.decision_price


@dataclass(frozen=True)
class RiskDenied:
    """One refused order: the check, the order, the limit that applied and the value that broke it
    (both 0 for yes/no checks)."""

    reason: DenialReason
    order: ProposedOrder
    limit: float
    value: float

    def record(self) -> DenialRecord:
        """The row persisted with the rebalance."""
        return DenialRecord(
            symbol=self.order.symbol,
            side=self.order.side,
            qty=self.order.qty,
            order_type=self.order.order_type,
            limit_price=self.order.limit_price,
            decision_price=_decimal(self.order.decision_price),
            reason=self.reason.value,
            limit=_decimal(self.limit),
            value=_decimal(self.value),
        )


@dataclass(frozen=True)
class Book:
    """The account before the orders: signed exposure (positions plus open orders) and the
    last close of each symbol, and the equity that exposure limits are multiples of."""

    exposure: Mapping[str, Decimal]
    last_close: Mapping[str, float]
    equity: float


@dataclass(frozen=True)
class RiskResult:
    """The orders that passed, in the order they were judged (and should be sent), and the refusals."""

    accepted: tuple[ProposedOrder, ...]
    denied: tuple[RiskDenied, ...]


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value))) if math.isfinite(value) else ZERO


def restricted_symbols(config: RiskConfig) -> frozenset[str]:
    return frozenset(symbol.strip() for symbol in config.restricted_symbols.split(",") if symbol.strip())


def validate_risk_config(config: RiskConfig) -> None:
    limits = {
        "max_order_notional": config.max_order_notional,
        "max_position_notional": config.max_position_notional,
        "max_gross_exposure": config.max_gross_exposure,
        "max_net_exposure": config.max_net_exposure,
        "max_price_deviation_bps": config.max_price_deviation_bps,
    }
    for name, value in limits.items():
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"risk.{name} must be a finite number >= 0, got {value!r}")
    if config.max_orders_per_minute < 0:
        raise ConfigError(f"risk.max_orders_per_minute must be >= 0, got {config.max_orders_per_minute}")
    if not config.account:
        raise ConfigError("risk.account must name the account (any non-empty name)")


class PreTradeRisk:
    """Judges the orders of one rebalance against :class:`~ai_trading.config.RiskConfig`.

    :param config: the limits
    :param lot_size: every quantity must be a whole number of these
    """

    def __init__(self, config: RiskConfig, lot_size: Decimal) -> None:
        validate_risk_config(config)
        if not (lot_size.is_finite() and lot_size > 0):
            raise ConfigError(f"engine.lot_size must be > 0, got {lot_size}")
        self.config = config
        self.lot_size = lot_size
        self._restricted = restricted_symbols(config)

    def check(self, orders: Sequence[ProposedOrder], book: Book, state: TradingState, recent_orders: int) -> RiskResult:
        """Judge ``orders`` against ``book`` in trading ``state``, ``recent_orders`` having been
        created in the trailing minute already."""
        if not (math.isfinite(book.equity) and book.equity > 0):
            raise OrderValidationError(f"equity must be a finite amount > 0 to judge exposure limits, got {book.equity!r}")
        exposure = dict(book.exposure)
        marks = {s: p for s, p in book.last_close.items() if math.isfinite(p) and p > 0}
        gross = sum(abs(float(q)) * marks.get(s, 0.0) for s, q in exposure.items())
        net = sum(float(q) * marks.get(s, 0.0) for s, q in exposure.items())
        accepted: list[ProposedOrder] = []
        denied: list[RiskDenied] = []

        def reducing_first(order: ProposedOrder) -> tuple[bool, str]:
            sane = order.qty.is_finite() and order.qty > 0
            return (not (sane and reduces_exposure(exposure.get(order.symbol, ZERO), order.signed_qty)), order.symbol)

        for order in sorted(orders, key=reducing_first):
            before = exposure.get(order.symbol, ZERO)
            verdict = self._judge(order, before, marks, gross, net, book.equity, state, recent_orders + len(accepted))
            if verdict is not None:
                denied.append(verdict)
                # INFO, not WARNING: a denial is the check working; every caller reports
                # them (rebalance record, replay summary, `ai-trading risk`), -v shows each.
                logger.info(
                    "RISK_ORDER_DENIED",
                    extra={"symbol": order.symbol, "side": order.side, "qty": str(order.qty), "reason": verdict.reason,
                           "limit": verdict.limit, "value": verdict.value},
                )  # fmt: skip
                continue
            price = marks[order.symbol]
            after = before + order.signed_qty
            gross += (abs(float(after)) - abs(float(before))) * price
            net += float(order.signed_qty) * price
            exposure[order.symbol] = after
            accepted.append(order)
        return RiskResult(tuple(accepted), tuple(denied))

    def _judge(
        self,
        order: ProposedOrder,
        before: Decimal,
        marks: Mapping[str, float],
        gross: float,
        net: float,
        equity: float,
        state: TradingState,
        recent_orders: int,
    ) -> RiskDenied | None:
        config = self.config
        if order.symbol in self._restricted:
            return RiskDenied(DenialReason.RESTRICTED_SYMBOL, order, 0.0, 0.0)
        if not (order.qty.is_finite() and order.qty > 0 and order.qty % self.lot_size == 0):
            value = float(order.qty) if order.qty.is_finite() else math.nan
            return RiskDenied(DenialReason.INVALID_QUANTITY, order, float(self.lot_size), value)
        if state is TradingState.HALTED:
            return RiskDenied(DenialReason.TRADING_HALTED, order, 0.0, 0.0)
        if state is TradingState.REDUCING and not reduces_exposure(before, order.signed_qty):
            return RiskDenied(DenialReason.NOT_REDUCING, order, float(abs(before)), float(abs(before + order.signed_qty)))
        price = marks.get(order.symbol)
        if price is None:
            return RiskDenied(DenialReason.NO_PRICE, order, 0.0, 0.0)
        deviation_bps = abs(order.reference_price / price - 1.0) * 1e4
        if not deviation_bps <= config.max_price_deviation_bps:
            return RiskDenied(DenialReason.PRICE_COLLAR, order, config.max_price_deviation_bps, deviation_bps)
        notional = float(order.qty) * price
        if notional > config.max_order_notional:
            return RiskDenied(DenialReason.MAX_ORDER_NOTIONAL, order, config.max_order_notional, notional)
        after = before + order.signed_qty
        position = abs(float(after)) * price
        if position > config.max_position_notional and abs(after) > abs(before):
            return RiskDenied(DenialReason.MAX_POSITION_NOTIONAL, order, config.max_position_notional, position)
        gross_after = gross + (abs(float(after)) - abs(float(before))) * price
        if gross_after > config.max_gross_exposure * equity and gross_after > gross:
            return RiskDenied(DenialReason.MAX_GROSS_EXPOSURE, order, config.max_gross_exposure, gross_after / equity)
        net_after = net + float(order.signed_qty) * price
        if abs(net_after) > config.max_net_exposure * equity and abs(net_after) > abs(net):
            return RiskDenied(DenialReason.MAX_NET_EXPOSURE, order, config.max_net_exposure, abs(net_after) / equity)
        if recent_orders + 1 > config.max_orders_per_minute:
            return RiskDenied(DenialReason.RATE_LIMIT, order, float(config.max_orders_per_minute), float(recent_orders + 1))
        return None
