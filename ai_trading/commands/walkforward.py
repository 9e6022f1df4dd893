"""``ai-trading walkforward``: walk-forward evaluation of the ridge signal on simulated fills."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ai_trading.commands import add_market_options, formatted


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("walkforward", help="walk-forward and CPCV evaluation of the ridge signal on simulated executions")
    add_market_options(parser)
    parser.add_argument("--folds", type=int, help="walk-forward folds (default: evaluation.folds)")
    parser.add_argument("--alphas", help="comma-separated ridge penalties: adds PBO across them and deflates the Sharpe")
    parser.add_argument(
        "--model", metavar="NAME|DIR",
        help="evaluate this model as is instead of refitting per fold: a registered name (ML or RL), a signed "
        "artifact directory, or demo (default symbols: the model's own)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="new directory for report.json, equity.png, the model and a signed manifest")
    parser.add_argument("--name", default="walkforward", help="artifact name of the signed evaluation (default: walkforward)")
    parser.add_argument("--json", action="store_true", help="print the full report as one JSON object, nothing else")
    parser.set_defaults(handler=run)


def _summary(report: dict[str, Any]) -> str:
    """The report's headline figures as labelled lines, each with its unit and basis."""
    data, agg, cpcv, grid = report["data"], report["aggregate"], report["cpcv"], report["grid"]
    periods = report["periods_per_year"]

    def money(x: float) -> str:
        return formatted(x, ",.0f")

    lines = [
        f"data      {len(data['symbols'])} symbols x {data['bars']} bars of {data['frequency']}, {data['start']} .. {data['end']}; "
        f"out of sample from {data['out_of_sample_start']}",
        f"annual    Sharpe, volatility, CAGR and turnover annualised with {periods:,.0f} periods a year",
    ]
    if agg is not None:
        net, gross = agg["net"], agg["gross"]
        costs, fees = agg["total_costs"], agg["fees"]
        lines += [
            f"net       Sharpe {formatted(net['sharpe_ratio'], '.2f')}, return {formatted(net['total_return'], '.2%')}, "
            f"max drawdown {formatted(net['max_drawdown'], '.2%')}",
            f"gross     Sharpe {formatted(gross['sharpe_ratio'], '.2f')}, return {formatted(gross['total_return'], '.2%')} "
            "(the same fills with their costs handed back)",
            f"costs     {money(costs)} = {formatted(agg['cost_bps'], '.2f')} bps of {money(agg['traded_notional'])} traded notional: "
            f"spread, slippage and impact {money(costs - fees)} (fill prices vs reference mids) + fees {money(fees)}",
            f"turnover  {formatted(agg['turnover'], '.2f')}x equity a year (buys and sells), "
            f"costs {formatted(agg['cost_drag'], '.2%')} of equity a year",
            f"P&L       gross {money(agg['gross_pnl'])} - costs {money(costs)} = net {money(agg['net_pnl'])}",
            f"PSR/DSR   {formatted(net['probabilistic_sharpe_ratio'], '.3f')} / {formatted(agg['deflated_sharpe_ratio'], '.3f')} "
            "(probability the true Sharpe > 0; deflated for the ridge_alpha trials)",
        ]
        if costs > 0 and costs >= abs(agg["gross_pnl"]):
            lines.append(
                f"why       costs decide the result: equity turned over {formatted(agg['turnover'], '.1f')}x a year at "
                f"{formatted(agg['cost_bps'], '.1f')} bps, {money(costs)} of cost against a gross P&L of {money(agg['gross_pnl'])}"
            )
    lines.append(
        f"CPCV      Sharpe over {cpcv['paths']} paths: mean {formatted(cpcv['sharpe_mean'], '.2f')}, "
        f"std {formatted(cpcv['sharpe_std'], '.2f')}, min {formatted(cpcv['sharpe_min'], '.2f')}"
    )
    if grid["pbo"] is not None:
        alphas = ", ".join(format(alpha, "g") for alpha in grid["ridge_alpha"])
        lines.append(f"PBO       {grid['pbo']:.3f} over ridge_alpha {alphas}")
    lines += [f"ANOMALY   {a['code']} ({a['scope']}): {a['message']}" for a in report["anomalies"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ai_trading.artifacts.keys import load_signing_key
    from ai_trading.commands import market_panel, split_list
    from ai_trading.config import load_config, override
    from ai_trading.errors import ConfigError
    from ai_trading.evaluation.report import write_evaluation
    from ai_trading.evaluation.walkforward import evaluate_walkforward
    from ai_trading.features import FeatureBuilder
    from ai_trading.models.registry_loading import load_policy
    from ai_trading.models.ridge import RidgePolicy
    from ai_trading.monitoring.notify import evaluation_alerts, notify

    config = override(load_config(args.config), "data", db_path=args.db)
    config = override(override(config, "execution", seed=args.seed), "evaluation", folds=args.folds)
    try:
        alphas = tuple(float(a) for a in args.alphas.split(",") if a.strip()) if args.alphas else ()
    except ValueError as exc:
        raise ConfigError(f"--alphas must be comma-separated numbers ({exc})") from exc
    signer = load_signing_key(config.artifacts.signing_key_path, config.artifacts.signing_key_env) if args.out else None
    builder = FeatureBuilder()
    symbols = split_list(args.symbols)
    policy = None if args.model is None else load_policy(args.model, config, builder, tuple(symbols or ()))
    if policy is not None and symbols is None:
        symbols = list(policy.universe)
    panel = market_panel(args, config, symbols)
    started = time.monotonic()
    if isinstance(policy, RidgePolicy):  # cross-sectional: the loaded ridge predicts any symbols' features
        report = evaluate_walkforward(panel, config, builder, policy.model, alphas)
    else:
        report = evaluate_walkforward(panel, config, builder, None, alphas, policy=policy)
    notify(config, evaluation_alerts(config.alerts, f"walkforward {args.name}", report.anomalies, time.monotonic() - started))
    document = report.to_dict()
    if signer is not None:
        document["written"] = [str(p) for p in write_evaluation(report, args.out, signer, args.name)]
    if args.json:
        json.dump(document, sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(_summary(document))
        for path in document.get("written", []):
            print(f"wrote {path}")
    return 0
