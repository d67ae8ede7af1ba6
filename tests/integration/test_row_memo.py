"""Messages built from rows read unchanged are reused; any change to the row builds anew.

The server runs in this process (conftest), so the reuse is visible as object identity.
"""

import uuid

from rewards.v1 import common_pb2

from rewards_service.api import convert
from rewards_service.store import fast
from rewards_service.store.db import database, in_transaction, session
from rewards_service.store.models import Issuance, Reward
from rewards_service.store.queries import get_reward
from tests import factories


def _read(program_id: str, reward_id: str) -> Reward:
    with session():
        return get_reward(program_id, reward_id)


def test_a_row_read_twice_unchanged_gives_the_same_message(admin):
    made = factories.reward(admin, name=f"memo-{uuid.uuid4().hex[:6]}")
    first, second = _read(admin.program_id, made.id), _read(admin.program_id, made.id)
    assert first is not second  # two reads, two models
    assert convert.reward_out(first) is convert.reward_out(second)


def test_a_changed_row_in_the_database_gives_a_new_message(admin):
    made = factories.reward(admin)
    before = convert.reward_out(_read(admin.program_id, made.id))
    with session():
        database.execute_sql(
            fast.sql('UPDATE "reward" SET "redeemed_count" = "redeemed_count" + 7 WHERE "id" = ?'),
            (made.id,),
        )
    after = convert.reward_out(_read(admin.program_id, made.id))
    assert after.redeemed_count == before.redeemed_count + 7
    assert factories.get_reward(admin, made.id).redeemed_count == before.redeemed_count + 7


def test_a_row_changed_by_assignment_is_not_served_from_the_memo(admin):
    made = factories.reward(admin, name="original")
    convert.reward_out(_read(admin.program_id, made.id))  # now memoized
    row = _read(admin.program_id, made.id)
    row.name = "renamed"
    assert not fast.is_unchanged(row)
    assert convert.reward_out(row).name == "renamed"


def test_a_new_row_never_read_is_built_each_time(admin):
    row = Issuance(id="iss_x", participant="par_x", type=common_pb2.REWARD_TYPE_CUSTOM)
    assert not fast.is_unchanged(row)


def test_replays_after_a_status_change_show_the_new_status(admin):
    scene = factories.scene(admin)
    reward = factories.reward(admin)
    request_id = f"memo-{uuid.uuid4().hex}"
    first = factories.issue(admin, reward.id, scene.user.id, request_id=request_id)
    replay = factories.issue(admin, reward.id, scene.user.id, request_id=request_id)
    assert replay.idempotent_replay
    assert replay.issuance.status == common_pb2.ISSUANCE_STATUS_CONFIRMED
    factories.claim(admin, first.issuance.id)
    again = factories.issue(admin, reward.id, scene.user.id, request_id=request_id)
    assert again.idempotent_replay
    assert again.issuance.status == common_pb2.ISSUANCE_STATUS_CLAIMED


def test_a_json_value_changed_in_place_stays_in_its_own_row(admin):
    made = factories.reward(admin, segments=[("gold", "eu")])
    first, second = _read(admin.program_id, made.id), _read(admin.program_id, made.id)
    first.segments.append({"segment": "tampered", "partition": ""})
    first.config["tampered"] = True
    assert first.segments is not second.segments
    assert [s["segment"] for s in second.segments] == ["gold"]
    third = _read(admin.program_id, made.id)
    assert [s["segment"] for s in third.segments] == ["gold"]
    assert "tampered" not in third.config
    # The changed row is no longer "as stored", so nothing built from it is shared.
    assert not fast.is_unchanged(first)
    assert fast.is_unchanged(third)


def test_the_row_memo_is_bounded_by_bytes(admin, monkeypatch):
    monkeypatch.setattr(fast._stored, "max_bytes", 64 * 1024)
    big = {f"key{i}": "v" * 1024 for i in range(20)}  # about 21 KiB of stored text a row
    made = [factories.reward(admin, metadata=big) for _ in range(8)]
    for reward in made:
        assert _read(admin.program_id, reward.id).metadata == big
        assert fast._stored.held_bytes() <= 64 * 1024
    # The newest row is kept, the oldest went.
    with session():
        newest = _read(admin.program_id, made[-1].id)
    assert fast.is_unchanged(newest)
    assert len([1 for key in fast._stored if key[0] is Reward and made[0].id in key[2]]) == 0


def _new_issuance(admin) -> Issuance:
    reward = factories.reward(admin)
    user = factories.participant(admin)
    return Issuance(
        id=f"iss_{uuid.uuid4().hex}",
        program=admin.program_id,
        reward=reward.id,
        participant=user.id,
        type=reward.type,
        status=common_pb2.ISSUANCE_STATUS_CONFIRMED,
        quantity=1,
        metadata={"k": "v"},
        notes="as written",
    )


def test_the_snapshot_of_an_inserted_row_is_what_was_written(admin, store):
    row = _new_issuance(admin)

    def work():
        fast.insert(row)
        return fast.snapshot(row)

    written = in_transaction(work)
    assert written == {
        name: value
        for name, value in zip(fast.column_names(Issuance), fast.column_values(row), strict=True)
    }
    with session():
        stored = Issuance.get_by_id(row.id)
    assert fast.snapshot(stored) == written


def test_a_field_assigned_after_the_insert_shows_in_the_snapshot(admin, store):
    row = _new_issuance(admin)

    def work():
        fast.insert(row)
        row.notes = "changed after"
        return fast.snapshot(row)

    assert in_transaction(work)["notes"] == "changed after"
