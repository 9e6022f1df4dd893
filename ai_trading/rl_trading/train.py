"""Multi-seed RL training on the portfolio environment, with out-of-sample evaluation.

Each seed is an independent job (:func:`train_seed`, free of global state, so a process
pool or a distributed executor can run it): train a stable-baselines3 policy on the
training range, keep the checkpoint that does best on the validation range, then evaluate
it once on the held-out test range through the portfolio simulator, and write a signed
artifact directory (model, evaluation, metrics, feature and data provenance).

A run can be stopped and resumed. SIGINT or SIGTERM raises :class:`TrainingStopped` in
the parent, which terminates its worker processes at once (they ignore SIGINT, so a
terminal's Ctrl-C, which reaches the whole process group, is handled once, here); seeds
are written whole or not at all (``write_seed_artifact``), so the run directory then holds
only finished seeds. ``train_seeds(..., resume=True)`` trains the missing seeds with the
run's recorded configuration (:mod:`ai_trading.rl_trading.run_record`); training is
deterministic per seed, so the resumed run equals an uninterrupted one.

``python -m ai_trading.rl_trading.train --algo ppo --seeds 5 --env-config FILE.toml``
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType

import numpy as np
import torch
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm

from ai_trading.artifacts.keys import load_signing_key
from ai_trading.artifacts.manifest import MANIFEST_FILE, Manifest
from ai_trading.config import AppConfig, RLTrainConfig
from ai_trading.data import open_store
from ai_trading.errors import ConfigError
from ai_trading.data.frequency import panel_periods_per_year
from ai_trading.evaluation.metrics import sharpe_ratio, turnover
from ai_trading.execution.portfolio import PortfolioSimulator
from ai_trading.features import FeatureBuilder, FeatureSet
from ai_trading.rl.governance import SeedRun
from ai_trading.rl.seed_artifact import (
    SEED_DIR_PREFIX,
    remove_staging,
    seed_dir,
    seed_manifest_fields,
    seed_metrics,
    write_seed_artifact,
)
from ai_trading.rl_trading.env import PortfolioEnv, VecPortfolioEnv
from ai_trading.rl_trading.market import EnvMarket
from ai_trading.rl_trading.progress import TimestepProgress, seed_finished_line
from ai_trading.rl_trading.run_record import RUN_FILE, RunRecord
from ai_trading.types import NS_PER_SECOND, MarketPanel
from kernels.rl_env import clip_targets

logger = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "sac": SAC, "td3": TD3}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
WORKER_EXIT_TIMEOUT_S = 3.0  # after SIGTERM, a worker still alive this long is killed


class TrainingStopped(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training; finished seeds stay, the others can be resumed.
    A ``KeyboardInterrupt``, so no library's ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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
    periods = panel_periods_per_year(panel, config.data.sessions_per_year, config.data.session_minutes)
    return SeedRun(seed, returns, turnover(traded, equity[:-1], periods), periods)


def _evaluation_market(panel: MarketPanel, features: FeatureSet, config: AppConfig, start: int, end: int) -> EnvMarket:
    whole_range = replace(config.rl_env, episode_length=panel.n_bars, max_drawdown=1.0)
    return EnvMarket.build(panel, features, whole_range, config.execution, start, end)


def train_seed(config: AppConfig, seed: int, out_dir: Path, show_progress: bool = False) -> dict[str, float]:
    """Train, select on validation, test out of sample and write the signed artifact of one
    seed; ``show_progress`` writes a line of timesteps to stderr every few seconds."""
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
    progress = TimestepProgress(seed, chunk * train.checkpoints) if show_progress else None
    best_sharpe, best_params = -np.inf, None
    for checkpoint in range(train.checkpoints):
        model.learn(chunk, reset_num_timesteps=checkpoint == 0, callback=progress)
        checked = evaluate_policy(model, panel, validation, config, seed)
        score = sharpe_ratio(checked.returns, checked.periods_per_year)
        score = score if np.isfinite(score) else -np.inf
        if best_params is None or score > best_sharpe:
            best_sharpe, best_params = score, copy.deepcopy(model.get_parameters())
        logger.info("RL_CHECKPOINT", extra={"seed": seed, "checkpoint": checkpoint, "validation_sharpe": score})
    model.set_parameters(best_params)
    run = evaluate_policy(model, panel, test, config, seed)
    metrics = seed_metrics(run, best_sharpe)
    ranges_ns = [int(panel.ts[0]), int(panel.ts[train_end]), int(panel.ts[validation_end]), int(panel.ts[-1]) + NS_PER_SECOND]
    fields = seed_manifest_fields(config, seed, features.provenance(), ranges_ns, metrics, panel.symbols)
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


def declared_seeds(config: AppConfig) -> range:
    return range(config.rl_train.first_seed, config.rl_train.first_seed + config.rl_train.seeds)


def finished_seeds(config: AppConfig, run_dir: Path) -> list[int]:
    """The seeds of the run whose artifact is in place (a seed directory exists only once complete)."""
    return [seed for seed in declared_seeds(config) if seed_dir(run_dir, seed).is_dir()]


def train_seeds(config: AppConfig, out_dir: Path, resume: bool = False) -> dict[int, dict[str, float]]:
    """Train every seed of a new run in ``out_dir``, or with ``resume`` the seeds an
    interrupted run in ``out_dir`` lacks (with its recorded configuration, which ``config``
    must equal), in parallel processes where cores allow. Returns every seed's metrics as
    its manifest records them.

    :raises TrainingStopped: on SIGINT or SIGTERM, once every worker has ended
    :raises ConfigError: bad settings, an existing run (without ``resume``), or a resume
        whose configuration differs from the run's
    """
    validate_train_config(config)
    with _stop_on_signals():
        _, features, _ = load_ranges(config)  # fail on bad data or ranges before any process starts
        load_signing_key(config.artifacts.signing_key_path, config.artifacts.signing_key_env)
        if resume:
            _check_resumable(config, out_dir, features.provenance())
        else:
            _refuse_existing_run(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            RunRecord.of(config, features.provenance()).write(out_dir)
        remove_staging(out_dir)
        missing = [seed for seed in declared_seeds(config) if not seed_dir(out_dir, seed).is_dir()]
        train = config.rl_train
        workers = min(train.workers or os.cpu_count() or 1, max(len(missing), 1))
        done = len(declared_seeds(config)) - len(missing)

        def report(seed: int, metrics: dict[str, float], seconds: float) -> None:
            nonlocal done
            done += 1
            logger.info("RL_SEED_DONE", extra={"seed": seed, "seconds": seconds, **metrics})
            print(seed_finished_line(seed, metrics, seconds, done, train.seeds), file=sys.stderr, flush=True)

        try:
            if workers == 1:
                for seed in missing:
                    report(*_seed_job(config, seed, out_dir, sys.stderr.isatty()))
            else:
                _train_in_pool(config, out_dir, missing, workers, report)
        finally:
            remove_staging(out_dir)  # every writer has ended: the emptied staging area and debris go
    return {seed: recorded_metrics(out_dir, seed) for seed in declared_seeds(config)}


def recorded_metrics(run_dir: Path, seed: int) -> dict[str, float]:
    """The metrics the seed's manifest records (finite ones only)."""
    return dict(Manifest.from_bytes((seed_dir(run_dir, seed) / MANIFEST_FILE).read_bytes()).fields.metrics)


def _refuse_existing_run(out_dir: Path) -> None:
    earlier = sorted(p.name for p in out_dir.glob(f"{SEED_DIR_PREFIX}*")) if out_dir.is_dir() else []
    if earlier or (out_dir / RUN_FILE).exists():
        what = f"{earlier[0]} of an earlier run" if earlier else f"the {RUN_FILE} of an earlier run"
        raise ConfigError(
            f"{out_dir} already holds {what}: resume it with `ai-trading train --resume {out_dir}` or train "
            "into a new directory (governance judges a run's seeds together)"
        )


def _check_resumable(config: AppConfig, run_dir: Path, provenance: dict[str, str | int]) -> None:
    record = RunRecord.read(run_dir)
    differences = record.differences(config)
    if differences:
        raise ConfigError(
            f"{run_dir} was trained with another configuration; a resumed run keeps its own (run "
            f"`ai-trading train --resume {run_dir}` without --config or overrides). Differences: "
            + "; ".join(differences)
        )
    record.check_data(provenance, run_dir)


def _seed_job(config: AppConfig, seed: int, out_dir: Path, show_progress: bool) -> tuple[int, dict[str, float], float]:
    """:func:`train_seed` timed: (seed, metrics, seconds)."""
    started = time.monotonic()
    metrics = train_seed(config, seed, out_dir, show_progress)
    return seed, metrics, time.monotonic() - started


def _train_in_pool(
    config: AppConfig,
    out_dir: Path,
    seeds: Sequence[int],
    workers: int,
    report: Callable[[int, dict[str, float], float], None],
) -> None:
    """One process per running seed; on any exception here (a stop signal, a failed seed)
    the workers are terminated before it propagates, so nothing trains on after we return."""
    others = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_leave_stopping_to_the_parent)
    try:
        futures = [pool.submit(_seed_job, config, seed, out_dir, sys.stderr.isatty()) for seed in seeds]
        for future in as_completed(futures):
            report(*future.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _end_processes([p for p in multiprocessing.active_children() if p not in others])
        raise
    finally:
        pool.shutdown(wait=True)


def _leave_stopping_to_the_parent() -> None:
    """Pool worker set-up: ignore SIGINT (a terminal sends it to the whole group; the parent
    handles it) and die at once on SIGTERM, which is how the parent stops a worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _end_processes(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(WORKER_EXIT_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()
    logger.info("RL_WORKERS_ENDED", extra={"workers": len(processes)})


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn the first SIGINT or SIGTERM into :class:`TrainingStopped` and ignore further
    ones until training has cleaned up (signal handlers can only be set in the main thread;
    elsewhere the caller decides how to stop). A library may turn the interrupt into its own
    error (DuckDB raises ``RuntimeError: Query interrupted``): that becomes the stop too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        received.append(signum)
        raise TrainingStopped(signum)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    except Exception as exc:
        if received:
            raise TrainingStopped(received[0]) from exc
        raise
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


if __name__ == "__main__":
    from ai_trading.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
