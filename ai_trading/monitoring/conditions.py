"""The rules whose inputs exist today, as pure functions over structured inputs.

Each ``*_findings`` function looks at what the caller hands in (a reconciliation report,
cost observations, anomaly flags, gate rejections, plain SLO numbers) and returns the
bad series as :class:`~ai_trading.monitoring.rules.Finding`; :func:`standard_rules`
gives the matching :class:`~ai_trading.monitoring.rules.Rule` of each, with its ``for``
duration from ``[alerts]``. Feed both to a :class:`~ai_trading.monitoring.rules.RuleEvaluator`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ai_trading.config import AlertsConfig
from ai_trading.evaluation.anomalies import Anomaly
from ai_trading.monitoring.alerts import Severity
from ai_trading.monitoring.rules import Finding, Rule
from ai_trading.oms.reconcile import ReconciliationReport

RUNBOOK = "README.md#monitoring"


@dataclass(frozen=True)
class StandardRules:
    """One rule per condition of this module."""

    reconciliation: Rule
    cost_spike: Rule
    evaluation_anomaly: Rule
    governance_failure: Rule
    data_stale: Rule
    step_over_budget: Rule
    reject_rate: Rule
    run_over_budget: Rule
    broker_unreachable: Rule
    risk_denials: Rule


def standard_rules(config: AlertsConfig) -> StandardRules:
    """The rules with their ``for`` durations from ``config``."""
    c = config
    return StandardRules(
        reconciliation=Rule(
            "OmsReconciliationMismatch", Severity.CRITICAL, c.reconcile_for_s,
            "the OMS and the broker disagree", f"{RUNBOOK}: run `ai-trading oms reconcile` and resolve each issue before trading",
        ),
        cost_spike=Rule(
            "ExecutionCostSpike", Severity.WARNING, c.cost_spike_for_s,
            "realized execution cost far above the cost model's prediction", f"{RUNBOOK}: check spreads, order sizes and the venue",
        ),
        evaluation_anomaly=Rule(
            "EvaluationAnomaly", Severity.WARNING, c.evaluation_for_s,
            "an evaluation raised an anomaly flag", f"{RUNBOOK}: read the report's anomalies before trusting its numbers",
        ),
        governance_failure=Rule(
            "GovernanceGateFailed", Severity.WARNING, c.governance_for_s,
            "a model failed its promotion gate", f"{RUNBOOK}: read the rejections; a current model that fails is rolled back",
        ),
        data_stale=Rule(
            "MarketDataStale", Severity.CRITICAL, c.data_staleness_for_s,
            "no new bar although the calendar expects one", f"{RUNBOOK}: check the data feed and the broker's market-data status",
        ),
        step_over_budget=Rule(
            "TradingStepOverBudget", Severity.WARNING, c.step_over_budget_for_s,
            "a trading-loop step took longer than its budget", f"{RUNBOOK}: profile the step; orders may be late",
        ),
        reject_rate=Rule(
            "OrderRejectRateHigh", Severity.CRITICAL, c.reject_rate_for_s,
            "the broker rejects too many orders", f"{RUNBOOK}: read the rejection reasons; halt trading if they persist",
        ),
        run_over_budget=Rule(
            "RunOverBudget", Severity.WARNING, 0.0,
            "a backtest or evaluation run took longer than its budget", f"{RUNBOOK}: check the machine's load and the run's size",
        ),
        broker_unreachable=Rule(
            "BrokerUnreachable", Severity.CRITICAL, c.broker_unreachable_for_s,
            "the broker cannot be reached", f"{RUNBOOK}: check the network and the broker's status page",
        ),
        risk_denials=Rule(
            "RiskDenialsHigh", Severity.WARNING, c.risk_denials_for_s,
            "the pre-trade risk checks denied many orders of one rebalance",
            f"{RUNBOOK}: compare the model's sizing with the [risk] limits; `ai-trading replay` summaries list denials by reason",
        ),
    )  # fmt: skip


def reconciliation_findings(report: ReconciliationReport, account: str) -> list[Finding]:
    """One finding per position difference (by symbol), per kind of unresolved issue
    (``missing_at_broker``: intents the broker does not know, ``fill_mismatch``, ...)
    and for unknown (foreign) orders: critical when CIDv2-shaped (another instance or a
    lost intent), a warning otherwise (an order placed by hand)."""
    findings = [
        Finding(
            {"account": account, "check": "position", "symbol": m.symbol},
            f"{m.symbol}: OMS holds {m.oms_qty}, the broker {m.broker_qty}",
        )
        for m in report.position_mismatches
    ]
    by_kind: dict[str, list[str]] = {}
    for issue in report.issues:
        by_kind.setdefault(issue.kind, []).append(f"{issue.client_order_id}: {issue.detail}")
    for kind, details in sorted(by_kind.items()):
        findings.append(Finding({"account": account, "check": kind}, "; ".join(details), float(len(details))))
    if report.foreign_orders:
        shaped = report.cid_shaped_foreign
        findings.append(Finding(
            {"account": account, "check": "foreign_order"},
            f"{len(report.foreign_orders)} orders unknown to the OMS ({len(shaped)} CIDv2-shaped): "
            + ", ".join(order.broker_order_id for order in report.foreign_orders),
            float(len(report.foreign_orders)),
            severity=Severity.CRITICAL if shaped else Severity.WARNING,
        ))  # fmt: skip
    return findings


@dataclass(frozen=True)
class CostObservation:
    """Realized against predicted cost of one fill or of one day's executions.

    :param scope: ``fill`` or ``day``
    :param symbol: the symbol (``*`` for a whole day's book)
    :param realized_bps: realized cost, bps of the arrival price
    :param predicted_bps: the EWMA cost model's prediction for the same order(s), bps
    """

    scope: str
    symbol: str
    realized_bps: float
    predicted_bps: float


def cost_spike_findings(observations: Sequence[CostObservation], config: AlertsConfig) -> list[Finding]:
    """Observations whose realized cost reaches ``cost_spike_ratio`` times the prediction
    and exceeds it by at least ``cost_spike_min_excess_bps`` (a prediction of 0 or less
    is judged by the excess alone)."""
    findings = []
    for o in observations:
        excess = o.realized_bps - o.predicted_bps
        ratio_breached = o.predicted_bps <= 0 or o.realized_bps >= config.cost_spike_ratio * o.predicted_bps
        if ratio_breached and excess >= config.cost_spike_min_excess_bps:
            findings.append(Finding(
                {"scope": o.scope, "symbol": o.symbol},
                f"{o.scope} {o.symbol}: realized {o.realized_bps:.2f} bps against {o.predicted_bps:.2f} bps predicted",
                o.realized_bps, o.predicted_bps,
            ))  # fmt: skip
    return findings


def evaluation_findings(anomalies: Sequence[Anomaly], run: str) -> list[Finding]:
    """One finding per anomaly flag of an evaluation, with the flag's own severity."""
    return [
        Finding({"run": run, "code": a.code, "scope": a.scope}, a.message, a.value, a.threshold, Severity(a.severity))
        for a in anomalies
    ]


class GateRejection(Protocol):
    """A gate's reason (``ai_trading.rl.governance.Rejection``,
    ``ai_trading.artifacts.admission.Rejection``)."""

    @property
    def code(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def threshold(self) -> float: ...


def governance_findings(model: str, kind: str, rejections: Sequence[GateRejection], *, current: bool) -> list[Finding]:
    """One finding when the gate rejected ``model``: critical when it is the model
    trading now (``current``), a warning for a candidate at promotion."""
    if not rejections:
        return []
    reasons = "; ".join(f"{r.code}: {r.metric} {r.value:g} (threshold {r.threshold:g})" for r in rejections)
    return [Finding(
        {"model": model, "kind": kind}, f"{model} ({kind}) rejected: {reasons}", float(len(rejections)),
        severity=Severity.CRITICAL if current else Severity.WARNING,
    )]  # fmt: skip


def data_stale_findings(feed: str, seconds_late: float, config: AlertsConfig) -> list[Finding]:
    """``seconds_late``: how long ago the calendar expected the bar that has not arrived
    (0 when the feed is current)."""
    if seconds_late <= config.data_staleness_grace_s:
        return []
    return [Finding({"feed": feed}, f"{feed}: expected bar {seconds_late:.0f} s late", seconds_late, config.data_staleness_grace_s)]


def step_over_budget_findings(loop: str, step_s: float, config: AlertsConfig) -> list[Finding]:
    if step_s <= config.step_budget_s:
        return []
    return [Finding({"loop": loop}, f"{loop}: step took {step_s:.3f} s", step_s, config.step_budget_s)]


def reject_rate_findings(account: str, orders: int, rejected: int, config: AlertsConfig) -> list[Finding]:
    """Over the caller's window of ``orders`` sent, ``rejected`` of them refused."""
    if orders < max(config.reject_rate_min_orders, 1):
        return []
    rate = rejected / orders
    if rate <= config.max_reject_rate:
        return []
    return [Finding({"account": account}, f"{account}: {rejected} of {orders} orders rejected ({rate:.1%})", rate, config.max_reject_rate)]


def run_over_budget_findings(run: str, elapsed_s: float, config: AlertsConfig) -> list[Finding]:
    if elapsed_s <= config.run_budget_s:
        return []
    return [Finding({"run": run}, f"{run}: ran {elapsed_s:.0f} s", elapsed_s, config.run_budget_s)]


def broker_unreachable_findings(broker: str, reachable: bool, error: str = "") -> list[Finding]:
    """The ``for`` duration of the rule decides how long a broker may stay unreachable."""
    return [] if reachable else [Finding({"broker": broker}, f"{broker} unreachable: {error or 'no answer'}")]


def risk_denial_findings(account: str, denials: int, config: AlertsConfig) -> list[Finding]:
    """A finding when one rebalance had more than ``risk_denials_per_bar`` denials."""
    if denials <= config.risk_denials_per_bar:
        return []
    return [Finding({"account": account}, f"{account}: {denials} orders denied in one rebalance", float(denials), float(config.risk_denials_per_bar))]
