"""`ai-trading registry promote | rollback | show` end to end, with keys from `keys generate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_trading.artifacts.keys import load_signing_key
from ai_trading.cli import main
from tests.artifacts.conftest import SCHEMA_HASH
from tests.artifacts.run_helpers import BEST_SEED, seed_runs, write_run

# The registry tests' criteria, as the [governance] section of a config file.
GOVERNANCE_TOML = """[governance]
min_seeds = 5
min_mean_sharpe = 1.0
max_sharpe_std = 1.5
max_drawdown = 0.3
min_turnover = 1.0
max_turnover = 20.0
min_deflated_sharpe = 0.5
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH", str(tmp_path / "keys" / "signing.key"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR", str(tmp_path / "keys" / "trusted"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__TRUST_STATE_PATH", str(tmp_path / "trust.json"))
    monkeypatch.setenv("AI_TRADING_ARTIFACTS__REGISTRY_DIR", str(tmp_path / "registry"))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert main(["keys", "generate"]) == 0
    path = tmp_path / "config.toml"
    path.write_text(GOVERNANCE_TOML)
    return path


def _show(capsys: pytest.CaptureFixture[str], config: Path) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert main(["registry", "show", "--config", str(config)]) == 0
    return json.loads(capsys.readouterr().out)


def test_promote_rollback_show(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signer = load_signing_key(tmp_path / "keys" / "signing.key", "AI_TRADING_SIGNING_KEY")
    runs = [write_run(tmp_path / f"run-v{v}", signer, seed_runs(0.002, rng_seed=v), version=v) for v in (1, 2)]
    options = ["--config", str(config), "--feature-schema-hash", SCHEMA_HASH]
    capsys.readouterr()
    assert main(["registry", "promote", str(runs[0]), *options]) == 0
    assert f"promoted momentum (rl) from {runs[0]} (seed {BEST_SEED})" in capsys.readouterr().out
    assert main(["registry", "promote", str(runs[0]), *options]) == 0
    assert "already the current model; nothing changed" in capsys.readouterr().out
    assert main(["registry", "promote", str(runs[1]), "--seed", "4", *options]) == 0
    state = _show(capsys, config)["momentum"]
    assert (state["current"]["name"], state["current"]["version"]) == ("momentum.seed4", 2)
    assert state["previous"]["version"] == 1

    assert main(["registry", "rollback", "momentum", *options]) == 0
    assert "rolled back momentum: current momentum.seed2 v1" in capsys.readouterr().out
    state = _show(capsys, config)["momentum"]
    assert (state["current"]["version"], state["current"]["action"], state["previous"]["version"]) == (1, "rollback", 2)
    assert main(["registry", "show", "momentum", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == {"momentum": state}


def test_refusals_exit_2_with_the_reason(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signer = load_signing_key(tmp_path / "keys" / "signing.key", "AI_TRADING_SIGNING_KEY")
    losing = write_run(tmp_path / "losing", signer, seed_runs(-0.002))
    options = ["--config", str(config), "--feature-schema-hash", SCHEMA_HASH]
    capsys.readouterr()
    assert main(["registry", "promote", str(losing), *options]) == 2
    error = capsys.readouterr().err
    assert "fails the promotion gate" in error and "NET_RETURN_NOT_POSITIVE" in error
    assert main(["registry", "promote", str(losing), "--config", str(config)]) == 2  # default: the current builder's hash
    assert "retrain on the current features" in capsys.readouterr().err
    assert main(["registry", "rollback", "momentum", *options]) == 2
    assert "no model 'momentum' in the registry" in capsys.readouterr().err
    assert _show(capsys, config) == {}
    assert not (tmp_path / "registry" / "audit.jsonl").exists()
