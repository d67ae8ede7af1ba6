"""Participants (SPEC §7): upsert by external_id, shared secondary identifiers, reads, lists by
segment, validation, and ParticipantRef resolution."""

import grpc
import pytest
from google.protobuf import field_mask_pb2
from rewards.v1 import common_pb2, issuance_pb2, participants_pb2

from tests import factories as f
from tests.conftest import new_program
from tests.helpers import expect_failure, make_api


def upsert(api, paths=(), **fields) -> participants_pb2.Participant:
    segments = [common_pb2.Segment(segment=s, partition=p) for s, p in fields.pop("segments", ())]
    return api.participants.UpsertParticipant(
        participants_pb2.UpsertParticipantRequest(
            participant=participants_pb2.Participant(segments=segments, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=list(paths)) if paths else None,
        )
    )


def get(api, participant_id: str) -> participants_pb2.Participant:
    return api.participants.GetParticipant(
        participants_pb2.GetParticipantRequest(id=participant_id)
    )


def listed(api, page_size: int = 0, **filters) -> list[participants_pb2.Participant]:
    found, token = [], ""
    while True:
        page = api.participants.ListParticipants(
            participants_pb2.ListParticipantsRequest(
                page_size=page_size, page_token=token, **filters
            )
        )
        found.extend(page.participants)
        token = page.next_page_token
        if not token:
            return found


def pairs(participant) -> list[tuple[str, str]]:
    return [(s.segment, s.partition) for s in participant.segments]


def test_upsert_creates_then_updates_by_external_id(admin, api_for):
    issuer = api_for(admin.program_id, "issuer")
    created = upsert(
        issuer,
        external_id="cust-1",
        email="a@example.com",
        mobile="+15550001",
        segments=[("gold", "eu")],
    )
    assert created.id.startswith("par_")
    assert (created.external_id, created.email, created.mobile) == (
        "cust-1",
        "a@example.com",
        "+15550001",
    )
    assert pairs(created) == [("gold", "eu")]
    assert created.created_at == created.updated_at
    updated = upsert(issuer, external_id="cust-1", email="b@example.com", segments=[("vip", "us")])
    assert updated.id == created.id
    assert updated.created_at == created.created_at
    assert updated.updated_at.ToDatetime() >= created.updated_at.ToDatetime()
    # Without a mask every updatable field takes the request's value, cleared ones included.
    assert (updated.email, updated.mobile) == ("b@example.com", "")
    assert pairs(updated) == [("vip", "us")]
    assert get(admin, created.id) == updated
    assert [p.id for p in listed(admin)] == [created.id]


def test_update_mask_limits_the_change(admin):
    created = upsert(
        admin, external_id="masked", email="old@example.com", mobile="+1555", segments=[("a", "1")]
    )
    updated = upsert(
        admin,
        paths=["email"],
        external_id="masked",
        email="new@example.com",
        mobile="",
        segments=[("b", "2")],
    )
    assert updated.id == created.id
    assert (updated.email, updated.mobile, pairs(updated)) == (
        "new@example.com",
        "+1555",
        [("a", "1")],
    )
    updated = upsert(admin, paths=["segments", "mobile"], external_id="masked", segments=[])
    assert (updated.email, updated.mobile, pairs(updated)) == ("new@example.com", "", [])
    assert get(admin, created.id) == updated


@pytest.mark.parametrize("path", ["external_id", "id", "created_at", "nickname"])
def test_update_mask_refuses_other_fields(admin, path):
    created = upsert(admin, external_id="fixed", email="keep@example.com")
    failure = expect_failure(
        upsert, admin, paths=[path], external_id="fixed", email="other@example.com"
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failure.violations) == {"update_mask"}
    assert path in failure.violations["update_mask"]
    assert get(admin, created.id) == created


def test_email_and_mobile_may_be_shared(admin):
    a = upsert(admin, external_id="a", email="home@example.com", mobile="+1 555 0100")
    b = upsert(admin, external_id="b", email="home@example.com", mobile="+1 555 0100")
    assert a.id != b.id
    assert {p.id for p in listed(admin, email="home@example.com")} == {a.id, b.id}
    assert {p.id for p in listed(admin, mobile="+1 555 0100")} == {a.id, b.id}
    assert listed(admin, email="nobody@example.com") == []


def test_get_participant(admin, channel):
    created = upsert(admin, external_id="getme", email="g@example.com")
    assert get(admin, created.id) == created
    failure = expect_failure(get, admin, "par_missing")
    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "PARTICIPANT_NOT_FOUND")
    assert failure.metadata == {"id": "par_missing"}
    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    assert expect_failure(get, other, created.id).reason == "PARTICIPANT_NOT_FOUND"


def test_get_participant_by_any_identifier(admin, channel):
    user = upsert(admin, external_id="ada", email="ada@example.com", mobile="+44 20 7946 0002")
    upsert(admin, external_id="twin-1", email="twins@example.com")
    upsert(admin, external_id="twin-2", email="twins@example.com")

    def by(ref):
        return admin.participants.GetParticipant(
            participants_pb2.GetParticipantRequest(participant=ref)
        )

    for ref in (
        f.ref(id=user.id),
        f.ref(external_id="ada"),
        f.ref(email="ADA@Example.com"),  # matched as stored: normalised
        f.ref(mobile="+44 20 7946 0002"),
    ):
        assert by(ref) == user
    for ref, code, reason in (
        (f.ref(email="twins@example.com"), "FAILED_PRECONDITION", "AMBIGUOUS_PARTICIPANT"),
        (f.ref(external_id="nobody"), "NOT_FOUND", "PARTICIPANT_NOT_FOUND"),
        (f.ref(email="a" * 321), "INVALID_ARGUMENT", "VALIDATION_FAILED"),
    ):
        failure = expect_failure(by, ref)
        assert (failure.code.name, failure.reason) == (code, reason)
    both = expect_failure(
        admin.participants.GetParticipant,
        participants_pb2.GetParticipantRequest(id=user.id, participant=f.ref(external_id="ada")),
    )
    assert (both.code, set(both.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, {"id"})
    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    elsewhere = expect_failure(
        other.participants.GetParticipant,
        participants_pb2.GetParticipantRequest(participant=f.ref(external_id="ada")),
    )
    assert elsewhere.reason == "PARTICIPANT_NOT_FOUND"


def test_external_ids_are_per_program(admin, channel):
    issued = new_program("other")
    other = make_api(channel, issued.program_id, issued.api_key)
    mine = upsert(admin, external_id="same", email="mine@example.com")
    theirs = upsert(other, external_id="same", email="theirs@example.com")
    assert mine.id != theirs.id
    assert get(admin, mine.id).email == "mine@example.com"


def test_list_participants_oldest_first_with_paging(admin):
    made = [upsert(admin, external_id=f"p{i}").id for i in range(7)]
    pages, token = [], ""
    while True:
        page = admin.participants.ListParticipants(
            participants_pb2.ListParticipantsRequest(page_size=3, page_token=token)
        )
        pages.append([p.id for p in page.participants])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == made


def test_list_participants_by_segment_and_partition(admin):
    gold_eu = upsert(admin, external_id="ge", segments=[("gold", "eu")])
    gold_us = upsert(admin, external_id="gu", segments=[("silver", "eu"), ("gold", "us")])
    upsert(admin, external_id="se", segments=[("silver", "eu")])
    upsert(admin, external_id="none")
    # Near misses: a partition named like the segment, a longer segment name, other case.
    upsert(admin, external_id="x1", segments=[("eu", "gold")])
    upsert(admin, external_id="x2", segments=[("golden", "eu")])
    upsert(admin, external_id="x3", segments=[("Gold", "eu")])
    assert [p.id for p in listed(admin, segment="gold")] == [gold_eu.id, gold_us.id]
    assert [p.id for p in listed(admin, segment="gold", partition="us")] == [gold_us.id]
    assert listed(admin, segment="gold", partition="apac") == []
    assert listed(admin, segment="bronze") == []


@pytest.mark.parametrize("club", ["vip_club", "club"])
def test_list_participants_by_segment_pages_through_everyone(admin, club):
    wanted = []
    for i in range(12):
        segment = (club, "a") if i % 3 else (club, "b")
        row = upsert(admin, external_id=f"m{i:02}", segments=[segment, ("other", "x")])
        upsert(admin, external_id=f"n{i:02}", segments=[("other", "x")])
        if segment == (club, "a"):
            wanted.append(row.id)
    found, pages, token = [], 0, ""
    while True:
        page = admin.participants.ListParticipants(
            participants_pb2.ListParticipantsRequest(
                page_size=2, page_token=token, segment=club, partition="a"
            )
        )
        assert len(page.participants) <= 2
        found.extend(p.id for p in page.participants)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert found == wanted
    assert pages >= 4
    assert len(listed(admin, page_size=5, segment=club)) == 12


@pytest.mark.parametrize(
    "segment",
    [
        "café",
        'quote"d',
        "back\\slash",
        "per%cent",
        "under_score",
        "spaced out",
    ],
)
def test_list_participants_by_segment_with_unusual_characters(admin, segment):
    holder = upsert(admin, external_id="holder", segments=[(segment, "p")])
    upsert(admin, external_id="decoy", segments=[("plain", "p")])
    # What a LIKE wildcard in the name would also match.
    upsert(admin, external_id="percent-decoy", segments=[("perXYcent", "p")])
    upsert(admin, external_id="underscore-decoy", segments=[("underXscore", "p")])
    assert [p.id for p in listed(admin, segment=segment)] == [holder.id]
    assert [p.id for p in listed(admin, segment=segment, partition="p")] == [holder.id]
    assert pairs(get(admin, holder.id)) == [(segment, "p")]


def test_invalid_participant_fields_are_all_reported(admin):
    failure = expect_failure(
        upsert,
        admin,
        external_id="",
        email="not-an-email",
        mobile="call me",
        segments=[("", "p"), ("s", ""), ("x" * 101, "p")],
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {
        "participant.external_id",
        "participant.email",
        "participant.mobile",
        "participant.segments[0].segment",
        "participant.segments[1].partition",
        "participant.segments[2].segment",
    }
    assert listed(admin) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "a@b@c"),
        ("email", "spaces in@example.com"),
        ("email", "x" * 310 + "@example.com"),
        ("mobile", "12"),
        ("mobile", "+1-555-CALL"),
        ("mobile", "1" * 33),
        ("external_id", "e" * 129),
    ],
)
def test_invalid_identifier_is_refused(admin, field, value):
    fields = {"external_id": "valid", field: value}
    failure = expect_failure(upsert, admin, **fields)
    assert set(failure.violations) == {f"participant.{field}"}
    assert listed(admin) == []


def test_too_many_segments_is_refused(admin):
    failure = expect_failure(
        upsert, admin, external_id="many", segments=[(f"s{i}", "p") for i in range(101)]
    )
    assert set(failure.violations) == {"participant.segments"}


@pytest.mark.parametrize("kind", ["id", "external_id", "email", "mobile"])
def test_refs_resolve_by_every_identifier(admin, kind):
    points = f.asset(admin)
    user = upsert(admin, external_id="ref-me", email="ref@example.com", mobile="+44 20 7946 0000")
    upsert(admin, external_id="someone-else", email="else@example.com", mobile="+44 20 7946 0001")
    f.fund(admin, user.id, points.id, "7.00")
    value = getattr(user, kind)
    got = admin.participants.GetBalance(
        participants_pb2.GetBalanceRequest(participant=f.ref(**{kind: value}), asset_id=points.id)
    )
    assert (got.participant_id, got.available) == (user.id, "7.00")
    issued = admin.issuance.IssueReward(
        issuance_pb2.IssueRewardRequest(
            reward_id=f.reward(admin).id, participant=f.ref(**{kind: value})
        )
    ).issuance
    assert issued.participant_id == user.id
    f.assert_ledger_consistent(admin, user.id, points.id)


def test_refs_to_nobody_or_to_several(admin):
    points = f.asset(admin)
    upsert(admin, external_id="s1", email="shared@example.com", mobile="+15550999")
    upsert(admin, external_id="s2", email="shared@example.com", mobile="+15550999")
    for ref, reason, code in (
        (f.ref(email="shared@example.com"), "AMBIGUOUS_PARTICIPANT", "FAILED_PRECONDITION"),
        (f.ref(mobile="+15550999"), "AMBIGUOUS_PARTICIPANT", "FAILED_PRECONDITION"),
        (f.ref(external_id="missing"), "PARTICIPANT_NOT_FOUND", "NOT_FOUND"),
        (f.ref(id="par_missing"), "PARTICIPANT_NOT_FOUND", "NOT_FOUND"),
        (f.ref(email="missing@example.com"), "PARTICIPANT_NOT_FOUND", "NOT_FOUND"),
    ):
        failure = expect_failure(
            admin.participants.GetBalance,
            participants_pb2.GetBalanceRequest(participant=ref, asset_id=points.id),
        )
        assert (failure.code.name, failure.reason) == (code, reason)
        kind = ref.WhichOneof("ref")
        assert failure.metadata == {kind: getattr(ref, kind)}


def test_a_ref_must_name_one_identifier(admin):
    points = f.asset(admin)
    failure = expect_failure(
        admin.participants.GetBalance,
        participants_pb2.GetBalanceRequest(participant=common_pb2.ParticipantRef(), asset_id=""),
    )
    assert failure.reason == "VALIDATION_FAILED"
    assert set(failure.violations) == {"participant", "asset_id"}
    failure = expect_failure(
        admin.participants.GetBalance,
        participants_pb2.GetBalanceRequest(
            participant=common_pb2.ParticipantRef(external_id=""), asset_id=points.id
        ),
    )
    assert set(failure.violations) == {"participant.external_id"}


def test_a_reader_can_read_but_not_upsert(admin, api_for):
    created = upsert(admin, external_id="r")
    reader = api_for(admin.program_id, "reader")
    assert get(reader, created.id) == created
    failure = expect_failure(upsert, reader, external_id="r", email="x@example.com")
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "INSUFFICIENT_SCOPE",
    )
    assert get(admin, created.id) == created


@pytest.mark.parametrize(
    ("field", "limit"), [("segment", 100), ("partition", 100), ("email", 320), ("mobile", 32)]
)
def test_list_filters_longer_than_any_stored_value_are_invalid(admin, field, limit):
    f.participant(admin, "listed", segments=[("gold", "eu")])
    for length in (limit + 1, 50_001):
        request = participants_pb2.ListParticipantsRequest(
            **{"segment": "gold", field: "x" * length}
        )
        failure = expect_failure(admin.participants.ListParticipants, request)
        assert (failure.code, set(failure.violations)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            {field},
        )
    at_limit = participants_pb2.ListParticipantsRequest(**{"segment": "gold", field: "x" * limit})
    assert list(admin.participants.ListParticipants(at_limit).participants) == []
