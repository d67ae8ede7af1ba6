"""Assets and code pools through a real server: create, read, list, and AddCodes counts."""

import grpc
import pytest
from rewards.v1 import catalog_pb2

from tests import factories as f
from tests.conftest import new_program
from tests.helpers import Api, expect_failure


def create_asset(api: Api, request_id: str = "", **fields) -> catalog_pb2.Asset:
    return api.catalog.CreateAsset(
        catalog_pb2.CreateAssetRequest(asset=catalog_pb2.Asset(**fields), request_id=request_id)
    )


def all_assets(api: Api, page_size: int = 1000) -> list[catalog_pb2.Asset]:
    found, token = [], ""
    while True:
        page = api.catalog.ListAssets(
            catalog_pb2.ListAssetsRequest(page_size=page_size, page_token=token)
        )
        found.extend(page.assets)
        token = page.next_page_token
        if not token:
            return found


def all_pools(api: Api, page_size: int = 1000) -> list[catalog_pb2.CodePool]:
    found, token = [], ""
    while True:
        page = api.catalog.ListCodePools(
            catalog_pb2.ListCodePoolsRequest(page_size=page_size, page_token=token)
        )
        found.extend(page.code_pools)
        token = page.next_page_token
        if not token:
            return found


def new_pool(api: Api, name: str = "pool", description: str = "") -> catalog_pb2.CodePool:
    return api.catalog.CreateCodePool(
        catalog_pb2.CreateCodePoolRequest(
            code_pool=catalog_pb2.CodePool(name=name, description=description)
        )
    )


def add(api: Api, pool_id: str, codes: list[str]) -> catalog_pb2.AddCodesResponse:
    return api.catalog.AddCodes(catalog_pb2.AddCodesRequest(code_pool_id=pool_id, codes=codes))


def get_pool(api: Api, pool_id: str) -> catalog_pb2.CodePool:
    return api.catalog.GetCodePool(catalog_pb2.GetCodePoolRequest(id=pool_id))


def counts(pool: catalog_pb2.CodePool) -> tuple[int, int, int]:
    return pool.total_count, pool.available_count, pool.issued_count


# Assets


def test_an_asset_round_trips(admin):
    made = create_asset(admin, code="POINTS", name="Loyalty points", scale=2)
    assert made.id.startswith("ast_")
    assert (made.code, made.name, made.scale) == ("POINTS", "Loyalty points", 2)
    assert made.created_at.seconds > 0
    assert admin.catalog.GetAsset(catalog_pb2.GetAssetRequest(id=made.id)) == made
    assert all_assets(admin) == [made]


@pytest.mark.parametrize(("code", "scale"), [("A", 0), ("MILES_2025", 8), ("X" * 32, 3)])
def test_asset_codes_and_scales_at_their_limits(admin, code, scale):
    made = create_asset(admin, code=code, name="n", scale=scale)
    assert (made.code, made.scale) == (code, scale)


def test_a_duplicate_asset_code_is_already_exists(admin):
    first = create_asset(admin, code="POINTS", name="Points", scale=2)
    failure = expect_failure(create_asset, admin, code="POINTS", name="Other", scale=0)
    assert failure.code == grpc.StatusCode.ALREADY_EXISTS
    assert failure.reason == "ASSET_EXISTS"
    assert failure.metadata == {"code": "POINTS"}
    assert all_assets(admin) == [first]


def test_asset_codes_are_per_program(admin, api_for):
    other = new_program("assets")
    other_api = api_for(other.program_id, "admin")
    mine = create_asset(admin, code="POINTS", name="Points", scale=2)
    theirs = create_asset(other_api, code="POINTS", name="Points", scale=2)
    assert mine.id != theirs.id
    assert all_assets(admin) == [mine]
    assert all_assets(other_api) == [theirs]


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"code": "points"}, {"asset.code"}),
        ({"code": ""}, {"asset.code"}),
        ({"code": "1POINTS"}, {"asset.code"}),
        ({"code": "PO INTS"}, {"asset.code"}),
        ({"code": "P-1"}, {"asset.code"}),
        ({"code": "X" * 33}, {"asset.code"}),
        ({"scale": -1}, {"asset.scale"}),
        ({"scale": 9}, {"asset.scale"}),
        ({"name": ""}, {"asset.name"}),
        ({"name": "n" * 256}, {"asset.name"}),
        ({"code": "bad", "name": "", "scale": 99}, {"asset.code", "asset.name", "asset.scale"}),
    ],
    ids=[
        "lowercase",
        "empty-code",
        "leading-digit",
        "space",
        "dash",
        "33-chars",
        "negative-scale",
        "scale-9",
        "empty-name",
        "long-name",
        "all-three",
    ],
)
def test_bad_asset_fields_are_named(admin, fields, bad):
    sent = {"code": "POINTS", "name": "Points", "scale": 2, **fields}
    failure = expect_failure(create_asset, admin, **sent)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == bad
    assert all_assets(admin) == []


def test_create_asset_with_a_request_id_twice_returns_the_same_asset(admin):
    first = create_asset(admin, request_id="asset-1", code="POINTS", name="Points", scale=2)
    again = create_asset(admin, request_id="asset-1", code="POINTS", name="Points", scale=2)
    assert again == first
    assert all_assets(admin) == [first]


def test_a_missing_asset_is_not_found(admin):
    failure = expect_failure(admin.catalog.GetAsset, catalog_pb2.GetAssetRequest(id="ast_nope"))
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "ASSET_NOT_FOUND"


def test_assets_list_in_pages_oldest_first(admin):
    made = [create_asset(admin, code=f"A{i}", name=f"a{i}", scale=i % 9).id for i in range(7)]
    first = admin.catalog.ListAssets(catalog_pb2.ListAssetsRequest(page_size=3))
    assert [a.id for a in first.assets] == made[:3] and first.next_page_token
    assert [a.id for a in all_assets(admin, page_size=3)] == made
    failure = expect_failure(admin.catalog.ListAssets, catalog_pb2.ListAssetsRequest(page_size=-1))
    assert set(failure.violations) == {"page_size"}


# Code pools


def test_a_code_pool_starts_empty_and_round_trips(admin):
    made = new_pool(admin, "Spring codes", "For the spring campaign")
    assert made.id.startswith("pool_")
    assert (made.name, made.description) == ("Spring codes", "For the spring campaign")
    assert counts(made) == (0, 0, 0)
    assert made.created_at.seconds > 0
    assert get_pool(admin, made.id) == made
    assert all_pools(admin) == [made]


@pytest.mark.parametrize(
    ("name", "description", "bad"),
    [
        ("", "", {"code_pool.name"}),
        ("n" * 256, "", {"code_pool.name"}),
        ("ok", "d" * 1001, {"code_pool.description"}),
        ("", "d" * 1001, {"code_pool.name", "code_pool.description"}),
    ],
)
def test_bad_pool_fields_are_named(admin, name, description, bad):
    failure = expect_failure(new_pool, admin, name, description)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == bad
    assert all_pools(admin) == []


def test_create_pool_with_a_request_id_twice_returns_the_same_pool(admin):
    request = catalog_pb2.CreateCodePoolRequest(
        code_pool=catalog_pb2.CodePool(name="p"), request_id="pool-1"
    )
    first = admin.catalog.CreateCodePool(request)
    assert admin.catalog.CreateCodePool(request) == first
    assert all_pools(admin) == [first]


def test_pools_list_in_pages(admin):
    made = [new_pool(admin, f"p{i}").id for i in range(5)]
    assert [p.id for p in all_pools(admin, page_size=2)] == made


def test_add_codes_counts_duplicates_in_the_batch_and_in_the_pool(admin):
    pool = new_pool(admin)
    first = add(admin, pool.id, ["A", "B", "A", "C", "B", "A"])
    assert (first.added_count, first.duplicate_count) == (3, 3)
    assert counts(first.code_pool) == (3, 3, 0)
    assert first.code_pool.id == pool.id

    second = add(admin, pool.id, ["C", "D", "D", "E", "A"])
    assert (second.added_count, second.duplicate_count) == (2, 3)
    assert counts(second.code_pool) == (5, 5, 0)

    all_known = add(admin, pool.id, ["A", "B", "C", "D", "E"])
    assert (all_known.added_count, all_known.duplicate_count) == (0, 5)
    assert counts(get_pool(admin, pool.id)) == (5, 5, 0)


def test_codes_are_case_sensitive_and_per_pool(admin):
    one, two = new_pool(admin, "one"), new_pool(admin, "two")
    assert add(admin, one.id, ["abc", "ABC"]).added_count == 2
    shared = add(admin, two.id, ["abc", "xyz"])
    assert (shared.added_count, shared.duplicate_count) == (2, 0)
    assert counts(get_pool(admin, one.id)) == (2, 2, 0)
    assert counts(get_pool(admin, two.id)) == (2, 2, 0)


def test_add_codes_takes_10000_codes_in_one_call(admin):
    pool = new_pool(admin)
    codes = [f"CODE-{i:05}" for i in range(10_000)]
    out = add(admin, pool.id, codes)
    assert (out.added_count, out.duplicate_count) == (10_000, 0)
    assert counts(out.code_pool) == (10_000, 10_000, 0)
    again = add(admin, pool.id, [*codes[:5000], "NEW-1"])
    assert (again.added_count, again.duplicate_count) == (1, 5000)
    assert counts(get_pool(admin, pool.id)) == (10_001, 10_001, 0)


def test_add_codes_refuses_more_than_10000_codes(admin):
    pool = new_pool(admin)
    failure = expect_failure(add, admin, pool.id, [f"C{i}" for i in range(10_001)])
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"codes"}
    assert "10000" in failure.violations["codes"]
    assert counts(get_pool(admin, pool.id)) == (0, 0, 0)


def test_add_codes_refuses_an_empty_call(admin):
    pool = new_pool(admin)
    failure = expect_failure(add, admin, pool.id, [])
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"codes"}


def test_add_codes_names_every_bad_code_and_adds_none(admin):
    pool = new_pool(admin)
    failure = expect_failure(add, admin, pool.id, ["GOOD", "", "has space", "G2", "x" * 129])
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"codes[1]", "codes[2]", "codes[4]"}
    assert counts(get_pool(admin, pool.id)) == (0, 0, 0)
    assert add(admin, pool.id, ["x" * 128]).added_count == 1


def test_an_unknown_pool_is_not_found(admin):
    failure = expect_failure(add, admin, "pool_nope", ["A"])
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "CODE_POOL_NOT_FOUND"
    failure = expect_failure(
        admin.catalog.GetCodePool, catalog_pb2.GetCodePoolRequest(id="pool_nope")
    )
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.reason == "CODE_POOL_NOT_FOUND"


def test_pool_stats_follow_issued_codes(admin):
    pool = new_pool(admin)
    add(admin, pool.id, ["A", "B", "C"])
    reward = f.reward(admin, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id))
    user = f.participant(admin)
    issued = f.issue(admin, reward.id, user.id).issuance
    assert issued.coupon_code in {"A", "B", "C"}
    assert counts(get_pool(admin, pool.id)) == (3, 2, 1)
    # An issued code is still in the pool: adding it again is a duplicate.
    again = add(admin, pool.id, [issued.coupon_code, "D"])
    assert (again.added_count, again.duplicate_count) == (1, 1)
    assert counts(again.code_pool) == (4, 3, 1)
