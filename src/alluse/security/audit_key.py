"""The audit chain's MAC key, derived from the keyring.

Each keyring key derives one audit key (HMAC-SHA-256, purpose `audit-chain`); its id (a digest of the
key, safe to store) is written into every entry it signs. The newest key signs. So that entries stay
verifiable after `alluse keys rotate` drops the old keyring key, every audit key in use is also kept
in the database *sealed*: encrypted with the keyring (Fernet), re-sealed under the new key by the
rotation. The database alone never holds a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # both load the settings and cryptography: only a write needs them
    from alluse.security.keyring import Keyring

PURPOSE = b"audit-chain"


@dataclass(frozen=True)
class AuditKey:
    key_id: str
    secret: bytes


def from_secret(secret: bytes) -> AuditKey:
    return AuditKey(hmac.new(secret, b"key-id", hashlib.sha256).hexdigest()[:16], secret)


def keyring_audit_keys(keyring: Keyring) -> list[AuditKey]:
    """The audit key of each keyring key, newest (the signing one) first."""
    return [from_secret(hmac.new(k, PURPOSE, hashlib.sha256).digest()) for k in keyring.keys]


@dataclass(frozen=True)
class Signer:
    key: AuditKey
    keyring: Keyring


@lru_cache(maxsize=4)
def _signer(secret_key: str | None, key_file: str) -> Signer:
    from alluse.config import Settings
    from alluse.security.keyring import load_keyring

    keyring = load_keyring(Settings(secret_key=secret_key, key_file=key_file))
    return Signer(keyring_audit_keys(keyring)[0], keyring)


def current_signer() -> Signer:
    """The signer for this process's configuration (ALLUSE_SECRET_KEY or the key file)."""
    s = _config().get_settings()
    return _signer(s.secret_key, s.key_file)


@lru_cache(maxsize=1)
def _config() -> ModuleType:
    """alluse.config, imported at the first write (it loads pydantic's settings): an import statement
    run by every unit of work cost it more than the rest of `current_signer`."""
    import alluse.config

    return alluse.config


def forget() -> None:
    """Drop the cached signer (after the key file changed under this process: `keys rotate`)."""
    _signer.cache_clear()
