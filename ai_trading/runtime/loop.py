"""The one trading loop: at every bar close, bars -> features -> policy -> engine -> OMS -> broker.

:class:`TradingLoop` is the same object in replay, paper and live trading; only its
:class:`~ai_trading.runtime.clock.Clock`, :class:`~ai_trading.runtime.feed.BarFeed` and
broker differ. One step, for the bar close ``t`` the clock gives:

1. append the feed's new bars to the store (validated ingest);
2. move a simulated broker's clock to ``t`` (a real broker's clock is the world's);
3. poll the OMS: acknowledgements, fills, cancels up to ``t``;
4. fold the new fills into the EWMA cost model and the execution log;
5. build the features of the window ending at ``t`` with the one feature builder, ask the
   policy for target weights given the book marked at ``t``'s close;
6. the engine nets, rounds, risk-checks, writes ahead and sends the rebalance;
7. record the sent orders, the marked book and the cursor (one transaction).

**Alerts and the registry.** With a :class:`~ai_trading.runtime.monitor.Monitor` the loop
raises alerts where the events happen: after the poll (broker unreachable, reconciliation
report, cost spikes of the new fills; before deciding, so a kill switch they engage stops
this bar's orders already), after the rebalance (reject rate, risk denials) and at the
end of the step (its duration against its budget); then it pumps the alert pipeline. A
:class:`~ai_trading.errors.BrokerError` on the poll or the send does not end the run: the
bar's decision is skipped (written-ahead intents of a failed send are resolved by the next
poll's reconciliation, under their own ids), the book is marked from the fills known, and
``BrokerUnreachable`` fires once it has lasted its ``for`` duration. With a
:class:`~ai_trading.runtime.model_watch.ModelWatch` the loop first checks, at every bar,
whether the registry's current model changed and switches to it (verified load) before
deciding, and feeds its returns to the automatic rollback.

**Crash-only.** Every step is recomputed from durable state: the cursor says which bar is
next, the OMS and the broker hold the orders, the run state holds the applied fills. A
step interrupted anywhere is done again from the start: the decision is the same (same
bars, same book), so the engine finds the same client order ids and sends nothing twice
(see :mod:`ai_trading.execution.engine`); fills already applied are skipped by id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ai_trading.brokers.sim_market import StoreMarket, utc_datetime
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import BrokerError
from ai_trading.execution.engine import DecisionContext, ExecutionEngine, MarketSnapshot, RebalanceResult
from ai_trading.execution.parameters import panel_volatility_bps
from ai_trading.execution.pnl import forward_filled_close
from ai_trading.features import FeatureBuilder
from ai_trading.models.policy import MarketWindow, Policy, PortfolioState, panel_rows
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import IntentState
from ai_trading.oms.reconcile import ReconciliationReport
from ai_trading.runtime.clock import Clock, Tick
from ai_trading.runtime.feed import BarFeed
from ai_trading.runtime.fill_feedback import FillFeedback
from ai_trading.runtime.monitor import Monitor, cost_observations
from ai_trading.runtime.run_state import Cursor, PlannedOrderRecord, RunState
from ai_trading.types import FloatArray, MarketPanel

if TYPE_CHECKING:  # it builds on this module
    from ai_trading.runtime.model_watch import ModelWatch

logger = logging.getLogger(__name__)


class BrokerClock(Protocol):
    """A simulated broker's market clock (the SimBroker); real brokers have none."""

    def advance_to(self, when: datetime) -> datetime: ...


@dataclass(frozen=True)
class ModelIdentity:
    """Who decides: the CIDv2 strategy (model name) and version, and the provenance the
    run records (the signed manifest's digest and training data fingerprint; None for the
    built-in demo)."""

    name: str
    version: str
    manifest_sha256: str | None = None
    dataset_fingerprint: str | None = None


@dataclass(frozen=True)
class StepReport:
    """What one bar close did."""

    tick: Tick
    fills_applied: int
    orders: int
    denials: int
    equity: float
    cursor: Cursor


@dataclass(frozen=True)
class LoopOutcome:
    """How a run of the loop ended: ``stopped`` by a signal, or the clock ran out."""

    stopped: bool
    cursor: Cursor


def window_bars(policy: Policy) -> int:
    """Bars a decision needs: the features' warm-up plus the policy's lookback plus the bar."""
    return policy.feature_spec.lookback + policy.lookback + 1


class TradingLoop:
    """Runs a policy at every bar close (see the module docstring).

    :param clock: the bar closes to act on
    :param feed: the source of new bars (appended to ``market``'s store)
    :param market: the universe's bars in the store (the policy's symbols, one frequency)
    :param store: the market-data store ``market`` reads (written only when the feed has bars)
    :param policy: the verified policy; ``builder`` must build its feature schema
    :param model: the model's identity for the CIDv2 ids and the run record
    :param engine: the execution engine of ``manager``'s account
    :param manager: the started order manager
    :param feedback: applies fills to the cost model and the execution log
    :param state: the run state (cursor, fills, orders, equity)
    :param initial_cash: the account's cash before its first fill
    :param horizon: the CIDv2 horizon of every decision
    :param broker_clock: a simulated broker's clock, moved to each bar; None for a real one
    :param timer: seconds of a monotonic clock (a step's duration against its budget)
    """

    def __init__(
        self,
        *,
        clock: Clock,
        feed: BarFeed,
        market: StoreMarket,
        store: MarketDataStore,
        frequency: str,
        policy: Policy,
        builder: FeatureBuilder,
        model: ModelIdentity,
        engine: ExecutionEngine,
        manager: OrderManager,
        feedback: FillFeedback,
        state: RunState,
        initial_cash: float,
        horizon: str,
        halflife_bars: float,
        broker_clock: BrokerClock | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._clock = clock
        self._feed = feed
        self._market = market
        self._store = store
        self._frequency = frequency
        self._policy = policy
        self._builder = builder
        self._model = model
        self._engine = engine
        self._manager = manager
        self._feedback = feedback
        self._state = state
        self._initial_cash = initial_cash
        self._horizon = horizon
        self._halflife = halflife_bars
        self._broker_clock = broker_clock
        self._window = window_bars(policy)
        self._timer = timer
        self._monitor: Monitor | None = None
        self._watch: ModelWatch | None = None

    def attach(self, monitor: Monitor | None, watch: ModelWatch | None = None) -> None:
        """Raise alerts through ``monitor`` and follow the registry through ``watch`` (a
        model traded by registry name) from the next step on; the runtime attaches them
        once the start-up gates passed."""
        self._monitor = monitor
        self._watch = watch

    @property
    def model(self) -> ModelIdentity:
        """The model deciding now (it changes when the registry's current model does)."""
        return self._model

    @property
    def builder(self) -> FeatureBuilder:
        return self._builder

    @property
    def frequency(self) -> str:
        return self._frequency

    def run(self, stop: Callable[[], bool] = lambda: False, on_step: Callable[[StepReport], None] | None = None) -> LoopOutcome:
        """Step through the clock's bar closes from where the run state says it stopped,
        until the clock ends or ``stop()`` is true between two steps."""
        while True:
            if stop():
                return LoopOutcome(True, self._state.cursor())
            tick = self._clock.next_tick(self._state.cursor().bar_ts)
            if tick is None:
                return LoopOutcome(False, self._state.cursor())
            report = self.step(tick)
            if on_step is not None:
                on_step(report)

    def step(self, tick: Tick) -> StepReport:
        """One bar close (idempotent: repeating it after a crash sends nothing twice)."""
        started = self._timer()
        if self._watch is not None and self._watch.changed():
            self._switch_model(tick.bar_ts)
        bars = self._feed.new_bars(tick.bar_ts)
        if bars is not None and bars.num_rows:
            self._store.write_source(bars, self._feed.source, self._frequency)
        when = utc_datetime(tick.bar_ts)
        if self._broker_clock is not None:
            self._broker_clock.advance_to(when)
        broker_error: BrokerError | None = None
        polled: ReconciliationReport | None = None
        try:
            polled = self._manager.poll()
        except BrokerError as exc:
            broker_error = exc
            logger.error("LOOP_BROKER_UNREACHABLE", extra={"bar": when.isoformat(), "during": "poll", "error": str(exc)})
        last_fill = self._state.last_oms_fill_id()
        full = self._market.panel_through(tick.bar_ts)
        applied = self._feedback.apply(full)
        if self._monitor is not None:
            if broker_error is not None:  # judged now: a kill switch acts before the decision
                self._monitor.broker(broker_error)
            if polled is not None:
                self._monitor.reconciliation(polled)
            self._monitor.costs(cost_observations(self._state, last_fill) if applied else [])
        end = int(np.searchsorted(full.ts, tick.bar_ts, side="right"))
        panel = panel_rows(full, max(0, end - self._window), end)
        marks = forward_filled_close(panel)[-1]
        cash, held = self._state.cash_and_positions(self._initial_cash)
        shares = np.array([held.get(symbol, 0.0) for symbol in panel.symbols])
        value = shares * marks
        equity = cash + float(value.sum())
        records: list[PlannedOrderRecord] = []
        denials = sent = rejected = 0
        if polled is not None:
            rejected = sum(1 for _, _, to in polled.adopted if to == IntentState.REJECTED.value)
        if tick.trade and broker_error is None:
            try:
                result = self._rebalance(panel, full, end - 1, cash, shares, value, equity, when)
            except BrokerError as exc:
                broker_error = exc
                logger.error("LOOP_BROKER_UNREACHABLE", extra={"bar": when.isoformat(), "during": "send", "error": str(exc)})
            else:
                sent = len(result.intents)
                rejected += sum(1 for intent in result.intents if intent.state is IntentState.REJECTED)
                records = self._records(result, tick.bar_ts)
                denials = len(result.plan.denials)
        cursor = self._state.finish_bar(tick.bar_ts, records, denials, cash, equity, float(np.abs(value).sum()))
        if self._monitor is not None:
            if polled is not None:  # the poll reached the broker: the send decides
                self._monitor.broker(broker_error)
            self._monitor.orders(sent, rejected)
            self._monitor.risk_denials(denials)
        if self._watch is not None:
            self._watch.check_live(self._state)
        if self._monitor is not None:
            self._monitor.step_took(self._timer() - started)
            self._monitor.pump()
        logger.info(
            "LOOP_BAR_DONE",
            extra={"bar": when.isoformat(), "fills": applied, "orders": len(records), "denials": denials, "equity": round(equity, 2)},
        )
        return StepReport(tick, applied, len(records), denials, equity, cursor)

    @staticmethod
    def _records(result: RebalanceResult, bar_ts: int) -> list[PlannedOrderRecord]:
        return [
            PlannedOrderRecord(
                o.intent.client_order_id, o.intent.symbol, o.intent.side.sign, float(o.intent.qty), bar_ts,
                o.decision_price, o.expected_cost_bps,
            )
            for o in result.plan.orders
        ]  # fmt: skip

    def _switch_model(self, bar_ts: int) -> None:
        """Trade the registry's current model from this bar on (verified load, recorded, announced)."""
        assert self._watch is not None
        self._policy, self._model, announced = self._watch.switch(bar_ts, tuple(self._policy.universe))
        self._window = window_bars(self._policy)
        if self._monitor is not None:
            self._monitor.raise_alerts([announced])

    def _rebalance(
        self, panel: MarketPanel, full: MarketPanel, t_full: int, cash: float, shares: FloatArray, value: FloatArray, equity: float, when: datetime
    ) -> RebalanceResult:
        features = self._builder.build(panel)
        t = panel.n_bars - 1
        peak = max(self._state.peak_equity(self._initial_cash), equity)
        book = PortfolioState(cash, shares, value / equity, equity, peak)
        weights = np.asarray(self._policy.target_weights(MarketWindow.at(panel, features, t, self._policy.lookback), book), dtype=np.float64)
        close = forward_filled_close(panel)[t]
        tradable = panel.valid[t]
        # A symbol without a bar at t holds its position: no decision price to trade at.
        weights = np.where(tradable, weights, value / equity)
        sigma = panel_volatility_bps(full, self._halflife)[t_full]
        snapshot = MarketSnapshot(
            symbols=panel.symbols,
            close=close,
            volume=panel.volume[t],
            sigma_bps=sigma,
            spread_bps=None if panel.spread_bps is None else panel.spread_bps[t],
            bar_seconds=panel.bar_seconds,
        )
        decision = DecisionContext(self._model.name, self._model.version, when.date(), self._horizon)
        return self._engine.rebalance(weights, snapshot, decision, equity, now=when)
