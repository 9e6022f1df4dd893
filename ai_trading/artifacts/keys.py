"""Signing and verification keys: Ed25519 (asymmetric) and HMAC-SHA256 (shared secret).

Keys come from files or environment variables, never from a manifest. A key's id is
derived from the key itself, so a signature names its key without carrying it:
``ed25519:<16 hex>`` (SHA-256 of the raw public key) or ``hmac-sha256:<16 hex>`` (a
domain-separated SHA-256 of the secret). Verification always uses the algorithm of the
trusted key, never the one a signature claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ai_trading.errors import ConfigError

ED25519 = "ed25519"
HMAC_SHA256 = "hmac-sha256"
ALGORITHMS = (ED25519, HMAC_SHA256)
HMAC_PREFIX = "ai-trading-hmac-sha256:"
HMAC_KEY_BYTES = 32
PUBLIC_SUFFIX = ".pub"
HMAC_SUFFIX = ".hmac"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
_KEY_ID_HEX = 16


class Signer(Protocol):
    """Something that signs bytes with a private or secret key."""

    @property
    def key_id(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    def sign(self, data: bytes) -> bytes: ...


class Verifier(Protocol):
    """A trusted key that checks signatures."""

    @property
    def key_id(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    def verify(self, data: bytes, signature: bytes) -> bool: ...


def _ed25519_key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{ED25519}:{hashlib.sha256(raw).hexdigest()[:_KEY_ID_HEX]}"


@dataclass(frozen=True)
class Ed25519Verifier:
    """An Ed25519 public key. :param public_key: the key"""

    public_key: Ed25519PublicKey
    algorithm: str = field(default=ED25519, init=False)

    @property
    def key_id(self) -> str:
        return _ed25519_key_id(self.public_key)

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def to_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Ed25519Signer:
    """An Ed25519 private key. :param private_key: the key"""

    private_key: Ed25519PrivateKey = field(repr=False)
    algorithm: str = field(default=ED25519, init=False)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> str:
        return _ed25519_key_id(self.private_key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.private_key.public_key())

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@dataclass(frozen=True)
class HmacKey:
    """A shared HMAC-SHA256 secret; it both signs and verifies. :param secret: >= 32 random bytes"""

    secret: bytes = field(repr=False)
    algorithm: str = field(default=HMAC_SHA256, init=False)

    def __post_init__(self) -> None:
        if len(self.secret) < HMAC_KEY_BYTES:
            raise ConfigError(f"HMAC key has {len(self.secret)} bytes; use at least {HMAC_KEY_BYTES} random bytes")

    @classmethod
    def generate(cls) -> HmacKey:
        return cls(secrets.token_bytes(HMAC_KEY_BYTES))

    @property
    def key_id(self) -> str:
        digest = hashlib.sha256(b"ai-trading/hmac-key-id\x00" + self.secret).hexdigest()
        return f"{HMAC_SHA256}:{digest[:_KEY_ID_HEX]}"

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self.secret, data, hashlib.sha256).digest()

    def verify(self, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(data), signature)

    def verifier(self) -> HmacKey:
        return self

    def to_text(self) -> bytes:
        return (HMAC_PREFIX + base64.b64encode(self.secret).decode("ascii") + "\n").encode("ascii")


def _parse_hmac(text: bytes, where: str) -> HmacKey:
    try:
        secret = base64.b64decode(text.strip()[len(HMAC_PREFIX) :], validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: HMAC key is not valid base64") from exc
    return HmacKey(secret)


def parse_signing_key(text: bytes, where: str) -> Ed25519Signer | HmacKey:
    """A signer from key text: an Ed25519 PKCS8 PEM private key or an HMAC key line."""
    if text.lstrip().startswith(HMAC_PREFIX.encode()):
        return _parse_hmac(text.lstrip(), where)
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not an Ed25519 PEM private key or HMAC key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: private key is {type(key).__name__}; only Ed25519 keys are accepted")
    return Ed25519Signer(key)


def parse_trusted_key(text: bytes, where: str) -> Ed25519Verifier | HmacKey:
    """A verifier from key text: an Ed25519 PEM public key or an HMAC key line."""
    if text.lstrip().startswith(HMAC_PREFIX.encode()):
        return _parse_hmac(text.lstrip(), where)
    if b"PRIVATE KEY" in text:
        raise ConfigError(f"{where}: is a private key; trust only the public key (.pub)")
    try:
        key = serialization.load_pem_public_key(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: not an Ed25519 PEM public key or HMAC key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{where}: public key is {type(key).__name__}; only Ed25519 keys are accepted")
    return Ed25519Verifier(key)


def write_key_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (0600 for secrets) from the first byte; never overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists; remove it or choose another path") from exc
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def load_signing_key(path: Path, env_var: str, environ: Mapping[str, str] | None = None) -> Ed25519Signer | HmacKey:
    """The signing key from ``env_var`` when set, else from ``path``."""
    environ = os.environ if environ is None else environ
    if environ.get(env_var):
        return parse_signing_key(environ[env_var].encode("utf-8"), f"${env_var}")
    try:
        return parse_signing_key(path.read_bytes(), str(path))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no signing key: {path} does not exist and ${env_var} is unset; run `ai-trading keys generate`"
        ) from exc


def load_trusted_keys(
    directory: Path, env_var: str, environ: Mapping[str, str] | None = None
) -> dict[str, Ed25519Verifier | HmacKey]:
    """Trusted keys by id: every ``*.pub`` / ``*.hmac`` file in ``directory`` plus ``env_var``."""
    environ = os.environ if environ is None else environ
    keys: list[Ed25519Verifier | HmacKey] = []
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.suffix in (PUBLIC_SUFFIX, HMAC_SUFFIX) and path.is_file():
                keys.append(parse_trusted_key(path.read_bytes(), str(path)))
    if environ.get(env_var):
        keys.append(parse_trusted_key(environ[env_var].encode("utf-8"), f"${env_var}"))
    return {key.key_id: key for key in keys}
