"""Alpaca Trading API v2 adapter over httpx.

Safe requests (GET, DELETE) are retried after transport errors, 429 and 5xx with an
exponential backoff (:mod:`ai_trading.http_retry`). An order submission (POST) is sent
exactly once: if the connection failed before the request left, it is a plain
:class:`BrokerError`; if it may have left (read timeout, dropped connection, 5xx) it is an
:class:`UnknownOutcomeError`, which the OMS resolves by looking the order up by
``client_order_id`` and, if it never arrived, resending under the same id (Alpaca refuses
a second order with that id: HTTP 422).

Credentials go only into request headers; they are never logged or put in errors.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from ai_trading.config import AlpacaConfig
from ai_trading.errors import BrokerError, ConfigError, DuplicateOrderError, OrderRejected, UnknownOutcomeError
from ai_trading.http_retry import RetryPolicy, error_message, request_with_retries
from ai_trading.oms.broker import BrokerFill, BrokerOrder, BrokerOrderStatus, BrokerPosition, OrderRequest

logger = logging.getLogger(__name__)

# Alpaca order statuses -> what the OMS needs. Open statuses with nothing filled are NEW;
# `replaced` ends this order (its replacement is a new order), so it counts as canceled.
_FINAL_STATUSES: dict[str, BrokerOrderStatus] = {
    "filled": BrokerOrderStatus.FILLED,
    "canceled": BrokerOrderStatus.CANCELED,
    "expired": BrokerOrderStatus.CANCELED,
    "replaced": BrokerOrderStatus.CANCELED,
    "rejected": BrokerOrderStatus.REJECTED,
}
_OPEN_STATUSES = frozenset(
    {
        "new",
        "partially_filled",
        "done_for_day",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "pending_cancel",
        "pending_replace",
        "stopped",
        "suspended",
        "calculated",
        "held",
    }
)
# The request cannot have reached the server: safe to report as "not sent".
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
ORDERS_PAGE_LIMIT = 500
FILLS_PAGE_SIZE = 100


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _order_from_json(data: dict[str, Any]) -> BrokerOrder:
    raw_status = str(data["status"])
    filled_qty = Decimal(str(data.get("filled_qty") or "0"))
    if raw_status in _FINAL_STATUSES:
        status = _FINAL_STATUSES[raw_status]
    elif raw_status in _OPEN_STATUSES:
        status = BrokerOrderStatus.PARTIALLY_FILLED if filled_qty > 0 else BrokerOrderStatus.NEW
    else:
        raise BrokerError(f"Alpaca order {data.get('id')} has an unknown status {raw_status!r}")
    return BrokerOrder(
        broker_order_id=str(data["id"]),
        client_order_id=str(data["client_order_id"]),
        symbol=str(data["symbol"]),
        side=str(data["side"]),
        qty=Decimal(str(data["qty"])),
        filled_qty=filled_qty,
        filled_avg_price=_decimal(data.get("filled_avg_price")),
        status=status,
        order_type=str(data.get("type") or data.get("order_type")),
        limit_price=_decimal(data.get("limit_price")),
        submitted_at=_timestamp(str(data.get("submitted_at") or data["created_at"])),
    )


def _fill_from_json(data: dict[str, Any]) -> BrokerFill:
    return BrokerFill(
        fill_id=str(data["id"]),
        broker_order_id=str(data["order_id"]),
        client_order_id=None,
        symbol=str(data["symbol"]),
        side=str(data["side"]),
        qty=Decimal(str(data["qty"])),
        price=Decimal(str(data["price"])),
        fee=Decimal("0"),
        ts=_timestamp(str(data["transaction_time"])),
    )


def _position_from_json(data: dict[str, Any]) -> BrokerPosition:
    size = abs(Decimal(str(data["qty"])))
    return BrokerPosition(
        symbol=str(data["symbol"]).strip(),
        qty=size if data.get("side", "long") == "long" else -size,
        avg_entry_price=_decimal(data.get("avg_entry_price")),
    )


class AlpacaBroker:
    """The :class:`~ai_trading.oms.broker.Broker` for Alpaca's Trading API v2.

    :param config: base URL, credentials, timeout and retry policy (see ``AlpacaConfig``;
        credentials come from ``APCA_API_KEY_ID`` and ``APCA_API_SECRET_KEY``)
    """

    def __init__(self, config: AlpacaConfig) -> None:
        if not config.key_id or not config.secret_key:
            raise ConfigError("Alpaca credentials missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        self._config = config
        self._client = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            timeout=httpx.Timeout(config.timeout_s),
            headers={"APCA-API-KEY-ID": config.key_id, "APCA-API-SECRET-KEY": config.secret_key},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AlpacaBroker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _safe_request(self, method: str, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """An idempotent request, retried after transport errors, 429 and 5xx."""
        return request_with_retries(
            self._client,
            method,
            path,
            params=params,
            policy=RetryPolicy(self._config.max_retries, self._config.retry_backoff_s),
            error=BrokerError,
            service="Alpaca",
            event="ALPACA_REQUEST_RETRY",
        )

    def _json(self, response: httpx.Response, what: str) -> Any:
        if response.status_code == 401:
            raise BrokerError(f"Alpaca refused the credentials ({what}): check APCA_API_KEY_ID/APCA_API_SECRET_KEY")
        if response.status_code >= 400:
            raise BrokerError(f"Alpaca {what}: HTTP {response.status_code}: {error_message(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise BrokerError(f"Alpaca {what}: response is not JSON") from exc

    def submit(self, request: OrderRequest) -> BrokerOrder:
        """POST /v2/orders once; never retried (see the module docstring)."""
        body: dict[str, Any] = {
            "symbol": request.symbol,
            "qty": str(request.qty),
            "side": request.side,
            "type": request.order_type,
            "time_in_force": request.time_in_force,
            "client_order_id": request.client_order_id,
        }
        if request.limit_price is not None:
            body["limit_price"] = str(request.limit_price)
        cid = request.client_order_id
        try:
            response = self._client.post("/v2/orders", json=body)
        except _NOT_SENT_ERRORS as exc:
            raise BrokerError(f"order {cid} was not sent: cannot reach Alpaca ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise UnknownOutcomeError(
                f"order {cid}: {type(exc).__name__} after the request was sent; look it up by client_order_id"
            ) from exc
        status = response.status_code
        if status >= 500:
            raise UnknownOutcomeError(f"order {cid}: Alpaca answered HTTP {status}; look it up by client_order_id")
        message = error_message(response) if status >= 400 else ""
        if status == 422 and "client_order_id" in message:
            raise DuplicateOrderError(f"Alpaca already holds an order with client_order_id {cid}: {message}")
        if status in (403, 422):
            raise OrderRejected(f"Alpaca rejected order {cid}: HTTP {status}: {message}")
        order = _order_from_json(self._json(response, f"submit {cid}"))
        logger.info("ALPACA_ORDER_SUBMITTED", extra={"client_order_id": cid, "broker_order_id": order.broker_order_id})
        return order

    def cancel(self, broker_order_id: str) -> None:
        response = self._safe_request("DELETE", f"/v2/orders/{broker_order_id}")
        if response.status_code not in (200, 204):
            raise BrokerError(
                f"Alpaca cannot cancel order {broker_order_id}: HTTP {response.status_code}: {error_message(response)}"
            )
        logger.info("ALPACA_ORDER_CANCEL_REQUESTED", extra={"broker_order_id": broker_order_id})

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        response = self._safe_request(
            "GET", "/v2/orders:by_client_order_id", params={"client_order_id": client_order_id}
        )
        if response.status_code == 404:
            return None
        return _order_from_json(self._json(response, f"get order {client_order_id}"))

    def list_open_orders(self) -> list[BrokerOrder]:
        """GET /v2/orders?status=open, paged by submission time (``after`` is exclusive)."""
        orders: dict[str, BrokerOrder] = {}
        params: dict[str, Any] = {"status": "open", "limit": ORDERS_PAGE_LIMIT, "direction": "asc", "nested": "false"}
        while True:
            page = [_order_from_json(item) for item in self._json(self._safe_request("GET", "/v2/orders", params), "list open orders")]
            fresh = [order for order in page if order.broker_order_id not in orders]
            orders.update((order.broker_order_id, order) for order in fresh)
            if len(page) < ORDERS_PAGE_LIMIT or not fresh:
                return list(orders.values())
            params["after"] = page[-1].submitted_at.isoformat()

    def list_fills(self, since: datetime | None = None) -> list[BrokerFill]:
        """GET /v2/account/activities/FILL oldest first, paged by ``page_token``."""
        params: dict[str, Any] = {"direction": "asc", "page_size": FILLS_PAGE_SIZE}
        if since is not None:
            # Alpaca's `after` is exclusive: step back so fills at exactly `since` are included.
            params["after"] = (since - timedelta(seconds=1)).isoformat()
        fills: list[BrokerFill] = []
        while True:
            page = self._json(self._safe_request("GET", "/v2/account/activities/FILL", params), "list fills")
            fills.extend(_fill_from_json(item) for item in page)
            if len(page) < FILLS_PAGE_SIZE:
                break
            params["page_token"] = page[-1]["id"]
        return [fill for fill in fills if since is None or fill.ts >= since]

    def positions(self) -> list[BrokerPosition]:
        items = self._json(self._safe_request("GET", "/v2/positions"), "list positions")
        return [position for position in map(_position_from_json, items) if position.qty != 0]
