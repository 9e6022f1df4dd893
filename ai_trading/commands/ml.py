"""``ai-trading ml``: train the ridge signal into a signed ``ml`` artifact; predict weights.

``python -m ai_trading.models.train`` runs :func:`main` with ``train`` (this module's own
parser, not the ``ai-trading`` CLI).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ai_trading.commands import add_config_option, add_market_options, formatted, market_panel, split_list


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ml", help="ML models: train the ridge signal into a signed artifact, predict target weights")
    _add_actions(parser)


def _add_actions(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="ml_action", required=True)
    train = actions.add_parser(
        "train",
        help="fit the ridge signal, evaluate it out of sample (walk-forward, CPCV, PBO, DSR), sign it as kind ml",
        description="Evaluates the ridge procedure out of sample by walk-forward and CPCV on the simulator (net and "
        "gross metrics, PBO and DSR over [ml_governance] pbo_alphas), fits it on the whole range and writes a signed "
        "artifact of kind ml that `ai-trading registry promote` admits through the ML gate.",
    )
    train.add_argument("--name", required=True, help="the model's name (its registry name once promoted)")
    add_market_options(train)
    train.add_argument("--out", type=Path, help="new directory for the artifact (default: under the user's data directory)")
    train.add_argument("--json", action="store_true", help="print the result as one JSON object, nothing else")
    train.set_defaults(handler=_train)

    predict = actions.add_parser("predict", help="the target weights a model gives for the close of a date")
    predict.add_argument("--model", required=True, help="a registered model name, a signed artifact directory, or demo")
    predict.add_argument("--date", required=True, help="the decision bar's date (ISO); its bar must be in the store")
    predict.add_argument("--symbols", help="the demo policy's symbols (stored models carry their own)")
    predict.add_argument("--db", type=Path, help="DuckDB market-data store (default: data.db_path)")
    add_config_option(predict, "[data], [artifacts], [evaluation]")
    predict.add_argument("--json", action="store_true", help="print the weights as one JSON object, nothing else")
    predict.set_defaults(handler=_predict)


def _train(args: argparse.Namespace) -> int:
    from ai_trading.artifacts.keys import load_signing_key
    from ai_trading.config import load_config, override
    from ai_trading.features import FeatureBuilder
    from ai_trading.models.train import default_out, new_version, train_ridge, write_ml_artifact

    config = override(override(load_config(args.config), "data", db_path=args.db), "execution", seed=args.seed)
    signer = load_signing_key(config.artifacts.signing_key_path, config.artifacts.signing_key_env)
    version = new_version()
    out = args.out if args.out is not None else default_out(args.name, version)
    panel = market_panel(args, config, split_list(args.symbols))
    trained = train_ridge(panel, config, FeatureBuilder())
    written = write_ml_artifact(trained, out, signer, args.name, version, config)
    document = {"name": args.name, "version": version, "out": str(out), "metrics": trained.metrics, "written": [str(p) for p in written]}
    if args.json:
        print(json.dumps(document, allow_nan=False))
        return 0
    m = trained.metrics
    print(f"trained {args.name} v{version} on {panel.n_symbols} symbols x {panel.n_bars} bars")
    print(f"net Sharpe {formatted(m.get('net_sharpe'), '.2f')}, DSR {formatted(m.get('deflated_sharpe_ratio'), '.3f')}, "
          f"PBO {formatted(m.get('pbo'), '.3f')}, max drawdown {formatted(m.get('max_drawdown'), '.2%')}, "
          f"turnover {formatted(m.get('turnover'), '.2f')}/yr, CPCV mean Sharpe {formatted(m.get('cpcv_sharpe_mean'), '.2f')}")  # fmt: skip
    print(f"wrote {out}; promote it with `ai-trading registry promote {out}`")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    from ai_trading.config import load_config, override
    from ai_trading.data import open_store
    from ai_trading.errors import ConfigError, DataValidationError
    from ai_trading.features import FeatureBuilder
    from ai_trading.models.policy import MarketWindow, PortfolioState
    from ai_trading.models.registry_loading import load_policy

    config = override(load_config(args.config), "data", db_path=args.db)
    try:
        day = np.datetime64(args.date, "D")
    except ValueError as exc:
        raise ConfigError(f"--date must be an ISO date, got {args.date!r} ({exc})") from exc
    builder = FeatureBuilder()
    policy = load_policy(args.model, config, builder, tuple(split_list(args.symbols) or ()))
    panel = open_store(config.data).panel(list(policy.universe), None, str(day + 1))
    if panel.n_bars == 0 or np.datetime64(int(panel.ts[-1]), "ns").astype("datetime64[D]") != day:
        last = "none" if panel.n_bars == 0 else str(np.datetime64(int(panel.ts[-1]), "ns").astype("datetime64[D]"))
        raise DataValidationError("MarketPanel", None, f"no bar of {list(policy.universe)} on {day} (last bar before it: {last})", "ingest that day's bars or choose a trading day")
    features = builder.build(panel)
    window = MarketWindow.at(panel, features, panel.n_bars - 1, policy.lookback)
    weights = policy.target_weights(window, PortfolioState.flat(len(policy.universe), config.evaluation.initial_cash))
    document: dict[str, Any] = {
        "model": args.model, "policy": policy.name, "kind": policy.kind, "date": str(day),
        "weights": {s: float(w) for s, w in zip(policy.universe, weights, strict=True)},
        "feature_schema_hash": features.feature_schema_hash, "dataset_fingerprint": features.dataset_fingerprint,
        "bars": panel.n_bars,
    }  # fmt: skip
    if args.json:
        print(json.dumps(document, allow_nan=False))
        return 0
    print(f"{policy.name} ({policy.kind}) target weights at the close of {day}, from a flat book:")
    for symbol, weight in document["weights"].items():
        print(f"  {symbol:<10} {weight:+.4f}")
    print(f"feature schema {features.feature_schema_hash}\ndata fingerprint {features.dataset_fingerprint}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``ai-trading ml`` without the rest of the CLI (for ``python -m ai_trading.models.train``)."""
    import logging

    from ai_trading.errors import AiTradingError

    parser = argparse.ArgumentParser(prog="python -m ai_trading.models.train", description="ai-trading ml")
    _add_actions(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        return int(args.handler(args))
    except AiTradingError as exc:
        print(f"ai-trading ml: error: {exc}", file=sys.stderr)
        return 2
