"""Feature specs: validation, names, the schema hash and the released-spec registry."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ai_trading.errors import DataValidationError, ProvenanceError
from ai_trading.features import released, spec as spec_module
from ai_trading.features.builder import FeatureBuilder
from ai_trading.features.spec import Feature, FeatureSpec, default_spec

# Every spec the repository ships; each must be pinned in released_specs.json.
SHIPPED_SPECS = [default_spec()]

BAD_FEATURES = [
    ("no_such_kind", {}, "unknown feature kind"),
    ("log_return", {}, "takes parameters"),
    ("log_return", {"window": 0}, "window must be an integer >= 1"),
    ("log_return", {"window": 2.5}, "window must be an integer >= 1"),
    ("log_return", {"window": True}, "window must be an integer >= 1"),
    ("momentum", {"window": 5, "skip": 5}, "skip must be < momentum.window"),
    ("volume_zscore", {"window": 1}, "window must be an integer >= 2"),
    ("spread", {"source": "mid"}, "source must be one of"),
    ("hl_range", {"window": 3}, "takes parameters"),
]


@pytest.mark.parametrize("spec", SHIPPED_SPECS, ids=lambda s: f"{s.name}-v{s.version}")
def test_shipped_spec_hash_is_pinned_for_its_version(spec: FeatureSpec) -> None:
    """Fails when a spec (or the builder) changes without a new spec version."""
    pinned = released.released_hash(spec.name, spec.version)
    assert pinned is not None, f"add {spec.name} v{spec.version}: {spec.schema_hash} to released_specs.json"
    assert spec.schema_hash == pinned


def test_registry_file_is_well_formed() -> None:
    registry = released.released_hashes()
    for name, versions in registry.items():
        for version, digest in versions.items():
            assert int(version) >= 1, name
            assert len(digest) == 64 and int(digest, 16) >= 0, name


def test_changed_released_spec_is_refused() -> None:
    changed = replace(default_spec(), features=default_spec().features[:-1])
    with pytest.raises(ProvenanceError, match="was released with schema hash .* bump|give the changed spec a new version"):
        FeatureBuilder(changed)
    FeatureBuilder(replace(changed, version=999))  # an unreleased version is free to change


def test_builder_version_is_part_of_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    before = default_spec().schema_hash
    monkeypatch.setattr(spec_module, "BUILDER_VERSION", "changed")
    assert default_spec().schema_hash != before


SCHEMA_CHANGES = [
    ("version", lambda s: replace(s, version=s.version + 1)),
    ("name", lambda s: replace(s, name="other")),
    ("order", lambda s: replace(s, features=s.features[::-1])),
    ("parameter", lambda s: replace(s, features=(Feature("log_return", {"window": 2}), *s.features[1:]))),
    ("dropped", lambda s: replace(s, features=s.features[:-1])),
]


@pytest.mark.parametrize(("what", "change"), SCHEMA_CHANGES, ids=[c[0] for c in SCHEMA_CHANGES])
def test_every_schema_change_changes_the_hash(what: str, change) -> None:  # type: ignore[no-untyped-def]
    assert change(default_spec()).schema_hash != default_spec().schema_hash, what


def test_canonical_bytes_are_sorted_compact_json() -> None:
    text = default_spec().canonical_bytes().decode("ascii")
    document = json.loads(text)
    assert text == json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert [f["name"] for f in document["features"]] == list(default_spec().names)
    assert {f["dtype"] for f in document["features"]} == {"float32"}


def test_names_follow_kind_and_parameters() -> None:
    assert Feature("momentum", {"skip": 21, "window": 252}).name == "momentum_252_21"
    assert Feature("hl_range").name == "hl_range"


@pytest.mark.parametrize(("kind", "params", "message"), BAD_FEATURES)
def test_bad_feature_is_rejected(kind: str, params: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(DataValidationError, match=message):
        Feature(kind, params)


def test_duplicate_names_and_bad_version_are_rejected() -> None:
    with pytest.raises(DataValidationError, match="unique"):
        FeatureSpec("dup", 1, (Feature("hl_range"), Feature("hl_range")))
    with pytest.raises(DataValidationError, match="version must be an integer >= 1"):
        FeatureSpec("v0", 0, (Feature("hl_range"),))
    with pytest.raises(DataValidationError, match="no features"):
        FeatureSpec("empty", 1, ())
