"""The execution simulator: what orders would really have cost.

``ExecutionSimulator(config).simulate(orders, panel)`` fills an :class:`OrderBatch` against
a :class:`MarketPanel` with latency, spread, slippage, participation-capped partial fills,
limit prices and fees (model in DESIGN.md, formulas in :mod:`kernels.costs` and
:mod:`kernels.fills`) and returns a :class:`SimExecutionResult`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ai_trading.config import ExecutionConfig
from ai_trading.execution.parameters import (
    configured_coefs,
    execution_params,
    panel_spread_bps,
    panel_volatility_bps,
    validate_execution_config,
)
from ai_trading.types import FillBatch, FloatArray, IntArray, MarketPanel, OrderBatch
from kernels.fills import simulate_orders
from kernels.layout import S_FILLED, S_NO_DECISION_PRICE, S_NO_MARKET, S_PARTIAL, S_UNFILLED

if TYPE_CHECKING:
    from ai_trading.execution.cost_model import CostModel

log = logging.getLogger(__name__)

STATUS_NAMES: dict[int, str] = {
    S_FILLED: "filled",
    S_PARTIAL: "partial",
    S_UNFILLED: "unfilled",
    S_NO_MARKET: "no_market",
    S_NO_DECISION_PRICE: "no_decision_price",
}


@dataclass(frozen=True)
class ExecutionTotals:
    """Aggregates over one simulation; costs are positive when paid."""

    orders: int
    fills: int
    ordered_qty: float
    filled_qty: float
    fill_rate: float
    filled_notional: float
    fees: float
    realized_cost: float
    cost_bps: float
    slippage_bps_arrival: float
    slippage_bps_decision: float
    mean_participation: float

    def to_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, eq=False)
class SimExecutionResult:
    """Fill events and per-order outcomes of one simulation.

    Per-order columns are aligned with the input :class:`OrderBatch`. Slippage is signed
    so that positive means the order paid: ``side * (avg_price - ref) / ref * 1e4``.
    ``realized_cost`` is the currency cost of the filled part against the decision price
    plus fees (implementation shortfall of the executed shares, Perold 1988).
    """

    orders: OrderBatch
    fills: FillBatch
    status: IntArray
    arrival_bar: IntArray
    last_bar: IntArray
    decision_price: FloatArray
    arrival_price: FloatArray
    avg_price: FloatArray
    filled_qty: FloatArray
    fees: FloatArray

    @property
    def unfilled_qty(self) -> FloatArray:
        return self.orders.qty - self.filled_qty

    @property
    def slippage_bps_arrival(self) -> FloatArray:
        return self.orders.side * (self.avg_price - self.arrival_price) / self.arrival_price * 1e4

    @property
    def slippage_bps_decision(self) -> FloatArray:
        return self.orders.side * (self.avg_price - self.decision_price) / self.decision_price * 1e4

    @property
    def realized_cost(self) -> FloatArray:
        executed = np.where(self.filled_qty > 0, self.orders.side * (self.avg_price - self.decision_price) * self.filled_qty, 0.0)
        return executed + self.fees

    def totals(self) -> ExecutionTotals:
        filled = self.filled_qty > 0
        weights = self.filled_qty[filled]
        notional = float(np.sum(weights * self.avg_price[filled]))
        realized = float(np.sum(self.realized_cost))
        ordered = float(np.sum(self.orders.qty))

        def weighted(values: FloatArray) -> float:
            return float(np.average(values[filled], weights=weights)) if weights.size else float("nan")

        return ExecutionTotals(
            orders=len(self.orders),
            fills=len(self.fills),
            ordered_qty=ordered,
            filled_qty=float(np.sum(self.filled_qty)),
            fill_rate=float(np.sum(self.filled_qty) / ordered) if ordered > 0 else float("nan"),
            filled_notional=notional,
            fees=float(np.sum(self.fees)),
            realized_cost=realized,
            cost_bps=realized / notional * 1e4 if notional > 0 else float("nan"),
            slippage_bps_arrival=weighted(self.slippage_bps_arrival),
            slippage_bps_decision=weighted(self.slippage_bps_decision),
            mean_participation=float(np.average(self.fills.participation, weights=self.fills.qty)) if len(self.fills) else float("nan"),
        )

    def to_arrow(self) -> pa.Table:
        """Per-order outcomes as an Arrow table; ``fills.to_arrow()`` gives the events."""
        columns: dict[str, Any] = {
            "order_id": self.orders.order_id,
            "symbol": self.orders.symbol,
            "side": self.orders.side,
            "qty": self.orders.qty,
            "status": pa.array([STATUS_NAMES[int(s)] for s in self.status]),
            "decision_bar": self.orders.bar,
            "arrival_bar": self.arrival_bar,
            "decision_price": self.decision_price,
            "arrival_price": self.arrival_price,
            "avg_price": self.avg_price,
            "filled_qty": self.filled_qty,
            "unfilled_qty": self.unfilled_qty,
            "fees": self.fees,
            "slippage_bps_arrival": self.slippage_bps_arrival,
            "slippage_bps_decision": self.slippage_bps_decision,
            "realized_cost": self.realized_cost,
        }
        return pa.table(columns)


class ExecutionSimulator:
    """Simulates fills of order batches against market data.

    :param config: cost, latency, participation and fee parameters
    :param cost_model: when given, symbols it has learned are priced with its estimated
        spread and slippage coefficients instead of the configured ones
    """

    def __init__(self, config: ExecutionConfig, cost_model: CostModel | None = None) -> None:
        validate_execution_config(config)
        self.config = config
        self.cost_model = cost_model

    def symbol_coefs(self, panel: MarketPanel) -> FloatArray:
        """Per-symbol slippage coefficients for the panel's symbols."""
        coefs = configured_coefs(self.config, panel.n_symbols)
        if self.cost_model is not None:
            self.cost_model.apply_estimates(panel.symbols, coefs)
        return coefs

    def simulate(self, orders: OrderBatch, panel: MarketPanel) -> SimExecutionResult:
        """Fill ``orders`` (decided on ``panel``'s bars) and report every event and cost."""
        orders.validate(panel.n_bars, panel.n_symbols)
        n = len(orders)
        live_bars = np.minimum(orders.tif_bars, np.maximum(panel.n_bars - 1 - orders.bar, 0))
        capacity = int(live_bars.sum())
        outputs = {
            name: np.empty(n, dtype=dtype)
            for name, dtype in (
                ("status", np.int64),
                ("arrival_bar", np.int64),
                ("arrival_price", np.float64),
                ("decision_price", np.float64),
                ("filled_qty", np.float64),
                ("avg_price", np.float64),
                ("fees", np.float64),
                ("last_bar", np.int64),
            )
        }
        fill_index = np.empty(capacity, dtype=np.int64)
        fill_bar = np.empty(capacity, dtype=np.int64)
        fill_columns = {name: np.empty(capacity) for name in ("qty", "price", "fee", "mid", "participation", "sigma_bps", "spread_bps")}
        spread = panel_spread_bps(panel)
        n_fills = simulate_orders(
            panel.open, panel.high, panel.low, panel.close, panel.volume, panel.valid, spread,
            panel_volatility_bps(panel, self.config.vol_halflife_bars),
            orders.order_id, orders.symbol, orders.bar, orders.side, orders.qty,
            orders.order_type, orders.limit_price, orders.tif_bars,
            self.symbol_coefs(panel), execution_params(self.config, panel.bar_seconds), np.uint64(self.config.seed),
            outputs["status"], outputs["arrival_bar"], outputs["arrival_price"], outputs["decision_price"],
            outputs["filled_qty"], outputs["avg_price"], outputs["fees"], outputs["last_bar"],
            fill_index, fill_bar, *fill_columns.values(),
        )  # fmt: skip
        index = fill_index[:n_fills]
        fills = FillBatch(
            order_id=orders.order_id[index],
            symbol=orders.symbol[index],
            bar=fill_bar[:n_fills],
            ts=panel.ts[fill_bar[:n_fills]],
            side=orders.side[index],
            **{name: column[:n_fills] for name, column in fill_columns.items()},
        )
        log.debug("SIM_ORDERS_FILLED", extra={"orders": n, "fills": n_fills})
        return SimExecutionResult(orders=orders, fills=fills, **outputs)
