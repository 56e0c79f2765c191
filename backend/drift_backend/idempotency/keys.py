"""What the header may hold, which routes honour it, and the fingerprint of a request."""

from __future__ import annotations

import hashlib
import json
import re

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

#: (method, path) of every route that creates something. Searches are POSTs that create
#: nothing; the permissions grant is a PUT but adds an entry, so it takes a key too.
ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/api/v1/experiment$")),
    ("POST", re.compile(r"^/api/v1/experiment/[^/]+/(drift|baseline|check)$")),
    # Alerts: a rule or a silence created twice by a retry would act twice.
    ("POST", re.compile(r"^/api/v1/experiment/[^/]+/(alert-rules|silences)$")),
    ("PUT", re.compile(r"^/api/v1/experiment/[^/]+/permissions$")),
    ("POST", re.compile(r"^/api/v1/user$")),
)
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")


class InvalidKey(ValueError):
    pass


def applies_to(method: str, path: str) -> bool:
    return any(method == want and pattern.match(path) for want, pattern in ROUTES)


def parse_key(values: list[bytes]) -> str:
    """The key of the header's value(s); ``InvalidKey`` says why there is none."""
    if len(values) != 1:
        raise InvalidKey("send the header once")
    try:
        key = values[0].decode("ascii").strip()
    except UnicodeDecodeError:
        raise InvalidKey("must be printable ASCII") from None
    # The IETF draft writes the key as a Structured Field string; plain values are common.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"must be 1 to {MAX_KEY_LENGTH} characters long")
    if not _PRINTABLE.match(key):
        raise InvalidKey("must be printable ASCII")
    return key


def record_id(issuer: str, subject: str, key: str) -> str:
    """One record per (caller, key); hashed so that any key makes a bounded, safe ``_id``."""
    return hashlib.sha256(json.dumps([issuer, subject, key]).encode()).hexdigest()


def fingerprint_start(method: str, path: str, query: bytes, content_type: str) -> hashlib._Hash:
    """A hash of everything but the body, which is fed in as it streams through."""
    digest = hashlib.sha256()
    head = json.dumps([method, path, query.decode("latin-1"), content_type])
    digest.update(head.encode() + b"\n")
    return digest
