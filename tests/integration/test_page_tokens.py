"""Page tokens not made by the service are INVALID_ARGUMENT, never INTERNAL, and change
nothing; tokens the service made still page through."""

import base64
import json

import grpc
import pytest
from rewards.v1 import catalog_pb2

from rewards_service.domain.pagination import filters_digest
from tests import factories as f
from tests.helpers import expect_failure, make_api, spawn_server

DIGEST = filters_digest({})
HOSTILE = {
    "deep json": b"[" * 100_000 + b"]" * 100_000,
    "lone surrogate": b'{"k": "\\ud800", "f": "' + DIGEST.encode() + b'"}',
    "object key": json.dumps({"k": {"k": 1}, "f": DIGEST}).encode(),
    "unsigned but well formed": json.dumps({"k": "ast_0", "f": DIGEST}).encode(),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_page_token_is_invalid_argument(admin, case):
    token = base64.urlsafe_b64encode(HOSTILE[case]).decode()
    failure = expect_failure(
        admin.catalog.ListAssets, catalog_pb2.ListAssetsRequest(page_token=token)
    )
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_FAILED",
    )
    assert set(failure.violations) == {"page_token"}


def test_signed_tokens_page_through(admin):
    made = [f.asset(admin, code=f"A{i}").id for i in range(3)]
    seen, token = [], ""
    while True:
        page = admin.catalog.ListAssets(
            catalog_pb2.ListAssetsRequest(page_size=1, page_token=token)
        )
        seen += [a.id for a in page.assets]
        token = page.next_page_token
        if not token:
            break
    assert seen == made


def test_a_token_made_by_one_server_pages_on_another(store, admin):
    """Replicas share the signing secret through the database."""
    made = [f.asset(admin, code=f"B{i}").id for i in range(2)]
    first = admin.catalog.ListAssets(catalog_pb2.ListAssetsRequest(page_size=1))
    other = spawn_server(store)
    try:
        with grpc.insecure_channel(other.address) as channel:
            there = make_api(channel, admin.program_id, admin.key)
            second = there.catalog.ListAssets(
                catalog_pb2.ListAssetsRequest(page_size=1, page_token=first.next_page_token)
            )
    finally:
        assert other.stop() == 0
    assert [first.assets[0].id, second.assets[0].id] == made


def test_a_token_of_one_list_is_refused_by_another(admin):
    """Both lists have no filters: only the list the token came from tells them apart."""
    for code in ("C0", "C1"):
        f.asset(admin, code=code)
    f.code_pool(admin, ["ONE"])
    f.code_pool(admin, ["TWO"])
    token = admin.catalog.ListAssets(catalog_pb2.ListAssetsRequest(page_size=1)).next_page_token
    failure = expect_failure(
        admin.catalog.ListCodePools,
        catalog_pb2.ListCodePoolsRequest(page_size=1, page_token=token),
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"page_token"}
