"""Translate an :class:`ExecutionConfig` (and optionally a cost model) into kernel inputs."""

from __future__ import annotations

import weakref

import numpy as np

from ai_trading.config import ExecutionConfig
from ai_trading.errors import ConfigError
from ai_trading.types import FloatArray, MarketPanel
from kernels.costs import ewma_volatility_bps
from kernels.layout import (
    C_IMPACT_ETA,
    C_SLIP_BASE_BPS,
    C_SLIP_VOL_COEF,
    C_SPREAD_BPS,
    N_EXEC_PARAMS,
    N_SYMBOL_COEFS,
    P_FEE_BPS,
    P_FEE_MIN,
    P_FEE_PER_SHARE,
    P_IMPACT_BETA,
    P_LATENCY_MEDIAN_BARS,
    P_LATENCY_SIGMA,
    P_MAX_PARTICIPATION,
    P_NOISE_BPS,
    P_SPREAD_FLOOR_BPS,
    P_SPREAD_VOL_MULT,
    P_TICK_SIZE,
    P_USE_DATA_SPREAD,
)

_NON_NEGATIVE = (
    "latency_median_ms",
    "latency_sigma",
    "spread_floor_bps",
    "spread_vol_mult",
    "tick_size",
    "slippage_base_bps",
    "slippage_vol_coef",
    "impact_eta",
    "impact_beta",
    "slippage_noise_bps",
    "fee_bps",
    "fee_per_share",
    "fee_min",
)


def validate_execution_config(config: ExecutionConfig) -> None:
    """Raise :class:`ConfigError` for any parameter outside its meaningful range."""
    for name in _NON_NEGATIVE:
        value = getattr(config, name)
        if not np.isfinite(value) or value < 0:
            raise ConfigError(f"execution.{name} must be a finite number >= 0, got {value!r}")
    if not 0 < config.max_participation <= 1:
        raise ConfigError(f"execution.max_participation must be in (0, 1], got {config.max_participation!r}")
    if config.tif_bars < 1:
        raise ConfigError(f"execution.tif_bars must be >= 1, got {config.tif_bars!r}")
    if not config.vol_halflife_bars > 0:
        raise ConfigError(f"execution.vol_halflife_bars must be > 0, got {config.vol_halflife_bars!r}")
    if not 0 <= config.seed < 2**64:  # the kernels' draws are keyed by a uint64 seed
        raise ConfigError(f"execution.seed must be in [0, 2**64), got {config.seed!r}")


def execution_params(config: ExecutionConfig, bar_seconds: float) -> FloatArray:
    """The kernels' parameter vector (layout in :mod:`kernels.layout`)."""
    params = np.zeros(N_EXEC_PARAMS)
    params[P_LATENCY_MEDIAN_BARS] = config.latency_median_ms / 1000.0 / bar_seconds
    params[P_LATENCY_SIGMA] = config.latency_sigma
    params[P_SPREAD_FLOOR_BPS] = config.spread_floor_bps
    params[P_SPREAD_VOL_MULT] = config.spread_vol_mult
    params[P_TICK_SIZE] = config.tick_size
    params[P_NOISE_BPS] = config.slippage_noise_bps
    params[P_MAX_PARTICIPATION] = config.max_participation
    params[P_IMPACT_BETA] = config.impact_beta
    params[P_FEE_BPS] = config.fee_bps
    params[P_FEE_PER_SHARE] = config.fee_per_share
    params[P_FEE_MIN] = config.fee_min
    params[P_USE_DATA_SPREAD] = 1.0 if config.use_data_spread else 0.0
    return params


def configured_coefs(config: ExecutionConfig, n_symbols: int) -> FloatArray:
    """Per-symbol slippage coefficients, all equal to the configured ones."""
    coefs = np.empty((N_SYMBOL_COEFS, n_symbols))
    coefs[C_SLIP_BASE_BPS] = config.slippage_base_bps
    coefs[C_SLIP_VOL_COEF] = config.slippage_vol_coef
    coefs[C_IMPACT_ETA] = config.impact_eta
    coefs[C_SPREAD_BPS] = np.nan
    return coefs


_VOLATILITY_CACHE: weakref.WeakKeyDictionary[MarketPanel, dict[float, FloatArray]] = weakref.WeakKeyDictionary()


def panel_volatility_bps(panel: MarketPanel, halflife_bars: float) -> FloatArray:
    """Causal EWMA per-bar volatility ``[T, S]`` in bps, computed once per panel and half-life."""
    by_halflife = _VOLATILITY_CACHE.setdefault(panel, {})
    sigma = by_halflife.get(halflife_bars)
    if sigma is None:
        sigma = np.empty_like(panel.close)
        ewma_volatility_bps(panel.close, panel.valid, float(halflife_bars), sigma)
        sigma.setflags(write=False)
        by_halflife[halflife_bars] = sigma
    return sigma


def panel_spread_bps(panel: MarketPanel) -> FloatArray:
    """The panel's quoted spreads ``[T, S]``, or one row of NaN when it has none: kernels
    then read row 0 (unknown spread) and their arrays keep real extents to vectorise over."""
    return panel.spread_bps if panel.spread_bps is not None else np.full((1, panel.n_symbols), np.nan)
