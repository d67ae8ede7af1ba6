"""The registries' use cases (services/registries.py) against an in-memory store: what they
create, refuse, find and delete, and when the registry_version moves, without a database."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rewards.v1 import programs_pb2

from rewards_service.domain.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from rewards_service.domain.ids import new_id
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.registries import EMPTY, FieldRule
from rewards_service.services import registries
from rewards_service.services.records import CustomFieldDef, FulfillmentStatusDef
from rewards_service.store.db import Conflict
from tests.unit.fakes import InMemoryStore, Untouchable, keyset_page

FT = programs_pb2.CustomFieldType
STRING, INTEGER = FT.CUSTOM_FIELD_TYPE_STRING, FT.CUSTOM_FIELD_TYPE_INTEGER
FIRST_PAGE = PageRequest(size=50, after=None, filters_digest="")


class FakeRegistryStore(InMemoryStore):
    """The registry tables in dicts, keeping what the schema keeps (one entry per name and
    one per request_id in a program) and no more: the rules under test are the use cases'."""

    TABLES = ("rows", "versions")
    NAME = {CustomFieldDef: "key", FulfillmentStatusDef: "status"}

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[type, dict[str, CustomFieldDef | FulfillmentStatusDef]] = {
            kind: {} for kind in self.NAME
        }
        self.versions: dict[str, int] = {}
        self.loads = 0  # entries() calls: how often a registry was read in full

    def _of(self, kind, program_id):
        return sorted(
            (row for row in self.rows[kind].values() if row.program_id == program_id),
            key=lambda row: row.id,
        )

    def registry_version(self, program_id):
        return self.versions.get(program_id, 0)

    def bump_version(self, program_id):
        self._writing()
        self.versions[program_id] = self.registry_version(program_id) + 1

    def entries(self, kind, program_id):
        self.loads += 1
        return self._of(kind, program_id)

    def page(self, kind, program_id, page):
        return keyset_page(self._of(kind, program_id), page)

    def count(self, kind, program_id):
        return len(self._of(kind, program_id))

    def find(self, kind, program_id, entry_id):
        row = self.rows[kind].get(entry_id)
        return row if row is not None and row.program_id == program_id else None

    def find_named(self, kind, program_id, name):
        return next((r for r in self._of(kind, program_id) if self._name(r) == name), None)

    def find_by_request_id(self, kind, program_id, request_id):
        found = (r for r in self._of(kind, program_id) if r.request_id == request_id)
        return next(found, None)

    def add(self, row):
        self._writing()
        kind = type(row)
        for other in self._of(kind, row.program_id):
            if self._name(other) == self._name(row) or (
                row.request_id and other.request_id == row.request_id
            ):
                raise Conflict(f"UNIQUE constraint failed: {kind._meta.table_name}")
        self.rows[kind][row.id] = row

    def delete(self, row):
        self._writing()
        del self.rows[type(row)][row.id]

    def _name(self, row):
        return getattr(row, self.NAME[type(row)])


class RacedStore(FakeRegistryStore):
    """Another call takes each name just after this one looked for it: the look-up misses,
    and the insert breaks the unique key."""

    def find_named(self, kind, program_id, name):
        return None


@dataclass(frozen=True)
class Kind:
    """One kind of registry entry, through its own use cases."""

    create: Callable[..., CustomFieldDef | FulfillmentStatusDef]  # (store, name, request_id)
    get: Callable
    list: Callable
    delete: Callable
    by_name: Callable
    name: Callable[[CustomFieldDef | FulfillmentStatusDef], str]
    exists: str
    too_many: str
    not_found: str


def _create_field(store, program_id, key, request_id="", field_type=STRING):
    return registries.create_custom_field(
        program_id, key, field_type, False, request_id, store=store
    )


def _create_status(store, program_id, status, request_id=""):
    return registries.create_fulfillment_status(program_id, status, request_id, store=store)


FIELDS = Kind(
    create=_create_field,
    get=registries.get_custom_field,
    list=registries.list_custom_fields,
    delete=registries.delete_custom_field,
    by_name=registries.custom_field_by_key,
    name=lambda row: row.key,
    exists="CUSTOM_FIELD_EXISTS",
    too_many="TOO_MANY_CUSTOM_FIELDS",
    not_found="CUSTOM_FIELD_NOT_FOUND",
)
STATUSES = Kind(
    create=_create_status,
    get=registries.get_fulfillment_status,
    list=registries.list_fulfillment_statuses,
    delete=registries.delete_fulfillment_status,
    by_name=registries.fulfillment_status_by_name,
    name=lambda row: row.status,
    exists="FULFILLMENT_STATUS_EXISTS",
    too_many="TOO_MANY_FULFILLMENT_STATUSES",
    not_found="FULFILLMENT_STATUS_NOT_FOUND",
)
both_kinds = pytest.mark.parametrize("kind", [FIELDS, STATUSES], ids=["fields", "statuses"])


@pytest.fixture
def store():
    return FakeRegistryStore()


@pytest.fixture
def program():
    # A program of its own: registries cache each program's registry by its version.
    return new_id("prg")


def names(kind: Kind, store, program_id) -> list[str]:
    rows, token = kind.list(program_id, FIRST_PAGE, store=store)
    assert token == ""
    return [kind.name(row) for row in rows]


@both_kinds
def test_an_entry_is_created_found_listed_and_deleted(kind, store, program):
    made = kind.create(store, program, "SHIPPED")
    kind.create(store, program, "PACKED")
    assert kind.get(program, made.id, store=store) == made
    assert kind.by_name(program, "SHIPPED", store=store) == made
    assert sorted(names(kind, store, program)) == ["PACKED", "SHIPPED"]
    assert names(kind, store, new_id("prg")) == []

    assert kind.delete(program, made.id, store=store) == made
    assert names(kind, store, program) == ["PACKED"]
    with pytest.raises(NotFound):
        kind.get(program, made.id, store=store)


@both_kinds
def test_a_name_taken_is_refused_and_changes_nothing(kind, store, program):
    kind.create(store, program, "SHIPPED")
    with pytest.raises(AlreadyExists) as refused:
        kind.create(store, program, "SHIPPED")
    assert refused.value.reason == kind.exists
    assert names(kind, store, program) == ["SHIPPED"]
    assert store.registry_version(program) == 1
    # Names are the program's own: another program may take it.
    assert kind.name(kind.create(store, new_id("prg"), "SHIPPED")) == "SHIPPED"


@both_kinds
def test_a_name_taken_by_a_racing_call_is_refused_the_same_way(kind, program):
    store = RacedStore()
    kind.create(store, program, "SHIPPED")
    for request_id in ("", "req-2"):
        with pytest.raises(AlreadyExists) as refused:
            kind.create(store, program, "SHIPPED", request_id)
        assert refused.value.reason == kind.exists
    assert names(kind, store, program) == ["SHIPPED"]
    assert store.registry_version(program) == 1  # the loser's bump rolled back with it


@both_kinds
def test_a_program_holds_at_most_max_entries_of_a_kind(kind, store, program):
    made = [kind.create(store, program, f"E{n}") for n in range(registries.MAX_ENTRIES)]
    version = store.registry_version(program)
    with pytest.raises(ResourceExhausted) as refused:
        kind.create(store, program, "ONE_MORE")
    assert refused.value.reason == kind.too_many
    assert refused.value.metadata == {"limit": str(registries.MAX_ENTRIES)}
    assert store.count(type(made[0]), program) == registries.MAX_ENTRIES
    assert store.registry_version(program) == version
    # The other kind and other programs have room of their own; a delete makes room here.
    other = STATUSES if kind is FIELDS else FIELDS
    other.create(store, program, "OTHER")
    kind.create(store, new_id("prg"), "ONE_MORE")
    kind.delete(program, made[0].id, store=store)
    assert kind.name(kind.create(store, program, "ONE_MORE")) == "ONE_MORE"


@both_kinds
def test_what_is_not_there_is_not_found_and_changes_nothing(kind, store, program):
    made = kind.create(store, program, "SHIPPED")
    for missing in (
        lambda: kind.get(program, "nope", store=store),
        lambda: kind.delete(program, "nope", store=store),
        lambda: kind.get(new_id("prg"), made.id, store=store),
        lambda: kind.delete(new_id("prg"), made.id, store=store),
    ):
        with pytest.raises(NotFound) as refused:
            missing()
        assert refused.value.reason == kind.not_found
        assert refused.value.metadata["id"] in ("nope", made.id)
    with pytest.raises(NotFound) as refused:
        kind.by_name(program, "LOST", store=store)
    assert refused.value.reason == kind.not_found
    assert names(kind, store, program) == ["SHIPPED"]
    assert store.registry_version(program) == 1


@both_kinds
def test_every_change_moves_the_version_by_one(kind, store, program):
    assert store.registry_version(program) == 0
    first = kind.create(store, program, "A")
    assert store.registry_version(program) == 1
    kind.create(store, program, "B")
    assert store.registry_version(program) == 2
    kind.delete(program, first.id, store=store)
    assert store.registry_version(program) == 3


def test_a_program_that_defines_nothing_has_the_empty_registry_unread(store, program):
    assert registries.registry_of(program, store=store) is EMPTY
    assert registries.registry_of(program, 0, store=Untouchable()) is EMPTY
    assert store.loads == 0


def test_the_registry_is_read_once_per_version(store, program):
    _create_field(store, program, "visits", field_type=INTEGER)
    _create_status(store, program, "SHIPPED")
    registry = registries.registry_of(program, store=store)
    assert registry.fields == (("visits", FieldRule(INTEGER, False)),)
    assert registry.statuses == {"SHIPPED"}
    loads = store.loads
    assert registries.registry_of(program, store=store) is registry
    assert store.loads == loads

    _create_status(store, program, "PACKED")
    assert registries.registry_of(program, store=store).statuses == {"SHIPPED", "PACKED"}
    assert store.loads > loads


def test_the_version_a_caller_read_decides_what_is_loaded(store, program):
    _create_status(store, program, "SHIPPED")
    # The issue path hands in the version it read with the reward: at 0 nothing is read.
    assert registries.registry_of(program, 0, store=store) is EMPTY
    assert registries.registry_of(program, 1, store=store).statuses == {"SHIPPED"}


@both_kinds
def test_a_request_id_replays_the_first_result(kind, store, program):
    first = kind.create(store, program, "SHIPPED", "req-1")
    again = kind.create(store, program, "SHIPPED", "req-1")
    assert again.id == first.id
    assert names(kind, store, program) == ["SHIPPED"]
    assert store.registry_version(program) == 1


@both_kinds
def test_a_request_id_reused_for_another_entry_is_refused(kind, store, program):
    first = kind.create(store, program, "SHIPPED", "req-1")
    with pytest.raises(AlreadyExists) as refused:
        kind.create(store, program, "PACKED", "req-1")
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert refused.value.metadata == {"request_id": "req-1", "id": first.id}
    assert names(kind, store, program) == ["SHIPPED"]
    assert store.registry_version(program) == 1


def test_a_field_request_id_reused_with_another_type_is_refused(store, program):
    _create_field(store, program, "visits", "req-1", field_type=STRING)
    with pytest.raises(AlreadyExists) as refused:
        _create_field(store, program, "visits", "req-1", field_type=INTEGER)
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize(
    ("create", "field"),
    [
        (lambda s: _create_field(s, "prg_1", "bad key"), "custom_field.key"),
        (lambda s: _create_field(s, "prg_1", "k", field_type=0), "custom_field.type"),
        (lambda s: _create_field(s, "prg_1", "k", "\n"), "request_id"),
        (lambda s: _create_status(s, "prg_1", ""), "fulfillment_status.status"),
        (lambda s: _create_status(s, "prg_1", "A\tB"), "fulfillment_status.status"),
        (lambda s: _create_status(s, "prg_1", "OK", "x" * 1000), "request_id"),
    ],
)
def test_an_invalid_definition_is_refused_before_the_store(create, field):
    with pytest.raises(InvalidArgument) as refused:
        create(Untouchable())
    assert [v.field for v in refused.value.violations] == [field]
