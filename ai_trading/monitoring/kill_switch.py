"""The kill switch as an alert receiver: critical alerts halt (or reduce) trading at once.

A route whose receiver is a ``[receivers.kill_switch]`` hands each firing alert to a
:class:`KillSwitch` the moment the dispatcher receives it (no group wait, no outbox: an
alert is no reason to wait 30 s). ``[alerts] kill_switch_halt_on`` names the alerts that
set the account ``HALTED``, ``kill_switch_reduce_on`` those that set it ``REDUCING``;
other alerts are ignored. The state is the durable one in the OMS database
(:class:`~ai_trading.oms.trading_state.TradingStateStore`): every process trading the
account refuses new orders from its next send on, and the change is audited with the
alert as who (``alert:<name>``) and why. The switch only ever tightens the state (a
reducing alert never lifts HALTED, a resolved alert never resets anything: that takes
``ai-trading kill off``), and it returns a ``KillSwitchEngaged`` alert that the
dispatcher routes to people through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import Engine

from ai_trading.config import AlertsConfig
from ai_trading.errors import ConcurrencyConflict, ConfigError
from ai_trading.monitoring.alerts import Alert, Clock, Severity
from ai_trading.monitoring.receivers import ReceiverSpec
from ai_trading.monitoring.routing import RoutingConfig
from ai_trading.oms.models import TradingState, TradingStateRecord, utc_now
from ai_trading.oms.trading_state import TradingStateStore

logger = logging.getLogger(__name__)

KILL_SWITCH_ENGAGED = "KillSwitchEngaged"
ACCOUNT_LABEL = "account"
STRICTNESS: Mapping[TradingState, int] = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
SET_ATTEMPTS = 3  # a concurrent setter (another process, an operator) makes one attempt lose


def alert_names(text: str) -> frozenset[str]:
    """The names of a comma-separated ``[alerts]`` list."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


class KillSwitch:
    """Sets an account's trading state from alerts; see the module docstring.

    :param states: the trading states of the OMS database
    :param account: the account it halts
    :param config: ``kill_switch_halt_on`` and ``kill_switch_reduce_on``
    :param clock: current UTC time (for the alert it raises)
    """

    def __init__(self, states: TradingStateStore, account: str, config: AlertsConfig, clock: Clock = utc_now) -> None:
        self._states = states
        self._account = account
        self._halt_on = alert_names(config.kill_switch_halt_on)
        self._reduce_on = alert_names(config.kill_switch_reduce_on)
        self._clock = clock
        both = self._halt_on & self._reduce_on
        if both:
            raise ConfigError(f"[alerts] kill_switch_halt_on and kill_switch_reduce_on both name {sorted(both)}: choose one")

    @classmethod
    def from_spec(cls, spec: ReceiverSpec, engine: Engine, config: AlertsConfig, default_account: str) -> KillSwitch:
        """The kill switch a routes file's ``[receivers.kill_switch]`` describes."""
        if spec.kill_switch is None:
            raise ConfigError(f"receiver {spec.name} is not a kill switch")
        return cls(TradingStateStore(engine), spec.kill_switch.account or default_account, config)

    def target(self, alert: Alert) -> TradingState | None:
        """The state ``alert`` calls for on this account (None: not this switch's business)."""
        if alert.labels.get(ACCOUNT_LABEL, self._account) != self._account:
            return None
        if alert.name in self._halt_on:
            return TradingState.HALTED
        if alert.name in self._reduce_on:
            return TradingState.REDUCING
        return None

    def __call__(self, alert: Alert) -> list[Alert]:
        """Tighten the state as ``alert`` calls for; returns the ``KillSwitchEngaged`` alert
        when the state changed (nothing when it already was at least as strict)."""
        target = self.target(alert)
        if target is None:
            return []
        reason = f"alert {alert.name} ({alert.severity.value}): {alert.annotations.get('summary', '')} [fingerprint {alert.fingerprint[:16]}]"
        for _ in range(SET_ATTEMPTS):
            current = self._states.get(self._account)
            if STRICTNESS[current.state] >= STRICTNESS[target]:
                return []
            try:
                record = self._states.set(self._account, target, reason=reason, changed_by=f"alert:{alert.name}")
            except ConcurrencyConflict:
                continue
            logger.critical("KILL_SWITCH_ENGAGED", extra={"account": self._account, "state": target.value, "alert": alert.name})
            return [self._engaged(alert, current, record)]
        raise ConcurrencyConflict(f"trading state of {self._account} kept changing under the kill switch: set it by hand (`ai-trading kill on`)")

    def _engaged(self, cause: Alert, before: TradingStateRecord, record: TradingStateRecord) -> Alert:
        return Alert(
            name=KILL_SWITCH_ENGAGED,
            severity=Severity.CRITICAL,
            labels={ACCOUNT_LABEL: self._account, "state": record.state.value, "version": str(record.version)},
            annotations={
                "summary": f"kill switch set account {self._account} {record.state.value} (was {before.state.value})",
                "description": f"{record.reason}; every process refuses new orders from its next send on",
                "runbook": "README.md#kill-switch: `ai-trading kill status`; resolve the cause, then `ai-trading kill off --reason ...`",
                "cause": cause.name,
            },
            starts_at=self._clock(),
        )


def kill_switch_actions(routing: RoutingConfig, engine: Engine, config: AlertsConfig, default_account: str) -> dict[str, KillSwitch]:
    """The ``actions`` a :class:`~ai_trading.monitoring.dispatcher.Dispatcher` needs: one
    :class:`KillSwitch` per kill-switch receiver of ``routing``."""
    return {
        name: KillSwitch.from_spec(spec, engine, config, default_account)
        for name, spec in routing.receivers.items()
        if spec.kill_switch is not None
    }
