"""Automatic rollback: a governance failure or a trailing-window breach of the signed range
makes the previous model current (audited, alerted); a rolled-back model is not promoted
again without --force, and a second failure never restores it."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.artifacts import Ed25519Signer, Trust, TrustState
from ai_trading.artifacts.admission import Rejection
from ai_trading.artifacts.keys import load_signing_key
from ai_trading.artifacts.registry import ModelRegistry
from ai_trading.cli import main
from ai_trading.config import AlertsConfig
from ai_trading.errors import ConfigError, PromotionRejected
from ai_trading.models.gates import RLRunGate
from ai_trading.monitoring.alerts import Alert, Severity
from ai_trading.monitoring.rollback import (
    ROLLBACK_BLOCKED_ALERT,
    ROLLED_BACK_ALERT,
    AutoRollback,
    SignedRange,
    current_manifest_digest,
    live_breaches,
    sharpe_standard_error,
)
from ai_trading.rl.seed_artifact import MODEL_FILE
from tests.artifacts.conftest import SCHEMA_HASH
from tests.artifacts.run_helpers import (
    BEST_SEED,
    DAILY_PERIODS,
    policy_bytes,
    seed_runs,
    write_run,
)
from tests.rl.test_governance import CRITERIA

MODEL = "momentum"
WINDOW = 63
FAILING = [Rejection("LOW_SHARPE", "mean_sharpe", 0.2, 1.0)]
# (rollback_on, daily drift of the live window, whether it breaches)
LIVE_CASES = [
    pytest.param("sharpe", -0.004, True, id="sharpe-far-below"),
    pytest.param("drawdown", -0.004, True, id="drawdown-far-above"),
    pytest.param("governance", -0.004, False, id="slo-triggers-off"),
    pytest.param("sharpe,drawdown", 0.002, False, id="as-signed"),
]


class Registered:
    """Two promoted versions of MODEL (v2 current, v1 previous) and the alerts raised."""

    def __init__(self, tmp_path: Path, config: AlertsConfig | None = None) -> None:
        signer = Ed25519Signer.generate()
        self.trust = Trust(keys={signer.key_id: signer.verifier()}, state=TrustState(tmp_path / "trust.json"))
        self.registry = ModelRegistry(tmp_path / "registry")
        self.runs = [write_run(tmp_path / f"run-v{v}", signer, seed_runs(0.002, rng_seed=v), MODEL, v) for v in (1, 2)]
        self.digests = [self.registry.promote(run, self.trust, SCHEMA_HASH, RLRunGate(CRITERIA)).slots.current.manifest_sha256 for run in self.runs]
        self.alerts: list[Alert] = []
        self.auto = AutoRollback(self.registry, self.trust, SCHEMA_HASH, config or AlertsConfig(), self.alerts.extend)

    def audit(self) -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(line) for line in self.registry.audit_path.read_text().splitlines()]


def _window(drift: float, seed: int = 11) -> list[float]:
    return list(np.random.default_rng(seed).normal(drift, 0.01, WINDOW))


def test_a_governance_failure_rolls_back_to_the_previous_model(tmp_path: Path) -> None:
    r = Registered(tmp_path)
    assert current_manifest_digest(r.registry, MODEL) == r.digests[1]
    outcome = r.auto.on_governance_failure(MODEL, FAILING)
    assert outcome is not None and outcome.rolled_back and outcome.trigger == "governance"
    assert current_manifest_digest(r.registry, MODEL) == r.digests[0]  # what the loop compares at its next bar
    assert r.registry.load_current(MODEL, r.trust, SCHEMA_HASH).read(MODEL_FILE) == policy_bytes(MODEL, 1, BEST_SEED)
    [alert] = r.alerts
    assert (alert.name, alert.severity, dict(alert.labels)["trigger"]) == (ROLLED_BACK_ALERT, Severity.CRITICAL, "governance")
    assert "LOW_SHARPE" in alert.annotations["description"]
    last = r.audit()[-1]
    assert (last["action"], last["by"], last["previous"]["manifest_sha256"]) == ("rollback", "auto-rollback", r.digests[1])
    assert last["reason"].startswith("governance: current model failed its promotion gate: LOW_SHARPE")
    assert r.registry.rolled_back(MODEL) == {r.digests[1]}


def test_no_rejection_or_a_disabled_trigger_changes_nothing(tmp_path: Path) -> None:
    r = Registered(tmp_path, AlertsConfig(rollback_on="sharpe"))
    assert r.auto.on_governance_failure(MODEL, []) is None
    assert r.auto.on_governance_failure(MODEL, FAILING) is None
    assert current_manifest_digest(r.registry, MODEL) == r.digests[1] and r.alerts == []


@pytest.mark.parametrize(("rollback_on", "drift", "breaches"), LIVE_CASES)
def test_a_trailing_window_far_outside_the_signed_range_rolls_back(tmp_path: Path, rollback_on: str, drift: float, breaches: bool) -> None:
    r = Registered(tmp_path, AlertsConfig(rollback_on=rollback_on, rollback_window_bars=WINDOW))
    returns = _window(drift)
    assert r.auto.check_live(MODEL, returns[:-1], DAILY_PERIODS) is None  # the window is not full yet
    outcome = r.auto.check_live(MODEL, returns, DAILY_PERIODS)
    assert (outcome is not None) is breaches
    assert current_manifest_digest(r.registry, MODEL) == r.digests[0 if breaches else 1]
    if outcome is not None:
        assert outcome.trigger in rollback_on and [a.name for a in r.alerts] == [ROLLED_BACK_ALERT]
        assert r.audit()[-1]["reason"].startswith(f"{outcome.trigger}: trailing {WINDOW}-bar")


def test_a_rolled_back_model_is_never_restored_automatically(tmp_path: Path) -> None:
    r = Registered(tmp_path)
    r.auto.on_governance_failure(MODEL, FAILING)
    outcome = r.auto.on_governance_failure(MODEL, FAILING)  # now v1 fails too: v2 was rolled back
    assert outcome is not None and not outcome.rolled_back
    assert current_manifest_digest(r.registry, MODEL) == r.digests[0]
    assert [a.name for a in r.alerts] == [ROLLED_BACK_ALERT, ROLLBACK_BLOCKED_ALERT]
    assert "was rolled back before" in r.alerts[-1].annotations["description"]
    assert [line["action"] for line in r.audit()] == ["promote", "promote", "rollback"]


def test_promoting_a_rolled_back_model_is_refused_unless_forced(tmp_path: Path) -> None:
    r = Registered(tmp_path)
    r.auto.on_governance_failure(MODEL, FAILING)
    before = r.registry.audit_path.read_bytes()
    with pytest.raises(PromotionRejected, match="--force") as refused:
        r.registry.promote(r.runs[1], r.trust, SCHEMA_HASH, RLRunGate(CRITERIA))
    assert refused.value.rejections[0]["code"] == "ROLLED_BACK"
    assert r.registry.audit_path.read_bytes() == before and current_manifest_digest(r.registry, MODEL) == r.digests[0]
    forced = r.registry.promote(r.runs[1], r.trust, SCHEMA_HASH, RLRunGate(CRITERIA), force=True)
    assert forced.changed and forced.slots.current.manifest_sha256 == r.digests[1]
    assert r.audit()[-1]["forced_over_rollback"] is True


def test_registry_promote_cli_refuses_a_rolled_back_model_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("SIGNING_KEY_PATH", "keys/signing.key"), ("TRUSTED_KEYS_DIR", "keys/trusted"),
                        ("TRUST_STATE_PATH", "trust.json"), ("REGISTRY_DIR", "registry")):  # fmt: skip
        monkeypatch.setenv(f"AI_TRADING_ARTIFACTS__{name}", str(tmp_path / value))
    for name in ("AI_TRADING_SIGNING_KEY", "AI_TRADING_TRUSTED_KEY", "AI_TRADING_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert main(["keys", "generate"]) == 0
    config = tmp_path / "config.toml"
    config.write_text("[governance]\n" + "".join(f"{k} = {v}\n" for k, v in vars(CRITERIA).items() if isinstance(v, (int, float))))
    signer = load_signing_key(tmp_path / "keys" / "signing.key", "AI_TRADING_SIGNING_KEY")
    runs = [write_run(tmp_path / f"run-v{v}", signer, seed_runs(0.002, rng_seed=v), MODEL, v) for v in (1, 2)]
    options = ["--config", str(config), "--feature-schema-hash", SCHEMA_HASH]
    for run in runs:
        assert main(["registry", "promote", str(run), *options]) == 0
    assert main(["registry", "rollback", MODEL, *options]) == 0
    capsys.readouterr()
    assert main(["registry", "promote", str(runs[1]), *options]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["registry", "promote", str(runs[1]), "--force", *options]) == 0
    assert "promoted momentum" in capsys.readouterr().out


def test_a_blocked_rollback_halts_trading_through_the_kill_switch(tmp_path: Path, oms_store: object) -> None:
    from ai_trading.monitoring.dispatcher import Dispatcher
    from ai_trading.monitoring.kill_switch import kill_switch_actions
    from ai_trading.monitoring.routing import parse_routing
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.models import TradingState
    from ai_trading.oms.trading_state import TradingStateStore
    from tests.monitoring.helpers import FakeClock

    assert isinstance(oms_store, IntentStore)
    config = AlertsConfig()
    routing = parse_routing({"route": {"receiver": "kill"}, "receivers": [{"name": "kill", "kill_switch": {}}]}, config, "test")
    dispatcher = Dispatcher(routing, lambda n: None, FakeClock(), actions=kill_switch_actions(routing, oms_store.engine, config, "acct"))
    r = Registered(tmp_path)
    auto = AutoRollback(r.registry, r.trust, SCHEMA_HASH, config, dispatcher.receive)
    auto.on_governance_failure(MODEL, FAILING)
    assert TradingStateStore(oms_store.engine).get("acct").state is TradingState.ACTIVE  # a rollback alone does not halt
    auto.on_governance_failure(MODEL, FAILING)
    record = TradingStateStore(oms_store.engine).get("acct")
    assert (record.state, record.changed_by) == (TradingState.HALTED, f"alert:{ROLLBACK_BLOCKED_ALERT}")


def test_an_unknown_trigger_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown trigger"):
        Registered(tmp_path, AlertsConfig(rollback_on="sharpe,vibes"))


def _reference_breaches(returns: list[float], signed: float, z: float, ppy: float) -> bool | None:
    """Plain-Python Sharpe test; None where the answer is too close to call in float64."""
    stdev = statistics.stdev(returns)
    if stdev == 0:
        return None
    realized = statistics.fmean(returns) / stdev * math.sqrt(ppy)
    per_period = signed / math.sqrt(ppy)
    floor = signed - z * math.sqrt((1 + per_period**2 / 2) / len(returns)) * math.sqrt(ppy)
    return None if abs(realized - floor) < 1e-9 else realized < floor


@settings(max_examples=60, deadline=None)
@given(
    returns=st.lists(st.floats(-0.05, 0.05).map(lambda r: round(r, 6)), min_size=10, max_size=30),  # whole micro-returns: no denormals
    signed=st.floats(-2.0, 5.0),
    z=st.floats(0.5, 4.0),
)
def test_the_sharpe_trigger_agrees_with_a_plain_reference(returns: list[float], signed: float, z: float) -> None:
    config = replace(AlertsConfig(), rollback_on="sharpe", rollback_window_bars=len(returns), rollback_sharpe_z=z)
    expected = _reference_breaches(returns, signed, z, DAILY_PERIODS)
    if expected is None:
        return
    breaches = live_breaches(returns, DAILY_PERIODS, SignedRange(signed, None), config)
    assert bool(breaches) is expected
    assert sharpe_standard_error(0.0, 100, 1.0) == pytest.approx(0.1)
