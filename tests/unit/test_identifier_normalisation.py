"""Participant identifiers are stored and looked up in one normalised form (issue 13)."""

import pytest

from rewards_service.domain.participants import (
    VISIBLE,
    ParticipantRef,
    ParticipantSpec,
    check_filters,
    check_participant,
    check_ref,
    normalise_email,
    normalise_external_id,
    normalise_identifier,
    normalise_mobile,
)
from rewards_service.domain.validation import Violations

FORMAT_CHARACTERS = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u202e"


@pytest.mark.parametrize(
    "given",
    [
        "alice",
        "alice\u200b",
        "\ufeffal\u200dice",
        "al\u2060ice",
        "\uff41\uff4c\uff49\uff43\uff45",  # full-width
        "  alice\t\n",
        "\u00a0alice\u3000",  # non-breaking and ideographic spaces
    ],
)
def test_external_id_variants_are_one(given):
    assert normalise_external_id(given) == "alice"


def test_external_id_keeps_case_and_inner_spaces():
    assert normalise_external_id(" Cust 1 ") == "Cust 1"
    assert normalise_external_id("\ufb01x") == "fix"  # the ligature folds (NFKC)


def test_a_dropped_format_character_lets_its_neighbours_compose():
    # e, ZWSP, combining acute: once the ZWSP goes, NFKC makes é; normalising again changes
    # nothing.
    once = normalise_external_id("e\u200b\u0301")
    assert once == "\u00e9"
    assert normalise_external_id(once) == once


def test_email_is_lower_cased_whole():
    assert normalise_email(" Ada@Example.COM\u200b") == "ada@example.com"
    assert normalise_email("\uff21da@example.com") == "ada@example.com"


def test_mobile_loses_spaces_and_format_characters_and_keeps_the_plus():
    assert normalise_mobile("+1 555\u00a00100\u200b") == "+15550100"
    assert normalise_mobile("\uff0b\uff11\uff15\uff15\uff15") == "+1555"
    assert normalise_mobile("(555) 010-0000") == "(555)010-0000"


def test_server_ids_are_taken_as_given():
    assert normalise_identifier("id", " par_x\u200b") == " par_x\u200b"


@pytest.mark.parametrize("kind", ["external_id", "email", "mobile"])
def test_only_format_characters_normalise_to_nothing(kind):
    assert normalise_identifier(kind, FORMAT_CHARACTERS + " \t") == ""


@pytest.mark.parametrize("kind", ["external_id", "email", "mobile"])
def test_a_ref_of_only_format_characters_is_refused(kind):
    v = Violations()
    check_ref(v, "participant", ParticipantRef(kind, "\u200b\ufeff"))
    assert [(i.field, i.description) for i in v.items] == [(f"participant.{kind}", VISIBLE)]


def test_an_upsert_of_only_format_characters_is_refused_by_field():
    v = Violations()
    check_participant(
        v, ParticipantSpec(external_id="\u200b", email="\u2060", mobile="\ufeff \u200d")
    )
    assert {i.field: i.description for i in v.items} == {
        "participant.external_id": VISIBLE,
        "participant.email": VISIBLE,
        "participant.mobile": VISIBLE,
    }


def test_check_participant_returns_the_stored_form():
    v = Violations()
    spec = check_participant(
        v,
        ParticipantSpec(external_id="\uff41lice\u200b", email="Ada@Example.COM", mobile="+1 555"),
    )
    assert not v
    assert (spec.external_id, spec.email, spec.mobile) == ("alice", "ada@example.com", "+1555")


def test_filters_are_normalised_and_not_emptied():
    v = Violations()
    filters = check_filters(v, segment="", partition="", email="A@B.C", mobile="+1 555")
    assert not v
    assert (filters["email"], filters["mobile"]) == ("a@b.c", "+1555")
    check_filters(v, segment="", partition="", email="\u200b", mobile="")
    assert [i.field for i in v.items] == ["email"]
