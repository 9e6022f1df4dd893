"""Reconciliation: make the intent store agree with the broker, and report every difference.

Runs on every start before any new order may be sent (see
:class:`~ai_trading.oms.manager.OrderManager`), and as the manager's polling step. For every
non-final intent it asks the broker by ``client_order_id``:

- found: adopt the broker's state (acknowledgement, cancel, reject) and its fills;
- SUBMITTED but never arrived: resend under the same id (a duplicate-id reply means it did
  arrive after all: look it up);
- ACKED or later but unknown to the broker: an issue that blocks trading.

Everything one pass learns from the broker (acknowledgements, fills, cancels, rejections
of every intent it resolved) is written in ONE transaction (:meth:`IntentStore.writes`),
after the broker was asked and with no broker call inside it: a crash mid-pass leaves none
of it, and the next pass (same broker answers, same fill ids) writes it all. Fills are
applied idempotently (the store ignores a fill id it already holds). Broker
orders the OMS does not know are recorded as foreign, CIDv2-shaped ids flagged apart, and
never touched. Finally OMS-derived positions (fills plus positions adopted from before the
OMS, see :mod:`ai_trading.oms.adoption`) are compared with the broker's. Everything
lands in a :class:`ReconciliationReport` (``to_dict()`` for alerts and the CLI).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from ai_trading.config import ManagerConfig, RiskConfig
from ai_trading.errors import BrokerError, ConcurrencyConflict, DuplicateOrderError, OrderRejected
from ai_trading.oms.adoption import AdoptionStore, with_adopted
from ai_trading.oms.broker import Broker, BrokerFill, BrokerOrder, BrokerOrderStatus, OrderRequest, SubmitOutcome
from ai_trading.oms.idempotency import is_client_order_id
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.intent_writer import IntentWriter
from ai_trading.oms.models import TRANSITIONS, Fill, IntentState, OrderIntent, utc_now

logger = logging.getLogger(__name__)

S = IntentState


class Transitions(Protocol):
    """Where a state change is written: the store (its own transaction) or a writer (the
    transaction of a whole reconciliation pass)."""

    def transition(
        self, intent: OrderIntent, to: IntentState, *, broker_order_id: str | None = None, error: str | None = None
    ) -> OrderIntent: ...


@dataclass(frozen=True)
class Issue:
    """A difference reconciliation could not resolve; any issue keeps trading blocked."""

    kind: str
    client_order_id: str | None
    detail: str


@dataclass(frozen=True)
class PositionMismatch:
    """A symbol where the OMS's position (fills plus ``adopted_qty``) is not the broker's."""

    symbol: str
    oms_qty: Decimal
    broker_qty: Decimal
    adopted_qty: Decimal = Decimal(0)


@dataclass(frozen=True)
class ForeignOrderSeen:
    broker_order_id: str
    client_order_id: str | None
    cid_shaped: bool
    symbol: str
    side: str
    qty: Decimal
    filled_qty: Decimal
    status: str


@dataclass
class ReconciliationReport:
    """What one reconciliation found and did.

    :param adopted: intents whose state changed to follow the broker: ``(cid, from, to)``
    :param resent: intents resent under their own id because the broker never got them
    :param in_flight: SUBMITTED intents left alone because another process may be sending them
    :param not_sent: CREATED intents (never sent; the manager sends them when asked)
    :param fills_applied: fills new to the OMS that were recorded
    """

    started_at: datetime
    finished_at: datetime | None = None
    intents_checked: int = 0
    adopted: list[tuple[str, str, str]] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)
    fills_applied: int = 0
    foreign_orders: list[ForeignOrderSeen] = field(default_factory=list)
    position_mismatches: list[PositionMismatch] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when nothing is unresolved and positions agree: trading may start."""
        return not self.issues and not self.position_mismatches

    @property
    def cid_shaped_foreign(self) -> list[ForeignOrderSeen]:
        """Unknown orders carrying a well-formed CIDv2 id: another instance, or a lost intent."""
        return [order for order in self.foreign_orders if order.cid_shaped]

    def summary(self) -> str:
        return (
            f"{'passed' if self.passed else 'FAILED'}: {self.intents_checked} open intents checked, "
            f"{len(self.adopted)} adopted, {len(self.resent)} resent, {self.fills_applied} fills applied, "
            f"{len(self.foreign_orders)} foreign orders ({len(self.cid_shaped_foreign)} CIDv2-shaped), "
            f"{len(self.position_mismatches)} position mismatches, {len(self.issues)} issues"
        )

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return format(value, "f")
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {key: plain(item) for key, item in value.items()}
            if isinstance(value, list | tuple):
                return [plain(item) for item in value]
            return value

        data = plain(asdict(self))
        data["passed"] = self.passed
        data["cid_shaped_foreign"] = [order.broker_order_id for order in self.cid_shaped_foreign]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def order_request(intent: OrderIntent) -> OrderRequest:
    """The broker request for an intent; always under the intent's own client_order_id."""
    return OrderRequest(
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=intent.side.value,
        qty=intent.qty,
        order_type=intent.order_type.value,
        limit_price=intent.limit_price,
        time_in_force=intent.time_in_force.value,
    )


class Reconciler:
    """Resolves open intents against the broker; see the module docstring.

    :param store: the intent store
    :param broker: any :class:`~ai_trading.oms.broker.Broker`
    :param config: resend grace period and position re-checks
    :param on_fill_recorded: called after each new fill is recorded, inside the pass's
        transaction, before it commits (the manager's ``during_fills`` checkpoint: a crash
        there must leave none of the pass)
    :param account: the account whose adopted positions count in the position comparison
    """

    def __init__(
        self,
        store: IntentStore,
        broker: Broker,
        config: ManagerConfig,
        on_fill_recorded: Callable[[], None] | None = None,
        account: str = RiskConfig.account,
    ) -> None:
        self._store = store
        self._broker = broker
        self._config = config
        self._on_fill_recorded = on_fill_recorded
        self._adoptions = AdoptionStore(store.engine)
        self._account = account

    # -- sending -------------------------------------------------------------------------

    def deliver(self, intent: OrderIntent) -> BrokerOrder | None:
        """Send a SUBMITTED intent once and :meth:`resolve` the outcome."""
        outcome: SubmitOutcome
        try:
            outcome = self._broker.submit(order_request(intent))
        except (DuplicateOrderError, BrokerError) as exc:
            outcome = exc
        return self.resolve(intent, outcome)

    def resolve(self, intent: OrderIntent, outcome: SubmitOutcome) -> BrokerOrder | None:
        """The broker's order after a send of ``intent``; None when it is not at the broker.

        A duplicate-id refusal or an unknown outcome is resolved by looking the order up by
        its client_order_id; a definite rejection moves the intent to REJECTED. Serves the
        single send and each order of a batch send alike.
        """
        cid = intent.client_order_id
        if isinstance(outcome, BrokerOrder):
            return outcome
        if isinstance(outcome, DuplicateOrderError):
            logger.info("OMS_DUPLICATE_REPLY", extra={"client_order_id": cid})
            order = self._broker.get_order(cid)
            if order is None:
                raise BrokerError(f"broker refused {cid} as a duplicate but does not return it by client_order_id")
            return order
        if isinstance(outcome, OrderRejected):
            self._store.transition(intent, S.REJECTED, error=str(outcome))
            logger.warning("OMS_ORDER_REJECTED", extra={"client_order_id": cid, "error": str(outcome)})
            return None
        logger.warning("OMS_SEND_OUTCOME_UNKNOWN", extra={"client_order_id": cid, "error": str(outcome)})
        return self._broker.get_order(cid)

    def acknowledge(self, intent: OrderIntent, order: BrokerOrder, via: Transitions | None = None) -> OrderIntent:
        """SUBMITTED -> ACKED (or REJECTED) once the broker reports the order; written
        ``via`` a pass's writer, or the store (a transaction of its own) when None."""
        if intent.state is not S.SUBMITTED:
            return intent
        target = self._store if via is None else via
        if order.status is BrokerOrderStatus.REJECTED:
            return target.transition(intent, S.REJECTED, broker_order_id=order.broker_order_id, error="rejected by broker")
        return target.transition(intent, S.ACKED, broker_order_id=order.broker_order_id)

    def adopt(self, intent: OrderIntent, order: BrokerOrder, via: Transitions | None = None) -> OrderIntent:
        """Follow ``order``'s acknowledgement, rejection and cancel (fills are recorded apart)."""
        intent = self.acknowledge(intent, order, via)
        target = self._store if via is None else via
        if order.status is BrokerOrderStatus.REJECTED and S.REJECTED in TRANSITIONS[intent.state]:
            return target.transition(intent, S.REJECTED, error="rejected by broker")
        if order.status is BrokerOrderStatus.CANCELED and intent.state in (S.ACKED, S.PARTIAL_FILLED):
            return target.transition(intent, S.CANCELED)
        return intent

    # -- reconciliation ------------------------------------------------------------------

    def run(self) -> ReconciliationReport:
        """Full start-up reconciliation: resolve, apply fills, foreign orders, positions."""
        report = ReconciliationReport(started_at=utc_now())
        open_orders, fills = self._resolve(report)
        self._compare_positions(report)
        if report.position_mismatches:
            # Look for whose fills moved the broker's positions: the whole fill history.
            fills = self._broker.list_fills()
        self._record_foreign(report, open_orders, fills)
        report.finished_at = utc_now()
        logger.log(
            logging.INFO if report.passed else logging.ERROR,
            "OMS_RECONCILIATION_DONE" if report.passed else "OMS_RECONCILIATION_FAILED",
            extra={"summary": report.summary()},
        )
        return report

    def sync(self) -> ReconciliationReport:
        """Resolve open intents and apply their fills (the polling step; no position check)."""
        report = ReconciliationReport(started_at=utc_now())
        self._resolve(report)
        report.finished_at = utc_now()
        return report

    def refresh(self, client_order_ids: Iterable[str]) -> ReconciliationReport:
        """Follow the broker's state and fills of these intents only (after a cancel
        request). Never sends: an intent the broker does not report is left as it is."""
        report = ReconciliationReport(started_at=utc_now())
        resolved: dict[str, BrokerOrder] = {}
        for cid in client_order_ids:
            intent = self._store.get(cid)
            if intent is None or intent.is_final or intent.state is S.CREATED:
                continue
            report.intents_checked += 1
            order = self._broker.get_order(cid)
            if order is not None:
                resolved[cid] = order
        self._apply(report, resolved, self._fills_of(resolved))
        report.finished_at = utc_now()
        return report

    def _resolve(self, report: ReconciliationReport) -> tuple[list[BrokerOrder], list[BrokerFill]]:
        open_orders = self._broker.list_open_orders()
        open_by_cid = {order.client_order_id: order for order in open_orders}
        resolved: dict[str, BrokerOrder] = {}
        for intent in self._store.open_intents():
            report.intents_checked += 1
            if intent.state is S.CREATED:
                report.not_sent.append(intent.client_order_id)
                continue
            order = open_by_cid.get(intent.client_order_id) or self._broker.get_order(intent.client_order_id)
            if order is None:
                order = self._find_or_resend(intent, report)
            if order is not None:
                resolved[intent.client_order_id] = order
        fills = self._fills_of(resolved)
        self._apply(report, resolved, fills)
        return open_orders, fills

    def _fills_of(self, resolved: dict[str, BrokerOrder]) -> list[BrokerFill]:
        """The broker's fills since the oldest of ``resolved`` was submitted."""
        return self._broker.list_fills(since=min(o.submitted_at for o in resolved.values())) if resolved else []

    def _find_or_resend(self, intent: OrderIntent, report: ReconciliationReport) -> BrokerOrder | None:
        cid = intent.client_order_id
        if intent.state is not S.SUBMITTED:
            report.issues.append(
                Issue("missing_at_broker", cid, f"intent is {intent.state} (broker id {intent.broker_order_id}) but the broker does not know it")
            )
            return None
        if utc_now() - intent.updated_at < timedelta(seconds=self._config.resend_grace_s):
            report.in_flight.append(cid)
            return None
        try:
            claimed = self._store.record_attempt(intent, error="not at the broker on reconciliation: resent under the same id")
        except ConcurrencyConflict:
            report.in_flight.append(cid)
            return None
        order = self.deliver(claimed)
        if order is None:
            current = self._store.get(cid)
            if current is not None and current.state is S.SUBMITTED:
                report.issues.append(Issue("unresolved", cid, "resent, but the broker still does not report the order"))
            return None
        report.resent.append(cid)
        logger.info("OMS_INTENT_RESENT", extra={"client_order_id": cid, "broker_order_id": order.broker_order_id})
        return order

    def _apply(self, report: ReconciliationReport, resolved: dict[str, BrokerOrder], fills: list[BrokerFill]) -> None:
        """Write what the broker said about ``resolved`` in one transaction: acknowledge,
        record fills, then follow rejections and cancels, then compare filled quantities.

        The intents are read once, locked for the transaction, so no other writer can move
        them in between (a :class:`ConcurrencyConflict` cannot arise inside; were one
        raised, the whole pass rolls back and the next one starts afresh)."""
        if not resolved:
            return
        with self._store.writes() as writer:
            current = writer.lock(resolved)
            for cid, order in resolved.items():
                if cid in current:
                    current[cid] = self._follow(report, current[cid], self.acknowledge(current[cid], order, writer))
            self._record_fills(report, writer, current, resolved, fills)
            for cid, order in resolved.items():
                if cid in current:
                    current[cid] = self._follow(report, current[cid], self.adopt(current[cid], order, writer))
                    self._check_filled(report, current[cid], order)

    def _record_fills(
        self,
        report: ReconciliationReport,
        writer: IntentWriter,
        current: dict[str, OrderIntent],
        resolved: dict[str, BrokerOrder],
        fills: list[BrokerFill],
    ) -> None:
        cid_of_broker_id = {order.broker_order_id: cid for cid, order in resolved.items()}
        for fill in fills:
            cid = fill.client_order_id if fill.client_order_id in resolved else cid_of_broker_id.get(fill.broker_order_id)
            if cid is None or cid not in current:
                continue
            record = Fill(broker_fill_id=fill.fill_id, client_order_id=cid, qty=fill.qty, price=fill.price, fee=fill.fee, ts=fill.ts)
            result = writer.record_fill(record, broker_order_id=fill.broker_order_id)
            current[cid] = result.intent
            if result.applied:
                report.fills_applied += 1
                if self._on_fill_recorded is not None:
                    self._on_fill_recorded()

    @staticmethod
    def _follow(report: ReconciliationReport, before: OrderIntent, after: OrderIntent) -> OrderIntent:
        if after.state is not before.state:
            report.adopted.append((before.client_order_id, before.state.value, after.state.value))
        return after

    @staticmethod
    def _check_filled(report: ReconciliationReport, intent: OrderIntent, order: BrokerOrder) -> None:
        cid = intent.client_order_id
        short = intent.filled_qty < order.filled_qty
        if short or (not order.status.is_open and intent.filled_qty != order.filled_qty):
            report.issues.append(
                Issue("fill_mismatch", cid, f"OMS filled {intent.filled_qty}, broker reports {order.filled_qty} ({order.status})")
            )

    def _record_foreign(self, report: ReconciliationReport, open_orders: list[BrokerOrder], fills: list[BrokerFill]) -> None:
        known_broker_ids = {intent.broker_order_id for intent in self._store.list_intents() if intent.broker_order_id}
        for order in open_orders:
            if self._store.get(order.client_order_id) is None:
                self._foreign(report, order.broker_order_id, order.client_order_id, order.symbol, order.side, order.qty, order.filled_qty, order.status.value)
        seen = {order.broker_order_id for order in report.foreign_orders}
        by_order: dict[str, list[BrokerFill]] = {}
        for fill in fills:
            unknown = fill.broker_order_id not in known_broker_ids and (
                fill.client_order_id is None or self._store.get(fill.client_order_id) is None
            )
            if unknown and fill.broker_order_id not in seen:
                by_order.setdefault(fill.broker_order_id, []).append(fill)
        for broker_order_id, order_fills in by_order.items():
            filled = sum((f.qty for f in order_fills), Decimal(0))
            first = order_fills[0]
            self._foreign(report, broker_order_id, first.client_order_id, first.symbol, first.side, filled, filled, "seen_in_fills")

    def _foreign(
        self, report: ReconciliationReport, broker_order_id: str, cid: str | None, symbol: str, side: str, qty: Decimal, filled: Decimal, status: str
    ) -> None:
        stored = self._store.upsert_foreign_order(
            broker_order_id=broker_order_id, client_order_id=cid, symbol=symbol, side=side, qty=qty, filled_qty=filled, status=status
        )
        report.foreign_orders.append(
            ForeignOrderSeen(broker_order_id, cid, stored.cid_shaped, symbol, side, qty, filled, status)
        )
        logger.warning(
            "OMS_FOREIGN_ORDER",
            extra={"broker_order_id": broker_order_id, "client_order_id": cid, "cid_shaped": cid is not None and is_client_order_id(cid)},
        )

    def _compare_positions(self, report: ReconciliationReport) -> None:
        for attempt in range(max(self._config.position_checks, 1)):
            broker = {position.symbol: position.qty for position in self._broker.positions()}
            adopted = self._adoptions.adopted(self._account)
            oms = with_adopted(self._store.positions(), adopted.values())
            mismatches = [
                PositionMismatch(
                    symbol,
                    oms.get(symbol, Decimal(0)),
                    broker.get(symbol, Decimal(0)),
                    adopted[symbol].qty if symbol in adopted else Decimal(0),
                )
                for symbol in sorted(set(broker) | set(oms))
                if oms.get(symbol, Decimal(0)) != broker.get(symbol, Decimal(0))
            ]
            if not mismatches or attempt + 1 == self._config.position_checks:
                break
            # Fills may have landed between reading fills and positions: apply them and look again.
            self._resolve(ReconciliationReport(started_at=utc_now()))
        report.position_mismatches = mismatches

