"""Start-up of the real `rewards-server`: bind first, then migrate and bootstrap; the log
format follows the terminal; the standard library's loggers share our output."""

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from rewards.v1 import catalog_pb2

from tests.helpers import admin_key_of, make_api, spawn_server

SERVER = Path(sys.executable).parent / "rewards-server"


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}
    return {**base, **extra}


@pytest.fixture
def port_in_use():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder.getsockname()[1]
    holder.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_and_creates_nothing(tmp_path, port_in_use, workers):
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'rewards.db'}"
    address = f"127.0.0.1:{port_in_use}"
    done = subprocess.run(
        [str(SERVER), "--listen", address, "--workers", workers],
        env=_env(REWARDS_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert done.stdout == ""  # no key printed
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = json.loads(lines[0])
    assert line["event"] == "cannot_listen"
    assert line["address"] == address
    assert "in use" in line["error"]
    assert list(data.iterdir()) == []  # no database made, no program, no key

    # The first start that can bind prints the key, and the key works.
    server = spawn_server(url)
    try:
        key = admin_key_of(server)
        assert key is not None, "".join(server.stdout_lines)
        with grpc.insecure_channel(server.address) as channel:
            make_api(channel, "", key).catalog.ListRewards(catalog_pb2.ListRewardsRequest())
    finally:
        assert server.stop() == 0


def test_an_unreachable_database_creates_nothing_and_exits_1(tmp_path):
    done = subprocess.run(
        [str(SERVER), "--listen", "127.0.0.1:0"],
        env=_env(REWARDS_DATABASE_URL="postgresql://operator:hunter2@127.0.0.1:1/rewards"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert json.loads(lines[0])["event"] == "database_unavailable"
    assert "hunter2" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def _read_until(fd: int, text: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def test_console_lines_on_a_terminal_json_otherwise(tmp_path):
    url = f"sqlite:///{tmp_path / 'tty.db'}"
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(SERVER), "--listen", "127.0.0.1:0"],
        env=_env(REWARDS_DATABASE_URL=url),
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    try:
        out = _read_until(main, b"serving").decode()
        serving = next(line for line in out.splitlines() if "serving" in line)
        assert not serving.lstrip().startswith("{"), serving
        assert "address=127.0.0.1:" in serving
    finally:
        process.terminate()
        assert process.wait(20) == 0
        os.close(main)
    # Not a terminal: JSON, and a flag or variable overrides either way.
    server = spawn_server(url)  # stdout and stderr are a pipe
    assert server.stop() == 0
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(SERVER), "--listen", "127.0.0.1:0"],
        env=_env(REWARDS_DATABASE_URL=url, REWARDS_LOG_FORMAT="json"),
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    try:
        out = _read_until(main, b'"event":"serving"').decode()
        assert json.loads(next(x for x in out.splitlines() if "serving" in x))["pid"]
    finally:
        process.terminate()
        assert process.wait(20) == 0
        os.close(main)


def test_library_loggers_write_through_our_renderer(tmp_path):
    """peewee logs each query at debug level through the standard library; those lines are
    JSON lines like ours, named by their logger."""
    server = spawn_server(f"sqlite:///{tmp_path / 'debug.db'}", "--log-level", "debug")
    try:
        key = admin_key_of(server)
        with grpc.insecure_channel(server.address) as channel:
            make_api(channel, "", key).catalog.ListRewards(catalog_pb2.ListRewardsRequest())
    finally:
        assert server.stop() == 0
    printed = ("Created program", "Admin API key")  # the bootstrap key, on stdout
    lines = [x for x in server.stdout_lines if x.strip() and not x.startswith(printed)]
    assert all(line.startswith("{") for line in lines), lines
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    from_peewee = [e for e in parsed if e.get("logger") == "peewee"]
    assert from_peewee, lines
    assert all(e["level"] == "debug" and "timestamp" in e for e in from_peewee)
    assert key not in "".join(lines)  # never a secret
