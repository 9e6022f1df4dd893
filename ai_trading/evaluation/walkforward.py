"""Walk-forward evaluation of the ridge signal on simulated executions.

Each fold fits the ridge on its purged training bars (everything before the test block
whose forward-return label ends before it), predicts the test block, and the stitched
out-of-sample predictions become target weights under the position limits. One
continuous :class:`PortfolioSimulator` run, priced and kept learning by the EWMA cost
model, turns them into fills and equity; every metric is computed from that equity and
the costs of those fills. The same pipeline over the combinatorial purged CV paths gives
the distribution of Sharpe ratios, and over a grid of ridge penalties the PBO.

Alignment: the weights decided at bar ``t``'s close execute in bar ``t + 1``, so the
decisions of a test block ``[lo, hi)`` earn the bars ``lo + 1 .. hi``.

Run ``python -m ai_trading.evaluation.walkforward --help`` (same as ``ai-trading walkforward``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ai_trading.config import AppConfig
from ai_trading.data.frequency import panel_frequency, periods_per_year
from ai_trading.errors import ConfigError, EvaluationError, FeatureSchemaMismatch
from ai_trading.evaluation.anomalies import Anomaly, equity_anomalies, metric_anomalies
from ai_trading.evaluation.metrics import (
    CostAdjustedMetrics,
    cost_adjusted_metrics,
    probability_of_backtest_overfitting,
    sharpe_ratio,
)
from ai_trading.evaluation.purged_cv import CombinatorialPurgedCV, LabelIntervals, WalkForward
from ai_trading.models.ridge import (
    BarStatistics,
    RidgeModel,
    forward_returns,
    standardized_design,
    target_weights,
)
from ai_trading.execution.cost_model import CostModel
from ai_trading.execution.portfolio import PortfolioResult, PortfolioSimulator
from ai_trading.features import FeatureBuilder, FeatureSet
from ai_trading.models.policy import Policy
from ai_trading.models.run import policy_targets
from ai_trading.types import FloatArray, IntArray, MarketPanel

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Fold:
    """One walk-forward fold: its purged training bars and its test block ``[lo, hi)``."""

    index: int
    train_bars: IntArray
    test_lo: int
    test_hi: int
    model: RidgeModel | None
    metrics: CostAdjustedMetrics | None

    def to_dict(self, ts: IntArray) -> dict[str, Any]:
        return {
            "fold": self.index,
            "train_bars": int(self.train_bars.size),
            "train_first_bar": int(self.train_bars[0]),
            "train_last_bar": int(self.train_bars[-1]),
            "test_first_bar": self.test_lo,
            "test_last_bar": self.test_hi - 1,
            "test_start": _iso(ts[self.test_lo]),
            "test_end": _iso(ts[self.test_hi - 1]),
            "coef": None if self.model is None else [float(c) for c in self.model.coef],
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
        }


@dataclass(frozen=True, eq=False)
class WalkForwardReport:
    """Everything one evaluation measured; :meth:`to_dict` is the JSON report."""

    features: FeatureSet
    folds: tuple[Fold, ...]
    aggregate: CostAdjustedMetrics | None
    result: PortfolioResult
    first_bar: int
    cpcv_sharpes: FloatArray
    grid_alphas: tuple[float, ...]
    grid_sharpes: FloatArray
    pbo: float | None
    anomalies: tuple[Anomaly, ...]
    frequency: str
    periods_per_year: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def final_model(self) -> RidgeModel:
        """The last fold's model: fitted on the most data, the one to deploy."""
        model = self.folds[-1].model
        if model is None:
            raise EvaluationError("this evaluation ran a loaded policy, not a ridge fitted per fold: it has no model to write")
        return model

    def to_dict(self) -> dict[str, Any]:
        ts = self.features.ts
        finite = self.cpcv_sharpes[np.isfinite(self.cpcv_sharpes)]
        return _json_safe({
            "provenance": self.features.provenance(),
            "data": {
                "symbols": list(self.features.symbols),
                "bars": int(ts.size),
                "start": _iso(ts[0]),
                "end": _iso(ts[-1]),
                "out_of_sample_start": _iso(ts[self.first_bar]),
                "frequency": self.frequency,
            },
            "periods_per_year": self.periods_per_year,
            "settings": self.settings,
            "aggregate": None if self.aggregate is None else self.aggregate.to_dict(),
            "folds": [fold.to_dict(ts) for fold in self.folds],
            "cpcv": {
                "paths": int(self.cpcv_sharpes.size),
                "sharpe": [float(s) for s in self.cpcv_sharpes],
                "sharpe_mean": float(finite.mean()) if finite.size else math.nan,
                "sharpe_std": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
                "sharpe_min": float(finite.min()) if finite.size else math.nan,
                "sharpe_max": float(finite.max()) if finite.size else math.nan,
            },
            "grid": {
                "ridge_alpha": list(self.grid_alphas),
                "sharpe": [float(s) for s in self.grid_sharpes],
                "pbo": self.pbo,
            },
            "anomalies": [a.to_dict() for a in self.anomalies],
        })


def _iso(ns: np.int64 | int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class EvaluationInputs:
    """What every fit and simulation of one evaluation shares."""

    panel: MarketPanel
    config: AppConfig
    features: FeatureSet
    design: FloatArray
    stats: BarStatistics
    intervals: LabelIntervals
    frequency: str
    periods_per_year: float


def annualisation(panel: MarketPanel, config: AppConfig) -> tuple[str, float]:
    """The panel's bar frequency and the periods per year every annualised figure uses:
    ``evaluation.periods_per_year`` when set, else the frequency's (sessions and session
    length from ``[data]``), so 1-minute bars are not annualised as daily ones."""
    frequency = panel_frequency(panel)
    override = config.evaluation.periods_per_year
    if override is not None:
        if not (math.isfinite(override) and override > 0):
            raise EvaluationError(f"evaluation.periods_per_year must be a positive number or unset, got {override!r}")
        return frequency, float(override)
    return frequency, periods_per_year(frequency, config.data.sessions_per_year, config.data.session_minutes)


def prepare_inputs(panel: MarketPanel, config: AppConfig, builder: FeatureBuilder) -> EvaluationInputs:
    folds = config.evaluation.folds
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ConfigError(f"the number of walk-forward folds (--folds, evaluation.folds) must be a whole number >= 1, got {folds!r}")
    if panel.n_bars < 3:
        raise EvaluationError(f"the panel has {panel.n_bars} bars; walk-forward needs more bars than folds plus the label horizon")
    features = builder.build(panel)
    design = standardized_design(features.values, panel.valid)
    labels = forward_returns(panel.close, panel.valid, config.evaluation.label_horizon)
    stats = BarStatistics.compute(design, labels)
    # Decisions at bars 0 .. T-2: the last bar has no next bar to execute in.
    intervals = LabelIntervals.from_horizon(panel.n_bars - 1, config.evaluation.label_horizon)
    return EvaluationInputs(panel, config, features, design, stats, intervals, *annualisation(panel, config))


def _fit(inputs: EvaluationInputs, train: IntArray, alpha: float, loaded: RidgeModel | None) -> RidgeModel:
    if loaded is not None:
        return loaded
    features = inputs.features
    return RidgeModel.fit(inputs.stats, train, alpha, features.names, features.feature_schema_hash)


def _simulate(inputs: EvaluationInputs, prediction: FloatArray) -> PortfolioResult:
    """Fills and equity of the weights the predictions imply, priced by a fresh EWMA cost model."""
    ev = inputs.config.evaluation
    if ev.rebalance_bars < 1:
        raise EvaluationError(f"evaluation.rebalance_bars must be >= 1, got {ev.rebalance_bars}")
    weights = target_weights(prediction, ev.max_weight, ev.gross_leverage, ev.market_neutral)
    weights[np.arange(weights.shape[0]) % ev.rebalance_bars != 0] = np.nan  # NaN rows hold positions
    return _simulate_weights(inputs, weights)


def _simulate_weights(inputs: EvaluationInputs, weights: FloatArray) -> PortfolioResult:
    """Fills and equity of target weights ``[T, S]`` (NaN rows hold), priced by a fresh EWMA cost model."""
    ev, config = inputs.config.evaluation, inputs.config
    state_path = config.cost_model.state_path
    if state_path is not None and state_path.exists():
        cost_model = CostModel.load(config.cost_model, config.execution)
    else:
        cost_model = CostModel(config.cost_model, config.execution)
    return PortfolioSimulator(config.execution, cost_model).run(weights, inputs.panel, ev.initial_cash, learn=True, record_fills=False)


def _policy_folds(inputs: EvaluationInputs, policy: Policy) -> tuple[list[tuple[IntArray, int, int, RidgeModel | None]], FloatArray]:
    """The walk-forward's test blocks and a loaded policy's decisions ``[T, S]`` over them:
    nothing is refitted; it starts flat at the first test bar and decides until the last."""
    ev = inputs.config.evaluation
    splitter = WalkForward(ev.folds, train_size=ev.train_bars, purge=ev.purge)
    folds: list[tuple[IntArray, int, int, RidgeModel | None]] = [
        (train, int(test[0]), int(test[-1]) + 1, None) for train, test in splitter.split(inputs.intervals)
    ]
    weights = policy_targets(policy, inputs.panel, inputs.features, ev.initial_cash, ev.rebalance_bars, start=folds[0][1])
    weights[folds[-1][2] :] = np.nan
    return folds, weights


def walk_forward_predictions(inputs: EvaluationInputs, alpha: float, loaded: RidgeModel | None) -> tuple[list[tuple[IntArray, int, int, RidgeModel]], FloatArray]:
    """Per fold (train bars, lo, hi, model), and the stitched out-of-sample predictions ``[T, S]``."""
    ev = inputs.config.evaluation
    splitter = WalkForward(ev.folds, train_size=ev.train_bars, purge=ev.purge)
    prediction = np.full(inputs.panel.close.shape, np.nan)
    folds = []
    for train, test in splitter.split(inputs.intervals):
        model = _fit(inputs, train, alpha, loaded)
        lo, hi = int(test[0]), int(test[-1]) + 1
        prediction[lo:hi] = model.predict(inputs.design[lo:hi])
        folds.append((train, lo, hi, model))
    return folds, prediction


def _window_metrics(
    result: PortfolioResult, lo: int, hi: int, inputs: EvaluationInputs, trials: tuple[int, float] | None, scope: str
) -> tuple[CostAdjustedMetrics | None, list[Anomaly]]:
    """Metrics of bars ``lo + 1 .. hi`` (the earnings of decisions ``lo .. hi - 1``)."""
    ev = inputs.config.evaluation
    window = slice(lo + 1, hi + 1)
    flags = equity_anomalies(scope, result.equity[lo : hi + 1])
    if flags:
        return None, flags
    metrics = cost_adjusted_metrics(
        result.equity[window], result.cost[window], result.traded_notional[window], result.gross_exposure[window],
        initial_equity=float(result.equity[lo]), periods_per_year=inputs.periods_per_year,
        n_trials=None if trials is None else trials[0], trials_sharpe_variance=None if trials is None else trials[1],
        fees=result.fees[window],
    )  # fmt: skip
    return metrics, metric_anomalies(scope, metrics, ev)


def _oos_sharpe(result: PortfolioResult, first_bar: int, periods_per_year: float) -> float:
    equity = result.equity[first_bar:]
    if equity_anomalies("", equity):
        return math.nan
    return sharpe_ratio(np.diff(equity) / equity[:-1], periods_per_year)


def _cpcv_sharpes(inputs: EvaluationInputs, alpha: float, loaded: RidgeModel | None) -> FloatArray:
    """Net Sharpe of each combinatorial purged CV backtest path, simulated end to end."""
    ev = inputs.config.evaluation
    cv = CombinatorialPurgedCV(ev.cpcv_groups, ev.cpcv_test_groups, purge=ev.purge, embargo=ev.embargo)
    n = len(inputs.intervals)
    outputs = []
    for train, test in cv.split(inputs.intervals):
        outputs.append(_fit(inputs, train, alpha, loaded).predict(inputs.design[test]))
    paths = cv.assemble_paths(outputs, n)
    last_row = np.full((1, *paths.shape[2:]), np.nan)

    def path_sharpe(path: FloatArray) -> float:
        return _oos_sharpe(_simulate(inputs, np.concatenate([path, last_row])), 0, inputs.periods_per_year)

    # Paths are independent and the simulation kernel releases the GIL: run them in threads.
    with ThreadPoolExecutor() as pool:
        return np.array(list(pool.map(path_sharpe, paths)), dtype=np.float64)


def evaluate_walkforward(
    panel: MarketPanel,
    config: AppConfig,
    builder: FeatureBuilder | None = None,
    model: RidgeModel | None = None,
    alpha_grid: Sequence[float] = (),
    policy: Policy | None = None,
) -> WalkForwardReport:
    """Walk-forward (and CPCV) evaluation of the ridge signal on simulated executions.

    :param builder: the feature builder (default spec when omitted)
    :param model: a loaded model to evaluate as is in every fold instead of refitting;
        it must carry the builder's feature schema hash
    :param alpha_grid: ridge penalties to run the whole walk-forward with; with two or
        more it adds the PBO across them and deflates the Sharpe by their number
    :param policy: a loaded policy of any kind (RL, demo) to evaluate as is, decided bar
        by bar over the test blocks; no CPCV paths or grid (a fixed policy has no refits)
    """
    if policy is not None and (model is not None or alpha_grid):
        raise EvaluationError("evaluate a loaded policy alone: a ridge model and an alpha grid refit nothing for it")
    builder = builder if builder is not None else FeatureBuilder()
    if model is not None and model.feature_schema_hash != builder.feature_schema_hash:
        raise FeatureSchemaMismatch(
            f"the loaded model was fitted on feature schema {model.feature_schema_hash}, the builder's is "
            f"{builder.feature_schema_hash}: refit it on the current features"
        )
    ev = config.evaluation
    inputs = prepare_inputs(panel, config, builder)
    if policy is not None:
        folds, weights = _policy_folds(inputs, policy)
        result = _simulate_weights(inputs, weights)
    else:
        folds, prediction = walk_forward_predictions(inputs, ev.ridge_alpha, model)  # type: ignore[assignment]
        result = _simulate(inputs, prediction)
    first_bar = folds[0][1]

    grid = tuple(float(a) for a in alpha_grid)
    grid_returns = []
    for alpha in grid:
        grid_result = _simulate(inputs, walk_forward_predictions(inputs, alpha, model)[1])
        grid_returns.append(np.diff(grid_result.equity[first_bar:]) / grid_result.equity[first_bar:-1])
    grid_sharpes = np.array([sharpe_ratio(r, inputs.periods_per_year) if np.all(np.isfinite(r)) else math.nan for r in grid_returns])
    trials = (len(grid), float(np.nanvar(grid_sharpes, ddof=1))) if len(grid) >= 2 else None
    pbo = None
    if len(grid) >= 2 and all(np.all(np.isfinite(r)) for r in grid_returns):
        pbo = probability_of_backtest_overfitting(np.column_stack(grid_returns), ev.pbo_submatrices)

    anomalies: list[Anomaly] = []
    fold_results = []
    for k, (train, lo, hi, fitted) in enumerate(folds):
        metrics, flags = _window_metrics(result, lo, hi, inputs, trials, f"fold {k}")
        anomalies += flags
        fold_results.append(Fold(k, train, lo, hi, fitted, metrics))
    aggregate, flags = _window_metrics(result, first_bar, folds[-1][2], inputs, trials, "aggregate")
    anomalies += flags
    cpcv = _cpcv_sharpes(inputs, ev.ridge_alpha, model) if policy is None else np.array([], dtype=np.float64)
    report = WalkForwardReport(
        features=inputs.features,
        folds=tuple(fold_results),
        aggregate=aggregate,
        result=result,
        first_bar=first_bar,
        cpcv_sharpes=cpcv,
        grid_alphas=grid,
        grid_sharpes=grid_sharpes,
        pbo=pbo,
        anomalies=tuple(anomalies),
        frequency=inputs.frequency,
        periods_per_year=inputs.periods_per_year,
        settings={
            "evaluation": {k: getattr(ev, k) for k in ev.__dataclass_fields__},
            "execution_seed": config.execution.seed,
            "model": "refit per fold" if model is None and policy is None else "loaded",
            "policy": None if policy is None else {"name": policy.name, "kind": policy.kind},
        },
    )
    logger.info(
        "WALKFORWARD_EVALUATED",
        extra={"symbols": panel.n_symbols, "bars": panel.n_bars, "folds": len(folds), "anomalies": len(anomalies)},
    )
    return report


if __name__ == "__main__":
    import sys

    from ai_trading.cli import main

    raise SystemExit(main(["walkforward", *sys.argv[1:]]))
