"""`rewards-admin` manages a program's custom fields and fulfillment statuses, as a real
process against a SQLite file; a real server then holds issues to them."""

import grpc
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2

from tests.e2e.test_admin_cli import PRODUCT, admin_cli, as_json, db_url  # noqa: F401 (fixture)
from tests.helpers import expect_failure, make_api, spawn_server


def test_the_cli_defines_lists_and_removes_registry_entries(db_url):  # noqa: F811
    made = as_json(db_url, "create-program", "shop")
    pid = made["program_id"]
    field = as_json(
        db_url,
        "add-custom-field",
        "--program",
        pid,
        "--key",
        "store",
        "--type",
        "string",
        "--required",
        "--request-id",
        "cf-1",
    )
    assert (field["key"], field["type"], field["required"]) == ("store", "string", True)
    # The same request_id again changes nothing; another key is added.
    again = as_json(
        db_url, "add-custom-field", "--program", pid, "--key", "store", "--type", "string",
        "--required", "--request-id", "cf-1",
    )  # fmt: skip
    assert again == field
    as_json(db_url, "add-custom-field", "--program", pid, "--key", "visits", "--type", "integer")
    as_json(db_url, "add-fulfillment-status", "--program", pid, "SHIPPED")
    listed = as_json(db_url, "list-custom-fields", "--program", pid)
    assert [(f["key"], f["type"]) for f in listed["custom_fields"]] == [
        ("store", "string"),
        ("visits", "integer"),
    ]
    text = admin_cli(db_url, "list-fulfillment-statuses", "--program", pid).stdout
    assert text.startswith("SHIPPED  fst_")
    duplicate = admin_cli(
        db_url, "add-fulfillment-status", "--program", pid, "SHIPPED", check=False
    )
    assert duplicate.returncode == 2 and "already has a fulfillment status" in duplicate.stderr
    unknown = admin_cli(db_url, "list-custom-fields", "--program", "prg_none", check=False)
    assert unknown.returncode == 1

    server = spawn_server(db_url)
    try:
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, pid, made["api_key"])
            reward = api.catalog.CreateReward(catalog_pb2.CreateRewardRequest(reward=PRODUCT))
            ada = api.participants.UpsertParticipant(
                participants_pb2.UpsertParticipantRequest(
                    participant=participants_pb2.Participant(external_id="ada")
                )
            )
            request = issuance_pb2.IssueRewardRequest(
                reward_id=reward.id,
                participant=common_pb2.ParticipantRef(id=ada.id),
                custom_fields={"visits": "3"},
            )
            failure = expect_failure(api.issuance.IssueReward, request)
            assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
            assert list(failure.violations) == ["custom_fields[store]"]
            request.custom_fields["store"] = "Leeds"
            assert api.issuance.IssueReward(request).issuance.custom_fields["store"] == "Leeds"
    finally:
        assert server.stop() == 0
    removed = as_json(db_url, "remove-custom-field", "--program", pid, "--key", "store")
    assert removed["key"] == "store"
    as_json(db_url, "remove-fulfillment-status", "--program", pid, "SHIPPED")
    assert as_json(db_url, "list-fulfillment-statuses", "--program", pid) == {
        "fulfillment_statuses": []
    }
