"""Alerts raised by commands: walk-forward anomaly flags and a run over its budget, a
promotion gate's rejection (a warning for a candidate, critical for the current model),
delivered through the outbox of the OMS database to a local webhook; without a reachable
OMS database the command still succeeds and the alerts are logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_trading.cli import main
from ai_trading.config import OmsConfig, load_config
from ai_trading.monitoring.outbox import Outbox
from ai_trading.oms.engine import create_oms_engine
from ai_trading.oms.intent_store import IntentStore
from tests.monitoring.helpers import WebhookLog, serve_webhook
from tests.runtime.test_replay_ml_parity import LENIENT

SYMBOLS = "SYN00,SYN01,SYN02,SYN03"
STRICT_GATE = "[ml_governance]\nmin_net_sharpe = 100.0\n"
FLAGGING = "[evaluation]\nmax_plausible_sharpe = -100.0\ncpcv_groups = 4\nfolds = 3\n"
NO_BUDGET = "run_budget_s = 0.0\n"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {
        "AI_TRADING_ARTIFACTS__SIGNING_KEY_PATH": tmp_path / "keys" / "signing.key",
        "AI_TRADING_ARTIFACTS__TRUSTED_KEYS_DIR": tmp_path / "keys" / "trusted",
        "AI_TRADING_ARTIFACTS__TRUST_STATE_PATH": tmp_path / "trust.json",
        "AI_TRADING_ARTIFACTS__REGISTRY_DIR": tmp_path / "registry",
        "AI_TRADING_DATA__DB_PATH": tmp_path / "bars.duckdb",
    }.items():
        monkeypatch.setenv(name, str(value))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG", "AI_TRADING_OMS_DSN"):  # the config files name the OMS database (after the postgres fixture read it)
        monkeypatch.delenv(name, raising=False)
    assert main(["keys", "generate"]) == 0
    assert main(["data", "generate", "--symbols", "4", "--bars", "500"]) == 0
    return tmp_path


@pytest.fixture
def webhook() -> Iterator[tuple[WebhookLog, int]]:
    log = WebhookLog()
    server = serve_webhook(log)
    try:
        yield log, int(server.server_address[1])
    finally:
        server.shutdown()


def config_file(path: Path, dsn: str, port: int, extra: str, alerts: str = "") -> Path:
    routes = path.with_suffix(".routes.toml")
    routes.write_text(
        f'[[receivers]]\nname = "hook"\n[receivers.webhook]\nurl = "http://127.0.0.1:{port}/"\n'
        '[route]\nreceiver = "hook"\ngroup_by = ["alertname"]\ngroup_wait = "30s"\n'
    )
    path.write_text(f'[oms]\ndsn = "{dsn}"\n[alerts]\nroutes_file = "{routes}"\n{alerts}' + extra)
    return path


def delivered(log: WebhookLog, alertname: str) -> list[dict[str, Any]]:
    return [p for p in log.payloads.values() if p["groupLabels"].get("alertname") == alertname]


def test_walkforward_anomalies_and_run_budget_are_delivered(
    oms_store: IntentStore, oms_database_url: str, env: Path, webhook: tuple[WebhookLog, int], capsys: pytest.CaptureFixture[str]
) -> None:
    log, port = webhook
    config = config_file(env / "wf.toml", oms_database_url, port, FLAGGING, alerts=NO_BUDGET)
    capsys.readouterr()
    assert main(["walkforward", "--symbols", SYMBOLS, "--name", "wf-alerts", "--config", str(config), "--json"]) == 0
    flags = {(a["code"], a["scope"], a["severity"]) for a in json.loads(capsys.readouterr().out)["anomalies"]}
    [anomalies] = delivered(log, "EvaluationAnomaly")  # every flag of the run, one group, sent at once (group_wait flushed)
    sent = {(a["labels"]["code"], a["labels"]["scope"], a["labels"]["severity"]) for a in anomalies["alerts"]}
    assert sent == flags and ("IMPLAUSIBLE_SHARPE", "aggregate", "warning") in sent
    assert all(a["labels"]["run"] == "walkforward wf-alerts" for a in anomalies["alerts"])
    [budget] = delivered(log, "RunOverBudget")
    assert budget["alerts"][0]["annotations"]["threshold"] == "0"
    assert Outbox(oms_store.engine).entries() == []  # delivered: nothing pending or failed


def test_promote_rejection_alerts_warning_for_a_candidate_critical_for_the_current_model(
    oms_store: IntentStore, oms_database_url: str, env: Path, webhook: tuple[WebhookLog, int]
) -> None:
    log, port = webhook
    lenient = config_file(env / "lenient.toml", oms_database_url, port, LENIENT)
    strict = config_file(env / "strict.toml", oms_database_url, port, STRICT_GATE)
    train = ["ml", "train", "--name", "gated", "--symbols", SYMBOLS, "--start", "2015-01-01", "--end", "2016-06-01"]
    assert main([*train, "--out", str(env / "model"), "--config", str(lenient)]) == 0

    assert main(["registry", "promote", str(env / "model"), "--config", str(strict)]) == 2
    [candidate] = delivered(log, "GovernanceGateFailed")
    [alert] = candidate["alerts"]
    assert alert["labels"] == {"alertname": "GovernanceGateFailed", "severity": "warning", "model": "gated", "kind": "ml"}
    assert "min_net_sharpe" in alert["annotations"]["description"] or "net_sharpe" in alert["annotations"]["description"]

    assert main(["registry", "promote", str(env / "model"), "--config", str(lenient)]) == 0
    assert main(["registry", "promote", str(env / "model"), "--config", str(strict)]) == 2  # the current model fails now
    severities = sorted(p["alerts"][0]["labels"]["severity"] for p in delivered(log, "GovernanceGateFailed"))
    assert severities == ["critical", "warning"]
    assert Outbox(oms_store.engine).entries() == []


def test_without_an_oms_database_a_command_logs_its_alerts_and_succeeds(env: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = env / "nowhere" / "oms.sqlite"
    config = env / "no-oms.toml"
    config.write_text(f'[oms]\ndsn = "sqlite:///{missing}"\n[alerts]\n{NO_BUDGET}' + FLAGGING)
    with caplog.at_level(logging.ERROR, logger="ai_trading.monitoring.notify"):
        assert main(["walkforward", "--symbols", SYMBOLS, "--name", "offline", "--config", str(config), "--json"]) == 0
    logged = {r.__dict__["alert"] for r in caplog.records if r.getMessage() == "ALERT_NOT_QUEUED"}
    assert logged == {"EvaluationAnomaly", "RunOverBudget"}
    assert not missing.exists()  # nothing created behind the user's back


def test_an_unmigrated_oms_database_is_reported_not_fatal(env: Path, caplog: pytest.LogCaptureFixture) -> None:
    empty = env / "empty.sqlite"
    create_oms_engine(OmsConfig(dsn=f"sqlite:///{empty}")).connect().close()  # exists, no tables
    config = env / "empty.toml"
    config.write_text(f'[oms]\ndsn = "sqlite:///{empty}"\n[alerts]\n{NO_BUDGET}' + FLAGGING)
    assert load_config(config).alerts.run_budget_s == 0.0
    with caplog.at_level(logging.ERROR, logger="ai_trading.monitoring.notify"):
        assert main(["walkforward", "--symbols", SYMBOLS, "--name", "unmigrated", "--config", str(config), "--json"]) == 0
    reasons = {r.__dict__["reason"] for r in caplog.records if r.getMessage() == "ALERT_NOT_QUEUED"}
    assert len(reasons) == 1 and "ai-trading db upgrade" in reasons.pop()
