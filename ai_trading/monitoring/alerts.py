"""The alert record every rule produces and every receiver is sent.

An :class:`Alert` is identified by its fingerprint (SHA-256 of its name and sorted
labels): the same condition on the same labels is one alert however often a rule
reports it, which is what deduplication, grouping and silences key on. Its ``labels``
always carry ``alertname`` and ``severity``, so routes and matchers can select on them
the way Alertmanager users expect.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ai_trading.errors import ConfigError

Clock = Callable[[], datetime]
"""Returns the current UTC time; injected everywhere timing matters, so tests use a fake one."""

ALERTNAME = "alertname"
SEVERITY = "severity"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(name: str, labels: Mapping[str, str]) -> str:
    """SHA-256 (hex) of the name and the labels sorted by key; independent of label order."""
    canonical = json.dumps([name, sorted(labels.items())], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Alert:
    """One alert as of one evaluation.

    :param name: the rule's name (``OmsReconciliationFailed``); also the ``alertname`` label
    :param severity: ``critical``, ``warning`` or ``info``; also the ``severity`` label
    :param labels: identifying labels (``account``, ``symbol``, ...); ``alertname`` and
        ``severity`` are added
    :param annotations: ``summary``, ``description``, ``runbook`` (free text, not identifying)
    :param starts_at: when the condition started firing (UTC)
    :param ends_at: when it stopped; None while firing
    :param generator_url: link to what produced it (sent as ``generatorURL``)
    """

    name: str
    severity: Severity
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str = ""
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("an alert needs a name")
        try:
            severity = Severity(self.severity)
        except ValueError as exc:
            raise ConfigError(f"alert {self.name}: severity must be critical, warning or info, got {self.severity!r}") from exc
        if self.starts_at.tzinfo is None or (self.ends_at is not None and self.ends_at.tzinfo is None):
            raise ConfigError(f"alert {self.name}: starts_at and ends_at must be timezone-aware UTC datetimes")
        labels = {str(k): str(v) for k, v in self.labels.items()}
        for reserved, value in ((ALERTNAME, self.name), (SEVERITY, severity.value)):
            if labels.setdefault(reserved, value) != value:
                raise ConfigError(f"alert {self.name}: label {reserved}={labels[reserved]!r} contradicts the alert's own {value!r}")
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "labels", MappingProxyType(dict(sorted(labels.items()))))
        object.__setattr__(self, "annotations", MappingProxyType({str(k): str(v) for k, v in self.annotations.items()}))
        object.__setattr__(self, "fingerprint", fingerprint(self.name, self.labels))

    def status_at(self, now: datetime) -> AlertStatus:
        """Resolved once ``ends_at`` has passed, firing before."""
        return AlertStatus.RESOLVED if self.ends_at is not None and self.ends_at <= now else AlertStatus.FIRING

    def resolved(self, at: datetime) -> Alert:
        """This alert, ended at ``at``."""
        return replace(self, ends_at=at)

    def to_payload(self, now: datetime) -> dict[str, Any]:
        """The alert as one entry of the Alertmanager webhook payload's ``alerts[]``."""
        return {
            "status": self.status_at(now).value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": iso(self.starts_at),
            "endsAt": iso(self.ends_at) if self.ends_at is not None else "0001-01-01T00:00:00Z",
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z``, as Alertmanager writes times."""
    return moment.isoformat().replace("+00:00", "Z")
