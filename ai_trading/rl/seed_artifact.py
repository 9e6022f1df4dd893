"""The signed artifacts of a multi-seed training run: written by training, read back verified.

A run directory holds one ``seed_<seed>/`` per seed, signed under the manifest name
``<model_name>.seed<seed>``, with the policy (``model.zip``) and its out-of-sample
evaluation (``evaluation.json``). Each manifest's training config records its seed and
the whole ``[rl_train]`` section, so :func:`read_run` can tell which seeds the run had and
refuses a run with a seed missing (a bad seed deleted before promotion), a seed from
another run, or a changed file: governance then judges exactly the signed results.

A seed is written whole or not at all: into ``.incomplete/seed_<seed>/`` first, signed
there, then renamed into place, so a stopped or killed training leaves only finished
seeds (and debris under ``.incomplete/``, which no reader looks at and the next
training of the run removes).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ai_trading.artifacts.atomic import fsync_dir
from ai_trading.artifacts.keys import Signer
from ai_trading.artifacts.loading import Trust, VerifiedArtifact, verify_artifact
from ai_trading.artifacts.manifest import ManifestFields
from ai_trading.artifacts.signing import sign_artifact_dir
from ai_trading.config import AppConfig
from ai_trading.errors import ProvenanceError
from ai_trading.evaluation.metrics import max_drawdown, sharpe_ratio
from ai_trading.rl.governance import EVALUATION_FILE, SeedRun

logger = logging.getLogger(__name__)

MODEL_FILE = "model.zip"
SEED_DIR_PREFIX = "seed_"
STAGING_DIR = ".incomplete"


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"{SEED_DIR_PREFIX}{seed}"


def artifact_name(model_name: str, seed: int) -> str:
    """The manifest name of one seed; rollback protection is per manifest name."""
    return f"{model_name}.seed{seed}"


def seed_metrics(run: SeedRun, validation_sharpe: float) -> dict[str, float]:
    """The metrics a seed's manifest records: its held-out test result and its selection score."""
    return {
        "test_sharpe": sharpe_ratio(run.returns, run.periods_per_year),
        "test_max_drawdown": -max_drawdown(run.returns),
        "test_net_return": float(np.prod(1.0 + run.returns) - 1.0),
        "test_turnover": run.turnover,
        "validation_sharpe": validation_sharpe,
    }


def seed_manifest_fields(
    config: AppConfig,
    seed: int,
    provenance: Mapping[str, Any],
    ranges_ns: list[int],
    metrics: Mapping[str, float],
    symbols: Sequence[str],
) -> ManifestFields:
    """What a seed's manifest states.

    :param provenance: ``FeatureSet.provenance()`` of the training features
    :param ranges_ns: start of the train, validation and test ranges and the end, ns UTC
    :param symbols: the panel's symbols in action order (recorded whether or not
        ``[rl_train] symbols`` named them, so a loader knows the order)
    :param metrics: :func:`seed_metrics`; non-finite values are left out
    """
    train = config.rl_train
    return ManifestFields(
        name=artifact_name(train.model_name, seed), version=train.model_version, kind="rl", algorithm=train.algo,
        **provenance,
        training_config={"seed": seed, "rl_train": asdict(train), "rl_env": asdict(config.rl_env),
                         "execution": asdict(config.execution), "ranges_ns": ranges_ns, "symbols": list(symbols)},
        metrics={k: float(v) for k, v in metrics.items() if np.isfinite(v)},
    )  # fmt: skip


def write_seed_artifact(
    directory: Path, save_model: Callable[[Path], None], run: SeedRun, fields: ManifestFields, signer: Signer
) -> None:
    """Write the policy (through ``save_model``) and its evaluation, sign them, and move the
    finished directory to ``directory`` in one rename (see the module docstring)."""
    if directory.exists():
        raise ProvenanceError(f"{directory} already exists: a seed artifact is written once")
    staging = directory.parent / STAGING_DIR / directory.name
    if staging.exists():
        shutil.rmtree(staging)  # debris of an earlier, interrupted attempt at this seed
    staging.mkdir(parents=True)
    save_model(staging / MODEL_FILE)
    (staging / EVALUATION_FILE).write_text(json.dumps(run.to_dict()), encoding="utf-8")
    for name in (MODEL_FILE, EVALUATION_FILE):
        _fsync_file(staging / name)
    sign_artifact_dir(staging, fields, signer)
    staging.rename(directory)
    fsync_dir(directory.parent)


def remove_staging(run_dir: Path) -> None:
    """Delete what interrupted seed writes left under ``run_dir``; call it only while no
    writer of this run is alive."""
    staging = run_dir / STAGING_DIR
    if staging.exists():
        shutil.rmtree(staging)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, eq=False)
class VerifiedRun:
    """A complete training run whose every seed artifact verified.

    :param model_name: ``[rl_train] model_name`` of the run
    :param version: the manifest version all its seeds share
    :param artifacts: seed -> its verified artifact
    :param runs: each seed's out-of-sample result, parsed from the verified bytes
    """

    model_name: str
    version: int
    artifacts: dict[int, VerifiedArtifact]
    runs: list[SeedRun]

    def select(self, seed: int | None = None) -> tuple[int, VerifiedArtifact]:
        """The given seed, or the one with the best validation Sharpe (the selection
        score training used; the test range stays untouched by the choice)."""
        if seed is None:
            scores = {s: a.manifest.fields.metrics.get("validation_sharpe", -math.inf) for s, a in self.artifacts.items()}
            seed = max(sorted(scores), key=scores.__getitem__)
        if seed not in self.artifacts:
            raise ProvenanceError(f"run of {self.model_name!r} has no seed {seed}; it has {sorted(self.artifacts)}")
        return seed, self.artifacts[seed]


def _training_config(artifact: VerifiedArtifact) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(seed, rl_train, the rest of the training config without the seed), or a clear refusal."""
    config = dict(artifact.manifest.fields.training_config)
    seed, train = config.pop("seed", None), config.get("rl_train")
    counts = [train.get(k) for k in ("model_version", "seeds", "first_seed")] if isinstance(train, dict) else [None]
    named = isinstance(train, dict) and isinstance(train.get("model_name"), str)
    if not (named and all(type(v) is int for v in [seed, *counts])):
        raise ProvenanceError(
            f"{artifact.path}: the manifest's training_config needs an integer seed and rl_train.model_name, "
            "model_version, seeds and first_seed; only seed artifacts written by `ai-trading train` can be promoted"
        )
    return seed, train, config  # type: ignore[return-value]


def read_run(run_dir: Path, trust: Trust, expected_feature_schema_hash: str) -> VerifiedRun:
    """Verify every ``seed_*`` artifact of ``run_dir`` (recording nothing) and check they form
    one complete run: same model, version, features, data and configuration, every seed
    the run declares present, each directory and manifest named for its seed.

    :raises SignatureError, ProvenanceError, FeatureSchemaMismatch: from verification or
        an inconsistent or incomplete run
    """
    run_dir = Path(run_dir)
    directories = sorted(p for p in run_dir.glob(f"{SEED_DIR_PREFIX}*") if p.is_dir()) if run_dir.is_dir() else []
    if not directories:
        raise ProvenanceError(
            f"{run_dir} holds no {SEED_DIR_PREFIX}* artifact directories: pass a run written by `ai-trading train`"
        )
    artifacts: dict[int, VerifiedArtifact] = {}
    shared: tuple[Any, ...] | None = None
    for directory in directories:
        artifact = verify_artifact(directory, trust, expected_feature_schema_hash)
        seed, train, rest = _training_config(artifact)
        fields = artifact.manifest.fields
        expected = (artifact_name(train["model_name"], seed), seed_dir(run_dir, seed).name, train["model_version"])
        if (fields.name, directory.name, fields.version, fields.kind) != (*expected, "rl"):
            raise ProvenanceError(
                f"{directory}: manifest {fields.name!r} v{fields.version} ({fields.kind}) does not match its run: "
                f"expected {expected[0]!r} v{expected[2]} (rl) in {expected[1]}/"
            )
        identity = (fields.algorithm, fields.feature_spec_name, fields.feature_spec_version,
                    fields.dataset_fingerprint, rest)  # fmt: skip
        if shared is not None and identity != shared:
            raise ProvenanceError(
                f"{directory} comes from another run than {directories[0]} (algorithm, features, data or configuration "
                "differ): governance judges the seeds of one run together"
            )
        shared = identity
        artifacts[seed] = artifact
    train = _training_config(artifacts[min(artifacts)])[1]
    declared = set(range(train["first_seed"], train["first_seed"] + train["seeds"]))
    if set(artifacts) != declared:
        raise ProvenanceError(
            f"{run_dir}: the run declares seeds {sorted(declared)} but holds {sorted(artifacts)}; "
            "every seed of a run is judged, none may be missing or added"
        )
    runs = []
    for seed, artifact in sorted(artifacts.items()):
        run = SeedRun.from_json(artifact.read(EVALUATION_FILE), f"{artifact.path}/{EVALUATION_FILE}")
        if run.seed != seed:
            raise ProvenanceError(f"{artifact.path}/{EVALUATION_FILE} is the evaluation of seed {run.seed}, not {seed}")
        runs.append(run)
    logger.info("RL_RUN_VERIFIED", extra={"run_dir": str(run_dir), "model": train["model_name"], "seeds": len(runs)})
    return VerifiedRun(train["model_name"], train["model_version"], artifacts, runs)
