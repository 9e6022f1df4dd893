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
one transaction for all CREATED rows (with the rebalance record), one for all claims and
one for all acknowledgements; only the sends are one per order. The optional
``checkpoint`` callback is invoked with a :class:`Checkpoint` name at each step boundary
(operators hook metrics or tracing there; the crash-injection tests kill the process there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from enum import StrEnum

from ai_trading.config import ManagerConfig, RiskConfig
from ai_trading.errors import AiTradingError, ConcurrencyConflict, IllegalTransition, ReconciliationError, TradingBlocked
from ai_trading.oms.broker import Broker
from ai_trading.oms.broker import BrokerOrder, BrokerOrderStatus
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import ZERO, IntentState, OrderIntent, RebalanceRecord, TradingState, reduces_exposure
from ai_trading.oms.reconcile import ReconciliationReport, Reconciler
from ai_trading.oms.trading_state import TradingStateStore

logger = logging.getLogger(__name__)


class Checkpoint(StrEnum):
    """Named points of the submission path, passed to the ``checkpoint`` callback."""

    AFTER_CREATED = "after_created"  # CREATED is persisted
    AFTER_SUBMITTED = "after_submitted"  # SUBMITTED is persisted, nothing sent yet
    AFTER_SEND = "after_send"  # the broker has the order, ACK not yet persisted
    DURING_FILLS = "during_fills"  # one fill recorded, others may still be unrecorded


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
        self._reconciler = Reconciler(store, broker, config, on_fill_recorded=lambda: self._reach(Checkpoint.DURING_FILLS))
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
        refusal = self._refusal(submitted, self._trading_state.get(self._account).state, {})
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
        second, send each once, acknowledge all in a third; returns them as stored after.

        Crash-safe like :meth:`submit`: a crash between the steps leaves CREATED or
        SUBMITTED intents that a repeated call (same ids) or reconciliation resolves.
        """
        self._require_trading()
        stored = self._store.create_batch(intents, rebalance=rebalance).intents
        self._reach(Checkpoint.AFTER_CREATED)
        claimed = self._store.claim_batch(stored)
        self._reach(Checkpoint.AFTER_SUBMITTED)
        acks: list[tuple[OrderIntent, str]] = []
        exposure: dict[str, Decimal] = {}
        for intent in claimed:
            refusal = self._refusal(intent, self._trading_state.get(self._account).state, exposure)
            if refusal is not None:
                self._store.transition(intent, IntentState.REJECTED, error=refusal)
                continue
            order = self._reconciler.deliver(intent)
            if order is None:
                continue
            self._reach(Checkpoint.AFTER_SEND)
            if order.status in (BrokerOrderStatus.REJECTED, BrokerOrderStatus.CANCELED):
                self._adopt(intent, order)
            else:
                acks.append((intent, order.broker_order_id))
        self._store.acknowledge_batch(acks)
        logger.info("OMS_BATCH_SUBMITTED", extra={"intents": len(intents), "claimed": len(claimed), "acked": len(acks)})
        return [self._current(intent.client_order_id) for intent in intents]

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
        """Signed position plus signed remaining quantity of every open intent, per symbol."""
        exposure = dict(self._store.positions())
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

    def _current(self, client_order_id: str) -> OrderIntent:
        intent = self._store.get(client_order_id)
        if intent is None:
            raise ReconciliationError(f"intent {client_order_id} vanished from the store")
        return intent
