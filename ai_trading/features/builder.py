"""The one feature builder: MarketPanel -> FeatureSet with its provenance hashes.

Live trading, replay, evaluation and the RL environment all compute features through
:class:`FeatureBuilder`, so a model sees the same numbers in research and in production,
and every model records which schema and which data its features came from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kernels import features as kf

from ai_trading.errors import DataValidationError
from ai_trading.features.catalog import KINDS, BarInputs
from ai_trading.features.fingerprint import dataset_fingerprint
from ai_trading.features.released import check_release
from ai_trading.features.spec import BUILDER_VERSION, Feature, FeatureSpec, default_spec
from ai_trading.types import MarketPanel

__all__ = ["BUILDER_VERSION", "Feature", "FeatureBuilder", "FeatureSet", "FeatureSpec", "default_spec"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features of one panel.

    :param values: ``[T, S, F]`` float32, NaN exactly where ``mask`` is False
    :param mask: ``[T, S, F]`` True where the feature is defined (past its warm-up, and
        every bar it reads exists)
    :param names: feature names in column order
    :param ts: bar times of the rows, int64 ns UTC ``[T]``
    :param symbols: the panel's symbols, in its column order
    :param spec: the spec the features were built from
    :param feature_schema_hash: ``spec.schema_hash`` (spec, names, parameters, dtypes, builder version)
    :param dataset_fingerprint: SHA-256 of the input bars, see
        :func:`ai_trading.features.fingerprint.dataset_fingerprint`
    """

    values: NDArray[np.float32]
    mask: NDArray[np.bool_]
    names: tuple[str, ...]
    ts: NDArray[np.int64]
    symbols: tuple[str, ...]
    spec: FeatureSpec
    feature_schema_hash: str
    dataset_fingerprint: str

    def column(self, name: str) -> NDArray[np.float32]:
        """One feature as a ``[T, S]`` view."""
        if name not in self.names:
            raise DataValidationError("FeatureSet", None, f"no feature named {name!r}", f"have: {', '.join(self.names)}")
        return self.values[:, :, self.names.index(name)]

    def provenance(self) -> dict[str, str | int]:
        """The fields a model manifest records about its features."""
        return {
            "feature_spec_name": self.spec.name,
            "feature_spec_version": self.spec.version,
            "feature_schema_hash": self.feature_schema_hash,
            "dataset_fingerprint": self.dataset_fingerprint,
        }


class FeatureBuilder:
    """Builds the features of a :class:`FeatureSpec` over market panels.

    :param spec: the schema to compute; :func:`default_spec` when omitted. A spec that
        claims a released (name, version) must hash to the pinned value.
    """

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        self.spec = spec if spec is not None else default_spec()
        check_release(self.spec)

    @property
    def feature_schema_hash(self) -> str:
        """The schema hash every model trained on these features must carry."""
        return self.spec.schema_hash

    def build(self, panel: MarketPanel) -> FeatureSet:
        """Compute every feature of the spec over ``panel``; raises on malformed bars."""
        _check_bars(panel)
        run = np.empty(panel.close.shape, dtype=np.int64)
        kf.valid_run_length(panel.valid, run)
        inputs = BarInputs(panel, run)
        values = np.empty((panel.n_bars, panel.n_symbols, len(self.spec.features)), dtype=np.float32)
        for col, feature in enumerate(self.spec.features):
            status = KINDS[feature.kind].compute(inputs, feature.params, values, col)
            if status != kf.STATUS_OK:
                raise DataValidationError("FeatureSpec", None, f"kernel of {feature.name} rejected its parameters (status {status})")
        features = FeatureSet(
            values=values,
            mask=~np.isnan(values),
            names=self.spec.names,
            ts=panel.ts,
            symbols=panel.symbols,
            spec=self.spec,
            feature_schema_hash=self.feature_schema_hash,
            dataset_fingerprint=dataset_fingerprint(panel),
        )
        logger.debug(
            "FEATURES_BUILT",
            extra={"spec": self.spec.name, "version": self.spec.version, "shape": values.shape},
        )
        return features


def _check_bars(panel: MarketPanel) -> None:
    bad = int(kf.first_bad_bar(panel.open, panel.high, panel.low, panel.close, panel.volume, panel.valid))
    if bad != kf.NO_BAD_BAR:
        t, s = divmod(bad, panel.n_symbols)
        bar = {name: float(getattr(panel, name)[t, s]) for name in ("open", "high", "low", "close", "volume")}
        raise DataValidationError(
            "MarketPanel",
            t,
            f"valid bar of {panel.symbols[s]!r} needs finite prices > 0, high >= low and finite volume >= 0",
            f"got {bar}; mark the bar invalid or fix the source",
        )
