"""Signing an artifact directory: manifest bytes plus a DSSE-style signature envelope.

The signature covers ``PAE(payload_type, manifest_bytes)`` (the DSSE v1 pre-authentication
encoding: ``"DSSEv1" SP len(type) SP type SP len(body) SP body``), so neither the bytes nor
the type they claim to be can change without breaking it. ``manifest.json`` holds the
exact signed bytes; the envelope in ``manifest.sig`` holds the type, key id, algorithm
and signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ai_trading.artifacts.atomic import write_atomic
from ai_trading.artifacts.keys import Signer
from ai_trading.artifacts.manifest import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    Manifest,
    ManifestFields,
    file_entries,
    read_tree,
)
from ai_trading.errors import ProvenanceError, SignatureError

PAYLOAD_TYPE = "application/vnd.ai-trading.manifest+json; version=1"

logger = logging.getLogger(__name__)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload`` as ``payload_type``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    """The contents of ``manifest.sig``."""

    payload_type: str
    key_id: str
    algorithm: str
    signature: bytes

    def to_bytes(self) -> bytes:
        document = {
            "payloadType": self.payload_type,
            "keyid": self.key_id,
            "alg": self.algorithm,
            "sig": base64.b64encode(self.signature).decode("ascii"),
        }
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            document = json.loads(data)
            if not isinstance(document, dict) or set(document) != {"payloadType", "keyid", "alg", "sig"}:
                raise ValueError("expected exactly payloadType, keyid, alg, sig")
            if not all(isinstance(value, str) for value in document.values()):
                raise ValueError("every field must be a string")
            signature = base64.b64decode(document["sig"], validate=True)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise SignatureError(f"{SIGNATURE_FILE} is malformed ({exc})") from exc
        return cls(document["payloadType"], document["keyid"], document["alg"], signature)


def sign_bytes(payload: bytes, signer: Signer, payload_type: str = PAYLOAD_TYPE) -> Envelope:
    """Sign ``payload`` bound to ``payload_type``."""
    return Envelope(payload_type, signer.key_id, signer.algorithm, signer.sign(pae(payload_type, payload)))


def sign_artifact_dir(
    directory: Path | str,
    manifest_fields: ManifestFields,
    signer: Signer,
    created_at: datetime | None = None,
) -> Manifest:
    """Write ``manifest.json`` and ``manifest.sig`` for every file now in ``directory``.

    Called at training/evaluation completion, after every artifact file is written. An
    existing manifest and signature are replaced; each is written to a temporary file,
    fsynced and renamed, so a reader sees old or new files, never a torn one.
    """
    directory = Path(directory)
    if directory.is_symlink() or not directory.is_dir():
        raise ProvenanceError(f"{directory} is not a directory (symlinks are refused)")
    moment = created_at if created_at is not None else datetime.now(UTC)
    if moment.utcoffset() is None:
        raise ProvenanceError("created_at must be timezone-aware")
    manifest = Manifest(
        fields=manifest_fields,
        created_at=moment.astimezone(UTC).isoformat(),
        signer_key_id=signer.key_id,
        files=file_entries(read_tree(directory)),
    )
    payload = manifest.to_bytes()
    envelope = sign_bytes(payload, signer)
    write_atomic(directory / MANIFEST_FILE, payload)
    write_atomic(directory / SIGNATURE_FILE, envelope.to_bytes())
    logger.info(
        "ARTIFACT_SIGNED",
        extra={"artifact": manifest_fields.name, "version": manifest_fields.version, "key_id": signer.key_id},
    )
    return manifest

