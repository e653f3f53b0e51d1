"""The encryption keyring for broker credentials (Fernet: AES-128-CBC + HMAC-SHA256).

Keys come from ALLUSE_SECRET_KEY (comma-separated, newest first) or from the key file, which is
created with 0600 permissions on first use. The newest key encrypts; every key decrypts, so a
rotation can re-encrypt rows one portfolio at a time without a window where a row is unreadable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from alluse.domain.errors import AlluseError, InvalidInput

if TYPE_CHECKING:
    from alluse.config import Settings


class KeyringError(AlluseError):
    code = "keyring"


@dataclass(frozen=True)
class Keyring:
    keys: tuple[bytes, ...]
    source: str  # "env" or the key file's path

    @property
    def fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(k) for k in self.keys])

    def encrypt(self, plaintext: bytes) -> bytes:
        return self.fernet.encrypt(plaintext)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self.fernet.decrypt(token)
        except InvalidToken:
            raise KeyringError("stored credentials cannot be decrypted with the configured keys") from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the newest key."""
        try:
            return self.fernet.rotate(token)
        except InvalidToken:
            raise KeyringError("stored credentials cannot be decrypted with the configured keys") from None

    def derive(self, purpose: str) -> bytes:
        """A sub-key for another use (token signing, digests), so one secret is all an operator keeps."""
        return hmac.new(self.keys[0], purpose.encode(), hashlib.sha256).digest()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.keys[0]).hexdigest()[:12]


def _parse(text: str, where: str) -> tuple[bytes, ...]:
    keys = tuple(k.strip().encode() for k in text.replace("\n", ",").split(",") if k.strip())
    if not keys:
        raise InvalidInput(f"{where} holds no key")
    for k in keys:
        try:
            Fernet(k)
        except ValueError:
            raise InvalidInput(f"{where} holds a malformed key (expected url-safe base64 Fernet keys)") from None
    return keys


def write_key_file(path: Path, keys: tuple[bytes, ...]) -> None:
    """Atomically replace the key file; the file is never readable by others, not even briefly."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(k.decode() for k in keys) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_keyring(settings: Settings, *, create: bool = True) -> Keyring:
    if settings.secret_key:
        return Keyring(_parse(settings.secret_key, "ALLUSE_SECRET_KEY"), "env")
    path = Path(settings.key_file)
    if not path.exists():
        if not create:
            raise KeyringError(f"no key file at {path} and ALLUSE_SECRET_KEY is not set")
        write_key_file(path, (Fernet.generate_key(),))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyringError(f"key file {path} is readable by others (mode {mode:o}); run chmod 600 {path}")
    return Keyring(_parse(path.read_text(), f"key file {path}"), str(path))
