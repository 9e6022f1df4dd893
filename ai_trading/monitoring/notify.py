"""The alert pipeline built from the configuration, for the trading loop and the commands.

:class:`AlertPipeline` puts together what ``[alerts]`` and the routes file describe over one
OMS database: the :class:`~ai_trading.monitoring.dispatcher.Dispatcher` (routing tree,
grouping, inhibition, the silences of ``alert_silences``, kill-switch actions), the
:class:`~ai_trading.monitoring.outbox.Outbox` and a
:class:`~ai_trading.monitoring.outbox.DeliveryWorker` over the delivering receivers.

**Without a routes file** alerts are still recorded, never dropped: they are routed to the
built-in receiver ``unrouted`` (grouped by ``alertname``), whose notifications stay
pending in the outbox (``ai-trading alerts outbox`` lists them; nothing sends them), and
each alert is logged at WARNING (``ALERT_UNROUTED``) once per firing episode.

**Commands** (``walkforward``, ``registry promote``) call :func:`notify`: it evaluates
nothing over time (a command runs once, so its rules fire at once), sends the alerts
through the outbox when the OMS database of ``[oms] dsn`` exists, is reachable and at the
head revision, delivers them once, and otherwise logs them at ERROR
(``ALERT_NOT_QUEUED``) with the reason, so the command's own output is never lost to an
alerting problem.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from ai_trading.config import AlertsConfig, AppConfig
from ai_trading.errors import DatabaseUnavailable, StoreNotMigrated
from ai_trading.evaluation.anomalies import Anomaly
from ai_trading.monitoring.alerts import Alert, Clock
from ai_trading.monitoring.conditions import (
    GateRejection,
    evaluation_findings,
    governance_findings,
    run_over_budget_findings,
    standard_rules,
)
from ai_trading.monitoring.dispatcher import Dispatcher, Notification
from ai_trading.monitoring.kill_switch import kill_switch_actions
from ai_trading.monitoring.outbox import DeliveryReport, DeliveryWorker, Outbox
from ai_trading.monitoring.receivers import ReceiverSpec, build_receiver
from ai_trading.monitoring.routing import Route, RoutingConfig, load_routing
from ai_trading.monitoring.rules import Finding, Rule, RuleEvaluator
from ai_trading.monitoring.silences import SilenceStore
from ai_trading.oms.engine import create_oms_engine, sqlalchemy_url
from ai_trading.oms.models import utc_now

logger = logging.getLogger(__name__)

UNROUTED = "unrouted"


def unrouted_routing(config: AlertsConfig) -> RoutingConfig:
    """The routing without a routes file: every alert to ``unrouted``, grouped by name."""
    root = Route("root", UNROUTED, (), ("alertname",), config.group_wait_s, config.group_interval_s, config.repeat_interval_s, False, ())
    return RoutingConfig(root, {UNROUTED: ReceiverSpec(UNROUTED, send_resolved=True)}, ())


class AlertPipeline:
    """Alerts in, notifications out through the outbox (see the module docstring).

    :param config: ``[alerts]`` and ``[risk] account`` (the kill switch's default account)
    :param engine: the OMS database at the head revision (outbox, silences, trading state)
    :param clock: current UTC time of the dispatcher, the outbox and the silences
    """

    def __init__(self, config: AppConfig, engine: Engine, clock: Clock = utc_now) -> None:
        alerts = config.alerts
        self._routed = alerts.routes_file is not None
        routing = load_routing(alerts.routes_file, alerts) if alerts.routes_file is not None else unrouted_routing(alerts)
        self.outbox = Outbox(engine, clock)
        silences = SilenceStore(engine, clock)
        self.dispatcher = Dispatcher(
            routing, self.outbox.enqueue, clock, silences.active, alerts.external_url,
            actions=kill_switch_actions(routing, engine, alerts, config.risk.account),
        )  # fmt: skip
        receivers = {
            name: build_receiver(spec, alerts.receiver_timeout_s)
            for name, spec in routing.receivers.items()
            if spec.kill_switch is None and name != UNROUTED
        }
        self.worker = DeliveryWorker(self.outbox, receivers, alerts, clock=clock)
        self._logged: dict[str, datetime] = {}

    def receive(self, alerts: Sequence[Alert]) -> None:
        """Hand ``alerts`` to the dispatcher (a kill-switch receiver acts now)."""
        if not alerts:
            return
        if not self._routed:
            for alert in alerts:  # once per firing episode, not at every evaluation
                if self._logged.get(alert.fingerprint) != alert.starts_at:
                    self._logged[alert.fingerprint] = alert.starts_at
                    logger.warning("ALERT_UNROUTED", extra={"alert": alert.name, "labels": dict(alert.labels), "summary": alert.annotations.get("summary", "")})
        self.dispatcher.receive(alerts)

    def tick(self) -> list[Notification]:
        """Queue the notifications of every group that is due now."""
        return self.dispatcher.tick()

    def flush(self) -> list[Notification]:
        """Queue every group now, also those still in their ``group_wait`` (a process about
        to end, or a command that runs once), so what was received reaches the outbox
        before the process ends instead of being lost with it."""
        return self.dispatcher.flush()

    def deliver(self) -> DeliveryReport:
        """One pass of the delivery worker over the due notifications."""
        return self.worker.run_once()


def once(rule: Rule) -> Rule:
    """``rule`` for a caller that evaluates once (a command): it fires at the first evaluation."""
    return replace(rule, for_s=0.0)


def alerts_of(rule: Rule, findings: Sequence[Finding], clock: Clock = utc_now) -> list[Alert]:
    """The alerts one evaluation of ``rule`` (``for`` ignored) over ``findings`` raises."""
    return RuleEvaluator(clock).evaluate(once(rule), findings)


def evaluation_alerts(config: AlertsConfig, run: str, anomalies: Sequence[Anomaly], elapsed_s: float, clock: Clock = utc_now) -> list[Alert]:
    """An evaluation's anomaly flags (``EvaluationAnomaly``, each with its own severity)
    and its run time against ``run_budget_s`` (``RunOverBudget``)."""
    rules = standard_rules(config)
    return alerts_of(rules.evaluation_anomaly, evaluation_findings(anomalies, run), clock) + alerts_of(
        rules.run_over_budget, run_over_budget_findings(run, elapsed_s, config), clock
    )


def governance_alerts(
    config: AlertsConfig, model: str, kind: str, rejections: Sequence[GateRejection], *, current: bool, clock: Clock = utc_now
) -> list[Alert]:
    """A promotion gate's rejection (``GovernanceGateFailed``): critical when the rejected
    artifact is the model trading now (``current``), a warning for a candidate."""
    findings = governance_findings(model, kind, rejections, current=current)
    return alerts_of(standard_rules(config).governance_failure, findings, clock)


def _reachable_engine(config: AppConfig) -> Engine | str:
    """The OMS engine, or why alerts cannot be queued there."""
    url = sqlalchemy_url(config.oms.dsn)
    if url.get_backend_name() == "sqlite" and (not url.database or not Path(url.database).expanduser().exists()):
        return f"no OMS database at {url.database} ([oms] dsn; `ai-trading db upgrade` creates it)"
    return create_oms_engine(config.oms)


def notify(config: AppConfig, alerts: Sequence[Alert], clock: Clock = utc_now) -> DeliveryReport | None:
    """Send a command's ``alerts`` through the outbox and deliver them once; None when the
    OMS database cannot take them (then they are logged at ERROR, and the command goes on)."""
    if not alerts:
        return None
    engine = _reachable_engine(config)
    if isinstance(engine, str):
        _not_queued(alerts, engine)
        return None
    try:
        pipeline = AlertPipeline(config, engine, clock)
        pipeline.receive(alerts)
        pipeline.flush()
        return pipeline.deliver()
    except (DatabaseUnavailable, StoreNotMigrated) as exc:
        _not_queued(alerts, str(exc))
        return None
    finally:
        engine.dispose()


def _not_queued(alerts: Sequence[Alert], reason: str) -> None:
    for alert in alerts:
        logger.error(
            "ALERT_NOT_QUEUED",
            extra={"alert": alert.name, "labels": dict(alert.labels), "summary": alert.annotations.get("summary", ""), "reason": reason},
        )
