"""Automatic rollback of a failing model to the registry's previous one.

Two triggers, each enabled by ``[alerts] rollback_on``:

- ``governance``: the current model fails its promotion gate when re-checked;
- ``sharpe`` / ``drawdown``: a live SLO over the trailing ``rollback_window_bars`` returns
  lies far outside the model's *signed* out-of-sample numbers (its manifest metrics, read
  through the verified load, so nobody can loosen them unsigned): the realized Sharpe
  ratio more than ``rollback_sharpe_z`` standard errors below the signed one (standard
  error of an estimated Sharpe ratio after Lo 2002, "The Statistics of Sharpe Ratios":
  ``sqrt((1 + SR^2 / 2) / n)`` per period), or the window's maximum drawdown above
  ``rollback_drawdown_multiple`` times the signed one.

A rollback goes through :meth:`ModelRegistry.rollback` (verified, authorised in the trust
state, audited with the trigger as the reason and ``by``); it never restores a model a
rollback demoted before (that model is also refused by ``registry promote`` unless
``--force``). Each outcome raises an alert through the ``raise_alerts`` sink (the
dispatcher): ``ModelRolledBack``, or ``ModelRollbackBlocked`` when there is nothing safe to
go back to (by default that alert halts trading through the kill switch).

**How the trading loop picks the change up.** The loop remembers the manifest digest of
the model it loaded (``VerifiedArtifact.manifest_sha256``) and at every bar compares it
with :func:`current_manifest_digest`; when they differ it loads the model again through
``ModelRegistry.load_current`` (the verified path: signature, digests, feature schema
hash) before deciding, and restarts the live-returns window it hands to
:meth:`AutoRollback.check_live`, which judges the model that earned them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ai_trading.artifacts.loading import Trust
from ai_trading.artifacts.registry import ModelRegistry, ModelSlots
from ai_trading.config import AlertsConfig
from ai_trading.errors import (
    ConfigError,
    ProvenanceError,
    RegistryError,
    SignatureError,
)
from ai_trading.evaluation.metrics import max_drawdown, sharpe_ratio
from ai_trading.monitoring.alerts import Alert, Clock, Severity
from ai_trading.monitoring.conditions import GateRejection
from ai_trading.oms.models import utc_now

logger = logging.getLogger(__name__)

ROLLED_BACK_ALERT = "ModelRolledBack"
ROLLBACK_BLOCKED_ALERT = "ModelRollbackBlocked"
TRIGGERS = ("governance", "sharpe", "drawdown")
# Signed out-of-sample numbers by artifact kind: ML walk-forward, RL held-out test.
SHARPE_METRICS = ("net_sharpe", "test_sharpe")
DRAWDOWN_METRICS = ("max_drawdown", "test_max_drawdown")
RUNBOOK = "README.md#automatic-rollback"


def current_manifest_digest(registry: ModelRegistry, model: str) -> str:
    """The manifest digest of ``model``'s current registry entry: the loop calls this at
    every bar and reloads (verified) when it differs from the digest it loaded."""
    return registry.slots(model).current.manifest_sha256


@dataclass(frozen=True)
class SignedRange:
    """The model's signed out-of-sample numbers the live SLOs are judged against
    (None: the manifest records none, so that SLO is not judged).

    :param sharpe: annualised Sharpe ratio
    :param max_drawdown: maximum drawdown as a positive fraction (0.25: a 25 % fall)
    """

    sharpe: float | None
    max_drawdown: float | None

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, float]) -> SignedRange:
        sharpe = next((float(metrics[k]) for k in SHARPE_METRICS if k in metrics), None)
        drawdown = next((abs(float(metrics[k])) for k in DRAWDOWN_METRICS if k in metrics), None)
        return cls(sharpe, drawdown)


@dataclass(frozen=True)
class Breach:
    """One live SLO far outside the signed range: ``value`` against ``threshold``."""

    trigger: str
    description: str
    value: float
    threshold: float


def triggers(config: AlertsConfig) -> frozenset[str]:
    """The enabled triggers of ``[alerts] rollback_on``; an unknown one is a ConfigError."""
    enabled = frozenset(t.strip() for t in config.rollback_on.split(",") if t.strip())
    unknown = enabled - set(TRIGGERS)
    if unknown:
        raise ConfigError(f"[alerts] rollback_on: unknown trigger(s) {sorted(unknown)}; choose from {', '.join(TRIGGERS)}")
    return enabled


def sharpe_standard_error(sharpe: float, n: int, periods_per_year: float) -> float:
    """Annualised standard error of an annualised Sharpe ratio estimated from ``n`` periods."""
    per_period = sharpe / math.sqrt(periods_per_year)
    return math.sqrt((1.0 + 0.5 * per_period**2) / n) * math.sqrt(periods_per_year)


def live_breaches(returns: Sequence[float], periods_per_year: float, signed: SignedRange, config: AlertsConfig) -> list[Breach]:
    """The enabled SLOs the trailing window of ``returns`` breaches (none until the window is full)."""
    enabled, n = triggers(config), config.rollback_window_bars
    if len(returns) < n:
        return []
    window = np.asarray(returns[-n:], dtype=np.float64)
    breaches: list[Breach] = []
    realized = sharpe_ratio(window, periods_per_year)
    if "sharpe" in enabled and signed.sharpe is not None and math.isfinite(realized):
        floor = signed.sharpe - config.rollback_sharpe_z * sharpe_standard_error(signed.sharpe, n, periods_per_year)
        if realized < floor:
            breaches.append(Breach("sharpe", f"trailing {n}-bar Sharpe {realized:.3g} below {floor:.3g} (signed {signed.sharpe:.3g})", realized, floor))
    drawdown = abs(max_drawdown(window))
    if "drawdown" in enabled and signed.max_drawdown is not None and signed.max_drawdown > 0:
        limit = config.rollback_drawdown_multiple * signed.max_drawdown
        if drawdown > limit:
            breaches.append(Breach("drawdown", f"trailing {n}-bar drawdown {drawdown:.3g} above {limit:.3g} (signed {signed.max_drawdown:.3g})", drawdown, limit))
    return breaches


@dataclass(frozen=True)
class RollbackOutcome:
    """What :class:`AutoRollback` did about one trigger.

    :param rolled_back: True when the previous model is current now
    :param slots: the registry's slots after a rollback (None when nothing changed)
    :param alert: the alert raised (``ModelRolledBack`` or ``ModelRollbackBlocked``)
    """

    model: str
    trigger: str
    reason: str
    rolled_back: bool
    slots: ModelSlots | None
    alert: Alert


class AutoRollback:
    """Rolls ``model`` back on a governance failure or a live SLO breach; see the module docstring.

    :param registry: the model registry
    :param trust: the trusted keys and rollback state the rollback authorises in
    :param expected_feature_schema_hash: the feature schema the loop's builder produces
    :param config: ``rollback_*`` settings of ``[alerts]``
    :param raise_alerts: takes the alerts raised (``Dispatcher.receive``)
    :param by: who the registry audit names as having rolled back
    """

    def __init__(
        self,
        registry: ModelRegistry,
        trust: Trust,
        expected_feature_schema_hash: str,
        config: AlertsConfig,
        raise_alerts: Callable[[Sequence[Alert]], object],
        clock: Clock = utc_now,
        by: str = "auto-rollback",
    ) -> None:
        self._registry = registry
        self._trust = trust
        self._schema_hash = expected_feature_schema_hash
        self._config = config
        self._triggers = triggers(config)
        self._raise = raise_alerts
        self._clock = clock
        self._by = by
        self._signed: dict[str, SignedRange] = {}

    def signed_range(self, model: str) -> SignedRange:
        """The current model's signed out-of-sample numbers, read through the verified load
        (once per manifest digest: checked at every bar, loaded only when it changed)."""
        digest = current_manifest_digest(self._registry, model)
        if digest not in self._signed:
            artifact = self._registry.load_current(model, self._trust, self._schema_hash)
            self._signed[artifact.manifest_sha256] = SignedRange.from_metrics(artifact.manifest.fields.metrics)
            digest = artifact.manifest_sha256
        return self._signed[digest]

    def on_governance_failure(self, model: str, rejections: Sequence[GateRejection]) -> RollbackOutcome | None:
        """Roll back when the current model failed its gate (None: no rejection, or the
        ``governance`` trigger is off)."""
        if not rejections or "governance" not in self._triggers:
            return None
        reasons = "; ".join(f"{r.code}: {r.metric} {r.value:g} (threshold {r.threshold:g})" for r in rejections)
        return self._roll_back(model, "governance", f"current model failed its promotion gate: {reasons}")

    def check_live(self, model: str, returns: Sequence[float], periods_per_year: float) -> RollbackOutcome | None:
        """Roll back when ``returns`` (the live returns earned since the current model
        started trading) breach an enabled SLO; None when none is breached."""
        breaches = live_breaches(returns, periods_per_year, self.signed_range(model), self._config)
        if not breaches:
            return None
        return self._roll_back(model, breaches[0].trigger, "; ".join(b.description for b in breaches))

    def _roll_back(self, model: str, trigger: str, reason: str) -> RollbackOutcome:
        before = self._registry.slots(model)
        labels = {"model": model, "trigger": trigger}
        try:
            slots = self._registry.rollback(
                model, self._trust, self._schema_hash, reason=f"{trigger}: {reason}", by=self._by, restore_rolled_back=False
            )
        except (RegistryError, SignatureError, ProvenanceError) as exc:  # nothing safe to go back to
            logger.critical("MODEL_ROLLBACK_BLOCKED", extra={"model": model, "trigger": trigger, "error": str(exc)})
            alert = self._alert(ROLLBACK_BLOCKED_ALERT, labels, f"{model} must be rolled back but cannot be", f"{reason}; {exc}")
            self._raise([alert])
            return RollbackOutcome(model, trigger, reason, False, None, alert)
        logger.critical("MODEL_ROLLED_BACK", extra={"model": model, "trigger": trigger, "to": slots.current.name, "version": slots.current.version})
        description = (
            f"{reason}; {before.current.name} v{before.current.version} replaced by {slots.current.name} "
            f"v{slots.current.version}; it is not promoted again without `registry promote --force`"
        )
        alert = self._alert(ROLLED_BACK_ALERT, labels, f"{model} rolled back to its previous model", description)
        self._raise([alert])
        return RollbackOutcome(model, trigger, reason, True, slots, alert)

    def _alert(self, name: str, labels: Mapping[str, str], summary: str, description: str) -> Alert:
        annotations = {"summary": summary, "description": description, "runbook": RUNBOOK}
        return Alert(name, Severity.CRITICAL, labels, annotations, self._clock())
