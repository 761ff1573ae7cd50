"""The key that signs audit checkpoints and the destruction certificate, and the public key that checks them.

By default the Ed25519 seed is the key file's ``signing_seed``. A *signing key file* of its own
(``SIGNPOST_SIGNING_KEY_FILE``) keeps it apart from the data keys: on first use the key file's seed
moves there (so the log keeps its name and earlier checkpoints still verify) and leaves the key
file. Either way the public key stays beside where the seed was, so that once decommissioning has
destroyed the seed the chain is still verifiable. An auditor should not take the public key from
the host, though (an insider could replace it): they verify against the copy published earlier
(``signpost audit checkpoint --public-key``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from store.keys import keychain
from store.keys.crypto import KeyFileError, KeyRing, keep_private, public_of, read_key_text, write_private


class SigningKeyGone(Exception):
    """Nothing can be signed any more: decommissioning destroyed the signing seed."""


class PublicKeyError(ValueError):
    """A published public key could not be read (the message says why, in one line)."""


def origin_of(public: bytes) -> str:
    """The log's name: stable for a signing key, different for another deployment."""
    return "signpost-audit/" + hashlib.sha256(public).hexdigest()[:16]


def public_line(public: bytes) -> str:
    """The public key as one line to publish: ``origin ed25519 base64``."""
    return f"{origin_of(public)} ed25519 {base64.b64encode(public).decode('ascii')}"


def parse_public_key(text: str) -> bytes:
    """A published key: the line ``public_line`` prints, or the bare base64 key."""
    words = text.split()
    if len(words) == 3 and words[1] == "ed25519":
        encoded = words[2]
    elif len(words) == 1:
        encoded = words[0]
    else:
        raise PublicKeyError("not a Signpost public key (expected `ORIGIN ed25519 BASE64`, as printed)")
    try:
        public = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PublicKeyError("the public key is not valid base64") from None
    if len(public) != 32:
        raise PublicKeyError("the public key is not an Ed25519 key (32 bytes)")
    if len(words) == 3 and words[0] != origin_of(public):
        raise PublicKeyError("the public key does not match the log name printed with it")
    return public


class Signer:
    """Signs with the seed where it lives now; knows the public key even after the seed is destroyed."""

    def __init__(self, ring: KeyRing, path: Path | None = None) -> None:
        self._ring = ring
        self.path = path  # None: the seed is the key file's
        self._seed = b""
        self._public = b""
        if path is not None:
            self._load_or_move(path)

    # -- where the seed lives ----------------------------------------------------------------------

    def _load_or_move(self, path: Path) -> None:
        if not path.exists():
            with keychain.editing(self._ring) as fresh:
                if not path.exists():  # another process may have moved it meanwhile
                    seed = fresh.signing_seed or (b"" if keychain.decommissioned(fresh) else secrets.token_bytes(32))
                    public = public_of(seed) if seed else fresh.signing_public
                    _write(path, seed, public)
                fresh.signing_seed = b""  # the seed now lives apart from the data keys only
        try:
            doc = json.loads(read_key_text(path))
            self._seed = base64.b64decode(doc["signing_seed"], validate=True)
            self._public = base64.b64decode(doc["public_key"], validate=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"cannot read signing key file {path}: {type(exc).__name__}") from None
        if self._seed and public_of(self._seed) != self._public:
            raise KeyFileError(f"signing key file {path}: its public key does not match its seed")
        keep_private(path)

    @property
    def _current_seed(self) -> bytes:
        return self._seed if self.path is not None else self._ring.signing_seed

    @property
    def public(self) -> bytes:
        """The raw Ed25519 public key (kept after the seed is destroyed)."""
        seed = self._current_seed
        if seed:
            return public_of(seed)
        public = self._public if self.path is not None else self._ring.signing_public
        if not public:
            raise SigningKeyGone("no signing key is known here: give the published public key")
        return public

    @property
    def origin(self) -> str:
        return origin_of(self.public)

    @property
    def can_sign(self) -> bool:
        return bool(self._current_seed)

    @property
    def destroyed(self) -> bool:
        """No seed, and none anywhere: decommissioning destroyed it (not merely moved out of the key file)."""
        return not self._current_seed and (self.path is not None or keychain.decommissioned(self._ring))

    @property
    def unavailable(self) -> str:
        """Why nothing can be signed here, in one line (when ``can_sign`` is false)."""
        if self.destroyed:
            return "the signing key has been destroyed (decommissioned): nothing more can be signed"
        return (
            "the signing key is not in the key file: it was moved to a signing key file of its own, "
            "so set SIGNPOST_SIGNING_KEY_FILE to that file"
        )

    def sign(self, data: bytes) -> bytes:
        seed = self._current_seed
        if not seed:
            raise SigningKeyGone(self.unavailable)
        return Ed25519PrivateKey.from_private_bytes(seed).sign(data)

    def seed_on_disk(self) -> bool:
        """Whether the signing key file holds a seed now, as read from it (not as loaded): another
        process, or a run killed part way, may have left it. An unreadable file counts as one."""
        if self.path is None or not self.path.exists():
            return False
        try:
            return bool(json.loads(read_key_text(self.path))["signing_seed"])
        except (OSError, ValueError, KeyError, TypeError, KeyFileError):
            return True

    def destroy(self) -> None:
        """Destroy the seed in a signing key file of its own, keeping the public key (the key file's
        seed is destroyed with the key file's other secrets); idempotent, and from the file as it
        is now, not only as this process loaded it."""
        if self.path is not None and (self._seed or self.seed_on_disk()):
            _write(self.path, b"", self._public)
            self._seed = b""


def _write(path: Path, seed: bytes, public: bytes) -> None:
    """Durably replace the signing key file (mode 0600)."""
    doc = {
        "version": 1,
        "signing_seed": base64.b64encode(seed).decode("ascii"),
        "public_key": base64.b64encode(public).decode("ascii"),
    }
    write_private(path, json.dumps(doc))
