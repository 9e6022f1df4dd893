"""Live cost feedback: the broker's fills, as the OMS recorded them, into the EWMA cost model.

Each fill becomes one row of the :class:`~ai_trading.types.FillBatch` shape simulated fills
have, measured against the bars of the market-data store:

- ``mid``: the order's arrival price for its first fill (the open of the first bar after
  the decision bar: the first price the market offered once the order could arrive), the
  fill bar's mean price ``(open + close) / 2`` for later fills, as the simulator measures;
- ``participation``: shares over the fill bar's volume;
- ``sigma_bps``: the EWMA volatility known before the fill bar, as the simulator prices;
- ``spread_bps``: the bar's quoted spread where the data has one (else NaN).

Fills already applied (by broker fill id, durable in the run state) are skipped, so a
restart never counts a fill twice; the cost model and the applied ids change together
(:meth:`~ai_trading.runtime.run_state.RunState.commit_fills`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.parameters import panel_volatility_bps
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.schema import fills as fills_table
from ai_trading.oms.schema import intents as intents_table
from ai_trading.runtime.run_state import AppliedFill, RunState
from ai_trading.types import FillBatch, MarketPanel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _OmsFill:
    oms_fill_id: int
    fill_id: str
    client_order_id: str
    symbol: str
    side: int
    qty: float
    price: float
    fee: float
    ts_ns: int


def _oms_fills_after(store: IntentStore, last_id: int) -> list[_OmsFill]:
    query = (
        select(
            fills_table.c.id, fills_table.c.broker_fill_id, intents_table.c.client_order_id, intents_table.c.symbol,
            intents_table.c.side, fills_table.c.qty, fills_table.c.price, fills_table.c.fee, fills_table.c.ts,
        )
        .join(intents_table, intents_table.c.id == fills_table.c.intent_id)
        .where(fills_table.c.id > last_id)
        .order_by(fills_table.c.ts, fills_table.c.id)
    )  # fmt: skip
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        _OmsFill(int(r[0]), str(r[1]), str(r[2]), str(r[3]), 1 if r[4] == "buy" else -1, float(r[5]), float(r[6]), float(r[7]),
                 int(np.datetime64(r[8].replace(tzinfo=None), "ns").astype(np.int64)))
        for r in rows
    ]  # fmt: skip


def _bar_index(panel: MarketPanel, ts_ns: int) -> int:
    """The bar holding ``ts_ns`` (the last bar starting at or before it), -1 if none."""
    return int(np.searchsorted(panel.ts, ts_ns, side="right")) - 1


class FillFeedback:
    """Applies new OMS fills to the cost model and the run's execution log.

    :param store: the OMS intent store the fills are read from
    :param state: the run state that records applied fills and the cost model generation
    :param cost_model: the model that learns (saved after every update)
    :param halflife_bars: the simulator's volatility half-life (``[execution]``)
    """

    def __init__(self, store: IntentStore, state: RunState, cost_model: CostModel, halflife_bars: float) -> None:
        self._store = store
        self._state = state
        self._cost_model = cost_model
        self._halflife = halflife_bars

    def apply(self, panel: MarketPanel) -> int:
        """Fold every fill the OMS recorded since the last call into the cost model and the
        execution log; ``panel`` holds the bars the fills happened in. Returns the count."""
        candidates = _oms_fills_after(self._store, self._state.last_oms_fill_id())
        done = self._state.applied_ids([f.fill_id for f in candidates])
        new = [f for f in candidates if f.fill_id not in done]
        if not new:
            return 0
        orders = self._state.orders_of(sorted({f.client_order_id for f in new}))
        sigma = panel_volatility_bps(panel, self._halflife)
        arrivals: dict[str, float] = {}
        applied: list[AppliedFill] = []
        for fill in new:
            applied.append(self._measured(fill, panel, sigma, orders, arrivals))
        self._learn(applied, panel.symbols)
        self._state.commit_fills(applied, arrivals, self._cost_model)
        return len(applied)

    def _measured(
        self, fill: _OmsFill, panel: MarketPanel, sigma: np.ndarray, orders: dict[str, tuple[int, float | None]], arrivals: dict[str, float]
    ) -> AppliedFill:
        nan = float("nan")
        s = panel.symbols.index(fill.symbol) if fill.symbol in panel.symbols else -1
        b = _bar_index(panel, fill.ts_ns)
        mid = participation = sigma_bps = spread = nan
        if s >= 0 and b >= 1 and panel.valid[b, s]:
            decision_ts, arrival = orders.get(fill.client_order_id, (None, None))
            if arrival is None and fill.client_order_id not in arrivals and decision_ts is not None:
                d = _bar_index(panel, decision_ts)
                if 0 <= d < b and panel.valid[d + 1, s]:
                    arrivals[fill.client_order_id] = float(panel.open[d + 1, s])
                    mid = arrivals[fill.client_order_id]
            if np.isnan(mid):
                mid = 0.5 * float(panel.open[b, s] + panel.close[b, s])
            participation = fill.qty / float(panel.volume[b, s]) if panel.volume[b, s] > 0 else nan
            sigma_bps = float(sigma[b - 1, s])
            spread = nan if panel.spread_bps is None else float(panel.spread_bps[b, s])
        return AppliedFill(
            fill.fill_id, fill.oms_fill_id, fill.client_order_id, fill.symbol, fill.side, fill.qty, fill.price, fill.fee,
            fill.ts_ns, mid, participation, sigma_bps, spread,
        )  # fmt: skip

    def _learn(self, applied: list[AppliedFill], symbols: tuple[str, ...]) -> None:
        """Update the cost model with the fills that could be measured against the bars."""
        usable = [f for f in applied if np.isfinite(f.mid) and np.isfinite(f.participation) and np.isfinite(f.sigma_bps)]
        if len(usable) < len(applied):
            logger.warning("RUN_FILLS_NOT_MEASURABLE", extra={"fills": len(applied) - len(usable)})
        if not usable:
            return
        batch = FillBatch(
            order_id=np.arange(len(usable)),
            symbol=[symbols.index(f.symbol) for f in usable],
            bar=np.zeros(len(usable), dtype=np.int64),
            ts=[f.ts_ns for f in usable],
            side=[f.side for f in usable],
            qty=[f.qty for f in usable],
            price=[f.price for f in usable],
            fee=[f.fee for f in usable],
            mid=[f.mid for f in usable],
            participation=[f.participation for f in usable],
            sigma_bps=[f.sigma_bps for f in usable],
            spread_bps=[f.spread_bps for f in usable],
        )
        self._cost_model.update(batch, symbols)
