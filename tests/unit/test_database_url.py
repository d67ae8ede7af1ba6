"""Database URLs, parsed with playhouse.db_url into the databases the server opens."""

import peewee
import pytest
from playhouse.pool import PooledPostgresqlDatabase

from rewards_service.store.db import database_settings, open_database


def test_a_percent_encoded_password_is_decoded():
    kind, options = database_settings("postgresql://op%2Bs:p%40ss@db.internal:6432/rewards")
    assert kind == "postgresql"
    assert options["password"] == "p@ss"
    assert options["user"] == "op+s"
    db = open_database("postgresql://op:p%40ss@db.internal:6432/rewards", pool_size=7)
    assert isinstance(db, PooledPostgresqlDatabase)
    assert db.database == "rewards"
    assert db.connect_params["password"] == "p@ss"
    assert db.connect_params["host"] == "db.internal"
    assert db.connect_params["port"] == 6432
    assert db._max_connections == 7


def test_postgresql_defaults_and_driver_options():
    db = open_database("postgres://postgres@/?sslmode=disable&connect_timeout=3")
    assert db.database == "postgres"
    assert db.connect_params["host"] == "127.0.0.1"
    assert db.connect_params["port"] == 5432
    assert db.connect_params["sslmode"] == "disable"
    assert db.connect_params["connect_timeout"] == 3


def test_sqlite_keeps_wal_and_its_busy_timeout(tmp_path):
    db = open_database(f"sqlite:///{tmp_path}/a.db?busy_timeout=250")
    assert isinstance(db, peewee.SqliteDatabase)
    assert db.database == f"{tmp_path}/a.db"
    pragmas = dict(db._pragmas)
    assert pragmas["journal_mode"] == "wal"
    assert pragmas["busy_timeout"] == 250
    assert pragmas["foreign_keys"] == 1
    assert db._timeout == 0.25
    relative = open_database("sqlite:///rewards.db")
    assert relative.database == "rewards.db"
    assert dict(relative._pragmas)["busy_timeout"] == 10_000


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@db/x", "unsupported database scheme 'mysql'"),
        ("rewards.db", "URL without a scheme"),
        ("sqlite://", "names no file"),
        ("sqlite://host/x.db", "three slashes"),
        ("sqlite:///x.db?cache=shared", "unknown sqlite URL option 'cache'"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout"),
        ("postgresql://u:hunter2@db:port/x", "cannot be parsed"),
    ],
)
def test_bad_urls_are_refused_without_repeating_them(url, message):
    with pytest.raises(ValueError, match=message) as caught:
        database_settings(url)
    assert "hunter2" not in str(caught.value)
