"""Two live processes working the same intents never send one twice."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ai_trading.oms.intent_store import IntentStore
from tests.oms.oms_harness import check_invariants, make_intents, open_broker

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("alpha", "beta")
BATCHES = 6
BATCH_SIZE = 6
TIMEOUT_S = 120


def test_two_processes_never_submit_one_intent_twice(oms_store: IntentStore, oms_database_url: str, tmp_path: Path) -> None:
    broker_db = tmp_path / "sim_broker.sqlite"
    open_broker(broker_db)  # create the broker's state once, before the race
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    command = [
        sys.executable, "-m", "tests.oms.concurrent_worker", "--dsn", oms_database_url,
        "--broker-db", str(broker_db), "--barrier", str(barrier), "--parties", str(len(WORKERS)),
        "--batches", str(BATCHES), "--batch-size", str(BATCH_SIZE),
    ]  # fmt: skip
    workers = [
        subprocess.Popen([*command, "--name", name], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in WORKERS
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=TIMEOUT_S)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    intents = [intent for batch in range(BATCHES) for intent in make_intents(1000 + batch, BATCH_SIZE)]
    broker = open_broker(broker_db)
    submissions = Counter(s.client_order_id for s in broker.submissions())
    assert set(submissions) == {intent.client_order_id for intent in intents}
    assert max(submissions.values()) == 1, [cid for cid, n in submissions.items() if n > 1]
    assert sum(result["sent"] for result in results) == len(intents)
    assert all(oms_store.get(i.client_order_id).attempts == 1 for i in intents)  # type: ignore[union-attr]
    assert check_invariants(oms_store, broker, intents) == []
