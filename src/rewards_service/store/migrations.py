"""Versioned schema migrations, applied in order on start and recorded in schema_migrations.

Each step is a function of the database; add new steps at the end, never edit applied ones.
Step 1 creates the tables from today's models, so on a new database later steps find their
changes already made: each step checks before it alters.
"""

from collections.abc import Callable

import peewee
import structlog
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as apply_operations

from rewards_service.domain.participants import NORMALISERS
from rewards_service.store import models, secrets
from rewards_service.store.db import database, in_transaction, is_sqlite
from rewards_service.store.fields import ExpiryField, TimestampField, utcnow

log = structlog.get_logger("rewards.migrations")


class SchemaMigration(peewee.Model):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=100)
    applied_at = TimestampField(default=utcnow)

    class Meta:
        database = database
        table_name = "schema_migrations"


def _initial_schema(db: peewee.Database) -> None:
    db.create_tables(models.ALL_MODELS)


def _request_hashes(db: peewee.Database) -> None:
    """Creates remember their request's digest, so a reused request_id can be told apart."""
    migrator = SchemaMigrator.from_database(db)
    for table in ("asset", "code_pool", "reward"):
        if "request_hash" not in {c.name for c in db.get_columns(table)}:
            field = peewee.CharField(max_length=64, default="")
            apply_operations(migrator.add_column(table, "request_hash", field))
    # RevokeIssuance voids a code by its issuance.
    if "code_issuance_id" not in {i.name for i in db.get_indexes("code")}:
        apply_operations(migrator.add_index("code", ("issuance_id",), False))


# Each is a left prefix of another index on its table (which serves its lookups), except
# ledger_entry's program_id and asset_id: nothing reads entries by them and no call deletes a
# program or an asset (see models.LedgerEntry). Every index costs a page write per insert.
_COVERED_INDEXES = (
    "issuance_program_id",
    "issuance_reward_id",
    "issuance_participant_id",
    "ledger_entry_program_id",
    "ledger_entry_participant_id",
    "ledger_entry_asset_id",
    "balance_participant_id",
    "participant_program_id",
    "code_pool_id",
    "reward_program_id",
)


def _lean_indexes(db: peewee.Database) -> None:
    """Drop indexes covered by others; unique request_ids leave NULLs out (models.py)."""
    for table in ("issuance", "ledger_entry"):
        # The partial index takes over before the full one goes, so uniqueness never lapses.
        db.execute_sql(
            f'CREATE UNIQUE INDEX IF NOT EXISTS "{table}_program_id_request_id_not_null" '
            f'ON "{table}" ("program_id", "request_id") WHERE ("request_id" IS NOT NULL)'
        )
        db.execute_sql(f'DROP INDEX IF EXISTS "{table}_program_id_request_id"')
    for name in _COVERED_INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def _page_token_secret(db: peewee.Database) -> None:
    """Page tokens are signed with a secret all replicas share."""
    db.create_tables([models.ServerSecret])
    secrets.make(secrets.PAGE_TOKENS)


def _ledger_sequences(db: peewee.Database) -> None:
    """Each account's entries numbered in commit order. Entries made before were numbered
    by id, the order they were listed in."""
    migrator = SchemaMigrator.from_database(db)
    for table in ("balance", "ledger_entry"):
        if "seq" not in {c.name for c in db.get_columns(table)}:
            field = peewee.BigIntegerField(default=0)
            apply_operations(migrator.add_column(table, "seq", field))
    db.execute_sql(
        'UPDATE "ledger_entry" SET "seq" = (SELECT COUNT(*) FROM "ledger_entry" AS "e" '
        'WHERE "e"."participant_id" = "ledger_entry"."participant_id" '
        'AND "e"."asset_id" = "ledger_entry"."asset_id" AND "e"."id" <= "ledger_entry"."id") '
        'WHERE "seq" = 0'
    )
    db.execute_sql(
        'UPDATE "balance" SET "seq" = (SELECT COUNT(*) FROM "ledger_entry" AS "e" '
        'WHERE "e"."participant_id" = "balance"."participant_id" '
        'AND "e"."asset_id" = "balance"."asset_id")'
    )
    db.execute_sql(
        'CREATE UNIQUE INDEX IF NOT EXISTS "ledger_entry_participant_id_asset_id_seq" '
        'ON "ledger_entry" ("participant_id", "asset_id", "seq")'
    )
    db.execute_sql('DROP INDEX IF EXISTS "ledger_entry_participant_id_asset_id_id"')


# The participant columns' lengths (models.Participant): NFKC may lengthen a value.
_IDENTIFIER_LENGTHS = {"external_id": 128, "email": 320, "mobile": 32}


def _normalised_identifiers(db: peewee.Database) -> None:
    """Participants' identifiers rewritten in the form they are now written and looked up in
    (domain.participants: NFKC, format characters removed, trimmed; emails lower-cased; mobiles
    without spaces). Nothing is deleted or merged, and no row makes the start-up fail:

    - external_id is unique per program, so several rows may normalise to one value. The row
      that already holds the normalised value keeps it (lookups by it keep finding the same
      participant); if none does, the oldest (created_at, then id) takes it. Every other row
      of the group keeps its external_id exactly as stored and is logged as
      `participant_external_id_collision` with both ids, to be merged or renamed by hand; it
      stays reachable by id, email and mobile (a lookup by external_id finds the normalised one).
    - A value that normalises to nothing, or to more than its column holds, is kept as stored
      and logged as `participant_identifier_not_normalised`.
    - email and mobile may be shared, so they are normalised whatever other rows hold.
    updated_at is left alone: no caller changed these participants.
    """
    mark = db.param
    rows = db.execute_sql(
        'SELECT "id", "program_id", "external_id", "email", "mobile" FROM "participant" '
        'ORDER BY "program_id", "created_at", "id"'
    ).fetchall()
    claimed: dict[tuple[str, str], str] = {}  # (program_id, external_id) -> id, taken here
    for participant_id, program_id, *stored in rows:
        values = dict(zip(NORMALISERS, stored, strict=True))
        changed: dict[str, str] = {}
        for kind, value in values.items():
            if value is None:
                continue
            normal = NORMALISERS[kind](value)
            if normal == value:
                continue
            if not normal or len(normal) > _IDENTIFIER_LENGTHS[kind]:
                log.warning(
                    "participant_identifier_not_normalised",
                    participant_id=participant_id,
                    program_id=program_id,
                    field=kind,
                    normalised_length=len(normal),
                )
                continue
            changed[kind] = normal
        target = changed.get("external_id")
        if target is not None:
            holder = claimed.get((program_id, target))
            if holder is None:
                found = db.execute_sql(
                    f'SELECT "id" FROM "participant" WHERE "program_id" = {mark} '
                    f'AND "external_id" = {mark}',
                    (program_id, target),
                ).fetchone()
                holder = found[0] if found else None
            if holder is None:
                claimed[(program_id, target)] = participant_id
            else:
                log.warning(
                    "participant_external_id_collision",
                    participant_id=participant_id,
                    program_id=program_id,
                    normalised_external_id=target,
                    held_by=holder,
                )
                del changed["external_id"]
        if changed:
            assignments = ", ".join(f'"{kind}" = {mark}' for kind in changed)
            db.execute_sql(
                f'UPDATE "participant" SET {assignments} WHERE "id" = {mark}',
                (*changed.values(), participant_id),
            )


def _add_columns(db: peewee.Database, model: type[peewee.Model], names: tuple[str, ...]) -> None:
    """Model fields as columns of its table, those missing. Their DEFAULTs (models.py) stay in
    the database, so servers of the release before, which insert rows without these columns,
    keep working while servers are upgraded one by one."""
    migrator = SchemaMigrator.from_database(db)
    table = model._meta.table_name
    present = {c.name for c in db.get_columns(table)}
    for name in names:
        if name not in present:
            field = model._meta.fields[name]
            apply_operations(migrator.add_column(table, field.column_name, field))


def _event_feed(db: peewee.Database) -> None:
    """The outbox, its per-program sequencer and named consumers; code pools get a
    low-stock threshold."""
    db.create_tables([models.Event, models.EventSequence, models.EventConsumer], safe=True)
    _add_columns(db, models.CodePool, ("low_stock_threshold",))


def _pricing_and_issuers(db: peewee.Database) -> None:
    """Conversion ratios, cost rounding and payment options on rewards; redemption details,
    manual grants and the issuing key on issuances; key names. Existing rows keep their
    meaning: no ratio or options (priced by unit_cost, rounded up as before), not manual, no
    issuer recorded. AMOUNT_BASED rewards that already carry max_total, max_per_participant
    or limits keep them and are still held to them; an update of such a reward must clear
    them (CreateReward and UpdateReward now refuse them on AMOUNT_BASED)."""
    _add_columns(
        db,
        models.Reward,
        ("conversion_ratio", "cost_rounding", "payment_options", "redemption_unit"),
    )
    _add_columns(
        db,
        models.Issuance,
        ("redemption", "manual", "issuer_key_id", "issuer_key_name", "source_event_id"),
    )
    _add_columns(db, models.ApiKey, ("name",))
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "issuance_program_id_source_event_id_not_null" '
        'ON "issuance" ("program_id", "source_event_id") WHERE ("source_event_id" IS NOT NULL)'
    )


def _code_expiry_groups_registries(db: peewee.Database) -> None:
    """Codes expire (the draw index leads past expired ones to the first live code) and
    issuances show their code's expiry; participant groups with their balances and ledger;
    programs' registries of custom fields and fulfillment statuses, with their version."""
    migrator = SchemaMigrator.from_database(db)
    # With a default in the schema, as step 1 makes them: rows written without the column
    # (by older code, or by hand) get "never" and "version 0".
    if "expires_at" not in {c.name for c in db.get_columns("code")}:
        db.execute_sql(
            f'ALTER TABLE "code" ADD COLUMN "expires_at" BIGINT NOT NULL '
            f"DEFAULT {ExpiryField.NEVER}"
        )
    if "registry_version" not in {c.name for c in db.get_columns("program")}:
        db.execute_sql(
            'ALTER TABLE "program" ADD COLUMN "registry_version" BIGINT NOT NULL DEFAULT 0'
        )
    issuance_columns = {c.name for c in db.get_columns("issuance")}
    if "code_expires_at" not in issuance_columns:
        apply_operations(
            migrator.add_column("issuance", "code_expires_at", peewee.BigIntegerField(null=True))
        )
    if "cost_group_id" not in issuance_columns:
        group_id = peewee.CharField(max_length=40, null=True)
        apply_operations(migrator.add_column("issuance", "cost_group_id", group_id))
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "code_pool_id_status_expires_at_id" '
        'ON "code" ("pool_id", "status", "expires_at", "id")'
    )
    db.execute_sql('DROP INDEX IF EXISTS "code_pool_id_status_id"')
    db.create_tables(models.MIGRATION_9_MODELS)


MIGRATIONS: list[tuple[int, str, Callable[[peewee.Database], None]]] = [
    (1, "initial schema", _initial_schema),
    (2, "request hashes on creates; index codes by issuance", _request_hashes),
    (3, "drop covered indexes; unique request_ids skip NULLs", _lean_indexes),
    (4, "a secret to sign page tokens", _page_token_secret),
    (5, "ledger entries numbered per account in commit order", _ledger_sequences),
    (6, "participant identifiers normalised", _normalised_identifiers),
    (7, "event feed: outbox, sequencer, consumers; code pool low-stock threshold", _event_feed),
    (8, "pricing by conversion ratio, payment options, issuers on issuances", _pricing_and_issuers),
    (9, "code expiry; participant groups; program registries", _code_expiry_groups_registries),
]

# Several servers may start at once against one PostgreSQL database.
_PG_LOCK_KEY = 7_242_001


def migrate() -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied_now: list[int] = []
    with database.connection_context():
        if not is_sqlite():
            database.execute_sql("SELECT pg_advisory_lock(%s)", (_PG_LOCK_KEY,))
        try:

            def apply_pending() -> None:
                database.create_tables([SchemaMigration])
                done = {m.version for m in SchemaMigration.select(SchemaMigration.version)}
                for version, name, step in MIGRATIONS:
                    if version not in done:
                        step(database.obj)
                        SchemaMigration.create(version=version, name=name)
                        applied_now.append(version)

            in_transaction(apply_pending)
        finally:
            if not is_sqlite():
                database.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_LOCK_KEY,))
    return applied_now
