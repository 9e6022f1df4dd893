"""Crash injection: workers SIGKILLed at every checkpoint; a new process always recovers.

The runner (``tests/oms/crash_child.py``) forks workers from one warmed interpreter and
kills them at the manager's checkpoints; here we require enough kills at every point and
then check the guarantees ourselves on the durable state the runner left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import Checkpoint
from tests.oms.oms_harness import check_invariants, make_intents, open_broker

REPO_ROOT = Path(__file__).resolve().parents[2]
KILLS_PER_BACKEND = 100  # x2 backends: at least 200 SIGKILLs per CI run
BATCH_SIZE = 4
RUNNER_TIMEOUT_S = 240


@pytest.mark.slow
def test_sigkill_at_every_checkpoint_loses_nothing_and_duplicates_nothing(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path
) -> None:
    broker_db = tmp_path / "sim_broker.sqlite"
    command = [
        sys.executable, "-m", "tests.oms.crash_child",
        "--dsn", oms_database_url, "--broker-db", str(broker_db),
        "--kills", str(KILLS_PER_BACKEND), "--batch-size", str(BATCH_SIZE),
    ]  # fmt: skip
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUNNER_TIMEOUT_S)
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    rounds = [line for line in lines if "batch" in line]
    assert run.returncode == 0, f"runner failed: {[r for r in rounds if r['problems']][:3]}\n{run.stderr[-3000:]}"

    kills = Counter(point.partition("#")[0] for r in rounds for point in r["killed_at"])
    assert sum(kills.values()) >= KILLS_PER_BACKEND
    assert set(kills) == {point.value for point in Checkpoint}, f"kills per checkpoint: {kills}"
    assert min(kills.values()) >= KILLS_PER_BACKEND // 10, f"kills per checkpoint: {kills}"

    intents = [intent for r in rounds for intent in make_intents(r["batch"], BATCH_SIZE)]
    broker = open_broker(broker_db)
    assert check_invariants(oms_store, broker, intents) == []
    assert len(broker.all_orders()) == len(oms_store.list_intents()) == len(intents)
    # Every resend reached the broker under the intent's own id and was refused there.
    refused = [s for s in broker.submissions() if not s.accepted]
    assert {s.client_order_id for s in refused} <= {i.client_order_id for i in intents}
