"""A delivery process SIGKILLed while the receiver holds its request: after a restart every
notification is delivered, and the receiver sees the resend under the key it already has."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ai_trading.monitoring.outbox import Outbox
from ai_trading.oms.intent_store import IntentStore
from tests.monitoring.helpers import FakeClock, WebhookLog, serve_webhook
from tests.monitoring.test_outbox import notifications

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_mid_delivery_then_restart_loses_nothing_and_duplicates_nothing(oms_store: IntentStore, oms_database_url: str) -> None:
    queued = notifications(FakeClock(), 4)
    outbox = Outbox(oms_store.engine)
    for n in queued:
        outbox.enqueue(n)
    log = WebhookLog(behaviours=["ok", "hang"], hang_s=60.0)  # the second request is received, then held
    server = serve_webhook(log)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    command = [sys.executable, "-m", "tests.monitoring.delivery_child", "--dsn", oms_database_url, "--url", url]
    try:
        child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while sum(log.received.values()) < 2:
            assert child.poll() is None and time.monotonic() < deadline, "the child never reached the held request"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
        held = [k for k, n in log.received.items() if n == 1][-1]
        assert len(outbox.entries(["pending"])) == 3  # one was marked delivered before the kill
        time.sleep(1.2)  # the killed worker's lease (1 s) runs out
        rerun = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
    finally:
        server.shutdown()
    assert outbox.entries() == []
    keys = {n.idempotency_key for n in queued}
    assert log.unique_accepted() == keys and set(log.accepted.values()) == {1}
    assert log.received[held] == 2  # resent after the restart under the same key, deduplicated by the receiver
