"""The order manager: drives each intent from decision to final state, crash-safely.

Order of durable steps for one intent (write-ahead, so a crash anywhere is recoverable):

1. persist CREATED (idempotent: the same CIDv2 id names the same order in any process);
2. persist SUBMITTED (the guarded transition is the claim: of two processes working the
   same intent only one wins it, so only one ever sends);
3. send under the intent's own client_order_id;
4. persist ACKED with the broker's order id;
5. record fills as they arrive (polling), up to FILLED / CANCELED / REJECTED.

Nothing can be sent before :meth:`OrderManager.start` has reconciled with the broker and
passed; until then :class:`~ai_trading.errors.TradingBlocked` is raised. Immediately
before each send the account's trading state is read from the database (so a kill switch
set by another process counts): ``HALTED`` refuses every new order, ``REDUCING`` every
order that does not bring its symbol's exposure closer to flat; a refused intent, claimed
but never sent, becomes REJECTED with the reason. Cancels always pass.

:meth:`OrderManager.submit_batch` takes a rebalance's intents through the same steps with
one transaction for all CREATED rows (with the rebalance record), one for all claims, one
broker send after one read of the trading state when the broker takes batches (one of each
per order otherwise) and one for all acknowledgements. The optional ``checkpoint``
callback is invoked with a :class:`Checkpoint` name at each step boundary (operators hook
metrics or tracing there; the crash-injection tests kill the process there).

:meth:`OrderManager.submit_flatten` is the one path past ``HALTED`` (an operator must be
able to close positions while halted, NautilusTrader issue #4761): only ``flatten``
orders that close a whole position exactly to zero, each audited in ``flatten_audit``
before it can be sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ai_trading.config import ManagerConfig, RiskConfig
from ai_trading.errors import (
    AiTradingError,
    BrokerError,
    ConcurrencyConflict,
    FlattenRefused,
    IllegalTransition,
    ReconciliationError,
    TradingBlocked,
    UnknownOutcomeError,
)
from ai_trading.oms.adoption import oms_positions
from ai_trading.oms.broker import BatchBroker, Broker, BrokerOrder, BrokerOrderStatus, SubmitOutcome, submit_many
from ai_trading.oms.engine import connect, transaction
from ai_trading.oms.idempotency import PREFIX, build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import (
    ZERO,
    IntentState,
    OrderIntent,
    RebalanceRecord,
    Side,
    TradingState,
    reduces_exposure,
    utc_now,
)
from ai_trading.oms.reconcile import Reconciler, ReconciliationReport, order_request
from ai_trading.oms.schema import flatten_audit
from ai_trading.oms.trading_state import TradingStateStore

logger = logging.getLogger(__name__)

FLATTEN_STRATEGY = "flatten"
FLATTEN_HORIZON = "close"


@dataclass(frozen=True)
class FlattenPlan:
    """The closing orders :meth:`OrderManager.plan_flatten` proposes.

    :param intents: one market order per symbol that closes its position to zero
    :param skipped: symbols left out, with why (open orders that must be canceled first)
    """

    intents: tuple[OrderIntent, ...]
    skipped: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class FlattenAuditRecord:
    """One flatten order as authorised: who, why, the position it closed and the state it passed."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    position_before: Decimal
    trading_state: TradingState
    authorised_by: str
    reason: str
    requested_at: datetime


@dataclass(frozen=True)
class CancelOutcome:
    """One open intent :meth:`OrderManager.cancel_open` tried to cancel.

    :param before: the intent as it was
    :param after: as stored after the broker's answer was recorded (None when the cancel failed)
    :param error: why the cancel failed (not acknowledged yet, broker error)
    """

    before: OrderIntent
    after: OrderIntent | None
    error: str | None


def closing_orders(positions: Mapping[str, Decimal], intents: Sequence[OrderIntent], session: date) -> FlattenPlan:
    """Closing orders for ``positions`` given every intent the OMS holds.

    The CIDv2 id is ``flatten``, the session date and the quantity, with a signal hash of
    the symbol, the position and the symbol's gross filled quantity so far: the same
    position flattened again (a retry after a crash) gets the same id and is never sent
    twice, while a position rebuilt later in the session gets a new one.
    """
    traded: dict[str, Decimal] = {}
    open_symbols: dict[str, int] = {}
    for intent in intents:
        traded[intent.symbol] = traded.get(intent.symbol, ZERO) + intent.filled_qty
        if not intent.is_final:
            open_symbols[intent.symbol] = open_symbols.get(intent.symbol, 0) + 1
    planned: list[OrderIntent] = []
    skipped: dict[str, str] = {}
    for symbol, position in sorted(positions.items()):
        if position == 0:
            continue
        if symbol in open_symbols:
            skipped[symbol] = f"{open_symbols[symbol]} open order(s): cancel them first"
            continue
        side, qty = ("sell" if position > 0 else "buy"), abs(position)
        digest = signal_hash({"symbol": symbol, "position": position, "traded": traded.get(symbol, ZERO)})
        cid = build_client_order_id(FLATTEN_STRATEGY, symbol, side, session, FLATTEN_HORIZON, digest, qty, 1)
        planned.append(OrderIntent.new(client_order_id=cid, strategy=FLATTEN_STRATEGY, symbol=symbol, side=side, qty=qty))
    return FlattenPlan(tuple(planned), skipped)


class Checkpoint(StrEnum):
    """Named points of the submission path, passed to the ``checkpoint`` callback."""

    AFTER_CREATED = "after_created"  # CREATED is persisted
    AFTER_SUBMITTED = "after_submitted"  # SUBMITTED is persisted, nothing sent yet
    AFTER_SEND = "after_send"  # the broker has the order, ACK not yet persisted
    DURING_FILLS = "during_fills"  # a fill written in the poll's open transaction, not yet committed


class OrderManager:
    """Submits intents through a broker and keeps the intent store in step with it.

    :param store: the durable intent store
    :param broker: any :class:`~ai_trading.oms.broker.Broker`
    :param config: resend grace and position re-checks for reconciliation
    :param checkpoint: optional callback invoked with each :class:`Checkpoint` reached
    :param account: the account whose trading state is read before every send
    """

    def __init__(
        self,
        store: IntentStore,
        broker: Broker,
        config: ManagerConfig,
        checkpoint: Callable[[Checkpoint], None] | None = None,
        account: str = RiskConfig.account,
    ) -> None:
        self._store = store
        self._broker = broker
        self._checkpoint = checkpoint
        self._account = account
        self._trading_state = TradingStateStore(store.engine)
        self._reconciler = Reconciler(
            store, broker, config, on_fill_recorded=lambda: self._reach(Checkpoint.DURING_FILLS), account=self._account
        )
        self._blocked_reason: str | None = "start-up reconciliation has not run: call OrderManager.start() first"
        self.last_report: ReconciliationReport | None = None

    @property
    def store(self) -> IntentStore:
        return self._store

    @property
    def broker(self) -> Broker:
        return self._broker

    @property
    def account(self) -> str:
        return self._account

    @property
    def trading_state(self) -> TradingStateStore:
        return self._trading_state

    @property
    def trading_allowed(self) -> bool:
        return self._blocked_reason is None

    def _reach(self, point: Checkpoint) -> None:
        if self._checkpoint is not None:
            self._checkpoint(point)

    def _require_trading(self) -> None:
        if self._blocked_reason is not None:
            raise TradingBlocked(f"trading is blocked: {self._blocked_reason}")

    def start(self) -> ReconciliationReport:
        """Reconcile with the broker; trading is allowed only if the report passed.

        Raises :class:`ReconciliationError` when reconciliation could not complete (broker
        unreachable, store error); trading then stays blocked.
        """
        self._blocked_reason = "start-up reconciliation is running"
        try:
            report = self._reconciler.run()
        except AiTradingError as exc:
            self._blocked_reason = f"start-up reconciliation failed: {exc}; fix the cause and restart"
            raise ReconciliationError(f"start-up reconciliation could not complete: {exc}") from exc
        self.last_report = report
        if report.passed:
            self._blocked_reason = None
        else:
            self._blocked_reason = (
                f"start-up reconciliation found differences ({report.summary()}); "
                "inspect `ai-trading oms reconcile --json`, resolve them and restart"
            )
        return report

    def submit(self, intent: OrderIntent) -> OrderIntent:
        """Persist ``intent`` and send it once; returns the intent as stored afterwards.

        Submitting an intent that already exists (same client_order_id) never sends it
        again: whatever state it reached is returned, and reconciliation owns its recovery.
        """
        self._require_trading()
        return self._submit_one(intent, lambda claimed: self._refusal(claimed, self._trading_state.get(self._account).state, {}))

    def plan_flatten(self, session: date) -> FlattenPlan:
        """The closing orders of every position the OMS holds (fills plus adopted), one
        market order per symbol; symbols with open orders are skipped (cancel them first)."""
        return closing_orders(oms_positions(self._store, self._account), self._store.list_intents(), session)

    def submit_flatten(self, intents: Sequence[OrderIntent], *, authorised_by: str, reason: str) -> list[OrderIntent]:
        """Send closing orders whatever the trading state (HALTED included), audited.

        The one way past HALTED, and a narrow one: each intent must carry the ``flatten``
        strategy and close its symbol's whole position exactly to zero, with no other order
        open in the symbol; anything else raises :class:`FlattenRefused` before anything is
        written. Each order's ``flatten_audit`` row (who, why, the position it closes) is
        committed before the order can be sent, and the check is repeated immediately
        before the send. A retry (same ids) sends nothing twice, as with :meth:`submit`.
        """
        self._require_trading()
        if not authorised_by.strip() or not reason.strip():
            raise FlattenRefused("a flatten needs who authorises it and why (authorised_by, reason)")
        problems = [problem for intent in intents if (problem := self._flatten_refusal(intent)) is not None]
        symbols = [intent.symbol for intent in intents]
        problems += [f"{symbol}: more than one flatten order" for symbol in sorted({s for s in symbols if symbols.count(s) > 1})]
        if problems:
            raise FlattenRefused("flatten refused, nothing was sent: " + "; ".join(problems))
        state = self._trading_state.get(self._account).state
        done: list[OrderIntent] = []
        for intent in intents:
            self._audit_flatten(intent, state, authorised_by, reason)
            done.append(self._submit_one(intent, self._flatten_refusal))
            logger.warning(
                "OMS_FLATTEN_SUBMITTED",
                extra={"client_order_id": intent.client_order_id, "state": done[-1].state, "authorised_by": authorised_by, "reason": reason},
            )
        return done

    def _flatten_refusal(self, intent: OrderIntent) -> str | None:
        """Why ``intent`` may not go through the flatten path now, or None."""
        if intent.strategy != FLATTEN_STRATEGY or not intent.client_order_id.startswith(f"{PREFIX}:{FLATTEN_STRATEGY}:"):
            return f"{intent.client_order_id}: not a flatten order (CIDv2 strategy {FLATTEN_STRATEGY!r}, see plan_flatten)"
        position = oms_positions(self._store, self._account).get(intent.symbol, ZERO)
        others = [i for i in self._store.open_intents() if i.symbol == intent.symbol and i.client_order_id != intent.client_order_id]
        if others:
            return f"{intent.symbol}: {len(others)} other open order(s); cancel them first (`ai-trading kill on --cancel-open`)"
        if position == 0 or position + intent.side.sign * intent.qty != 0:
            return f"{intent.symbol}: {intent.side} {intent.qty} does not close the position {position} exactly to zero"
        return None

    def _audit_flatten(self, intent: OrderIntent, state: TradingState, authorised_by: str, reason: str) -> None:
        """Record the authorised request once per order (a retry finds its row)."""
        position = -intent.side.sign * intent.qty
        row = {
            "account": self._account, "client_order_id": intent.client_order_id, "symbol": intent.symbol,
            "side": intent.side.value, "qty": intent.qty, "position_before": position, "trading_state": state.value,
            "authorised_by": authorised_by, "reason": reason, "requested_at": utc_now(),
        }  # fmt: skip
        dialect = postgresql if self._store.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(flatten_audit).on_conflict_do_nothing(index_elements=[flatten_audit.c.client_order_id])
        with connect(self._store.engine) as connection, transaction(connection):
            connection.execute(insert, row)

    def flatten_audit(self) -> list[FlattenAuditRecord]:
        """Every flatten order requested on the account, oldest first."""
        query = select(flatten_audit).where(flatten_audit.c.account == self._account).order_by(flatten_audit.c.id)
        with connect(self._store.engine) as connection, transaction(connection):
            return [
                FlattenAuditRecord(
                    client_order_id=row.client_order_id, symbol=row.symbol, side=Side(row.side), qty=row.qty,
                    position_before=row.position_before, trading_state=TradingState(row.trading_state),
                    authorised_by=row.authorised_by, reason=row.reason, requested_at=row.requested_at,
                )
                for row in connection.execute(query)
            ]

    def _submit_one(self, intent: OrderIntent, refusal_of: Callable[[OrderIntent], str | None]) -> OrderIntent:
        """Create, claim, judge with ``refusal_of`` immediately before the send, send once."""
        stored = self._store.create(intent)
        self._reach(Checkpoint.AFTER_CREATED)
        if stored.state is not IntentState.CREATED:
            return stored
        try:
            submitted = self._store.transition(stored, IntentState.SUBMITTED)
        except ConcurrencyConflict:
            logger.info("OMS_SUBMIT_LOST_RACE", extra={"client_order_id": intent.client_order_id})
            return self._current(intent.client_order_id)
        self._reach(Checkpoint.AFTER_SUBMITTED)
        refusal = refusal_of(submitted)
        if refusal is not None:
            return self._store.transition(submitted, IntentState.REJECTED, error=refusal)
        order = self._reconciler.deliver(submitted)
        if order is None:
            return self._current(intent.client_order_id)
        self._reach(Checkpoint.AFTER_SEND)
        try:
            acked = self._reconciler.adopt(submitted, order)
        except ConcurrencyConflict:
            return self._current(intent.client_order_id)
        logger.info(
            "OMS_INTENT_SUBMITTED",
            extra={"client_order_id": intent.client_order_id, "broker_order_id": order.broker_order_id, "state": acked.state},
        )
        return acked

    def submit_all(self, intents: Iterable[OrderIntent]) -> list[OrderIntent]:
        return [self.submit(intent) for intent in intents]

    def submit_batch(self, intents: Sequence[OrderIntent], rebalance: RebalanceRecord | None = None) -> list[OrderIntent]:
        """Persist ``intents`` (and their ``rebalance``) in one transaction, claim them in a
        second, send them, acknowledge them in a third; returns them as stored after, in order.

        A broker with a batch capability (:class:`~ai_trading.oms.broker.BatchBroker`) gets
        every claimed order in one send, and the trading state is read once, after the
        claims are committed and immediately before that send. That keeps the kill switch's
        guarantee: the batch is one send, so every order the broker accepts was sent after
        that read; a halt committed before it refuses the whole batch (each intent
        REJECTED, nothing sent), and a halt committed after it came after the orders were
        on their way, exactly as for a single :meth:`submit`. A broker without one gets one
        send per order, each after its own read of the state (its sends take time, and a
        halt committed meanwhile must stop the rest). Each order's outcome (accepted,
        duplicate id, rejected, unknown) is resolved by the single path's code. Crash-safe
        like :meth:`submit`: a crash between the steps leaves CREATED or SUBMITTED intents
        that a repeated call (same ids) or reconciliation resolves.
        """
        self._require_trading()
        stored = self._store.create_batch(intents, rebalance=rebalance).intents
        self._reach(Checkpoint.AFTER_CREATED)
        claimed = self._store.claim_batch(stored)
        self._reach(Checkpoint.AFTER_SUBMITTED)
        done: dict[str, OrderIntent] = {}
        acks: list[tuple[OrderIntent, str]] = []
        exposure: dict[str, Decimal] = {}
        sends = [claimed] if isinstance(self._broker, BatchBroker) else [[intent] for intent in claimed]
        for send in sends:
            state = self._trading_state.get(self._account).state
            sending: list[OrderIntent] = []
            for intent in send:
                refusal = self._refusal(intent, state, exposure)
                if refusal is None:
                    sending.append(intent)
                else:
                    done[intent.client_order_id] = self._store.transition(intent, IntentState.REJECTED, error=refusal)
            if not sending:
                continue
            outcomes = self._send(sending)
            self._reach(Checkpoint.AFTER_SEND)
            for intent, outcome in zip(sending, outcomes, strict=True):
                order = self._reconciler.resolve(intent, outcome)
                if order is None:
                    continue
                if order.status in (BrokerOrderStatus.REJECTED, BrokerOrderStatus.CANCELED):
                    self._adopt(intent, order)
                else:
                    acks.append((intent, order.broker_order_id))
        done.update((intent.client_order_id, intent) for intent in self._store.acknowledge_batch(acks))
        logger.info("OMS_BATCH_SUBMITTED", extra={"intents": len(intents), "claimed": len(claimed), "acked": len(acks), "sends": len(sends)})
        # Intents another process holds, or that moved on past what was recorded here, are read back.
        return [done.get(intent.client_order_id) or self._current(intent.client_order_id) for intent in intents]

    def _send(self, intents: Sequence[OrderIntent]) -> list[SubmitOutcome]:
        """One broker send for ``intents``; a failure of the send as a whole leaves every
        order's outcome unknown (resolved by looking each up, as after a single send)."""
        try:
            return submit_many(self._broker, [order_request(intent) for intent in intents])
        except BrokerError as exc:
            unknown = UnknownOutcomeError(f"the batch send of {len(intents)} orders failed: {exc}")
            return [unknown] * len(intents)

    def _adopt(self, intent: OrderIntent, order: BrokerOrder) -> None:
        try:
            self._reconciler.adopt(intent, order)
        except ConcurrencyConflict:
            logger.info("OMS_SUBMIT_LOST_RACE", extra={"client_order_id": intent.client_order_id})

    def _refusal(self, intent: OrderIntent, state: TradingState, exposure: dict[str, Decimal]) -> str | None:
        """Why the trading state forbids sending ``intent`` now, or None when it may go.

        ``exposure`` caches the account's exposures (positions plus open intents other than
        the one judged) for a batch; it is read only in ``REDUCING``.
        """
        if state is TradingState.ACTIVE:
            return None
        if state is TradingState.HALTED:
            reason = f"trading state of account {self._account} is HALTED: no new orders"
        else:
            if not exposure:
                exposure.update(self._exposures())
            change = intent.side.sign * intent.qty
            before = exposure.get(intent.symbol, ZERO) - intent.side.sign * intent.remaining_qty
            if reduces_exposure(before, change):
                return None
            reason = f"trading state of account {self._account} is REDUCING and the order does not reduce {intent.symbol} ({before} -> {before + change})"
        logger.warning("OMS_ORDER_REFUSED_BY_TRADING_STATE", extra={"client_order_id": intent.client_order_id, "state": state, "reason": reason})
        return reason

    def _exposures(self) -> dict[str, Decimal]:
        """Signed position (fills plus adopted holdings) plus signed remaining quantity of
        every open intent, per symbol."""
        exposure = oms_positions(self._store, self._account)
        for intent in self._store.open_intents():
            exposure[intent.symbol] = exposure.get(intent.symbol, ZERO) + intent.side.sign * intent.remaining_qty
        return exposure

    def poll(self) -> ReconciliationReport:
        """Pull acknowledgements, fills, cancels and rejections for every open intent."""
        self._require_trading()
        return self._reconciler.sync()

    def cancel(self, client_order_id: str) -> OrderIntent:
        """Cancel an intent: directly if never sent, else ask the broker (``poll`` sees the result)."""
        intent = self._current(client_order_id)
        if intent.state is IntentState.CREATED:
            return self._store.transition(intent, IntentState.CANCELED)
        if intent.is_final:
            return intent
        if intent.broker_order_id is None:
            raise IllegalTransition(f"intent {client_order_id} is not acknowledged yet: poll() first, then cancel")
        self._broker.cancel(intent.broker_order_id)
        return intent

    def cancel_many(self, client_order_ids: Sequence[str]) -> list[CancelOutcome]:
        """Cancel these intents (no trading state blocks a cancel), then record the
        broker's answers for them without sending anything; outcomes in the given order.
        An intent already final is reported as it is, untouched."""
        before = {cid: self._current(cid) for cid in client_order_ids}
        errors: dict[str, str] = {}
        asked: list[str] = []
        for cid, intent in before.items():
            if intent.is_final:
                continue
            try:
                self.cancel(cid)
            except (IllegalTransition, BrokerError) as exc:
                errors[cid] = str(exc)
            else:
                asked.append(cid)
        self._reconciler.refresh(asked)
        logger.warning("OMS_CANCEL_MANY", extra={"asked": len(asked), "failed": len(errors)})
        return [
            CancelOutcome(intent, None if cid in errors else self._current(cid), errors.get(cid))
            for cid, intent in before.items()
        ]

    def cancel_open(self) -> list[CancelOutcome]:
        """Cancel every open intent (``kill on --cancel-open``, ``oms cancel-all``)."""
        return self.cancel_many([intent.client_order_id for intent in self._store.open_intents()])

    def _current(self, client_order_id: str) -> OrderIntent:
        intent = self._store.get(client_order_id)
        if intent is None:
            raise ReconciliationError(f"intent {client_order_id} vanished from the store")
        return intent
