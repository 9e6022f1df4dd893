"""The one interface every deployable model implements: bars known at t in, weights out.

A :class:`Policy` sees what is known at the close of bar ``t`` (a :class:`MarketWindow`:
the bars up to and including ``t`` and the features the one
:class:`~ai_trading.features.FeatureBuilder` computed on them) and the current
:class:`PortfolioState`, and returns a target weight for every symbol of its universe.
Research (walk-forward), replay and live trading call the same ``target_weights``, so a
backtest and a live run of one model can only differ by the market they see.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace

import numpy as np

from ai_trading.errors import DataValidationError, FeatureSchemaMismatch
from ai_trading.execution.pnl import forward_filled_close
from ai_trading.features import FeatureSet, FeatureSpec
from ai_trading.types import FloatArray, MarketPanel


@dataclass(frozen=True, eq=False)
class PortfolioState:
    """The book at the close of the decision bar.

    :param cash: currency
    :param positions: shares per symbol of the policy's universe ``[S]``
    :param weights: position value / equity per symbol ``[S]``
    :param equity: cash plus positions at the close
    :param peak_equity: the highest equity the book has had (the drawdown reference)
    """

    cash: float
    positions: FloatArray
    weights: FloatArray
    equity: float
    peak_equity: float

    @classmethod
    def flat(cls, n_symbols: int, cash: float) -> PortfolioState:
        """A book holding only ``cash``."""
        return cls(cash, np.zeros(n_symbols), np.zeros(n_symbols), cash, cash)


def panel_rows(panel: MarketPanel, lo: int, hi: int) -> MarketPanel:
    """Bars ``[lo, hi)`` of ``panel`` (every per-bar array sliced, the rest kept)."""
    changes = {}
    for item in fields(panel):
        value = getattr(panel, item.name)
        if isinstance(value, np.ndarray) and value.shape[:1] == (panel.n_bars,):
            changes[item.name] = value[lo:hi]
    return replace(panel, **changes)


@dataclass(frozen=True, eq=False)
class MarketWindow:
    """What is known at the close of the window's last bar.

    :param panel: the bars, the decision bar last
    :param features: the builder's features of those bars (same rows and symbols)
    """

    panel: MarketPanel
    features: FeatureSet

    def __post_init__(self) -> None:
        if self.features.symbols != self.panel.symbols or not np.array_equal(self.features.ts, self.panel.ts):
            raise DataValidationError("MarketWindow", None, "features were built from another panel", "build them from this panel")
        if self.panel.n_bars == 0:
            raise DataValidationError("MarketWindow", None, "the window holds no bar", "pass at least the decision bar")

    @classmethod
    def at(cls, panel: MarketPanel, features: FeatureSet, t: int, lookback: int) -> MarketWindow:
        """The last ``lookback + 1`` bars up to ``t`` of a panel and its (causal) features."""
        lo = max(0, t + 1 - (lookback + 1))
        window = replace(features, values=features.values[lo : t + 1], mask=features.mask[lo : t + 1], ts=features.ts[lo : t + 1])
        return cls(panel_rows(panel, lo, t + 1), window)

    @property
    def last_close(self) -> FloatArray:
        """Each symbol's latest close (forward-filled; NaN before its first bar)."""
        return forward_filled_close(self.panel)[-1]


class Policy(ABC):
    """Turns a :class:`MarketWindow` and a :class:`PortfolioState` into target weights.

    Implementations declare ``name``, ``kind`` (``ml``, ``rl``, ``demo``), ``universe``
    (the symbols, in the order of their weights), ``feature_spec`` and ``lookback`` (bars
    of history before the decision bar that the weights depend on).
    """

    name: str
    kind: str
    universe: tuple[str, ...]
    feature_spec: FeatureSpec
    lookback: int

    @property
    def feature_schema_hash(self) -> str:
        return self.feature_spec.schema_hash

    @abstractmethod
    def decide(self, window: MarketWindow, portfolio: PortfolioState) -> FloatArray:
        """Weights ``[S]`` at the window's last bar; called with a checked window."""

    def target_weights(self, window: MarketWindow, portfolio: PortfolioState) -> FloatArray:
        """Target weight per symbol of :attr:`universe` (fraction of equity; 0 = flat).

        :raises FeatureSchemaMismatch: the window's features are of another schema
        :raises DataValidationError: the window's symbols are not the universe
        """
        if window.features.feature_schema_hash != self.feature_schema_hash:
            raise FeatureSchemaMismatch(
                f"policy {self.name!r} needs features of schema {self.feature_schema_hash}, the window has "
                f"{window.features.feature_schema_hash}: build them with the policy's feature_spec"
            )
        if window.panel.symbols != self.universe:
            raise DataValidationError(
                "MarketWindow", None, f"policy {self.name!r} trades {list(self.universe)}",
                f"the window holds {list(window.panel.symbols)}: load exactly these symbols in this order",
            )  # fmt: skip
        if portfolio.weights.shape != (len(self.universe),):
            raise DataValidationError("PortfolioState", None, f"weights need one value per symbol of {list(self.universe)}")
        return self.decide(window, portfolio)
