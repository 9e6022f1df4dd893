"""Shared test tools: a fake clock and a local webhook server that deduplicates by key."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


class FakeClock:
    """Time that moves only when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebhookLog:
    """What the server saw. ``behaviours`` is consumed one per request: ``ok``, ``500``,
    ``400``, ``slow`` (answers 200 after ``slow_s``), ``timeout`` (processes the request,
    then answers 200 only after ``hang_s``: the client has given up by then), ``hang``
    (records receipt, never answers in time)."""

    behaviours: list[str] = field(default_factory=list)
    slow_s: float = 0.2
    hang_s: float = 2.0
    received: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unique_accepted(self) -> set[str]:
        return set(self.accepted)


def serve_webhook(log: WebhookLog, port: int = 0) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; the receiver deduplicates on Idempotency-Key
    (a key it has accepted is answered 200 and not counted again)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers["Idempotency-Key"]
            with log.lock:
                behaviour = log.behaviours.pop(0) if log.behaviours else "ok"
                log.received[key] += 1
                log.headers.append(dict(self.headers))
                log.payloads[key] = body
                if behaviour in ("ok", "slow", "timeout", "hang") and key not in log.accepted:
                    log.accepted[key] += 1
            if behaviour in ("500", "400"):
                self._answer(int(behaviour))
                return
            if behaviour != "ok":
                time.sleep({"slow": log.slow_s, "timeout": log.hang_s, "hang": log.hang_s}[behaviour])
            self._answer(200)

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
