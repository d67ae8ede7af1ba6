"""Participant groups through a real server: membership (one group per participant), group
balances with their own ledger, AdjustGroupBalance idempotency, IssueReward paid by the
group (pay_from GROUP) and refunded to it on revoke."""

from decimal import Decimal

import grpc
import pytest
from rewards.v1 import common_pb2, groups_pb2, issuance_pb2

from tests import factories as f
from tests.conftest import new_program
from tests.helpers import expect_failure, make_api

GROUP = groups_pb2.PAY_FROM_GROUP


def make_group(api, name: str = "Household", **fields) -> groups_pb2.Group:
    return api.groups.CreateGroup(
        groups_pb2.CreateGroupRequest(group=groups_pb2.Group(name=name), **fields)
    )


def add(api, group_id: str, participant_id: str) -> groups_pb2.GroupMember:
    return api.groups.AddGroupMember(
        groups_pb2.AddGroupMemberRequest(group_id=group_id, participant=f.ref(participant_id))
    )


def adjust(api, group_id: str, asset_id: str, delta: str, **fields):
    return api.groups.AdjustGroupBalance(
        groups_pb2.AdjustGroupBalanceRequest(
            group_id=group_id, asset_id=asset_id, delta=delta, **fields
        )
    )


def group_balance(api, group_id: str, asset_id: str) -> groups_pb2.GroupBalance:
    return api.groups.GetGroupBalance(
        groups_pb2.GetGroupBalanceRequest(group_id=group_id, asset_id=asset_id)
    )


def group_entries(api, group_id: str, asset_id: str) -> list[groups_pb2.GroupLedgerEntry]:
    entries, token = [], ""
    while True:
        page = api.groups.ListGroupLedgerEntries(
            groups_pb2.ListGroupLedgerEntriesRequest(
                group_id=group_id, asset_id=asset_id, page_size=1000, page_token=token
            )
        )
        entries += page.entries
        token = page.next_page_token
        if not token:
            return entries


def assert_group_ledger_consistent(api, group_id: str, asset_id: str) -> None:
    """The balance equals the sum of its entries, and each entry moves the one before it."""
    entries = list(reversed(group_entries(api, group_id, asset_id)))
    held = Decimal(0)
    for entry in entries:
        held += Decimal(entry.delta)
        assert Decimal(entry.balance_after) == held
        assert held >= 0
    assert Decimal(group_balance(api, group_id, asset_id).available) == held


def test_members_join_one_group_and_leave_it(admin):
    home, office = make_group(admin), make_group(admin, "Office")
    user = f.participant(admin, email="ada@example.com")
    joined = add(admin, home.id, user.id)
    assert (joined.group_id, joined.participant_id) == (home.id, user.id)
    # Adding again (by another identifier) returns the membership unchanged.
    again = admin.groups.AddGroupMember(
        groups_pb2.AddGroupMemberRequest(
            group_id=home.id, participant=f.ref(email="ADA@example.com")
        )
    )
    assert again == joined
    failure = expect_failure(add, admin, office.id, user.id)
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ALREADY_IN_GROUP",
    )
    assert failure.metadata["group_id"] == home.id
    listed = admin.groups.ListGroupMembers(groups_pb2.ListGroupMembersRequest(group_id=home.id))
    assert [m.participant_id for m in listed.members] == [user.id]
    admin.groups.RemoveGroupMember(
        groups_pb2.RemoveGroupMemberRequest(group_id=home.id, participant=f.ref(user.id))
    )
    failure = expect_failure(
        admin.groups.RemoveGroupMember,
        groups_pb2.RemoveGroupMemberRequest(group_id=home.id, participant=f.ref(user.id)),
    )
    assert failure.reason == "NOT_GROUP_MEMBER"
    assert add(admin, office.id, user.id).group_id == office.id


def test_members_are_listed_page_by_page(admin):
    home = make_group(admin)
    members = sorted(f.participant(admin).id for _ in range(5))
    for participant_id in reversed(members):
        add(admin, home.id, participant_id)
    seen, tokens = [], [""]
    while True:
        page = admin.groups.ListGroupMembers(
            groups_pb2.ListGroupMembersRequest(group_id=home.id, page_size=2, page_token=tokens[-1])
        )
        assert len(page.members) <= 2
        seen += [m.participant_id for m in page.members]
        if not page.next_page_token:
            break
        tokens.append(page.next_page_token)
    assert seen == members
    # A token is bound to its group.
    failure = expect_failure(
        admin.groups.ListGroupMembers,
        groups_pb2.ListGroupMembersRequest(group_id=make_group(admin).id, page_token=tokens[1]),
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_groups_and_other_programs_groups_are_not_found(admin, channel):
    other_key = new_program("other")
    other = make_api(channel, other_key.program_id, other_key.api_key)
    theirs = make_group(other)
    for group_id in ("grp_missing", theirs.id):
        failure = expect_failure(admin.groups.GetGroup, groups_pb2.GetGroupRequest(id=group_id))
        assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "GROUP_NOT_FOUND")
    failure = expect_failure(add, admin, theirs.id, f.participant(admin).id)
    assert failure.reason == "GROUP_NOT_FOUND"


def test_create_group_is_idempotent_on_request_id(admin):
    first = make_group(admin, request_id="grp-1")
    assert make_group(admin, request_id="grp-1") == first
    failure = expect_failure(make_group, admin, "Other name", request_id="grp-1")
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    listed = admin.groups.ListGroups(groups_pb2.ListGroupsRequest())
    assert [g.id for g in listed.groups] == [first.id]


def test_group_balance_moves_by_its_own_ledger_and_never_below_zero(admin):
    points = f.asset(admin)
    home = make_group(admin)
    assert group_balance(admin, home.id, points.id).available == "0.00"
    made = adjust(admin, home.id, points.id, "50.00", reason="top up", request_id="adj-1")
    assert (made.balance.available, made.entry.balance_after) == ("50.00", "50.00")
    assert not made.idempotent_replay
    replay = adjust(admin, home.id, points.id, "50.00", reason="top up", request_id="adj-1")
    assert replay.idempotent_replay and replay.entry.id == made.entry.id
    failure = expect_failure(adjust, admin, home.id, points.id, "60.00", request_id="adj-1")
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"
    failure = expect_failure(adjust, admin, home.id, points.id, "-50.01")
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_BALANCE",
    )
    adjust(admin, home.id, points.id, "-20.00")
    assert group_balance(admin, home.id, points.id).available == "30.00"
    # The members' own balances never moved.
    assert_group_ledger_consistent(admin, home.id, points.id)


def test_issue_paid_by_the_group_and_refunded_to_it(admin):
    points = f.asset(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="10")
    home = make_group(admin)
    member, outsider = f.participant(admin), f.participant(admin)
    add(admin, home.id, member.id)
    adjust(admin, home.id, points.id, "25.00")
    f.fund(admin, member.id, points.id, "10.00")
    issued = f.issue(admin, reward.id, member.id, pay_from=GROUP).issuance
    assert issued.cost.amount == "10.00" and issued.cost_group_id == home.id
    assert group_balance(admin, home.id, points.id).available == "15.00"
    assert f.balance(admin, member.id, points.id).available == "10.00"
    [spend, _] = group_entries(admin, home.id, points.id)
    assert (spend.kind, spend.participant_id, spend.issuance_id) == (
        common_pb2.LEDGER_ENTRY_KIND_SPEND,
        member.id,
        issued.id,
    )
    # The default still charges the participant.
    own = f.issue(admin, reward.id, member.id, quantity=0).issuance
    assert own.cost_group_id == ""
    assert f.balance(admin, member.id, points.id).available == "0.00"
    f.revoke(admin, issued.id)
    assert group_balance(admin, home.id, points.id).available == "25.00"
    assert f.balance(admin, member.id, points.id).available == "0.00"
    assert_group_ledger_consistent(admin, home.id, points.id)
    failure = expect_failure(f.issue, admin, reward.id, outsider.id, pay_from=GROUP)
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "NOT_GROUP_MEMBER",
    )
    adjust(admin, home.id, points.id, "-20.00")
    failure = expect_failure(f.issue, admin, reward.id, member.id, pay_from=GROUP)
    assert failure.reason == "INSUFFICIENT_BALANCE"
    assert failure.metadata["group_id"] == home.id


def test_pay_from_is_part_of_a_replay(admin):
    points = f.asset(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="1")
    home = make_group(admin)
    member = f.participant(admin)
    add(admin, home.id, member.id)
    adjust(admin, home.id, points.id, "5")
    f.fund(admin, member.id, points.id, "5")
    first = f.issue(admin, reward.id, member.id, pay_from=GROUP, request_id="r-1")
    again = f.issue(admin, reward.id, member.id, pay_from=GROUP, request_id="r-1")
    assert again.idempotent_replay and again.issuance.id == first.issuance.id
    failure = expect_failure(f.issue, admin, reward.id, member.id, request_id="r-1")
    assert failure.reason == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("pay_from", [7, -1])
def test_an_unknown_pay_from_is_invalid_argument(admin, pay_from):
    reward = f.reward(admin)
    failure = expect_failure(
        admin.issuance.IssueReward,
        issuance_pb2.IssueRewardRequest(
            reward_id=reward.id, participant=f.ref(f.participant(admin).id), pay_from=pay_from
        ),
    )
    assert (failure.code, "pay_from" in failure.violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        True,
    )


@pytest.mark.parametrize("delta", ["NaN", "1e9999", " 1", "1_000"])
def test_a_malformed_group_delta_is_refused_before_anything_is_looked_up(admin, delta):
    points = f.asset(admin)
    group = make_group(admin, "Home")
    adjust(admin, group.id, points.id, "1.00", request_id="used")
    for group_id, asset_id, fields in (
        ("grp_nothing", points.id, {}),
        (group.id, "ast_nothing", {}),
        (group.id, points.id, {"request_id": "used"}),
    ):
        failure = expect_failure(adjust, admin, group_id, asset_id, delta, **fields)
        assert (failure.reason, set(failure.violations)) == ("VALIDATION_FAILED", {"delta"})
