"""The schema's indexes: a new database and a migrated old one end with the same lean set, the
hot lookups still use an index, and request_ids stay unique per program while NULLs are free.

Each test migrates a database of its own (a temp SQLite file, or a new PostgreSQL database
beside REWARDS_TEST_DATABASE's) in a child process, so neither the suite's bound database nor
a server using it is ever opened here.
"""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse, urlunparse

import peewee
import psycopg2
import pytest

from rewards_service.store.db import open_database
from rewards_service.store.fields import ExpiryField
from rewards_service.store.migrations import MIGRATIONS
from rewards_service.store.models import (
    Asset,
    Balance,
    Issuance,
    LedgerEntry,
    Participant,
    Program,
)

# name -> (columns, unique, predicate of a partial index or None)
IndexSet = dict[str, tuple[tuple[str, ...], bool, str | None]]

NOT_NULL = "request_id is not null"

EXPECTED: dict[str, IndexSet] = {
    "issuance": {
        "issuance_program_id_request_id_not_null": (("program_id", "request_id"), True, NOT_NULL),
        "issuance_program_id_id": (("program_id", "id"), False, None),
        "issuance_reward_id_participant_id_issued_at": (
            ("reward_id", "participant_id", "issued_at"),
            False,
            None,
        ),
        "issuance_reward_id_issued_at": (("reward_id", "issued_at"), False, None),
        "issuance_participant_id_id": (("participant_id", "id"), False, None),
        "issuance_program_id_source_event_id_not_null": (
            ("program_id", "source_event_id"),
            False,
            "source_event_id is not null",
        ),
    },
    "ledger_entry": {
        "ledger_entry_program_id_request_id_not_null": (
            ("program_id", "request_id"),
            True,
            NOT_NULL,
        ),
        "ledger_entry_participant_id_asset_id_seq": (
            ("participant_id", "asset_id", "seq"),
            True,
            None,
        ),
        "ledger_entry_participant_id_id": (("participant_id", "id"), False, None),
        "ledger_entry_issuance_id": (("issuance_id",), False, None),
    },
}

# What migration 3 found: the indexes it drops, and the full unique request_id indexes.
OLD_INDEXES = [
    ("issuance", "issuance_program_id", ("program_id",), False),
    ("issuance", "issuance_reward_id", ("reward_id",), False),
    ("issuance", "issuance_participant_id", ("participant_id",), False),
    ("issuance", "issuance_program_id_request_id", ("program_id", "request_id"), True),
    ("ledger_entry", "ledger_entry_program_id", ("program_id",), False),
    ("ledger_entry", "ledger_entry_participant_id", ("participant_id",), False),
    ("ledger_entry", "ledger_entry_asset_id", ("asset_id",), False),
    ("ledger_entry", "ledger_entry_program_id_request_id", ("program_id", "request_id"), True),
    ("balance", "balance_participant_id", ("participant_id",), False),
    ("participant", "participant_program_id", ("program_id",), False),
    ("code", "code_pool_id", ("pool_id",), False),
    ("reward", "reward_program_id", ("program_id",), False),
]

TABLES = (
    "program",
    "api_key",
    "asset",
    "code_pool",
    "code",
    "reward",
    "participant",
    "balance",
    "issuance",
    "ledger_entry",
    "schema_migrations",
)


# Databases


def _pg_url(dbname: str) -> str:
    base = urlparse(os.environ["REWARDS_TEST_DATABASE"])
    return urlunparse(base._replace(path=f"/{dbname}"))


@contextmanager
def _pg_admin() -> Iterator[psycopg2.extensions.cursor]:
    base = urlparse(os.environ["REWARDS_TEST_DATABASE"])
    conn = psycopg2.connect(
        dbname=base.path.lstrip("/") or "postgres",
        user=base.username,
        password=base.password,
        host=base.hostname or "127.0.0.1",
        port=base.port or 5432,
    )
    conn.autocommit = True  # CREATE/DROP DATABASE refuse to run in a transaction
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


@pytest.fixture
def new_url() -> Iterator[str]:
    """The URL of an empty database of this test's own, on the suite's backend."""
    if os.environ.get("REWARDS_TEST_DATABASE"):
        name = f"rewards_schema_{uuid.uuid4().hex[:12]}"
        with _pg_admin() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield _pg_url(name)
        with _pg_admin() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    else:
        directory = tempfile.mkdtemp(prefix="rewards-schema-")
        yield f"sqlite:///{directory}/schema.db"
        shutil.rmtree(directory, ignore_errors=True)


def migrate_in_child(url: str) -> list[int]:
    """Run migrate() as a server start would, in a process of its own."""
    code = (
        "import json, sys\n"
        "from rewards_service.store.db import bind, open_database\n"
        "from rewards_service.store.migrations import migrate\n"
        "bind(open_database(sys.argv[1]))\n"
        "print(json.dumps(migrate()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def connected(url: str) -> Iterator[peewee.Database]:
    db = open_database(url, pool_size=1)
    db.connect()
    try:
        yield db
    finally:
        if isinstance(db, peewee.SqliteDatabase):
            db.close()
        else:
            db.close_all()


def is_sqlite(db: peewee.Database) -> bool:
    return isinstance(db, peewee.SqliteDatabase)


# Introspection


def _predicate(text: str | None) -> str | None:
    if not text:
        return None
    return " ".join(re.sub(r'["()]', " ", text).lower().split())


def indexes(db: peewee.Database, table: str) -> IndexSet:
    """Every index of `table` but its primary key's."""
    found: IndexSet = {}
    if is_sqlite(db):
        for _, name, unique, origin, partial in db.execute_sql(
            f'PRAGMA index_list("{table}")'
        ).fetchall():
            if origin == "pk":
                continue
            info = db.execute_sql(f'PRAGMA index_info("{name}")').fetchall()
            columns = tuple(column for _, _, column in sorted(info))
            predicate = None
            if partial:
                (sql,) = db.execute_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
                ).fetchone()
                predicate = sql.split(" WHERE ", 1)[1]
            found[name] = (columns, bool(unique), _predicate(predicate))
        return found
    rows = db.execute_sql(
        "SELECT i.relname, x.indisunique, pg_get_expr(x.indpred, x.indrelid),"
        " array(SELECT pg_get_indexdef(x.indexrelid, k, true)"
        "       FROM generate_series(1, x.indnatts) AS k ORDER BY k)"
        " FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE t.relname = %s AND n.nspname = current_schema() AND NOT x.indisprimary",
        (table,),
    ).fetchall()
    for name, unique, predicate, columns in rows:
        found[name] = (tuple(columns), unique, _predicate(predicate))
    return found


def schema_indexes(db: peewee.Database) -> dict[str, IndexSet]:
    return {table: indexes(db, table) for table in TABLES}


# Rows


def insert(db: peewee.Database, model: type[peewee.Model], **values: object) -> None:
    """One row through `db` alone (the models stay bound to the suite's database)."""
    fields = model._meta.sorted_fields
    row = []
    for field in fields:
        value = values.get(field.name, field.default)
        row.append(field.db_value(value() if callable(value) else value))
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    marks = ", ".join([db.param] * len(fields))
    db.execute_sql(f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks})', row)


def seed_program(db: peewee.Database, program_id: str) -> None:
    insert(db, Program, id=program_id, name=program_id)
    insert(db, Participant, id=f"{program_id}_par", program=program_id, external_id="p1")
    insert(db, Asset, id=f"{program_id}_ast", program=program_id, code="PTS", name="P", scale=0)


def issuance(db: peewee.Database, program_id: str, request_id: str | None) -> None:
    insert(
        db,
        Issuance,
        id=f"iss_{uuid.uuid4().hex}",
        program=program_id,
        participant=f"{program_id}_par",
        type=1,
        status=1,
        request_id=request_id,
    )


_SEQ = itertools.count(1)


def ledger_entry(
    db: peewee.Database,
    program_id: str,
    request_id: str | None,
    *,
    entry_id: str = "",
    balance_after: int = 1,
    seq: int | None = None,
) -> None:
    insert(
        db,
        LedgerEntry,
        id=entry_id or f"led_{uuid.uuid4().hex}",
        program=program_id,
        participant=f"{program_id}_par",
        asset=f"{program_id}_ast",
        delta=1,
        balance_after=balance_after,
        kind=1,
        request_id=request_id,
        seq=next(_SEQ) if seq is None else seq,
    )


# Tests


def test_a_new_database_has_the_lean_index_set(new_url):
    assert migrate_in_child(new_url) == [version for version, _, _ in MIGRATIONS]
    with connected(new_url) as db:
        assert indexes(db, "issuance") == EXPECTED["issuance"]
        assert indexes(db, "ledger_entry") == EXPECTED["ledger_entry"]
        every_name = {name for found in schema_indexes(db).values() for name in found}
    assert not every_name & {name for _, name, _, _ in OLD_INDEXES}


def test_migration_3_brings_an_old_database_to_the_new_index_set(new_url):
    migrate_in_child(new_url)
    with connected(new_url) as db:
        fresh = schema_indexes(db)
        # Back to the shape migration 3 found, holding rows it must carry over: NULL
        # request_ids more than once, and a real one.
        with db.atomic():
            for name in EXPECTED["issuance"].keys() | EXPECTED["ledger_entry"].keys():
                if name.endswith("_request_id_not_null"):
                    db.execute_sql(f'DROP INDEX "{name}"')
            for table, name, columns, unique in OLD_INDEXES:
                listed = ", ".join(f'"{c}"' for c in columns)
                kind = "UNIQUE INDEX" if unique else "INDEX"
                db.execute_sql(f'CREATE {kind} "{name}" ON "{table}" ({listed})')
            db.execute_sql('DELETE FROM "schema_migrations" WHERE "version" = 3')
            seed_program(db, "prg_old")
            for request_id in (None, None, "r1"):
                issuance(db, "prg_old", request_id)
                ledger_entry(db, "prg_old", request_id)
        old = schema_indexes(db)
        assert old["issuance"]["issuance_program_id_request_id"][1:] == (True, None)
        assert "issuance_program_id_request_id_not_null" not in old["issuance"]

    assert migrate_in_child(new_url) == [3]

    with connected(new_url) as db:
        assert schema_indexes(db) == fresh
        for table in ("issuance", "ledger_entry"):
            assert db.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] == 3
        with pytest.raises(peewee.IntegrityError), db.atomic():
            issuance(db, "prg_old", "r1")
    # A second start finds nothing to do.
    assert migrate_in_child(new_url) == []


def _plan(db: peewee.Database, text: str, params: tuple) -> str:
    if is_sqlite(db):
        rows = db.execute_sql(f"EXPLAIN QUERY PLAN {text}", params).fetchall()
        return "\n".join(row[-1] for row in rows)
    with db.atomic():
        # Empty tables read cheapest by a scan; ask whether an index can serve the query.
        db.execute_sql("SET LOCAL enable_seqscan = off")
        rows = db.execute_sql(f"EXPLAIN {text.replace('?', '%s')}", params).fetchall()
    return "\n".join(row[0] for row in rows)


def assert_uses(db: peewee.Database, plan: str, index: str) -> None:
    if is_sqlite(db) or index.endswith("_not_null"):
        assert re.search(rf"\b{index}\b", plan), plan
    else:
        # With no statistics, PostgreSQL ranks same-cost indexes arbitrarily: any will do.
        assert "Index" in plan and "Seq Scan" not in plan, plan


def sorts(plan: str) -> bool:
    return "TEMP B-TREE" in plan or re.search(r"(^|\s)Sort\b", plan) is not None


_SUM_ISSUED = (
    'SELECT COALESCE(SUM("quantity"), 0) FROM "issuance" WHERE "reward_id" = ? AND "status" <> ?'
)

HOT_LOOKUPS = [
    pytest.param(
        'SELECT * FROM "issuance" WHERE "program_id" = ? AND "request_id" = ? LIMIT 1',
        ("prg", "req"),
        "issuance_program_id_request_id_not_null",
        id="issuance-by-request-id",
    ),
    pytest.param(
        'SELECT * FROM "ledger_entry" WHERE "program_id" = ? AND "request_id" = ? LIMIT 1',
        ("prg", "req"),
        "ledger_entry_program_id_request_id_not_null",
        id="ledger-entry-by-request-id",
    ),
    pytest.param(
        _SUM_ISSUED + ' AND "participant_id" = ?',
        ("rwd", 3, "par"),
        "issuance_reward_id_participant_id_issued_at",
        id="units-per-participant",
    ),
    pytest.param(
        _SUM_ISSUED + ' AND "participant_id" = ? AND "issued_at" > ?',
        ("rwd", 3, "par", 0),
        "issuance_reward_id_participant_id_issued_at",
        id="units-per-participant-in-window",
    ),
    pytest.param(
        _SUM_ISSUED + ' AND "issued_at" > ?',
        ("rwd", 3, 0),
        "issuance_reward_id_issued_at",
        id="units-in-window",
    ),
]


@pytest.mark.parametrize(("text", "params", "index"), HOT_LOOKUPS)
def test_hot_lookups_use_an_index(new_url, text, params, index):
    migrate_in_child(new_url)
    with connected(new_url) as db:
        assert_uses(db, _plan(db, text, params), index)


ORDERED_PAGES = [
    pytest.param(
        Issuance.select().where(Issuance.program == "prg"),
        Issuance.id,
        "issuance_program_id_id",
        id="issuances-of-a-program",
    ),
    pytest.param(
        LedgerEntry.select().where(LedgerEntry.participant == "par"),
        LedgerEntry.id,
        "ledger_entry_participant_id_id",
        id="entries-of-a-participant",
    ),
    pytest.param(
        LedgerEntry.select().where(
            (LedgerEntry.participant == "par") & (LedgerEntry.asset == "ast")
        ),
        LedgerEntry.seq,
        "ledger_entry_participant_id_asset_id_seq",
        id="entries-of-a-balance",
    ),
]


@pytest.mark.parametrize(("query", "key", "index"), ORDERED_PAGES)
def test_list_pages_read_in_index_order(new_url, query, key, index):
    """The list calls' keyset pages come straight off an index, newest first, unsorted."""
    migrate_in_child(new_url)
    with connected(new_url) as db:
        bound = 10**12 if isinstance(key, peewee.IntegerField) else "zzz"
        page = query.where(key < bound).order_by(key.desc()).limit(51)
        text, params = db.get_sql_context().sql(page).query()
        plan = _plan(db, text.replace(db.param, "?"), tuple(params))
        assert_uses(db, plan, index)
    assert not sorts(plan), plan


@pytest.mark.parametrize(("table", "add"), [("issuance", issuance), ("ledger_entry", ledger_entry)])
def test_request_ids_are_unique_per_program_and_nulls_are_not(new_url, table, add):
    migrate_in_child(new_url)
    with connected(new_url) as db:
        seed_program(db, "prg_a")
        seed_program(db, "prg_b")
        for request_id in (None, None, "r1"):
            add(db, "prg_a", request_id)
        # Another program may use the same request_id.
        add(db, "prg_b", "r1")
        with pytest.raises(peewee.IntegrityError) as raised, db.atomic():
            add(db, "prg_a", "r1")
        assert "request_id" in str(raised.value)
        rows = db.execute_sql(
            f'SELECT "program_id", COUNT(*), COUNT("request_id") FROM "{table}" '
            'GROUP BY "program_id" ORDER BY "program_id"'
        ).fetchall()
    assert [tuple(row) for row in rows] == [("prg_a", 3, 1), ("prg_b", 1, 1)]


def test_migration_5_numbers_an_old_databases_ledger_entries(new_url):
    migrate_in_child(new_url)
    with connected(new_url) as db:
        fresh = schema_indexes(db)
        # Back to the shape migration 5 found: entries unnumbered, listed by id.
        with db.atomic():
            db.execute_sql('DROP INDEX "ledger_entry_participant_id_asset_id_seq"')
            db.execute_sql(
                'CREATE INDEX "ledger_entry_participant_id_asset_id_id" '
                'ON "ledger_entry" ("participant_id", "asset_id", "id")'
            )
            db.execute_sql('DELETE FROM "schema_migrations" WHERE "version" = 5')
            seed_program(db, "prg_old")
            for n in (1, 2, 3):
                ledger_entry(db, "prg_old", None, entry_id=f"led_{n}", balance_after=n, seq=0)
            insert(db, Balance, id=1, participant="prg_old_par", asset="prg_old_ast", available=3)
    assert migrate_in_child(new_url) == [5]
    with connected(new_url) as db:
        numbered = db.execute_sql('SELECT "id", "seq" FROM "ledger_entry" ORDER BY "id"').fetchall()
        assert numbered == [("led_1", 1), ("led_2", 2), ("led_3", 3)]
        assert db.execute_sql('SELECT "seq" FROM "balance"').fetchall() == [(3,)]
        assert schema_indexes(db) == fresh


_DRAW = (
    'SELECT "id", "code", "expires_at" FROM "code" WHERE "pool_id" = ? AND "status" = ? '
    'AND "expires_at" > ? ORDER BY "expires_at", "id" LIMIT 1'
)


def test_the_code_draw_is_one_index_range_past_expired_codes(new_url):
    """However many expired codes a pool holds, the draw seeks past them in the index and
    reads the first live code, without sorting."""
    migrate_in_child(new_url)
    with connected(new_url) as db:
        plan = _plan(db, _DRAW, ("pool", "available", 0))
        assert_uses(db, plan, "code_pool_id_status_expires_at_id")
        assert not sorts(plan), plan


def test_migration_9_gives_old_codes_no_expiry_and_the_draw_its_index(new_url):
    migrate_in_child(new_url)
    with connected(new_url) as db:
        fresh = schema_indexes(db)
        # Back to the shape migration 9 found: codes without an expiry, drawn by id.
        with db.atomic():
            db.execute_sql('DROP INDEX "code_pool_id_status_expires_at_id"')
            db.execute_sql('ALTER TABLE "code" DROP COLUMN "expires_at"')
            db.execute_sql('ALTER TABLE "issuance" DROP COLUMN "code_expires_at"')
            db.execute_sql('ALTER TABLE "issuance" DROP COLUMN "cost_group_id"')
            for table in (
                "group_ledger_entry",
                "group_balance",
                "group_member",
                "custom_field",
                "fulfillment_status",
            ):
                db.execute_sql(f'DROP TABLE "{table}"')
            db.execute_sql('DROP TABLE "participant_group"')
            db.execute_sql(
                'CREATE INDEX "code_pool_id_status_id" ON "code" ("pool_id", "status", "id")'
            )
            db.execute_sql('DELETE FROM "schema_migrations" WHERE "version" = 9')
            seed_program(db, "prg_old")
            db.execute_sql('ALTER TABLE "program" DROP COLUMN "registry_version"')
            db.execute_sql(
                'INSERT INTO "code_pool" ("id", "program_id", "name", "description", '
                '"total_count", "available_count", "issued_count", "request_hash", "created_at") '
                "VALUES ('pool_old', 'prg_old', 'p', '', 1, 1, 0, '', 0)"
            )
            db.execute_sql(
                'INSERT INTO "code" ("pool_id", "code", "status") '
                "VALUES ('pool_old', 'OLD-1', 'available')"
            )
    assert migrate_in_child(new_url) == [9]
    with connected(new_url) as db:
        [(stored,)] = db.execute_sql('SELECT "expires_at" FROM "code"').fetchall()
        assert stored == ExpiryField.NEVER
        [(version,)] = db.execute_sql(
            'SELECT "registry_version" FROM "program" WHERE "id" = %s'.replace("%s", db.param),
            ("prg_old",),
        ).fetchall()
        assert version == 0
        assert schema_indexes(db) == fresh
    assert migrate_in_child(new_url) == []
