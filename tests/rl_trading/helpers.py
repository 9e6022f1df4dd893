"""Small deterministic panels and markets for the RL environment tests and benchmark."""

from __future__ import annotations

import numpy as np

from ai_trading.config import ExecutionConfig, RLEnvConfig
from ai_trading.features import Feature, FeatureBuilder, FeatureSpec
from ai_trading.rl_trading.market import EnvMarket
from ai_trading.types import MarketPanel

DAY_NS = 86_400_000_000_000
SMALL_SPEC = FeatureSpec(
    "rl-test",
    1,
    (Feature("log_return", {"window": 1}), Feature("log_return", {"window": 5}), Feature("realized_vol", {"window": 10})),
)


def random_panel(n_bars: int, n_symbols: int, seed: int = 0, daily_sigma: float = 0.02) -> MarketPanel:
    """Random-walk daily bars with spreads and some missing bars."""
    rng = np.random.default_rng(seed)
    close = rng.uniform(10, 300, n_symbols) * np.exp(np.cumsum(rng.normal(0, daily_sigma, (n_bars, n_symbols)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, daily_sigma / 4, (n_bars, n_symbols)))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    volume = rng.lognormal(12, 1, (n_bars, n_symbols))
    valid = rng.random((n_bars, n_symbols)) > 0.02
    valid[0] = True
    columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    for values in columns.values():
        values[~valid] = np.nan
    spread = np.where(valid, rng.uniform(1, 20, (n_bars, n_symbols)), np.nan)
    return MarketPanel(
        ts=np.arange(n_bars, dtype=np.int64) * DAY_NS, symbols=tuple(f"S{i:02d}" for i in range(n_symbols)),
        valid=valid, spread_bps=spread, **columns,
    )  # fmt: skip


def make_market(
    panel: MarketPanel,
    env_config: RLEnvConfig | None = None,
    execution: ExecutionConfig | None = None,
    start_bar: int = 0,
    end_bar: int | None = None,
) -> EnvMarket:
    features = FeatureBuilder(SMALL_SPEC).build(panel)
    return EnvMarket.build(
        panel, features, env_config or RLEnvConfig(episode_length=20), execution or ExecutionConfig(), start_bar, end_bar
    )
