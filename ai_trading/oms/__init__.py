"""Durable order management: intents, deterministic client order ids, the intent store."""

from ai_trading.oms.idempotency import (
    ClientOrderId,
    build_client_order_id,
    is_client_order_id,
    parse_client_order_id,
    signal_hash,
)
from ai_trading.oms.broker import (
    BatchBroker,
    Broker,
    BrokerFill,
    BrokerOrder,
    BrokerOrderStatus,
    BrokerPosition,
    OrderRequest,
    SubmitOutcome,
    submit_many,
)
from ai_trading.oms.intent_store import FillResult, IntentStore
from ai_trading.oms.models import (
    FINAL_STATES,
    TRANSITIONS,
    Fill,
    ForeignOrder,
    IntentEvent,
    IntentState,
    OrderIntent,
    OrderType,
    Side,
    TimeInForce,
)
from ai_trading.oms.manager import Checkpoint, OrderManager
from ai_trading.oms.reconcile import ReconciliationReport, Reconciler

__all__ = [
    "BatchBroker",
    "Broker",
    "BrokerFill",
    "BrokerOrder",
    "BrokerOrderStatus",
    "BrokerPosition",
    "Checkpoint",
    "OrderManager",
    "OrderRequest",
    "ReconciliationReport",
    "Reconciler",
    "FINAL_STATES",
    "TRANSITIONS",
    "ClientOrderId",
    "Fill",
    "FillResult",
    "ForeignOrder",
    "IntentEvent",
    "IntentState",
    "IntentStore",
    "OrderIntent",
    "OrderType",
    "Side",
    "SubmitOutcome",
    "TimeInForce",
    "build_client_order_id",
    "is_client_order_id",
    "parse_client_order_id",
    "signal_hash",
    "submit_many",
]
