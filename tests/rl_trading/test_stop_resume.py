"""Stopping `ai-trading train` with SIGINT, SIGTERM or SIGKILL and resuming it: the run
directory holds only complete, verifiable seeds, no worker outlives the command, and
`--resume` ends with the artifacts of an uninterrupted run.

Training is deterministic per seed, also across processes: the evaluation and the
policy's weights (``policy.pth`` in ``model.zip``) are byte-identical; the zip as a whole
is not, SB3 stores the save time and the wall-clock start of training in it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ai_trading.config import AppConfig, load_config

pytestmark = pytest.mark.rl

pytest.importorskip("stable_baselines3")
from ai_trading.artifacts import Trust, TrustState  # noqa: E402
from ai_trading.artifacts.keys import HmacKey, parse_signing_key  # noqa: E402
from ai_trading.artifacts.loading import verify_artifact  # noqa: E402
from ai_trading.cli import main  # noqa: E402
from ai_trading.data import MarketDataStore  # noqa: E402
from ai_trading.features import FeatureBuilder  # noqa: E402
from ai_trading.rl.seed_artifact import read_run  # noqa: E402
from ai_trading.rl_trading.train import train_seeds  # noqa: E402

SEEDS = 3
TIMESTEPS = 2000  # about 2 s a seed: a stop signal sent when the first seed is done lands mid-training
STOP_WITHIN_S = 10.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Stop:
    """How the test stops the command: which signal, sent to the whole process group (as a
    terminal's Ctrl-C is) or to the command only (as `kill PID` is), with how many workers."""

    signum: int
    group: bool
    workers: int


STOPS = [
    pytest.param(Stop(signal.SIGINT, group=True, workers=2), id="ctrl-c-pool"),
    pytest.param(Stop(signal.SIGTERM, group=False, workers=2), id="sigterm-pool"),
    pytest.param(Stop(signal.SIGINT, group=False, workers=1), id="sigint-sequential"),
    pytest.param(Stop(signal.SIGKILL, group=True, workers=1), id="sigkill-sequential"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rl-stop")
    with MarketDataStore(root / "market.duckdb") as market:
        market.generate("daily", 3, 420, 4)
    (root / "signing.key").write_bytes(HmacKey.generate().to_text())
    return root


def write_toml(store: Path, path: Path, workers: int, timesteps: int = TIMESTEPS, seeds: int = SEEDS) -> Path:
    path.write_text(
        f'[data]\ndb_path = "{store / "market.duckdb"}"\n'
        f'[artifacts]\nsigning_key_path = "{store / "signing.key"}"\nsigning_key_env = "AI_TRADING_TEST_UNSET_KEY"\n'
        "[rl_env]\nepisode_length = 20\n"
        f"[rl_train]\nseeds = {seeds}\ntimesteps = {timesteps}\nn_envs = 2\ncheckpoints = 2\nworkers = {workers}\n"
        'train_end = "2016-03-01"\nvalidation_end = "2016-05-01"\n'
    )
    return path


def _config(toml: Path) -> AppConfig:
    return load_config(toml, environ={})


@pytest.fixture(scope="module")
def reference(store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """An uninterrupted run of the same seeds, one per worker setting (the setting is part of
    the recorded configuration, so each stopped run is compared with its own)."""
    root = tmp_path_factory.mktemp("reference")
    runs = {}
    for workers in (1, 2):
        runs[workers] = root / f"workers{workers}"
        train_seeds(_config(write_toml(store, root / f"w{workers}.toml", workers)), runs[workers])
    return runs


def _trust(store: Path, tmp_path: Path) -> Trust:
    key = parse_signing_key((store / "signing.key").read_bytes(), "test key")
    return Trust(keys={key.key_id: key}, state=TrustState(tmp_path / "trust.json"))


def _wait_for_a_seed(run_dir: Path, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(run_dir.glob("seed_*")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no seed finished in time"
        time.sleep(0.02)


def _policy_bytes(seed_dir: Path) -> bytes:
    with zipfile.ZipFile(seed_dir / "model.zip") as archive:
        return archive.read("policy.pth")


@pytest.mark.parametrize("stop", STOPS)
def test_a_stopped_run_is_consistent_and_resumes_to_the_uninterrupted_artifacts(
    stop: Stop, store: Path, reference: dict[int, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = write_toml(store, tmp_path / "run.toml", stop.workers)
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_TRADING_")}
    command = [sys.executable, "-m", "ai_trading.rl_trading.train", "--config", str(toml), "--out", str(run_dir)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_a_seed(run_dir, process)
        sent = time.monotonic()
        if stop.group:
            os.killpg(process.pid, stop.signum)
        else:
            process.send_signal(stop.signum)
        _, err = process.communicate(timeout=STOP_WITHIN_S)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    time.sleep(0.5)  # let orphaned workers, if there were any, show up in the group
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no worker outlived the command
    finished = sorted(int(p.name.removeprefix("seed_")) for p in run_dir.glob("seed_*"))
    assert 1 <= len(finished) < SEEDS, "the stop must land while a seed is still training"

    if stop.signum == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
        assert {p.name for p in run_dir.iterdir()} <= {"run.json", ".incomplete", *(f"seed_{s}" for s in finished)}
    else:
        assert elapsed < STOP_WITHIN_S
        assert process.returncode == 128 + stop.signum, err.decode()[-3000:]
        text = err.decode()
        assert f"stopped by {signal.Signals(stop.signum).name}; seeds finished: {', '.join(map(str, finished))} of 0..2" in text
        assert f"resume with: ai-trading train --resume {run_dir}" in text
        assert {p.name for p in run_dir.iterdir()} == {"run.json", *(f"seed_{s}" for s in finished)}
    trust = _trust(store, tmp_path)
    schema_hash = FeatureBuilder().feature_schema_hash
    for seed in finished:
        verify_artifact(run_dir / f"seed_{seed}", trust, schema_hash)  # complete and signed

    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = reference[stop.workers]
    assert printed["seeds"] == {str(s): _recorded(expected, s) for s in range(SEEDS)}
    for seed in range(SEEDS):
        done, uninterrupted = run_dir / f"seed_{seed}", expected / f"seed_{seed}"
        assert (done / "evaluation.json").read_bytes() == (uninterrupted / "evaluation.json").read_bytes()
        assert _policy_bytes(done) == _policy_bytes(uninterrupted)
    assert not (run_dir / ".incomplete").exists()
    assert sorted(read_run(run_dir, trust, schema_hash).artifacts) == list(range(SEEDS))


def _recorded(run_dir: Path, seed: int) -> dict[str, float]:
    return json.loads((run_dir / f"seed_{seed}" / "manifest.json").read_bytes())["metrics"]


def test_resume_with_another_configuration_is_refused_and_changes_nothing(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = write_toml(store, tmp_path / "run.toml", workers=1, timesteps=96, seeds=2)
    run_dir = tmp_path / "run"
    train_seeds(_config(toml), run_dir)
    (run_dir / "seed_1").rename(tmp_path / "seed_1.kept")  # as if the run had stopped before seed 1
    before = sorted(p.name for p in run_dir.iterdir())

    other = write_toml(store, tmp_path / "other.toml", workers=1, timesteps=200, seeds=2)
    assert main(["train", "--resume", str(run_dir), "--config", str(other)]) == 2
    assert "rl_train.timesteps: run has 96, given 200" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir), "--config", str(toml), "--algo", "sac"]) == 2
    assert "rl_train.algo: run has 'ppo', given 'sac'" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == before

    assert main(["train", "--config", str(toml), "--out", str(run_dir)]) == 2
    assert f"resume it with `ai-trading train --resume {run_dir}`" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "seed_1.kept")]) == 2
    assert "has no run.json" in capsys.readouterr().err

    assert main(["train", "--resume", str(run_dir), "--config", str(toml)]) == 0  # the same configuration resumes
    assert sorted(json.loads(capsys.readouterr().out)["seeds"]) == ["0", "1"]


def test_default_output_goes_to_the_user_data_dir_not_the_cwd(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = write_toml(store, tmp_path / "run.toml", workers=1, timesteps=96, seeds=1)
    data_home, cwd = tmp_path / "data-home", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.chdir(cwd)
    assert main(["train", "--config", str(toml)]) == 0
    captured = capsys.readouterr()
    run_dir = Path(json.loads(captured.out)["run_dir"])
    assert run_dir.parent == data_home / "ai-trading" / "rl_runs" and run_dir.name.startswith("rl-portfolio-")
    assert (run_dir / "seed_0" / "manifest.json").is_file()
    assert f"training run in {run_dir}" in captured.err and f"ai-trading govern {run_dir}" in captured.err
    assert "seed 0 finished [1/1]: validation Sharpe" in captured.err
    assert list(cwd.iterdir()) == []
