"""A program's registries: the custom fields its issuances may carry, and the fulfillment
statuses they may go through. A program that defines none keeps both free-form."""

import re
from dataclasses import dataclass, field
from datetime import date

from rewards.v1 import programs_pb2

from rewards_service.domain.validation import Violations, check_label

FT = programs_pb2.CustomFieldType
FIELD_TYPES = frozenset(FT.values()) - {FT.CUSTOM_FIELD_TYPE_UNSPECIFIED}
KEY_RE = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_INTEGER_RE = re.compile(r"[+-]?\d{1,19}", re.ASCII)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


@dataclass(frozen=True)
class FieldRule:
    type: int
    required: bool


@dataclass(frozen=True)
class Registry:
    """What a program defines; immutable, so one instance may be shared by every caller."""

    fields: tuple[tuple[str, FieldRule], ...] = ()
    statuses: frozenset[str] = field(default_factory=frozenset)

    def size(self) -> int:
        """Bytes it holds, roughly, for a cache bounded in bytes."""
        return (
            200
            + sum(100 + len(k) for k, _ in self.fields)
            + sum(60 + len(s) for s in self.statuses)
        )


EMPTY = Registry()


def check_field_definition(v: Violations, key: str, field_type: int) -> None:
    v.check(
        bool(KEY_RE.fullmatch(key)),
        "custom_field.key",
        "must be 1-64 of a-z, A-Z, 0-9, '.', '_' and '-'",
    )
    v.check(
        field_type in FIELD_TYPES,
        "custom_field.type",
        "must be CUSTOM_FIELD_TYPE_STRING, _INTEGER, _BOOLEAN or _DATE",
    )


def check_status_definition(v: Violations, status: str) -> None:
    check_label(v, "fulfillment_status.status", status, max_len=64, required=True)


def _valid(field_type: int, value: str) -> bool:
    if field_type == FT.CUSTOM_FIELD_TYPE_INTEGER:
        return bool(_INTEGER_RE.fullmatch(value))
    if field_type == FT.CUSTOM_FIELD_TYPE_BOOLEAN:
        return value in ("true", "false")
    if field_type == FT.CUSTOM_FIELD_TYPE_DATE:
        if not _DATE_RE.fullmatch(value):
            return False
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
    return True


_TYPE_WORDS = {
    FT.CUSTOM_FIELD_TYPE_INTEGER: "a whole number",
    FT.CUSTOM_FIELD_TYPE_BOOLEAN: '"true" or "false"',
    FT.CUSTOM_FIELD_TYPE_DATE: "a date, YYYY-MM-DD",
}


def check_custom_fields(
    v: Violations, registry: Registry, values: dict[str, str], prefix: str = ""
) -> None:
    """Where the program defines custom fields: every key defined, every value of its type,
    every required field given. Free-form otherwise."""
    if not registry.fields:
        return
    rules = dict(registry.fields)
    for key, value in sorted(values.items()):
        rule = rules.get(key)
        path = f"{prefix}custom_fields[{key}]"
        if rule is None:
            v.add(path, "is not a custom field of this program")
        elif not _valid(rule.type, value):
            v.add(path, f"must be {_TYPE_WORDS[rule.type]}")
    for key, rule in registry.fields:
        if rule.required and key not in values:
            v.add(f"{prefix}custom_fields[{key}]", "is required by this program")


def check_fulfillment_status(registry: Registry, status: str, path: str = "status") -> None:
    """Where the program defines its statuses, `status` must be one of them."""
    if registry.statuses and status and status not in registry.statuses:
        v = Violations()
        v.add(
            path,
            "is not a fulfillment status of this program (ListFulfillmentStatuses names them)",
        )
        v.raise_if_any()
