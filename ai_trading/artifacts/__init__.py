"""Signed artifact manifests and the one verified loading path for every model.

The model registry is imported from :mod:`ai_trading.artifacts.registry`: it re-evaluates
the RL promotion gate, which the rest of this package does not need to import.
"""

from ai_trading.artifacts.keys import Ed25519Signer, Ed25519Verifier, HmacKey, Signer, Verifier
from ai_trading.artifacts.loading import Trust, VerifiedArtifact, load_verified
from ai_trading.artifacts.manifest import Manifest, ManifestFields
from ai_trading.artifacts.signing import PAYLOAD_TYPE, sign_artifact_dir
from ai_trading.artifacts.trust_state import TrustState

__all__ = [
    "PAYLOAD_TYPE",
    "Ed25519Signer",
    "Ed25519Verifier",
    "HmacKey",
    "Manifest",
    "ManifestFields",
    "Signer",
    "Trust",
    "TrustState",
    "Verifier",
    "VerifiedArtifact",
    "load_verified",
    "sign_artifact_dir",
]
