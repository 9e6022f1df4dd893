"""A process that sends one SimBroker batch and SIGKILLs itself inside it or right after.

Run as ``python -m tests.brokers.batch_crash_child --db PATH --kill-after K``: with K > 0
the process dies after the K-th order of the batch was booked inside the broker's open
transaction; with K = 0 right after ``submit_batch`` returned.
"""

from __future__ import annotations

import argparse
import os
import signal
from decimal import Decimal
from pathlib import Path

from ai_trading.brokers.sim import SimBroker
from ai_trading.config import ExecutionConfig
from ai_trading.data.synthetic import generate_panel
from ai_trading.oms.broker import OrderRequest

BATCH_SIZE = 8
EXECUTION = ExecutionConfig(seed=4, tif_bars=4, max_participation=0.01)


def open_broker(path: Path) -> SimBroker:
    return SimBroker(path, generate_panel(4, 80, seed=2), EXECUTION)


def requests() -> list[OrderRequest]:
    """The batch every test sends: both sides, all four symbols."""
    return [
        OrderRequest(client_order_id=f"batch-{k}", symbol=f"SYN0{k % 4}", side="buy" if k % 3 else "sell", qty=Decimal(100 + 37 * k))
        for k in range(BATCH_SIZE)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--kill-after", type=int, required=True)
    args = parser.parse_args()
    broker = open_broker(args.db)
    broker.advance(10)
    if args.kill_after > 0:
        booked = {"count": 0}
        store_fills = SimBroker._store_fills  # called once per order booked, inside the transaction

        def store_then_maybe_die(db, order_id, fills):  # type: ignore[no-untyped-def]
            store_fills(db, order_id, fills)
            booked["count"] += 1
            if booked["count"] == args.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        SimBroker._store_fills = staticmethod(store_then_maybe_die)  # type: ignore[method-assign]
    broker.submit_batch(requests())
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
