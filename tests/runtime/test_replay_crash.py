"""Crash-only replay: SIGKILL the `ai-trading replay` process at random moments, restart it
each time, and the finished run equals an uninterrupted one, on SQLite and PostgreSQL.

Equal means: the same equity at every bar, the same positions, the same intents (ids,
states, filled quantities), the same orders at the broker with no client order id held
twice, and the same cost model (no fill counted twice, none lost).
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from ai_trading.config import OmsConfig, load_config
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.migrate import upgrade
from ai_trading.runtime.replay import OMS_FILE
from ai_trading.runtime.run_state import RunState
from tests.runtime.replay_harness import ReplayOutcome, make_store, outcome

KILLS = 20
SYMBOLS = "SYN00,SYN01,SYN02,SYN03,SYN04,SYN05,SYN06,SYN07"
START, END = "2015-02-02", "2016-02-01"  # a year of daily bars after the demo's lookback
KILL_AFTER_START_S = (0.0, 1.5)  # the interpreter and the gates take about 1.2 s
KILL_IN_LOOP_S = (0.0, 0.3)
PROGRESS_TIMEOUT_S = 60.0
CONFIG = """
[risk]
max_order_notional = 1000000.0
max_position_notional = 1000000.0
"""
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _command(store: Path, run_dir: Path, config: Path, dsn: str | None) -> list[str]:
    command = [
        sys.executable, "-c", "from ai_trading.cli import main; raise SystemExit(main())", "replay", "--model", "demo",
        "--start", START, "--end", END, "--symbols", SYMBOLS, "--db", str(store), "--out", str(run_dir), "--config", str(config),
    ]  # fmt: skip
    return command + (["--dsn", dsn] if dsn else [])


def _cursor(run_dir: Path) -> int | None:
    if not (run_dir / "run.sqlite").exists():
        return None
    with closing(sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT bar_ts FROM cursor").fetchone()
        except sqlite3.OperationalError:  # the schema is still being created
            return None
    return None if row is None else row[0]


def _wait_for_progress(child: subprocess.Popen[bytes], run_dir: Path, before: int | None) -> int:
    """Wait until the child has finished a bar (1), or has exited (0)."""
    deadline = time.monotonic() + PROGRESS_TIMEOUT_S
    while time.monotonic() < deadline and child.poll() is None:
        if _cursor(run_dir) != before:
            return 1
        time.sleep(0.01)
    return 0


def _intents(dsn: str) -> list[tuple[str, str, str]]:
    with IntentStore.open(OmsConfig(dsn=dsn)) as store:
        return sorted((i.client_order_id, i.state.value, format(i.filled_qty, "f")) for i in store.list_intents())


def _cost_state(run_dir: Path, config_file: Path) -> np.ndarray:
    config = load_config(config_file)
    with RunState(run_dir, read_only=True) as state:
        model = state.load_cost_model(config.cost_model, config.execution)
    return model.state_rows(SYMBOLS.split(","))


@pytest.fixture(params=BACKENDS)
def oms_dsns(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Path], str | None]:
    """The OMS database of a run: its own SQLite file (None), or a fresh PostgreSQL database at head."""
    if request.param == "sqlite":
        return lambda run_dir: None
    create = request.getfixturevalue("create_postgres_database")

    def fresh(run_dir: Path) -> str:
        dsn = str(create("ai_trading_replay_crash"))
        upgrade(OmsConfig(dsn=dsn))
        return dsn

    return fresh


def test_sigkill_at_random_moments_then_restart_equals_an_uninterrupted_replay(tmp_path: Path, oms_dsns: Callable[[Path], str | None]) -> None:
    store = make_store(tmp_path / "bars.duckdb", n_bars=300, n_symbols=8)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    reference_dir, crashed_dir = tmp_path / "reference", tmp_path / "crashed"
    reference_dsn, crashed_dsn = oms_dsns(reference_dir), oms_dsns(crashed_dir)
    subprocess.run(_command(store, reference_dir, config, reference_dsn), check=True, capture_output=True, timeout=120)

    rng = random.Random(20240105)
    in_loop = 0
    for kill in range(KILLS):
        before = _cursor(crashed_dir)
        child = subprocess.Popen(_command(store, crashed_dir, config, crashed_dsn), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kill % 2:  # odd kills: once the loop has finished a bar in this process, a moment later
            in_loop += _wait_for_progress(child, crashed_dir, before)
            time.sleep(rng.uniform(*KILL_IN_LOOP_S))
        else:  # even kills: anywhere from the interpreter's start through the gates and beyond
            time.sleep(rng.uniform(*KILL_AFTER_START_S))
        assert child.poll() is None, "the run finished before it could be killed: replay more bars"
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert in_loop == KILLS // 2
    finish = subprocess.run(_command(store, crashed_dir, config, crashed_dsn), capture_output=True, timeout=120, check=False)
    assert finish.returncode == 0, finish.stderr.decode()[-2000:]

    sqlite_dsn = lambda run_dir: f"sqlite:///{run_dir / OMS_FILE}"
    settings = load_config(config)
    expected, got = outcome(reference_dir, settings), outcome(crashed_dir, settings)
    _assert_same_run(expected, got)
    assert _intents(reference_dsn or sqlite_dsn(reference_dir)) == _intents(crashed_dsn or sqlite_dsn(crashed_dir))
    np.testing.assert_allclose(_cost_state(crashed_dir, config), _cost_state(reference_dir, config), rtol=1e-12, atol=0)


def _assert_same_run(expected: ReplayOutcome, got: ReplayOutcome) -> None:
    assert len(expected.equity) > 240 and list(got.equity) == list(expected.equity)
    np.testing.assert_allclose(list(got.equity.values()), list(expected.equity.values()), rtol=1e-12)
    assert got.positions.keys() == expected.positions.keys()
    np.testing.assert_allclose([got.positions[s] for s in expected.positions], list(expected.positions.values()), rtol=1e-12)
    orders = got.broker_orders
    assert len(orders) == len(set(orders)), "the broker holds a client order id twice"
    assert sorted(orders) == sorted(expected.broker_orders) and orders
    assert got.execution_log.num_rows == expected.execution_log.num_rows
