"""Signed multi-seed training runs, written with training's own writer functions but
without training: the registry tests need the run layout, not a trained policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ai_trading.artifacts import Signer
from ai_trading.config import AppConfig, RLTrainConfig
from ai_trading.rl.governance import SeedRun
from ai_trading.rl.seed_artifact import seed_dir, seed_manifest_fields, seed_metrics, write_seed_artifact
from tests.artifacts.conftest import DATASET, SCHEMA_HASH

PROVENANCE = {
    "feature_spec_name": "default",
    "feature_spec_version": 1,
    "feature_schema_hash": SCHEMA_HASH,
    "dataset_fingerprint": DATASET,
}
DAILY_PERIODS = 252.0  # the built-in data is daily
DAY_NS = 86_400_000_000_000
RANGES_NS = [0, 300 * DAY_NS, 400 * DAY_NS, 500 * DAY_NS]
N_SEEDS = 6
SYMBOLS = ("SYN00", "SYN01")  # the action order a seed records
BEST_SEED = 2  # the seed with the best validation Sharpe, which promotion picks by default


def seed_runs(drift: float, n_seeds: int = N_SEEDS, rng_seed: int = 0) -> list[SeedRun]:
    """Out-of-sample results of ``n_seeds`` seeds: daily returns around ``drift``."""
    rng = np.random.default_rng(rng_seed)
    return [SeedRun(s, rng.normal(drift, 0.01, 500), float(rng.uniform(3, 8)), DAILY_PERIODS) for s in range(n_seeds)]


def policy_bytes(model_name: str, version: int, seed: int) -> bytes:
    return f"policy {model_name} v{version} seed {seed}".encode() * 20


def write_run(
    run_dir: Path,
    signer: Signer,
    runs: list[SeedRun],
    model_name: str = "momentum",
    version: int = 1,
    provenance: dict[str, object] = PROVENANCE,
) -> Path:
    """Write and sign ``run_dir`` as `ai-trading train` lays it out: one ``seed_<s>/`` per run."""
    train = replace(RLTrainConfig(), seeds=len(runs), first_seed=runs[0].seed, model_name=model_name, model_version=version)
    config = replace(AppConfig(), rl_train=train)
    for run in runs:
        metrics = seed_metrics(run, validation_sharpe=1.0 if run.seed == BEST_SEED else 0.5)
        fields = seed_manifest_fields(config, run.seed, provenance, RANGES_NS, metrics, SYMBOLS)
        policy = policy_bytes(model_name, version, run.seed)
        write_seed_artifact(seed_dir(run_dir, run.seed), lambda path: path.write_bytes(policy), run, fields, signer)
    return run_dir
