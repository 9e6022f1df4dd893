"""The registry of released feature specs: (name, version) -> schema hash, pinned in JSON.

A released spec version is frozen. If its definition (or the builder) changes, its hash
changes, and building it fails here until the change ships as a new version.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from ai_trading.errors import ProvenanceError
from ai_trading.features.spec import FeatureSpec

REGISTRY_FILE = "released_specs.json"


@cache
def released_hashes() -> dict[str, dict[str, str]]:
    """``{spec name: {version: schema hash}}`` as shipped with the package."""
    text = resources.files("ai_trading.features").joinpath(REGISTRY_FILE).read_text(encoding="utf-8")
    registry: dict[str, dict[str, str]] = json.loads(text)
    return registry


def released_hash(name: str, version: int) -> str | None:
    """The pinned hash of a released spec version, or None if it was never released."""
    return released_hashes().get(name, {}).get(str(version))


def check_release(spec: FeatureSpec) -> None:
    """Raise :class:`ProvenanceError` if ``spec`` claims a released version but hashes differently."""
    pinned = released_hash(spec.name, spec.version)
    if pinned is not None and pinned != spec.schema_hash:
        raise ProvenanceError(
            f"feature spec {spec.name!r} version {spec.version} was released with schema hash {pinned} "
            f"but now hashes to {spec.schema_hash}: a released version is frozen, so give the changed spec "
            f"a new version and add it to ai_trading/features/{REGISTRY_FILE}"
        )
