"""Alerting: rules raise alerts, routing groups them, the outbox delivers them durably.

rules/conditions -> :class:`Alert` -> :class:`Dispatcher` (routing tree, grouping,
inhibition, silences) -> :class:`Outbox` (OMS database) -> :class:`DeliveryWorker` ->
receivers (webhook, SMTP).
"""

from ai_trading.monitoring.alerts import (
    Alert,
    AlertStatus,
    Clock,
    Severity,
    fingerprint,
)
from ai_trading.monitoring.dispatcher import Dispatcher, Notification
from ai_trading.monitoring.matchers import Matcher
from ai_trading.monitoring.outbox import (
    DeliveryReport,
    DeliveryWorker,
    Outbox,
    OutboxEntry,
)
from ai_trading.monitoring.receivers import DeliveryResult, Outcome, build_receiver
from ai_trading.monitoring.routing import RoutingConfig, load_routing, parse_duration
from ai_trading.monitoring.rules import Finding, Rule, RuleEvaluator, RuleState
from ai_trading.monitoring.silences import Silence, SilenceStore

__all__ = [
    "Alert", "AlertStatus", "Clock", "DeliveryReport", "DeliveryResult", "DeliveryWorker", "Dispatcher", "Finding",
    "Matcher", "Notification", "Outbox", "OutboxEntry", "Outcome", "RoutingConfig", "Rule", "RuleEvaluator",
    "RuleState", "Severity", "Silence", "SilenceStore", "build_receiver", "fingerprint", "load_routing",
    "parse_duration",
]  # fmt: skip
