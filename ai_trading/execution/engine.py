"""The execution engine: target weights at a bar's close -> the orders of one rebalance.

Per symbol of the policy, the target position ``weight * equity / close`` is netted
against what the account already has coming (positions from fills plus the remaining
quantity of open intents) and rounded to whole lots; trades below the minimum notional,
or whose expected cost from the EWMA cost model exceeds the configured share of their
notional (the no-trade band), are skipped; the rest become market or marketable-limit
orders, judged by :class:`~ai_trading.execution.risk.PreTradeRisk`, and the passing ones
get their CIDv2 ids and are written ahead in one transaction, with the rebalance record
and its denials, then sent (:meth:`~ai_trading.oms.manager.OrderManager.submit_batch`).

**Same ids after a crash.** A rebalance is a pure function of the decision (model,
version, session, horizon, the weights and prices, hashed into the CIDv2 signal hash),
the equity given, and the book *before* that decision: the intents the same decision
already created (found through its stored record) and their fills are left out of the
netting and of the rate count. Recomputing it therefore yields the same orders with the
same ids; the store returns those already written and nothing is sent twice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from ai_trading.config import EngineConfig, RiskConfig
from ai_trading.errors import ConfigError, DataValidationError, OrderValidationError
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.risk import RATE_WINDOW_S, Book, PreTradeRisk, ProposedOrder, RiskDenied
from ai_trading.oms.adoption import oms_positions
from ai_trading.oms.idempotency import build_client_order_id, parse_client_order_id, signal_hash
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import (
    ZERO,
    OrderIntent,
    OrderType,
    RebalanceRecord,
    Side,
    TimeInForce,
    TradingState,
    utc_now,
)
from ai_trading.oms.rebalance_log import RebalanceLog
from ai_trading.types import FloatArray

logger = logging.getLogger(__name__)

SKIP_MIN_NOTIONAL = "min_notional"
SKIP_NO_TRADE_BAND = "no_trade_band"


@dataclass(frozen=True)
class DecisionContext:
    """Who decided and for when: the CIDv2 strategy (model name), version, session and horizon."""

    model_name: str
    model_version: str
    session: date
    horizon: str


@dataclass(frozen=True)
class MarketSnapshot:
    """The decision bar of the policy's symbols: ``close`` is the decision price; ``volume``,
    ``sigma_bps`` (and ``spread_bps`` where quoted) feed the cost prediction."""

    symbols: tuple[str, ...]
    close: FloatArray
    volume: FloatArray
    sigma_bps: FloatArray
    spread_bps: FloatArray | None = None
    bar_seconds: float = 86400.0


@dataclass(frozen=True)
class Portfolio:
    """The account as the OMS knows it: signed positions from fills and signed remaining
    quantities of open intents, per symbol."""

    positions: Mapping[str, Decimal]
    open_orders: Mapping[str, Decimal]

    def exposure(self) -> dict[str, Decimal]:
        total = dict(self.positions)
        for symbol, qty in self.open_orders.items():
            total[symbol] = total.get(symbol, ZERO) + qty
        return {symbol: qty for symbol, qty in total.items() if qty}

    @classmethod
    def from_intents(cls, positions: Mapping[str, Decimal], open_intents: Iterable[OrderIntent], exclude: Sequence[OrderIntent] = ()) -> Portfolio:
        """The portfolio without the intents in ``exclude`` (neither their fills nor their remainder)."""
        held = dict(positions)
        for intent in exclude:
            held[intent.symbol] = held.get(intent.symbol, ZERO) - intent.side.sign * intent.filled_qty
        excluded = {intent.client_order_id for intent in exclude}
        pending: dict[str, Decimal] = {}
        for intent in open_intents:
            if intent.client_order_id not in excluded:
                pending[intent.symbol] = pending.get(intent.symbol, ZERO) + intent.side.sign * intent.remaining_qty
        return cls({s: q for s, q in held.items() if q}, {s: q for s, q in pending.items() if q})


@dataclass(frozen=True)
class PlannedOrder:
    """An order that passed the risk checks, with what TCA needs later."""

    intent: OrderIntent
    decision_price: float
    expected_cost_bps: float


@dataclass(frozen=True)
class SkippedTrade:
    """A trade the engine chose not to make: ``value`` is its notional (min_notional) or its
    expected cost as a share of notional (no_trade_band)."""

    symbol: str
    reason: str
    qty: Decimal
    value: float


@dataclass(frozen=True)
class RebalancePlan:
    """Everything one rebalance decided."""

    signal_hash: str
    orders: tuple[PlannedOrder, ...]
    denials: tuple[RiskDenied, ...]
    skipped: tuple[SkippedTrade, ...]
    record: RebalanceRecord


@dataclass(frozen=True)
class RebalanceResult:
    plan: RebalancePlan
    intents: list[OrderIntent]


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


class ExecutionEngine:
    """Turns target weights into the sent orders of one rebalance (see the module docstring).

    :param manager: the started order manager of the account (its store, broker and
        trading state)
    :param cost_model: the EWMA cost model that prices the no-trade band
    :param config: lot size, minimum notional, band, order type and collar
    :param risk: the pre-trade limits; ``risk.account`` must be the manager's account
    """

    def __init__(self, manager: OrderManager, cost_model: CostModel, config: EngineConfig, risk: RiskConfig) -> None:
        if risk.account != manager.account:
            raise ConfigError(f"risk.account is {risk.account!r} but the order manager trades {manager.account!r}: use one account")
        validate_engine_config(config)
        self._lot = _decimal(config.lot_size).normalize()
        self._manager = manager
        self._cost_model = cost_model
        self._config = config
        self._risk = PreTradeRisk(risk, self._lot)
        self._log = RebalanceLog(manager.store.engine)

    @property
    def rebalances(self) -> RebalanceLog:
        return self._log

    def rebalance(
        self, weights: FloatArray, market: MarketSnapshot, decision: DecisionContext, equity: float, now: datetime | None = None
    ) -> RebalanceResult:
        """Plan from the OMS's book and trading state, persist and send; returns the plan
        and the intents as stored after sending."""
        store = self._manager.store
        digest = decision_hash(weights, market)
        found = self._log.find(self._manager.account, decision.model_name, decision.session, decision.horizon, digest)
        own = [] if found is None else [i for i in store.created_at(found[1].decided_at) if _of_decision(i, decision, digest)]
        stamp = utc_now() if now is None else now
        window_start = stamp - timedelta(seconds=RATE_WINDOW_S)
        recent = store.count_created_since(window_start) - sum(1 for i in own if i.created_at >= window_start)
        portfolio = Portfolio.from_intents(oms_positions(store, self._manager.account), store.open_intents(), exclude=own)
        state = self._manager.trading_state.get(self._manager.account).state
        plan = self.plan(weights, market, decision, equity, portfolio, state, recent, stamp if found is None else found[1].decided_at)
        intents = self._manager.submit_batch([order.intent for order in plan.orders], rebalance=plan.record)
        return RebalanceResult(plan, intents)

    def plan(
        self,
        weights: FloatArray,
        market: MarketSnapshot,
        decision: DecisionContext,
        equity: float,
        portfolio: Portfolio,
        state: TradingState,
        recent_orders: int,
        now: datetime,
    ) -> RebalancePlan:
        """The orders, denials and skipped trades of one rebalance; writes and sends nothing."""
        weights = np.asarray(weights, dtype=np.float64)
        close = np.asarray(market.close, dtype=np.float64)
        _validate(weights, market, close, equity, portfolio)
        digest = decision_hash(weights, market)
        exposure = portfolio.exposure()
        proposed, skipped = self._proposals(weights, market, close, equity, exposure)
        costs = self._expected_costs(proposed, market)
        orders: list[ProposedOrder] = []
        cost_of: dict[str, float] = {}
        for (index, order), cost_bps in zip(proposed, costs, strict=True):
            if cost_bps * 1e-4 > self._config.max_cost_share:
                skipped.append(SkippedTrade(order.symbol, SKIP_NO_TRADE_BAND, order.qty, float(cost_bps) * 1e-4))
                continue
            orders.append(order)
            cost_of[order.symbol] = float(cost_bps)
        last_close = {s: float(p) for s, p in zip(market.symbols, close, strict=True)}
        verdict = self._risk.check(orders, Book(exposure, last_close, equity), state, recent_orders)
        planned = tuple(
            PlannedOrder(self._intent(order, decision, digest, now), order.decision_price, cost_of[order.symbol])
            for order in verdict.accepted
        )
        record = RebalanceRecord(
            account=self._manager.account,
            strategy=decision.model_name,
            model_version=decision.model_version,
            session=decision.session,
            horizon=decision.horizon,
            signal_hash=digest,
            decided_at=now,
            trading_state=state,
            equity=_decimal(equity),
            n_orders=len(planned),
            n_denied=len(verdict.denied),
            denials=tuple(denied.record() for denied in verdict.denied),
        )
        logger.info(
            "ENGINE_REBALANCE_PLANNED",
            extra={"strategy": decision.model_name, "session": decision.session.isoformat(), "signal_hash": digest,
                   "orders": len(planned), "denied": len(verdict.denied), "skipped": len(skipped), "trading_state": state},
        )  # fmt: skip
        return RebalancePlan(digest, planned, verdict.denied, tuple(skipped), record)

    def _proposals(
        self, weights: FloatArray, market: MarketSnapshot, close: FloatArray, equity: float, exposure: Mapping[str, Decimal]
    ) -> tuple[list[tuple[int, ProposedOrder]], list[SkippedTrade]]:
        """Netted, lot-rounded trades at or above the minimum notional, in symbol order."""
        lot = self._lot
        proposed: list[tuple[int, ProposedOrder]] = []
        skipped: list[SkippedTrade] = []
        for index in sorted(range(len(market.symbols)), key=lambda k: market.symbols[k]):
            symbol, weight, price = market.symbols[index], float(weights[index]), float(close[index])
            held = exposure.get(symbol, ZERO)
            if weight == 0.0 and held == 0:
                continue
            target = weight * equity / price if weight != 0.0 else 0.0
            lots = round((target - float(held)) / float(lot))
            if lots == 0:
                continue
            qty = Decimal(abs(lots)) * lot
            notional = float(qty) * price
            if notional < self._config.min_order_notional:
                skipped.append(SkippedTrade(symbol, SKIP_MIN_NOTIONAL, qty, notional))
                continue
            side = Side.BUY if lots > 0 else Side.SELL
            proposed.append((index, self._order(symbol, side, qty, price)))
        return proposed, skipped

    def _order(self, symbol: str, side: Side, qty: Decimal, price: float) -> ProposedOrder:
        order_type = OrderType(self._config.order_type)
        limit = None
        if order_type is OrderType.LIMIT:
            collar = _decimal(self._config.limit_collar_bps) / Decimal(10_000)
            raw = _decimal(price) * (1 + side.sign * collar)
            limit = raw.quantize(_decimal(self._config.price_tick), rounding=ROUND_CEILING if side is Side.BUY else ROUND_FLOOR)
            if limit <= 0:
                raise OrderValidationError(f"{symbol}: a sell limit {limit} at close {price} is not a price; use market orders")
        return ProposedOrder(symbol, side, qty, order_type, limit, price)

    def _expected_costs(self, proposed: Sequence[tuple[int, ProposedOrder]], market: MarketSnapshot) -> FloatArray:
        if not proposed:
            return np.empty(0)
        index = np.array([k for k, _ in proposed], dtype=np.int64)
        return self._cost_model.predict(
            [order.symbol for _, order in proposed],
            np.array([order.decision_price for _, order in proposed]),
            np.array([float(order.qty) for _, order in proposed]),
            np.asarray(market.volume, dtype=np.float64)[index],
            np.asarray(market.sigma_bps, dtype=np.float64)[index],
            None if market.spread_bps is None else np.asarray(market.spread_bps, dtype=np.float64)[index],
            market.bar_seconds,
        )

    def _intent(self, order: ProposedOrder, decision: DecisionContext, digest: str, now: datetime) -> OrderIntent:
        cid = build_client_order_id(
            decision.model_name, order.symbol, order.side.value, decision.session, decision.horizon, digest, order.qty,
            decision.model_version,
        )  # fmt: skip
        return OrderIntent.new(
            client_order_id=cid,
            strategy=decision.model_name,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            order_type=order.order_type,
            limit_price=order.limit_price,
            time_in_force=TimeInForce(self._config.time_in_force),
            now=now,
        )


def validate_engine_config(config: EngineConfig) -> None:
    checks = {
        "lot_size": config.lot_size > 0,
        "min_order_notional": config.min_order_notional >= 0,
        "max_cost_share": config.max_cost_share >= 0,
        "limit_collar_bps": config.limit_collar_bps >= 0,
        "price_tick": config.price_tick > 0,
    }
    for name, ok in checks.items():
        if not (ok and math.isfinite(getattr(config, name))):
            raise ConfigError(f"engine.{name} must be a finite number {'> 0' if name in ('lot_size', 'price_tick') else '>= 0'}, got {getattr(config, name)!r}")
    for name, kind in (("order_type", OrderType), ("time_in_force", TimeInForce)):
        if getattr(config, name) not in {member.value for member in kind}:
            raise ConfigError(f"engine.{name} must be one of {', '.join(m.value for m in kind)}, got {getattr(config, name)!r}")


def decision_hash(weights: FloatArray, market: MarketSnapshot) -> str:
    """The CIDv2 signal hash of the weights and decision prices (a missing price hashes as null)."""
    prices = [float(p) if math.isfinite(p) else None for p in np.asarray(market.close, dtype=np.float64)]
    return signal_hash({"symbols": list(market.symbols), "weights": np.asarray(weights, dtype=np.float64).tolist(), "prices": prices})


def _of_decision(intent: OrderIntent, decision: DecisionContext, digest: str) -> bool:
    fields = parse_client_order_id(intent.client_order_id)
    return (fields.strategy, fields.session, fields.horizon, fields.signal_hash, fields.version) == (
        decision.model_name, decision.session, decision.horizon, digest, decision.model_version,
    )  # fmt: skip


def _validate(weights: FloatArray, market: MarketSnapshot, close: FloatArray, equity: float, portfolio: Portfolio) -> None:
    n = len(market.symbols)
    if len(set(market.symbols)) != n:
        raise DataValidationError("rebalance", None, "symbols must be unique")
    for name, array in (("weights", weights), ("close", close), ("volume", market.volume), ("sigma_bps", market.sigma_bps)):
        if np.shape(array) != (n,):
            raise DataValidationError("rebalance", None, f"{name} must hold one value per symbol ({n}), got shape {np.shape(array)}")
    if not np.all(np.isfinite(weights)):
        raise DataValidationError("rebalance", int(np.flatnonzero(~np.isfinite(weights))[0]), "target weights must be finite")
    if not (math.isfinite(equity) and equity > 0):
        raise DataValidationError("rebalance", None, f"equity must be a finite amount > 0, got {equity!r}")
    exposure = portfolio.exposure()
    unknown = sorted(set(exposure) - set(market.symbols))
    if unknown:
        raise DataValidationError(
            "rebalance", None, f"the account holds {', '.join(unknown)} outside the policy's symbols",
            "include them in the snapshot (weight 0 closes them) so exposure limits see the whole book",
        )  # fmt: skip
    needed = (weights != 0) | np.array([s in exposure for s in market.symbols], dtype=bool)
    bad = needed & ~(np.isfinite(close) & (close > 0))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataValidationError("rebalance", k, f"{market.symbols[k]} has a target or a position but no close price > 0")
