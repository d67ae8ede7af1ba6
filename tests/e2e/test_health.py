"""grpc.health.v1 follows the database: a real server reaches PostgreSQL through a TCP proxy
that the test stops (the connection path is gone) and starts again."""

import contextlib
import json
import os
import socket
import threading
import time
from urllib.parse import urlparse, urlunparse

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rewards.v1 import catalog_pb2

from tests.helpers import make_api, spawn_server, wait_for_line

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class TcpProxy:
    """127.0.0.1:<port> -> upstream. stop() closes the listener and every connection through
    it; start() listens on the same port again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        assert self._listener is not None
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("REWARDS_TEST_DATABASE", "")
    if not url.startswith("postgres"):
        pytest.skip("needs PostgreSQL: REWARDS_TEST_DATABASE=postgresql://...")
    return url


def _status(stub, service: str = "") -> int:
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def _until(stub, want: int, timeout: float = 15) -> float:
    started = time.monotonic()
    while True:
        statuses = {_status(stub, s) for s in ("", "rewards.v1.RewardCatalog")}
        if statuses == {want}:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"health stayed {statuses}"
        time.sleep(0.1)


def test_health_is_not_serving_while_the_database_is_out_of_reach(pg_url):
    parsed = urlparse(pg_url)
    proxy = TcpProxy((parsed.hostname or "127.0.0.1", parsed.port or 5432))
    netloc = f"{parsed.username or 'postgres'}@127.0.0.1:{proxy.port}"
    through_proxy = urlunparse(parsed._replace(netloc=netloc))
    server = spawn_server(through_proxy, "--health-check-seconds", "0.3")
    try:
        with grpc.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert _status(health) == SERVING
            proxy.stop()
            _until(health, NOT_SERVING)
            wait_for_line(server, '"event":"database_unreachable"')
            # Health answers at once while the database is away: it is not asked per call.
            started = time.monotonic()
            for _ in range(20):
                assert _status(health) == NOT_SERVING
            assert time.monotonic() - started < 2
            proxy.start()
            _until(health, SERVING)
            wait_for_line(server, '"event":"database_reachable"')
            # And calls are served again.
            api = make_api(channel, "", "rwk_unknown")
            deadline = time.monotonic() + 10
            while True:
                try:
                    api.catalog.ListRewards(catalog_pb2.ListRewardsRequest(), timeout=5)
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                        break
                    assert time.monotonic() < deadline, error
                    time.sleep(0.2)
    finally:
        assert server.stop() == 0
        proxy.stop()
    events = [json.loads(x)["event"] for x in server.stdout_lines if x.startswith("{")]
    flips = [e for e in events if e in ("database_unreachable", "database_reachable")]
    assert flips == ["database_unreachable", "database_reachable"]
