"""Pure pricing arithmetic (domain/pricing.py) and participant rules (domain/participants.py):
ceil at the asset's scale, segment eligibility, identifier and segment checks."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards_service.domain.participants import (
    MAX_SEGMENTS,
    ParticipantRef,
    ParticipantSpec,
    check_participant,
    check_ref,
    is_eligible,
)
from rewards_service.domain.pricing import (
    amount_based_cost,
    ceil_at_scale,
    points_credit,
    unit_based_cost,
)
from rewards_service.domain.validation import Violations

# Pricing


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        ("2272.727272727", 0, "2273"),
        ("2272.727272727", 2, "2272.73"),
        ("2273", 0, "2273"),
        ("2272.73", 2, "2272.73"),
        ("0.001", 2, "0.01"),
        ("0.000000001", 8, "0.00000001"),
        ("5", 3, "5.000"),
        ("0", 2, "0.00"),
    ],
)
def test_ceil_at_scale(value, scale, expected):
    got = ceil_at_scale(Decimal(value), scale)
    assert got == Decimal(expected)
    assert got.as_tuple().exponent == -scale


def test_conversion_ratio_example():
    # 0.44 value per point is a unit cost of 1/0.44 points: 1000 miles cost 2273 points.
    as_written = Decimal("2.272727272727")
    exact = Decimal(1) / Decimal("0.44")
    for unit_cost in (as_written, exact):
        assert amount_based_cost(unit_cost, Decimal(1000), 0) == 2273
        assert amount_based_cost(unit_cost, Decimal(1000), 2) == 227273


def test_amount_based_cost_of_a_fractional_amount():
    assert amount_based_cost(Decimal("1.5"), Decimal("0.01"), 0) == 1
    assert amount_based_cost(Decimal("1.5"), Decimal("10.1"), 2) == 1515


def test_unit_based_cost_is_unit_cost_times_quantity_in_minor_units():
    assert unit_based_cost(Decimal("1.25"), 3, 2) == 375
    assert unit_based_cost(Decimal("10"), 1, 0) == 10
    assert unit_based_cost(Decimal("0.3"), 3, 0) == 1  # 0.9 rounds up to 1
    assert unit_based_cost(Decimal("0.3"), 4, 0) == 2  # 1.2 rounds up to 2
    assert unit_based_cost(Decimal("0.333"), 3, 2) == 100  # 0.999 rounds up to 1.00


def test_points_credit_in_minor_units():
    assert points_credit(Decimal("12.50"), 2, 2) == 2500
    assert points_credit(Decimal("40"), 1, 0) == 40
    assert points_credit(Decimal("0.5"), 3, 0) == 2  # 1.5 rounds up


@given(
    unit_cost=st.decimals(min_value="0.000001", max_value="100000", places=6),
    quantity=st.integers(min_value=1, max_value=10_000),
    scale=st.integers(min_value=0, max_value=8),
)
def test_cost_is_never_below_the_exact_price_nor_a_minor_unit_above(unit_cost, quantity, scale):
    exact = unit_cost * quantity
    minor = unit_based_cost(unit_cost, quantity, scale)
    charged = Decimal(minor).scaleb(-scale)
    assert isinstance(minor, int)
    assert exact <= charged < exact + Decimal(1).scaleb(-scale)
    assert amount_based_cost(unit_cost, Decimal(quantity), scale) == minor


# Eligibility


def seg(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"segment": s, "partition": p} for s, p in pairs]


R1 = seg(("s1", "p1"), ("s2", "p2"))
R2 = seg(("s1", "p2"), ("s2", "p1"))
R4: list[dict[str, str]] = []
USER1 = seg(("s2", "p1"), ("s3", "p2"))


def test_segment_table():
    assert not is_eligible(R1, USER1)
    assert is_eligible(R2, USER1)
    assert is_eligible(R4, USER1)
    assert [is_eligible(r, []) for r in (R1, R2, R4)] == [False, False, True]


@pytest.mark.parametrize(
    ("reward", "held", "eligible"),
    [
        (seg(("gold", "eu")), seg(("gold", "eu")), True),
        (seg(("gold", "eu")), seg(("gold", "us")), False),  # same segment, other partition
        (seg(("gold", "eu")), seg(("eu", "gold")), False),  # swapped
        (seg(("gold", "eu")), seg(("Gold", "eu")), False),  # exact, case included
        (seg(("gold", "eu"), ("silver", "us")), seg(("silver", "us")), True),  # any one pair
        (seg(("gold", "eu")), seg(("x", "y"), ("gold", "eu")), True),
    ],
)
def test_eligibility_needs_one_identical_pair(reward, held, eligible):
    assert is_eligible(reward, held) is eligible


# Participant checks


def participant_violations(**fields) -> set[str]:
    fields.setdefault("external_id", "cust-1")
    v = Violations()
    check_participant(v, ParticipantSpec(**fields))
    return {item.field for item in v.items}


def test_a_full_participant_is_valid():
    assert (
        participant_violations(
            email="first.last+tag@example.co.uk",
            mobile="+1 (555) 010-0000",
            segments=seg(("gold", "eu")) * MAX_SEGMENTS,
        )
        == set()
    )


@pytest.mark.parametrize(
    ("fields", "violation"),
    [
        ({"external_id": ""}, "participant.external_id"),
        ({"external_id": "e" * 129}, "participant.external_id"),
        ({"email": "no-at-sign"}, "participant.email"),
        ({"email": "two@@example.com"}, "participant.email"),
        ({"email": "a b@example.com"}, "participant.email"),
        ({"email": "@example.com"}, "participant.email"),
        ({"email": "x" * 310 + "@example.com"}, "participant.email"),
        ({"mobile": "12"}, "participant.mobile"),
        ({"mobile": "phone"}, "participant.mobile"),
        ({"mobile": "1" * 33}, "participant.mobile"),
        ({"mobile": "++15550000"}, "participant.mobile"),
        ({"segments": seg(("", "p"))}, "participant.segments[0].segment"),
        ({"segments": seg(("s", "p"), ("s", " "))}, "participant.segments[1].partition"),
        ({"segments": seg(("s" * 101, "p"))}, "participant.segments[0].segment"),
        ({"segments": seg(("s", "p")) * (MAX_SEGMENTS + 1)}, "participant.segments"),
    ],
)
def test_each_bad_participant_field_is_named(fields, violation):
    assert participant_violations(**fields) == {violation}


def test_email_and_mobile_are_optional():
    assert participant_violations(email="", mobile="") == set()


@pytest.mark.parametrize(
    "mobile",
    [
        "555",
        "+44 20 7946 0000",
        "020 (7946) 0000",
        "1" * 32,
        "(555) 010-0000",
    ],
)
def test_mobile_formats(mobile):
    assert participant_violations(mobile=mobile) == set()


def test_check_ref():
    v = Violations()
    check_ref(v, "participant", None)
    check_ref(v, "filter", ParticipantRef("mobile", ""))
    check_ref(v, "ok", ParticipantRef("id", "par_1"))
    assert [item.field for item in v.items] == ["participant", "filter.mobile"]
