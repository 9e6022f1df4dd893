"""A local HTTP server speaking the subset of Alpaca's Trading API v2 and Market Data API v2
JSON that the adapter and the bars client use.

Runs ``http.server`` in a thread on 127.0.0.1. Orders, fills, positions and historical
bars (``server.add_bars``) live in memory; bars are served ``bars_page_size`` at a time
across symbols, as Alpaca pages them, with an opaque ``next_page_token``.
Faults are scripted per request: ``server.fault("POST", "/v2/orders", "accept_then_drop")``
makes the next matching request misbehave once (actions: ``status:<code>``,
``sleep:<seconds>``, ``accept_then_drop``, ``accept_then_sleep:<seconds>``,
``retry_after:<seconds>``: a 429 with that ``Retry-After`` header).

Time: by default the server stamps orders and fills with the real time. ``set_time`` gives it
a time of its own (moved by ``advance``): ``GET /v2/clock`` answers from it and the trading
calendar (``set_sessions``; ``GET /v2/calendar``), orders and fills are stamped with it, and a
bar added with ``visible_from`` is served only from that moment on (a bar is published
once it closed). ``POST /_test/advance?seconds=S`` moves that time from another process.
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
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

KEY_ID = "test-key-id"
TIMEFRAMES = re.compile(r"^([1-9]|[1-5][0-9])Min$|^([1-9]|1[0-9]|2[0-3])Hour$|^1Day$")
VALID_SYMBOL = re.compile(r"^[A-Z][A-Z.]{0,9}$")
SECRET_KEY = "test-secret-key-do-not-log"
NEW_YORK = ZoneInfo("America/New_York")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FakeSession:
    """A session of the fake calendar, in New York time as Alpaca lists it."""

    day: date
    open: str = "09:30"
    close: str = "16:00"

    def bounds(self) -> tuple[datetime, datetime]:
        opens, closes = (datetime.combine(self.day, clock_time.fromisoformat(t), NEW_YORK) for t in (self.open, self.close))
        return opens.astimezone(UTC), closes.astimezone(UTC)


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
    clock: datetime | None = None
    sessions: list[FakeSession] = field(default_factory=list)
    visible_from: dict[tuple[str, str], datetime] = field(default_factory=dict)
    opening_prices: dict[date, dict[str, str]] = field(default_factory=dict)
    bounds: list[tuple[date, datetime, datetime]] = field(default_factory=list)

    def now(self) -> datetime:
        return self.clock if self.clock is not None else datetime.now(UTC)

    def _now(self) -> str:
        return _stamp(self.now())

    def advance(self, seconds: float) -> None:
        """Move the server's time; every session open it passes fills the open orders at
        that session's ``opening_prices`` (the exchange's opening auction)."""
        with self.lock:
            before = self.now()
            self.clock = before + timedelta(seconds=seconds)
            opened = [day for day, opens, _ in self.bounds if before < opens <= self.clock]
        for day in opened:
            prices = self.opening_prices.get(day, {})
            for order in [o for o in list(self.orders.values()) if o["status"] in ("accepted", "new", "partially_filled")]:
                if order["symbol"] in prices:
                    leaves = Decimal(order["qty"]) - Decimal(order["filled_qty"])
                    self.execute(order["id"], str(leaves), prices[order["symbol"]])

    def market_clock(self) -> dict[str, Any]:
        now = self.now()
        bounds = [(opens, closes) for _, opens, closes in self.bounds]
        later_opens = [opens for opens, _ in bounds if opens > now]
        later_closes = [closes for _, closes in bounds if closes > now]
        if not later_opens or not later_closes:
            raise LookupError("the fake calendar ends before the server's time: add sessions")
        return {
            "timestamp": now.astimezone(NEW_YORK).isoformat(),
            "is_open": any(opens <= now < closes for opens, closes in bounds),
            "next_open": min(later_opens).astimezone(NEW_YORK).isoformat(),
            "next_close": min(later_closes).astimezone(NEW_YORK).isoformat(),
        }

    def calendar(self, query: dict[str, str]) -> list[dict[str, str]]:
        start, end = date.fromisoformat(query["start"]), date.fromisoformat(query["end"])
        return [
            {"date": s.day.isoformat(), "open": s.open, "close": s.close, "session_open": "0400", "session_close": "2000",
             "settlement_date": (s.day + timedelta(days=1)).isoformat()}
            for s in self.sessions if start <= s.day <= end
        ]  # fmt: skip

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
            now = self._now()
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
            now = self._now()
            self.activities.append(
                {
                    "id": f"{self.now():%Y%m%d%H%M%S%f}::{uuid.uuid4()}",
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
        now = self.now()
        with self.lock:
            selected = [
                (symbol, bar)
                for symbol in sorted(symbols)
                for bar in self.bars.get(symbol, [])
                if start <= datetime.fromisoformat(bar["t"].replace("Z", "+00:00")) <= end
                and self.visible_from.get((symbol, bar["t"]), now) <= now
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
                order["canceled_at"] = state._now()
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
        elif method == "POST" and url.path == "/_test/advance":
            state.advance(float(query["seconds"]))
            self._send(200, {"timestamp": state._now()})
        elif method == "GET" and url.path == "/v2/clock":
            self._send(200, state.market_clock())
        elif method == "GET" and url.path == "/v2/calendar":
            self._send(200, state.calendar(query))
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

    def add_bars(self, symbol: str, bars: list[dict[str, Any]], visible_from: list[datetime] | None = None) -> None:
        """Bars the market-data endpoint serves for ``symbol`` (Alpaca's JSON: t, o, h, l,
        c, v, n, vw), in time order; ``visible_from``, one per bar: when each is published."""
        with self.state.lock:
            self.state.bars.setdefault(symbol, []).extend(bars)
            for bar, moment in zip(bars, visible_from or (), strict=False):
                self.state.visible_from[(symbol, bar["t"])] = moment

    def set_time(self, moment: datetime) -> None:
        """Give the server a time of its own (see the module docstring)."""
        self.state.clock = moment.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self.state.advance(seconds)

    def set_sessions(self, sessions: list[FakeSession]) -> None:
        with self.state.lock:
            self.state.sessions = sorted(sessions, key=lambda s: s.day)
            self.state.bounds = [(s.day, *s.bounds()) for s in self.state.sessions]

    def open_orders(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(o) for o in self.state.orders.values() if o["status"] in ("accepted", "new", "partially_filled")]

    def client_order_ids(self) -> list[str]:
        """Every order's client_order_id, in arrival order (duplicates would show twice)."""
        with self.state.lock:
            return [o["client_order_id"] for o in self.state.orders.values()]

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
