"""Alert rules: a condition checked where the event happens, firing once it has persisted.

A :class:`Rule` names the alert, its severity, its annotations and its ``for`` duration;
its condition is a pure function of structured inputs (see :mod:`.conditions`) that
returns one :class:`Finding` per labelled series that is currently bad. A
:class:`RuleEvaluator` keeps each series' state across evaluations, Prometheus-style:

- first seen bad: *pending* (nothing sent);
- still bad ``for`` seconds after it was first seen: *firing* (an :class:`Alert` each
  evaluation, so routing can repeat it);
- firing and no longer bad: *resolved* once (an alert with ``ends_at``), then forgotten;
- pending and no longer bad: forgotten without a word.

Time comes from the injected clock only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from ai_trading.errors import ConfigError
from ai_trading.monitoring.alerts import Alert, Clock, Severity, fingerprint

logger = logging.getLogger(__name__)


class RuleState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class Rule:
    """What a condition raises.

    :param name: the alert name (``alertname`` label)
    :param severity: of the alerts it raises
    :param for_s: seconds the condition must persist before it fires (0: at once)
    :param summary: one line for people
    :param runbook: what to do about it (a URL or a short instruction)
    """

    name: str
    severity: Severity
    for_s: float
    summary: str
    runbook: str

    def __post_init__(self) -> None:
        if self.for_s < 0:
            raise ConfigError(f"rule {self.name}: the 'for' duration must be >= 0 s, got {self.for_s}")


@dataclass(frozen=True)
class Finding:
    """One bad series a condition saw: its identifying labels, what is wrong, and the
    measured value against its threshold (None where the finding is structural)."""

    labels: Mapping[str, str]
    description: str
    value: float | None = None
    threshold: float | None = None
    severity: Severity | None = None  # overrides the rule's (an anomaly flag carries its own)


@dataclass
class _Series:
    state: RuleState
    active_at: datetime
    fired_at: datetime | None = None
    last: Finding = field(default_factory=lambda: Finding({}, ""))


class RuleEvaluator:
    """Keeps every rule's series between evaluations; see the module docstring.

    :param clock: current UTC time
    :param generator_url: sent as each alert's ``generatorURL``
    """

    def __init__(self, clock: Clock, generator_url: str = "") -> None:
        self._clock = clock
        self._generator_url = generator_url
        self._series: dict[str, dict[str, _Series]] = {}

    def evaluate(self, rule: Rule, findings: Sequence[Finding]) -> list[Alert]:
        """Advance ``rule``'s series with this evaluation's findings; returns the firing
        alerts and the ones that resolved now (to hand to the dispatcher)."""
        now = self._clock()
        series = self._series.setdefault(rule.name, {})
        seen: set[str] = set()
        alerts: list[Alert] = []
        for finding in findings:
            key = fingerprint(rule.name, finding.labels)
            seen.add(key)
            current = series.get(key)
            if current is None:
                current = series[key] = _Series(RuleState.PENDING, active_at=now)
                logger.info("ALERT_RULE_PENDING", extra={"rule": rule.name, "labels": dict(finding.labels)})
            current.last = finding
            if current.state is RuleState.PENDING and now - current.active_at >= timedelta(seconds=rule.for_s):
                current.state, current.fired_at = RuleState.FIRING, now
                logger.warning("ALERT_RULE_FIRING", extra={"rule": rule.name, "labels": dict(finding.labels)})
            if current.state is RuleState.FIRING:
                alerts.append(self._alert(rule, current))
        for key in [key for key in series if key not in seen]:
            gone = series.pop(key)
            if gone.state is RuleState.FIRING:
                alerts.append(self._alert(rule, gone).resolved(now))
                logger.info("ALERT_RULE_RESOLVED", extra={"rule": rule.name, "labels": dict(gone.last.labels)})
        return alerts

    def state(self, rule: Rule, labels: Mapping[str, str]) -> RuleState | None:
        """The series' state, None when it is neither pending nor firing."""
        found = self._series.get(rule.name, {}).get(fingerprint(rule.name, labels))
        return None if found is None else found.state

    def _alert(self, rule: Rule, series: _Series) -> Alert:
        finding = series.last
        assert series.fired_at is not None
        annotations = {"summary": rule.summary, "description": finding.description, "runbook": rule.runbook}
        if finding.value is not None:
            annotations["value"] = f"{finding.value:g}"
        if finding.threshold is not None:
            annotations["threshold"] = f"{finding.threshold:g}"
        return Alert(
            name=rule.name,
            severity=finding.severity or rule.severity,
            labels=finding.labels,
            annotations=annotations,
            starts_at=series.fired_at,
            generator_url=self._generator_url,
        )
