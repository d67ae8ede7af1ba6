"""Nobody takes the server from others: idle streams cost no thread, keyless streams are
bounded in number and idle time, and one program's flood leaves other programs their share."""

import socket
import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from rewards.v1 import catalog_pb2, issuance_pb2

from rewards_service import server as server_module
from rewards_service.api import interceptor, streams
from rewards_service.config import Config
from rewards_service.server import MAX_STREAMS_PER_CONNECTION, build_server
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import failure_of, make_api, writes_held

IDLE_STREAMS = 1_000
# Generous: on the thread-per-call server these calls waited forever behind idle streams.
DEADLINE = 10


@pytest.fixture
def serve(store):
    """serve(threads=...) -> the address of a server of this test's own, stopped after it."""
    started = []

    def make(threads: int = 16) -> str:
        running = build_server(Config(listen="127.0.0.1:0", database_url=store, threads=threads))
        started.append(running)
        return f"127.0.0.1:{running.port}"

    yield make
    for running in started:
        running.stop(grace=0)


def _watch(channel: grpc.Channel):
    """An open health Watch stream, once its first answer arrived."""
    stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
    assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
    return stream


def _open_watches(address: str, count: int) -> tuple[list[grpc.Channel], list]:
    channels = [
        grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(-(-count // MAX_STREAMS_PER_CONNECTION))
    ]
    watches = [_watch(channels[i // MAX_STREAMS_PER_CONNECTION]) for i in range(count)]
    return channels, watches


def _close(channels: list[grpc.Channel], watches: list) -> None:
    for watch in watches:
        watch.cancel()
    for channel in channels:
        channel.close()


def test_a_thousand_idle_streams_leave_health_reads_and_issues_alone(serve):
    address = serve(threads=4)
    channels, watches = _open_watches(address, IDLE_STREAMS)
    try:
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            check = health.Check(health_pb2.HealthCheckRequest(), timeout=DEADLINE)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            issued = new_program()
            api = make_api(channel, issued.program_id, issued.api_key)
            reward = f.reward(api)
            user = f.participant(api)
            assert (
                api.catalog.GetReward(
                    catalog_pb2.GetRewardRequest(id=reward.id), timeout=DEADLINE
                ).id
                == reward.id
            )
            answer = api.issuance.IssueReward(
                issuance_pb2.IssueRewardRequest(reward_id=reward.id, participant=f.ref(user.id)),
                timeout=DEADLINE,
            )
            assert answer.issuance.reward_id == reward.id
        # Every stream is still open and answering.
        assert all(watch.is_active() for watch in watches)
    finally:
        _close(channels, watches)


def test_keyless_streams_past_the_limit_are_refused_and_a_closed_one_frees_its_place(
    serve, monkeypatch
):
    monkeypatch.setattr(streams, "MAX_OPEN_STREAMS", 5)
    address = serve()
    channels, watches = _open_watches(address, 5)
    try:
        refused = health_pb2_grpc.HealthStub(channels[0]).Watch(health_pb2.HealthCheckRequest())
        with pytest.raises(grpc.RpcError) as caught:
            next(refused)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        reflection = reflection_pb2_grpc.ServerReflectionStub(channels[0])
        with pytest.raises(grpc.RpcError) as caught:
            next(reflection.ServerReflectionInfo(iter([_list_services()])))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Unary calls need no stream place: health Check still answers.
        check = health_pb2_grpc.HealthStub(channels[0]).Check(health_pb2.HealthCheckRequest())
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        watches.pop().cancel()
        watches.append(_wait_for_a_place(channels[0]))
    finally:
        _close(channels, watches)


def _wait_for_a_place(channel: grpc.Channel):
    """The cancelled stream's place is released once the server has seen the cancel."""
    for _ in range(200):
        try:
            return _watch(channel)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            threading.Event().wait(0.05)
    raise AssertionError("a cancelled stream never released its place")


def _list_services() -> reflection_pb2.ServerReflectionRequest:
    return reflection_pb2.ServerReflectionRequest(list_services="")


def _silent_then(requests: list, stop: threading.Event) -> Iterator:
    yield from requests
    stop.wait(60)  # then sends nothing more, without closing its side


def test_an_idle_reflection_stream_is_ended(serve, monkeypatch):
    monkeypatch.setattr(streams, "REFLECTION_IDLE_SECONDS", 0.3)
    address = serve()
    stop = threading.Event()
    try:
        with grpc.insecure_channel(address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            answers = stub.ServerReflectionInfo(
                _silent_then([_list_services()], stop), timeout=DEADLINE
            )
            # The request that came is answered; then the silence ends the stream, well
            # before the deadline, with OK.
            assert next(answers).HasField("list_services_response")
            assert list(answers) == []
            assert answers.code() == grpc.StatusCode.OK
    finally:
        stop.set()


def test_one_programs_flood_is_refused_past_its_share_and_others_keep_theirs(
    serve, store, monkeypatch
):
    monkeypatch.setattr(interceptor, "WAITING_CALLS", 3)
    # Two threads: a program may run one call at a time, queue three more.
    address = serve(threads=2)
    with grpc.insecure_channel(address) as channel:
        flooder = make_api(channel, *_program_key())
        victim = make_api(channel, *_program_key())
        reward = f.reward(flooder)
        user = f.participant(flooder)
        victims_reward = f.reward(victim)
        with writes_held(store, [reward.id]):
            # Each issue waits for the writer, holding the flooder's one running place.
            flood = [
                flooder.issuance.IssueReward.future(
                    issuance_pb2.IssueRewardRequest(
                        reward_id=reward.id,
                        participant=f.ref(user.id),
                        request_id=f"flood-{uuid.uuid4().hex}",
                    ),
                    timeout=60,
                )
                for _ in range(20)
            ]
            refused = [call for call in flood if _refused(call)]
            # One running, three waiting, the other sixteen refused at once.
            assert len(refused) == 16
            # Meanwhile the other program is served as usual.
            got = victim.catalog.GetReward(
                catalog_pb2.GetRewardRequest(id=victims_reward.id), timeout=DEADLINE
            )
            assert got.id == victims_reward.id
        admitted = [call for call in flood if call not in refused]
        assert [call.result().issuance.reward_id for call in admitted] == [reward.id] * 4
        assert f.get_reward(flooder, reward.id).redeemed_count == 4


def test_connections_past_the_cap_are_refused_and_a_closed_one_frees_its_place(serve, monkeypatch):
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 4)
    address = serve()
    held = [_connected(address) for _ in range(4)]
    try:
        extra = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        with pytest.raises(grpc.RpcError) as refused:
            _check(extra, timeout=3)
        assert refused.value.code() in {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        }
        extra.close()
        held.pop().close()
        held.append(_connected(address, attempts=50))
    finally:
        for channel in held:
            channel.close()


def _check(channel: grpc.Channel, timeout: float) -> None:
    check = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=timeout
    )
    assert check.status == health_pb2.HealthCheckResponse.SERVING


def _connected(address: str, attempts: int = 1) -> grpc.Channel:
    """A channel of its own connection, once a call has gone through it."""
    for attempt in range(attempts):
        channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            _check(channel, timeout=3)
            return channel
        except grpc.RpcError:
            channel.close()
            if attempt == attempts - 1:
                raise
            threading.Event().wait(0.1)
    raise AssertionError("unreachable")


def test_a_connection_that_never_speaks_is_closed(serve, monkeypatch):
    monkeypatch.setattr(server_module, "HANDSHAKE_MS", 300)
    host, port = serve().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as silent:
        # Nothing sent, not even the HTTP/2 preface: the server hangs up on its own, after
        # what it sends first (its settings). A server that waits raises TimeoutError here.
        received = b""
        while chunk := silent.recv(4096):
            received += chunk
        assert len(received) < 4096


def _program_key() -> tuple[str, str]:
    issued = new_program()
    return issued.program_id, issued.api_key


def _refused(call: grpc.Future) -> bool:
    """Whether the call was refused for the flood: within a short wait, with RATE_LIMITED and
    a retry delay. Admitted calls are still waiting for the held writes."""
    try:
        call.result(timeout=1)
    except grpc.FutureTimeoutError:
        return False
    except grpc.RpcError as error:
        failure = failure_of(error)
        assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert failure.reason == "RATE_LIMITED"
        status = rpc_status.from_call(error)
        delays = [
            detail for detail in status.details if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR)
        ]
        assert len(delays) == 1
        return True
    raise AssertionError("an issue completed while writes were held")
