"""Test helpers: authenticated stubs, error inspection, and spawning real server processes."""

import fcntl
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import grpc
import psycopg2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rewards.v1 import (
    catalog_pb2_grpc,
    events_pb2_grpc,
    groups_pb2_grpc,
    issuance_pb2_grpc,
    participants_pb2_grpc,
    programs_pb2_grpc,
)


class _AuthHeader(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, key: str, header: str = "authorization"):
        value = f"Bearer {key}" if header == "authorization" else key
        self._metadata = ((header, value),)

    def intercept_unary_unary(self, continuation, details, request):
        metadata = tuple(details.metadata or ()) + self._metadata
        return continuation(details._replace(metadata=metadata), request)

    def intercept_unary_stream(self, continuation, details, request):
        metadata = tuple(details.metadata or ()) + self._metadata
        return continuation(details._replace(metadata=metadata), request)


@dataclass
class Api:
    """Stubs of every service, sending one API key."""

    program_id: str
    key: str
    catalog: catalog_pb2_grpc.RewardCatalogStub
    issuance: issuance_pb2_grpc.RewardIssuanceStub
    participants: participants_pb2_grpc.ParticipantsStub
    events: events_pb2_grpc.EventsStub
    groups: groups_pb2_grpc.ParticipantGroupsStub
    registry: programs_pb2_grpc.ProgramRegistryStub


def make_api(
    channel: grpc.Channel, program_id: str, key: str, header: str = "authorization"
) -> Api:
    authed = grpc.intercept_channel(channel, _AuthHeader(key, header))
    return Api(
        program_id=program_id,
        key=key,
        catalog=catalog_pb2_grpc.RewardCatalogStub(authed),
        issuance=issuance_pb2_grpc.RewardIssuanceStub(authed),
        participants=participants_pb2_grpc.ParticipantsStub(authed),
        events=events_pb2_grpc.EventsStub(authed),
        groups=groups_pb2_grpc.ParticipantGroupsStub(authed),
        registry=programs_pb2_grpc.ProgramRegistryStub(authed),
    )


@dataclass
class RpcFailure:
    code: grpc.StatusCode
    message: str
    reason: str
    domain: str
    metadata: dict[str, str]
    violations: dict[str, str]  # field -> description


def unpack_details(status) -> tuple[list, list]:
    """(ErrorInfo details, BadRequest details) of a google.rpc.Status."""
    infos, bad_requests = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            bad_requests.append(bad)
    return infos, bad_requests


def failure_of(error: grpc.RpcError) -> RpcFailure:
    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    infos, bad_requests = unpack_details(status)
    violations = {v.field: v.description for bad in bad_requests for v in bad.field_violations}
    assert len(infos) == 1, "every error carries exactly one ErrorInfo"
    return RpcFailure(
        code=error.code(),
        message=status.message,
        reason=infos[0].reason,
        domain=infos[0].domain,
        metadata=dict(infos[0].metadata),
        violations=violations,
    )


def expect_failure(call, *args, **kwargs) -> RpcFailure:
    """Run an RPC that must fail; return its parsed status."""
    try:
        result = call(*args, **kwargs)
    except grpc.RpcError as error:
        return failure_of(error)
    raise AssertionError(f"expected the call to fail, it returned {result}")


@dataclass
class ServerProcess:
    process: subprocess.Popen
    address: str
    stdout_lines: list[str]

    def stop(self, sig: int = 15, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


ADMIN_KEY_LINE = re.compile(r"Admin API key[^:]*:\s*(\S+)")


def admin_key_of(server: ServerProcess) -> str | None:
    """The bootstrap admin key a first start printed, if it printed one."""
    for line in server.stdout_lines:
        if "Admin API key" in line:
            found = ADMIN_KEY_LINE.search(line)
            assert found, line
            return found.group(1)
    return None


def new_connection(address: str) -> grpc.Channel:
    """A channel on a TCP connection of its own. Channels to one address otherwise share
    connections in the process, even one opened just after another closed: tests that count
    on the kernel spreading connections over --workers need each call on a new one."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def wait_for_line(server: ServerProcess, text: str, timeout: float = 10, count: int = 1) -> None:
    """Until `count` lines hold `text`. The log is read on another thread, and access lines
    are written in batches: give it time to catch up with the process."""
    deadline = time.monotonic() + timeout
    while sum(text in line for line in server.stdout_lines) < count:
        assert time.monotonic() < deadline, f"no line with {text!r}:\n" + "".join(
            server.stdout_lines
        )
        time.sleep(0.02)


def _drain(process: subprocess.Popen, lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


def spawn_server(database_url: str, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start `rewards-server` on a free loopback port and wait until it serves."""
    full_env = {**os.environ, "REWARDS_DATABASE_URL": database_url, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "rewards_service", "--listen", "127.0.0.1:0", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if '"event":"serving"' in line:
            address = json.loads(line)["address"]
            # Keep draining the log: a full pipe would block the server mid-call.
            threading.Thread(target=_drain, args=(process, lines), daemon=True).start()
            return ServerProcess(process, address, lines)
    process.kill()
    raise AssertionError("server did not start:\n" + "".join(lines))


@contextmanager
def writes_held(database_url: str, reward_ids: list[str]) -> Iterator[None]:
    """Another connection holds what an issue of these rewards must write: SQLite's write
    lock, or the rewards' rows on PostgreSQL. Issues wait (in flight) until the block ends."""
    if database_url.startswith("sqlite"):
        path = urlparse(database_url).path[1:]
        # The server's writers take turns through this flock before SQLite's lock
        # (store/db.py): holding it first keeps them out without racing them in SQLite.
        turn = os.open(f"{path}-writer", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(turn, fcntl.LOCK_EX)
            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
        finally:
            os.close(turn)  # SQLite's lock is held now: writers wait on it
    else:
        connection = psycopg2.connect(database_url)
        connection.cursor().execute(
            'SELECT 1 FROM "reward" WHERE "id" = ANY(%s) FOR UPDATE', (reward_ids,)
        )
    try:
        yield
    finally:
        connection.rollback()
        connection.close()


def run_command(
    command: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """A console script run to its end, with no REWARDS_* variables but those in `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}
    return subprocess.run(
        [str(command), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def assert_usage_error(done, prog: str, *expected: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr naming the mistake."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{prog}: "), lines[0]
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in done.stderr
