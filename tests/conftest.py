"""Fixtures: one real server per test process on a loopback port, a fresh program per test.

REWARDS_TEST_DATABASE picks the backend: unset means a SQLite file in a temp dir; a
postgresql:// URL runs the same suites against PostgreSQL.
"""

import os
import shutil
import tempfile
import uuid

import grpc
import pytest

from rewards_service.config import Config
from rewards_service.server import build_server
from rewards_service.services import programs
from rewards_service.store.db import bind, open_database, session
from rewards_service.store.migrations import migrate
from tests.helpers import Api, make_api


def pytest_report_header(config):
    return f"rewards backend: {os.environ.get('REWARDS_TEST_DATABASE') or 'sqlite (temp file)'}"


@pytest.fixture(scope="session")
def database_url():
    url = os.environ.get("REWARDS_TEST_DATABASE")
    if url:
        yield url
        return
    # Not tmp_path_factory: pytest prunes old base temp dirs, which would pull the database
    # from under a suite still running beside another pytest run.
    directory = tempfile.mkdtemp(prefix="rewards-test-")
    yield f"sqlite:///{directory}/rewards.db"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def store(database_url):
    bind(open_database(database_url, pool_size=40))
    migrate()
    return database_url


@pytest.fixture(scope="session")
def server(store):
    running = build_server(Config(listen="127.0.0.1:0", database_url=store, threads=32))
    yield running
    running.stop(grace=1)


@pytest.fixture(scope="session")
def target(server) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture(scope="session")
def channel(target):
    with grpc.insecure_channel(target) as ch:
        yield ch


def new_program(name: str = "test") -> programs.IssuedKey:
    with session():
        return programs.create_program(f"{name}-{uuid.uuid4().hex[:8]}")


def new_key(program_id: str, role: str) -> programs.IssuedKey:
    with session():
        return programs.create_key(program_id, role)


@pytest.fixture
def admin(channel) -> Api:
    """Stubs with the admin key of a program of this test's own."""
    issued = new_program()
    return make_api(channel, issued.program_id, issued.api_key)


@pytest.fixture
def api_for(channel):
    """api_for(program_id, role) -> stubs with a new key of that role."""

    def make(program_id: str, role: str) -> Api:
        return make_api(channel, program_id, new_key(program_id, role).api_key)

    return make
