"""The one feature builder, its specs, and the provenance hashes of what it computed."""

from ai_trading.features.builder import FeatureBuilder, FeatureSet
from ai_trading.features.fingerprint import dataset_fingerprint
from ai_trading.features.spec import BUILDER_VERSION, Feature, FeatureSpec, default_spec

__all__ = [
    "BUILDER_VERSION",
    "Feature",
    "FeatureBuilder",
    "FeatureSet",
    "FeatureSpec",
    "dataset_fingerprint",
    "default_spec",
]
