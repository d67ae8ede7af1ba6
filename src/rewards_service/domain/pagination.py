"""AIP-158 pages: size defaults and clamps, opaque keyset tokens bound to their filters."""

import base64
import hashlib
import json
from dataclasses import dataclass

from rewards_service.domain.validation import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: str | None  # the keyset position: last id of the previous page
    filters_digest: str


def filters_digest(filters: dict[str, object]) -> str:
    encoded = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def parse_page(
    v: Violations, page_size: int, page_token: str, filters: dict[str, object]
) -> PageRequest:
    digest = filters_digest(filters)
    size = DEFAULT_PAGE_SIZE if page_size == 0 else min(page_size, MAX_PAGE_SIZE)
    v.check(page_size >= 0, "page_size", "must not be negative")
    after = None
    if page_token:
        try:
            token = json.loads(base64.urlsafe_b64decode(page_token.encode()))
            after, token_digest = str(token["k"]), str(token["f"])
            if "\x00" in after:  # never in our ids; PostgreSQL text cannot hold it
                raise ValueError("NUL in page token")
        except (ValueError, KeyError, TypeError):
            after = None
            v.add("page_token", "is not a token returned by this method")
        else:
            v.check(
                token_digest == digest,
                "page_token",
                "was issued for different filters; start again without a token",
            )
    return PageRequest(size=max(size, 1), after=after, filters_digest=digest)


def next_token(page: PageRequest, last_key: str | None, has_more: bool) -> str:
    if not has_more or last_key is None:
        return ""
    raw = json.dumps({"k": last_key, "f": page.filters_digest}).encode()
    return base64.urlsafe_b64encode(raw).decode()
