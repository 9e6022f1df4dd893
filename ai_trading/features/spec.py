"""Feature specs: a named, versioned, ordered list of features, and its schema hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ai_trading.errors import DataValidationError
from ai_trading.features.catalog import KINDS, ParamValue, validate_params

# Bump when any kernel or catalog entry changes what an existing feature means: the
# schema hash then changes and every model trained on the old features refuses to load.
BUILDER_VERSION = "1"
VALUE_DTYPE = "float32"
MASK_DTYPE = "bool"


@dataclass(frozen=True)
class Feature:
    """One column of the feature tensor.

    :param kind: a kind from :data:`ai_trading.features.catalog.KINDS`
    :param params: that kind's parameters (e.g. ``{"window": 20}``)
    """

    kind: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(validate_params(self.kind, self.params)))

    @property
    def name(self) -> str:
        """``kind`` followed by the parameter values in the kind's order: ``momentum_252_21``."""
        return "_".join([self.kind, *(str(value) for value in self.params.values())])

    @property
    def lookback(self) -> int:
        return KINDS[self.kind].lookback(self.params)


@dataclass(frozen=True)
class FeatureSpec:
    """A versioned feature schema.

    :param name: the spec's name; released (name, version) pairs are pinned in
        ``released_specs.json``
    :param version: integer >= 1; bump it whenever the schema hash changes
    :param features: the features in column order
    """

    name: str
    version: int
    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        if not self.name:
            raise DataValidationError("FeatureSpec", None, "name must not be empty")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise DataValidationError("FeatureSpec", None, "version must be an integer >= 1", f"got {self.version!r}")
        if not self.features:
            raise DataValidationError("FeatureSpec", None, f"spec {self.name!r} has no features")
        names = self.names
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DataValidationError("FeatureSpec", None, "feature names must be unique", f"repeated: {duplicates}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @property
    def lookback(self) -> int:
        """Warm-up: the most bars before ``t`` any feature reads."""
        return max(feature.lookback for feature in self.features)

    def canonical_bytes(self) -> bytes:
        """The canonical serialisation the schema hash is taken over (sorted-key compact JSON)."""
        document: dict[str, Any] = {
            "builder_version": BUILDER_VERSION,
            "spec": self.name,
            "version": self.version,
            "value_dtype": VALUE_DTYPE,
            "mask_dtype": MASK_DTYPE,
            "features": [
                {"name": f.name, "kind": f.kind, "params": dict(f.params), "dtype": VALUE_DTYPE} for f in self.features
            ],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @property
    def schema_hash(self) -> str:
        """SHA-256 (hex) of :meth:`canonical_bytes`."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def default_spec() -> FeatureSpec:
    """What a researcher starts with on daily bars: returns over several horizons, 12-1
    momentum, realized volatility, volume surprise, distance from the moving average,
    ATR, bar range and spread."""
    return FeatureSpec(
        name="default",
        version=1,
        features=(
            Feature("log_return", {"window": 1}),
            Feature("log_return", {"window": 5}),
            Feature("log_return", {"window": 20}),
            Feature("log_return", {"window": 60}),
            Feature("momentum", {"window": 252, "skip": 21}),
            Feature("realized_vol", {"window": 20}),
            Feature("realized_vol", {"window": 60}),
            Feature("volume_zscore", {"window": 20}),
            Feature("sma_gap", {"window": 20}),
            Feature("atr", {"window": 14}),
            Feature("hl_range"),
            Feature("spread", {"source": "auto"}),
        ),
    )
