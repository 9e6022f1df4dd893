"""`ai-trading replay` and `ai-trading tca`: the summary, clean stops on SIGINT/SIGTERM,
the start-up gates (a model of another feature schema never trades; too little history
stops with a clear error) and a resumed run that refuses other parameters."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from ai_trading.artifacts import ManifestFields, sign_artifact_dir
from ai_trading.artifacts.keys import load_signing_key
from ai_trading.cli import main
from ai_trading.config import load_config
from ai_trading.runtime.replay import BROKER_FILE
from ai_trading.runtime.run_state import RunState
from tests.runtime.replay_harness import make_store

SYMBOLS = "SYN00,SYN01,SYN02,SYN03,SYN04,SYN05"
STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("bars") / "bars.duckdb", n_bars=400)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys, trust state, registry and runs under the test's directory."""
    for name, value in {
        "AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH": tmp_path / "keys" / "signing.key",
        "AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR": tmp_path / "keys" / "trusted",
        "AI_TRADING_ARTIFACTS__TRUST_STATE_PATH": tmp_path / "trust.json",
        "AI_TRADING_ARTIFACTS__REGISTRY_DIR": tmp_path / "registry",
        "AI_TRADING_RUNTIME__RUNS_DIR": tmp_path / "runs",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG", "AI_TRADING_OMS_DSN"):
        monkeypatch.delenv(name, raising=False)


def _replay(store: Path, *extra: str) -> list[str]:
    return ["replay", "--model", "demo", "--symbols", SYMBOLS, "--db", str(store), *extra]


def _broker_orders(run_dir: Path) -> int:
    with closing(sqlite3.connect(run_dir / BROKER_FILE)) as db:
        return int(db.execute("SELECT count(*) FROM orders").fetchone()[0])


def test_replay_prints_the_summary_and_tca_reads_the_run(store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert main(_replay(store_path, "--start", "2015-03-02", "--end", "2015-06-01", "--out", str(run_dir), "--json")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["orders"] > 0 and summary["fills"] > 0 and summary["bars"] > 50 and not summary["stopped"]
    assert summary["pnl"] == pytest.approx(summary["final_equity"] - summary["initial_cash"])
    assert summary["fees"] > 0 and summary["predicted_cost"] > 0 and summary["realized_cost"] != 0
    assert (run_dir / "execution_log.parquet").exists() and (run_dir / "run.json").exists()
    assert main(["tca", "--run", str(run_dir), "--json"]) == 0
    tca = json.loads(capsys.readouterr().out)
    assert {row["symbol"] for row in tca["symbol"]} <= set(SYMBOLS.split(",")) and tca["day"]
    assert sum(row["orders"] for row in tca["day"]) == tca["total"][0]["orders"] == sum(row["orders"] for row in tca["symbol"])
    assert main(["tca", "--run", str(run_dir)]) == 0
    assert "by symbol:" in capsys.readouterr().out
    # The same command again resumes a finished run: nothing more to do, the same summary.
    assert main(_replay(store_path, "--start", "2015-03-02", "--end", "2015-06-01", "--out", str(run_dir), "--json")) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["orders"], again["final_equity"]) == (summary["orders"], summary["final_equity"])


def test_a_run_directory_refuses_another_replay(store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert main(_replay(store_path, "--start", "2015-03-02", "--end", "2015-04-01", "--out", str(run_dir))) == 0
    capsys.readouterr()
    assert main(_replay(store_path, "--start", "2015-03-02", "--end", "2015-05-01", "--out", str(run_dir))) == 2
    assert "start-up gate 'config' failed" in capsys.readouterr().err


def test_too_little_history_stops_at_the_history_gate(store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    assert main(_replay(store_path, "--start", "2015-01-05", "--end", "2015-03-01", "--out", str(run_dir))) == 2
    err = capsys.readouterr().err
    assert "start-up gate 'history' failed" in err and "needs 20 bars" in err and "start later or ingest earlier bars" in err
    assert _broker_orders(run_dir) == 0


def test_a_model_of_another_feature_schema_never_trades(store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate"]) == 0
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.bin").write_bytes(b"weights")
    fields = ManifestFields(
        name="other-schema", version=1, kind="ml", algorithm="ridge", feature_spec_name="default", feature_spec_version=1,
        feature_schema_hash="0" * 64, dataset_fingerprint="1" * 64,
    )  # fmt: skip
    config = load_config()
    sign_artifact_dir(model, fields, load_signing_key(config.artifacts.signing_key_path, config.artifacts.signing_key_env))
    capsys.readouterr()
    run_dir = tmp_path / "run"
    command = ["replay", "--model", str(model), "--db", str(store_path), "--start", "2015-03-02", "--end", "2015-04-01", "--out", str(run_dir)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "start-up gate 'model' failed" in err and "0" * 16 in err
    assert _broker_orders(run_dir) == 0
    with RunState(run_dir, read_only=True) as state:
        assert state.cursor().bar_ts is None and state.cursor().orders == 0


@pytest.mark.parametrize("stop", STOP_SIGNALS)
def test_a_stop_signal_finishes_the_bar_and_exits_0_saying_where(store_path: Path, tmp_path: Path, stop: signal.Signals) -> None:
    run_dir = tmp_path / "run"
    command = [sys.executable, "-c", "from ai_trading.cli import main; raise SystemExit(main())",
               *_replay(store_path, "--start", "2015-03-02", "--end", "2016-06-01", "--out", str(run_dir))]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _started(run_dir):
        time.sleep(0.05)
    child.send_signal(stop)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err[-2000:]
    with RunState(run_dir, read_only=True) as state:
        cursor = state.cursor()
    assert cursor.bar_ts is not None
    day = time.strftime("%Y-%m-%d", time.gmtime(cursor.bar_ts // 1_000_000_000))
    assert f"replay stopped by signal {int(stop)} at bar {day} after {cursor.orders} orders" in err
    assert "(stopped; run the same command to resume)" in out
    assert day < "2016-05-31"  # it stopped early, not at the end of the range


def _started(run_dir: Path) -> bool:
    """The loop has finished at least one bar."""
    if not (run_dir / "run.sqlite").exists():
        return False
    with closing(sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT bar_ts FROM cursor").fetchone()
        except sqlite3.OperationalError:  # the schema is still being created
            return False
    return row is not None and row[0] is not None


def test_risk_denials_lists_what_the_checks_refused(store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each refusal is persisted with its rebalance and shown by `ai-trading risk denials`."""
    monkeypatch.setenv("AI_TRADING_RISK__MAX_ORDER_NOTIONAL", "2000")  # the demo's orders are larger
    run_dir = tmp_path / "run"
    assert main([*_replay(store_path, "--start", "2016-03-01", "--end", "2016-04-01", "--out", str(run_dir)), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    dsn = f"sqlite:///{run_dir / 'oms.sqlite'}"
    assert main(["risk", "denials", "--dsn", dsn, "--last", "1000", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    refused = [d for r in listed["rebalances"] for d in r["denials"]]
    assert len(refused) == summary["risk_denials"] > 0
    assert {d["reason"] for d in refused} >= {"max_order_notional"}
    assert all(float(d["value"]) > float(d["limit"]) for d in refused if d["reason"] == "max_order_notional")
    assert main(["risk", "denials", "--dsn", dsn, "--last", "2"]) == 0
    text = capsys.readouterr().out
    assert "refused" in text and "max_order_notional (limit 2000" in text
