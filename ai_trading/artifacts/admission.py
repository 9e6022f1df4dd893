"""What the model registry asks of a promotion gate, whatever the model kind.

The registry (in this package) knows no model kind: a higher layer hands it a
:class:`PromotionGate` that verifies a promotion source (recording nothing), judges it
and says which verified artifact to register. The RL multi-seed gate and the ML
walk-forward gate live in :mod:`ai_trading.models.gates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ai_trading.artifacts.loading import Trust, VerifiedArtifact


@dataclass(frozen=True)
class Rejection:
    """One failed rule: which, the measured value and the threshold."""

    code: str
    metric: str
    value: float
    threshold: float


@dataclass(frozen=True, eq=False)
class Admission:
    """A gate's verdict on one promotion source.

    :param model: the registry name to register under
    :param kind: the model kind (``ml``, ``rl``)
    :param chosen: the verified artifact to register when the source passes
    :param choice: how it was chosen, for people (``seed 2``)
    :param members: every verified artifact of the source; all their versions are recorded
        for rollback protection on promotion
    :param rejections: empty when the source passes
    :param metrics: the gate's statistics, for the audit log
    """

    model: str
    kind: str
    chosen: VerifiedArtifact
    choice: str
    members: tuple[VerifiedArtifact, ...]
    rejections: tuple[Rejection, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.rejections


class PromotionGate(Protocol):
    """Verifies and judges a promotion source of one model kind."""

    def admit(self, source: Path, trust: Trust, expected_feature_schema_hash: str) -> Admission:
        """Verify ``source`` without recording anything and judge it.

        :raises SignatureError, ProvenanceError, FeatureSchemaMismatch: the source fails
            verification or is not of this gate's kind
        """
        ...
