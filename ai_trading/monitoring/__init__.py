"""Alerting: rules raise alerts, routing groups them, the outbox delivers them durably.

rules/conditions -> :class:`Alert` -> :class:`Dispatcher` (routing tree, grouping,
inhibition, silences) -> :class:`Outbox` (OMS database) -> :class:`DeliveryWorker` ->
receivers (webhook, SMTP); a kill-switch receiver sets the trading state at once, and
:class:`AutoRollback` restores the registry's previous model on a governance failure or a
live breach of the model's signed range.
"""

from ai_trading.monitoring.alerts import (
    Alert,
    AlertStatus,
    Clock,
    Severity,
    fingerprint,
)
from ai_trading.monitoring.dispatcher import Dispatcher, Notification
from ai_trading.monitoring.kill_switch import KillSwitch
from ai_trading.monitoring.matchers import Matcher
from ai_trading.monitoring.notify import AlertPipeline, notify
from ai_trading.monitoring.outbox import (
    DeliveryReport,
    DeliveryWorker,
    Outbox,
    OutboxEntry,
)
from ai_trading.monitoring.receivers import DeliveryResult, Outcome, build_receiver
from ai_trading.monitoring.rollback import AutoRollback, current_manifest_digest
from ai_trading.monitoring.routing import RoutingConfig, load_routing, parse_duration
from ai_trading.monitoring.rules import Finding, Rule, RuleEvaluator, RuleState
from ai_trading.monitoring.silences import Silence, SilenceStore

__all__ = [
    "Alert",
    "AlertPipeline",
    "AlertStatus",
    "AutoRollback",
    "Clock",
    "DeliveryReport",
    "DeliveryResult",
    "DeliveryWorker",
    "Dispatcher",
    "Finding",
    "KillSwitch",
    "Matcher",
    "Notification",
    "Outbox",
    "OutboxEntry",
    "Outcome",
    "RoutingConfig",
    "Rule",
    "RuleEvaluator",
    "RuleState",
    "Severity",
    "Silence",
    "SilenceStore",
    "build_receiver",
    "current_manifest_digest",
    "fingerprint",
    "load_routing",
    "notify",
    "parse_duration",
]
