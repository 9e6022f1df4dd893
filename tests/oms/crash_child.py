"""Crash-injection runner: processes that submit through the SimBroker and die by SIGKILL.

Run as ``python -m tests.oms.crash_child --dsn URL --broker-db PATH --kills N``. The runner
imports and warms everything once, then for each round forks worker processes (a fork of
a warmed interpreter costs milliseconds, so hundreds of kills stay cheap):

1. one or more *crashing* workers, each armed with a checkpoint name and an occurrence: the
   manager's checkpoint callback sends SIGKILL to its own process the n-th time that point
   is reached (after CREATED persisted; after SUBMITTED persisted, before send; after send,
   before ACK persisted; while recording fills);
2. a *finishing* worker: a new process that reconciles (it must pass) and finishes the batch;
3. the invariants (no duplicate broker order, no lost intent, OMS positions == broker's).

One JSON line per round goes to stdout; the runner exits 1 if any round broke a guarantee.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
from pathlib import Path

import numpy as np

from ai_trading.config import OmsConfig
from ai_trading.execution.simulator import ExecutionSimulator
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import Checkpoint, OrderManager
from ai_trading.oms.models import OrderIntent
from ai_trading.types import OrderBatch
from tests.oms.oms_harness import EXECUTION, NO_GRACE, check_invariants, finish, make_intents, open_broker

CHECKPOINTS = tuple(Checkpoint)
EXIT_RECONCILIATION_FAILED = 3
MAX_EXTRA_CRASHES = 3


def _armed(point: Checkpoint, occurrence: int) -> object:
    """A checkpoint callback that SIGKILLs this process at the n-th ``point``."""
    seen = {"count": 0}

    def checkpoint(reached: Checkpoint) -> None:
        if reached is point:
            seen["count"] += 1
            if seen["count"] == occurrence:
                os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


def _work(dsn: str, broker_db: Path, intents: list[OrderIntent], arm: tuple[Checkpoint, int] | None) -> int:
    """One worker process: reconcile, then submit and finish the batch (unless killed)."""
    store = IntentStore.open(OmsConfig(dsn=dsn))
    broker = open_broker(broker_db)
    manager = OrderManager(store, broker, NO_GRACE, checkpoint=None if arm is None else _armed(*arm))  # type: ignore[arg-type]
    report = manager.start()
    if not report.passed:
        print(report.to_json(), file=sys.stderr)
        return EXIT_RECONCILIATION_FAILED
    finish(manager, broker, intents)
    return 0


def _fork(dsn: str, broker_db: Path, intents: list[OrderIntent], arm: tuple[Checkpoint, int] | None) -> int:
    """Run a worker in a forked process; returns -signal when killed, else its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _work(dsn, broker_db, intents, arm)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _warm_up() -> None:
    """Load the simulator's compiled kernels once, before any fork."""
    from ai_trading.data.synthetic import generate_panel

    panel = generate_panel(1, 5, seed=0)
    ExecutionSimulator(EXECUTION).simulate(OrderBatch.market([1], [0], [0], [1], [10.0], 2), panel)
    np.zeros(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--broker-db", type=Path, required=True)
    parser.add_argument("--kills", type=int, required=True, help="stop once this many workers were SIGKILLed")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rounds", type=int, default=500)
    args = parser.parse_args(argv)
    _warm_up()
    kills = 0
    failed = False
    decided: set[str] = set()
    for batch in range(args.max_rounds):
        if kills >= args.kills:
            break
        rng = random.Random(args.seed * 100_003 + batch)
        first = (CHECKPOINTS[batch % len(CHECKPOINTS)], 1 + (batch // len(CHECKPOINTS)) % args.batch_size)
        extra = [(rng.choice(CHECKPOINTS), rng.randint(1, args.batch_size)) for _ in range(rng.randint(0, MAX_EXTRA_CRASHES))]
        intents = make_intents(batch, args.batch_size)
        decided.update(intent.client_order_id for intent in intents)
        outcomes = [_fork(args.dsn, args.broker_db, intents, arm) for arm in [first, *extra]]
        round_kills = outcomes.count(-signal.SIGKILL)
        finished = _fork(args.dsn, args.broker_db, intents, None)
        with IntentStore.open(OmsConfig(dsn=args.dsn)) as store:
            problems = check_invariants(store, open_broker(args.broker_db), intents, decided)
        bad_exits = [code for code in outcomes if code not in (0, -signal.SIGKILL)]
        if finished != 0:
            problems.append(f"finishing worker exited with {finished}")
        if bad_exits:
            problems.append(f"crashing workers exited with {bad_exits} (not SIGKILL, not done)")
        kills += round_kills
        failed = failed or bool(problems)
        killed_at = [f"{point.value}#{n}" for (point, n), code in zip([first, *extra], outcomes) if code == -signal.SIGKILL]
        print(json.dumps({"batch": batch, "killed_at": killed_at, "problems": problems[:10]}), flush=True)
    print(json.dumps({"total_kills": kills}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
