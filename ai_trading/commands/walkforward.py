"""``ai-trading walkforward``: walk-forward evaluation of the ridge signal on simulated fills."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ai_trading.commands import add_market_options, formatted


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("walkforward", help="walk-forward and CPCV evaluation of the ridge signal on simulated executions")
    add_market_options(parser)
    parser.add_argument("--folds", type=int, help="walk-forward folds (default: evaluation.folds)")
    parser.add_argument("--alphas", help="comma-separated ridge penalties: adds PBO across them and deflates the Sharpe")
    parser.add_argument("--model", type=Path, help="signed model directory to evaluate instead of refitting per fold")
    parser.add_argument("--out", type=Path, help="new directory for report.json, equity.png, the model and a signed manifest")
    parser.add_argument("--name", default="walkforward", help="artifact name of the signed evaluation (default: walkforward)")
    parser.add_argument("--json", action="store_true", help="print the full report as one JSON object, nothing else")
    parser.set_defaults(handler=run)


def _summary(report: dict[str, Any]) -> str:
    data, agg, cpcv, grid = report["data"], report["aggregate"], report["cpcv"], report["grid"]
    lines = [f"data      {len(data['symbols'])} symbols x {data['bars']} bars, {data['start']} .. {data['end']}"]
    if agg is not None:
        net, gross = agg["net"], agg["gross"]
        lines += [
            f"net       Sharpe {formatted(net['sharpe_ratio'], '.2f')}, return {formatted(net['total_return'], '.2%')}, "
            f"max drawdown {formatted(net['max_drawdown'], '.2%')}",
            f"gross     Sharpe {formatted(gross['sharpe_ratio'], '.2f')}, return {formatted(gross['total_return'], '.2%')}",
            f"costs     {formatted(agg['total_costs'], ',.0f')} ({formatted(agg['cost_bps'], '.2f')} bps of "
            f"{formatted(agg['traded_notional'], ',.0f')} traded), turnover {formatted(agg['turnover'], '.2f')}/yr",
            f"PSR/DSR   {formatted(net['probabilistic_sharpe_ratio'], '.3f')} / {formatted(agg['deflated_sharpe_ratio'], '.3f')}",
        ]
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
    from ai_trading.artifacts import Trust, load_verified
    from ai_trading.artifacts.keys import load_signing_key
    from ai_trading.commands import split_list
    from ai_trading.config import load_config, override
    from ai_trading.data import open_store
    from ai_trading.errors import ConfigError
    from ai_trading.evaluation.report import MODEL_FILE, write_evaluation
    from ai_trading.evaluation.signal_model import RidgeModel
    from ai_trading.evaluation.walkforward import evaluate_walkforward
    from ai_trading.features import FeatureBuilder

    config = override(load_config(args.config), "data", db_path=args.db)
    config = override(override(config, "execution", seed=args.seed), "evaluation", folds=args.folds)
    try:
        alphas = tuple(float(a) for a in args.alphas.split(",") if a.strip()) if args.alphas else ()
    except ValueError as exc:
        raise ConfigError(f"--alphas must be comma-separated numbers ({exc})") from exc
    signer = load_signing_key(config.artifacts.signing_key_path, config.artifacts.signing_key_env) if args.out else None
    builder = FeatureBuilder()
    model = None
    if args.model is not None:
        artifact = load_verified(args.model, Trust.from_config(config.artifacts), builder.feature_schema_hash)
        model = RidgeModel.from_bytes(artifact.read(MODEL_FILE), builder.feature_schema_hash)
    symbols = split_list(args.symbols)
    panel = open_store(config.data).panel(symbols, args.start, args.end)
    report = evaluate_walkforward(panel, config, builder, model, alphas)
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
