"""``ai-trading manifest``: sign an artifact directory, or verify one as a loader would."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ai_trading.commands import add_config_option, expected_schema_hash
from ai_trading.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("manifest", help="sign or verify an artifact directory")
    actions = parser.add_subparsers(dest="manifest_action", required=True)

    sign = actions.add_parser("sign", help="write manifest.json and manifest.sig for every file in DIR")
    sign.add_argument("directory", type=Path, metavar="DIR")
    sign.add_argument("--name", required=True, help="model name; rollback protection is per name")
    sign.add_argument("--version", required=True, type=int, help="integer >= 1, higher than any earlier release")
    sign.add_argument("--kind", required=True, choices=("ml", "rl", "eval"))
    sign.add_argument("--algorithm", required=True, help="e.g. ppo, lightgbm, walkforward")
    sign.add_argument("--feature-spec-name", required=True)
    sign.add_argument("--feature-spec-version", required=True, type=int)
    sign.add_argument("--feature-schema-hash", required=True)
    sign.add_argument("--dataset-fingerprint", required=True)
    sign.add_argument("--training-config", type=Path, help="JSON file with the training configuration")
    sign.add_argument("--metrics", type=Path, help="JSON file with {metric: number}")
    sign.add_argument("--key", type=Path, help="signing key file (default: [artifacts] signing key)")
    add_config_option(sign, "[artifacts]")
    sign.set_defaults(handler=_sign)

    verify = actions.add_parser("verify", help="run every load-time check on DIR and record its version")
    verify.add_argument("directory", type=Path, metavar="DIR")
    verify.add_argument(
        "--feature-schema-hash", help="required schema hash (default: the current builder's default spec)"
    )
    verify.add_argument("--dataset-fingerprint", help="require this dataset fingerprint")
    verify.add_argument("--name", help="require this model name")
    add_config_option(verify, "[artifacts]")
    verify.set_defaults(handler=_verify)


def _json_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read a JSON object ({exc})") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return document


def _sign(args: argparse.Namespace) -> int:
    from ai_trading.artifacts import ManifestFields, sign_artifact_dir
    from ai_trading.artifacts.keys import load_signing_key, parse_signing_key
    from ai_trading.config import load_config

    config = load_config(args.config).artifacts
    if args.key is not None:
        signer = parse_signing_key(args.key.read_bytes(), str(args.key))
    else:
        signer = load_signing_key(config.signing_key_path, config.signing_key_env)
    fields = ManifestFields(
        name=args.name,
        version=args.version,
        kind=args.kind,
        algorithm=args.algorithm,
        feature_spec_name=args.feature_spec_name,
        feature_spec_version=args.feature_spec_version,
        feature_schema_hash=args.feature_schema_hash,
        dataset_fingerprint=args.dataset_fingerprint,
        training_config=_json_file(args.training_config),
        metrics=_json_file(args.metrics),
    )
    manifest = sign_artifact_dir(args.directory, fields, signer)
    print(f"signed {args.directory}: {args.name} v{args.version}, {len(manifest.files)} files, key {signer.key_id}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ai_trading.artifacts import Trust, load_verified
    from ai_trading.config import load_config

    trust = Trust.from_config(load_config(args.config).artifacts)
    schema_hash = expected_schema_hash(args.feature_schema_hash)
    artifact = load_verified(args.directory, trust, schema_hash, args.dataset_fingerprint, args.name)
    fields = artifact.manifest.fields
    print(
        f"verified {args.directory}: {fields.name} v{fields.version} ({fields.kind}, {fields.algorithm}), "
        f"{len(artifact.files)} files, signed by {artifact.key_id}"
    )
    return 0
