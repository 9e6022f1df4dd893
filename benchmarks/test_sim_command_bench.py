"""``ai-trading sim`` end to end, warm (kernels cached), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ai_trading.config import ExecutionConfig
from ai_trading.data import MarketDataStore
from ai_trading.execution.demo import demo_orders
from ai_trading.execution.simulator import ExecutionSimulator
from ai_trading.types import OrderBatch
from benchmarks.baselines import reference_order_simulation


def test_sim_command_end_to_end(throughput, tmp_path: Path) -> None:
    """Orders per second of the whole command (process start, data, simulation, summary)
    against the pure-Python reference simulator on a slice of the same orders."""
    db = tmp_path / "market.duckdb"
    command = [sys.executable, "-m", "ai_trading.cli", "sim", "--json"]
    environment = {**os.environ, "AI_TRADING_DATA_DB": str(db)}  # the configured store fills itself on first use
    first = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout)
    with MarketDataStore(db) as store:
        panel = store.panel()
    orders = demo_orders(panel)
    assert len(orders) == first["orders"]
    sample = 300 if throughput.full_size else 50
    head = OrderBatch(**{name: getattr(orders, name)[:sample] for name in orders.__dataclass_fields__})
    ExecutionSimulator(ExecutionConfig()).simulate(head, panel)
    config = ExecutionConfig()
    throughput.measure(
        lambda: subprocess.run(command, check=True, capture_output=True, env=environment),
        items=first["orders"],
        baseline=reference_order_simulation(config, head, panel),
        baseline_items=sample,
        rounds=3,
        baseline_rounds=1,
    )
