"""Ready policies from signed artifacts: the one path trading and research code loads by.

Every stored policy is loaded through :func:`~ai_trading.artifacts.load_verified`
(signature, digests, feature schema hash; the dataset fingerprint is recorded in the
manifest) and, from the registry, pinned to the registered manifest digest
(:meth:`ModelRegistry.load_current`); the kind recorded in the signed manifest picks the
deserialiser. ``demo`` is the built-in momentum policy and needs no artifact.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ai_trading.artifacts import Trust, VerifiedArtifact, load_verified
from ai_trading.artifacts.registry import ModelRegistry
from ai_trading.config import AppConfig
from ai_trading.errors import ProvenanceError
from ai_trading.evaluation.report import MODEL_FILE, REPORT_FILE
from ai_trading.features import FeatureBuilder
from ai_trading.models.demo import DEMO_POLICY_NAME, DemoPolicy
from ai_trading.models.policy import Policy
from ai_trading.models.ridge import RidgeModel, RidgePolicy

logger = logging.getLogger(__name__)

RIDGE_KINDS = ("ml", "eval")  # `ml train` and `walkforward --out` both sign a ridge model


def ridge_policy(artifact: VerifiedArtifact, builder: FeatureBuilder) -> RidgePolicy:
    """The ridge of an ``ml`` (or ``eval``) artifact with the universe and sizing it was evaluated with."""
    model = RidgeModel.from_bytes(artifact.read(MODEL_FILE), builder.feature_schema_hash)
    try:
        report: dict[str, Any] = json.loads(artifact.read(REPORT_FILE))
        symbols = tuple(str(s) for s in report["data"]["symbols"])
        sizing = artifact.manifest.fields.training_config["evaluation"]
        max_weight, leverage, neutral = float(sizing["max_weight"]), float(sizing["gross_leverage"]), bool(sizing["market_neutral"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProvenanceError(f"{artifact.path}: {REPORT_FILE} or the manifest's evaluation settings are incomplete ({exc!r})") from exc
    return RidgePolicy(artifact.manifest.fields.name, model, symbols, builder.spec, max_weight, leverage, neutral)


def policy_from_artifact(artifact: VerifiedArtifact, builder: FeatureBuilder) -> Policy:
    """Deserialise a verified artifact by the kind its signed manifest records."""
    kind = artifact.manifest.fields.kind
    if kind in RIDGE_KINDS:
        return ridge_policy(artifact, builder)
    if kind == "rl":
        from ai_trading.models.sb3 import SB3Policy

        return SB3Policy.from_artifact(artifact, builder.spec)
    raise ProvenanceError(f"{artifact.path}: artifacts of kind {kind!r} hold no policy (kinds with one: ml, eval, rl)")


def load_policy_dir(directory: Path, trust: Trust, builder: FeatureBuilder) -> Policy:
    """The policy of a signed artifact directory, verified by :func:`load_verified`."""
    return policy_from_artifact(load_verified(directory, trust, builder.feature_schema_hash), builder)


def load_current(registry: ModelRegistry, name: str, trust: Trust, builder: FeatureBuilder) -> Policy:
    """The current model of ``name`` as a ready policy (verified, pinned to its registered digest)."""
    policy = policy_from_artifact(registry.load_current(name, trust, builder.feature_schema_hash), builder)
    logger.info("POLICY_LOADED", extra={"model": name, "kind": policy.kind, "symbols": len(policy.universe)})
    return policy


def follows_registry(reference: str) -> bool:
    """Whether ``--model`` names a registered model (whose current version may change),
    not the demo or a signed artifact directory."""
    return reference != DEMO_POLICY_NAME and not is_directory_reference(reference)


def is_directory_reference(reference: str) -> bool:
    """A model reference naming a directory: it holds a path separator (registry names cannot)."""
    return "/" in reference or Path(reference).is_dir()


def load_policy(reference: str, config: AppConfig, builder: FeatureBuilder, symbols: tuple[str, ...]) -> Policy:
    """The policy a command's ``--model`` names: ``demo`` (over ``symbols``), a signed
    artifact directory, or a registered model name.

    :param symbols: the universe of the demo policy; stored policies carry their own
    """
    if reference == DEMO_POLICY_NAME:
        if not symbols:
            raise ProvenanceError("the demo policy trades the symbols it is given: pass --symbols")
        return DemoPolicy(symbols, builder.spec)
    trust = Trust.from_config(config.artifacts)
    if is_directory_reference(reference):
        return load_policy_dir(Path(reference), trust, builder)
    return load_current(ModelRegistry.from_config(config.artifacts), reference, trust, builder)
