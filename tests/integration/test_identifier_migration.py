"""Migration 6 normalises stored participant identifiers, and a group of rows that normalise to
one external_id loses nothing: the holder (or the oldest) takes it, the others stay as they
were and are logged. Runs on the suite's backend in a database of its own."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from rewards_service.store.models import Participant
from tests.integration.test_schema_indexes import (  # noqa: F401 (new_url is a fixture)
    connected,
    insert,
    migrate_in_child,
    new_url,
    seed_program,
)


def migrate_logged(url: str) -> tuple[list[int], str]:
    """migrate() in a process of its own, as a server start runs it; (versions, its output)."""
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
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def participant(db, participant_id: str, program_id: str, external_id: str, **fields) -> None:
    insert(
        db, Participant, id=participant_id, program=program_id, external_id=external_id, **fields
    )


def stored(db) -> dict[str, tuple[str, str | None, str | None]]:
    rows = db.execute_sql(
        'SELECT "id", "external_id", "email", "mobile" FROM "participant"'
    ).fetchall()
    # seed_program's own participants (prg_*_par) are not this test's.
    return {row[0]: tuple(row[1:]) for row in rows if row[0].startswith("par_")}


def test_migration_6_normalises_identifiers_and_keeps_every_colliding_row(new_url):  # noqa: F811
    migrate_in_child(new_url)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with connected(new_url) as db, db.atomic():
        db.execute_sql('DELETE FROM "schema_migrations" WHERE "version" = 6')
        seed_program(db, "prg_a")
        seed_program(db, "prg_b")
        rows = [
            # Two spellings of alice and nobody holding "alice": the oldest takes it.
            ("par_a_new", "prg_a", "alice\u200b", 20),
            ("par_a_old", "prg_a", "\uff41\uff4c\uff49\uff43\uff45", 10),
            # "carol" is held already: the older look-alike stays as it was.
            ("par_c_held", "prg_a", "carol", 30),
            ("par_c_other", "prg_a", "carol\u200d", 5),
            # Another program's alice is no collision.
            ("par_b_alice", "prg_b", "alice\ufeff", 40),
            # Nothing visible: kept, as an empty external_id cannot be stored.
            ("par_blank", "prg_a", "\u200b\u2060", 50),
        ]
        for participant_id, program_id, external_id, at in rows:
            participant(
                db,
                participant_id,
                program_id,
                external_id,
                created_at=start + timedelta(seconds=at),
            )
        participant(
            db,
            "par_d",
            "prg_a",
            " dave ",
            email="Dave@Example.COM\u200b",
            mobile="+1 555\u00a00100",
        )
        # Two spellings of one shared email both become it.
        participant(db, "par_e", "prg_a", "erin", email="ERIN@example.com")
        participant(db, "par_f", "prg_a", "frank", email="erin@EXAMPLE.com")
        # Rows the rules already hold are left as they are.
        participant(db, "par_g", "prg_a", "gina", email="gina@example.com", mobile="+1555")

    applied, output = migrate_logged(new_url)

    assert applied == [6]
    with connected(new_url) as db:
        assert stored(db) == {
            "par_a_old": ("alice", None, None),
            "par_a_new": ("alice\u200b", None, None),
            "par_c_held": ("carol", None, None),
            "par_c_other": ("carol\u200d", None, None),
            "par_b_alice": ("alice", None, None),
            "par_blank": ("\u200b\u2060", None, None),
            "par_d": ("dave", "dave@example.com", "+15550100"),
            "par_e": ("erin", "erin@example.com", None),
            "par_f": ("frank", "erin@example.com", None),
            "par_g": ("gina", "gina@example.com", "+1555"),
        }
    collisions = [line for line in output.splitlines() if "external_id_collision" in line]
    assert len(collisions) == 2
    assert "par_a_new" in collisions[0] or "par_a_new" in collisions[1]
    assert any("par_c_other" in line and "par_c_held" in line for line in collisions)
    assert any(
        "participant_identifier_not_normalised" in line and "par_blank" in line
        for line in output.splitlines()
    )
    # Applied once: a later start has nothing to do and changes nothing.
    assert migrate_in_child(new_url) == []
