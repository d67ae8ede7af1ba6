"""Pure rules of program registries (domain/registries.py): custom field values against
their definitions, and fulfillment statuses against the program's set."""

import pytest
from rewards.v1 import programs_pb2

from rewards_service.domain.errors import InvalidArgument
from rewards_service.domain.registries import (
    EMPTY,
    FieldRule,
    Registry,
    check_custom_fields,
    check_field_definition,
    check_fulfillment_status,
)
from rewards_service.domain.validation import Violations

FT = programs_pb2.CustomFieldType
REGISTRY = Registry(
    fields=(
        ("born", FieldRule(FT.CUSTOM_FIELD_TYPE_DATE, False)),
        ("count", FieldRule(FT.CUSTOM_FIELD_TYPE_INTEGER, False)),
        ("gift", FieldRule(FT.CUSTOM_FIELD_TYPE_BOOLEAN, False)),
        ("store", FieldRule(FT.CUSTOM_FIELD_TYPE_STRING, True)),
    ),
    statuses=frozenset({"BOOKED", "SHIPPED"}),
)


def violations(values: dict[str, str], registry: Registry = REGISTRY) -> dict[str, str]:
    v = Violations()
    check_custom_fields(v, registry, values)
    return {item.field: item.description for item in v.items}


def test_a_program_without_fields_takes_any():
    assert violations({"anything": "goes", "x": ""}, EMPTY) == {}


def test_valid_values_of_every_type_pass():
    values = {"store": "", "born": "2024-02-29", "count": "-12", "gift": "true"}
    assert violations(values) == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("born", "2023-02-29"),
        ("born", "2024-1-01"),
        ("born", "yesterday"),
        ("count", "1.5"),
        ("count", "12a"),
        ("count", ""),
        ("count", "\uff11\uff12"),  # full-width digits
        ("gift", "True"),
        ("gift", "1"),
    ],
)
def test_ill_typed_values_are_named(key, value):
    found = violations({"store": "s", key: value})
    assert list(found) == [f"custom_fields[{key}]"]
    assert found[f"custom_fields[{key}]"].startswith("must be")


def test_unknown_and_missing_required_fields_are_named():
    found = violations({"colour": "red"})
    assert found == {
        "custom_fields[colour]": "is not a custom field of this program",
        "custom_fields[store]": "is required by this program",
    }


def test_fulfillment_statuses_are_free_form_until_defined():
    check_fulfillment_status(EMPTY, "ANY TEXT")
    check_fulfillment_status(REGISTRY, "SHIPPED")
    with pytest.raises(InvalidArgument) as refused:
        check_fulfillment_status(REGISTRY, "LOST")
    assert [item.field for item in refused.value.violations] == ["status"]


@pytest.mark.parametrize(
    ("key", "field_type", "bad"),
    [
        ("ok_key-1.x", FT.CUSTOM_FIELD_TYPE_STRING, set()),
        ("", FT.CUSTOM_FIELD_TYPE_STRING, {"custom_field.key"}),
        ("has space", FT.CUSTOM_FIELD_TYPE_STRING, {"custom_field.key"}),
        ("k" * 65, FT.CUSTOM_FIELD_TYPE_STRING, {"custom_field.key"}),
        ("key", FT.CUSTOM_FIELD_TYPE_UNSPECIFIED, {"custom_field.type"}),
        ("key", 99, {"custom_field.type"}),
    ],
)
def test_field_definitions(key, field_type, bad):
    v = Violations()
    check_field_definition(v, key, field_type)
    assert {item.field for item in v.items} == bad
