"""Look-alike identifiers name one participant (issue 13): zero-width and other format
characters, full-width forms and surrounding spaces do not make a new participant, emails match
whatever their case, and an identifier of format characters alone is refused."""

import grpc
import pytest
from rewards.v1 import common_pb2, issuance_pb2, participants_pb2

from tests import factories as f
from tests.helpers import expect_failure
from tests.integration.test_participants import get, listed, upsert

LOOK_ALIKES = [
    "alice\u200b",
    "\ufeffal\u200dice",
    "\uff41\uff4c\uff49\uff43\uff45",
    " alice\u2060 ",
]
NOTHING_VISIBLE = "\u200b\u200d\ufeff\u2060"


def balance_by(api, asset_id: str, **ref) -> participants_pb2.Balance:
    return api.participants.GetBalance(
        participants_pb2.GetBalanceRequest(
            participant=common_pb2.ParticipantRef(**ref), asset_id=asset_id
        )
    )


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_a_look_alike_external_id_is_the_same_participant(admin, look_alike):
    alice = upsert(admin, external_id="alice", email="alice@example.com")
    again = upsert(admin, external_id=look_alike, email="new@example.com")
    assert again.id == alice.id
    assert again.external_id == "alice"
    assert [p.id for p in listed(admin)] == [alice.id]
    # Every lookup by ParticipantRef finds her under the look-alike too.
    points = f.asset(admin)
    f.fund(admin, alice.id, points.id, "5.00")
    got = balance_by(admin, points.id, external_id=look_alike)
    assert (got.participant_id, got.available) == (alice.id, "5.00")
    issued = admin.issuance.IssueReward(
        issuance_pb2.IssueRewardRequest(
            reward_id=f.reward(admin).id, participant=f.ref(external_id=look_alike)
        )
    ).issuance
    assert issued.participant_id == alice.id
    found = f.all_issuances(admin, participant=f.ref(external_id=look_alike))
    assert [i.id for i in found] == [issued.id]


def test_the_first_write_is_stored_normalised(admin):
    created = upsert(
        admin,
        external_id="\u200b\uff42ob ",
        email=" Bob@Example.COM\ufeff",
        mobile="\uff0b1 555\u00a00100\u200b",
    )
    assert (created.external_id, created.email, created.mobile) == (
        "bob",
        "bob@example.com",
        "+15550100",
    )
    assert get(admin, created.id) == created
    assert upsert(admin, external_id="bob", paths=["segments"]).id == created.id


def test_email_and_mobile_lookups_ignore_case_and_spacing(admin):
    ada = upsert(admin, external_id="ada", email="ada@example.com", mobile="+15550123")
    points = f.asset(admin)
    assert balance_by(admin, points.id, email="Ada@Example.COM").participant_id == ada.id
    assert balance_by(admin, points.id, mobile="+1 555 0123\u200b").participant_id == ada.id
    assert [p.id for p in listed(admin, email="ADA@example.com\u200b")] == [ada.id]
    assert [p.id for p in listed(admin, mobile="+1 555 0123")] == [ada.id]
    # Upper-case and lower-case spellings are one shared email, so ambiguous once shared.
    upsert(admin, external_id="ada-2", email="ADA@EXAMPLE.COM")
    failure = expect_failure(balance_by, admin, points.id, email="ada@example.com")
    assert failure.reason == "AMBIGUOUS_PARTICIPANT"


@pytest.mark.parametrize("field", ["external_id", "email", "mobile"])
def test_an_upsert_of_only_format_characters_is_refused_and_changes_nothing(admin, field):
    kept = upsert(admin, external_id="kept", email="kept@example.com", mobile="+15550000")
    fields = {"external_id": "kept", field: NOTHING_VISIBLE}
    failure = expect_failure(upsert, admin, **fields)
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert set(failure.violations) == {f"participant.{field}"}
    # Refused for what it is, not for some other form error.
    assert "visible character" in failure.violations[f"participant.{field}"]
    assert listed(admin) == [kept]


@pytest.mark.parametrize("kind", ["external_id", "email", "mobile"])
def test_a_ref_of_only_format_characters_is_refused(admin, kind):
    points = f.asset(admin)
    user = upsert(admin, external_id="someone", email="someone@example.com", mobile="+15551111")
    failure = expect_failure(balance_by, admin, points.id, **{kind: NOTHING_VISIBLE})
    assert (failure.code, failure.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert set(failure.violations) == {f"participant.{kind}"}
    reward = f.reward(admin)
    failure = expect_failure(
        admin.issuance.IssueReward,
        issuance_pb2.IssueRewardRequest(
            reward_id=reward.id, participant=f.ref(**{kind: NOTHING_VISIBLE})
        ),
    )
    assert (failure.code, set(failure.violations)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {f"participant.{kind}"},
    )
    assert f.all_issuances(admin) == []
    assert listed(admin) == [user]


@pytest.mark.parametrize("field", ["email", "mobile"])
def test_a_list_filter_of_only_format_characters_is_refused(admin, field):
    upsert(admin, external_id="listed", email="l@example.com", mobile="+15552222")
    failure = expect_failure(
        admin.participants.ListParticipants,
        participants_pb2.ListParticipantsRequest(**{field: NOTHING_VISIBLE}),
    )
    assert (failure.code, set(failure.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {field})
