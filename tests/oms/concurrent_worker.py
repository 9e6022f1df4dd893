"""One of several processes working the same intents: ``python -m tests.oms.concurrent_worker``.

Opens the shared store and SimBroker, reconciles, waits at a file barrier until every
worker is ready, then submits the same batches and polls them to the end. Prints one JSON
line: how many intents this worker sent itself (won the CREATED -> SUBMITTED claim).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ai_trading.config import ManagerConfig, OmsConfig
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import Checkpoint, OrderManager
from tests.oms.oms_harness import finish, make_intents, open_broker

BARRIER_TIMEOUT_S = 60.0


def _barrier(directory: Path, name: str, parties: int) -> None:
    (directory / f"{name}.ready").touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while len(list(directory.glob("*.ready"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier in {directory}: other workers never arrived")
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--broker-db", type=Path, required=True)
    parser.add_argument("--barrier", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=6)
    args = parser.parse_args()
    sent = 0

    def count_sends(point: Checkpoint) -> None:
        nonlocal sent
        sent += point is Checkpoint.AFTER_SUBMITTED

    with IntentStore.open(OmsConfig(dsn=args.dsn)) as store:
        broker = open_broker(args.broker_db)
        # The default resend grace: a live peer's in-flight send is never raced by a resend.
        manager = OrderManager(store, broker, ManagerConfig(), checkpoint=count_sends)
        report = manager.start()
        _barrier(args.barrier, args.name, args.parties)
        for batch in range(args.batches):
            finish(manager, broker, make_intents(1000 + batch, args.batch_size))
    print(json.dumps({"name": args.name, "sent": sent, "start_passed": report.passed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
