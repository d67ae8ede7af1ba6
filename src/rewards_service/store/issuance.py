"""Issuance over the database (services/ports.IssuanceStore): rewards as an issue takes their
stock, code draws from their pools, the issuances themselves, and the participants, balances
and registries an issue reads beside them."""

from datetime import datetime

import peewee
from rewards.v1 import common_pb2 as common

from rewards_service.domain.pagination import PageRequest
from rewards_service.store import db, ledger, queries
from rewards_service.store.models import Code, CodePool, Issuance, Reward
from rewards_service.store.participants import Participants
from rewards_service.store.registries import REGISTRIES

S = common.RewardStatus


def _pool_active(pool_id: str) -> peewee.Expression:
    return (Reward.code_pool_id == pool_id) & (Reward.status == S.REWARD_STATUS_ACTIVE)


class Issuances(Participants):
    # The store's own functions, bound as they are: most run on every issue, on the writer's
    # thread, and a wrapper would cost each a call.
    registries = REGISTRIES
    session = staticmethod(db.session)
    write = staticmethod(db.write)
    post = staticmethod(ledger.post)

    # Rewards and their stock

    take_reward_for = staticmethod(queries.take_reward_for)
    reward_to_issue = staticmethod(queries.reward_to_issue)
    take_stock = staticmethod(queries.take_stock)
    issued_units = staticmethod(queries.issued_units)
    group_of = staticmethod(queries.group_of)
    known_asset = staticmethod(queries.asset)

    def reward(self, reward_id: str) -> Reward:
        return Reward.get_by_id(reward_id)

    def sell_out(self, reward_id: str) -> None:
        queries.set_reward_status(
            (Reward.id == reward_id)
            & (Reward.status == S.REWARD_STATUS_ACTIVE)
            & (Reward.redeemed_count >= Reward.max_total),
            S.REWARD_STATUS_OUT_OF_STOCK,
        )

    def give_back_stock(self, reward_id: str, units: int) -> None:
        Reward.update(redeemed_count=Reward.redeemed_count - units).where(
            Reward.id == reward_id
        ).execute()

    def set_reward_status(self, reward_id: str, status: int) -> None:
        queries.set_reward_status(Reward.id == reward_id, status)

    # Code pools and their codes

    get_code_pool = staticmethod(queries.get_code_pool)
    has_live_code = staticmethod(queries.has_live_code)
    with_expired_count = staticmethod(queries.with_expired_count)
    draw_code = staticmethod(queries.draw_code)

    def code_pool(self, pool_id: str) -> CodePool | None:
        return CodePool.get_or_none(CodePool.id == pool_id)

    def issue_code(self, code_id: int, issuance_id: str) -> None:
        Code.update(status=Code.STATUS_ISSUED, issuance_id=issuance_id).where(
            Code.id == code_id
        ).execute()

    def take_from_pool(self, pool_id: str) -> CodePool:
        left = (
            CodePool.update(
                available_count=CodePool.available_count - 1,
                issued_count=CodePool.issued_count + 1,
            )
            .where(CodePool.id == pool_id)
            .returning(CodePool)
            .execute()
        )
        return next(iter(left))

    def pool_has_active_reward(self, pool_id: str) -> bool:
        return Reward.select().where(_pool_active(pool_id)).exists()

    def sell_out_pool(self, pool_id: str) -> None:
        queries.set_reward_status(_pool_active(pool_id), S.REWARD_STATUS_OUT_OF_STOCK)

    def void_codes(self, issuance_id: str) -> None:
        Code.update(status=Code.STATUS_VOIDED).where(Code.issuance_id == issuance_id).execute()

    # Issuances

    insert_issuance = staticmethod(queries.insert)

    def find_issuance(
        self, program_id: str, issuance_id: str, *, for_update: bool = False
    ) -> Issuance | None:
        query = Issuance.select().where(
            (Issuance.id == issuance_id) & (Issuance.program == program_id)
        )
        return (queries.locked(query) if for_update else query).first()

    save_issuance = staticmethod(queries.save_row)

    def issuances(
        self,
        program_id: str,
        page: PageRequest,
        *,
        participant_id: str,
        reward_id: str,
        status: int,
        reward_type: int,
        created_after: datetime | None,
        created_before: datetime | None,
        issuer_key_id: str,
        source_event_id: str,
        action_code: str,
    ) -> tuple[list[Issuance], str]:
        query = Issuance.select().where(Issuance.program == program_id)
        if participant_id:
            query = query.where(Issuance.participant == participant_id)
        unfiltered = query
        if reward_id:
            query = query.where(Issuance.reward == reward_id)
        if status:
            query = query.where(Issuance.status == status)
        if reward_type:
            query = query.where(Issuance.type == reward_type)
        if created_after:
            query = query.where(Issuance.issued_at >= created_after)
        if created_before:
            query = query.where(Issuance.issued_at < created_before)
        if issuer_key_id:
            query = query.where(Issuance.issuer_key_id == issuer_key_id)
        if source_event_id:
            query = query.where(Issuance.source_event_id == source_event_id)
        if action_code:
            query = query.where(Issuance.action_code == action_code)
        scope = None if query is unfiltered else unfiltered  # filtered: bounded pages
        return queries.keyset_page(query, Issuance.id, page, descending=True, scope=scope)


ISSUANCES = Issuances()
