"""Walk-forward end to end (features, fits, simulation, metrics, CPCV paths) in bar-symbols/s,
against a plain NumPy version of the same pipeline (row-stacked ridge per fold, per-bar
NumPy rebalancing loop on the same schedule paying half the quoted spread) on a subset of the symbols."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ai_trading.config import AppConfig, EvaluationConfig
from ai_trading.data import generate_panel
from ai_trading.evaluation.metrics import cost_adjusted_metrics
from ai_trading.evaluation.purged_cv import LabelIntervals, WalkForward
from ai_trading.evaluation.walkforward import evaluate_walkforward
from ai_trading.features import FeatureBuilder
from ai_trading.types import MarketPanel

FULL = (500, 2520)
SMALL = (20, 400)
BASELINE_SYMBOLS = 50
CONFIG = AppConfig(evaluation=EvaluationConfig(folds=10))


def _subset(panel: MarketPanel, n_symbols: int) -> MarketPanel:
    columns = {name: getattr(panel, name)[:, :n_symbols] for name in ("open", "high", "low", "close", "volume", "valid", "spread_bps")}
    return dataclasses.replace(panel, symbols=panel.symbols[:n_symbols], **columns)


def numpy_walkforward(panel: MarketPanel, config: AppConfig) -> float:
    """The same pipeline written plainly: per-bar z-scores, stacked-row ridge, NumPy loop fills."""
    ev = config.evaluation
    features = FeatureBuilder().build(panel).values.astype(np.float64)
    n_bars, n_symbols, n_features = features.shape
    design = np.zeros((n_bars, n_symbols, n_features + 1))
    for t in range(n_bars):
        x = np.where(panel.valid[t][:, None], features[t], np.nan)
        with warnings.catch_warnings():  # warm-up bars have no values: NaN z-scores, zeroed below
            warnings.simplefilter("ignore", RuntimeWarning)
            z = (x - np.nanmean(x, axis=0)) / np.nanstd(x, axis=0)
        design[t, :, 0] = panel.valid[t]
        design[t, :, 1:] = np.nan_to_num(np.where(np.isfinite(z), z, 0.0))
    h = ev.label_horizon
    labels = np.full((n_bars, n_symbols), np.nan)
    labels[:-h] = panel.close[h:] / panel.close[:-h] - 1.0
    prediction = np.full((n_bars, n_symbols), np.nan)
    intervals = LabelIntervals.from_horizon(n_bars - 1, h)
    for train, test in WalkForward(ev.folds, purge=ev.purge).split(intervals):
        rows = design[train].reshape(-1, n_features + 1)
        y = labels[train].reshape(-1)
        keep = np.isfinite(y) & (rows[:, 0] > 0)
        penalty = np.eye(n_features + 1) * ev.ridge_alpha
        penalty[0, 0] = 0.0
        coef = np.linalg.solve(rows[keep].T @ rows[keep] + penalty, rows[keep].T @ y[keep])
        prediction[test] = np.where(design[test, :, 0] > 0, design[test] @ coef, np.nan)
    cash, positions = ev.initial_cash, np.zeros(n_symbols)
    equity, costs = np.full(n_bars, ev.initial_cash), np.zeros(n_bars)
    for t in range(n_bars - 1):
        p = prediction[t]
        x = np.where(np.isfinite(p), p - np.nanmean(p) if np.isfinite(p).any() else 0.0, 0.0)
        weights = np.clip(x / max(np.abs(x).sum(), 1e-300) * ev.gross_leverage, -ev.max_weight, ev.max_weight)
        mark = np.nan_to_num(panel.close[t])
        tradable = panel.valid[t] & panel.valid[t + 1]
        rebalance = tradable & (t % ev.rebalance_bars == 0)
        gap = np.where(rebalance, weights * equity[t] / np.where(mark > 0, mark, 1.0) - positions, 0.0)
        price = np.nan_to_num(panel.open[t + 1])
        cost = np.abs(gap) * price * np.nan_to_num(panel.spread_bps[t + 1]) / 2e4
        positions += gap
        cash -= float(gap @ price + cost.sum())
        costs[t + 1] = cost.sum()
        equity[t + 1] = cash + float(positions @ np.nan_to_num(panel.close[t + 1]))
    first = n_bars - ev.folds * ((n_bars - 1) // (ev.folds + 1)) - 1
    metrics = cost_adjusted_metrics(equity[first:], costs[first:], np.abs(costs[first:]), np.abs(equity[first:]), initial_equity=equity[first - 1])
    return metrics.net.sharpe_ratio


def test_walkforward_end_to_end(throughput) -> None:  # noqa: ANN001
    n_symbols, n_bars = FULL if throughput.full_size else SMALL
    panel = generate_panel(n_symbols, n_bars, seed=11)
    subset = _subset(panel, min(BASELINE_SYMBOLS, n_symbols))
    report = throughput.measure(
        lambda: evaluate_walkforward(panel, CONFIG),
        n_symbols * n_bars,
        lambda: numpy_walkforward(subset, CONFIG),
        subset.n_symbols * n_bars,
        rounds=3,
        baseline_rounds=1,
    )
    assert len(report.folds) == CONFIG.evaluation.folds
    assert report.result.cost.sum() > 0
