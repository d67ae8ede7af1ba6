"""The catalog over the database (services/ports.CatalogStore): a program's assets, its code
pools with their codes, and its rewards."""

from datetime import datetime

from rewards.v1 import common_pb2 as common

from rewards_service.domain.pagination import PageRequest
from rewards_service.store import queries
from rewards_service.store.models import Asset, CodePool, Reward
from rewards_service.store.queries import Rows

S = common.RewardStatus
# Codes per INSERT statement (queries.insert_codes): four parameters each.
INSERT_BATCH = 500


def _rewards(program_id: str, *, status: int, reward_type: int, category: str, show_archived: bool):
    query = Reward.select().where(Reward.program == program_id)
    if status:
        query = query.where(Reward.status == status)
    elif not show_archived:
        query = query.where(Reward.status != S.REWARD_STATUS_ARCHIVED)
    if reward_type:
        query = query.where(Reward.type == reward_type)
    if category:
        query = query.where(Reward.category == category)
    return query


class Catalog(Rows):
    # Assets

    find_asset = staticmethod(queries.find_asset)
    get_asset = staticmethod(queries.get_asset)

    def has_asset_code(self, program_id: str, code: str) -> bool:
        return Asset.select().where((Asset.program == program_id) & (Asset.code == code)).exists()

    def assets(self, program_id: str, page: PageRequest) -> tuple[list[Asset], str]:
        query = Asset.select().where(Asset.program == program_id)
        return queries.keyset_page(query, Asset.id, page)

    # Code pools and their codes

    find_code_pool = staticmethod(queries.find_code_pool)
    get_code_pool = staticmethod(queries.get_code_pool)

    def reload_code_pool(self, pool_id: str) -> CodePool:
        return CodePool.get_by_id(pool_id)

    def code_pools(self, program_id: str, page: PageRequest) -> tuple[list[CodePool], str]:
        query = CodePool.select().where(CodePool.program == program_id)
        return queries.keyset_page(query, CodePool.id, page)

    with_expired_count = staticmethod(queries.with_expired_count)
    has_live_code = staticmethod(queries.has_live_code)

    def add_codes(self, pool_id: str, codes: list[tuple[str, datetime | None]]) -> int:
        added = 0
        for start in range(0, len(codes), INSERT_BATCH):
            added += queries.insert_codes(pool_id, codes[start : start + INSERT_BATCH])
        return added

    def add_to_pool_counts(self, pool_id: str, added: int) -> None:
        CodePool.update(
            total_count=CodePool.total_count + added,
            available_count=CodePool.available_count + added,
        ).where(CodePool.id == pool_id).execute()

    restock_pool_rewards = staticmethod(queries.restock_pool_rewards)

    # Rewards

    get_reward = staticmethod(queries.get_reward)
    save_reward = staticmethod(queries.save_reward)

    def rewards(
        self,
        program_id: str,
        page: PageRequest,
        *,
        status: int,
        reward_type: int,
        category: str,
        show_archived: bool,
    ) -> tuple[list[Reward], str]:
        query = _rewards(
            program_id,
            status=status,
            reward_type=reward_type,
            category=category,
            show_archived=show_archived,
        )
        return queries.keyset_page(query, Reward.id, page)

    def count_rewards(
        self, program_id: str, *, status: int, reward_type: int, category: str, show_archived: bool
    ) -> int:
        query = _rewards(
            program_id,
            status=status,
            reward_type=reward_type,
            category=category,
            show_archived=show_archived,
        )
        return query.count()


CATALOG = Catalog()
