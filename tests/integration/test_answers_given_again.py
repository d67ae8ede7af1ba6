"""Repeated calls (GetReward, GetIssuance, IssueReward replays) may get their earlier answer
back, but only while nothing was committed, only for the same program, and only after the
caller's key and role were checked again."""

import threading
import uuid

import grpc
import pytest
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2

from rewards_service.api import answers
from rewards_service.config import Config
from rewards_service.server import build_server
from rewards_service.services import programs
from rewards_service.store.db import is_sqlite, session
from tests import factories as f
from tests.conftest import new_key, new_program
from tests.helpers import expect_failure, make_api, spawn_server


def _replay_request(reward_id: str, participant_id: str) -> issuance_pb2.IssueRewardRequest:
    return issuance_pb2.IssueRewardRequest(
        reward_id=reward_id,
        participant=f.ref(participant_id),
        request_id=f"again-{uuid.uuid4().hex}",
    )


def test_only_replays_are_given_again_and_they_follow_the_stored_issuance(admin):
    reward, user = f.reward(admin), f.participant(admin)
    request = _replay_request(reward.id, user.id)
    answers = [admin.issuance.IssueReward(request) for _ in range(3)]
    assert [a.idempotent_replay for a in answers] == [False, True, True]
    assert len({a.issuance.id for a in answers}) == 1
    issued = answers[0].issuance
    assert issued.status == common_pb2.ISSUANCE_STATUS_CONFIRMED

    f.claim(admin, issued.id)
    again = admin.issuance.IssueReward(request)
    assert again.idempotent_replay
    assert again.issuance.status == common_pb2.ISSUANCE_STATUS_CLAIMED
    assert f.get_issuance(admin, issued.id).status == common_pb2.ISSUANCE_STATUS_CLAIMED


def test_a_change_committed_by_another_process_is_seen(store, admin):
    reward, user = f.reward(admin, name="before"), f.participant(admin)
    request = _replay_request(reward.id, user.id)
    issued = admin.issuance.IssueReward(request).issuance
    for _ in range(2):
        assert admin.issuance.IssueReward(request).issuance.status == (
            common_pb2.ISSUANCE_STATUS_CONFIRMED
        )
        assert f.get_reward(admin, reward.id).name == "before"
        assert f.get_issuance(admin, issued.id).status == common_pb2.ISSUANCE_STATUS_CONFIRMED
    other = spawn_server(store)
    try:
        with grpc.insecure_channel(other.address) as channel:
            there = make_api(channel, admin.program_id, admin.key)
            f.revoke(there, issued.id)
            there.catalog.UpdateReward(
                catalog_pb2.UpdateRewardRequest(
                    reward=catalog_pb2.Reward(id=reward.id, name="after"),
                    update_mask={"paths": ["name"]},
                )
            )
    finally:
        assert other.stop() == 0
    revoked = common_pb2.ISSUANCE_STATUS_REVOKED
    assert admin.issuance.IssueReward(request).issuance.status == revoked
    assert f.get_issuance(admin, issued.id).status == revoked
    assert f.get_reward(admin, reward.id).name == "after"


def test_another_program_sending_the_same_bytes_gets_its_own_answer(admin, channel):
    # Made first: creating it is a commit, which would drop every remembered answer.
    other = new_program("stranger")
    stranger = make_api(channel, other.program_id, other.api_key)
    reward, user = f.reward(admin), f.participant(admin)
    request = _replay_request(reward.id, user.id)
    issued = admin.issuance.IssueReward(request).issuance
    for _ in range(2):
        admin.issuance.IssueReward(request)
        f.get_reward(admin, reward.id)
        f.get_issuance(admin, issued.id)
    assert expect_failure(stranger.issuance.IssueReward, request).reason == "REWARD_NOT_FOUND"
    assert expect_failure(f.get_reward, stranger, reward.id).reason == "REWARD_NOT_FOUND"
    assert expect_failure(f.get_issuance, stranger, issued.id).reason == "ISSUANCE_NOT_FOUND"


def test_the_key_and_its_role_are_checked_every_time(admin, channel):
    reward, user = f.reward(admin), f.participant(admin)
    request = _replay_request(reward.id, user.id)
    issuer_key = new_key(admin.program_id, "issuer")
    issuer = make_api(channel, admin.program_id, issuer_key.api_key)
    reader = make_api(channel, admin.program_id, new_key(admin.program_id, "reader").api_key)
    f.get_reward(reader, reward.id)  # its key is known before the answers are remembered
    for _ in range(3):
        issuer.issuance.IssueReward(request)
    assert expect_failure(reader.issuance.IssueReward, request).reason == "INSUFFICIENT_SCOPE"
    with session():
        programs.revoke_key(issuer_key.key_id)
    failure = expect_failure(issuer.issuance.IssueReward, request)
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED


def _get_reward_raw(channel, admin):
    get = channel.unary_unary(
        "/rewards.v1.RewardCatalog/GetReward",
        response_deserializer=catalog_pb2.Reward.FromString,
    )
    metadata = (("authorization", f"Bearer {admin.key}"),)
    return lambda raw: get(raw, metadata=metadata)


def _unknown_field(value: bytes) -> bytes:
    """Field number 999, length-delimited: parsed, and ignored by the server."""
    return b"\xba\x3e" + _varint(len(value)) + value


def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _sqlite_only() -> None:
    if not is_sqlite():
        pytest.skip("answers are kept on SQLite only: PostgreSQL has no change token")


def _kept_keys(program_id: str) -> set[bytes]:
    return {key[2] for key in answers._given if key[1] == program_id}


def test_large_requests_are_answered_afresh_and_not_kept(admin):
    reward, user = f.reward(admin), f.participant(admin)
    large = _replay_request(reward.id, user.id)
    large.metadata.update({f"k{i}": "v" * 1000 for i in range(5)})  # over 4,096 bytes
    assert [admin.issuance.IssueReward(large).idempotent_replay for _ in range(3)] == [
        False,
        True,
        True,
    ]
    assert large.SerializeToString(deterministic=True) not in _kept_keys(admin.program_id)


def test_unknown_fields_do_not_make_new_answers(admin, channel):
    """A hostile caller varying an unknown field once made every call a new kept answer."""
    _sqlite_only()
    reward = f.reward(admin)
    get = _get_reward_raw(channel, admin)
    plain = catalog_pb2.GetRewardRequest(id=reward.id).SerializeToString()
    assert get(plain).id == reward.id
    before = answers.cached_bytes()
    for n in range(300):
        padded = plain + _unknown_field(b"%05d" % n + b"x" * 3000)
        assert get(padded).id == reward.id
    assert _kept_keys(admin.program_id) == {plain}
    assert answers.cached_bytes() - before < 4096


def test_kept_answers_are_bounded_by_bytes(admin, monkeypatch):
    _sqlite_only()
    big = {f"key{i}": "v" * 1024 for i in range(50)}
    rewards = [f.reward(admin, name=f"r{i}", metadata=big) for i in range(6)]
    monkeypatch.setattr(answers._given, "max_bytes", 3 * 60 * 1024)
    for _ in range(2):
        for reward in rewards:
            assert f.get_reward(admin, reward.id).metadata == big
            assert answers.cached_bytes() <= 3 * 60 * 1024
    kept = _kept_keys(admin.program_id)
    assert 1 <= len(kept) <= 3
    # The newest answers stay, the oldest went.
    last = catalog_pb2.GetRewardRequest(id=rewards[-1].id).SerializeToString(deterministic=True)
    assert last in kept


def test_a_kept_answer_needs_no_thread(store):
    """Answered on the event loop: a kept GetReward comes back while every thread of the
    server is busy; one that must be looked up waits for a thread."""
    if not is_sqlite():
        pytest.skip("answers are kept on SQLite only: PostgreSQL has no change token")
    running = build_server(Config(listen="127.0.0.1:0", database_url=store, threads=2))
    release = threading.Event()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            issued = new_program()
            api = make_api(channel, issued.program_id, issued.api_key)
            kept, other = f.reward(api), f.reward(api)
            assert f.get_reward(api, kept.id) == kept  # looked up, and kept
            busy = [running.executor.submit(release.wait, 30) for _ in range(2)]

            again = api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=kept.id), timeout=10)
            assert again == kept
            with pytest.raises(grpc.RpcError) as waiting:
                api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=other.id), timeout=1)
            assert waiting.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            release.set()
            assert all(done.result(10) for done in busy)
            assert f.get_reward(api, other.id) == other
    finally:
        release.set()
        running.stop(grace=1)
