"""The order manager: drives each intent from decision to final state, crash-safely.

Order of durable steps for one intent (write-ahead, so a crash anywhere is recoverable):

1. persist CREATED (idempotent: the same CIDv2 id names the same order in any process);
2. persist SUBMITTED (the guarded transition is the claim: of two processes working the
   same intent only one wins it, so only one ever sends);
3. send under the intent's own client_order_id;
4. persist ACKED with the broker's order id;
5. record fills as they arrive (polling), up to FILLED / CANCELED / REJECTED.

Nothing can be sent before :meth:`OrderManager.start` has reconciled with the broker and
passed; until then :class:`~ai_trading.errors.TradingBlocked` is raised. The optional
``checkpoint`` callback is invoked with a :class:`Checkpoint` name at each step boundary
(operators hook metrics or tracing there; the crash-injection tests kill the process there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from enum import StrEnum

from ai_trading.config import ManagerConfig
from ai_trading.errors import AiTradingError, ConcurrencyConflict, IllegalTransition, ReconciliationError, TradingBlocked
from ai_trading.oms.broker import Broker
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import IntentState, OrderIntent
from ai_trading.oms.reconcile import ReconciliationReport, Reconciler

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
    """

    def __init__(
        self,
        store: IntentStore,
        broker: Broker,
        config: ManagerConfig,
        checkpoint: Callable[[Checkpoint], None] | None = None,
    ) -> None:
        self._store = store
        self._broker = broker
        self._checkpoint = checkpoint
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
