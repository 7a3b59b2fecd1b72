"""The user's persistent ed25519 identity: it signs shared catalog entries and is their Noise key.

The 32-byte seed lives in ``identity/ed25519.seed`` with 0600 permissions. The sidecar derives the
same key pair from it (HyperDHT.keyPair(seed)), so the author key in a signed manifest is the public
key peers see on the encrypted connection.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.config import DataLayout
from backend.errors import OrchMindError


class IdentityError(OrchMindError):
    code = "identity"


@dataclass(frozen=True)
class Identity:
    seed: bytes

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> str:
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return raw.hex()

    def sign(self, message: bytes) -> str:
        return self._private.sign(message).hex()


def verify_signature(public_key_hex: str, signature_hex: str, message: bytes) -> bool:
    """True only for a well-formed key and signature that match ``message``."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, InvalidSignature):
        return False
    return True


def load_identity(layout: DataLayout | None = None) -> Identity:
    """The user's identity, created on first use; refuses a seed file others can read."""
    path: Path = (layout or DataLayout.current()).identity_seed
    path.parent.chmod(0o700)
    if not path.exists():
        seed = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(seed)
        return Identity(seed)
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise IdentityError(f"{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`.")
    seed = path.read_bytes()
    if len(seed) != 32:
        raise IdentityError(f"{path} is damaged (expected 32 bytes); move it away to create a new identity.")
    return Identity(seed)
