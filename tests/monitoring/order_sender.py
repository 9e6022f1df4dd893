"""A second trading process for the kill-switch tests and benchmark.

``python -m tests.monitoring.order_sender DSN SIM_DB ACCOUNT MAX_ORDERS`` sends new orders
one after another through an :class:`OrderManager` on a SimBroker, printing one JSON line
per order (``k``, ``state``, ``t_start``/``t_end``: wall-clock seconds around the submit)
after a first ``{"ready": true}``; it stops after ``STOP_AFTER_REFUSALS`` refusals in a row
(the kill switch is on) or ``MAX_ORDERS`` orders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ai_trading.brokers.sim import SimBroker
from ai_trading.config import ExecutionConfig, ManagerConfig, OmsConfig
from ai_trading.data.synthetic import generate_panel
from ai_trading.oms.idempotency import build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import IntentState, OrderIntent

STOP_AFTER_REFUSALS = 20
SYMBOLS = ("SYN00", "SYN01", "SYN02")
ROOT = Path(__file__).resolve().parents[2]
WARMUP_ORDERS = 10
RACE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Race:
    """One sender run with the kill switch engaged while it sends.

    :param orders: the sender's order lines, in order
    :param engaged_at: wall time just before the switch was engaged
    :param engaged_by: wall time the engaging call had returned (the state was committed)
    """

    orders: list[dict[str, Any]]
    engaged_at: float
    engaged_by: float

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["state"] != "REJECTED"]

    @property
    def refused(self) -> list[dict[str, Any]]:
        return [o for o in self.orders if o["state"] == "REJECTED"]

    def latency_s(self, committed_at: float) -> float:
        """From the state change committed to the end of the last order accepted (<= 0:
        the last one was done before)."""
        return max(o["t_end"] for o in self.accepted) - committed_at


def race(dsn: str, sim_db: Path, account: str, engage: Callable[[], object], max_orders: int = 5000) -> Race:
    """Run the sender in a subprocess, call ``engage`` once it has sent ``WARMUP_ORDERS``,
    and collect every order line until it stops."""
    env = {k: v for k, v in os.environ.items() if k != "AI_TRADING_OMS_DSN"}
    command = [sys.executable, "-m", "tests.monitoring.order_sender", dsn, str(sim_db), account, str(max_orders)]
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    orders: list[dict[str, Any]] = []
    deadline = time.monotonic() + RACE_TIMEOUT_S
    try:
        for line in child.stdout:
            document = json.loads(line)
            if "k" in document:
                orders.append(document)
            if len(orders) == WARMUP_ORDERS:
                break
        engaged_at = time.time()
        engage()
        engaged_by = time.time()
        for line in child.stdout:
            orders.append(json.loads(line))
            if time.monotonic() > deadline:
                raise AssertionError(f"the sender still sends {RACE_TIMEOUT_S} s later")
        assert child.wait(timeout=RACE_TIMEOUT_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return Race(orders, engaged_at, engaged_by)


def run(dsn: str, sim_db: Path, account: str, max_orders: int) -> None:
    store = IntentStore.open(OmsConfig(dsn=dsn))
    broker = SimBroker(sim_db, generate_panel(len(SYMBOLS), 300, seed=5), ExecutionConfig(seed=9))
    manager = OrderManager(store, broker, ManagerConfig(resend_grace_s=0.0), account=account)
    manager.start()
    print(json.dumps({"ready": True}), flush=True)
    refusals = 0
    for k in range(max_orders):
        symbol = SYMBOLS[k % len(SYMBOLS)]
        digest = signal_hash({"pid": os.getpid(), "k": k})
        cid = build_client_order_id("sender", symbol, "buy", "20240105", "1d", digest, 1, 1)
        intent = OrderIntent.new(client_order_id=cid, strategy="sender", symbol=symbol, side="buy", qty=Decimal(1))
        started = time.time()
        stored = manager.submit(intent)
        print(json.dumps({"k": k, "state": stored.state.value, "t_start": started, "t_end": time.time()}), flush=True)
        refusals = refusals + 1 if stored.state is IntentState.REJECTED else 0
        if refusals >= STOP_AFTER_REFUSALS:
            break
    store.close()


if __name__ == "__main__":
    run(sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
