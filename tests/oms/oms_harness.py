"""Shared pieces of the OMS manager, reconciliation, crash and concurrency tests.

A deterministic batch of intents, a SimBroker on a small synthetic market whose orders
fill over several bars (tight participation cap), a driver that polls until every intent
is final, and the invariants every test checks.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from ai_trading.brokers.sim import SimBroker
from ai_trading.config import ExecutionConfig, ManagerConfig
from ai_trading.data.synthetic import generate_panel
from ai_trading.oms.idempotency import build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import OrderIntent

N_SYMBOLS = 3
N_BARS = 1500
PANEL_SEED = 5
# 0.2% of a bar's volume per order per bar: mid-tier orders of a few hundred shares fill
# in several slices, small-tier ones run out of time in force (partly filled, canceled).
EXECUTION = ExecutionConfig(seed=9, max_participation=0.002, tif_bars=4, latency_sigma=0.3)
NO_GRACE = ManagerConfig(resend_grace_s=0.0)
FINISH_TIMEOUT_S = 60.0
IN_FLIGHT_PAUSE_S = 0.01


def open_broker(path: Path) -> SimBroker:
    return SimBroker(path, generate_panel(N_SYMBOLS, N_BARS, seed=PANEL_SEED), EXECUTION)


def make_intents(batch: int, size: int) -> list[OrderIntent]:
    """The same ``size`` decisions for batch number ``batch`` in any process."""
    symbols = [f"SYN{i:02d}" for i in range(N_SYMBOLS)]
    intents = []
    for k in range(size):
        symbol = symbols[k % N_SYMBOLS]
        side = "buy" if (batch + k) % 3 else "sell"
        qty = Decimal(200 + 150 * ((batch * 7 + k) % 5))
        digest = signal_hash({"batch": batch, "k": k, "symbol": symbol})
        cid = build_client_order_id("crash", symbol, side, "20240105", "1d", digest, qty, 1)
        intents.append(OrderIntent.new(client_order_id=cid, strategy="crash", symbol=symbol, side=side, qty=qty))
    return intents


def finish(manager: OrderManager, broker: SimBroker, intents: list[OrderIntent]) -> None:
    """Submit (idempotently) and poll until every intent is final.

    The market moves on one bar per poll, except while a peer process is still sending
    one of the intents (reported in flight): then the poll is repeated after a pause.
    """
    manager.submit_all(intents)
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while any(not manager.store.get(intent.client_order_id).is_final for intent in intents):  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError(f"intents still open after {FINISH_TIMEOUT_S} s")
        if manager.poll().in_flight:
            time.sleep(IN_FLIGHT_PAUSE_S)
        else:
            broker.advance()


def check_invariants(
    store: IntentStore, broker: SimBroker, intents: list[OrderIntent], decided: set[str] | None = None
) -> list[str]:
    """Zero duplicate orders, zero lost intents, OMS positions == broker positions.

    ``intents`` are checked one by one; ``decided`` (default: their ids) is every client
    order id ever decided against this broker, so any other broker order is a stray.
    """
    problems: list[str] = []
    orders = broker.all_orders()
    per_cid: dict[str, int] = {}
    for order in orders:
        per_cid[order.client_order_id] = per_cid.get(order.client_order_id, 0) + 1
    wanted = {intent.client_order_id for intent in intents} if decided is None else decided
    problems += [f"{cid}: {n} orders at the broker" for cid, n in per_cid.items() if n != 1]
    problems += [f"{cid}: broker order under an id the OMS never decided" for cid in per_cid if cid not in wanted]
    for intent in intents:
        stored = store.get(intent.client_order_id)
        if stored is None:
            problems.append(f"{intent.client_order_id}: intent lost")
            continue
        if not stored.is_final:
            problems.append(f"{intent.client_order_id}: still {stored.state}")
        order = broker.get_order(intent.client_order_id)
        if stored.state.value not in ("REJECTED",) and order is None:
            problems.append(f"{intent.client_order_id}: {stored.state} but never reached the broker")
        if order is not None and order.filled_qty != stored.filled_qty:
            problems.append(f"{intent.client_order_id}: OMS filled {stored.filled_qty}, broker {order.filled_qty}")
    broker_positions = {p.symbol: p.qty for p in broker.positions()}
    if store.positions() != broker_positions:
        problems.append(f"positions differ: OMS {store.positions()} broker {broker_positions}")
    return problems
