"""Key parsing, ids, and where keys come from."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ai_trading.artifacts.keys import (
    Ed25519Signer,
    HmacKey,
    load_signing_key,
    load_trusted_keys,
    parse_signing_key,
    parse_trusted_key,
)
from ai_trading.errors import ConfigError


def test_ed25519_round_trip_and_stable_id() -> None:
    signer = Ed25519Signer.generate()
    again = parse_signing_key(signer.to_pem(), "test")
    verifier = parse_trusted_key(signer.verifier().to_pem(), "test")
    assert again.key_id == signer.key_id == verifier.key_id
    assert signer.key_id.startswith("ed25519:") and len(signer.key_id) == len("ed25519:") + 16
    assert verifier.verify(b"data", again.sign(b"data"))
    assert not verifier.verify(b"datA", again.sign(b"data"))


def test_hmac_round_trip_and_constant_time_verify() -> None:
    key = HmacKey.generate()
    parsed = parse_trusted_key(key.to_text(), "test")
    assert parsed.key_id == key.key_id != HmacKey.generate().key_id
    assert parsed.verify(b"x", key.sign(b"x")) and not parsed.verify(b"x", key.sign(b"y"))
    assert key.secret.hex() not in repr(key) and key.secret.hex() not in key.key_id


def test_short_hmac_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32 random bytes"):
        HmacKey(b"short")


def test_private_key_is_never_trusted_and_other_curves_are_refused() -> None:
    with pytest.raises(ConfigError, match="trust only the public key"):
        parse_trusted_key(Ed25519Signer.generate().to_pem(), "test")
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    pem = ecdsa.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ConfigError, match="only Ed25519"):
        parse_signing_key(pem, "test")


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    file_key, env_key = Ed25519Signer.generate(), HmacKey.generate()
    (tmp_path / "signing.key").write_bytes(file_key.to_pem())
    env = {"SIGNING": env_key.to_text().decode()}
    assert load_signing_key(tmp_path / "signing.key", "SIGNING", env).key_id == env_key.key_id
    assert load_signing_key(tmp_path / "signing.key", "SIGNING", {}).key_id == file_key.key_id


def test_trusted_keys_from_directory_and_environment(tmp_path: Path) -> None:
    a, b = Ed25519Signer.generate(), HmacKey.generate()
    (tmp_path / "a.pub").write_bytes(a.verifier().to_pem())
    (tmp_path / "notes.txt").write_text("ignored")
    keys = load_trusted_keys(tmp_path, "TRUSTED", {"TRUSTED": b.to_text().decode()})
    assert set(keys) == {a.key_id, b.key_id}
