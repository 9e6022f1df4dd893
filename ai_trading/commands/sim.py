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
    """The summary as labelled lines; every figure names its unit and what it compares."""

    def money(x: float) -> str:
        return formatted(x, ",.0f")

    def bps(x: float) -> str:
        return formatted(x, ".2f") + " bps"

    def part(name: str) -> tuple[str, str]:
        return (f"  {name.replace('_', ' + ')}", f"{money(summary[f'cost_{name}'])} ({bps(summary[f'cost_{name}_bps'])})")

    rows = [
        ("what", summary["what"]),
        (
            "data",
            f"{summary['symbols']} symbols x {summary['bars']} bars of {summary['frequency']}, {summary['start']} .. {summary['end']} "
            f"({formatted(summary['years'], '.2f')} years at {summary['periods_per_year']:,.0f} bars a year)",
        ),
        ("orders", f"{summary['orders']:,} orders, {summary['fills']:,} fill events"),
        ("fill rate", f"{formatted(summary['fill_rate'], '.1%')} of {summary['ordered_shares']:,.0f} shares ordered"),
        ("participation", f"{formatted(summary['participation_share_weighted'], '.2%')} of bar volume (mean over fills, share-weighted)"),
        (
            "traded",
            f"{money(summary['traded_notional'])} notional (shares x fill price), "
            f"{formatted(summary['turnover_per_year'], '.1f')}x the book a year",
        ),
        (
            "cost",
            f"{money(summary['cost'])} = {bps(summary['cost_bps'])} of traded notional, "
            "fill prices against each fill's reference mid, plus fees:",
        ),
        part("spread"),
        part("slippage_impact"),
        part("fees"),
        (
            "shortfall",
            f"{money(summary['shortfall_vs_decision'])} = {bps(summary['shortfall_vs_decision_bps'])} against the decision "
            f"bar's close (notional-weighted, fees included): the cost plus {money(summary['price_drift'])} of price drift "
            f"before and during execution; {bps(summary['slippage_vs_arrival_bps'])} against the arrival mid, before fees",
        ),
        (
            "P&L",
            f"gross {money(summary['gross_pnl'])} (fills at their mids, no fees), net {money(summary['net_pnl'])} "
            f"({summary['net_pnl_share_of_book']:+.1%} of the {money(summary['book'])} book); net = gross - cost",
        ),
        ("speed", f"{summary['bar_symbols_per_s']:,.0f} bar-symbols/s ({summary['sim_seconds'] * 1e3:.1f} ms simulated)"),
    ]
    if summary["explanation"] is not None:
        rows.append(("why", summary["explanation"]))
    if summary["note"] is not None:
        rows.append(("note", f"no orders: {summary['note']}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in rows)


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run(args: argparse.Namespace) -> int:
    from ai_trading.commands import market_panel, split_list
    from ai_trading.config import load_config, override
    from ai_trading.data.frequency import panel_periods_per_year
    from ai_trading.execution.sim_run import run_demo

    config = override(override(load_config(args.config), "data", db_path=args.db), "execution", seed=args.seed)
    panel = market_panel(args, config, split_list(args.symbols))
    periods = panel_periods_per_year(panel, config.data.sessions_per_year, config.data.session_minutes)
    outcome = run_demo(panel, config.execution, periods)
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
