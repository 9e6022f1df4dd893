"""Alerts, the pending -> firing -> resolved life of a rule, and the conditions of today's inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_trading.config import AlertsConfig
from ai_trading.errors import ConfigError
from ai_trading.evaluation.anomalies import Anomaly
from ai_trading.monitoring import conditions as c
from ai_trading.monitoring.alerts import Alert, Severity, fingerprint
from ai_trading.monitoring.rules import Finding, Rule, RuleEvaluator, RuleState
from ai_trading.oms.reconcile import (
    ForeignOrderSeen,
    Issue,
    PositionMismatch,
    ReconciliationReport,
)
from ai_trading.rl.governance import Rejection
from tests.monitoring.helpers import FakeClock

LABELS = st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=5)


@given(LABELS)
def test_fingerprint_ignores_label_order_and_sees_every_label(labels: dict[str, str]) -> None:
    assert fingerprint("A", labels) == fingerprint("A", dict(reversed(list(labels.items()))))
    assert fingerprint("A", labels) != fingerprint("B", labels)
    assert fingerprint("A", labels) != fingerprint("A", {**labels, "extra-label": "x"})


def test_alert_validates_and_carries_alertname_and_severity() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    alert = Alert("X", "critical", {"b": "1", "a": "2"}, {}, now)  # type: ignore[arg-type]
    assert alert.severity is Severity.CRITICAL and dict(alert.labels) == {"a": "2", "alertname": "X", "b": "1", "severity": "critical"}
    with pytest.raises(ConfigError, match="severity"):
        Alert("X", "urgent", {}, {}, now)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timezone-aware"):
        Alert("X", Severity.INFO, {}, {}, datetime(2026, 1, 5))


def test_rule_pending_then_firing_after_for_then_resolved() -> None:
    clock = FakeClock()
    rule = Rule("Slow", Severity.WARNING, for_s=60, summary="s", runbook="r")
    evaluator = RuleEvaluator(clock)
    bad = [Finding({"loop": "main"}, "slow", 9.0, 5.0)]
    assert evaluator.evaluate(rule, bad) == [] and evaluator.state(rule, {"loop": "main"}) is RuleState.PENDING
    clock.advance(59)
    assert evaluator.evaluate(rule, bad) == []
    clock.advance(1)
    [firing] = evaluator.evaluate(rule, bad)
    assert (firing.starts_at, firing.ends_at, firing.annotations["value"]) == (clock.now, None, "9")
    clock.advance(10)
    [resolved] = evaluator.evaluate(rule, [])
    assert resolved.ends_at == clock.now and resolved.fingerprint == firing.fingerprint
    assert evaluator.evaluate(rule, []) == [] and evaluator.state(rule, {"loop": "main"}) is None


def test_a_pending_condition_that_clears_never_fires() -> None:
    clock = FakeClock()
    rule = Rule("Slow", Severity.WARNING, for_s=60, summary="s", runbook="r")
    evaluator = RuleEvaluator(clock)
    evaluator.evaluate(rule, [Finding({"loop": "main"}, "slow")])
    clock.advance(30)
    assert evaluator.evaluate(rule, []) == []
    clock.advance(60)
    assert evaluator.evaluate(rule, [Finding({"loop": "main"}, "slow")]) == []  # pending again from scratch


def test_reconciliation_findings() -> None:
    report = ReconciliationReport(started_at=datetime(2026, 1, 5, tzinfo=UTC))
    assert c.reconciliation_findings(report, "acct") == []
    report.position_mismatches.append(PositionMismatch("AAA", Decimal(5), Decimal(7)))
    report.issues.append(Issue("missing_at_broker", "CIDv2:x", "unknown"))
    report.foreign_orders.append(ForeignOrderSeen("b1", None, False, "AAA", "buy", Decimal(1), Decimal(0), "new"))
    found = {f.labels["check"]: f for f in c.reconciliation_findings(report, "acct")}
    assert set(found) == {"position", "missing_at_broker", "foreign_order"}
    assert found["position"].labels["symbol"] == "AAA" and found["foreign_order"].severity is Severity.WARNING


COST_CASES = [(31.0, 10.0, True), (29.0, 10.0, False), (6.0, 2.0, False), (12.0, 0.0, True), (3.0, 0.0, False)]


@pytest.mark.parametrize(("realized", "predicted", "fires"), COST_CASES)
def test_cost_spike_needs_both_ratio_and_excess(realized: float, predicted: float, fires: bool) -> None:
    observation = c.CostObservation("fill", "AAA", realized, predicted)
    assert bool(c.cost_spike_findings([observation], AlertsConfig(cost_spike_ratio=3.0, cost_spike_min_excess_bps=10.0))) is fires


def test_evaluation_governance_and_slo_findings() -> None:
    config = AlertsConfig()
    [flag] = c.evaluation_findings([Anomaly("NAN_EQUITY", "fold 2", "critical", "nan", None, None)], "wf-1")
    assert flag.severity is Severity.CRITICAL and flag.labels == {"run": "wf-1", "code": "NAN_EQUITY", "scope": "fold 2"}
    [gate] = c.governance_findings("rl-portfolio", "rl", [Rejection("LOW_SHARPE", "sharpe", 0.1, 0.5)], current=True)
    assert gate.severity is Severity.CRITICAL and "LOW_SHARPE" in gate.description
    assert c.governance_findings("m", "ml", [], current=True) == []
    assert c.data_stale_findings("bars", config.data_staleness_grace_s, config) == []
    assert c.data_stale_findings("bars", config.data_staleness_grace_s + 1, config)
    assert c.step_over_budget_findings("loop", config.step_budget_s + 0.1, config)
    assert c.reject_rate_findings("a", config.reject_rate_min_orders - 1, config.reject_rate_min_orders - 1, config) == []
    assert c.reject_rate_findings("a", 100, 6, config) and not c.reject_rate_findings("a", 100, 5, config)
    assert c.run_over_budget_findings("wf", config.run_budget_s + 1, config)
    assert c.broker_unreachable_findings("alpaca", False, "timeout") and not c.broker_unreachable_findings("alpaca", True)
    assert c.risk_denial_findings("a", config.risk_denials_per_bar, config) == []
    [denied] = c.risk_denial_findings("a", config.risk_denials_per_bar + 1, config)
    assert (denied.labels, denied.value, denied.threshold) == ({"account": "a"}, config.risk_denials_per_bar + 1.0, float(config.risk_denials_per_bar))
    assert c.standard_rules(config).risk_denials.name == "RiskDenialsHigh"
    rules = c.standard_rules(config)
    assert rules.broker_unreachable.for_s == config.broker_unreachable_for_s and rules.reconciliation.severity is Severity.CRITICAL
