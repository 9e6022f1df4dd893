"""Multi-seed training end to end on a tiny store: signed artifacts, out-of-sample
evaluation through the simulator, governance on the run directory, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ai_trading.config import AppConfig, DataConfig, RLEnvConfig, RLTrainConfig, load_config
from ai_trading.errors import ConfigError

pytestmark = pytest.mark.rl

pytest.importorskip("stable_baselines3")
from ai_trading.artifacts.keys import HmacKey  # noqa: E402
from ai_trading.artifacts.manifest import MANIFEST_FILE, Manifest  # noqa: E402
from ai_trading.data import MarketDataStore  # noqa: E402
from ai_trading.rl.governance import load_runs  # noqa: E402
from ai_trading.rl_trading.train import train_seeds  # noqa: E402

ALGOS = ["ppo", "sac"]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    root = tmp_path_factory.mktemp("rl")
    data = DataConfig(db_path=root / "market.duckdb")
    with MarketDataStore(data.db_path) as store:
        store.generate("daily", 3, 420, 4)
    key = root / "signing.key"
    key.write_bytes(HmacKey.generate().to_text())
    base = load_config(environ={})
    return replace(
        base,
        data=data,
        rl_env=RLEnvConfig(episode_length=20),
        rl_train=RLTrainConfig(seeds=2, timesteps=96, n_envs=4, checkpoints=2, workers=1,
                               train_end="2016-03-01", validation_end="2016-05-01"),
        artifacts=replace(base.artifacts, signing_key_path=key, signing_key_env="AI_TRADING_TEST_UNSET_KEY"),
    )  # fmt: skip


@pytest.mark.parametrize("algo", ALGOS)
def test_train_writes_signed_seed_artifacts(config: AppConfig, tmp_path: Path, algo: str) -> None:
    config = replace(config, rl_train=replace(config.rl_train, algo=algo))
    results = train_seeds(config, tmp_path)
    assert sorted(results) == [0, 1]
    runs = load_runs(tmp_path)
    for run in runs:
        manifest = Manifest.from_bytes((tmp_path / f"seed_{run.seed}" / MANIFEST_FILE).read_bytes())
        assert manifest.fields.kind == "rl" and manifest.fields.algorithm == algo
        assert manifest.fields.training_config["seed"] == run.seed
        assert {f.path for f in manifest.files} == {"model.zip", "evaluation.json"}
        assert manifest.fields.metrics["test_net_return"] == pytest.approx(np.prod(1 + run.returns) - 1)
        assert np.isfinite(run.returns).all() and run.returns.size > 10


def test_bad_ranges_are_refused(config: AppConfig, tmp_path: Path) -> None:
    bad = replace(config, rl_train=replace(config.rl_train, validation_end="2014-01-01"))
    with pytest.raises(ConfigError, match="train_end"):
        train_seeds(bad, tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_directory_with_an_earlier_run_is_refused_before_training(config: AppConfig, tmp_path: Path) -> None:
    (tmp_path / "seed_7").mkdir()
    with pytest.raises(ConfigError, match="already holds seed_7 of an earlier run"):
        train_seeds(config, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["seed_7"]


def _toml(config: AppConfig, path: Path) -> Path:
    train = config.rl_train
    path.write_text(
        f'[data]\ndb_path = "{config.data.db_path}"\n'
        f'[artifacts]\nsigning_key_path = "{config.artifacts.signing_key_path}"\nsigning_key_env = "AI_TRADING_TEST_UNSET_KEY"\n'
        f"[rl_env]\nepisode_length = 20\n"
        f'[rl_train]\nn_envs = 4\ncheckpoints = 2\nworkers = 2\ntrain_end = "{train.train_end}"\n'
        f'validation_end = "{train.validation_end}"\n'
    )
    return path


def test_cli_trains_seeds_in_parallel_deterministically_and_govern_reads_the_run(
    config: AppConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ai_trading.cli import main

    toml = _toml(config, tmp_path / "env.toml")
    out = tmp_path / "run"
    assert main(["train", "--algo", "ppo", "--seeds", "2", "--timesteps", "96", "--env-config", str(toml), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert sorted(printed["seeds"]) == ["0", "1"]
    in_process = train_seeds(replace(config, rl_train=replace(config.rl_train, seeds=1)), tmp_path / "again")
    for name in ("evaluation.json",):
        assert (out / "seed_0" / name).read_bytes() == (tmp_path / "again" / "seed_0" / name).read_bytes()
    assert printed["seeds"]["0"]["test_sharpe"] == pytest.approx(in_process[0]["test_sharpe"])
    assert main(["govern", str(out), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert "TOO_FEW_SEEDS" in [r["code"] for r in report["rejections"]]
