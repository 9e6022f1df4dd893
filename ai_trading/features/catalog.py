"""The feature kinds a spec may use: their parameters, lookback and kernel call.

A kind turns validated integer/string parameters into one column of the feature tensor.
Adding a kind here (and bumping ``BUILDER_VERSION`` in the builder when an existing kind
changes meaning) is the only way to add a feature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kernels import features as kf

from ai_trading.errors import DataValidationError
from ai_trading.types import MarketPanel

ParamValue = int | str
Params = Mapping[str, ParamValue]

SPREAD_SOURCES = ("auto", "quoted", "range")


class BarInputs:
    """The panel's arrays plus derived series, each computed once per build on first use."""

    def __init__(self, panel: MarketPanel, run: NDArray[np.int64]) -> None:
        self.panel = panel
        self.run = run

    @staticmethod
    def _log(values: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(values)
        kf.natural_log(values, out)
        return out

    @cached_property
    def log_close(self) -> NDArray[np.float64]:
        return self._log(self.panel.close)

    @cached_property
    def log_high(self) -> NDArray[np.float64]:
        return self._log(self.panel.high)

    @cached_property
    def log_low(self) -> NDArray[np.float64]:
        return self._log(self.panel.low)

    @cached_property
    def bar_log_return(self) -> NDArray[np.float64]:
        out = np.empty_like(self.panel.close)
        kf.bar_log_return(self.log_close, self.run, out)
        return out

    @cached_property
    def log_volume(self) -> NDArray[np.float64]:
        """``ln(1 + volume)``: volume is heavy-tailed, its log is close to normal."""
        return np.log1p(self.panel.volume)


Compute = Callable[[BarInputs, Params, NDArray[np.float32], int], int]


@dataclass(frozen=True)
class FeatureKind:
    """One kind of feature.

    :param name: the kind's identifier used in specs
    :param params: parameter names in naming order, each with its validator
    :param lookback: bars before ``t`` the feature reads (its warm-up)
    :param compute: writes the feature into a column of the output; returns a kernel status
    """

    name: str
    params: tuple[tuple[str, Callable[[str, str, Any], ParamValue]], ...]
    lookback: Callable[[Params], int]
    compute: Compute


def _window(kind: str, key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataValidationError("FeatureSpec", None, f"{kind}.{key} must be an integer >= {minimum}", f"got {value!r}")
    return value


def _window2(kind: str, key: str, value: Any) -> int:
    return _window(kind, key, value, minimum=2)


def _skip(kind: str, key: str, value: Any) -> int:
    return _window(kind, key, value, minimum=0)


def _spread_source(kind: str, key: str, value: Any) -> str:
    if value not in SPREAD_SOURCES:
        raise DataValidationError("FeatureSpec", None, f"{kind}.{key} must be one of {SPREAD_SOURCES}", f"got {value!r}")
    return str(value)


def _spread(inputs: BarInputs, params: Params, out: NDArray[np.float32], col: int) -> int:
    panel = inputs.panel
    source = params["source"]
    if source == "quoted" and panel.spread_bps is None:
        raise DataValidationError("MarketPanel", None, "feature spread_quoted needs the panel's spread_bps column")
    if panel.spread_bps is not None and source in ("auto", "quoted"):
        # "auto" keeps the range estimator's warm-up so its mask does not depend on the source.
        return int(kf.quoted_spread(panel.spread_bps, inputs.run, _spread_lookback(params) + 1, out, col))
    return int(kf.corwin_schultz_spread(inputs.log_high, inputs.log_low, inputs.run, out, col))


def _spread_lookback(params: Params) -> int:
    return 0 if params["source"] == "quoted" else 1


KINDS: dict[str, FeatureKind] = {
    kind.name: kind
    for kind in (
        FeatureKind(
            "log_return",
            (("window", _window),),
            lambda p: int(p["window"]),
            lambda i, p, out, col: kf.log_return(i.log_close, i.panel.valid, p["window"], 0, out, col),
        ),
        FeatureKind(
            "momentum",
            (("window", _window), ("skip", _skip)),
            lambda p: int(p["window"]),
            lambda i, p, out, col: kf.log_return(i.log_close, i.panel.valid, p["window"], p["skip"], out, col),
        ),
        FeatureKind(
            "realized_vol",
            (("window", _window),),
            lambda p: int(p["window"]),
            lambda i, p, out, col: kf.rolling_rms(i.bar_log_return, i.run, p["window"], int(p["window"]) + 1, out, col),
        ),
        FeatureKind(
            "volume_zscore",
            (("window", _window2),),
            lambda p: int(p["window"]),
            lambda i, p, out, col: kf.rolling_zscore(i.log_volume, i.run, p["window"], int(p["window"]) + 1, out, col),
        ),
        FeatureKind(
            "sma_gap",
            (("window", _window),),
            lambda p: int(p["window"]) - 1,
            lambda i, p, out, col: kf.sma_gap(i.panel.close, i.run, p["window"], out, col),
        ),
        FeatureKind(
            "atr",
            (("window", _window),),
            lambda p: int(p["window"]),
            lambda i, p, out, col: kf.average_true_range(
                i.panel.high, i.panel.low, i.panel.close, i.run, p["window"], out, col
            ),
        ),
        FeatureKind(
            "hl_range",
            (),
            lambda p: 0,
            lambda i, p, out, col: kf.hl_range(i.log_high, i.log_low, i.run, out, col),
        ),
        FeatureKind("spread", (("source", _spread_source),), _spread_lookback, _spread),
    )
}


def validate_params(kind_name: str, params: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Check a kind's parameters; return them in the kind's naming order."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise DataValidationError("FeatureSpec", None, f"unknown feature kind {kind_name!r}", f"known: {', '.join(KINDS)}")
    expected = [key for key, _ in kind.params]
    if sorted(params) != sorted(expected):
        raise DataValidationError(
            "FeatureSpec", None, f"{kind_name} takes parameters {expected}", f"got {sorted(params)}"
        )
    checked = {key: check(kind_name, key, params[key]) for key, check in kind.params}
    if kind_name == "momentum" and checked["skip"] >= checked["window"]:
        raise DataValidationError("FeatureSpec", None, "momentum.skip must be < momentum.window", f"got {checked}")
    return checked
