"""Durable order management: intents, deterministic client order ids, the intent store."""

from ai_trading.oms.idempotency import (
    ClientOrderId,
    build_client_order_id,
    is_client_order_id,
    parse_client_order_id,
    signal_hash,
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

__all__ = [
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
    "TimeInForce",
    "build_client_order_id",
    "is_client_order_id",
    "parse_client_order_id",
    "signal_hash",
]
