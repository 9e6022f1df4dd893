"""Multi-seed RL training on the portfolio environment, with out-of-sample evaluation.

Each seed is an independent job (:func:`train_seed`, free of global state, so a process
pool or a distributed executor can run it): train a stable-baselines3 policy on the
training range, keep the checkpoint that does best on the validation range, then evaluate
it once on the held-out test range through the portfolio simulator, and write a signed
artifact directory (model, evaluation, metrics, feature and data provenance).

``python -m ai_trading.rl_trading.train --algo ppo --seeds 5 --env-config FILE.toml``
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from ai_trading.artifacts.keys import load_signing_key
from ai_trading.config import AppConfig, RLTrainConfig
from ai_trading.data import open_store
from ai_trading.errors import ConfigError
from ai_trading.evaluation.metrics import sharpe_ratio, turnover
from ai_trading.execution.portfolio import PortfolioSimulator
from ai_trading.features import FeatureBuilder, FeatureSet
from ai_trading.rl.governance import SeedRun
from ai_trading.rl.seed_artifact import SEED_DIR_PREFIX, seed_dir, seed_manifest_fields, seed_metrics, write_seed_artifact
from ai_trading.rl_trading.env import PortfolioEnv, VecPortfolioEnv
from ai_trading.rl_trading.market import EnvMarket
from ai_trading.types import NS_PER_SECOND, MarketPanel
from kernels.rl_env import clip_targets

logger = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3}
PERIODS_PER_YEAR_DAILY = 252.0


def _bar(panel: MarketPanel, date: str, default: int) -> int:
    if not date:
        return default
    try:
        ns = int(np.datetime64(date, "ns").astype(np.int64))
    except ValueError as exc:
        raise ConfigError(f"rl_train: {date!r} is not an ISO date ({exc})") from exc
    return int(np.searchsorted(panel.ts, ns))


def load_ranges(config: AppConfig) -> tuple[MarketPanel, FeatureSet, tuple[int, int, int]]:
    """The panel, its features and the bar indices ending the train, validation and test ranges."""
    train = config.rl_train
    symbols = [s.strip() for s in train.symbols.split(",") if s.strip()] or None
    with open_store(config.data) as store:
        panel = store.panel(symbols, train.start or None, train.end or None)
    features = FeatureBuilder().build(panel)
    train_end = _bar(panel, train.train_end, panel.n_bars)
    validation_end = _bar(panel, train.validation_end, panel.n_bars)
    if not 0 < train_end < validation_end < panel.n_bars:
        raise ConfigError(
            f"rl_train: train_end {train.train_end!r} and validation_end {train.validation_end!r} must split the "
            f"{panel.n_bars} bars into non-empty train, validation and test ranges"
        )
    return panel, features, (train_end, validation_end, panel.n_bars)


def evaluate_policy(model: BaseAlgorithm, panel: MarketPanel, market: EnvMarket, config: AppConfig, seed: int) -> SeedRun:
    """Run the deterministic policy over the whole range of ``market`` (one episode from its
    first bar), then replay its target weights through :class:`PortfolioSimulator`."""
    env = PortfolioEnv(market)
    obs, info = env.reset(seed=seed)
    first = info["bar"]
    limit = config.rl_env.leverage_limit
    targets = np.full(panel.close.shape, np.nan)
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        clip_targets(np.asarray(action, dtype=np.float32).reshape(-1), limit, targets[info["bar"]])
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    last = info["bar"]
    result = PortfolioSimulator(replace(config.execution, seed=seed)).run(targets, panel, config.rl_env.initial_cash, record_fills=False)
    equity = result.equity[first : last + 1]
    returns = np.diff(equity) / equity[:-1]
    traded = result.traded_notional[first + 1 : last + 1]
    return SeedRun(seed, returns, turnover(traded, equity[:-1], PERIODS_PER_YEAR_DAILY))


def _evaluation_market(panel: MarketPanel, features: FeatureSet, config: AppConfig, start: int, end: int) -> EnvMarket:
    whole_range = replace(config.rl_env, episode_length=panel.n_bars, max_drawdown=1.0)
    return EnvMarket.build(panel, features, whole_range, config.execution, start, end)


def train_seed(config: AppConfig, seed: int, out_dir: Path) -> dict[str, float]:
    """Train, select on validation, test out of sample and write the signed artifact of one seed."""
    torch.set_num_threads(1)
    train = config.rl_train
    panel, features, (train_end, validation_end, end) = load_ranges(config)
    train_market = EnvMarket.build(panel, features, config.rl_env, config.execution, 0, train_end)
    validation = _evaluation_market(panel, features, config, train_end, validation_end)
    test = _evaluation_market(panel, features, config, validation_end, end)
    vec = VecPortfolioEnv(train_market, train.n_envs)
    vec.seed(seed)
    chunk = max(train.timesteps // train.checkpoints, 1)
    model = ALGORITHMS[train.algo]("MlpPolicy", vec, seed=seed, verbose=0, device="cpu", **_algorithm_kwargs(train.algo, chunk, train))
    best_sharpe, best_params = -np.inf, None
    for checkpoint in range(train.checkpoints):
        model.learn(chunk, reset_num_timesteps=checkpoint == 0)
        score = sharpe_ratio(evaluate_policy(model, panel, validation, config, seed).returns)
        score = score if np.isfinite(score) else -np.inf
        if best_params is None or score > best_sharpe:
            best_sharpe, best_params = score, copy.deepcopy(model.get_parameters())
        logger.info("RL_CHECKPOINT", extra={"seed": seed, "checkpoint": checkpoint, "validation_sharpe": score})
    model.set_parameters(best_params)
    run = evaluate_policy(model, panel, test, config, seed)
    metrics = seed_metrics(run, best_sharpe)
    ranges_ns = [int(panel.ts[0]), int(panel.ts[train_end]), int(panel.ts[validation_end]), int(panel.ts[-1]) + NS_PER_SECOND]
    fields = seed_manifest_fields(config, seed, features.provenance(), ranges_ns, metrics)
    artifacts = config.artifacts
    signer = load_signing_key(artifacts.signing_key_path, artifacts.signing_key_env)
    write_seed_artifact(seed_dir(out_dir, seed), model.save, run, fields, signer)
    return metrics


def _algorithm_kwargs(algo: str, chunk: int, train: RLTrainConfig) -> dict[str, int]:
    """Sizes SB3's defaults get wrong for short runs: PPO's rollout must fit in one
    checkpoint's steps, and off-policy replay buffers need not outgrow the whole run."""
    if algo == "ppo":
        n_steps = min(2048, max(chunk // train.n_envs, 8))
        return {"n_steps": n_steps, "batch_size": min(64, n_steps * train.n_envs)}
    if algo in ("sac", "td3"):
        return {"buffer_size": min(1_000_000, train.timesteps), "learning_starts": min(100, chunk)}
    return {}


def validate_train_config(config: AppConfig) -> None:
    train = config.rl_train
    if train.algo not in ALGORITHMS:
        raise ConfigError(f"rl_train.algo must be one of {', '.join(ALGORITHMS)}, got {train.algo!r}")
    for name in ("seeds", "timesteps", "n_envs", "checkpoints", "model_version"):
        if getattr(train, name) < 1:
            raise ConfigError(f"rl_train.{name} must be >= 1, got {getattr(train, name)!r}")
    if train.workers < 0 or train.first_seed < 0:
        raise ConfigError("rl_train.workers and rl_train.first_seed must be >= 0")


def train_seeds(config: AppConfig, out_dir: Path) -> dict[int, dict[str, float]]:
    """Train every seed (in parallel processes where cores allow); returns metrics per seed."""
    validate_train_config(config)
    train = config.rl_train
    load_ranges(config)  # fail on bad data or ranges before any process starts
    load_signing_key(config.artifacts.signing_key_path, config.artifacts.signing_key_env)
    earlier = sorted(out_dir.glob(f"{SEED_DIR_PREFIX}*")) if out_dir.is_dir() else []
    if earlier:
        raise ConfigError(
            f"{out_dir} already holds {earlier[0].name} of an earlier run: train into a new directory "
            "(governance judges a run's seeds together)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = range(train.first_seed, train.first_seed + train.seeds)
    workers = min(train.workers or os.cpu_count() or 1, train.seeds)
    results: dict[int, dict[str, float]] = {}
    if workers == 1:
        for seed in seeds:
            results[seed] = train_seed(config, seed, out_dir)
            _progress(len(results), train.seeds, seed, results[seed])
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(train_seed, config, seed, out_dir): seed for seed in seeds}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            _progress(len(results), train.seeds, futures[future], results[futures[future]])
    return dict(sorted(results.items()))


def _progress(done: int, total: int, seed: int, metrics: dict[str, Any]) -> None:
    logger.info("RL_SEED_DONE", extra={"seed": seed, **metrics})
    print(f"[{done}/{total}] seed {seed}: test Sharpe {metrics['test_sharpe']:.2f}, "
          f"validation Sharpe {metrics['validation_sharpe']:.2f}", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    from ai_trading.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
