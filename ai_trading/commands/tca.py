"""``ai-trading tca``: realized vs predicted execution cost of a trading run, by symbol and by day."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ai_trading.commands import add_config_option, formatted


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("tca", help="transaction cost analysis of a replay (or paper/live) run")
    parser.add_argument("--run", type=Path, help="run directory (default: the most recent run under runtime.runs_dir)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_config_option(parser, "[runtime]")
    parser.set_defaults(handler=_tca)


def _latest_run(runs_dir: Path) -> Path:
    from ai_trading.errors import DataStoreError
    from ai_trading.runtime.run_state import RUN_DB

    runs = sorted(runs_dir.glob(f"*/{RUN_DB}"), key=lambda p: p.stat().st_mtime) if runs_dir.is_dir() else []
    if not runs:
        raise DataStoreError(f"no trading run under {runs_dir}: run `ai-trading replay` first or pass --run DIR")
    return runs[-1].parent


def _tca(args: argparse.Namespace) -> int:
    from ai_trading.config import load_config
    from ai_trading.runtime.run_state import RunState
    from ai_trading.runtime.tca import tca_tables

    run_dir = args.run if args.run is not None else _latest_run(load_config(args.config).runtime.runs_dir)
    with RunState(run_dir, read_only=True) as state:
        tables = tca_tables(state)
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), **tables}, indent=2, sort_keys=True, default=str))
        return 0
    print(f"run {run_dir}: cost in bps of filled notional (realized vs arrival / predicted by the cost model; vs decision; fees)")
    for name in ("symbol", "day"):
        print(f"by {name}:")
        for row in tables[name]:
            print(f"  {row[name]!s:<12} orders {row['orders']:>5}  notional {row['notional']:>14,.0f}  "
                  f"realized {formatted(row['realized_bps_arrival'], '7.2f')}  predicted {formatted(row['predicted_bps'], '7.2f')}  "
                  f"vs decision {formatted(row['realized_bps_decision'], '7.2f')}  fees {row['fees']:>10,.2f}")  # fmt: skip
    total = tables["total"][0]
    print(f"total: orders {total['orders']}, realized {formatted(total['realized_bps_arrival'], '.2f')} bps, "
          f"predicted {formatted(total['predicted_bps'], '.2f')} bps")  # fmt: skip
    return 0
