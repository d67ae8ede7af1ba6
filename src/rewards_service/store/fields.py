"""Column types shared by the models."""

import json
from datetime import UTC, datetime

import peewee


class TimestampField(peewee.BigIntegerField):
    """An aware UTC datetime stored as integer microseconds: exact, sortable, backend-neutral."""

    def db_value(self, value: datetime | None) -> int | None:
        if value is None:
            return None
        delta = value - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

    def python_value(self, value: int | None) -> datetime | None:
        if value is None:
            return None
        return datetime.fromtimestamp(value // 1_000_000, UTC).replace(
            microsecond=value % 1_000_000
        )


class ExpiryField(TimestampField):
    """A moment something stops being usable, or None for never. Never is stored as the
    largest value rather than NULL, so `expires_at > now` is one index range on both backends
    (they sort NULLs at opposite ends)."""

    NEVER = 2**62

    def db_value(self, value: datetime | None) -> int:
        return self.NEVER if value is None else super().db_value(value)  # type: ignore[return-value]

    def python_value(self, value: int | None) -> datetime | None:
        return None if value is None or value >= self.NEVER else super().python_value(value)


# One encoder for every write: json.dumps with options builds a new one per call.
_encode_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


class JSONField(peewee.TextField):
    """Small structured values (config, segments, metadata) kept with their row."""

    def db_value(self, value: object) -> str | None:
        if value is None:
            return None
        # Most rows hold empty metadata and history: skip the encoder for those.
        if value == {}:
            return "{}"
        if value == []:
            return "[]"
        return _encode_json(value)

    def python_value(self, value: str | None) -> object:
        if value is None:
            return None
        # Most rows hold empty metadata and history: skip the parser for those.
        if value == "{}":
            return {}
        if value == "[]":
            return []
        return json.loads(value)


def utcnow() -> datetime:
    return datetime.now(UTC)
