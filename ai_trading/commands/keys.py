"""``ai-trading keys``: create artifact signing keys."""

from __future__ import annotations

import argparse
from pathlib import Path

from ai_trading.commands import add_config_option


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("keys", help="create artifact signing keys")
    actions = parser.add_subparsers(dest="keys_action", required=True)
    generate = actions.add_parser(
        "generate",
        help="write a new signing key (mode 0600) and trust its verification key",
        description="Writes the private key to --out (default: [artifacts] signing_key_path) with mode 0600 and, "
        "unless --no-trust, its verification key into [artifacts] trusted_keys_dir. Never overwrites a key.",
    )
    generate.add_argument("--algorithm", choices=("ed25519", "hmac-sha256"), default="ed25519")
    generate.add_argument("--out", type=Path, help="private key file to create")
    generate.add_argument("--no-trust", action="store_true", help="do not install the verification key")
    add_config_option(generate, "[artifacts]")
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from ai_trading.artifacts.keys import (
        ED25519,
        HMAC_SUFFIX,
        PRIVATE_MODE,
        PUBLIC_MODE,
        PUBLIC_SUFFIX,
        Ed25519Signer,
        HmacKey,
        write_key_file,
    )
    from ai_trading.config import load_config

    config = load_config(args.config).artifacts
    out: Path = args.out if args.out is not None else config.signing_key_path
    if args.algorithm == ED25519:
        signer = Ed25519Signer.generate()
        private, public, suffix, mode = signer.to_pem(), signer.verifier().to_pem(), PUBLIC_SUFFIX, PUBLIC_MODE
    else:
        key = HmacKey.generate()
        signer, private, public, suffix, mode = key, key.to_text(), key.to_text(), HMAC_SUFFIX, PRIVATE_MODE
    write_key_file(out, private, PRIVATE_MODE)
    print(f"key id {signer.key_id}")
    print(f"signing key written to {out} (mode 0600)")
    if not args.no_trust:
        trusted = config.trusted_keys_dir / (signer.key_id.replace(":", "-") + suffix)
        write_key_file(trusted, public, mode)
        print(f"verification key trusted at {trusted}")
    return 0
