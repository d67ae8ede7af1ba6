"""What use cases ask of the store, as narrow interfaces: the store layer implements them
over the database, and unit tests hand the use cases in-memory fakes instead."""

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from rewards_service.domain.pagination import PageRequest
from rewards_service.store.db import RowKey
from rewards_service.store.models import BaseModel
from rewards_service.store.registries import Entry

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)


class Creates(Protocol):
    """What create_once needs: the request_id look-up, the insert and one transaction."""

    def find_by_request_id(self, kind: type[R], program_id: str, request_id: str) -> R | None: ...

    def add(self, row: R) -> None:
        """Inserts a new row; one that breaks a unique key raises Conflict."""

    def transaction(
        self,
        work: Callable[[], T],
        *,
        on_conflict: Callable[[], T] | None = None,
        locks: Sequence[RowKey] = (),
    ) -> T:
        """store.db.in_transaction: `work` in one transaction, none of it kept if it raises."""
        ...


class RegistryStore(Creates, Protocol):
    """A program's registry entries, each kind (custom fields, fulfillment statuses) kept
    apart, and the registry_version that every change moves."""

    def registry_version(self, program_id: str) -> int: ...

    def bump_version(self, program_id: str) -> None: ...

    def entries(self, kind: type[Entry], program_id: str) -> list[Entry]: ...

    def page(
        self, kind: type[Entry], program_id: str, page: PageRequest
    ) -> tuple[list[Entry], str]:
        """One page in id order, and the next page's token ("" at the end)."""
        ...

    def count(self, kind: type[Entry], program_id: str) -> int: ...

    def find(self, kind: type[Entry], program_id: str, entry_id: str) -> Entry | None: ...

    def find_named(self, kind: type[Entry], program_id: str, name: str) -> Entry | None:
        """By its name, unique within the program: a custom field's key, a status's status."""
        ...

    def delete(self, row: Entry) -> None: ...
