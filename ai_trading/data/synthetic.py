"""The built-in data set: deterministic, seeded bars with the stylised facts of real ones.

Per symbol, log returns follow a GARCH(1,1) (Bollerslev 1986) with unit-variance
Student-t innovations, so returns are fat-tailed and volatility clusters. Symbols come
in three liquidity tiers whose price levels, volumes, volatilities and spreads differ by
orders of magnitude. Volume and spread rise with conditional volatility; spreads are
wider for illiquid names. One-minute sessions have a U-shaped volume and volatility
profile (heavy at the open and close) and wider spreads after the open; illiquid names
have minutes without trades, which are missing bars. Some daily names list later than
the start (missing bars before their first day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ai_trading.data.frequency import parse_frequency
from ai_trading.data.panel import panel_to_arrow
from ai_trading.data.validation import RowLocator, validate_bars
from ai_trading.errors import ConfigError
from ai_trading.types import NS_PER_SECOND, FloatArray, IntArray, MarketPanel

DAILY = "daily"
MINUTE = "1min"
FREQUENCIES: tuple[str, ...] = (DAILY, MINUTE)

START_DATE = np.datetime64("2015-01-02", "D")
SESSION_OPEN_UTC_S = (14 * 60 + 30) * 60  # 09:30 New York (EST; daylight saving ignored)
MINUTES_PER_SESSION = 390
TRADING_DAYS_PER_YEAR = 252

GARCH_ALPHA = 0.08  # weight of the last squared shock
GARCH_BETA = 0.90  # persistence of the variance; alpha + beta < 1 keeps it stationary
STUDENT_T_DOF = 5.0  # innovations' degrees of freedom: fat tails, finite fourth moment
OVERNIGHT_GAP_SHARE = 0.3  # std of the opening gap as a share of the bar's volatility
RANGE_SHARE = 0.6  # std of the high/low excursions beyond open/close, share of volatility
VOLUME_NOISE = 0.4  # lognormal std of volume around its expectation
SPREAD_NOISE = 0.2  # lognormal std of spread around its expectation
LATE_LISTING_EVERY = 8  # every 8th daily symbol lists between 10% and 40% into the sample
TICKS_PER_DOLLAR = 100  # price increment 0.01 at or above $1 (SEC Rule 612)
SUB_DOLLAR_TICKS_PER_DOLLAR = 10_000  # price increment 0.0001 below $1
SPREAD_DECIMALS = 2  # spreads are quoted to 0.01 bps


@dataclass(frozen=True)
class LiquidityTier:
    """Ranges the tier's symbols draw their levels from (log-uniform).

    :param price: initial price range, currency
    :param daily_volume: expected shares traded per day
    :param annual_vol: annualised volatility of returns
    :param spread_bps: spread in bps at average volatility
    """

    name: str
    price: tuple[float, float]
    daily_volume: tuple[float, float]
    annual_vol: tuple[float, float]
    spread_bps: tuple[float, float]


TIERS: tuple[LiquidityTier, ...] = (
    LiquidityTier("large", price=(50.0, 500.0), daily_volume=(5e6, 5e7), annual_vol=(0.15, 0.30), spread_bps=(1.0, 3.0)),
    LiquidityTier("mid", price=(10.0, 80.0), daily_volume=(2e5, 2e6), annual_vol=(0.25, 0.45), spread_bps=(4.0, 15.0)),
    LiquidityTier("small", price=(1.0, 15.0), daily_volume=(1e3, 3e4), annual_vol=(0.40, 0.65), spread_bps=(25.0, 90.0)),
)


def symbol_names(n_symbols: int, frequency: str) -> tuple[str, ...]:
    """Names of the generated symbols; 1-minute names differ so both sets can share a store."""
    prefix = "SYN" if frequency == DAILY else "SYNM"
    return tuple(f"{prefix}{i:02d}" for i in range(n_symbols))


def _timestamps(n_bars: int, frequency: str) -> IntArray:
    if frequency == DAILY:
        days = np.busday_offset(START_DATE, np.arange(n_bars), roll="forward")
        return days.astype("datetime64[ns]").astype(np.int64)
    sessions = -(-n_bars // MINUTES_PER_SESSION)
    days = np.busday_offset(START_DATE, np.arange(sessions), roll="forward").astype("datetime64[ns]").astype(np.int64)
    minutes = SESSION_OPEN_UTC_S + 60 * np.arange(MINUTES_PER_SESSION)
    return (days[:, None] + minutes[None, :] * NS_PER_SECOND).ravel()[:n_bars]


def _intraday(n_bars: int, frequency: str) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
    """Per-bar multipliers of variance, volume and spread (mean 1) and session starts."""
    if frequency == DAILY:
        ones = np.ones(n_bars)
        return ones, ones, ones, np.ones(n_bars, dtype=np.bool_)
    minute = np.arange(n_bars) % MINUTES_PER_SESSION
    x = minute / (MINUTES_PER_SESSION - 1)
    variance = 0.6 + 1.6 * (2 * x - 1) ** 2
    volume = 0.5 + 2.0 * (2 * x - 1) ** 2 + 2.0 * np.exp(-(MINUTES_PER_SESSION - 1 - minute) / 5.0)
    spread = 1.0 + 1.5 * np.exp(-minute / 15.0)
    return variance / variance.mean(), volume / volume.mean(), spread / spread.mean(), minute == 0


def _to_ticks(price: FloatArray) -> FloatArray:
    """Round to the tick grid (never below one tick). Rounding to ``k / ticks_per_dollar``
    (an exact division) is monotone, so ``high >= max(open, close)`` and
    ``low <= min(open, close)`` survive it."""
    per_dollar = np.where(price >= 1.0, TICKS_PER_DOLLAR, SUB_DOLLAR_TICKS_PER_DOLLAR)
    return np.maximum(np.round(price * per_dollar), 1.0) / per_dollar


def _log_uniform(rng: np.random.Generator, bounds: NDArray[np.float64]) -> FloatArray:
    low, high = np.log(bounds[:, 0]), np.log(bounds[:, 1])
    return np.exp(low + (high - low) * rng.random(bounds.shape[0]))


def _garch_shocks(z: FloatArray, bar_variance: FloatArray, pattern: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Shocks ``eps[t] = sigma[t] * z[t]`` with ``sigma[t]**2 = pattern[t] * h[t]``.

    ``h[t+1] = omega + alpha * eps[t]**2 / pattern[t] + beta * h[t]``, started at the
    unconditional variance ``bar_variance`` (so ``omega = bar_variance * (1 - alpha - beta)``).
    """
    omega = bar_variance * (1.0 - GARCH_ALPHA - GARCH_BETA)
    h = bar_variance.copy()
    sigma = np.empty_like(z)
    for t in range(z.shape[0]):
        sigma[t] = np.sqrt(h * pattern[t])
        h = omega + GARCH_ALPHA * (sigma[t] * z[t]) ** 2 / pattern[t] + GARCH_BETA * h
    return sigma * z, sigma


def generate_panel(n_symbols: int, n_bars: int, frequency: str = DAILY, seed: int = 0) -> MarketPanel:
    """Generate ``n_bars`` bars of ``n_symbols`` symbols; the same arguments give the same panel.

    :param n_symbols: symbols; tiers alternate large, mid, small
    :param n_bars: bars per symbol (business days, or minutes of 390-minute sessions)
    :param frequency: ``"daily"`` or ``"1min"``
    :param seed: seed of the generator
    """
    if frequency not in FREQUENCIES:
        raise ConfigError(f"frequency must be one of {', '.join(FREQUENCIES)}, not {frequency!r}")
    if n_symbols < 1 or n_bars < 1:
        raise ConfigError(f"need at least one symbol and one bar, got {n_symbols} symbols, {n_bars} bars")
    if seed < 0:
        raise ConfigError(f"the generator's seed must be >= 0, got {seed}")
    rng = np.random.default_rng(seed)
    tiers = [TIERS[i % len(TIERS)] for i in range(n_symbols)]
    price0 = _log_uniform(rng, np.array([t.price for t in tiers]))
    daily_volume = _log_uniform(rng, np.array([t.daily_volume for t in tiers]))
    annual_vol = _log_uniform(rng, np.array([t.annual_vol for t in tiers]))
    base_spread = _log_uniform(rng, np.array([t.spread_bps for t in tiers]))

    bars_per_day = 1 if frequency == DAILY else MINUTES_PER_SESSION
    bar_variance = annual_vol**2 / TRADING_DAYS_PER_YEAR / bars_per_day
    var_pattern, volume_pattern, spread_pattern, session_start = _intraday(n_bars, frequency)

    shape = (n_bars, n_symbols)
    t_dof = STUDENT_T_DOF
    z = rng.standard_t(t_dof, size=shape) * np.sqrt((t_dof - 2.0) / t_dof)
    eps, sigma = _garch_shocks(z, bar_variance, var_pattern)
    gap_std = OVERNIGHT_GAP_SHARE * np.sqrt(bar_variance * bars_per_day)
    gap = np.where(session_start[:, None], gap_std * rng.standard_normal(shape), 0.0)
    gap[0] = 0.0

    log_open = np.log(price0) + np.cumsum(gap + eps, axis=0) - eps
    log_close = log_open + eps
    excursion = RANGE_SHARE * sigma * np.abs(rng.standard_normal((2, *shape)))
    open_, close = np.exp(log_open), np.exp(log_close)
    high = _to_ticks(np.maximum(open_, close) * np.exp(excursion[0]))
    low = _to_ticks(np.minimum(open_, close) * np.exp(-excursion[1]))
    open_, close = _to_ticks(open_), _to_ticks(close)

    vol_ratio = sigma / np.sqrt(bar_variance * var_pattern[:, None])
    expected_volume = daily_volume / bars_per_day * volume_pattern[:, None] * vol_ratio
    volume = rng.poisson(expected_volume * np.exp(VOLUME_NOISE * rng.standard_normal(shape))).astype(np.float64)
    spread = base_spread * spread_pattern[:, None] * vol_ratio * np.exp(SPREAD_NOISE * rng.standard_normal(shape))
    spread = np.round(spread, SPREAD_DECIMALS)

    valid = volume > 0 if frequency == MINUTE else np.ones(shape, dtype=np.bool_)
    if frequency == DAILY:
        listing = (n_bars * rng.uniform(0.1, 0.4, size=n_symbols)).astype(np.int64)
        late = np.arange(n_symbols) % LATE_LISTING_EVERY == LATE_LISTING_EVERY - 1
        valid &= np.arange(n_bars)[:, None] >= np.where(late, listing, 0)[None, :]
    columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "spread_bps": spread}
    for values in columns.values():
        values[~valid] = np.nan
    return MarketPanel(
        ts=_timestamps(n_bars, frequency),
        symbols=symbol_names(n_symbols, frequency),
        frequency=parse_frequency(frequency),
        valid=valid,
        **columns,
    )


def generate_bars(n_symbols: int, n_bars: int, frequency: str = DAILY, seed: int = 0) -> pa.Table:
    """The generated panel as validated bar rows, ready for the store."""
    table = panel_to_arrow(generate_panel(n_symbols, n_bars, frequency, seed))
    validate_bars(table, RowLocator(f"synthetic {frequency} data (seed {seed})"))
    return table
