"""Following the registry while trading: a rollback is picked up at the next bar.

A loop trading a registered model by name holds a :class:`ModelWatch`. At every bar, before
deciding, the loop asks :meth:`ModelWatch.changed`: the registry's current manifest digest
(:func:`~ai_trading.monitoring.rollback.current_manifest_digest`) against the digest of the
model it trades. When they differ (a rollback by hand, by :class:`AutoRollback`, or a
promotion) it loads the current model again through the one verified path
(:func:`~ai_trading.runtime.provenance.trading_policy`: signature, digests, rollback
protection, registry pin, feature schema hash), records the switch in the run state
(``model_switches`` in ``run.sqlite``: the bar, from and to), logs ``LOOP_MODEL_SWITCHED``
and raises a ``TradingModelSwitched`` alert.

With ``[alerts] loop_auto_rollback`` the watch also hands the run's returns since the
current model started trading (from the durable equity curve, so a restart judges the same
window) to :meth:`AutoRollback.check_live`, which rolls the registry back when they breach
the model's signed out-of-sample range; the loop then switches at its next bar.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ai_trading.artifacts import Trust
from ai_trading.artifacts.registry import ModelRegistry
from ai_trading.config import AppConfig
from ai_trading.data.frequency import periods_per_year
from ai_trading.errors import DataStoreError, ProvenanceError
from ai_trading.features import FeatureBuilder
from ai_trading.models.policy import Policy
from ai_trading.models.registry_loading import follows_registry
from ai_trading.monitoring.alerts import Alert, Clock, Severity
from ai_trading.monitoring.rollback import AutoRollback, current_manifest_digest
from ai_trading.oms.models import utc_now
from ai_trading.runtime.loop import ModelIdentity, TradingLoop
from ai_trading.runtime.provenance import trading_policy
from ai_trading.runtime.run_state import BUSY_TIMEOUT_S, RUN_DB, RunState

logger = logging.getLogger(__name__)

SWITCHED_ALERT = "TradingModelSwitched"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_switches (
    id INTEGER PRIMARY KEY, bar_ts INTEGER NOT NULL, at TEXT NOT NULL,
    from_name TEXT NOT NULL, from_version TEXT NOT NULL, from_manifest TEXT,
    to_name TEXT NOT NULL, to_version TEXT NOT NULL, to_manifest TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class ModelSwitch:
    """One switch of the traded model at bar ``bar_ts`` (int64 ns UTC): the first bar the
    new model decides; for a change while the run was stopped, the last bar finished
    before the restart (the new model decides from the next one)."""

    bar_ts: int
    at: str
    from_name: str
    from_version: str
    from_manifest: str | None
    to_name: str
    to_version: str
    to_manifest: str


class ModelSwitches:
    """The ``model_switches`` table of a run directory's ``run.sqlite``.

    :param directory: the run directory (its run state must exist)
    """

    def __init__(self, directory: Path) -> None:
        path = Path(directory) / RUN_DB
        try:
            self._con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._con.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise DataStoreError(f"cannot open the run state {path}: {exc}") from exc

    def close(self) -> None:
        self._con.close()

    def record(self, switch: ModelSwitch) -> None:
        self._con.execute(
            "INSERT INTO model_switches (bar_ts, at, from_name, from_version, from_manifest, to_name, to_version, to_manifest) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (switch.bar_ts, switch.at, switch.from_name, switch.from_version, switch.from_manifest, switch.to_name,
             switch.to_version, switch.to_manifest),
        )  # fmt: skip

    def all(self) -> list[ModelSwitch]:
        rows = self._con.execute(
            "SELECT bar_ts, at, from_name, from_version, from_manifest, to_name, to_version, to_manifest FROM model_switches ORDER BY id"
        ).fetchall()
        return [ModelSwitch(int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], str(r[5]), str(r[6]), str(r[7])) for r in rows]

    def last(self) -> ModelSwitch | None:
        found = self.all()
        return found[-1] if found else None


def returns_since(state: RunState, bar_ts: int | None, last: int) -> list[float]:
    """The last ``last`` bar-to-bar returns of the run's marked equity from bar ``bar_ts``
    on (None: from the start); fewer when there are not as many."""
    since = -(2**63) if bar_ts is None else int(bar_ts)
    rows = state.query(f"SELECT equity FROM equity WHERE bar_ts >= {since} ORDER BY bar_ts DESC LIMIT {int(last) + 1}")
    equity = np.asarray(rows.column("equity").to_numpy(), dtype=np.float64)[::-1]
    return [] if equity.size < 2 else list(equity[1:] / equity[:-1] - 1.0)


class ModelWatch:
    """Follows the registry's current model of ``name`` (see the module docstring).

    :param config: the configuration the model is loaded with (``[artifacts]``)
    :param name: the registry name the run trades (``--model``)
    :param builder: the loop's feature builder (the schema hash every load must match)
    :param loaded: the identity of the model the loop loaded at start
    :param switches: where switches are recorded
    :param rollback: with ``loop_auto_rollback``: judges the live returns
    :param periods_per_year: of the run's bars (annualises the live Sharpe ratio)
    """

    def __init__(
        self,
        config: AppConfig,
        name: str,
        builder: FeatureBuilder,
        loaded: ModelIdentity,
        switches: ModelSwitches,
        rollback: AutoRollback | None = None,
        periods_per_year: float = 0.0,
        clock: Clock = utc_now,
    ) -> None:
        self._config = config
        self._registry = ModelRegistry.from_config(config.artifacts)
        self._name = name
        self._builder = builder
        self._identity = loaded
        self._switches = switches
        self._rollback = rollback
        self._periods = periods_per_year
        self._clock = clock

    @property
    def identity(self) -> ModelIdentity:
        return self._identity

    def changed(self) -> bool:
        return current_manifest_digest(self._registry, self._name) != self._identity.manifest_sha256

    def switch(self, bar_ts: int, universe: tuple[str, ...]) -> tuple[Policy, ModelIdentity, Alert]:
        """Load the registry's current model (verified) and record the switch; returns it
        with the ``TradingModelSwitched`` alert that announces it.

        :param universe: the symbols the loop trades; the new model must trade the same
        :raises ProvenanceError: the new model fails verification or trades another universe
        """
        policy, identity = trading_policy(self._name, self._config, self._builder, ())
        if tuple(policy.universe) != tuple(universe):
            raise ProvenanceError(
                f"the registry's current {self._name!r} ({identity.name} v{identity.version}) trades {', '.join(policy.universe)}, "
                f"the running loop {', '.join(universe)}: it cannot switch; stop the run and start another for the new model"
            )
        before = self._identity
        now = self._clock()
        self._switches.record(ModelSwitch(
            bar_ts, now.isoformat(), before.name, before.version, before.manifest_sha256, identity.name, identity.version,
            str(identity.manifest_sha256),
        ))  # fmt: skip
        self._identity = identity
        logger.warning(
            "LOOP_MODEL_SWITCHED",
            extra={"model": self._name, "from": f"{before.name} v{before.version}", "to": f"{identity.name} v{identity.version}", "bar_ts": bar_ts},
        )
        announced = Alert(
            SWITCHED_ALERT, Severity.WARNING, {"model": self._name, "manifest": str(identity.manifest_sha256)[:16]},
            {
                "summary": f"the trading loop now trades {identity.name} v{identity.version} (was {before.name} v{before.version})",
                "description": f"the registry's current {self._name!r} changed (a rollback or a promotion); loaded through the verified path",
                "runbook": "README.md#automatic-rollback: `ai-trading registry show` and the registry's audit.jsonl say who changed it and why",
            },
            now,
        )  # fmt: skip
        return policy, identity, announced

    def check_live(self, state: RunState) -> None:
        """Hand the returns since the current model started to the automatic rollback."""
        if self._rollback is None:
            return
        last = self._switches.last()
        returns = returns_since(state, None if last is None else last.bar_ts, self._config.alerts.rollback_window_bars)
        self._rollback.check_live(self._name, returns, self._periods)

    def close(self) -> None:
        self._switches.close()


def open_watch(
    config: AppConfig, reference: str, loop: TradingLoop, state: RunState, raise_alerts: Callable[[Sequence[Alert]], object], clock: Clock = utc_now
) -> ModelWatch | None:
    """The watch of a loop trading ``reference`` (``--model``): None for the demo and for
    an artifact directory (no registry entry to follow). With ``[alerts]
    loop_auto_rollback`` an :class:`AutoRollback` judges the live returns, raising its
    alerts through ``raise_alerts``."""
    if not follows_registry(reference):
        return None
    rollback = None
    if config.alerts.loop_auto_rollback:
        registry = ModelRegistry.from_config(config.artifacts)
        trust = Trust.from_config(config.artifacts)
        rollback = AutoRollback(registry, trust, loop.builder.feature_schema_hash, config.alerts, raise_alerts, clock)
    periods = periods_per_year(loop.frequency, config.data.sessions_per_year, config.data.session_minutes)
    return ModelWatch(
        config, reference, loop.builder, loop.model, ModelSwitches(state.directory), rollback, periods, clock
    )
