"""Replay equals backtest for a registered ML model: `ml train` -> `registry promote` ->
a replay by name, against the PortfolioSimulator on the same model's target weights
(features built by the loop on its window, by the backtest on the whole panel)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ai_trading.cli import main
from ai_trading.config import load_config
from ai_trading.features import FeatureBuilder
from ai_trading.models.registry_loading import load_policy
from tests.runtime.replay_harness import CASH, backtest, parity_config, replay

MODEL = "ridge-r"
SYMBOLS = "SYN00,SYN01,SYN02,SYN03,SYN04,SYN05"
START, END = "2016-10-03", "2017-04-03"  # after the training range and the features' 273-bar warm-up
LENIENT = """[ml_governance]
min_deflated_sharpe = 0.0
max_pbo = 1.0
min_net_sharpe = -100.0
max_drawdown = 1.0
min_turnover = 0.0
max_turnover = 1000.0
min_cpcv_sharpe_mean = -100.0
[evaluation]
cpcv_groups = 4
folds = 3
"""


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {
        "AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH": tmp_path / "keys" / "signing.key",
        "AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR": tmp_path / "keys" / "trusted",
        "AI_TRADING_ARTIFACTS__TRUST_STATE_PATH": tmp_path / "trust.json",
        "AI_TRADING_ARTIFACTS__REGISTRY_DIR": tmp_path / "registry",
        "AI_TRADING_DATA__DB_PATH": tmp_path / "bars.duckdb",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "lenient.toml").write_text(LENIENT)
    config = ["--config", str(tmp_path / "lenient.toml")]
    assert main(["keys", "generate"]) == 0
    assert main(["data", "generate", "--symbols", "6", "--bars", "600"]) == 0
    train = ["ml", "train", "--name", MODEL, "--symbols", SYMBOLS, "--start", "2015-01-01", "--end", "2016-09-01"]
    assert main([*train, "--out", str(tmp_path / "model"), *config]) == 0
    assert main(["registry", "promote", str(tmp_path / "model"), *config]) == 0
    return tmp_path


def test_replay_of_a_registered_ridge_model_equals_its_backtest(registered: Path) -> None:
    config = replace(parity_config(registered), artifacts=load_config().artifacts)
    store = registered / "bars.duckdb"
    result = replay(config, store, registered / "run", model=MODEL, symbols=None, start=START, end=END)
    policy = load_policy(MODEL, config, FeatureBuilder(), ())
    ts, backtested, targets = backtest(config, store, policy, start=START, end=END)
    bars = np.array(sorted(result.equity), dtype=np.int64)
    index = np.searchsorted(ts, bars)
    assert bars.size > 100 and np.isfinite(targets[index[:-1]]).all()
    replayed = np.array([result.equity[b] for b in bars])
    np.testing.assert_allclose(replayed, backtested.equity[index], rtol=0, atol=2e-5 * CASH)
    assert result.execution_log.num_rows > 100 and abs(replayed[-1] - CASH) > 1_000
    record = json.loads((registered / "run" / "run.json").read_text())
    manifest = json.loads((registered / "model" / "manifest.json").read_text())
    assert record["model_name"] == MODEL and record["model_dataset_fingerprint"] == manifest["dataset_fingerprint"]
    assert record["feature_schema_hash"] == FeatureBuilder().feature_schema_hash and len(record["data_fingerprint"]) == 64
