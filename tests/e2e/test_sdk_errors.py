"""Every typed exception the catalog can raise, from a real server's google.rpc.Status."""

import pickle

import grpc
import pytest
import rewards_client as rc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from rewards.v1 import catalog_pb2, common_pb2
from rewards_client import RewardsClient

from tests.conftest import new_key, new_program

C = grpc.StatusCode

# SPEC section 4: code -> reasons.
SPEC_REASONS = {
    C.INVALID_ARGUMENT: ["VALIDATION_FAILED", "IMMUTABLE_FIELD"],
    C.UNAUTHENTICATED: ["MISSING_CREDENTIALS", "INVALID_CREDENTIALS"],
    C.PERMISSION_DENIED: ["INSUFFICIENT_SCOPE"],
    C.NOT_FOUND: [
        "REWARD_NOT_FOUND",
        "PARTICIPANT_NOT_FOUND",
        "ISSUANCE_NOT_FOUND",
        "CODE_POOL_NOT_FOUND",
        "ASSET_NOT_FOUND",
    ],
    C.ALREADY_EXISTS: ["IDEMPOTENCY_KEY_REUSED", "PARTICIPANT_EXISTS", "ASSET_EXISTS"],
    C.ABORTED: ["ETAG_MISMATCH"],
    C.FAILED_PRECONDITION: [
        "REWARD_NOT_ACTIVE",
        "REWARD_NOT_AVAILABLE",
        "NOT_ELIGIBLE",
        "OUT_OF_STOCK",
        "PARTICIPANT_LIMIT_REACHED",
        "CODE_POOL_EXHAUSTED",
        "INSUFFICIENT_BALANCE",
        "AMBIGUOUS_PARTICIPANT",
        "INVALID_STATE_TRANSITION",
    ],
    C.INTERNAL: ["INTERNAL"],
}


@pytest.fixture
def program():
    return new_program("sdk-errors")


@pytest.fixture
def client(target, program):
    with RewardsClient(target, program.api_key) as c:
        yield c


def product(**fields) -> catalog_pb2.Reward:
    fields.setdefault("name", "Mug")
    return catalog_pb2.Reward(
        type=common_pb2.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="sku-1"),
        **fields,
    )


def raised(exc_type, call, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        call(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("code", "reason"), [(c, r) for c, reasons in SPEC_REASONS.items() for r in reasons]
)
def test_every_spec_reason_has_a_class_under_its_code_class(code, reason):
    cls = rc.error_class(code, reason)
    code_cls = rc.error_class(code)
    assert reason == cls.REASON and code == cls.CODE
    assert issubclass(cls, code_cls) and issubclass(cls, rc.RewardsError)
    camel = "".join(part.title() for part in reason.split("_"))
    assert getattr(rc, camel) is cls


def test_validation_failed_carries_every_field_violation(client):
    error = raised(
        rc.ValidationFailed,
        client.create_reward,
        name="",
        type=common_pb2.REWARD_TYPE_NON_UNIQUE_COUPON,
        description="x" * 1001,
        non_unique_coupon=catalog_pb2.NonUniqueCouponConfig(code="", discount_value="-1"),
    )
    assert isinstance(error, rc.InvalidArgument)
    assert error.code == C.INVALID_ARGUMENT
    assert error.reason == "VALIDATION_FAILED"
    assert error.domain == "rewards.v1"
    assert error.message
    assert set(error.violations) == {
        "reward.name",
        "reward.description",
        "reward.non_unique_coupon.code",
        "reward.non_unique_coupon.discount_type",
        "reward.non_unique_coupon.discount_value",
    }
    assert all(isinstance(v, rc.FieldViolation) and v.description for v in error.field_violations)
    assert "reward.name" in str(error)


def test_bad_page_size_is_a_validation_error(client):
    error = raised(rc.ValidationFailed, client.list_rewards, page_size=-1)
    assert "page_size" in error.violations


def test_immutable_field(client):
    reward = client.create_reward(product())
    error = raised(
        rc.ImmutableField,
        client.update_reward,
        id=reward.id,
        type=common_pb2.REWARD_TYPE_COMPETITION_ENTRY,
        competition_entry=catalog_pb2.CompetitionEntryConfig(competition_id="c1"),
    )
    assert error.code == C.INVALID_ARGUMENT
    assert "type" in error.metadata["fields"]


def test_etag_mismatch(client):
    reward = client.create_reward(product())
    client.update_reward(id=reward.id, etag=reward.etag, name="First")
    error = raised(rc.EtagMismatch, client.update_reward, id=reward.id, etag=reward.etag, name="2")
    assert isinstance(error, rc.Aborted) and error.code == C.ABORTED
    stale = raised(rc.EtagMismatch, client.delete_reward, reward.id, etag=reward.etag)
    assert stale.reason == "ETAG_MISMATCH"


def test_invalid_state_transition(client):
    draft = client.create_reward(product(status=common_pb2.REWARD_STATUS_DRAFT))
    error = raised(
        rc.InvalidStateTransition,
        client.update_reward,
        id=draft.id,
        status=common_pb2.REWARD_STATUS_INACTIVE,
    )
    assert isinstance(error, rc.FailedPrecondition)
    assert error.metadata == {"from": "REWARD_STATUS_DRAFT", "to": "REWARD_STATUS_INACTIVE"}
    client.delete_reward(draft.id)
    raised(rc.InvalidStateTransition, client.update_reward, id=draft.id, name="Again")


def test_asset_exists(client):
    client.create_asset(code="POINTS", name="Points", scale=2)
    error = raised(rc.AssetExists, client.create_asset, code="POINTS", name="Other", scale=0)
    assert isinstance(error, rc.AlreadyExists) and error.code == C.ALREADY_EXISTS


def test_not_found_reasons(client):
    assert isinstance(raised(rc.RewardNotFound, client.get_reward, "rew_missing"), rc.NotFound)
    raised(rc.RewardNotFound, client.delete_reward, "rew_missing")
    raised(rc.RewardNotFound, client.update_reward, id="rew_missing", name="x")
    raised(rc.AssetNotFound, client.get_asset, "ast_missing")
    raised(rc.CodePoolNotFound, client.get_code_pool, "pool_missing")
    raised(rc.CodePoolNotFound, client.add_codes, "pool_missing", ["A"])


def test_config_naming_a_missing_pool_is_a_field_violation(client):
    error = raised(
        rc.ValidationFailed,
        client.create_reward,
        name="Coupon",
        type=common_pb2.REWARD_TYPE_UNIQUE_COUPON,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id="pool_missing"),
    )
    assert list(error.violations) == ["reward.unique_coupon.code_pool_id"]


def test_another_programs_reward_is_not_found(client, target):
    reward = client.create_reward(product())
    with RewardsClient(target, new_program("other").api_key) as other:
        raised(rc.RewardNotFound, other.get_reward, reward.id)


def test_missing_credentials(target):
    with RewardsClient(target, None) as anonymous:
        error = raised(rc.MissingCredentials, anonymous.list_rewards)
    assert isinstance(error, rc.Unauthenticated) and error.code == C.UNAUTHENTICATED


def test_invalid_credentials(target):
    with RewardsClient(target, "rk_not-a-real-key") as stranger:
        error = raised(rc.InvalidCredentials, stranger.get_reward, "rew_x")
    assert isinstance(error, rc.Unauthenticated)


@pytest.mark.parametrize("role", ["reader", "issuer"])
def test_insufficient_scope(target, program, role):
    with RewardsClient(target, new_key(program.program_id, role).api_key) as weak:
        error = raised(rc.InsufficientScope, weak.create_reward, product())
        raised(rc.InsufficientScope, weak.create_asset, code="POINTS", name="P", scale=0)
    assert isinstance(error, rc.PermissionDenied) and error.code == C.PERMISSION_DENIED


def test_errors_chain_the_grpc_error(client):
    error = raised(rc.RewardNotFound, client.get_reward, "rew_missing")
    assert isinstance(error.__cause__, grpc.RpcError)


def test_errors_survive_pickling(client):
    error = raised(rc.ValidationFailed, client.create_reward, name="")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is rc.ValidationFailed
    assert (copy.code, copy.reason, copy.message, copy.metadata, copy.field_violations) == (
        error.code,
        error.reason,
        error.message,
        error.metadata,
        error.field_violations,
    )


def _status(code: int, reason: str, message: str = "m") -> status_pb2.Status:
    holder = any_pb2.Any()
    holder.Pack(
        error_details_pb2.ErrorInfo(reason=reason, domain="rewards.v1", metadata={"a": "1"})
    )
    return status_pb2.Status(code=code, message=message, details=[holder])


def test_an_unknown_reason_maps_to_its_code_class():
    error = rc.from_status(_status(code_pb2.NOT_FOUND, "BRAND_NEW_REASON"))
    assert type(error) is rc.NotFound
    assert (error.reason, error.metadata) == ("BRAND_NEW_REASON", {"a": "1"})


def test_a_known_reason_under_another_code_maps_to_that_code_class():
    assert type(rc.from_status(_status(code_pb2.ABORTED, "OUT_OF_STOCK"))) is rc.Aborted


def test_a_code_without_a_class_maps_to_the_base_class():
    error = rc.from_status(_status(code_pb2.DATA_LOSS, ""))
    assert type(error) is rc.RewardsError and error.code == C.DATA_LOSS


def test_a_status_without_details_still_maps_to_its_code(target):
    # Health is not ours: an unknown service gets a plain UNIMPLEMENTED from gRPC itself.
    with RewardsClient(target, None) as c:
        call = c.channel.unary_unary("/rewards.v1.Nothing/Here")
        try:
            call(b"", timeout=5)
        except grpc.RpcError as failure:
            error = rc.from_rpc_error(failure)
    assert type(error) is rc.Unimplemented and error.reason == ""
