"""AIP-158 page parsing: sizes, opaque tokens bound to their filters, the end of the list."""

import base64
import hashlib
import hmac
import json
import re

import pytest

from rewards_service.domain.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PageRequest,
    filters_digest,
    next_token,
    parse_page,
)
from rewards_service.domain.validation import Violations

SECRET = b"s" * 32
FILTERS = {"status": 2, "type": 0, "category": "food", "show_archived": False}


def parse(page_size=0, page_token="", filters=FILTERS) -> tuple[PageRequest, Violations]:
    v = Violations()
    return parse_page(v, page_size, page_token, filters, secret=SECRET), v


def fields(v: Violations) -> list[str]:
    return [item.field for item in v.items]


def test_the_spec_numbers():
    assert (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) == (50, 1000)


@pytest.mark.parametrize(
    ("asked", "size"), [(0, 50), (1, 1), (40, 40), (1000, 1000), (1001, 1000), (2**31 - 1, 1000)]
)
def test_page_size_defaults_and_clamps(asked, size):
    page, v = parse(page_size=asked)
    assert not v
    assert page.size == size
    assert page.after is None


@pytest.mark.parametrize("asked", [-1, -50, -(2**31)])
def test_a_negative_page_size_is_invalid(asked):
    _, v = parse(page_size=asked)
    assert fields(v) == ["page_size"]


def test_a_token_resumes_after_the_last_key_with_the_same_filters():
    first, _ = parse(page_size=40)
    token = next_token(first, "rew_0042", has_more=True)
    assert token
    second, v = parse(page_size=40, page_token=token)
    assert not v
    assert second.after == "rew_0042"
    assert second.filters_digest == first.filters_digest


def test_a_token_does_not_depend_on_the_page_size():
    first, _ = parse(page_size=10)
    token = next_token(first, "rew_1", has_more=True)
    second, v = parse(page_size=500, page_token=token)
    assert not v and second.after == "rew_1" and second.size == 500


def test_tokens_are_url_safe_and_opaque():
    page, _ = parse()
    token = next_token(page, "rew_01m83yjbypbgkrj7dx4jg01kf5+/?", has_more=True)
    assert re.fullmatch(r"[A-Za-z0-9_\-=]+", token)
    assert "rew_" not in token


def test_no_token_at_the_end():
    page, _ = parse()
    assert next_token(page, "rew_9", has_more=False) == ""
    assert next_token(page, None, has_more=True) == ""
    assert next_token(page, None, has_more=False) == ""


@pytest.mark.parametrize(
    "changed",
    [
        {**FILTERS, "status": 3},
        {**FILTERS, "category": "drinks"},
        {**FILTERS, "show_archived": True},
        {**FILTERS, "type": 1},
        {},
    ],
)
def test_a_token_used_with_other_filters_is_invalid(changed):
    first, _ = parse()
    token = next_token(first, "rew_1", has_more=True)
    _, v = parse(page_token=token, filters=changed)
    assert fields(v) == ["page_token"]
    assert "different filters" in v.items[0].description


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "!!!!",
        "abc",  # bad padding
        _b64(b"not json"),
        _b64(b"\xff\xfe"),
        _b64(json.dumps([1, 2]).encode()),
        _b64(json.dumps("k").encode()),
        _b64(json.dumps(7).encode()),
        _b64(json.dumps({"k": "rew_1"}).encode()),
        _b64(json.dumps({"f": "x"}).encode()),
    ],
)
def test_a_forged_or_garbled_token_is_invalid(token):
    _, v = parse(page_token=token)
    assert fields(v) == ["page_token"]


def test_a_token_with_a_forged_digest_is_invalid():
    forged = _b64(json.dumps({"k": "rew_1", "f": "0" * 16}).encode())
    _, v = parse(page_token=forged)
    assert fields(v) == ["page_token"]


def test_bad_size_and_bad_token_are_both_reported():
    _, v = parse(page_size=-1, page_token="garbage")
    assert sorted(fields(v)) == ["page_size", "page_token"]


def test_the_filters_digest_ignores_key_order_but_not_values():
    a = {"status": 1, "category": "x"}
    b = {"category": "x", "status": 1}
    assert filters_digest(a) == filters_digest(b)
    assert filters_digest(a) != filters_digest({"status": 2, "category": "x"})
    assert filters_digest(a) != filters_digest({"status": 1, "category": "y"})
    assert filters_digest({}) != filters_digest(a)


def _signed(payload: bytes, secret: bytes = SECRET) -> str:
    signature = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(signature + payload).decode()


HOSTILE_PAYLOADS = [
    b"[" * 100_000 + b"]" * 100_000,  # deep JSON: RecursionError in the parser
    json.dumps({"k": "\ud800", "f": filters_digest(FILTERS)}).encode(),  # lone surrogate
    json.dumps({"k": {"a": 1}, "f": filters_digest(FILTERS)}).encode(),
    json.dumps({"k": "x" * 100, "f": filters_digest(FILTERS)}).encode(),
    json.dumps({"k": "rew_\x00", "f": filters_digest(FILTERS)}).encode(),
]


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS)
def test_hostile_tokens_are_invalid_signed_or_not(payload):
    for token in (base64.urlsafe_b64encode(payload).decode(), _signed(payload)):
        _, v = parse(page_token=token)
        assert fields(v) == ["page_token"]


def test_a_token_signed_with_another_secret_is_invalid():
    payload = json.dumps({"k": "rew_1", "f": filters_digest(FILTERS)}).encode()
    assert not parse(page_token=_signed(payload))[1]
    _, v = parse(page_token=_signed(payload, b"t" * 32))
    assert fields(v) == ["page_token"]
    v = Violations()
    parse_page(v, 0, _signed(payload), FILTERS, secret=b"")
    assert fields(v) == ["page_token"]
