"""A seed artifact appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ai_trading.artifacts.keys import HmacKey
from ai_trading.config import AppConfig
from ai_trading.errors import ProvenanceError
from ai_trading.rl.governance import SeedRun, load_runs
from ai_trading.rl.seed_artifact import (
    STAGING_DIR,
    remove_staging,
    seed_dir,
    seed_manifest_fields,
    seed_metrics,
    write_seed_artifact,
)

PROVENANCE = {"feature_spec_name": "default", "feature_spec_version": 1,
              "feature_schema_hash": "a" * 64, "dataset_fingerprint": "b" * 64}  # fmt: skip


def _write(run_dir: Path, seed: int, save: object) -> None:
    run = SeedRun(seed, np.full(20, 0.001), 2.0, 252.0)
    fields = seed_manifest_fields(AppConfig(), seed, PROVENANCE, [0, 1, 2, 3], seed_metrics(run, 0.5), ("SYN00",))
    write_seed_artifact(seed_dir(run_dir, seed), save, run, fields, HmacKey.generate())  # type: ignore[arg-type]


def test_an_interrupted_write_leaves_no_seed_directory(tmp_path: Path) -> None:
    def interrupted(path: Path) -> None:
        path.write_bytes(b"half a model")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path, 3, interrupted)
    assert not seed_dir(tmp_path, 3).exists() and (tmp_path / STAGING_DIR / "seed_3").is_dir()
    _write(tmp_path, 4, lambda path: path.write_bytes(b"model"))
    assert [r.seed for r in load_runs(tmp_path)] == [4]  # readers never see the staged seed
    _write(tmp_path, 3, lambda path: path.write_bytes(b"model"))  # a retry replaces the debris
    files = sorted(p.name for p in seed_dir(tmp_path, 3).iterdir())
    assert files == ["evaluation.json", "manifest.json", "manifest.sig", "model.zip"]
    remove_staging(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_3", "seed_4"]
    with pytest.raises(ProvenanceError, match="written once"):
        _write(tmp_path, 3, lambda path: path.write_bytes(b"model"))
