"""Program registries over the database (services/ports.RegistryStore): custom fields and
fulfillment statuses, and the program's registry_version."""

from typing import TypeVar

from rewards_service.domain.pagination import PageRequest
from rewards_service.store import queries
from rewards_service.store.models import CustomFieldDef, FulfillmentStatusDef
from rewards_service.store.queries import Rows

# A registry entry by its record type, which names the kind of entry a call is about.
Entry = TypeVar("Entry", CustomFieldDef, FulfillmentStatusDef)
# The column an entry is named by, unique within its program.
_NAME = {CustomFieldDef: CustomFieldDef.key, FulfillmentStatusDef: FulfillmentStatusDef.status}


class Registries(Rows):
    def registry_version(self, program_id: str) -> int:
        return queries.registry_version(program_id)

    def bump_version(self, program_id: str) -> None:
        queries.bump_registry_version(program_id)

    def entries(self, kind: type[Entry], program_id: str) -> list[Entry]:
        return list(kind.select().where(kind.program == program_id))

    def page(
        self, kind: type[Entry], program_id: str, page: PageRequest
    ) -> tuple[list[Entry], str]:
        return queries.keyset_page(kind.select().where(kind.program == program_id), kind.id, page)

    def count(self, kind: type[Entry], program_id: str) -> int:
        return kind.select().where(kind.program == program_id).count()

    def find(self, kind: type[Entry], program_id: str, entry_id: str) -> Entry | None:
        return kind.get_or_none((kind.id == entry_id) & (kind.program == program_id))

    def find_named(self, kind: type[Entry], program_id: str, name: str) -> Entry | None:
        return kind.get_or_none((kind.program == program_id) & (_NAME[kind] == name))

    def delete(self, row: Entry) -> None:
        row.delete_instance()


REGISTRIES = Registries()
