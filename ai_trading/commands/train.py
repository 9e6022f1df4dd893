"""``ai-trading train``: multi-seed stable-baselines3 training on the portfolio environment."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ai_trading.errors import MissingDependencyError

RL_PACKAGES = ("stable_baselines3", "torch", "gymnasium")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("train", help="train an RL policy over several seeds and evaluate it out of sample")
    parser.add_argument("--algo", choices=("ppo", "a2c", "sac", "td3"), help="default: [rl_train] algo")
    parser.add_argument("--seeds", type=int, help="number of seeds (default: [rl_train] seeds)")
    parser.add_argument(
        "--env-config", "--config", type=Path, metavar="FILE",
        help="TOML configuration file ([rl_env], [rl_train], [execution], [data]); default: AI_TRADING_CONFIG",
    )  # fmt: skip
    parser.add_argument("--timesteps", type=int, help="environment steps per seed")
    parser.add_argument("--out", type=Path, default=Path("rl_runs"), help="run directory (one seed_<n>/ per seed)")
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from ai_trading.config import load_config

    try:
        from ai_trading.rl_trading.train import train_seeds
    except ModuleNotFoundError as exc:
        if exc.name in RL_PACKAGES:
            raise MissingDependencyError("stable-baselines3", "rl") from exc
        raise
    config = load_config(args.env_config)
    overrides = {k: v for k, v in (("algo", args.algo), ("seeds", args.seeds), ("timesteps", args.timesteps)) if v is not None}
    config = dataclasses.replace(config, rl_train=dataclasses.replace(config.rl_train, **overrides))
    results = train_seeds(config, args.out)
    sys.stdout.write(json.dumps({"run_dir": str(args.out), "seeds": {str(k): v for k, v in results.items()}}, indent=2) + "\n")
    return 0
