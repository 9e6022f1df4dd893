"""``ai-trading train``: multi-seed stable-baselines3 training on the portfolio environment,
stoppable with Ctrl-C or SIGTERM and resumable with ``--resume RUN_DIR``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from ai_trading.errors import ConfigError, MissingDependencyError

RL_PACKAGES = ("stable_baselines3", "torch", "gymnasium")
RUNS_DIR = "rl_runs"  # under the user's data directory, when no --out is given


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("train", help="train an RL policy over several seeds and evaluate it out of sample")
    parser.add_argument("--algo", choices=("ppo", "a2c", "sac", "td3"), help="default: [rl_train] algo")
    parser.add_argument("--seeds", type=int, help="number of seeds (default: [rl_train] seeds)")
    parser.add_argument(
        "--env-config", "--config", type=Path, metavar="FILE",
        help="TOML configuration file ([rl_env], [rl_train], [execution], [data]); default: AI_TRADING_CONFIG",
    )  # fmt: skip
    parser.add_argument("--timesteps", type=int, help="environment steps per seed")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--out", type=Path,
        help=f"new run directory, one seed_<n>/ per seed (default: <user data dir>/{RUNS_DIR}/<model_name>-<UTC time>)",
    )  # fmt: skip
    where.add_argument(
        "--resume", type=Path, metavar="RUN_DIR",
        help="train the seeds a stopped run lacks, with the configuration the run recorded",
    )  # fmt: skip
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    """Train, print every seed's metrics as JSON; on SIGINT/SIGTERM say which seeds finished
    and how to resume, and exit with 128 + the signal number, as a shell reports it."""
    from ai_trading.config import load_config

    try:
        from ai_trading.rl_trading.run_record import RunRecord
        from ai_trading.rl_trading.train import TrainingStopped, declared_seeds, finished_seeds, train_seeds
    except ModuleNotFoundError as exc:
        if exc.name in RL_PACKAGES:
            raise MissingDependencyError("stable-baselines3", "rl") from exc
        raise
    config = load_config(args.env_config)
    overrides = {k: v for k, v in (("algo", args.algo), ("seeds", args.seeds), ("timesteps", args.timesteps)) if v is not None}
    config = dataclasses.replace(config, rl_train=dataclasses.replace(config.rl_train, **overrides))
    if args.resume is not None:
        run_dir = args.resume
        if not run_dir.is_dir():
            raise ConfigError(f"--resume {run_dir}: no such directory; pass the run directory `ai-trading train` printed")
        if args.env_config is None and not overrides:
            config = RunRecord.read(run_dir).apply(config)
    else:
        run_dir = args.out if args.out is not None else _default_run_dir(config.rl_train.model_name)
    print(f"{'resuming' if args.resume else 'training'} run in {run_dir}", file=sys.stderr, flush=True)
    try:
        results = train_seeds(config, run_dir, resume=args.resume is not None)
    except TrainingStopped as stop:
        done = finished_seeds(config, run_dir)
        seeds = declared_seeds(config)
        print(
            f"ai-trading train: stopped by {stop}; seeds finished: "
            f"{', '.join(map(str, done)) or 'none'} of {seeds.start}..{seeds.stop - 1}, in {run_dir}\n"
            f"resume with: ai-trading train --resume {run_dir}",
            file=sys.stderr,
        )
        return 128 + stop.signum
    sys.stdout.write(json.dumps({"run_dir": str(run_dir), "seeds": {str(k): v for k, v in results.items()}}, indent=2) + "\n")
    print(f"run written to {run_dir}; judge it with: ai-trading govern {run_dir}", file=sys.stderr)
    return 0


def _default_run_dir(model_name: str) -> Path:
    """A new directory per run under the user's data directory, never the CWD."""
    from ai_trading.config import default_data_dir

    return default_data_dir() / RUNS_DIR / f"{model_name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
