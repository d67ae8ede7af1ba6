"""Authentication and authorisation through a real server: keys, roles, tenancy, and what
needs no key at all."""

import subprocess
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from rewards.v1 import catalog_pb2, catalog_pb2_grpc, participants_pb2

from rewards_service.services import programs
from rewards_service.store.db import database, session
from rewards_service.store.models import ApiKey
from tests import factories as f
from tests.conftest import new_key, new_program
from tests.helpers import expect_failure, make_api

PRODUCT = catalog_pb2.Reward(
    name="Mug",
    type=2,  # REWARD_TYPE_PRODUCT
    product=catalog_pb2.ProductConfig(product_id="mug"),
)


def list_rewards(api):
    return api.catalog.ListRewards(catalog_pb2.ListRewardsRequest())


def write_calls(api, reward_id: str = "rew_x", pool_id: str = "pool_x"):
    """Every catalog RPC an admin needs, with requests that would otherwise be valid enough."""
    c = api.catalog
    return {
        "CreateReward": (c.CreateReward, catalog_pb2.CreateRewardRequest(reward=PRODUCT)),
        "UpdateReward": (
            c.UpdateReward,
            catalog_pb2.UpdateRewardRequest(
                reward=catalog_pb2.Reward(id=reward_id, name="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            ),
        ),
        "DeleteReward": (c.DeleteReward, catalog_pb2.DeleteRewardRequest(id=reward_id)),
        "CreateAsset": (
            c.CreateAsset,
            catalog_pb2.CreateAssetRequest(asset=catalog_pb2.Asset(code="X", name="x", scale=0)),
        ),
        "CreateCodePool": (
            c.CreateCodePool,
            catalog_pb2.CreateCodePoolRequest(code_pool=catalog_pb2.CodePool(name="p")),
        ),
        "AddCodes": (c.AddCodes, catalog_pb2.AddCodesRequest(code_pool_id=pool_id, codes=["A"])),
    }


# Missing, unknown and revoked keys


def test_no_key_is_missing_credentials(channel):
    stub = catalog_pb2_grpc.RewardCatalogStub(channel)
    for call, request in [
        (stub.ListRewards, catalog_pb2.ListRewardsRequest()),
        (stub.GetReward, catalog_pb2.GetRewardRequest(id="rew_missing")),
        (stub.CreateReward, catalog_pb2.CreateRewardRequest()),
    ]:
        failure = expect_failure(call, request)
        assert failure.code == grpc.StatusCode.UNAUTHENTICATED
        assert failure.reason == "MISSING_CREDENTIALS"
        assert failure.domain == "rewards.v1"
        assert "authorization: Bearer" in failure.message


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", "Bearer "),),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "rwk_no_scheme"),),
        (("x-api-key", ""),),
        (("x-other", "rwk_whatever"),),
    ],
    ids=["empty-bearer", "basic", "no-scheme", "empty-x-api-key", "other-header"],
)
def test_a_key_in_the_wrong_shape_is_missing_credentials(channel, metadata):
    stub = catalog_pb2_grpc.RewardCatalogStub(channel)
    failure = expect_failure(stub.ListRewards, catalog_pb2.ListRewardsRequest(), metadata=metadata)
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "MISSING_CREDENTIALS"


def test_unknown_and_revoked_keys_get_the_same_answer(channel, admin):
    unknown = make_api(channel, admin.program_id, "rwk_" + "x" * 43)
    unknown_failure = expect_failure(list_rewards, unknown)
    assert unknown_failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert unknown_failure.reason == "INVALID_CREDENTIALS"

    issued = new_key(admin.program_id, "reader")
    reader = make_api(channel, admin.program_id, issued.api_key)
    list_rewards(reader)  # works, and is now remembered as valid
    with session():
        programs.revoke_key(issued.key_id)
    revoked_failure = expect_failure(list_rewards, reader)
    assert revoked_failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert revoked_failure.reason == "INVALID_CREDENTIALS"
    assert revoked_failure.message == unknown_failure.message
    assert revoked_failure.metadata == unknown_failure.metadata == {}
    # Other keys of the program are untouched.
    list_rewards(admin)


def test_a_revoked_admin_key_cannot_write(channel):
    issued = new_program("revoked")
    api = make_api(channel, issued.program_id, issued.api_key)
    f.asset(api)
    with session():
        programs.revoke_key(issued.key_id)
    failure = expect_failure(f.asset, api, "OTHER")
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "INVALID_CREDENTIALS"


def test_unauthenticated_comes_before_anything_else(channel):
    bad = make_api(channel, "prg_x", "rwk_not_a_key")
    for call, request in write_calls(bad).values():
        failure = expect_failure(call, request)
        assert failure.code == grpc.StatusCode.UNAUTHENTICATED, call


def test_the_x_api_key_header_works(channel, admin):
    via_header = make_api(channel, admin.program_id, admin.key, header="x-api-key")
    made = via_header.catalog.CreateReward(catalog_pb2.CreateRewardRequest(reward=PRODUCT))
    assert [r.id for r in list_rewards(admin).rewards] == [made.id]


def test_the_bearer_scheme_is_case_insensitive(channel, admin):
    stub = catalog_pb2_grpc.RewardCatalogStub(channel)
    f.reward(admin)
    got = stub.ListRewards(
        catalog_pb2.ListRewardsRequest(), metadata=(("authorization", f"bearer {admin.key}"),)
    )
    assert len(got.rewards) == 1


# Roles


@pytest.mark.parametrize("role", ["reader", "issuer"])
def test_readers_and_issuers_cannot_change_the_catalog(admin, api_for, role):
    reward = f.reward(admin)
    pool = f.code_pool(admin, [])
    weak = api_for(admin.program_id, role)
    for method, (call, request) in write_calls(weak, reward.id, pool.id).items():
        failure = expect_failure(call, request)
        assert failure.code == grpc.StatusCode.PERMISSION_DENIED, method
        assert failure.reason == "INSUFFICIENT_SCOPE", method
        assert failure.metadata == {"role": role, "required_role": "admin"}, method
        assert method in failure.message
    # Nothing changed.
    assert [r.id for r in list_rewards(admin).rewards] == [reward.id]
    assert admin.catalog.GetReward(catalog_pb2.GetRewardRequest(id=reward.id)) == reward
    assert f.asset(admin, "POINTS").code == "POINTS"  # the refused CreateAsset made nothing


def test_permission_is_checked_before_validation(admin, api_for):
    reader = api_for(admin.program_id, "reader")
    failure = expect_failure(reader.catalog.CreateReward, catalog_pb2.CreateRewardRequest())
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert failure.violations == {}


@pytest.mark.parametrize("role", ["reader", "issuer", "admin"])
def test_every_role_can_read(admin, api_for, role):
    asset = f.asset(admin)
    pool = f.code_pool(admin, ["A"])
    reward = f.reward(admin)
    api = api_for(admin.program_id, role)
    c = api.catalog
    assert c.GetReward(catalog_pb2.GetRewardRequest(id=reward.id)) == reward
    assert [r.id for r in list_rewards(api).rewards] == [reward.id]
    assert c.GetAsset(catalog_pb2.GetAssetRequest(id=asset.id)) == asset
    assert [a.id for a in c.ListAssets(catalog_pb2.ListAssetsRequest()).assets] == [asset.id]
    assert c.GetCodePool(catalog_pb2.GetCodePoolRequest(id=pool.id)).total_count == 1
    pools = c.ListCodePools(catalog_pb2.ListCodePoolsRequest()).code_pools
    assert [p.id for p in pools] == [pool.id]


def test_an_issuer_may_upsert_participants_and_a_reader_may_not(admin, api_for):
    request = participants_pb2.UpsertParticipantRequest(
        participant=participants_pb2.Participant(external_id="user-1")
    )
    issuer = api_for(admin.program_id, "issuer")
    assert issuer.participants.UpsertParticipant(request).external_id == "user-1"
    reader = api_for(admin.program_id, "reader")
    failure = expect_failure(reader.participants.UpsertParticipant, request)
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert failure.reason == "INSUFFICIENT_SCOPE"
    assert failure.metadata == {"role": "reader", "required_role": "issuer"}


# Tenancy


@pytest.fixture
def program_b(channel):
    issued = new_program("b")
    api = make_api(channel, issued.program_id, issued.api_key)
    return {
        "api": api,
        "reward": f.reward(api),
        "asset": f.asset(api),
        "pool": f.code_pool(api, ["B1"]),
    }


def test_another_programs_resources_are_not_found(admin, program_b):
    own_missing = {
        "reward": expect_failure(
            admin.catalog.GetReward, catalog_pb2.GetRewardRequest(id="rew_doesnotexist")
        ),
        "asset": expect_failure(
            admin.catalog.GetAsset, catalog_pb2.GetAssetRequest(id="ast_doesnotexist")
        ),
        "pool": expect_failure(
            admin.catalog.GetCodePool, catalog_pb2.GetCodePoolRequest(id="pool_doesnotexist")
        ),
    }
    theirs = {
        "reward": expect_failure(
            admin.catalog.GetReward, catalog_pb2.GetRewardRequest(id=program_b["reward"].id)
        ),
        "asset": expect_failure(
            admin.catalog.GetAsset, catalog_pb2.GetAssetRequest(id=program_b["asset"].id)
        ),
        "pool": expect_failure(
            admin.catalog.GetCodePool, catalog_pb2.GetCodePoolRequest(id=program_b["pool"].id)
        ),
    }
    expected_reason = {
        "reward": "REWARD_NOT_FOUND",
        "asset": "ASSET_NOT_FOUND",
        "pool": "CODE_POOL_NOT_FOUND",
    }
    for kind, failure in theirs.items():
        assert failure.code == grpc.StatusCode.NOT_FOUND, kind
        assert failure.reason == expected_reason[kind]
        # Indistinguishable from an id that exists nowhere.
        missing = own_missing[kind]
        assert (missing.code, missing.reason) == (failure.code, failure.reason)
        assert failure.message.replace(program_b[kind].id, "ID") == missing.message.replace(
            missing.metadata["id"], "ID"
        )


def test_another_programs_resources_cannot_be_changed(admin, program_b):
    for method, (call, request) in write_calls(
        admin, program_b["reward"].id, program_b["pool"].id
    ).items():
        if not method.startswith(("Update", "Delete", "AddCodes")):
            continue
        failure = expect_failure(call, request)
        assert failure.code == grpc.StatusCode.NOT_FOUND, method
    b = program_b["api"]
    assert (
        b.catalog.GetReward(catalog_pb2.GetRewardRequest(id=program_b["reward"].id))
        == (program_b["reward"])
    )
    pool = b.catalog.GetCodePool(catalog_pb2.GetCodePoolRequest(id=program_b["pool"].id))
    assert pool.total_count == 1


def test_lists_hold_only_the_callers_program(admin, program_b):
    assert list(list_rewards(admin).rewards) == []
    assert list(admin.catalog.ListAssets(catalog_pb2.ListAssetsRequest()).assets) == []
    assert list(admin.catalog.ListCodePools(catalog_pb2.ListCodePoolsRequest()).code_pools) == []
    assert [r.id for r in list_rewards(program_b["api"]).rewards] == [program_b["reward"].id]


def test_a_reward_cannot_use_another_programs_asset_or_pool(admin, program_b):
    failure = expect_failure(
        f.reward,
        admin,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=program_b["pool"].id),
        cost_asset_id=program_b["asset"].id,
        unit_cost="1",
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"reward.unique_coupon.code_pool_id", "reward.cost_asset_id"}


# What needs no key


def test_health_needs_no_key(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "rewards.v1.RewardCatalog", "rewards.v1.RewardIssuance"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_needs_no_key(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="rewards.v1.Reward"),
    ]
    listed, described = list(stub.ServerReflectionInfo(iter(requests)))
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "rewards.v1.RewardCatalog",
        "rewards.v1.RewardIssuance",
        "rewards.v1.Participants",
        "grpc.health.v1.Health",
    } <= names
    assert described.file_descriptor_response.file_descriptor_proto


# Secrets at rest


def test_the_database_holds_only_hashes_of_keys(admin, database_url):
    keys = {admin.key: None}
    for role in ("reader", "issuer", "admin"):
        issued = new_key(admin.program_id, role)
        keys[issued.api_key] = issued.key_id
    with session():
        rows = list(ApiKey.select().where(ApiKey.program == admin.program_id))
        table = ApiKey._meta.table_name
        raw = database.execute_sql(f"SELECT * FROM {table}").fetchall()
    assert len(rows) == 4
    for row in rows:
        assert len(row.key_hash) == 64 and int(row.key_hash, 16) >= 0
    for secret in keys:
        assert secret.startswith("rwk_") and len(secret) > 30
        for values in raw:
            assert not any(secret in str(value) for value in values)
            assert not any(secret[4:20] in str(value) for value in values)
    if database_url.startswith("sqlite:///"):
        # Nor does any page of the SQLite file or its write-ahead log.
        path = Path(database_url.removeprefix("sqlite:///"))
        for part in (path, path.with_name(path.name + "-wal")):
            if part.exists():
                # Read by another process: closing a descriptor of the file in this one would
                # drop the SQLite locks this process's connections hold on it.
                data = subprocess.run(["cat", str(part)], capture_output=True, check=True).stdout
                assert not any(secret.encode() in data for secret in keys), part
