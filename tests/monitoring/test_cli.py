"""``ai-trading alerts``: silences, the outbox, delivery and the receiver test, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_trading.cli import main
from ai_trading.oms.intent_store import IntentStore
from tests.monitoring.helpers import WebhookLog, serve_webhook


def test_alerts_cli(oms_store: IntentStore, oms_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    log = WebhookLog(behaviours=["ok", "400"])
    server = serve_webhook(log)
    routes = tmp_path / "alerts.toml"
    routes.write_text(
        f'[route]\nreceiver = "hook"\n[[receivers]]\nname = "hook"\n[receivers.webhook]\n'
        f'url = "http://127.0.0.1:{server.server_address[1]}/hook"\nbearer_token_env = "HOOK_TOKEN"\n'
    )
    config = tmp_path / "config.toml"
    config.write_text(f'[oms]\ndsn = "{oms_database_url}"\n[alerts]\nroutes_file = "{routes}"\n')
    monkeypatch.delenv("AI_TRADING_OMS_DSN", raising=False)
    monkeypatch.setenv("HOOK_TOKEN", "tok")
    cfg = ["--config", str(config)]
    try:
        assert main(["alerts", "test", *cfg]) == 0
        assert "hook: delivered" in capsys.readouterr().out and len(log.accepted) == 1
        assert main(["alerts", "test", "--json", *cfg]) == 1  # the server now answers 400
        assert json.loads(capsys.readouterr().out)["receivers"]["hook"] == "refused (not retried)"
        assert main(["alerts", "outbox", "--json", *cfg]) == 0
        [failed] = json.loads(capsys.readouterr().out)
        assert (failed["status"], failed["receiver"]) == ("failed", "hook")
        assert main(["alerts", "deliver", "--json", *cfg]) == 0
        assert json.loads(capsys.readouterr().out)["delivered"] == []
    finally:
        server.shutdown()

    assert main(["alerts", "silence", "--matcher", "account=a1", "--matcher", "severity=~warn.*", "--duration", "2h",
                 "--comment", "maintenance", "--author", "ops", "--json", *cfg]) == 0  # fmt: skip
    silence = json.loads(capsys.readouterr().out)
    assert silence["matchers"] == ['account="a1"', 'severity=~"warn.*"'] and silence["creator"] == "ops"
    assert main(["alerts", "silences", "--json", *cfg]) == 0
    assert [s["id"] for s in json.loads(capsys.readouterr().out)] == [silence["id"]]
    assert main(["alerts", "unsilence", silence["id"], *cfg]) == 0
    capsys.readouterr()
    assert main(["alerts", "silences", "--json", *cfg]) == 0 and json.loads(capsys.readouterr().out) == []
    assert main(["alerts", "unsilence", silence["id"], *cfg]) == 2
    assert "already expired" in capsys.readouterr().err
    assert main(["alerts", "silence", "--matcher", "bad", "--duration", "1h", "--comment", "x", *cfg]) == 2
    assert "not name=value" in capsys.readouterr().err
