"""``ai-trading registry``: promote a verified, passing RL run or ML model; roll back; show."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ai_trading.commands import add_config_option, expected_schema_hash

if TYPE_CHECKING:
    from ai_trading.artifacts import Trust
    from ai_trading.artifacts.admission import Admission, PromotionGate
    from ai_trading.artifacts.registry import ModelRegistry, ModelSlots
    from ai_trading.config import AppConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "registry", help="the current and previous model of each name: promote, roll back, show"
    )
    actions = parser.add_subparsers(dest="registry_action", required=True)

    promote = actions.add_parser(
        "promote",
        help="register an RL run's seed or an ML model after verifying it and passing its kind's promotion gate",
        description="SOURCE is an RL run directory (`ai-trading train`) or a signed ML artifact (`ai-trading ml "
        "train`). An RL run: every seed artifact is verified (signature, digests, feature schema hash), the "
        "[governance] multi-seed gate re-evaluated on their signed results, and the seed with the best validation "
        "Sharpe (or --seed) registered under the run's model name. An ML model: the artifact is verified and its "
        "signed walk-forward numbers checked against [ml_governance]; it is registered under its name. The old "
        "current model becomes the previous one.",
    )
    promote.add_argument("source", type=Path, metavar="SOURCE", help="an RL run directory or an ML artifact directory")
    promote.add_argument("--seed", type=int, help="RL: the seed to register (default: best validation Sharpe)")
    promote.add_argument("--force", action="store_true", help="promote even a model that was rolled back before (audited)")
    _common(promote)
    promote.set_defaults(handler=_promote)

    rollback = actions.add_parser(
        "rollback", help="make the previous model current again (a second rollback undoes it)"
    )
    rollback.add_argument("name", metavar="NAME", help="the model name (the run's [rl_train] model_name)")
    _common(rollback)
    rollback.set_defaults(handler=_rollback)

    show = actions.add_parser("show", help="print the registry state as JSON")
    show.add_argument("name", nargs="?", metavar="NAME", help="only this model")
    add_config_option(show, "[artifacts]")
    show.set_defaults(handler=_show)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--feature-schema-hash", help="required schema hash (default: the current builder's default spec)"
    )
    add_config_option(parser, "[artifacts], [governance], [ml_governance]")


def _describe(slots: ModelSlots) -> str:
    current, previous = slots.current, slots.previous
    text = f"current {current.name} v{current.version} (manifest {current.manifest_sha256[:12]})"
    return text + (f", previous {previous.name} v{previous.version}" if previous is not None else ", no previous")


def _open(args: argparse.Namespace) -> tuple[AppConfig, ModelRegistry, Trust]:
    """The configuration, the registry and the trust a promote or rollback works with."""
    from ai_trading.artifacts import Trust
    from ai_trading.artifacts.registry import ModelRegistry
    from ai_trading.config import load_config

    config = load_config(args.config)
    return config, ModelRegistry.from_config(config.artifacts), Trust.from_config(config.artifacts)


class _RecordingGate:
    """The kind's gate, keeping its verdict for the alert a rejection raises."""

    def __init__(self, gate: PromotionGate) -> None:
        self._gate = gate
        self.admission: Admission | None = None

    def admit(self, source: Path, trust: Trust, expected_feature_schema_hash: str) -> Admission:
        self.admission = self._gate.admit(source, trust, expected_feature_schema_hash)
        return self.admission


def _alert_rejection(config: AppConfig, registry: ModelRegistry, admission: Admission) -> None:
    """``GovernanceGateFailed`` through the outbox: critical when the rejected artifact is
    the one the registry has current (the model trading now), a warning for a candidate."""
    from ai_trading.monitoring.notify import governance_alerts, notify

    slots = registry.show().get(admission.model)
    current = slots is not None and slots.current.manifest_sha256 == admission.chosen.manifest_sha256
    notify(config, governance_alerts(config.alerts, admission.model, admission.kind, admission.rejections, current=current))


def _promote(args: argparse.Namespace) -> int:
    from ai_trading.errors import PromotionRejected
    from ai_trading.models.gates import gate_for

    config, registry, trust = _open(args)
    schema_hash = expected_schema_hash(args.feature_schema_hash)
    gate = _RecordingGate(gate_for(args.source, config, args.seed))
    try:
        result = registry.promote(args.source, trust, schema_hash, gate, force=args.force)
    except PromotionRejected:
        if gate.admission is not None and gate.admission.rejections:
            _alert_rejection(config, registry, gate.admission)
        raise
    if not result.changed:
        print(f"{result.model}: {result.choice} of {args.source} is already the current model; nothing changed")
        return 0
    print(f"promoted {result.model} ({result.admission.kind}) from {args.source} ({result.choice}): {_describe(result.slots)}")
    if result.dropped is not None:
        print(f"dropped {result.dropped.name} v{result.dropped.version} from the registry")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    _, registry, trust = _open(args)
    slots = registry.rollback(args.name, trust, expected_schema_hash(args.feature_schema_hash))
    print(f"rolled back {args.name}: {_describe(slots)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ai_trading.artifacts.registry import ModelRegistry
    from ai_trading.config import load_config

    registry = ModelRegistry.from_config(load_config(args.config).artifacts)
    if args.name is not None:
        document = {args.name: registry.slots(args.name).to_dict()}
    else:
        document = {name: slots.to_dict() for name, slots in registry.show().items()}
    print(json.dumps(document, indent=2, sort_keys=True))
    return 0
