"""Ed25519 keys and DSSE envelopes: the signing primitives every room shares.

Pure computation on bytes (no files, no network); loading keys from disk lives at
the edges. ``keyid`` is the SHA-256 (lowercase hex) of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError

# securesystemslib re-exports these without __all__; they are its documented public API.
from securesystemslib.signer import CryptoSigner, Key, SSlibKey  # type: ignore[attr-defined]

from placet.domain.canonical import canonical_json
from placet.domain.errors import PlacetError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class SignatureError(PlacetError):
    """A signature, envelope or key does not check out."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key with its placet key id."""

    raw: bytes

    @property
    def keyid(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def b64(self) -> str:
        """Standard base64 of the raw 32 bytes, as in bundles and ``/v1/keys``."""
        return base64.b64encode(self.raw).decode()

    @classmethod
    def from_b64(cls, value: str) -> PublicKey:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError(f"public key is not base64: {exc}") from None
        if len(raw) != 32:
            raise SignatureError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        return cls(raw)

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """Read a key as PEM (SubjectPublicKeyInfo) or as base64 of the raw 32 bytes."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            try:
                key = serialization.load_pem_public_key(text.encode())
            except ValueError as exc:
                raise SignatureError(f"not a PEM public key: {exc}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise SignatureError("the PEM key is not an Ed25519 key")
            return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        return cls.from_b64(text)

    def to_pem(self) -> str:
        return (
            Ed25519PublicKey.from_public_bytes(self.raw)
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature over ``data``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def sslib(self) -> SSlibKey:
        return SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(self.raw), keyid=self.keyid)


class SigningKey:
    """An Ed25519 private key; serialises to PKCS#8 PEM for a 0600 file."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public = PublicKey(raw)
        self._signer = CryptoSigner(private, self.public.sslib())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"not a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError("the private key is not an Ed25519 key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def derive(self, label: bytes, length: int = 32) -> bytes:
        """A secret for one purpose (``label``), derived from this key with HKDF-SHA256.

        Deterministic, so nothing derived needs storing; a new key derives new secrets.
        """
        raw = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(raw)

    def sign_envelope(
        self, payload: bytes, payload_type: str = IN_TOTO_PAYLOAD_TYPE
    ) -> dict[str, Any]:
        """A DSSE envelope (as a JSON dict) over ``payload``, signed with this key."""
        envelope = Envelope(payload, payload_type, {})
        envelope.sign(self._signer)
        return dict(envelope.to_dict())

    def sign_statement(self, statement: Mapping[str, Any]) -> dict[str, Any]:
        """Sign an in-toto statement: payload is its RFC 8785 canonical JSON."""
        return self.sign_envelope(canonical_json(statement))


def open_envelope(envelope: Any, keys: Iterable[PublicKey]) -> tuple[bytes, str, str]:
    """Check a DSSE envelope against ``keys``; return (payload, payloadType, signing keyid).

    Raises SignatureError unless one signature verifies under one of ``keys``.
    """
    if not isinstance(envelope, dict):
        raise SignatureError("envelope is not a JSON object")
    try:
        # from_dict consumes the dict it is given, so hand it a copy
        parsed = Envelope.from_dict(copy.deepcopy(envelope))
    except Exception as exc:  # securesystemslib raises several types for malformed input
        raise SignatureError(f"malformed envelope: {exc}") from None
    candidates: list[Key] = [key.sslib() for key in keys]
    if not candidates:
        raise SignatureError("no key to check the envelope with")
    try:
        accepted = parsed.verify(candidates, 1)
    except VerificationError as exc:
        raise SignatureError(f"envelope signature does not verify: {exc}") from None
    except Exception as exc:
        raise SignatureError(f"envelope signature does not verify: {exc}") from None
    return bytes(parsed.payload), str(parsed.payload_type), next(iter(accepted))


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The ledger leaf bytes of an envelope: its RFC 8785 canonical JSON."""
    return canonical_json(envelope)
