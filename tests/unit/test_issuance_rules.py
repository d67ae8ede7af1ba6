"""Pure rules of issuances (domain/issuance.py): request checks, idempotency fingerprints and the
claim transition."""

from datetime import UTC, datetime

import pytest
from rewards.v1 import common_pb2

from rewards_service.domain.errors import FailedPrecondition
from rewards_service.domain.issuance import (
    MAX_BATCH,
    MAX_FULFILLMENT_HISTORY,
    GrantRequest,
    IssueRequest,
    check_claim,
    check_fulfillment_append,
    check_grant_request,
    check_issue_request,
    digest,
    normalize_dollars,
)
from rewards_service.domain.participants import ParticipantRef
from rewards_service.domain.validation import Violations

IS = common_pb2.IssuanceStatus
ALICE = ParticipantRef("external_id", "alice")


def issue(**fields) -> IssueRequest:
    fields.setdefault("reward_id", "rew_1")
    fields.setdefault("participant", ALICE)
    return IssueRequest(**fields)


def grant(**fields) -> GrantRequest:
    fields.setdefault("participant", ALICE)
    fields.setdefault("amount", "10.00")
    fields.setdefault("action_code", "survey.done")
    fields.setdefault("client_reference", "ref-1")
    return GrantRequest(**fields)


def issue_violations(request: IssueRequest, prefix: str = "") -> dict[str, str]:
    v = Violations()
    check_issue_request(v, request, prefix)
    return {item.field: item.description for item in v.items}


def grant_violations(request: GrantRequest) -> set[str]:
    v = Violations()
    check_grant_request(v, request)
    return {item.field for item in v.items}


def test_batch_limit_is_500():
    assert MAX_BATCH == 500


# check_issue_request


def test_a_minimal_issue_request_is_valid():
    assert issue_violations(issue()) == {}


def test_a_full_issue_request_is_valid():
    request = issue(
        quantity=1_000_000,
        request_id="~" * 128,
        transaction_number="t" * 128,
        notes="n" * 1000,
        metadata={f"k{i}": "v" * 1024 for i in range(50)},
        custom_fields={"k" * 64: "v"},
        fulfillment_status="s" * 64,
        event_time=datetime.now(UTC),
        owner_type=common_pb2.OWNER_TYPE_GOODWILL,
        owner_id="o" * 128,
    )
    assert issue_violations(request) == {}


@pytest.mark.parametrize(
    ("fields", "violation"),
    [
        ({"reward_id": ""}, "reward_id"),
        ({"reward_id": "   "}, "reward_id"),
        ({"reward_id": "r" * 129}, "reward_id"),
        ({"participant": None}, "participant"),
        ({"participant": ParticipantRef("email", "")}, "participant.email"),
        ({"participant": ParticipantRef("id", "p" * 321)}, "participant.id"),
        ({"quantity": -1}, "quantity"),
        ({"quantity": 1_000_001}, "quantity"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"request_id": "with space"}, "request_id"),
        ({"request_id": "é"}, "request_id"),
        ({"request_id": "r" * 129}, "request_id"),
        ({"transaction_number": "t" * 129}, "transaction_number"),
        ({"notes": "n" * 1001}, "notes"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
        ({"metadata": {"k": "v" * 1025}}, "metadata[k]"),
        ({"custom_fields": {"k" * 65: "v"}}, "custom_fields[" + "k" * 64 + "]"),
        ({"fulfillment_status": "s" * 65}, "fulfillment_status"),
        ({"owner_type": 42}, "owner.owner_type"),
        ({"owner_id": "o" * 129}, "owner.owner_id"),
    ],
)
def test_each_bad_issue_field_is_named(fields, violation):
    found = issue_violations(issue(**fields))
    assert list(found) == [violation]
    assert found[violation]


def test_every_bad_issue_field_is_reported_with_the_prefix():
    request = issue(reward_id="", participant=None, quantity=-5, notes="n" * 1001)
    assert set(issue_violations(request, "requests[7].")) == {
        "requests[7].reward_id",
        "requests[7].participant",
        "requests[7].quantity",
        "requests[7].notes",
    }


# check_grant_request


@pytest.mark.parametrize("amount", ["1.00", "1", "1.5", "50.05", "99.99", "100", "100.00"])
def test_grant_amounts_within_bounds(amount):
    assert grant_violations(grant(amount=amount)) == set()


@pytest.mark.parametrize(
    "amount",
    ["0.99", "100.01", "1.001", "abc", "", "-5", "0", "1e2", "1000", " 5", "5,00", "NaN", "+5"],
)
def test_grant_amounts_out_of_bounds(amount):
    assert grant_violations(grant(amount=amount)) == {"amount"}


@pytest.mark.parametrize("code", ["", "a b", "x" * 65, "a/b", "ü"])
def test_grant_action_code_pattern(code):
    assert grant_violations(grant(action_code=code)) == {"action_code"}
    assert grant_violations(grant(action_code="Az09._-")) == set()


def test_grant_client_reference_is_required_and_bounded():
    assert grant_violations(grant(client_reference="")) == {"client_reference"}
    assert grant_violations(grant(client_reference="c" * 129)) == {"client_reference"}
    assert grant_violations(grant(client_reference="c" * 128)) == set()


def test_grant_reports_every_bad_field():
    bad = grant(participant=None, amount="0", action_code="", client_reference="", notes="n" * 1001)
    assert grant_violations(bad) == {
        "participant",
        "amount",
        "action_code",
        "client_reference",
        "notes",
    }


# Fingerprints: what a replay must repeat


def test_issue_fingerprint_is_stable_and_treats_quantity_0_as_1():
    assert issue().fingerprint() == issue().fingerprint()
    assert issue(quantity=0).fingerprint() == issue(quantity=1).fingerprint()


@pytest.mark.parametrize(
    "changed",
    [
        {"reward_id": "rew_2"},
        {"quantity": 2},
        {"amount": "5"},
        {"transaction_number": "T-1"},
    ],
)
def test_issue_fingerprint_changes_with_each_attribute(changed):
    assert issue(**changed).fingerprint() != issue().fingerprint()


def test_grant_fingerprint_normalizes_the_amount():
    assert grant(amount="10").fingerprint() == grant(amount="10.00").fingerprint()
    assert grant(amount="10.5").fingerprint() == grant(amount="10.50").fingerprint()


@pytest.mark.parametrize(
    "changed",
    [
        {"amount": "10.01"},
        {"action_code": "other"},
    ],
)
def test_grant_fingerprint_changes_with_each_attribute(changed):
    assert grant(**changed).fingerprint() != grant().fingerprint()


def test_issue_and_grant_fingerprints_never_collide():
    # One request_id namespace: a grant must never pass as a replay of an issue.
    assert grant().fingerprint() != issue().fingerprint()


def test_digest_is_deterministic_and_order_sensitive():
    assert digest("a", 1, None) == digest("a", 1, None)
    assert digest("a", "b") != digest("b", "a")
    assert digest("ab", "") != digest("a", "b")
    assert len(digest("x")) == 64


@pytest.mark.parametrize(
    ("text", "normalized"),
    [("5", "5.00"), ("5.5", "5.50"), ("5.50", "5.50"), ("100", "100.00"), ("abc", "abc")],
)
def test_normalize_dollars(text, normalized):
    assert normalize_dollars(text) == normalized


# Claim


def test_claim_of_a_confirmed_issuance_changes_it():
    assert check_claim(IS.ISSUANCE_STATUS_CONFIRMED) is True


def test_claim_of_a_claimed_issuance_is_a_no_op():
    assert check_claim(IS.ISSUANCE_STATUS_CLAIMED) is False


def test_claim_of_a_revoked_issuance_is_refused():
    with pytest.raises(FailedPrecondition) as raised:
        check_claim(IS.ISSUANCE_STATUS_REVOKED)
    assert raised.value.reason == "INVALID_STATE_TRANSITION"
    assert raised.value.metadata == {
        "from": "ISSUANCE_STATUS_REVOKED",
        "to": "ISSUANCE_STATUS_CLAIMED",
    }


def test_fulfillment_history_takes_appends_up_to_its_cap():
    check_fulfillment_append(MAX_FULFILLMENT_HISTORY - 1)
    with pytest.raises(FailedPrecondition) as refused:
        check_fulfillment_append(MAX_FULFILLMENT_HISTORY)
    assert refused.value.reason == "FULFILLMENT_HISTORY_FULL"
    assert refused.value.metadata == {"limit": str(MAX_FULFILLMENT_HISTORY)}
