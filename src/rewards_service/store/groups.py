"""Participant groups over the database (services/ports.GroupStore): groups, their members,
and the balances the members share, which move through ledger.post only."""

from rewards_service.domain.pagination import PageRequest
from rewards_service.store import ledger, queries
from rewards_service.store.models import (
    Asset,
    GroupBalance,
    GroupLedgerEntry,
    GroupMember,
    ParticipantGroup,
)
from rewards_service.store.queries import Rows


class Groups(Rows):
    participants_with = staticmethod(queries.participants_with)

    def find_group(self, program_id: str, group_id: str) -> ParticipantGroup | None:
        return (
            ParticipantGroup.select()
            .where((ParticipantGroup.id == group_id) & (ParticipantGroup.program == program_id))
            .first()
        )

    def groups_page(self, program_id: str, page: PageRequest) -> tuple[list[ParticipantGroup], str]:
        query = ParticipantGroup.select().where(ParticipantGroup.program == program_id)
        return queries.keyset_page(query, ParticipantGroup.id, page)

    def membership(self, participant_id: str) -> GroupMember | None:
        return GroupMember.get_or_none(GroupMember.participant == participant_id)

    def member(self, group_id: str, participant_id: str) -> GroupMember | None:
        return GroupMember.get_or_none(
            (GroupMember.participant == participant_id) & (GroupMember.group == group_id)
        )

    def members_page(self, group_id: str, page: PageRequest) -> tuple[list[GroupMember], str]:
        query = GroupMember.select().where(GroupMember.group == group_id)
        return queries.keyset_page(query, GroupMember.participant, page)

    def delete(self, row: GroupMember) -> None:
        row.delete_instance()

    get_asset = staticmethod(queries.get_asset)
    asset_scale = staticmethod(queries.asset_scale)

    def balance(self, group_id: str, asset_id: str) -> GroupBalance:
        return ledger.group_balance_of(group_id, asset_id)

    def ledger_page(
        self, group_id: str, asset_id: str, page: PageRequest
    ) -> tuple[list[GroupLedgerEntry], str]:
        return queries.ledger_page(
            GroupLedgerEntry, GroupLedgerEntry.group, group_id, asset_id, page
        )

    def post(
        self,
        *,
        program_id: str,
        group_id: str,
        asset: Asset,
        delta: int,
        kind: int,
        reason: str,
        request_id: str | None,
        request_hash: str,
        field: str,
    ) -> GroupLedgerEntry:
        entry = ledger.post(
            program_id=program_id,
            participant_id=None,
            group_id=group_id,
            asset=asset,
            delta=delta,
            kind=kind,
            reason=reason,
            request_id=request_id,
            request_hash=request_hash,
            field=field,
        )
        assert isinstance(entry, GroupLedgerEntry)
        return entry


GROUPS = Groups()
