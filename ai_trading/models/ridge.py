"""The ML signal: a closed-form ridge on standardised features, the position sizing that
turns its predictions into target weights, and :class:`RidgePolicy`, the two as a policy.

Features are z-scored across symbols at each bar (using that bar's values only, so the
transform is causal); a missing feature becomes 0, the cross-sectional mean. The ridge
fits forward returns on ``[1, z_1 .. z_F]`` with the intercept unpenalised. Because the
normal equations are sums over bars, the per-bar Gram matrices are computed once and each
fold's fit sums the rows of its (purged) training bars: ``beta = (sum_t G_t + alpha I')^-1
sum_t b_t`` with ``G_t = X_t' X_t``, ``b_t = X_t' y_t`` over the symbols with a label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Self

import numpy as np
from numpy.typing import NDArray

from ai_trading.errors import EvaluationError, ProvenanceError
from ai_trading.features import FeatureSpec
from ai_trading.models.policy import MarketWindow, Policy, PortfolioState
from ai_trading.types import BoolArray, FloatArray, IntArray

MODEL_FORMAT = "ai-trading/ridge/v1"


def standardized_design(values: NDArray[np.float32], usable: BoolArray) -> FloatArray:
    """``[T, S, 1 + F]``: an intercept column, then each feature z-scored across the usable
    symbols of its bar; 0 where a feature is missing, the whole row 0 where not usable."""
    n_bars, n_symbols, n_features = values.shape
    design = np.empty((n_bars, n_symbols, n_features + 1))
    design[:, :, 0] = usable
    z = design[:, :, 1:]
    z[...] = values
    z[~usable] = np.nan
    missing = np.isnan(z)
    count = n_symbols - missing.sum(axis=1)
    z[missing] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z -= (z.sum(axis=1) / count)[:, None, :]
        z[missing] = 0.0
        std = np.sqrt(np.einsum("tsf,tsf->tf", z, z) / count)
        z *= np.where(std > 0, 1.0 / std, 0.0)[:, None, :]
    return design


def forward_returns(close: FloatArray, valid: BoolArray, horizon: int) -> FloatArray:
    """``close[t + h] / close[t] - 1`` per symbol; NaN where either bar is missing or past the end."""
    if horizon < 1:
        raise EvaluationError(f"label_horizon must be >= 1 bar, got {horizon}")
    out = np.full(close.shape, np.nan)
    if horizon < close.shape[0]:
        both = valid[:-horizon] & valid[horizon:]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:-horizon] = np.where(both, close[horizon:] / close[:-horizon] - 1.0, np.nan)
    return out


@dataclass(frozen=True, eq=False)
class BarStatistics:
    """Per-bar sufficient statistics of the ridge's normal equations.

    :param gram: ``[T, P, P]`` ``X_t' X_t`` over the bar's labelled symbols
    :param moment: ``[T, P]`` ``X_t' y_t``
    :param count: ``[T]`` labelled symbols per bar
    """

    gram: FloatArray
    moment: FloatArray
    count: IntArray

    @classmethod
    def compute(cls, design: FloatArray, labels: FloatArray) -> Self:
        labelled = ~np.isnan(labels) & (design[:, :, 0] > 0)
        x = design * labelled[:, :, None]
        y = np.where(labelled, labels, 0.0)
        gram = np.matmul(x.transpose(0, 2, 1), x)
        moment = np.einsum("tsp,ts->tp", x, y)
        return cls(gram=gram, moment=moment, count=labelled.sum(axis=1))


@dataclass(frozen=True, eq=False)
class RidgeModel:
    """A fitted ridge signal and the feature schema it was fitted on.

    :param coef: ``[1 + F]`` intercept then feature coefficients
    :param feature_names: the feature columns, in order
    :param alpha: the L2 penalty it was fitted with
    :param feature_schema_hash: the builder schema hash of its training features
    """

    coef: FloatArray
    feature_names: tuple[str, ...]
    alpha: float
    feature_schema_hash: str

    @classmethod
    def fit(cls, stats: BarStatistics, train_bars: IntArray, alpha: float, feature_names: tuple[str, ...], feature_schema_hash: str) -> Self:
        """Solve the ridge normal equations over ``train_bars``; raise when no bar has a label."""
        if not alpha >= 0:
            raise EvaluationError(f"ridge_alpha must be >= 0, got {alpha!r}")
        if int(stats.count[train_bars].sum()) == 0:
            raise EvaluationError("the training window holds no labelled sample: use more data or a shorter label_horizon")
        gram = stats.gram[train_bars].sum(axis=0)
        penalty = np.full(gram.shape[0], float(alpha))
        penalty[0] = 0.0
        coef = np.linalg.lstsq(gram + np.diag(penalty), stats.moment[train_bars].sum(axis=0), rcond=None)[0]
        return cls(coef=coef, feature_names=feature_names, alpha=float(alpha), feature_schema_hash=feature_schema_hash)

    def predict(self, design: FloatArray) -> FloatArray:
        """Predicted forward return ``[..., S]``; NaN where the row is not usable."""
        if design.shape[-1] != self.coef.size:
            raise EvaluationError(f"design has {design.shape[-1] - 1} features, the model {self.coef.size - 1}")
        prediction = design @ self.coef
        return np.where(design[..., 0] > 0, prediction, np.nan)

    def to_bytes(self) -> bytes:
        document = {
            "format": MODEL_FORMAT,
            "coef": [float(c) for c in self.coef],
            "feature_names": list(self.feature_names),
            "alpha": self.alpha,
            "feature_schema_hash": self.feature_schema_hash,
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, expected_feature_schema_hash: str) -> Self:
        """Parse a saved model (from verified artifact bytes); refuse another feature schema."""
        try:
            document = json.loads(data)
            if document.get("format") != MODEL_FORMAT:
                raise ValueError(f"format is {document.get('format')!r}, expected {MODEL_FORMAT!r}")
            model = cls(
                coef=np.asarray(document["coef"], dtype=np.float64),
                feature_names=tuple(str(n) for n in document["feature_names"]),
                alpha=float(document["alpha"]),
                feature_schema_hash=str(document["feature_schema_hash"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProvenanceError(f"not a ridge model file ({exc})") from exc
        if model.feature_schema_hash != expected_feature_schema_hash:
            raise ProvenanceError(
                f"ridge model was fitted on feature schema {model.feature_schema_hash}, the features now have "
                f"{expected_feature_schema_hash}: refit it on the current features"
            )
        return model


def target_weights(
    prediction: FloatArray, max_weight: float, gross_leverage: float, market_neutral: bool
) -> FloatArray:
    """Weights ``[T, S]`` proportional to the (demeaned) predictions, scaled to ``gross_leverage``
    and clipped to ``+-max_weight``; 0 where the prediction is NaN or all are equal.

    ``w = clip(L * x / sum|x|, -cap, cap)`` with ``x = p - mean_s(p)`` when ``market_neutral``
    and more than one symbol is predicted at the bar (one symbol cannot hedge itself: it
    trades the sign of its prediction), else ``x = p``.
    """
    if not (0 < max_weight and 0 < gross_leverage):
        raise EvaluationError(f"max_weight and gross_leverage must be > 0, got {max_weight!r} and {gross_leverage!r}")
    known = ~np.isnan(prediction)
    count = known.sum(axis=1, keepdims=True)
    x = np.where(known, prediction, 0.0)
    if market_neutral:
        mean = x.sum(axis=1, keepdims=True) / np.maximum(count, 1)
        x = np.where(known & (count > 1), x - mean, x)
    scale = np.abs(x).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(scale > 0, gross_leverage * x / scale, 0.0)
    return np.clip(weights, -max_weight, max_weight)


class RidgePolicy(Policy):
    """A fitted :class:`RidgeModel` sized into weights by :func:`target_weights`, bar by bar.

    Both steps read only the decision bar's row, so the weights at ``t`` equal the row
    ``t`` of the vectorised walk-forward on the same model.

    :param name: the model's name
    :param model: the fitted ridge; its feature schema must be ``feature_spec``'s
    :param universe: the symbols it trades, in weight order
    :param feature_spec: the spec it was fitted on
    :param max_weight: per-name cap, fraction of equity
    :param gross_leverage: sum of absolute weights
    :param market_neutral: demean predictions across symbols
    """

    kind = "ml"

    def __init__(
        self, name: str, model: RidgeModel, universe: tuple[str, ...], feature_spec: FeatureSpec,
        max_weight: float, gross_leverage: float, market_neutral: bool,
    ) -> None:  # fmt: skip
        if model.feature_schema_hash != feature_spec.schema_hash or model.feature_names != feature_spec.names:
            raise ProvenanceError(
                f"ridge model {name!r} was fitted on feature schema {model.feature_schema_hash}, not on spec "
                f"{feature_spec.name!r} v{feature_spec.version} ({feature_spec.schema_hash}): refit it"
            )
        self.name, self.model, self.universe, self.feature_spec = name, model, tuple(universe), feature_spec
        self.lookback = feature_spec.lookback
        self.max_weight, self.gross_leverage, self.market_neutral = max_weight, gross_leverage, market_neutral

    def decide(self, window: MarketWindow, portfolio: PortfolioState) -> FloatArray:
        design = standardized_design(window.features.values[-1:], window.panel.valid[-1:])
        prediction = self.model.predict(design)
        return target_weights(prediction, self.max_weight, self.gross_leverage, self.market_neutral)[0]
