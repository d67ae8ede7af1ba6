"""Program registries through real servers: custom fields and fulfillment statuses, created
idempotently, listed and deleted; IssueReward and UpdateFulfillment held to them where a
program defines them, free-form where it does not; a change made through one server process
holds at once on another sharing the database."""

import grpc
import pytest
from rewards.v1 import issuance_pb2, programs_pb2

from rewards_service.services import registries
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import expect_failure, make_api, spawn_server

FT = programs_pb2.CustomFieldType


def define_field(api, key: str, field_type: int, required: bool = False, **fields):
    return api.registry.CreateCustomField(
        programs_pb2.CreateCustomFieldRequest(
            custom_field=programs_pb2.CustomField(key=key, type=field_type, required=required),
            **fields,
        )
    )


def define_status(api, status: str, **fields):
    return api.registry.CreateFulfillmentStatus(
        programs_pb2.CreateFulfillmentStatusRequest(
            fulfillment_status=programs_pb2.FulfillmentStatus(status=status), **fields
        )
    )


def issue(api, reward_id: str, participant_id: str, **custom_fields):
    return f.issue(api, reward_id, participant_id, custom_fields=custom_fields)


def fulfil(api, issuance_id: str, status: str):
    return api.issuance.UpdateFulfillment(
        issuance_pb2.UpdateFulfillmentRequest(id=issuance_id, status=status)
    )


def test_a_program_without_a_registry_stays_free_form(admin):
    reward, user = f.reward(admin), f.participant(admin)
    issued = issue(admin, reward.id, user.id, anything="goes", count="many").issuance
    assert fulfil(admin, issued.id, "ANY STATUS").fulfillment_status == "ANY STATUS"


def test_statuses_hold_no_control_characters(admin):
    reward, user = f.reward(admin), f.participant(admin)
    issued = f.issue(admin, reward.id, user.id).issuance
    for refused, field in (
        (lambda: fulfil(admin, issued.id, "PACKED\nSHIPPED"), "status"),
        (lambda: define_status(admin, "LOST\tFOUND"), "fulfillment_status.status"),
        (
            lambda: f.issue(admin, reward.id, user.id, fulfillment_status="A\rB"),
            "fulfillment_status",
        ),
    ):
        failure = expect_failure(refused)
        assert (failure.code, list(failure.violations)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            [field],
        )
    assert f.get_issuance(admin, issued.id).fulfillment_history == []


def test_defined_custom_fields_are_enforced_on_issue(admin):
    reward, user = f.reward(admin), f.participant(admin)
    define_field(admin, "store", FT.CUSTOM_FIELD_TYPE_STRING, required=True)
    define_field(admin, "visits", FT.CUSTOM_FIELD_TYPE_INTEGER)
    define_field(admin, "delivery", FT.CUSTOM_FIELD_TYPE_DATE)
    ok = issue(admin, reward.id, user.id, store="Leeds", visits="3", delivery="2025-06-01")
    assert dict(ok.issuance.custom_fields) == {
        "store": "Leeds",
        "visits": "3",
        "delivery": "2025-06-01",
    }
    for fields, named in [
        ({"store": "Leeds", "colour": "red"}, "custom_fields[colour]"),
        ({"store": "Leeds", "visits": "three"}, "custom_fields[visits]"),
        ({"store": "Leeds", "delivery": "2025-02-30"}, "custom_fields[delivery]"),
        ({"visits": "3"}, "custom_fields[store]"),
    ]:
        failure = expect_failure(issue, admin, reward.id, user.id, **fields)
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert list(failure.violations) == [named]
    assert f.get_reward(admin, reward.id).redeemed_count == 1
    listed = admin.registry.ListCustomFields(programs_pb2.ListCustomFieldsRequest())
    assert [(c.key, c.type, c.required) for c in listed.custom_fields] == [
        ("store", FT.CUSTOM_FIELD_TYPE_STRING, True),
        ("visits", FT.CUSTOM_FIELD_TYPE_INTEGER, False),
        ("delivery", FT.CUSTOM_FIELD_TYPE_DATE, False),
    ]
    # Deleting every field makes the program free-form again.
    for field in listed.custom_fields:
        admin.registry.DeleteCustomField(programs_pb2.DeleteCustomFieldRequest(id=field.id))
    issue(admin, reward.id, user.id, colour="red")


def test_defined_fulfillment_statuses_are_enforced(admin):
    reward, user = f.reward(admin), f.participant(admin)
    define_status(admin, "BOOKED")
    shipped = define_status(admin, "SHIPPED")
    issued = f.issue(admin, reward.id, user.id, fulfillment_status="BOOKED").issuance
    assert fulfil(admin, issued.id, "SHIPPED").fulfillment_status == "SHIPPED"
    failure = expect_failure(fulfil, admin, issued.id, "LOST")
    assert (failure.code, list(failure.violations)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["status"],
    )
    failure = expect_failure(f.issue, admin, reward.id, user.id, fulfillment_status="LOST")
    assert list(failure.violations) == ["fulfillment_status"]
    assert len(f.get_issuance(admin, issued.id).fulfillment_history) == 2
    admin.registry.DeleteFulfillmentStatus(
        programs_pb2.DeleteFulfillmentStatusRequest(id=shipped.id)
    )
    assert expect_failure(fulfil, admin, issued.id, "SHIPPED").code == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    listed = admin.registry.ListFulfillmentStatuses(programs_pb2.ListFulfillmentStatusesRequest())
    assert [s.status for s in listed.fulfillment_statuses] == ["BOOKED"]


def test_creates_are_idempotent_and_keys_unique(admin):
    first = define_field(admin, "store", FT.CUSTOM_FIELD_TYPE_STRING, request_id="cf-1")
    assert define_field(admin, "store", FT.CUSTOM_FIELD_TYPE_STRING, request_id="cf-1") == first
    failure = expect_failure(
        define_field, admin, "store", FT.CUSTOM_FIELD_TYPE_INTEGER, request_id="cf-1"
    )
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    failure = expect_failure(define_field, admin, "store", FT.CUSTOM_FIELD_TYPE_STRING)
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "CUSTOM_FIELD_EXISTS",
    )
    status = define_status(admin, "SHIPPED", request_id="st-1")
    assert define_status(admin, "SHIPPED", request_id="st-1") == status
    assert expect_failure(define_status, admin, "SHIPPED").reason == "FULFILLMENT_STATUS_EXISTS"
    failure = expect_failure(define_field, admin, "bad key", FT.CUSTOM_FIELD_TYPE_STRING)
    assert list(failure.violations) == ["custom_field.key"]
    failure = expect_failure(
        admin.registry.DeleteCustomField, programs_pb2.DeleteCustomFieldRequest(id="cfd_none")
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "CUSTOM_FIELD_NOT_FOUND")


def test_an_issuer_cannot_change_the_registry(admin, api_for):
    issuer = api_for(admin.program_id, "issuer")
    failure = expect_failure(define_field, issuer, "store", FT.CUSTOM_FIELD_TYPE_STRING)
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert (
        issuer.registry.ListCustomFields(programs_pb2.ListCustomFieldsRequest()).custom_fields == []
    )


def test_entries_are_read_one_by_one_and_only_in_their_program(admin, api_for, channel):
    field = define_field(admin, "store", FT.CUSTOM_FIELD_TYPE_STRING, required=True)
    status = define_status(admin, "SHIPPED")
    reader = api_for(admin.program_id, "reader")
    get_field = programs_pb2.GetCustomFieldRequest(id=field.id)
    get_status = programs_pb2.GetFulfillmentStatusRequest(id=status.id)
    assert reader.registry.GetCustomField(get_field) == field
    assert reader.registry.GetFulfillmentStatus(get_status) == status

    issued = new_program("other registry")
    stranger = make_api(channel, issued.program_id, issued.api_key)
    field_missing = (grpc.StatusCode.NOT_FOUND, "CUSTOM_FIELD_NOT_FOUND")
    status_missing = (grpc.StatusCode.NOT_FOUND, "FULFILLMENT_STATUS_NOT_FOUND")
    for call, request, missing in (
        (stranger.registry.GetCustomField, get_field, field_missing),
        (stranger.registry.GetFulfillmentStatus, get_status, status_missing),
    ):
        failure = expect_failure(call, request)
        assert (failure.code, failure.reason) == missing

    admin.registry.DeleteCustomField(programs_pb2.DeleteCustomFieldRequest(id=field.id))
    admin.registry.DeleteFulfillmentStatus(
        programs_pb2.DeleteFulfillmentStatusRequest(id=status.id)
    )
    gone = expect_failure(reader.registry.GetCustomField, get_field)
    assert (gone.code, gone.reason) == field_missing
    gone = expect_failure(reader.registry.GetFulfillmentStatus, get_status)
    assert (gone.code, gone.reason) == status_missing


def test_a_program_holds_a_bounded_registry(admin, monkeypatch):
    monkeypatch.setattr(registries, "MAX_ENTRIES", 2)
    fields = [define_field(admin, k, FT.CUSTOM_FIELD_TYPE_STRING) for k in ("a", "b")]
    statuses = [define_status(admin, s) for s in ("PACKED", "SHIPPED")]
    for make, reason in (
        (lambda: define_field(admin, "c", FT.CUSTOM_FIELD_TYPE_STRING), "TOO_MANY_CUSTOM_FIELDS"),
        (lambda: define_status(admin, "LOST"), "TOO_MANY_FULFILLMENT_STATUSES"),
    ):
        failure = expect_failure(make)
        assert (failure.code, failure.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, reason)
    listed = admin.registry.ListCustomFields(programs_pb2.ListCustomFieldsRequest())
    assert [x.key for x in listed.custom_fields] == ["a", "b"]
    admin.registry.DeleteCustomField(programs_pb2.DeleteCustomFieldRequest(id=fields[0].id))
    admin.registry.DeleteFulfillmentStatus(
        programs_pb2.DeleteFulfillmentStatusRequest(id=statuses[0].id)
    )
    assert define_field(admin, "c", FT.CUSTOM_FIELD_TYPE_STRING).key == "c"
    assert define_status(admin, "LOST").status == "LOST"


@pytest.fixture(scope="module")
def other_server(store):
    server = spawn_server(store)
    yield server
    assert server.stop() == 0


def test_a_change_through_one_server_holds_at_once_on_another(channel, other_server):
    issued = new_program("registry")
    here = make_api(channel, issued.program_id, issued.api_key)
    with grpc.insecure_channel(other_server.address) as other_channel:
        there = make_api(other_channel, issued.program_id, issued.api_key)
        reward, user = f.reward(here), f.participant(here)
        issue(there, reward.id, user.id, colour="red")  # free-form there, and remembered
        field = define_field(here, "store", FT.CUSTOM_FIELD_TYPE_STRING, required=True)
        failure = expect_failure(issue, there, reward.id, user.id, colour="red")
        assert set(failure.violations) == {"custom_fields[colour]", "custom_fields[store]"}
        issue(there, reward.id, user.id, store="Leeds")
        here.registry.DeleteCustomField(programs_pb2.DeleteCustomFieldRequest(id=field.id))
        issue(there, reward.id, user.id, colour="red")
