"""The built-in generator: deterministic per seed, and bars with real bars' stylised facts."""

from __future__ import annotations

import numpy as np
import pytest

from ai_trading.data import DAILY, MINUTE, generate_bars, generate_panel, validate_bars
from ai_trading.data.synthetic import MINUTES_PER_SESSION, TIERS
from ai_trading.data.validation import RowLocator
from ai_trading.errors import ConfigError

FREQUENCY_CASES = [(DAILY, 2520), (MINUTE, 20 * MINUTES_PER_SESSION)]
BAD_ARGUMENTS = [(0, 5, DAILY, 0), (3, 0, DAILY, 0), (3, 5, "weekly", 0), (3, 5, DAILY, -1)]
FIELDS = ("ts", "valid", "open", "high", "low", "close", "volume", "spread_bps")


def log_returns(close: np.ndarray) -> np.ndarray:
    return np.diff(np.log(close), axis=0)


def kurtosis(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    x = x - x.mean()
    return float((x**4).mean() / (x**2).mean() ** 2)


def autocorrelation(x: np.ndarray, lag: int = 1) -> float:
    x = x[np.isfinite(x)]
    x = x - x.mean()
    return float((x[lag:] * x[:-lag]).sum() / (x * x).sum())


@pytest.fixture(scope="module", params=FREQUENCY_CASES, ids=[f for f, _ in FREQUENCY_CASES])
def panel(request: pytest.FixtureRequest):
    frequency, n_bars = request.param
    return generate_panel(40, n_bars, frequency, seed=11)


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    first, second, other = (generate_panel(9, 400, MINUTE, seed) for seed in (5, 5, 6))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    both = first.valid & other.valid
    assert both.sum() > 1000 and not np.array_equal(first.close[both], other.close[both])
    assert first.symbols == other.symbols


def test_bars_pass_the_ingest_rules(panel) -> None:
    valid = panel.valid
    o, h, low, c = (getattr(panel, name)[valid] for name in ("open", "high", "low", "close"))
    assert (np.minimum(np.minimum(o, c), low) > 0).all()
    assert (h >= np.maximum(o, c)).all() and (low <= np.minimum(o, c)).all()
    assert (panel.volume[valid] >= 0).all() and (panel.spread_bps[valid] > 0).all()
    assert np.isnan(panel.close[~valid]).all()
    # the store path runs the very same validation
    validate_bars(generate_bars(40, 300, DAILY, seed=11), RowLocator("synthetic"))


def test_returns_are_fat_tailed_and_volatility_clusters(panel) -> None:
    returns = log_returns(panel.close)
    kurt = [kurtosis(returns[:, s]) for s in range(panel.n_symbols)]
    clustering = [autocorrelation(returns[:, s] ** 2) for s in range(panel.n_symbols)]
    assert np.median(kurt) > 4.0  # a normal distribution has 3
    assert np.median(clustering) > 0.03 and np.mean(np.array(clustering) > 0) > 0.8


def test_liquidity_tiers_differ_by_orders_of_magnitude(panel) -> None:
    volume = np.nanmean(panel.volume, axis=0)
    spread = np.nanmean(panel.spread_bps, axis=0)
    price = np.nanmean(panel.close, axis=0)
    tier = np.arange(panel.n_symbols) % len(TIERS)
    large, small = tier == 0, tier == len(TIERS) - 1
    assert volume[large].min() > 100 * volume[small].max()
    assert spread[large].max() * 5 < spread[small].min()
    assert np.median(price[large]) > 10 * np.median(price[small])


def test_spread_widens_with_volatility(panel) -> None:
    range_bps = np.log(panel.high / panel.low) * 1e4
    correlations = []
    for s in range(panel.n_symbols):
        ok = panel.valid[:, s]
        correlations.append(np.corrcoef(range_bps[ok, s], panel.spread_bps[ok, s])[0, 1])
    assert np.median(correlations) > 0.2


def test_minute_volume_is_u_shaped_and_illiquid_minutes_go_missing() -> None:
    panel = generate_panel(30, 20 * MINUTES_PER_SESSION, MINUTE, seed=2)
    volume = np.where(panel.valid, panel.volume, 0.0).reshape(20, MINUTES_PER_SESSION, -1)
    profile = (volume / volume.mean(axis=(0, 1))).mean(axis=(0, 2))
    open_, midday, close = profile[:30].mean(), profile[150:240].mean(), profile[-30:].mean()
    assert open_ > 1.5 * midday and close > 1.5 * midday
    minutes = (panel.ts % (86400 * 10**9)) // (60 * 10**9)
    assert minutes.min() == 14 * 60 + 30 and minutes.max() == 14 * 60 + 30 + MINUTES_PER_SESSION - 1
    tier = np.arange(panel.n_symbols) % len(TIERS)
    assert panel.valid[:, tier == 0].all() and not panel.valid[:, tier == len(TIERS) - 1].all()


def test_daily_calendar_is_business_days_and_some_names_list_late() -> None:
    panel = generate_panel(16, 500, DAILY, seed=3)
    days = panel.ts.astype("datetime64[ns]").astype("datetime64[D]")
    assert np.is_busday(days).all() and (np.diff(panel.ts) > 0).all()
    first_bar = panel.valid.argmax(axis=0)
    assert (first_bar > 0).sum() == 2 and panel.valid[first_bar.max():].all()


@pytest.mark.parametrize(("n_symbols", "n_bars", "frequency", "seed"), BAD_ARGUMENTS)
def test_bad_arguments_are_refused(n_symbols: int, n_bars: int, frequency: str, seed: int) -> None:
    with pytest.raises(ConfigError):
        generate_panel(n_symbols, n_bars, frequency, seed)
