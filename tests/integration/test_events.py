"""The event feed through a real server: every state change has its event, written with it
or not at all; positions in commit order; ListEvents, WatchEvents and AckEvents."""

import threading
import time
from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from rewards.v1 import catalog_pb2, common_pb2, events_pb2, issuance_pb2

from rewards_service.api import events as events_api
from rewards_service.config import Config
from rewards_service.server import build_server
from rewards_service.services import events as events_service
from rewards_service.store.db import in_transaction, session
from rewards_service.store.fields import utcnow
from rewards_service.store.models import Event, Issuance, LedgerEntry, Reward
from rewards_service.store.outbox import emit
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import expect_failure, make_api

E = events_pb2.EventType
S = common_pb2.RewardStatus


def listed(api, after: int = 0, types=(), page_size: int = 0) -> list[events_pb2.Event]:
    """Every event after `after`, through ListEvents' pages."""
    found, token = [], ""
    while True:
        page = api.events.ListEvents(
            events_pb2.ListEventsRequest(
                after_position=after, types=types, page_size=page_size, page_token=token
            )
        )
        found += page.events
        token = page.next_page_token
        if not token:
            return found


def kinds(found) -> list[str]:
    return [E.Name(e.type).removeprefix("EVENT_TYPE_") for e in found]


def last_position(api) -> int:
    found = listed(api)
    return found[-1].position if found else 0


def set_status(api, reward_id: str, status: int) -> catalog_pb2.Reward:
    return api.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(id=reward_id, status=status),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
    )


def test_issue_records_its_issuance_and_balance_events_with_their_payloads(admin):
    points = f.asset(admin)
    user = f.participant(admin)
    f.fund(admin, user.id, points.id, "50.00")
    reward = f.reward(
        admin,
        points=catalog_pb2.PointsConfig(asset_id=points.id, amount="5"),
        cost_asset_id=points.id,
        unit_cost="2",
    )
    before = last_position(admin)
    issued = f.issue(admin, reward.id, user.id).issuance

    found = listed(admin, after=before)
    assert kinds(found) == ["BALANCE_CHANGED", "BALANCE_CHANGED", "ISSUANCE_ISSUED"]
    assert [e.position for e in found] == [before + 1, before + 2, before + 3]
    spend, earn, issue = found
    assert issue.issuance == issued  # the same message IssueReward returned
    assert (spend.ledger_entry.delta, spend.ledger_entry.balance_after) == ("-2.00", "48.00")
    assert (earn.ledger_entry.delta, earn.ledger_entry.balance_after) == ("5.00", "53.00")
    assert spend.ledger_entry.issuance_id == earn.ledger_entry.issuance_id == issued.id
    assert all(e.created_at.seconds > 0 for e in found)


def test_every_lifecycle_change_has_its_event(admin):
    user = f.participant(admin)
    reward = f.reward(admin, max_total=1)
    issued = f.issue(admin, reward.id, user.id).issuance
    f.claim(admin, issued.id)
    admin.issuance.UpdateFulfillment(
        issuance_pb2.UpdateFulfillmentRequest(id=issued.id, status="shipped", note="DHL")
    )
    f.revoke(admin, issued.id, "returned")
    granted = f.grant(admin, user.id, "ref-1").issuance
    updated = admin.catalog.UpdateReward(
        catalog_pb2.UpdateRewardRequest(
            reward=catalog_pb2.Reward(id=reward.id, name="Renamed"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
    )
    set_status(admin, reward.id, S.REWARD_STATUS_INACTIVE)
    archived = admin.catalog.DeleteReward(
        catalog_pb2.DeleteRewardRequest(id=reward.id, etag=f.get_reward(admin, reward.id).etag)
    )

    found = listed(admin)
    assert kinds(found) == [
        "REWARD_CREATED",
        "REWARD_STATUS_CHANGED",  # the last unit: OUT_OF_STOCK, in the issue's transaction
        "ISSUANCE_ISSUED",
        "ISSUANCE_CLAIMED",
        "ISSUANCE_FULFILLMENT_UPDATED",
        "REWARD_STATUS_CHANGED",  # the unit came back: ACTIVE again
        "ISSUANCE_REVOKED",
        "CUSTOM_GRANTED",
        "REWARD_UPDATED",
        "REWARD_UPDATED",
        "REWARD_STATUS_CHANGED",
        "REWARD_STATUS_CHANGED",
    ]
    assert [e.position for e in found] == list(range(1, len(found) + 1))
    assert found[0].reward.id == reward.id
    assert found[1].reward.status == S.REWARD_STATUS_OUT_OF_STOCK
    assert found[2].issuance == issued
    assert found[3].issuance.status == common_pb2.ISSUANCE_STATUS_CLAIMED
    assert found[4].issuance.fulfillment_status == "shipped"
    assert found[5].reward.status == S.REWARD_STATUS_ACTIVE
    assert found[6].issuance.status == common_pb2.ISSUANCE_STATUS_REVOKED
    assert found[7].issuance == granted
    assert found[8].reward == updated
    assert found[10].reward.status == S.REWARD_STATUS_INACTIVE
    assert found[11].reward == archived


def test_code_pool_low_and_exhausted(admin):
    pool = admin.catalog.CreateCodePool(
        catalog_pb2.CreateCodePoolRequest(
            code_pool=catalog_pb2.CodePool(name="pool", low_stock_threshold=2)
        )
    )
    assert pool.low_stock_threshold == 2
    admin.catalog.AddCodes(catalog_pb2.AddCodesRequest(code_pool_id=pool.id, codes=["A", "B", "C"]))
    coupon = f.reward(admin, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id))
    users = [f.participant(admin) for _ in range(3)]  # one code per participant
    start = last_position(admin)
    for user in users:
        f.issue(admin, coupon.id, user.id)
    pool_events = listed(
        admin,
        after=start,
        types=[E.EVENT_TYPE_CODE_POOL_LOW, E.EVENT_TYPE_CODE_POOL_EXHAUSTED],
    )
    # 3 -> 2 -> 1 (below 2: low) -> 0 (exhausted)
    assert kinds(pool_events) == ["CODE_POOL_LOW", "CODE_POOL_EXHAUSTED"]
    assert [e.code_pool.available_count for e in pool_events] == [1, 0]
    assert all(e.code_pool.id == pool.id for e in pool_events)
    status = listed(admin, after=start, types=[E.EVENT_TYPE_REWARD_STATUS_CHANGED])
    assert [e.reward.status for e in status] == [S.REWARD_STATUS_OUT_OF_STOCK]


def test_a_refused_call_records_no_event(admin):
    user = f.participant(admin)
    points = f.asset(admin)
    priced = f.reward(admin, cost_asset_id=points.id, unit_cost="10")
    before = listed(admin)
    expect_failure(f.issue, admin, priced.id, user.id)  # INSUFFICIENT_BALANCE
    expect_failure(f.revoke, admin, "iss_missing")
    assert listed(admin) == before


def test_a_write_that_rolls_back_in_a_group_leaves_no_event(store):
    """A failed write's events go with its savepoint; the others of its group keep theirs."""
    issued = new_program()

    def good():
        emit(issued.program_id, E.EVENT_TYPE_REWARD_UPDATED, _reward_row(issued.program_id))

    def bad():
        emit(issued.program_id, E.EVENT_TYPE_REWARD_CREATED, _reward_row(issued.program_id))
        raise ValueError("refused")

    errors = []

    def run(work):
        try:
            in_transaction(work)
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in (good, bad, good, bad, good)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 2
    with session():
        stored = list(
            Event.select(Event.position, Event.type)
            .where(Event.program == issued.program_id)
            .order_by(Event.position)
            .tuples()
        )
    assert stored == [(n, E.EVENT_TYPE_REWARD_UPDATED) for n in (1, 2, 3)]


def age_events(program_id: str, days: int) -> None:
    then = utcnow() - timedelta(days=days)
    with session():
        in_transaction(
            lambda: Event.update(created_at=then).where(Event.program == program_id).execute()
        )


def _reward_row(program_id: str) -> Reward:
    now = utcnow()
    return Reward(
        id="rew_x",
        program=program_id,
        name="x",
        type=1,
        status=1,
        config={},
        redemption_type=1,
        created_at=now,
        updated_at=now,
    )


def test_list_events_pages_filters_and_refuses_bad_input(admin):
    user = f.participant(admin)
    reward = f.reward(admin)
    for _ in range(5):
        f.issue(admin, reward.id, user.id)
    every = listed(admin)
    assert len(every) == 6
    assert listed(admin, page_size=2) == every
    assert listed(admin, after=3) == every[3:]
    issued = listed(admin, types=[E.EVENT_TYPE_ISSUANCE_ISSUED], page_size=2)
    assert issued == every[1:]
    first = admin.events.ListEvents(events_pb2.ListEventsRequest(page_size=2))
    refusal = expect_failure(
        admin.events.ListEvents,
        events_pb2.ListEventsRequest(
            page_size=2, page_token=first.next_page_token, after_position=1
        ),
    )
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in refusal.violations
    refusal = expect_failure(
        admin.events.ListEvents, events_pb2.ListEventsRequest(types=[99], after_position=-1)
    )
    assert set(refusal.violations) == {"types[0]", "after_position"}


def test_a_program_sees_only_its_own_events_and_readers_may_follow(admin, api_for, channel):
    f.reward(admin)
    other = new_program()
    other_admin = make_api(channel, other.program_id, other.api_key)
    assert listed(other_admin) == []
    stream = other_admin.events.WatchEvents(events_pb2.WatchEventsRequest())
    reader = api_for(admin.program_id, "reader")
    assert kinds(listed(reader)) == ["REWARD_CREATED"]
    acked = reader.events.AckEvents(events_pb2.AckEventsRequest(consumer="c", position=1))
    assert acked.position == 1
    watched = reader.events.WatchEvents(events_pb2.WatchEventsRequest())
    try:
        assert next(watched).event.type == E.EVENT_TYPE_REWARD_CREATED
    finally:
        watched.cancel()
    f.reward(other_admin)
    try:
        assert next(stream).event.reward.id != listed(admin)[0].reward.id
    finally:
        stream.cancel()


def test_ack_moves_forward_only_and_names_where_a_watch_resumes(admin):
    reward = f.reward(admin)
    user = f.participant(admin)
    f.issue(admin, reward.id, user.id)
    f.issue(admin, reward.id, user.id)

    def ack(position):
        return admin.events.AckEvents(
            events_pb2.AckEventsRequest(consumer="shipper", position=position)
        ).position

    assert ack(2) == 2
    assert ack(1) == 2  # never back
    past = expect_failure(ack, 4)
    assert (past.code, past.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "POSITION_NOT_REACHED",
    )
    assert past.metadata == {"position": "4", "last_position": "3"}
    refusal = expect_failure(
        admin.events.AckEvents, events_pb2.AckEventsRequest(consumer="", position=-1)
    )
    assert set(refusal.violations) == {"consumer", "position"}

    def first_position(**request) -> int:
        stream = admin.events.WatchEvents(events_pb2.WatchEventsRequest(**request))
        try:
            return next(stream).event.position
        finally:
            stream.cancel()

    assert first_position(consumer="shipper") == 3  # after its acknowledged 2
    assert first_position(consumer="shipper", after_position=1) == 2  # a position given wins
    assert first_position(consumer="newcomer") == 1  # a consumer never seen: from the start


def test_named_consumers_per_program_are_bounded(admin, monkeypatch):
    monkeypatch.setattr(events_service, "MAX_CONSUMERS", 2)
    f.reward(admin)
    for name in ("a", "b"):
        admin.events.AckEvents(events_pb2.AckEventsRequest(consumer=name, position=1))
    refusal = expect_failure(
        admin.events.AckEvents, events_pb2.AckEventsRequest(consumer="c", position=1)
    )
    assert (refusal.code, refusal.reason) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_CONSUMERS",
    )
    # A known consumer still moves.
    admin.events.AckEvents(events_pb2.AckEventsRequest(consumer="a", position=1))


def test_watch_replays_then_follows_live_in_order(admin):
    reward = f.reward(admin)
    user = f.participant(admin)
    f.issue(admin, reward.id, user.id)
    stream = admin.events.WatchEvents(events_pb2.WatchEventsRequest(after_position=0))
    seen = []
    try:
        seen += [next(stream).event for _ in range(2)]  # the replay
        for _ in range(20):
            f.issue(admin, reward.id, user.id)
        started = time.monotonic()
        while len(seen) < 22:
            response = next(stream)
            if response.HasField("event"):
                seen.append(response.event)
        assert time.monotonic() - started < 5
    finally:
        stream.cancel()
    assert [e.position for e in seen] == list(range(1, 23))
    assert seen == listed(admin)


def test_watch_filters_types_and_sends_heartbeats(store):
    running = build_server(
        Config(listen="127.0.0.1:0", database_url=store, threads=4, event_heartbeat=0.2)
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            issued = new_program()
            api = make_api(channel, issued.program_id, issued.api_key)
            reward = f.reward(api)
            user = f.participant(api)
            f.issue(api, reward.id, user.id)
            stream = api.events.WatchEvents(
                events_pb2.WatchEventsRequest(types=[E.EVENT_TYPE_ISSUANCE_ISSUED])
            )
            try:
                first = next(stream)
                assert first.event.type == E.EVENT_TYPE_ISSUANCE_ISSUED
                beat = next(stream)
                assert beat.HasField("heartbeat")
                assert beat.heartbeat.position == 2
                assert beat.heartbeat.interval.ToMilliseconds() == 200
            finally:
                stream.cancel()
    finally:
        running.stop(grace=1)


def test_open_watches_per_program_are_bounded(admin, monkeypatch):
    monkeypatch.setattr(events_api, "MAX_WATCHES_PER_PROGRAM", 2)
    f.reward(admin)
    streams = [admin.events.WatchEvents(events_pb2.WatchEventsRequest()) for _ in range(2)]
    try:
        for stream in streams:
            assert next(stream).event.position == 1
        third = admin.events.WatchEvents(events_pb2.WatchEventsRequest())
        with pytest.raises(grpc.RpcError) as caught:
            next(third)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for stream in streams:
            stream.cancel()


def test_watch_refuses_bad_input_and_unknown_keys(admin, channel):
    refusal = expect_failure(
        lambda: next(admin.events.WatchEvents(events_pb2.WatchEventsRequest(types=[42])))
    )
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT and "types[0]" in refusal.violations
    stranger = make_api(channel, admin.program_id, "rwk_not-a-key")
    refusal = expect_failure(
        lambda: next(stranger.events.WatchEvents(events_pb2.WatchEventsRequest()))
    )
    assert refusal.code == grpc.StatusCode.UNAUTHENTICATED


def test_retention_deletes_old_events_but_keeps_what_a_consumer_has_not_acknowledged(admin):
    reward = f.reward(admin)
    user = f.participant(admin)
    for _ in range(4):
        f.issue(admin, reward.id, user.id)
    admin.events.AckEvents(events_pb2.AckEventsRequest(consumer="slow", position=2))
    # This program's events are made old; other tests' events are recent and stay.
    age_events(admin.program_id, days=2)
    with session():
        events_service.delete_expired(timedelta(days=1))
    assert [e.position for e in listed(admin)] == [3, 4, 5]
    admin.events.AckEvents(events_pb2.AckEventsRequest(consumer="slow", position=5))
    with session():
        events_service.delete_expired(timedelta(days=1))
    assert listed(admin) == []
    f.issue(admin, reward.id, user.id)
    assert [e.position for e in listed(admin)] == [6]  # positions never restart


def test_every_issuance_and_ledger_entry_has_its_event(admin):
    scene = f.scene(admin)
    f.revoke(admin, scene.first.id)
    with session():
        issuances = {
            r.id for r in Issuance.select(Issuance.id).where(Issuance.program == admin.program_id)
        }
        entries = {
            r.id
            for r in LedgerEntry.select(LedgerEntry.id).where(
                LedgerEntry.program == admin.program_id
            )
        }
    found = listed(admin)
    assert {e.issuance.id for e in found if e.type == E.EVENT_TYPE_ISSUANCE_ISSUED} == issuances
    assert {e.ledger_entry.id for e in found if e.HasField("ledger_entry")} == entries


def test_a_nested_write_that_fails_takes_only_its_own_events(store):
    issued = new_program()
    row = _reward_row(issued.program_id)

    def refused():
        emit(issued.program_id, E.EVENT_TYPE_REWARD_CREATED, row)
        raise ValueError("refused")

    def outer():
        emit(issued.program_id, E.EVENT_TYPE_REWARD_UPDATED, row)
        with pytest.raises(ValueError):
            in_transaction(refused)  # a savepoint inside this write
        in_transaction(lambda: emit(issued.program_id, E.EVENT_TYPE_REWARD_STATUS_CHANGED, row))

    in_transaction(outer)
    with session():
        stored = list(
            Event.select(Event.position, Event.type)
            .where(Event.program == issued.program_id)
            .order_by(Event.position)
            .tuples()
        )
    assert stored == [(1, E.EVENT_TYPE_REWARD_UPDATED), (2, E.EVENT_TYPE_REWARD_STATUS_CHANGED)]


def test_emit_outside_a_write_is_a_programming_error():
    with pytest.raises(RuntimeError, match="store's writer"):
        emit("prg_x", E.EVENT_TYPE_REWARD_CREATED, _reward_row("prg_x"))
