"""Programs and their API keys over the database (services/ports.ProgramStore)."""

from rewards_service.store.models import ApiKey, Program
from rewards_service.store.queries import Rows


class Programs(Rows):
    def has_any_program(self) -> bool:
        return Program.select().exists()

    def has_program(self, program_id: str) -> bool:
        return Program.select().where(Program.id == program_id).exists()

    def programs(self) -> list[Program]:
        return list(Program.select().order_by(Program.id))

    def find_key(self, key_id: str) -> ApiKey | None:
        return ApiKey.get_or_none(ApiKey.id == key_id)

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        return ApiKey.get_or_none(ApiKey.key_hash == key_hash)

    def keys(self, program_id: str) -> list[ApiKey]:
        return list(ApiKey.select().where(ApiKey.program == program_id).order_by(ApiKey.id))


PROGRAMS = Programs()
