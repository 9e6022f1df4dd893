"""The trading loop's alerts, raised where the events happen.

A :class:`Monitor` is made by the runtime (replay, paper, live) and handed to the
:class:`~ai_trading.runtime.loop.TradingLoop`; the loop calls one method per event:

- :meth:`Monitor.reconciliation`: the structured report of the start-up reconciliation and
  of every poll (unknown orders, position differences, intents the broker does not know);
- :meth:`Monitor.costs`: realized against predicted cost of the bar's new fills, per fill
  and per day (``ExecutionCostSpike``);
- :meth:`Monitor.step_took`, :meth:`Monitor.orders`, :meth:`Monitor.broker`: the SLOs of
  a step (its duration against ``step_budget_s``, the broker's reject rate over the last
  ``reject_rate_window_orders`` orders, whether the broker answered);
- :meth:`Monitor.risk_denials`: more risk denials in one rebalance than
  ``risk_denials_per_bar`` (``RiskDenialsHigh``);
- :meth:`Monitor.data_staleness`: **the hook for market-data feeds**: a feed calls it
  whenever it checks for a bar the calendar expects, with how late that bar is (0 when
  it has arrived); see the method;
- :meth:`Monitor.raise_alerts`: alerts made elsewhere (a model switch, the automatic
  rollback).

Each goes through a :class:`~ai_trading.monitoring.rules.RuleEvaluator` (``for``
durations, resolution) into the :class:`~ai_trading.monitoring.notify.AlertPipeline`:
routing, grouping, inhibition, silences, the outbox; a kill-switch receiver acts at once.
:meth:`Monitor.pump`, called once per step, queues the due groups and starts a delivery
pass in a background thread when none is running, so a slow or unreachable receiver never
delays a step (the outbox's lease keeps a row from being sent twice); the refusals a
pass reports (``AlertDeliveryRejected``) are raised at the next pump. :meth:`Monitor.close`
queues what is still waiting and gives the last delivery ``loop_shutdown_delivery_s``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from sqlalchemy import Engine

from ai_trading.config import AlertsConfig, AppConfig
from ai_trading.errors import BrokerError
from ai_trading.monitoring.alerts import Alert, Clock
from ai_trading.monitoring.conditions import (
    CostObservation,
    broker_unreachable_findings,
    cost_spike_findings,
    data_stale_findings,
    reconciliation_findings,
    reject_rate_findings,
    risk_denial_findings,
    standard_rules,
    step_over_budget_findings,
)
from ai_trading.monitoring.notify import AlertPipeline
from ai_trading.monitoring.outbox import DeliveryReport
from ai_trading.monitoring.rules import Finding, Rule, RuleEvaluator
from ai_trading.oms.models import utc_now
from ai_trading.oms.reconcile import ReconciliationReport
from ai_trading.runtime.run_state import RunState
from ai_trading.runtime.tca import day_rows

logger = logging.getLogger(__name__)

def cost_observations(state: RunState, after_oms_fill_id: int) -> list[CostObservation]:
    """Realized against predicted cost of the fills applied after ``after_oms_fill_id``
    (each fill against its reference mid, as the cost model measures it, and the order's
    prediction), and of each day those fills' orders were decided on (the execution log's
    notional-weighted figures, :func:`~ai_trading.runtime.tca.day_rows`, as ``ai-trading
    tca`` shows them; read for those days only, so a step's cost does not grow with the
    run). Bps of the reference price, fees excluded, positive = paid."""
    fills = state.query(
        "SELECT f.symbol, f.side * (f.price - f.mid) / f.mid * 1e4 AS realized_bps, o.expected_cost_bps AS predicted_bps, "
        "o.decision_ts FROM applied_fills f JOIN orders o USING (client_order_id) "
        "WHERE f.oms_fill_id > ? AND f.mid > 0 ORDER BY f.oms_fill_id",
        (int(after_oms_fill_id),),
    ).to_pylist()
    observations = [CostObservation("fill", str(f["symbol"]), float(f["realized_bps"]), float(f["predicted_bps"])) for f in fills]
    days = day_rows(state, [int(f["decision_ts"]) for f in fills])
    return observations + [
        CostObservation("day", "*", float(row["realized_bps_arrival"]), float(row["predicted_bps"]))
        for row in days
        if row["realized_bps_arrival"] is not None
    ]


class Monitor:
    """The loop's alerting (see the module docstring).

    :param pipeline: the dispatcher, outbox and delivery worker of the run's OMS database
    :param config: thresholds and ``for`` durations (``[alerts]``)
    :param account: the traded account (label of OMS, reject-rate and risk alerts)
    :param loop: names the loop in SLO alerts (``replay``, ``paper``, ``live``)
    :param broker: names the broker in ``BrokerUnreachable``
    :param clock: current UTC time of the rules (fake in tests)
    """

    def __init__(
        self, pipeline: AlertPipeline, config: AlertsConfig, *, account: str, loop: str, broker: str, clock: Clock = utc_now
    ) -> None:
        self._pipeline = pipeline
        self._config = config
        self._account = account
        self._loop = loop
        self._broker = broker
        self._rules = standard_rules(config)
        self._evaluator = RuleEvaluator(clock, config.external_url)
        self._outcomes: deque[bool] = deque(maxlen=max(config.reject_rate_window_orders, 1))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-delivery")
        self._delivery: Future[DeliveryReport] | None = None

    def _evaluate(self, rule: Rule, findings: Sequence[Finding]) -> None:
        self._pipeline.receive(self._evaluator.evaluate(rule, findings))

    def raise_alerts(self, alerts: Sequence[Alert]) -> None:
        """Alerts made elsewhere (a model switch, :class:`~ai_trading.monitoring.AutoRollback`)."""
        self._pipeline.receive(alerts)

    def reconciliation(self, report: ReconciliationReport) -> None:
        self._evaluate(self._rules.reconciliation, reconciliation_findings(report, self._account))

    def costs(self, observations: Sequence[CostObservation]) -> None:
        """This step's realized against predicted costs (an empty list resolves earlier spikes)."""
        self._evaluate(self._rules.cost_spike, cost_spike_findings(observations, self._config))

    def step_took(self, seconds: float) -> None:
        self._evaluate(self._rules.step_over_budget, step_over_budget_findings(self._loop, seconds, self._config))

    def orders(self, sent: int, rejected: int) -> None:
        """``sent`` orders went to the broker this step, ``rejected`` were refused (of
        these or of earlier ones, as the poll found out)."""
        self._outcomes.extend([False] * max(sent - rejected, 0) + [True] * rejected)
        findings = reject_rate_findings(self._account, len(self._outcomes), sum(self._outcomes), self._config)
        self._evaluate(self._rules.reject_rate, findings)

    def broker(self, error: BrokerError | None) -> None:
        """Whether this step reached the broker (None) or failed with ``error``."""
        findings = broker_unreachable_findings(self._broker, error is None, "" if error is None else str(error))
        self._evaluate(self._rules.broker_unreachable, findings)

    def risk_denials(self, denials: int) -> None:
        self._evaluate(self._rules.risk_denials, risk_denial_findings(self._account, denials, self._config))

    def data_staleness(self, feed: str, seconds_late: float) -> None:
        """Hook for market-data feeds: call it whenever the feed checks for the bar the
        exchange calendar expects, with ``seconds_late`` the time since that bar should
        have been available (0 once it has arrived, which resolves the alert). ``feed``
        names the feed (a label: one alert series per feed). ``MarketDataStale`` fires
        once the lateness exceeds ``data_staleness_grace_s`` for ``data_staleness_for_s``;
        by default it sets the account REDUCING through a kill-switch receiver."""
        self._evaluate(self._rules.data_stale, data_stale_findings(feed, seconds_late, self._config))

    def pump(self) -> None:
        """Queue the due notifications and keep one delivery pass running (never waits)."""
        self._collect(wait_s=0.0)
        self._pipeline.tick()
        if self._delivery is None:
            self._delivery = self._executor.submit(self._pipeline.deliver)

    def _collect(self, wait_s: float) -> bool:
        """Take the finished delivery pass's report; False when it is still running."""
        if self._delivery is None:
            return True
        try:
            report = self._delivery.result(timeout=wait_s)
        except FutureTimeout:
            return False
        self._delivery = None
        self._pipeline.receive(report.alerts)
        return True

    def close(self) -> None:
        """Queue everything still waiting, deliver once more, wait at most
        ``loop_shutdown_delivery_s``; undelivered notifications stay in the outbox."""
        try:
            budget = self._config.loop_shutdown_delivery_s
            if self._collect(wait_s=budget):
                self._pipeline.flush()
                self._delivery = self._executor.submit(self._pipeline.deliver)
                if self._collect(wait_s=budget):
                    self._pipeline.flush()  # the refusals of the last pass, queued
                    return
            logger.warning("ALERT_DELIVERY_UNFINISHED", extra={"wait_s": budget})
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)


def open_monitor(config: AppConfig, engine: Engine, *, loop: str, broker: str, clock: Clock = utc_now) -> Monitor:
    """The monitor of a trading run whose OMS database is ``engine`` (at head): its outbox,
    silences and trading state are there; routes from ``[alerts] routes_file`` (none:
    recorded in the outbox under ``unrouted``, see :mod:`ai_trading.monitoring.notify`)."""
    return Monitor(AlertPipeline(config, engine, clock), config.alerts, account=config.risk.account, loop=loop, broker=broker, clock=clock)
