"""Program registries: custom fields and fulfillment statuses, one function per RPC, and the
registry the issue path checks against.

The issue path reads the program's registry_version in the statement that reads (and locks)
the reward, in the call's own transaction, and keeps each program's registry in memory under
it: a program that defines nothing costs no query at all, and a change made through any
replica bumps the version in the same transaction, so the next call anywhere loads the new
registry.

Each use case reaches the database through `store` (services/ports.RegistryStore): the
store's own by default, an in-memory one in unit tests."""

from rewards_service.bounded import BoundedCache
from rewards_service.domain.errors import AlreadyExists, NotFound, ResourceExhausted
from rewards_service.domain.ids import new_id
from rewards_service.domain.issuance import digest
from rewards_service.domain.pagination import PageRequest
from rewards_service.domain.registries import (
    EMPTY,
    FieldRule,
    Registry,
    check_field_definition,
    check_status_definition,
)
from rewards_service.domain.validation import Violations, check_request_id
from rewards_service.services.catalog import create_once
from rewards_service.services.ports import Entry, RegistryStore
from rewards_service.store.models import CustomFieldDef, FulfillmentStatusDef
from rewards_service.store.registries import REGISTRIES

CACHE_BYTES = 4 * 1024 * 1024
# Entries per program and kind: every issue checks against the whole registry, which is
# kept in memory, so a program cannot grow it without bound.
MAX_ENTRIES = 100
# program_id -> (registry_version, its registry)
_registries: BoundedCache[str, tuple[int, Registry]] = BoundedCache(CACHE_BYTES)


def registry_of(
    program_id: str, version: int | None = None, *, store: RegistryStore = REGISTRIES
) -> Registry:
    """The program's registry as of the running transaction; `version` is its
    registry_version when the caller read it already (the issue path reads it with the
    reward)."""
    if version is None:
        version = store.registry_version(program_id)
    if not version:
        return EMPTY
    cached = _registries.get(program_id)
    if cached is not None and cached[0] == version:
        return cached[1]
    # Read after the version: these rows are at least as new as it, never older.
    fields = store.entries(CustomFieldDef, program_id)
    statuses = store.entries(FulfillmentStatusDef, program_id)
    registry = Registry(
        fields=tuple(sorted((f.key, FieldRule(f.type, f.required)) for f in fields)),
        statuses=frozenset(s.status for s in statuses),
    )
    _registries.put(program_id, (version, registry), registry.size())
    return registry


def _check_room(
    store: RegistryStore, kind: type[Entry], program_id: str, what: str, reason: str
) -> None:
    """In the creating transaction: refuses the entry past MAX_ENTRIES of its kind."""
    if store.count(kind, program_id) >= MAX_ENTRIES:
        raise ResourceExhausted(
            f"This program has {MAX_ENTRIES} {what}; delete one first.",
            reason=reason,
            metadata={"limit": MAX_ENTRIES},
        )


def _entry(
    store: RegistryStore, kind: type[Entry], program_id: str, entry_id: str, what: str, reason: str
) -> Entry:
    row = store.find(kind, program_id, entry_id)
    if row is None:
        raise NotFound(f"No {what} {entry_id}.", reason=reason, metadata={"id": entry_id})
    return row


def _delete(
    store: RegistryStore, kind: type[Entry], program_id: str, entry_id: str, what: str, reason: str
) -> Entry:
    def work() -> Entry:
        row = _entry(store, kind, program_id, entry_id, what, reason)
        store.delete(row)
        store.bump_version(program_id)
        return row

    return store.transaction(work)


# Custom fields


def create_custom_field(
    program_id: str,
    key: str,
    field_type: int,
    required: bool,
    request_id: str,
    *,
    store: RegistryStore = REGISTRIES,
) -> CustomFieldDef:
    v = Violations()
    check_field_definition(v, key, field_type)
    check_request_id(v, "request_id", request_id)
    v.raise_if_any()

    def exists() -> AlreadyExists:
        return AlreadyExists(
            f"This program already has a custom field {key}.",
            reason="CUSTOM_FIELD_EXISTS",
            metadata={"key": key},
        )

    def create() -> CustomFieldDef:
        if store.find_named(CustomFieldDef, program_id, key) is not None:
            raise exists()
        _check_room(store, CustomFieldDef, program_id, "custom fields", "TOO_MANY_CUSTOM_FIELDS")
        store.bump_version(program_id)
        return CustomFieldDef(
            id=new_id("cfd"), program=program_id, key=key, type=field_type, required=required
        )

    fingerprint = digest("custom_field", key, field_type, required)
    return create_once(
        CustomFieldDef, program_id, request_id, fingerprint, create, duplicate=exists, store=store
    )


def list_custom_fields(
    program_id: str, page: PageRequest, *, store: RegistryStore = REGISTRIES
) -> tuple[list[CustomFieldDef], str]:
    return store.page(CustomFieldDef, program_id, page)


def get_custom_field(
    program_id: str, field_id: str, *, store: RegistryStore = REGISTRIES
) -> CustomFieldDef:
    return _entry(
        store, CustomFieldDef, program_id, field_id, "custom field", "CUSTOM_FIELD_NOT_FOUND"
    )


def delete_custom_field(
    program_id: str, field_id: str, *, store: RegistryStore = REGISTRIES
) -> CustomFieldDef:
    return _delete(
        store, CustomFieldDef, program_id, field_id, "custom field", "CUSTOM_FIELD_NOT_FOUND"
    )


def custom_field_by_key(
    program_id: str, key: str, *, store: RegistryStore = REGISTRIES
) -> CustomFieldDef:
    row = store.find_named(CustomFieldDef, program_id, key)
    if row is None:
        raise NotFound(
            f"No custom field {key}.", reason="CUSTOM_FIELD_NOT_FOUND", metadata={"key": key}
        )
    return row


# Fulfillment statuses


def create_fulfillment_status(
    program_id: str, status: str, request_id: str, *, store: RegistryStore = REGISTRIES
) -> FulfillmentStatusDef:
    v = Violations()
    check_status_definition(v, status)
    check_request_id(v, "request_id", request_id)
    v.raise_if_any()

    def exists() -> AlreadyExists:
        return AlreadyExists(
            f"This program already has a fulfillment status {status}.",
            reason="FULFILLMENT_STATUS_EXISTS",
            metadata={"status": status},
        )

    def create() -> FulfillmentStatusDef:
        if store.find_named(FulfillmentStatusDef, program_id, status) is not None:
            raise exists()
        _check_room(
            store,
            FulfillmentStatusDef,
            program_id,
            "fulfillment statuses",
            "TOO_MANY_FULFILLMENT_STATUSES",
        )
        store.bump_version(program_id)
        return FulfillmentStatusDef(id=new_id("fst"), program=program_id, status=status)

    fingerprint = digest("fulfillment_status", status)
    return create_once(
        FulfillmentStatusDef,
        program_id,
        request_id,
        fingerprint,
        create,
        duplicate=exists,
        store=store,
    )


def list_fulfillment_statuses(
    program_id: str, page: PageRequest, *, store: RegistryStore = REGISTRIES
) -> tuple[list[FulfillmentStatusDef], str]:
    return store.page(FulfillmentStatusDef, program_id, page)


def get_fulfillment_status(
    program_id: str, status_id: str, *, store: RegistryStore = REGISTRIES
) -> FulfillmentStatusDef:
    return _entry(
        store,
        FulfillmentStatusDef,
        program_id,
        status_id,
        "fulfillment status",
        "FULFILLMENT_STATUS_NOT_FOUND",
    )


def delete_fulfillment_status(
    program_id: str, status_id: str, *, store: RegistryStore = REGISTRIES
) -> FulfillmentStatusDef:
    return _delete(
        store,
        FulfillmentStatusDef,
        program_id,
        status_id,
        "fulfillment status",
        "FULFILLMENT_STATUS_NOT_FOUND",
    )


def fulfillment_status_by_name(
    program_id: str, status: str, *, store: RegistryStore = REGISTRIES
) -> FulfillmentStatusDef:
    row = store.find_named(FulfillmentStatusDef, program_id, status)
    if row is None:
        raise NotFound(
            f"No fulfillment status {status}.",
            reason="FULFILLMENT_STATUS_NOT_FOUND",
            metadata={"status": status},
        )
    return row
