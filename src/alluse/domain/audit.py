"""The hash chain of the audit log: each entry's hash covers its content and the previous hash, so
editing or deleting any entry breaks every hash after it."""

from __future__ import annotations

import functools
import hashlib
from _json import encode_basestring, make_encoder
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

GENESIS = ""


# The C core of json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# default=str), made once for the process: `JSONEncoder.encode` makes a new one on every call and
# goes through two Python frames first, most of the cost of a short text (a bulk unit of work encodes
# two per request: the input digested and the result). No cycle check (markers None): what is encoded
# is plain data (payloads, results, row manifests), never cyclic, and the check costs a dict insert
# and delete per list and dict; without it the encoder keeps no state between calls.
_c_encode = make_encoder(None, str, encode_basestring, None, ":", ",", True, False, True)


def canonical_json(value: Any) -> str:
    return "".join(_c_encode(value, 0))


# A string's spelling in `canonical_json`, for a text spelled with its shape known from one request
# (`json_strings` for a batch's).
json_string: Callable[[str], str] = encode_basestring


def json_strings() -> Callable[[str], str]:
    """A string's spelling in `canonical_json`, each distinct string spelled once: for the texts a batch
    builds with their shape known (the names, kinds and dates of a batch repeat)."""
    spelled: dict[str, str] = {}

    def text(s: str) -> str:
        found = spelled.get(s)
        if found is None:
            found = spelled[s] = encode_basestring(s)
        return found

    return text


def digest(payload: Any) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def digests(payloads: Iterable[Any]) -> list[str]:
    """`digest` of each payload, without two Python calls per payload (a bulk unit of work's inputs)."""
    sha256, encode = hashlib.sha256, _c_encode
    return [sha256("".join(encode(p, 0)).encode()).hexdigest() for p in payloads]


def text_digest(text: str) -> str:
    """`digest` of a payload given as its `canonical_json` already."""
    return hashlib.sha256(text.encode()).hexdigest()


def text_digests(texts: Iterable[str]) -> list[str]:
    """`digest` of each payload given as its `canonical_json` already."""
    sha256 = hashlib.sha256
    return [sha256(t.encode()).hexdigest() for t in texts]


_last_at: list[tuple[datetime | None, str]] = [(None, "")]


def timestamp_text(at: datetime) -> str:
    """One spelling of a timestamp for hashing, whatever timezone the database hands back: the UTC
    time's `isoformat(timespec="microseconds")`, without its offset."""
    # A unit of work stamps its audit entries and all its rows with one `now`: spelled once.
    seen = _last_at[0]  # one read of one (value, text) pair: safe between threads
    if at is seen[0]:
        return seen[1]
    utc = at.astimezone(UTC) if at.tzinfo is not None and at.tzinfo is not UTC else at
    # Spelled field by field: `replace` and `isoformat` parse their keyword arguments, most of the cost
    # (and an f-string's format specifiers each cost what the % operator's whole spelling does).
    text = "%04d-%02d-%02dT%02d:%02d:%02d.%06d" % (  # noqa: UP031
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond
    )  # fmt: skip
    _last_at[0] = (at, text)
    return text


def entry_hash(
    prev_hash: str,
    seq: int,
    at_text: str,
    actor: str,
    action: str,
    idempotency_key: str,
    input_digest: str,
    result: str,
    override_reason: str | None,
) -> str:
    fields = (prev_hash, str(seq), at_text, actor, action, idempotency_key, input_digest, result)
    return hashlib.sha256(_material(*fields, _reason(override_reason))).hexdigest()


def _reason(override_reason: str | None) -> str:
    return "-" if override_reason is None else "+" + override_reason


def _material(*fields: str) -> bytes:
    # Length-prefixed, so no choice of field contents can make two different entries hash alike.
    return "".join([f"{len(f)}:{f}" for f in fields]).encode()


def rows_digest(rows_text: str | None) -> str:
    """Digest of an entry's row manifest (empty: the entry wrote no rows of its own)."""
    return "" if not rows_text else hashlib.sha256(rows_text.encode()).hexdigest()


def entry_mac(
    key: bytes,
    key_id: str,
    prev_hash: str,
    seq: int,
    at_text: str,
    actor: str,
    action: str,
    idempotency_key: str,
    input_digest: str,
    result: str,
    override_reason: str | None,
    rows_text: str | None,
) -> str:
    """HMAC-SHA-256 of an entry under the audit key `key_id`: without the key, nobody can write an
    entry (or re-chain edited ones) that verifies. The MAC covers the rows the entry's unit of work wrote."""
    fields = (key_id, prev_hash, str(seq), at_text, actor, action, idempotency_key, input_digest, result)
    return hmac_sha256(key, _material(*fields, _reason(override_reason), rows_digest(rows_text)))


EntryMac = Callable[[str, int, str, str, str, str | None], str]


def entry_signer(
    key: bytes, key_id: str, at_text: str, actor: str, action: str, override_reason: str | None
) -> EntryMac:
    """`entry_mac` for the entries of one unit of work, as a function of the fields that differ
    between them (prev_hash, seq, idempotency_key, input_digest, result, rows_text): the fields they
    share are spelled once, and the key id, first in the message, is hashed into the keyed state once."""
    keyed, outer = _keyed_as(key, key_id)
    mid = f"{len(at_text)}:{at_text}{len(actor)}:{actor}{len(action)}:{action}"
    reason = _reason(override_reason)
    end = f"{len(reason)}:{reason}"

    def mac(prev_hash: str, seq: int, key_: str, input_digest: str, result: str, rows_text: str | None) -> str:
        s, rows = str(seq), rows_digest(rows_text) if rows_text else ""
        inner = keyed.copy()
        inner.update(
            f"{len(prev_hash)}:{prev_hash}{len(s)}:{s}{mid}{len(key_)}:{key_}{len(input_digest)}:{input_digest}"
            f"{len(result)}:{result}{end}{len(rows)}:{rows}".encode()
        )
        m = outer.copy()
        m.update(inner.digest())
        return m.hexdigest()

    return mac


_BLOCK = 64  # SHA-256's block size


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA-256 (RFC 2104) set up with `key` once: the SHA-256 states after the inner and the outer
    padded key. Each MAC copies them; every call is one into the hash library (the `hmac` module's
    object goes through Python methods for its copy, update and digest)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


@functools.lru_cache(maxsize=8)
def _keyed_as(key: bytes, key_id: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """`_keyed` with the key id, first in every entry's message, hashed into the inner state: once per
    key, not once per unit of work. Like `_keyed`'s, the states are only ever copied."""
    inner0, outer = _keyed(key)
    keyed = inner0.copy()
    keyed.update(f"{len(key_id)}:{key_id}".encode())
    return keyed, outer


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA-256 of `message` as hex, from copies of the keyed states (a one-shot HMAC sets the key
    up again on every call)."""
    inner0, outer = _keyed(key)
    inner = inner0.copy()
    inner.update(message)
    m = outer.copy()
    m.update(inner.digest())
    return m.hexdigest()
