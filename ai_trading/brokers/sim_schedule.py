"""How the :class:`~ai_trading.brokers.sim.SimBroker` turns orders into scheduled fills.

The seeded :class:`~ai_trading.execution.simulator.ExecutionSimulator` fills the orders;
here its float results become exact decimals (the cumulative filled quantity rounded to
:data:`QTY_QUANTUM`, so the fills of a filled order sum to its quantity) and each order's
last bar is fixed once the bars of its whole time in force exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from ai_trading.execution.simulator import ExecutionSimulator
from ai_trading.oms.broker import OrderRequest
from ai_trading.types import BUY, LIMIT, MARKET, SELL, MarketPanel, OrderBatch
from kernels.layout import S_FILLED, S_NO_DECISION_PRICE

QTY_QUANTUM = Decimal("0.000001")  # shares
PRICE_QUANTUM = Decimal("0.0001")  # currency per share
FEE_QUANTUM = Decimal("0.0001")  # currency


def exact(value: float, quantum: Decimal) -> Decimal:
    """A simulated float as an exact decimal at ``quantum`` (half-even)."""
    return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN)


def simulator_order_id(client_order_id: str) -> int:
    """A positive int64 derived from the client id: keys the simulator's random draws."""
    return int.from_bytes(hashlib.sha256(client_order_id.encode()).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class ScheduledOrder:
    """One order's simulated fills (cumulative quantities already made exact)."""

    fills: list[tuple[int, Decimal, Decimal, Decimal]]  # ts, qty, price, fee
    expire_ts: int | None  # the last bar of its life; None while bars are still missing
    rejected: bool
    simulated_through: int


def schedule_orders(
    simulator: ExecutionSimulator, requests: Sequence[OrderRequest], decision_ts: Sequence[int], panel: MarketPanel
) -> list[ScheduledOrder]:
    """Each order's fills on ``panel``, decided at its bar time (no bar there: rejected),
    from ONE simulator call: the draws are keyed per order, so a batch schedules every
    order exactly as it would be scheduled alone."""
    symbol_index = {symbol: s for s, symbol in enumerate(panel.symbols)}
    position = np.searchsorted(panel.ts, np.asarray(decision_ts, dtype=np.int64), side="right") - 1
    on_bar = (position >= 0) & (panel.ts[np.maximum(position, 0)] == np.asarray(decision_ts, dtype=np.int64))
    bars = np.where(on_bar, position, 0)
    tif = simulator.config.tif_bars
    batch = OrderBatch(
        order_id=[simulator_order_id(r.client_order_id) for r in requests],
        symbol=[symbol_index[r.symbol] for r in requests],
        bar=bars,
        side=[BUY if r.side == "buy" else SELL for r in requests],
        qty=[float(r.qty) for r in requests],
        order_type=[LIMIT if r.order_type == "limit" else MARKET for r in requests],
        limit_price=[float(r.limit_price) if r.limit_price is not None else np.nan for r in requests],
        tif_bars=[tif] * len(requests),
    )
    result = simulator.simulate(batch, panel)
    last = int(panel.ts[-1])
    scheduled = []
    for k, request in enumerate(requests):
        status = int(result.status[k])
        if not on_bar[k] or status == S_NO_DECISION_PRICE:
            scheduled.append(ScheduledOrder([], int(decision_ts[k]), True, last))
            continue
        mine = np.flatnonzero(result.fills.order_id == batch.order_id[k])
        fills: list[tuple[int, Decimal, Decimal, Decimal]] = []
        cumulative = Decimal(0)
        for j, index in enumerate(mine):
            final = j == len(mine) - 1 and status == S_FILLED
            target = request.qty if final else min(request.qty, exact(float(np.sum(result.fills.qty[mine[: j + 1]])), QTY_QUANTUM))
            if target <= cumulative:
                continue
            fills.append((
                int(result.fills.ts[index]), target - cumulative,
                exact(result.fills.price[index], PRICE_QUANTUM), exact(result.fills.fee[index], FEE_QUANTUM),
            ))  # fmt: skip
            cumulative = target
        complete = panel.n_bars - 1 - int(bars[k]) >= tif or status == S_FILLED
        expire = int(panel.ts[max(int(result.last_bar[k]), int(bars[k]))]) if complete else None
        scheduled.append(ScheduledOrder(fills, expire, False, last))
    return scheduled

