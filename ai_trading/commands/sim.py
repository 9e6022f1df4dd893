"""``ai-trading sim``: the demonstration strategy through the execution simulator."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from ai_trading.commands import add_market_options, formatted


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("sim", help="simulate the demo strategy's orders with realistic fills and costs")
    add_market_options(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object, nothing else")
    parser.add_argument("--out", type=Path, help="write fills/orders Parquet and an equity/cost PNG here")
    parser.set_defaults(handler=run)


def _format(summary: dict[str, Any]) -> str:
    def money(x: float) -> str:
        return formatted(x, ",.0f")

    rows = [
        ("data", f"{summary['symbols']} symbols x {summary['bars']} bars, {summary['start']} .. {summary['end']}"),
        ("orders", f"{summary['orders']:,} orders, {summary['fills']:,} fill events"),
        ("fill rate", f"{formatted(summary['fill_rate'], '.1%')} of {summary['ordered_qty']:,.0f} shares"),
        ("participation", f"{formatted(summary['mean_participation'], '.2%')} of bar volume (qty-weighted mean)"),
        (
            "slippage",
            f"{formatted(summary['slippage_bps_arrival'], '.2f')} bps vs arrival, "
            f"{formatted(summary['slippage_bps_decision'], '.2f')} bps vs decision",
        ),
        ("fees", money(summary["fees"])),
        (
            "cost",
            f"{formatted(summary['cost_bps'], '.2f')} bps of {money(summary['filled_notional'])} traded "
            f"({money(summary['realized_cost'])})",
        ),
        (
            "P&L",
            f"gross {money(summary['gross_pnl'])}, net {money(summary['net_pnl'])} "
            f"({summary['net_pnl'] / summary['book']:+.1%} of a {money(summary['book'])} book), "
            f"execution cost {money(summary['execution_cost'])}",
        ),
        ("speed", f"{summary['bar_symbols_per_s']:,.0f} bar-symbols/s ({summary['sim_seconds'] * 1e3:.1f} ms simulated)"),
    ]
    if summary["note"] is not None:
        rows.append(("note", f"no orders: {summary['note']}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in rows)


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run(args: argparse.Namespace) -> int:
    from ai_trading.commands import split_list
    from ai_trading.config import load_config, override
    from ai_trading.data import open_store
    from ai_trading.execution.sim_run import run_demo

    config = override(override(load_config(args.config), "data", db_path=args.db), "execution", seed=args.seed)
    panel = open_store(config.data).panel(split_list(args.symbols), args.start, args.end)
    outcome = run_demo(panel, config.execution)
    summary = outcome.summary()
    if args.out is not None:
        summary["written"] = [str(p) for p in outcome.write(args.out)]
    if args.json:
        json.dump({k: _json_safe(v) for k, v in summary.items()}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(_format(summary))
        for path in summary.get("written", []):
            print(f"wrote {path}")
    return 0
