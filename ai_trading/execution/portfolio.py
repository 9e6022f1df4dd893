"""Target-weight portfolio simulation over a whole panel, on the fused kernel.

Evaluation and the RL environment express decisions as target weights; this turns them
into orders, fills them with every cost the simulator knows, and returns the equity curve
and costs they produce. No proxy curves: equity moves only through simulated fills and
the marks of the positions they build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ai_trading.config import ExecutionConfig
from ai_trading.errors import ConfigError, OrderValidationError
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.parameters import (
    configured_coefs,
    execution_params,
    panel_spread_bps,
    panel_volatility_bps,
    validate_execution_config,
)
from ai_trading.types import FloatArray, MarketPanel
from kernels.layout import N_COST_STATE
from kernels.portfolio import (
    ARRIVAL_BLOCK_ITEMS,
    B_COST,
    B_EQUITY,
    B_FEES,
    B_GROSS_EXPOSURE,
    B_NET_EXPOSURE,
    B_TRADED,
    N_ARRIVAL,
    N_BAR_STATS,
    N_DRAW,
    simulate_portfolio,
)


@dataclass(frozen=True, eq=False)
class PortfolioResult:
    """Per-bar outcome of a target-weight simulation (bar 0 is the flat start).

    ``fill_qty`` holds signed shares filled in each bar, ``fill_price`` their price (NaN
    where nothing filled); both are None when the run did not record fills. ``cost`` is
    what execution cost against the reference mid plus fees, so
    ``gross_equity = equity + cumsum(cost)`` is the curve without costs.
    """

    equity: FloatArray
    cost: FloatArray
    fees: FloatArray
    traded_notional: FloatArray
    gross_exposure: FloatArray
    net_exposure: FloatArray
    fill_qty: FloatArray | None
    fill_price: FloatArray | None

    @property
    def gross_equity(self) -> FloatArray:
        return self.equity + np.cumsum(self.cost)

    @property
    def net_returns(self) -> FloatArray:
        return np.diff(self.equity) / self.equity[:-1]

    @property
    def gross_returns(self) -> FloatArray:
        gross = self.gross_equity
        return np.diff(gross) / gross[:-1]


def check_latency_fits_bar(config: ExecutionConfig, bar_seconds: float) -> None:
    """The fused path executes each decision within the next bar; refuse latencies that
    would not fit (use :class:`ExecutionSimulator` with order batches for those)."""
    if config.latency_median_ms / 1000.0 >= bar_seconds:
        raise ConfigError(
            f"execution.latency_median_ms={config.latency_median_ms} is not shorter than the "
            f"{bar_seconds:g} s bar: target-weight simulation needs sub-bar latency"
        )


class PortfolioSimulator:
    """Simulates a portfolio that rebalances to target weights at every bar's close.

    :param config: execution parameters
    :param cost_model: prices learned symbols with their estimates and, with ``learn``,
        keeps learning from the simulated fills
    """

    def __init__(self, config: ExecutionConfig, cost_model: CostModel | None = None) -> None:
        validate_execution_config(config)
        self.config = config
        self.cost_model = cost_model

    def run(
        self, targets: FloatArray, panel: MarketPanel, initial_cash: float = 1_000_000.0, learn: bool = False, record_fills: bool = True
    ) -> PortfolioResult:
        """Simulate ``targets[T, S]`` (weights of equity; a row of NaN holds positions).

        ``record_fills=False`` keeps only the per-bar results: callers that need equity and
        costs (evaluation, replays) save the two ``[T, S]`` fill arrays, most of the memory
        a long run writes."""
        targets = np.ascontiguousarray(targets, dtype=np.float64)
        if targets.shape != (panel.n_bars, panel.n_symbols):
            raise OrderValidationError(f"targets have shape {targets.shape}, the panel is {(panel.n_bars, panel.n_symbols)}")
        if not (np.isfinite(initial_cash) and initial_cash > 0):
            raise OrderValidationError(f"initial_cash must be finite and > 0, got {initial_cash!r}")
        check_latency_fits_bar(self.config, panel.bar_seconds)
        coefs = configured_coefs(self.config, panel.n_symbols)
        learn = learn and self.cost_model is not None
        n_symbols = panel.n_symbols
        # Moment-major: the kernel folds each bar's fills with one contiguous row per moment.
        cost_state = np.zeros((N_COST_STATE, n_symbols))
        decay = 1.0
        if self.cost_model is not None:
            self.cost_model.apply_estimates(panel.symbols, coefs)
            if learn:
                cost_state, decay = np.ascontiguousarray(self.cost_model.state_rows(panel.symbols).T), self.cost_model.decay
        fill_rows = panel.n_bars if record_fills else 1  # one scratch row, rewritten each bar
        fill_qty = np.empty((fill_rows, n_symbols))
        fill_price = np.empty((fill_rows, n_symbols))
        stats = np.empty((N_BAR_STATS, panel.n_bars))
        block = max(1, ARRIVAL_BLOCK_ITEMS // n_symbols)
        invalid_row = simulate_portfolio(
            targets, float(initial_cash), panel.open, panel.close, panel.volume, panel.valid,
            panel_spread_bps(panel),
            panel_volatility_bps(panel, self.config.vol_halflife_bars), coefs,
            execution_params(self.config, panel.bar_seconds), np.uint64(self.config.seed),
            learn, cost_state, decay, np.empty(n_symbols, dtype=np.uint64), np.empty((N_ARRIVAL, block, n_symbols)),
            np.empty((N_DRAW, block, n_symbols), dtype=np.float32),
            np.empty(n_symbols), np.empty(n_symbols),
            fill_qty, fill_price, stats,
        )  # fmt: skip
        if invalid_row >= 0:
            raise OrderValidationError(f"targets row {invalid_row}: weights must be finite, or the whole row NaN to hold")
        if self.cost_model is not None and learn:
            self.cost_model.store_rows(panel.symbols, cost_state.T)
        return PortfolioResult(
            equity=stats[B_EQUITY],
            cost=stats[B_COST],
            fees=stats[B_FEES],
            traded_notional=stats[B_TRADED],
            gross_exposure=stats[B_GROSS_EXPOSURE],
            net_exposure=stats[B_NET_EXPOSURE],
            fill_qty=fill_qty if record_fills else None,
            fill_price=fill_price if record_fills else None,
        )
