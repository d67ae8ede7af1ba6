"""Migration 8 adds the pricing, redemption and issuer columns to a database made before them;
its rows keep their meaning: priced by unit_cost and rounded up, no payment options, no
redemption details, not manual, no issuer. Runs on the suite's backend in a database of its
own."""

from rewards_service.store.fields import JSONField
from tests.integration.test_schema_indexes import (  # noqa: F401 (new_url is a fixture)
    connected,
    migrate_in_child,
    new_url,
    schema_indexes,
    seed_program,
)

NEW_COLUMNS = {
    "reward": ("conversion_ratio", "cost_rounding", "payment_options", "redemption_unit"),
    "issuance": ("redemption", "manual", "issuer_key_id", "issuer_key_name", "source_event_id"),
    "api_key": ("name",),
}


def columns(db, table: str) -> set[str]:
    return {c.name for c in db.get_columns(table)}


def test_migration_8_brings_old_rows_along(new_url):  # noqa: F811
    migrate_in_child(new_url)
    with connected(new_url) as db:
        fresh = schema_indexes(db)
        # Back to the shape migration 8 found: none of its columns or its index.
        with db.atomic():
            db.execute_sql('DROP INDEX "issuance_program_id_source_event_id_not_null"')
            for table, names in NEW_COLUMNS.items():
                for name in names:
                    db.execute_sql(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')
            db.execute_sql('DELETE FROM "schema_migrations" WHERE "version" = 8')
            seed_program(db, "prg_old")
            mark = db.param
            db.execute_sql(
                'INSERT INTO "api_key" ("id", "program_id", "role", "key_hash", "created_at") '
                f"VALUES ({', '.join([mark] * 5)})",
                ("key_old", "prg_old", "admin", "0" * 64, 0),
            )
            db.execute_sql(
                'INSERT INTO "reward" ("id", "program_id", "name", "description", "category", '
                '"type", "status", "config", "redemption_type", "cost_asset_id", "unit_cost", '
                '"limits", "segments", "metadata", "redeemed_count", "version", "request_hash", '
                f'"created_at", "updated_at") VALUES ({", ".join([mark] * 19)})',
                ("rew_old", "prg_old", "Old", "", "", 2, 2, '{"product_id": "p"}', 2,
                 "prg_old_ast", "2.5", "[]", "[]", "{}", 0, 1, "", 0, 0),
            )  # fmt: skip
            db.execute_sql(
                'INSERT INTO "issuance" ("id", "program_id", "participant_id", "type", "status", '
                '"quantity", "amount", "cost_amount", "credit_amount", "coupon_code", '
                '"reward_snapshot", "action_code", "request_hash", "transaction_number", '
                '"notes", "metadata", "custom_fields", "owner_type", "owner_id", '
                '"fulfillment_status", "fulfillment_history", "issued_at", "revoke_reason") '
                f"VALUES ({', '.join([mark] * 23)})",
                ("iss_old", "prg_old", "prg_old_par", 2, 1, 1, "", 0, 0, "", "{}", "", "",
                 "", "", "{}", "{}", 0, "", "", "[]", 0, ""),
            )  # fmt: skip
        for table, names in NEW_COLUMNS.items():
            assert not columns(db, table) & set(names)
    assert migrate_in_child(new_url) == [8]
    with connected(new_url) as db:
        for table, names in NEW_COLUMNS.items():
            assert set(names) <= columns(db, table)
        assert schema_indexes(db) == fresh
        reward = db.execute_sql(
            'SELECT "unit_cost", "conversion_ratio", "cost_rounding", "payment_options", '
            '"redemption_unit" FROM "reward" WHERE "id" = \'rew_old\''
        ).fetchone()
        assert reward[:3] == ("2.5", None, 0)
        assert JSONField().python_value(reward[3]) == [] and reward[4] == ""
        old = db.execute_sql(
            'SELECT "redemption", "manual", "issuer_key_id", "issuer_key_name", '
            '"source_event_id" FROM "issuance" WHERE "id" = \'iss_old\''
        ).fetchone()
        assert JSONField().python_value(old[0]) == {}
        assert (bool(old[1]), old[2], old[3], old[4]) == (False, None, "", None)
        assert db.execute_sql('SELECT "id", "name" FROM "api_key"').fetchall() == [("key_old", "")]
    # Applied once: a second start has nothing to do.
    assert migrate_in_child(new_url) == []
    # A server of the release before still writes to the migrated database.
    with connected(new_url) as db, db.atomic():
        old_rows(db, "after")
        (row,) = db.execute_sql(
            'SELECT "redemption", "manual" FROM "issuance" WHERE "id" = \'iss_after\''
        ).fetchall()
        assert (row[0], bool(row[1])) == ("{}", False)


def old_rows(db, suffix: str) -> None:
    """Rows as a server of the release before writes them: without the new columns."""
    mark = db.param
    db.execute_sql(
        'INSERT INTO "api_key" ("id", "program_id", "role", "key_hash", "created_at") '
        f"VALUES ({', '.join([mark] * 5)})",
        (f"key_{suffix}", "prg_old", "admin", suffix.rjust(64, "0"), 0),
    )
    db.execute_sql(
        'INSERT INTO "reward" ("id", "program_id", "name", "description", "category", '
        '"type", "status", "config", "redemption_type", "cost_asset_id", "unit_cost", '
        '"limits", "segments", "metadata", "redeemed_count", "version", "request_hash", '
        f'"created_at", "updated_at") VALUES ({", ".join([mark] * 19)})',
        (f"rew_{suffix}", "prg_old", "Old", "", "", 2, 2, '{"product_id": "p"}', 1,
         "prg_old_ast", "1", "[]", "[]", "{}", 0, 1, "", 0, 0),
    )  # fmt: skip
    db.execute_sql(
        'INSERT INTO "issuance" ("id", "program_id", "participant_id", "type", "status", '
        '"quantity", "amount", "cost_amount", "credit_amount", "coupon_code", '
        '"reward_snapshot", "action_code", "request_hash", "transaction_number", '
        '"notes", "metadata", "custom_fields", "owner_type", "owner_id", '
        '"fulfillment_status", "fulfillment_history", "issued_at", "revoke_reason") '
        f"VALUES ({', '.join([mark] * 23)})",
        (f"iss_{suffix}", "prg_old", "prg_old_par", 2, 1, 1, "", 0, 0, "", "{}", "", "",
         "", "", "{}", "{}", 0, "", "", "[]", 0, ""),
    )  # fmt: skip


def test_servers_of_the_release_before_keep_writing_during_an_upgrade(new_url):  # noqa: F811
    # Once one upgraded server has migrated a shared database, the others, still on the
    # release before, insert rows that name none of the new columns: the database fills them.
    migrate_in_child(new_url)
    with connected(new_url) as db:
        with db.atomic():
            seed_program(db, "prg_old")
            old_rows(db, "during")
        assert db.execute_sql(
            'SELECT "cost_rounding", "payment_options", "redemption_unit" FROM "reward"'
        ).fetchall() == [(0, "[]", "")]
        (row,) = db.execute_sql(
            'SELECT "redemption", "manual", "issuer_key_name" FROM "issuance"'
        ).fetchall()
        assert (row[0], bool(row[1]), row[2]) == ("{}", False, "")
        assert db.execute_sql('SELECT "name" FROM "api_key"').fetchall() == [("",)]
