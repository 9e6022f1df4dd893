"""The model gate of a trading loop: a policy only through the verified registry path.

Stored models go through :func:`~ai_trading.artifacts.load_verified` (trusted signature,
file digests, rollback protection, the current builder's feature schema hash) and, from
the registry, the pin to the registered manifest digest; the signed manifest's version,
digest and training data fingerprint become the run's :class:`ModelIdentity`. The loop
checks the policy's feature schema hash against the builder's once more, so that no
path, however a policy was made, can trade on features it was not trained on.
"""

from __future__ import annotations

from pathlib import Path

from ai_trading.artifacts import Trust, VerifiedArtifact, load_verified
from ai_trading.artifacts.registry import ModelRegistry
from ai_trading.config import AppConfig
from ai_trading.errors import FeatureSchemaMismatch, ProvenanceError
from ai_trading.features import FeatureBuilder
from ai_trading.models.demo import DEMO_POLICY_NAME, DemoPolicy
from ai_trading.models.policy import Policy
from ai_trading.models.registry_loading import is_directory_reference, policy_from_artifact
from ai_trading.runtime.loop import ModelIdentity

DEMO_VERSION = "1"


def verified_artifact(reference: str, config: AppConfig, builder: FeatureBuilder) -> VerifiedArtifact:
    """The signed artifact ``reference`` names (a directory or a registered name), verified."""
    trust = Trust.from_config(config.artifacts)
    if is_directory_reference(reference):
        return load_verified(Path(reference), trust, builder.feature_schema_hash)
    return ModelRegistry.from_config(config.artifacts).load_current(reference, trust, builder.feature_schema_hash)


def trading_policy(reference: str, config: AppConfig, builder: FeatureBuilder, symbols: tuple[str, ...]) -> tuple[Policy, ModelIdentity]:
    """The policy ``--model`` names and its identity; ``demo`` trades ``symbols``.

    :raises ProvenanceError: the policy's feature schema differs from the builder's (and
        every error of verified loading: signature, digests, rollback, registry pin)
    """
    if reference == DEMO_POLICY_NAME:
        if not symbols:
            raise ProvenanceError("the demo policy trades the symbols it is given: pass --symbols")
        policy: Policy = DemoPolicy(symbols, builder.spec)
        identity = ModelIdentity(DEMO_POLICY_NAME, DEMO_VERSION)
    else:
        artifact = verified_artifact(reference, config, builder)
        policy = policy_from_artifact(artifact, builder)
        fields = artifact.manifest.fields
        identity = ModelIdentity(fields.name, str(fields.version), artifact.manifest_sha256, fields.dataset_fingerprint)
    if policy.feature_schema_hash != builder.feature_schema_hash:
        raise FeatureSchemaMismatch(
            f"model {identity.name!r} needs features of schema {policy.feature_schema_hash}, the builder makes "
            f"{builder.feature_schema_hash}: retrain it on the current feature spec; it will not trade"
        )
    return policy, identity
