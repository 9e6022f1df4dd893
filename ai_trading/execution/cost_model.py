"""Per-symbol EWMA cost model, learned from fills and used wherever costs are predicted.

The model keeps, per symbol, exponentially weighted moments of the observed spread and of
the volatility-normalised slippage ``y = (cost_bps - spread_bps / 2) / sigma_bps`` against
``x = participation**beta``. From them it estimates the slippage line ``y = a + eta * x``
(intercept: volatility-scaled slippage; slope: impact coefficient), which replaces the
configured parameters once a symbol has ``min_observations`` effective fills. Simulated
and live fills arrive in the same :class:`FillBatch` shape. The state is persisted as an
Arrow IPC file, written atomically.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from ai_trading.config import CostModelConfig, ExecutionConfig
from ai_trading.errors import ConfigError, DataValidationError, UnknownSymbolError
from ai_trading.execution.parameters import configured_coefs, execution_params
from ai_trading.types import FillBatch, FloatArray
from kernels.cost_model import estimate_coefs, ewma_update, fill_observations, predict_cost_bps, zeros_cost_rows
from kernels.layout import (
    M_SPREAD,
    M_SPREAD_WEIGHT,
    M_WEIGHT,
    M_X,
    M_XX,
    M_XY,
    M_Y,
    N_COST_STATE,
)

log = logging.getLogger(__name__)

STATE_COLUMNS: dict[str, int] = {
    "weight": M_WEIGHT,
    "sum_x": M_X,
    "sum_y": M_Y,
    "sum_xx": M_XX,
    "sum_xy": M_XY,
    "spread_weight": M_SPREAD_WEIGHT,
    "sum_spread": M_SPREAD,
}
_MIN_X_VARIANCE = 1e-6


class CostModel:
    """Per-symbol EWMA estimates of spread, slippage and impact.

    :param config: half-life, minimum observations and where the state is persisted
    :param execution: the simulator's parameters: the prior for symbols not yet learned,
        and the participation exponent ``beta`` the impact line is fitted in
    """

    def __init__(self, config: CostModelConfig, execution: ExecutionConfig) -> None:
        if not config.halflife_fills > 0:
            raise ConfigError(f"cost_model.halflife_fills must be > 0, got {config.halflife_fills!r}")
        self.config = config
        self.execution = execution
        self.decay = 0.5 ** (1.0 / config.halflife_fills)
        self._index: dict[str, int] = {}
        self._state = zeros_cost_rows(0)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._index)

    def _rows(self, symbols: Sequence[str]) -> np.ndarray:
        """Row of each symbol, adding rows for symbols seen for the first time."""
        new = [s for s in dict.fromkeys(symbols) if s not in self._index]
        if new:
            for name in new:
                self._index[name] = len(self._index)
            grown = zeros_cost_rows(len(self._index))
            grown[: len(self._state)] = self._state
            self._state = grown
        return np.array([self._index[s] for s in symbols], dtype=np.int64)

    def update(self, fills: FillBatch, symbols: Sequence[str]) -> None:
        """Learn from fill events in time order; ``fills.symbol`` indexes ``symbols``."""
        if len(fills) == 0:
            return
        if fills.symbol.min() < 0 or fills.symbol.max() >= len(symbols):
            raise UnknownSymbolError(f"fill symbol index outside the {len(symbols)} symbols given")
        bad = ~(np.isfinite(fills.price) & (fills.price > 0) & np.isfinite(fills.mid) & (fills.mid > 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataValidationError("fills", row, "price and mid must be finite and > 0")
        rows = self._rows(symbols)[fills.symbol]
        x = np.empty(len(fills))
        y = np.empty(len(fills))
        fill_observations(fills.side, fills.price, fills.mid, fills.participation, fills.sigma_bps, fills.spread_bps, self.execution.impact_beta, x, y)
        ewma_update(self._state, rows, x, y, fills.spread_bps, self.decay)
        log.debug("COST_MODEL_UPDATED", extra={"fills": len(fills), "symbols": len(self._index)})

    def state_rows(self, symbols: Sequence[str]) -> FloatArray:
        """A contiguous copy of the EWMA moments of ``symbols``, ``[S, N_COST_STATE]``, for
        a fused kernel."""
        rows = self._rows(symbols)
        return np.ascontiguousarray(self._state[rows, :N_COST_STATE])

    def store_rows(self, symbols: Sequence[str], rows: FloatArray) -> None:
        """Write back moments that a fused kernel updated (see :meth:`state_rows`)."""
        index = self._rows(symbols)
        self._state[index, :N_COST_STATE] = rows

    def effective_observations(self, symbol: str) -> float:
        if symbol not in self._index:
            return 0.0
        return float(self._state[self._index[symbol], M_WEIGHT])

    def apply_estimates(self, symbols: Sequence[str], coefs: FloatArray) -> None:
        """Replace columns of ``coefs`` (one per symbol) with learned estimates where the
        symbol has enough observations; others keep the values already in ``coefs``."""
        known = [i for i, s in enumerate(symbols) if s in self._index]
        if not known:
            return
        rows = np.array([self._index[symbols[i]] for i in known], dtype=np.int64)
        learned = np.ascontiguousarray(coefs[:, known])
        estimate_coefs(self._state[rows], self.config.min_observations, _MIN_X_VARIANCE, learned)
        coefs[:, known] = learned

    def coefficients(self, symbols: Sequence[str]) -> FloatArray:
        """Pricing coefficients ``[N_SYMBOL_COEFS, len(symbols)]`` as the simulator uses them."""
        coefs = configured_coefs(self.execution, len(symbols))
        self.apply_estimates(symbols, coefs)
        return coefs

    def predict(
        self,
        symbols: Sequence[str],
        price: FloatArray,
        qty: FloatArray,
        bar_volume: FloatArray,
        sigma_bps: FloatArray,
        spread_bps: FloatArray | None = None,
        bar_seconds: float = 86400.0,
    ) -> FloatArray:
        """Expected cost in bps of price of each order (one row per element of ``symbols``)
        of ``qty`` shares in a bar trading ``bar_volume`` with volatility ``sigma_bps``."""
        n = len(symbols)
        arrays = [np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)) for a in (price, qty, bar_volume, sigma_bps)]
        spreads = np.full(n, np.nan) if spread_bps is None else np.broadcast_to(np.asarray(spread_bps, dtype=np.float64), (n,))
        if not (np.all(arrays[0] > 0) and np.all(arrays[1] >= 0) and np.all(arrays[2] > 0) and np.all(arrays[3] >= 0)):
            raise DataValidationError("predict", None, "price and bar_volume must be > 0, qty and sigma_bps >= 0")
        unique = list(dict.fromkeys(symbols))
        position = {s: i for i, s in enumerate(unique)}
        out = np.empty(n)
        predict_cost_bps(
            np.array([position[s] for s in symbols], dtype=np.int64),
            *[np.ascontiguousarray(a) for a in arrays],
            np.ascontiguousarray(spreads),
            self.coefficients(unique),
            execution_params(self.execution, bar_seconds),
            out,
        )
        return out

    def save(self, path: Path | str | None = None) -> Path:
        """Write the state atomically (temporary file, fsync, rename) as Arrow IPC."""
        target = Path(path) if path is not None else self.config.state_path
        if target is None:
            raise ConfigError("no path given and cost_model.state_path is not configured")
        target.parent.mkdir(parents=True, exist_ok=True)
        columns = {"symbol": pa.array(list(self._index), pa.string())}
        columns.update({name: self._state[:, j] for name, j in STATE_COLUMNS.items()})
        table = pa.table(columns).replace_schema_metadata(
            {"halflife_fills": str(self.config.halflife_fills), "impact_beta": str(self.execution.impact_beta)}
        )
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as handle:
            with pa.ipc.new_file(handle, table.schema) as writer:
                writer.write_table(table)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
        log.info("COST_MODEL_SAVED", extra={"path": str(target), "symbols": len(self._index)})
        return target

    @classmethod
    def load(cls, config: CostModelConfig, execution: ExecutionConfig, path: Path | str | None = None) -> CostModel:
        """Reload a saved state; refuses one fitted with a different ``impact_beta``."""
        source = Path(path) if path is not None else config.state_path
        if source is None:
            raise ConfigError("no path given and cost_model.state_path is not configured")
        try:
            table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataValidationError(str(source), None, "not a readable cost-model state file", str(exc)) from exc
        beta = float((table.schema.metadata or {}).get(b"impact_beta", b"nan"))
        if beta != execution.impact_beta:
            raise ConfigError(
                f"{source} was fitted with impact_beta={beta}, the configuration has {execution.impact_beta}: "
                "refit the cost model or use the matching configuration"
            )
        model = cls(config, execution)
        model._index = {str(s): i for i, s in enumerate(table.column("symbol").to_pylist())}
        model._state = zeros_cost_rows(len(model._index))
        for name, j in STATE_COLUMNS.items():
            model._state[:, j] = table.column(name).to_numpy()
        return model
