"""ParticipantGroups methods: groups, their members, and the balances they share."""

from __future__ import annotations

from collections.abc import Mapping

from rewards.v1 import groups_pb2

from rewards_client._call import Call, Pages
from rewards_client.messages import (
    DecimalLike,
    ParticipantLike,
    decimal_str,
    new_request_id,
    to_ref,
)


def create_group(
    name: str,
    *,
    metadata: Mapping[str, str] | None = None,
    request_id: str | None = None,
    timeout: float | None = None,
) -> Call[groups_pb2.Group]:
    """Create a participant group (a household, a company); admin only. A request_id is
    made when none is given, once per call, so a retried create makes one group."""
    request = groups_pb2.CreateGroupRequest(
        group=groups_pb2.Group(name=name, metadata=metadata),
        request_id=request_id or new_request_id(),
    )
    return Call(request, groups_pb2.Group, timeout)


def get_group(id: str, *, timeout: float | None = None) -> Call[groups_pb2.Group]:
    """One group by id. NotFound (GROUP_NOT_FOUND) if there is none."""
    return Call(groups_pb2.GetGroupRequest(id=id), groups_pb2.Group, timeout)


def list_groups(
    *, page_size: int = 0, page_token: str = "", timeout: float | None = None
) -> Call[groups_pb2.ListGroupsResponse]:
    """One page of groups, oldest first."""
    request = groups_pb2.ListGroupsRequest(page_size=page_size, page_token=page_token)
    return Call(request, groups_pb2.ListGroupsResponse, timeout)


def iter_groups(
    *, page_size: int = 0, timeout: float | None = None
) -> Pages[groups_pb2.ListGroupsResponse, groups_pb2.Group]:
    """Every group, page by page."""
    return Pages(
        lambda token: list_groups(page_size=page_size, page_token=token, timeout=timeout),
        lambda page: page.groups,
    )


def add_group_member(
    group_id: str, participant: ParticipantLike, *, timeout: float | None = None
) -> Call[groups_pb2.GroupMember]:
    """Add a participant to a group (admin only); adding a member again returns its
    membership. FailedPrecondition ALREADY_IN_GROUP if it is in another group."""
    request = groups_pb2.AddGroupMemberRequest(group_id=group_id, participant=to_ref(participant))
    return Call(request, groups_pb2.GroupMember, timeout)


def remove_group_member(
    group_id: str, participant: ParticipantLike, *, timeout: float | None = None
) -> Call[groups_pb2.GroupMember]:
    """Remove a participant from a group (admin only). FailedPrecondition
    NOT_GROUP_MEMBER if it is not in it."""
    request = groups_pb2.RemoveGroupMemberRequest(
        group_id=group_id, participant=to_ref(participant)
    )
    return Call(request, groups_pb2.GroupMember, timeout)


def list_group_members(
    group_id: str,
    *,
    page_size: int = 0,
    page_token: str = "",
    timeout: float | None = None,
) -> Call[groups_pb2.ListGroupMembersResponse]:
    """One page of a group's members."""
    request = groups_pb2.ListGroupMembersRequest(
        group_id=group_id, page_size=page_size, page_token=page_token
    )
    return Call(request, groups_pb2.ListGroupMembersResponse, timeout)


def iter_group_members(
    group_id: str, *, page_size: int = 0, timeout: float | None = None
) -> Pages[groups_pb2.ListGroupMembersResponse, groups_pb2.GroupMember]:
    """Every member of a group, page by page."""
    return Pages(
        lambda token: list_group_members(
            group_id, page_size=page_size, page_token=token, timeout=timeout
        ),
        lambda page: page.members,
    )


def get_group_balance(
    group_id: str, asset_id: str, *, timeout: float | None = None
) -> Call[groups_pb2.GroupBalance]:
    """A group's balance of one asset: available, lifetime_earned, lifetime_spent."""
    request = groups_pb2.GetGroupBalanceRequest(group_id=group_id, asset_id=asset_id)
    return Call(request, groups_pb2.GroupBalance, timeout)


def list_group_ledger_entries(
    group_id: str,
    *,
    asset_id: str = "",
    page_size: int = 0,
    page_token: str = "",
    timeout: float | None = None,
) -> Call[groups_pb2.ListGroupLedgerEntriesResponse]:
    """One page of a group's ledger entries, of one asset or all of them."""
    request = groups_pb2.ListGroupLedgerEntriesRequest(
        group_id=group_id, asset_id=asset_id, page_size=page_size, page_token=page_token
    )
    return Call(request, groups_pb2.ListGroupLedgerEntriesResponse, timeout)


def iter_group_ledger_entries(
    group_id: str,
    *,
    asset_id: str = "",
    page_size: int = 0,
    timeout: float | None = None,
) -> Pages[groups_pb2.ListGroupLedgerEntriesResponse, groups_pb2.GroupLedgerEntry]:
    """Every ledger entry of a group, page by page."""
    return Pages(
        lambda token: list_group_ledger_entries(
            group_id, asset_id=asset_id, page_size=page_size, page_token=token, timeout=timeout
        ),
        lambda page: page.entries,
    )


def adjust_group_balance(
    group_id: str,
    *,
    asset_id: str,
    delta: DecimalLike,
    reason: str = "",
    request_id: str | None = None,
    timeout: float | None = None,
) -> Call[groups_pb2.AdjustGroupBalanceResponse]:
    """Add a signed delta to a group's balance (admin only); InsufficientBalance if it
    would go below zero. A request_id is made when none is given, once per call."""
    request = groups_pb2.AdjustGroupBalanceRequest(
        group_id=group_id,
        asset_id=asset_id,
        delta=decimal_str(delta),
        reason=reason,
        request_id=request_id or new_request_id(),
    )
    return Call(request, groups_pb2.AdjustGroupBalanceResponse, timeout)
