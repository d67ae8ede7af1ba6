"""The hot INSERT path writes exactly what peewee's own db_value would write."""

from datetime import UTC, datetime

import pytest

from rewards_service.store import fast
from rewards_service.store.models import ALL_MODELS, CodePool, Issuance, Program

WHEN = datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=UTC)


def _peewee_values(row):
    return [f.db_value(row.__data__.get(f.name)) for f in row._meta.sorted_fields]


def _sample(model, variant: int):
    """A row with every column set, its values varied in type where a caller might vary them."""
    values = {}
    for f in model._meta.sorted_fields:
        kind = type(f).__name__
        if kind == "JSONField":
            values[f.name] = [{}, [], {"b": [1, "é"], "a": None}][variant % 3]
        elif kind in ("TimestampField", "ExpiryField"):
            values[f.name] = [WHEN, None, WHEN.replace(microsecond=0)][variant % 3]
        elif kind == "ForeignKeyField":
            related = f.rel_model(id=f"{f.rel_model.__name__.lower()}_1")
            values[f.name] = [related.id, related, None][variant % 3]
        elif kind in ("IntegerField", "BigIntegerField", "AutoField", "BigAutoField"):
            values[f.name] = [7, True, None, 0][variant % 4]
        else:
            values[f.name] = ["text", "", None, 12][variant % 4]
    return model(**values)


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("variant", range(4))
def test_column_values_match_peewee(model, variant):
    row = _sample(model, variant)
    assert fast.column_values(row) == _peewee_values(row)


def test_a_related_row_is_written_as_its_id():
    row = Issuance(program=Program(id="prg_1"))
    position = [f.name for f in Issuance._meta.sorted_fields].index("program")
    assert fast.column_values(row)[position] == "prg_1"


def test_a_bool_in_an_integer_column_is_written_as_an_int():
    row = CodePool(total_count=True)
    position = [f.name for f in CodePool._meta.sorted_fields].index("total_count")
    assert type(fast.column_values(row)[position]) is int
