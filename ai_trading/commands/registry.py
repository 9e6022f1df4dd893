"""``ai-trading registry``: promote a verified, passing training run; roll back; show."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ai_trading.commands import add_config_option, expected_schema_hash

if TYPE_CHECKING:
    from ai_trading.artifacts import Trust
    from ai_trading.artifacts.registry import ModelRegistry, ModelSlots
    from ai_trading.config import AppConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "registry", help="the current and previous model of each name: promote, roll back, show"
    )
    actions = parser.add_subparsers(dest="registry_action", required=True)

    promote = actions.add_parser(
        "promote",
        help="register one seed of a training run after verifying every seed and the promotion gate",
        description="Verifies every seed artifact of RUN_DIR (signature, digests, feature schema hash), re-evaluates "
        "the [governance] promotion gate on their signed results and registers the seed with the best validation "
        "Sharpe (or --seed) under the run's model name. The old current model becomes the previous one.",
    )
    promote.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory written by `ai-trading train`")
    promote.add_argument("--seed", type=int, help="the seed to register (default: best validation Sharpe)")
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
    add_config_option(parser, "[artifacts], [governance]")


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


def _promote(args: argparse.Namespace) -> int:
    config, registry, trust = _open(args)
    schema_hash = expected_schema_hash(args.feature_schema_hash)
    result = registry.promote(args.run_dir, trust, schema_hash, config.governance, args.seed)
    if not result.changed:
        print(f"{result.model}: seed {result.seed} of {args.run_dir} is already the current model; nothing changed")
        return 0
    print(f"promoted {result.model} from {args.run_dir} (seed {result.seed}): {_describe(result.slots)}")
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
