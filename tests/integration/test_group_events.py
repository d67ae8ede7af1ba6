"""Group balances on the event feed: every movement of a group's balance (AdjustGroupBalance,
an issue paid by the group, its revoke's refund) has its GROUP_BALANCE_CHANGED event, with
the entry that moved it, in the transaction that moved it; a refused movement has none."""

import grpc
from rewards.v1 import common_pb2, events_pb2, groups_pb2

from tests import factories as f
from tests.helpers import expect_failure
from tests.integration.test_events import kinds, listed
from tests.integration.test_groups import add, adjust, group_entries, make_group

E = events_pb2.EventType
GROUP = groups_pb2.PAY_FROM_GROUP


def watched(api, after: int, count: int) -> list[events_pb2.Event]:
    stream = api.events.WatchEvents(events_pb2.WatchEventsRequest(after_position=after))
    try:
        return [next(stream).event for _ in range(count)]
    finally:
        stream.cancel()


def household(admin):
    """(points, a reward costing 10 of them, a group, its member)."""
    points = f.asset(admin)
    reward = f.reward(admin, cost_asset_id=points.id, unit_cost="10")
    home = make_group(admin)
    member = f.participant(admin)
    add(admin, home.id, member.id)
    return points, reward, home, member


def test_each_group_balance_movement_has_its_event_in_order(admin):
    points, reward, home, member = household(admin)
    before = listed(admin)[-1].position

    topped = adjust(admin, home.id, points.id, "25.00", reason="top up", request_id="adj-1")
    issued = f.issue(admin, reward.id, member.id, pay_from=GROUP).issuance
    revoked = f.revoke(admin, issued.id, "returned")

    found = listed(admin, after=before)
    assert kinds(found) == [
        "GROUP_BALANCE_CHANGED",  # the top-up
        "GROUP_BALANCE_CHANGED",  # the issue's spend, before its issuance
        "ISSUANCE_ISSUED",
        "GROUP_BALANCE_CHANGED",  # the revoke's refund
        "ISSUANCE_REVOKED",
    ]
    assert [e.position for e in found] == list(range(before + 1, before + 6))
    top_up, spend, _, refund, _ = found
    # The same message AdjustGroupBalance returned and the group's ledger lists.
    assert top_up.group_ledger_entry == topped.entry
    assert not top_up.HasField("ledger_entry")
    assert (spend.group_ledger_entry.delta, spend.group_ledger_entry.balance_after) == (
        "-10.00",
        "15.00",
    )
    assert spend.group_ledger_entry.kind == common_pb2.LEDGER_ENTRY_KIND_SPEND
    assert spend.group_ledger_entry.participant_id == member.id
    assert spend.group_ledger_entry.issuance_id == issued.id == revoked.id
    assert (refund.group_ledger_entry.delta, refund.group_ledger_entry.balance_after) == (
        "10.00",
        "25.00",
    )
    entries = group_entries(admin, home.id, points.id)  # newest first
    assert [e.group_ledger_entry for e in (refund, spend, top_up)] == entries
    # A follower sees the same events in the same order; a type filter selects them.
    assert watched(admin, before, len(found)) == found
    only = listed(admin, after=before, types=[E.EVENT_TYPE_GROUP_BALANCE_CHANGED])
    assert only == [top_up, spend, refund]


def test_a_refused_or_replayed_group_movement_records_no_event(admin):
    points, reward, home, member = household(admin)
    f.fund(admin, member.id, points.id, "100.00")  # the member could pay: the group cannot
    adjust(admin, home.id, points.id, "5.00", request_id="adj-1")
    before = listed(admin)

    failure = expect_failure(adjust, admin, home.id, points.id, "-5.01")
    assert (failure.code, failure.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_BALANCE",
    )
    failure = expect_failure(f.issue, admin, reward.id, member.id, pay_from=GROUP)
    assert (failure.reason, failure.metadata["group_id"]) == ("INSUFFICIENT_BALANCE", home.id)
    assert adjust(admin, home.id, points.id, "5.00", request_id="adj-1").idempotent_replay

    assert listed(admin) == before
    assert len(group_entries(admin, home.id, points.id)) == 1
