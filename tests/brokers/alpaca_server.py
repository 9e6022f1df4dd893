"""A local HTTP server speaking the subset of Alpaca's Trading API v2 and Market Data API v2
JSON that the adapter and the bars client use.

Runs ``http.server`` in a thread on 127.0.0.1. Orders, fills, positions and historical
bars (``server.add_bars``) live in memory; bars are served ``bars_page_size`` at a time
across symbols, as Alpaca pages them, with an opaque ``next_page_token``.
Faults are scripted per request: ``server.fault("POST", "/v2/orders", "accept_then_drop")``
makes the next matching request misbehave once (actions: ``status:<code>``,
``sleep:<seconds>``, ``accept_then_drop``, ``accept_then_sleep:<seconds>``,
``retry_after:<seconds>``: a 429 with that ``Retry-After`` header).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

KEY_ID = "test-key-id"
TIMEFRAMES = re.compile(r"^([1-9]|[1-5][0-9])Min$|^([1-9]|1[0-9]|2[0-3])Hour$|^1Day$")
VALID_SYMBOL = re.compile(r"^[A-Z][A-Z.]{0,9}$")
SECRET_KEY = "test-secret-key-do-not-log"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class AlpacaState:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    activities: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    queries: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bars_page_size: int = 10_000
    faults: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, method: str, path: str) -> str | None:
        with self.lock:
            for index, (m, p, action) in enumerate(self.faults):
                if m == method and path.startswith(p):
                    del self.faults[index]
                    return action
        return None

    def create_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            cid = body.get("client_order_id") or str(uuid.uuid4())
            if any(order["client_order_id"] == cid for order in self.orders.values()):
                return 422, {"code": 40010001, "message": "client_order_id must be unique"}
            if Decimal(body["qty"]) <= 0:
                return 422, {"code": 40010001, "message": "qty must be > 0"}
            now = _now()
            order = {
                "id": str(uuid.uuid4()),
                "client_order_id": cid,
                "created_at": now,
                "updated_at": now,
                "submitted_at": now,
                "filled_at": None,
                "canceled_at": None,
                "asset_class": "us_equity",
                "symbol": body["symbol"],
                "qty": body["qty"],
                "filled_qty": "0",
                "filled_avg_price": None,
                "order_class": "",
                "order_type": body["type"],
                "type": body["type"],
                "side": body["side"],
                "time_in_force": body["time_in_force"],
                "limit_price": body.get("limit_price"),
                "stop_price": None,
                "status": "accepted",
                "extended_hours": False,
            }
            self.orders[order["id"]] = order
            return 200, order

    def execute(self, broker_order_id: str, qty: str, price: str) -> None:
        """Fill part of an order at the 'exchange', as Alpaca reports it."""
        with self.lock:
            order = self.orders[broker_order_id]
            done = Decimal(order["filled_qty"])
            avg = Decimal(order["filled_avg_price"] or "0")
            cum = done + Decimal(qty)
            order["filled_avg_price"] = str((avg * done + Decimal(price) * Decimal(qty)) / cum)
            order["filled_qty"] = str(cum)
            leaves = Decimal(order["qty"]) - cum
            order["status"] = "filled" if leaves == 0 else "partially_filled"
            now = _now()
            self.activities.append(
                {
                    "id": f"{datetime.now(UTC):%Y%m%d%H%M%S%f}::{uuid.uuid4()}",
                    "activity_type": "FILL",
                    "transaction_time": now,
                    "type": "fill" if leaves == 0 else "partial_fill",
                    "price": price,
                    "qty": qty,
                    "side": order["side"],
                    "symbol": order["symbol"],
                    "leaves_qty": str(leaves),
                    "order_id": broker_order_id,
                    "cum_qty": str(cum),
                    "order_status": order["status"],
                }
            )

    def bars_page(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """One page of GET /v2/stocks/bars: bars ordered by symbol then time, ``start`` and
        ``end`` inclusive, at most ``min(limit, bars_page_size)`` bars across symbols."""
        symbols = query.get("symbols", "").split(",")
        bad = [symbol for symbol in symbols if not VALID_SYMBOL.match(symbol)]
        if bad:
            return 422, {"code": 42210000, "message": f"invalid symbol: {bad[0]}"}
        if not TIMEFRAMES.match(query.get("timeframe", "")):
            return 422, {"code": 42210000, "message": f"invalid timeframe: {query.get('timeframe')!r}"}
        start, end = (datetime.fromisoformat(query[key].replace("Z", "+00:00")) for key in ("start", "end"))
        with self.lock:
            selected = [
                (symbol, bar)
                for symbol in sorted(symbols)
                for bar in self.bars.get(symbol, [])
                if start <= datetime.fromisoformat(bar["t"].replace("Z", "+00:00")) <= end
            ]
        offset = int(base64.b64decode(query["page_token"])) if "page_token" in query else 0
        size = min(int(query.get("limit", 1000)), self.bars_page_size)
        page: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in selected[offset : offset + size]:
            page.setdefault(symbol, []).append(bar)
        more = offset + size < len(selected)
        token = base64.b64encode(str(offset + size).encode()).decode() if more else None
        return 200, {"bars": page, "next_page_token": token}

    def positions(self) -> list[dict[str, Any]]:
        net: dict[str, Decimal] = {}
        with self.lock:
            for activity in self.activities:
                sign = 1 if activity["side"] == "buy" else -1
                net[activity["symbol"]] = net.get(activity["symbol"], Decimal(0)) + sign * Decimal(activity["qty"])
        return [
            {"symbol": symbol, "qty": str(qty), "side": "long" if qty > 0 else "short", "avg_entry_price": "100.0"}
            for symbol, qty in net.items()
            if qty != 0
        ]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server signature
        pass

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        state = self.server.state
        url = urlparse(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        state.requests.append((method, url.path))
        state.queries.append((method, url.path, query))
        if self.headers.get("APCA-API-KEY-ID") != KEY_ID or self.headers.get("APCA-API-SECRET-KEY") != SECRET_KEY:
            self._send(401, {"code": 40110000, "message": "request is not authorized"})
            return
        action = state.take_fault(method, url.path) or ""
        kind, _, arg = action.partition(":")
        if kind == "status":
            self._send(int(arg), {"code": 50010000, "message": "internal server error"})
            return
        if kind == "retry_after":
            self._send(429, {"code": 42910000, "message": "too many requests"}, {"Retry-After": arg})
            return
        if kind == "sleep":
            time.sleep(float(arg))
        if method == "POST" and url.path == "/v2/orders":
            status, payload = state.create_order(body)
            if kind == "accept_then_drop":
                self.close_connection = True
                return
            if kind == "accept_then_sleep":
                time.sleep(float(arg))
            self._send(status, payload)
        elif method == "GET" and url.path == "/v2/orders:by_client_order_id":
            found = [o for o in state.orders.values() if o["client_order_id"] == query["client_order_id"]]
            self._send(200, found[0]) if found else self._send(404, {"code": 40410000, "message": "order not found"})
        elif method == "GET" and url.path == "/v2/orders":
            open_orders = [o for o in state.orders.values() if o["status"] in ("accepted", "new", "partially_filled")]
            if "after" in query:
                after = datetime.fromisoformat(query["after"].replace("Z", "+00:00"))
                open_orders = [o for o in open_orders if datetime.fromisoformat(o["submitted_at"].replace("Z", "+00:00")) > after]
            self._send(200, open_orders[: int(query.get("limit", 50))])
        elif method == "DELETE" and url.path.startswith("/v2/orders/"):
            order = state.orders.get(url.path.rsplit("/", 1)[1])
            if order is None:
                self._send(404, {"code": 40410000, "message": "order not found"})
            elif order["status"] not in ("accepted", "new", "partially_filled"):
                self._send(422, {"code": 42210000, "message": "order is not cancelable"})
            else:
                order["status"] = "canceled"
                order["canceled_at"] = _now()
                self._send(204)
        elif method == "GET" and url.path == "/v2/account/activities/FILL":
            items = state.activities
            if "after" in query:
                after = datetime.fromisoformat(query["after"].replace("Z", "+00:00"))
                items = [a for a in items if datetime.fromisoformat(a["transaction_time"].replace("Z", "+00:00")) > after]
            if "page_token" in query:
                ids = [a["id"] for a in items]
                items = items[ids.index(query["page_token"]) + 1 :]
            self._send(200, items[: int(query.get("page_size", 100))])
        elif method == "GET" and url.path == "/v2/positions":
            self._send(200, state.positions())
        elif method == "GET" and url.path == "/v2/stocks/bars":
            self._send(*state.bars_page(query))
        else:
            self._send(404, {"code": 40410000, "message": f"no route {method} {url.path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: AlpacaState

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up is expected here; anything else is reported."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeAlpaca:
    """Start with ``with FakeAlpaca() as server:``; ``server.base_url`` is the API root."""

    def __init__(self) -> None:
        self.state = AlpacaState()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fault(self, method: str, path: str, action: str) -> None:
        self.state.faults.append((method, path, action))

    def add_bars(self, symbol: str, bars: list[dict[str, Any]]) -> None:
        """Bars the market-data endpoint serves for ``symbol`` (Alpaca's JSON: t, o, h, l,
        c, v, n, vw), in time order."""
        with self.state.lock:
            self.state.bars.setdefault(symbol, []).extend(bars)

    def bars_queries(self) -> list[dict[str, str]]:
        """The query of every bars request received, in order."""
        return [query for method, path, query in self.state.queries if (method, path) == ("GET", "/v2/stocks/bars")]

    def count(self, method: str, path: str) -> int:
        return sum(1 for request in self.state.requests if request == (method, path))

    def __enter__(self) -> FakeAlpaca:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
