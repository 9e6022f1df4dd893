"""The run record that resuming relies on, and the timestep progress line."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ai_trading.config import AppConfig
from ai_trading.errors import ConfigError, DatasetFingerprintMismatch, FeatureSchemaMismatch

pytestmark = pytest.mark.rl

pytest.importorskip("stable_baselines3")
from stable_baselines3 import PPO  # noqa: E402

from ai_trading.rl_trading.env import VecPortfolioEnv  # noqa: E402
from ai_trading.rl_trading.progress import TimestepProgress  # noqa: E402
from ai_trading.rl_trading.run_record import RUN_FILE, RunRecord  # noqa: E402
from tests.rl_trading.helpers import make_market, random_panel  # noqa: E402

PROVENANCE = {"feature_schema_hash": "a" * 64, "dataset_fingerprint": "b" * 64}


def _config() -> AppConfig:
    config = AppConfig()
    train, execution = replace(config.rl_train, seeds=3, timesteps=96), replace(config.execution, fee_bps=0.5)
    return replace(config, rl_train=train, execution=execution)


def test_a_record_reads_back_and_restores_its_configuration(tmp_path: Path) -> None:
    config = _config()
    RunRecord.of(config, PROVENANCE).write(tmp_path)
    record = RunRecord.read(tmp_path)
    restored = record.apply(AppConfig())
    assert (restored.rl_train, restored.rl_env, restored.execution) == (config.rl_train, config.rl_env, config.execution)
    assert restored.data.db_path == config.data.db_path
    assert restored.artifacts.signing_key_path == config.artifacts.signing_key_path
    assert record.differences(restored) == []
    changed = replace(restored, rl_env=replace(restored.rl_env, episode_length=9))
    assert record.differences(changed) == ["rl_env.episode_length: run has 252, given 9"]


def test_a_resume_on_other_data_or_features_is_refused(tmp_path: Path) -> None:
    record = RunRecord.of(_config(), PROVENANCE)
    record.check_data(PROVENANCE, tmp_path)
    with pytest.raises(DatasetFingerprintMismatch, match="the bars changed"):
        record.check_data({**PROVENANCE, "dataset_fingerprint": "c" * 64}, tmp_path)
    with pytest.raises(FeatureSchemaMismatch, match="train a new run"):
        record.check_data({**PROVENANCE, "feature_schema_hash": "c" * 64}, tmp_path)


@pytest.mark.parametrize("text", ["{", '{"format": 1}', '{"format": 99}'])
def test_a_damaged_record_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / RUN_FILE).write_text(text)
    with pytest.raises(ConfigError, match="run.json|run record"):
        RunRecord.read(tmp_path)


def test_timestep_progress_writes_periodic_lines() -> None:
    vec = VecPortfolioEnv(make_market(random_panel(80, 2)), 2)
    model = PPO("MlpPolicy", vec, seed=0, n_steps=16, batch_size=32, device="cpu")
    stream = io.StringIO()
    model.learn(64, callback=TimestepProgress(4, 64, interval_s=0.0, stream=stream))
    lines = stream.getvalue().splitlines()
    counts = [int(re.fullmatch(r"seed 4: (\d+)/64 timesteps \(\d+%\), \d+ s", line)[1]) for line in lines]  # type: ignore[index]
    assert counts == sorted(counts) and counts[-1] == 64 and len(counts) == 32  # one line per step of 2 envs
    quiet = io.StringIO()
    model.learn(64, callback=TimestepProgress(4, 64, interval_s=3600.0, stream=quiet))
    assert quiet.getvalue() == ""
