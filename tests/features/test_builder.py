"""FeatureBuilder: kernels agree with the slow references, are causal, and mask correctly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.errors import DataValidationError
from ai_trading.features.builder import FeatureBuilder, FeatureSet
from ai_trading.features.spec import Feature, FeatureSpec, default_spec
from ai_trading.types import MarketPanel
from tests.features.feature_reference import panels, random_panel, reference_feature

# Short windows so that 40-bar hypothesis panels reach past every warm-up.
SMALL_SPEC = FeatureSpec(
    name="test-small",
    version=1,
    features=(
        Feature("log_return", {"window": 1}),
        Feature("log_return", {"window": 3}),
        Feature("momentum", {"window": 6, "skip": 2}),
        Feature("realized_vol", {"window": 4}),
        Feature("volume_zscore", {"window": 3}),
        Feature("sma_gap", {"window": 5}),
        Feature("atr", {"window": 3}),
        Feature("hl_range"),
        Feature("spread", {"source": "auto"}),
        Feature("spread", {"source": "range"}),
    ),
)
SMALL_BUILDER = FeatureBuilder(SMALL_SPEC)
PRICE_FIELDS = ("open", "high", "low", "close", "volume")


def _replace(panel: MarketPanel, **arrays: np.ndarray) -> MarketPanel:
    fields = {name: getattr(panel, name) for name in ("ts", "symbols", *PRICE_FIELDS, "valid", "spread_bps")}
    fields.update(arrays)
    return MarketPanel(**fields)


@settings(max_examples=60, deadline=None)
@given(panel=panels())
def test_every_kernel_matches_its_reference(panel: MarketPanel) -> None:
    features = SMALL_BUILDER.build(panel)
    for col, feature in enumerate(SMALL_SPEC.features):
        expected = reference_feature(panel, feature)
        np.testing.assert_allclose(
            features.values[:, :, col], expected.astype(np.float32), rtol=2e-5, atol=1e-6, err_msg=feature.name
        )


@settings(max_examples=40, deadline=None)
@given(panel=panels(), cut=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_features_are_causal(panel: MarketPanel, cut: float, seed: int) -> None:
    """Changing every bar after t leaves every feature at or before t unchanged."""
    t = int(cut * (panel.n_bars - 1))
    rng = np.random.default_rng(seed)
    future = rng.random(panel.close.shape) < 0.7
    future[: t + 1] = False
    changed = {name: np.where(future, getattr(panel, name) * rng.uniform(0.5, 2.0, future.shape), getattr(panel, name)) for name in PRICE_FIELDS}
    changed["high"] = np.maximum.reduce([changed["high"], changed["open"], changed["close"], changed["low"]])
    valid = panel.valid.copy()
    valid[t + 1 :] = rng.random(valid[t + 1 :].shape) < 0.8
    for name in PRICE_FIELDS:
        changed[name][~valid & ~panel.valid] = np.nan
    altered = _replace(panel, valid=valid & np.isfinite(changed["close"]), **changed)
    before = SMALL_BUILDER.build(panel)
    after = SMALL_BUILDER.build(altered)
    np.testing.assert_array_equal(after.values[: t + 1], before.values[: t + 1])
    np.testing.assert_array_equal(after.mask[: t + 1], before.mask[: t + 1])


def test_mask_is_warm_up_and_missing_bars() -> None:
    panel = random_panel(np.random.default_rng(3), 300, 3, missing=0.02)
    features = FeatureBuilder().build(panel)
    assert features.values.dtype == np.float32 and features.values.shape == (300, 3, len(default_spec().features))
    np.testing.assert_array_equal(features.mask, ~np.isnan(features.values))
    spec = default_spec()
    for col, feature in enumerate(spec.features):
        assert not features.mask[: feature.lookback, :, col].any(), feature.name
        assert not features.mask[~panel.valid][:, col].any(), feature.name
    assert features.mask[spec.lookback:].any(axis=(0, 1)).all()


def test_build_is_deterministic() -> None:
    panel = random_panel(np.random.default_rng(5), 120, 4, missing=0.1, with_spread=True)
    first, second = FeatureBuilder().build(panel), FeatureBuilder().build(panel)
    np.testing.assert_array_equal(first.values, second.values)
    assert (first.feature_schema_hash, first.dataset_fingerprint) == (second.feature_schema_hash, second.dataset_fingerprint)


def test_feature_set_carries_provenance() -> None:
    panel = random_panel(np.random.default_rng(1), 30, 2)
    features = SMALL_BUILDER.build(panel)
    assert isinstance(features, FeatureSet)
    assert features.names == SMALL_SPEC.names
    assert features.feature_schema_hash == SMALL_SPEC.schema_hash == SMALL_BUILDER.feature_schema_hash
    assert features.provenance()["feature_spec_version"] == 1
    np.testing.assert_array_equal(features.column("hl_range"), features.values[:, :, SMALL_SPEC.names.index("hl_range")])
    with pytest.raises(DataValidationError, match="no feature named 'nope'"):
        features.column("nope")


def test_quoted_spread_needs_a_spread_column() -> None:
    spec = FeatureSpec("quoted", 1, (Feature("spread", {"source": "quoted"}),))
    with pytest.raises(DataValidationError, match="spread_bps column"):
        FeatureBuilder(spec).build(random_panel(np.random.default_rng(0), 5, 1))


BAD_BARS = [
    ("close", -1.0),
    ("high", np.nan),
    ("low", 1e9),  # above high
    ("volume", -5.0),
    ("open", np.inf),
]


@pytest.mark.parametrize(("field", "value"), BAD_BARS)
def test_malformed_valid_bar_is_rejected_naming_row_and_symbol(field: str, value: float) -> None:
    panel = random_panel(np.random.default_rng(0), 10, 3)
    array = getattr(panel, field).copy()
    array[7, 2] = value
    with pytest.raises(DataValidationError, match=r"row 7: valid bar of 'SYM002'"):
        SMALL_BUILDER.build(_replace(panel, **{field: array}))
