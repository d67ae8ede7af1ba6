"""Shared field checks: decimal strings, asset amounts, string maps, text, request ids."""

from decimal import Decimal

import pytest

from rewards_service.domain.errors import InvalidArgument
from rewards_service.domain.validation import (
    Violations,
    check_action_code,
    check_label,
    check_request_id,
    check_string_map,
    check_text,
    format_amount,
    from_minor,
    parse_amount,
    parse_decimal,
    to_minor,
    weak_key_reason,
)


def fields(v: Violations) -> list[str]:
    return [item.field for item in v.items]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Decimal(0)),
        ("12.50", Decimal("12.50")),
        ("-3", Decimal(-3)),
        ("0.000000000000000001", Decimal("1e-18")),
        ("1" * 20, Decimal("1" * 20)),
        ("0.1", Decimal("0.1")),
    ],
)
def test_parse_decimal_accepts_plain_decimals_exactly(text, expected):
    v = Violations()
    got = parse_decimal(v, "x", text)
    assert not v
    assert isinstance(got, Decimal)
    assert got == expected
    assert format(got, "f") == text  # no float round trip: digits kept as sent


@pytest.mark.parametrize(
    "text",
    [
        "1e3",
        "1E3",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        " 1",
        "1 ",
        "1.",
        ".5",
        "+1",
        "1,5",
        "0x10",
        "1_000",
        "1" * 21,
        "0." + "1" * 19,
        "--1",
    ],
)
def test_parse_decimal_refuses_anything_but_plain_notation(text):
    v = Violations()
    assert parse_decimal(v, "reward.unit_cost", text) is None
    assert fields(v) == ["reward.unit_cost"]
    assert "decimal" in v.items[0].description


@pytest.mark.parametrize("text", ["\u0663", "\uff11\uff10", "1.\u0665"])
def test_parse_decimal_refuses_non_ascii_digits(text):
    v = Violations()
    assert parse_decimal(v, "reward.unit_cost", text) is None
    assert fields(v) == ["reward.unit_cost"]


def test_parse_decimal_empty_is_required_unless_optional():
    v = Violations()
    assert parse_decimal(v, "amount", "") is None
    assert [(i.field, i.description) for i in v.items] == [("amount", "is required")]
    v = Violations()
    assert parse_decimal(v, "amount", "", required=False) is None
    assert not v


@pytest.mark.parametrize(
    ("text", "scale"),
    [("1", 0), ("1.5", 1), ("1.50", 2), ("1000.00", 2), ("0.00000001", 8), ("7", 2)],
)
def test_parse_amount_accepts_up_to_the_scale(text, scale):
    v = Violations()
    assert parse_amount(v, "amount", text, scale=scale) == Decimal(text)
    assert not v


@pytest.mark.parametrize(("text", "scale"), [("1.0", 0), ("1.001", 2), ("0.000000001", 8)])
def test_parse_amount_refuses_more_places_than_the_scale(text, scale):
    v = Violations()
    assert parse_amount(v, "amount", text, scale=scale) is None
    assert fields(v) == ["amount"]
    assert f"at most {scale} decimal places" in v.items[0].description


def test_parse_amount_sign_rules():
    v = Violations()
    assert parse_amount(v, "a", "0", scale=2) is None
    assert parse_amount(v, "b", "-1", scale=2) is None
    assert [(i.field, i.description) for i in v.items] == [
        ("a", "must be greater than zero"),
        ("b", "must not be negative"),
    ]
    v = Violations()
    assert parse_amount(v, "a", "0", scale=2, allow_zero=True) == 0
    assert parse_amount(v, "b", "-1.25", scale=2, allow_negative=True) == Decimal("-1.25")
    assert not v
    assert parse_amount(v, "c", "0", scale=2, allow_negative=True) is None
    assert fields(v) == ["c"]


def test_parse_amount_refuses_what_the_store_cannot_hold():
    v = Violations()
    # 10**18 minor units is past the signed 64-bit column's safe range.
    assert parse_amount(v, "a", "10000000000000000", scale=2) is None
    assert fields(v) == ["a"]
    v = Violations()
    assert parse_amount(v, "a", "9999999999999999.99", scale=2) is not None
    assert not v


def test_parse_amount_reports_bad_syntax_once():
    v = Violations()
    assert parse_amount(v, "a", "1e2", scale=2) is None
    assert fields(v) == ["a"]


@pytest.mark.parametrize(
    ("units", "scale", "text"),
    [
        (100050, 2, "1000.50"),
        (0, 2, "0.00"),
        (5, 0, "5"),
        (-150, 2, "-1.50"),
        (1, 8, "0.00000001"),
        (227300, 2, "2273.00"),
        (10**17, 2, "1000000000000000.00"),
    ],
)
def test_format_amount_writes_every_place_of_the_scale(units, scale, text):
    assert format_amount(units, scale) == text


@pytest.mark.parametrize("text", ["0.01", "1000.50", "-7.25", "123456789.99", "0.00"])
def test_minor_units_round_trip(text):
    units = to_minor(Decimal(text), 2)
    assert isinstance(units, int)
    assert from_minor(units, 2) == Decimal(text)
    assert format_amount(units, 2) == text


def test_string_map_limits_are_inclusive():
    v = Violations()
    check_string_map(v, "metadata", {f"k{i}": "v" for i in range(50)})
    check_string_map(v, "metadata", {"k" * 64: "v" * 1024})
    check_string_map(v, "metadata", {})
    assert not v


def test_string_map_too_many_entries():
    v = Violations()
    check_string_map(v, "reward.metadata", {f"k{i}": "v" for i in range(51)})
    assert fields(v) == ["reward.metadata"]
    assert "50" in v.items[0].description


def test_string_map_key_too_long_or_empty():
    v = Violations()
    check_string_map(v, "metadata", {"k" * 65: "v", "": "x"})
    assert sorted(fields(v)) == sorted([f"metadata[{'k' * 64}]", "metadata[]"])
    assert all("keys must be 1-64" in item.description for item in v.items)


def test_string_map_value_too_long_names_the_key():
    v = Violations()
    check_string_map(v, "custom_fields", {"ok": "v", "big": "v" * 1025})
    assert fields(v) == ["custom_fields[big]"]
    assert "1024" in v.items[0].description


def test_string_map_reports_every_bad_entry():
    v = Violations()
    check_string_map(v, "m", {"a": "x" * 2000, "b": "y" * 2000, "c": "ok"})
    assert sorted(fields(v)) == ["m[a]", "m[b]"]


def test_check_text():
    v = Violations()
    check_text(v, "a", "", max_len=5, required=True)
    check_text(v, "b", "   ", max_len=5, required=True)
    check_text(v, "c", "123456", max_len=5)
    check_text(v, "d", "12345", max_len=5, required=True)
    check_text(v, "e", "", max_len=5)
    assert [(i.field, i.description) for i in v.items] == [
        ("a", "is required"),
        ("b", "is required"),
        ("c", "must be at most 5 characters"),
    ]


@pytest.mark.parametrize("value", ["r", "order-1/attempt:2", "~!" * 64, "A" * 128])
def test_request_id_accepts_printable_ascii(value):
    v = Violations()
    check_request_id(v, "request_id", value)
    assert not v


@pytest.mark.parametrize("value", ["has space", "A" * 129, "tab\t", "café", "\x7f"])
def test_request_id_refuses_the_rest(value):
    v = Violations()
    check_request_id(v, "request_id", value)
    assert fields(v) == ["request_id"]


def test_request_id_is_optional_unless_required():
    v = Violations()
    check_request_id(v, "request_id", "")
    assert not v
    check_request_id(v, "client_reference", "", required=True)
    assert fields(v) == ["client_reference"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("signup", True),
        ("a.b_c-D9", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        ("with space", False),
        ("slash/no", False),
    ],
)
def test_action_code(value, ok):
    v = Violations()
    check_action_code(v, "action_code", value)
    assert (not v) is ok


def test_violations_raise_once_with_all_fields_in_order():
    v = Violations()
    v.raise_if_any()  # nothing collected: no error
    assert v.check(True, "fine", "never") is True
    assert v.check(False, "reward.name", "is required") is False
    v.add("reward.points.amount", "must be greater than zero")
    with pytest.raises(InvalidArgument) as raised:
        v.raise_if_any()
    error = raised.value
    assert error.reason == "VALIDATION_FAILED"
    assert [(x.field, x.description) for x in error.violations] == [
        ("reward.name", "is required"),
        ("reward.points.amount", "must be greater than zero"),
    ]
    assert "reward.name" in error.message and "reward.points.amount" in error.message


@pytest.mark.parametrize(
    ("key", "weak"),
    [
        ("a", True),
        ("x" * 31 + "y", True),
        ("a" * 64, True),
        ("abcdefghijk" * 4, True),  # 11 different characters
        ("rwk_ with a space 0123456789abcdefghij", True),
        ("rwk_\u00e9" + "0123456789abcdefghijklmnopq", True),
        ("rwk_operator-chosen-bootstrap-key-0123456789", False),
        ("rwk_" + "Zx8_k2Lq-Wm4Rt9Hs7Vb3Nc6Pd1Fg5Jy0Ae", False),
    ],
)
def test_an_operator_chosen_key_must_be_hard_to_guess(key, weak):
    reason = weak_key_reason(key)
    assert (reason is not None) == weak
    assert reason is None or len(key) == 1 or key not in reason


@pytest.mark.parametrize("value", ["SHIPPED", "En route \u2013 \U0001f69a", "x" * 64, "a/b"])
def test_labels_are_any_text_without_control_characters(value):
    v = Violations()
    check_label(v, "status", value, max_len=64, required=True)
    assert not v


@pytest.mark.parametrize("value", ["", " ", "x" * 65, "A\nB", "tab\there", "\x7f", "\r"])
def test_labels_refused_once_each(value):
    v = Violations()
    check_label(v, "status", value, max_len=64, required=True)
    assert fields(v) == ["status"]
