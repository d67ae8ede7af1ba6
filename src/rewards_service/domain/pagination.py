"""AIP-158 pages: size defaults and clamps, opaque keyset tokens bound to their filters.

A token is signed (HMAC-SHA256 with a secret every replica shares, kept in the database): one
not made by the service is refused before its content is even parsed."""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field

from rewards_service.domain.validation import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


SIGNATURE_BYTES = 16
# Our keys (ids, sequence numbers) are short printable ASCII.
MAX_KEY_CHARS = 64


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: str | None  # the keyset position: last id of the previous page
    filters_digest: str
    secret: bytes = field(default=b"", repr=False)  # signs the next page's token


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def _position(page_token: str, secret: bytes) -> tuple[str, str]:
    """(key, filters digest) of a token this service signed; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(page_token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not base64") from exc
    signature, payload = raw[:SIGNATURE_BYTES], raw[SIGNATURE_BYTES:]
    if not secret or not hmac.compare_digest(signature, _signature(secret, payload)):
        raise ValueError("not signed by this service")
    token = json.loads(payload)  # ours: a flat object of two short strings
    after, digest = token["k"], token["f"]
    if not isinstance(after, str) or not isinstance(digest, str):
        raise ValueError("not a position")
    if not (after.isascii() and after.isprintable() and len(after) <= MAX_KEY_CHARS):
        raise ValueError("not one of our keys")
    return after, digest


def filters_digest(filters: dict[str, object]) -> str:
    encoded = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def parse_page(
    v: Violations, page_size: int, page_token: str, filters: dict[str, object], *, secret: bytes
) -> PageRequest:
    digest = filters_digest(filters)
    size = DEFAULT_PAGE_SIZE if page_size == 0 else min(page_size, MAX_PAGE_SIZE)
    v.check(page_size >= 0, "page_size", "must not be negative")
    after = None
    if page_token:
        try:
            after, token_digest = _position(page_token, secret)
        except (ValueError, KeyError, TypeError, RecursionError):
            after = None
            v.add("page_token", "is not a token returned by this method")
        else:
            v.check(
                token_digest == digest,
                "page_token",
                "was issued for another list or different filters; start again without a token",
            )
    return PageRequest(size=max(size, 1), after=after, filters_digest=digest, secret=secret)


def next_token(page: PageRequest, last_key: str | None, has_more: bool) -> str:
    if not has_more or last_key is None:
        return ""
    payload = json.dumps({"k": last_key, "f": page.filters_digest}).encode()
    return base64.urlsafe_b64encode(_signature(page.secret, payload) + payload).decode()
