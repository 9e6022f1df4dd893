"""A test double of the `Broker` protocol that records every request and accepts it.

Orders stay open (nothing fills): enough to see exactly what reached the broker.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ai_trading.errors import BrokerError, DuplicateOrderError
from ai_trading.oms.broker import BrokerFill, BrokerOrder, BrokerOrderStatus, BrokerPosition, OrderRequest


class RecordingBroker:
    def __init__(self) -> None:
        self.requests: list[OrderRequest] = []
        self._orders: dict[str, BrokerOrder] = {}

    def submit(self, request: OrderRequest) -> BrokerOrder:
        if request.client_order_id in self._orders:
            raise DuplicateOrderError(f"duplicate {request.client_order_id}")
        self.requests.append(request)
        order = BrokerOrder(
            broker_order_id=f"rec-{len(self._orders)}",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            filled_qty=Decimal(0),
            filled_avg_price=None,
            status=BrokerOrderStatus.NEW,
            order_type=request.order_type,
            limit_price=request.limit_price,
            submitted_at=datetime.now(UTC),
        )
        self._orders[request.client_order_id] = order
        return order

    def cancel(self, broker_order_id: str) -> None:
        raise BrokerError("the recording broker does not cancel")

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self._orders.get(client_order_id)

    def list_open_orders(self) -> list[BrokerOrder]:
        return list(self._orders.values())

    def list_fills(self, since: datetime | None = None) -> list[BrokerFill]:
        return []

    def positions(self) -> list[BrokerPosition]:
        return []
