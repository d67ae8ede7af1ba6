"""ParticipantGroups servicer: parse the request, call the use case, build the response."""

from rewards.v1 import groups_pb2, groups_pb2_grpc

from rewards_service.api import convert
from rewards_service.auth import caller
from rewards_service.domain.validation import Violations, format_amount
from rewards_service.services import groups
from rewards_service.services.groups import GroupBalanceView
from rewards_service.services.records import GroupLedgerEntry, GroupMember, ParticipantGroup
from rewards_service.services.scaled import Scaled


def group_out(row: ParticipantGroup) -> groups_pb2.Group:
    return groups_pb2.Group(
        id=row.id,
        name=row.name,
        metadata=row.metadata,
        created_at=convert.timestamp_out(row.created_at),
    )


def member_out(row: GroupMember) -> groups_pb2.GroupMember:
    return groups_pb2.GroupMember(
        group_id=row.group_id,
        participant_id=row.participant_id,
        joined_at=convert.timestamp_out(row.joined_at),
    )


def balance_out(view: GroupBalanceView) -> groups_pb2.GroupBalance:
    return groups_pb2.GroupBalance(
        group_id=view.group_id,
        asset_id=view.asset_id,
        available=format_amount(view.available, view.scale),
        lifetime_earned=format_amount(view.lifetime_earned, view.scale),
        lifetime_spent=format_amount(view.lifetime_spent, view.scale),
    )


def entry_out(found: Scaled[GroupLedgerEntry]) -> groups_pb2.GroupLedgerEntry:
    row = found.row
    scale = found.scale(row.asset_id)
    return groups_pb2.GroupLedgerEntry(
        id=row.id,
        group_id=row.group_id,
        asset_id=row.asset_id,
        participant_id=row.participant_id or "",
        delta=format_amount(row.delta, scale),
        balance_after=format_amount(row.balance_after, scale),
        kind=row.kind,
        issuance_id=row.issuance_id or "",
        reason=row.reason,
        created_at=convert.timestamp_out(row.created_at),
    )


class ParticipantGroupsServicer(groups_pb2_grpc.ParticipantGroupsServicer):
    def CreateGroup(self, request, context):
        group = request.group
        row = groups.create_group(
            caller().program_id, group.name, dict(group.metadata), request.request_id
        )
        return group_out(row)

    def GetGroup(self, request, context):
        return group_out(groups.get_group(caller().program_id, request.id))

    def ListGroups(self, request, context):
        v = Violations()
        page = convert.page_in(v, request, {})
        v.raise_if_any()
        rows, token = groups.list_groups(caller().program_id, page)
        return groups_pb2.ListGroupsResponse(
            groups=[group_out(r) for r in rows], next_page_token=token
        )

    def AddGroupMember(self, request, context):
        row = groups.add_member(caller().program_id, request.group_id, convert.ref_in(request))
        return member_out(row)

    def RemoveGroupMember(self, request, context):
        row = groups.remove_member(caller().program_id, request.group_id, convert.ref_in(request))
        return member_out(row)

    def ListGroupMembers(self, request, context):
        v = Violations()
        page = convert.page_in(v, request, {"group_id": request.group_id})
        v.raise_if_any()
        rows, token = groups.list_members(caller().program_id, request.group_id, page)
        return groups_pb2.ListGroupMembersResponse(
            members=[member_out(r) for r in rows], next_page_token=token
        )

    def GetGroupBalance(self, request, context):
        v = Violations()
        v.check(bool(request.asset_id), "asset_id", "is required")
        v.raise_if_any()
        view = groups.get_group_balance(caller().program_id, request.group_id, request.asset_id)
        return balance_out(view)

    def ListGroupLedgerEntries(self, request, context):
        v = Violations()
        filters = {"group_id": request.group_id, "asset_id": request.asset_id}
        page = convert.page_in(v, request, filters)
        v.raise_if_any()
        rows, token = groups.list_group_ledger_entries(
            caller().program_id, request.group_id, request.asset_id, page
        )
        return groups_pb2.ListGroupLedgerEntriesResponse(
            entries=[entry_out(r) for r in rows], next_page_token=token
        )

    def AdjustGroupBalance(self, request, context):
        entry, view, replay = groups.adjust_group_balance(
            caller().program_id,
            request.group_id,
            request.asset_id,
            request.delta,
            request.reason,
            request.request_id,
        )
        return groups_pb2.AdjustGroupBalanceResponse(
            entry=entry_out(entry), balance=balance_out(view), idempotent_replay=replay
        )
