"""`rewards-admin check` against a database a real server wrote, then corrupted row by row
with plain SQL: each kind of drift is named, and the exit status is 3."""

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import grpc
import psycopg2
import pytest
from google.protobuf import timestamp_pb2
from rewards.v1 import catalog_pb2, common_pb2, groups_pb2

from tests import factories as f
from tests.helpers import make_api, spawn_server

ADMIN = Path(sys.executable).parent / "rewards-admin"
DRIFT = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'check.db'}"
    found = os.environ.get("REWARDS_TEST_DATABASE", "")
    if not found.startswith("postgres"):
        pytest.skip("REWARDS_TEST_DATABASE names no PostgreSQL database")
    return found


def admin(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ADMIN), "--database-url", url, "--create", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def sql(url: str, statement: str, *params) -> None:
    """Written around the service, as a bad migration or a hand edit would."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db, db:
            db.execute(statement.replace("%s", "?"), params)
    else:
        with closing(psycopg2.connect(url)) as db, db, db.cursor() as cursor:
            cursor.execute(statement, params)


def check(url: str, program_id: str) -> tuple[int, dict]:
    done = admin(url, "check", "--program", program_id, "--json")
    assert done.stderr == ""
    return done.returncode, json.loads(done.stdout)


def test_check_finds_each_kind_of_drift(url):
    made = json.loads(
        admin(url, "--json", "create-program", f"check-{uuid.uuid4().hex[:6]}").stdout
    )
    pid = made["program_id"]
    server = spawn_server(url)
    try:
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, pid, made["api_key"])
            points = f.asset(api, code="PTS", scale=0)
            earn = f.reward(api, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="5"))
            mug = f.reward(api, max_total=1)
            pool = f.code_pool(api, ["C-1", "C-2", "C-3"])
            coupon = f.reward(
                api, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id)
            )
            alice, bob = f.participant(api), f.participant(api)
            f.issue(api, earn.id, alice.id)
            f.issue(api, mug.id, alice.id)  # the last one: OUT_OF_STOCK
            api.catalog.AddCodes(
                catalog_pb2.AddCodesRequest(
                    code_pool_id=pool.id,
                    code_entries=[
                        catalog_pb2.CodeEntry(
                            code="C-0", expires_at=timestamp_pb2.Timestamp(seconds=4_102_444_800)
                        )
                    ],
                )
            )
            first = f.issue(api, coupon.id, alice.id).issuance  # C-0, expiring first
            second = f.issue(api, coupon.id, bob.id).issuance
            assert f.get_reward(api, mug.id).status == common_pb2.REWARD_STATUS_OUT_OF_STOCK
            home = api.groups.CreateGroup(
                groups_pb2.CreateGroupRequest(group=groups_pb2.Group(name="Home"))
            )
            for delta in ("20", "-5"):
                topped = api.groups.AdjustGroupBalance(
                    groups_pb2.AdjustGroupBalanceRequest(
                        group_id=home.id, asset_id=points.id, delta=delta
                    )
                )
    finally:
        assert server.stop() == 0

    status, report = check(url, pid)
    assert (status, report["problems"]) == (0, []), report
    assert report["checked"] == {
        "rewards": 3,
        "balances": 1,
        "group_balances": 1,
        "code_pools": 1,
        "events": 7,  # 4 issuances, 1 ledger entry and 2 group entries, each with its event
    }
    text = admin(url, "check", "--program", pid)
    assert text.returncode == 0 and text.stdout.strip().endswith(": ok")

    def drift(*corruption, undo, expect: str) -> None:
        sql(url, *corruption)
        try:
            status, report = check(url, pid)
            assert status == DRIFT, report
            assert len(report["problems"]) == 1, report
            assert expect in report["problems"][0], report
            text = admin(url, "check", "--program", pid)
            assert text.returncode == DRIFT
            assert f"drift: {report['problems'][0]}" in text.stdout
        finally:
            sql(url, *undo)
        assert check(url, pid)[0] == 0

    drift(
        'UPDATE "reward" SET "redeemed_count" = "redeemed_count" + 1 WHERE "id" = %s',
        earn.id,
        undo=(
            'UPDATE "reward" SET "redeemed_count" = "redeemed_count" - 1 WHERE "id" = %s',
            earn.id,
        ),
        expect=f"reward {earn.id}: redeemed_count 2 but its issuances hold 1 units",
    )
    drift(
        'UPDATE "balance" SET "available" = "available" + 7, '
        '"lifetime_earned" = "lifetime_earned" + 7 WHERE "participant_id" = %s',
        alice.id,
        undo=(
            'UPDATE "balance" SET "available" = "available" - 7, '
            '"lifetime_earned" = "lifetime_earned" - 7 WHERE "participant_id" = %s',
            alice.id,
        ),
        expect="available 12 but its entries sum to 5",
    )
    drift(
        'UPDATE "group_balance" SET "available" = "available" + 3, '
        '"lifetime_earned" = "lifetime_earned" + 3 WHERE "group_id" = %s',
        home.id,
        undo=(
            'UPDATE "group_balance" SET "available" = "available" - 3, '
            '"lifetime_earned" = "lifetime_earned" - 3 WHERE "group_id" = %s',
            home.id,
        ),
        expect=f"group balance {home.id}/{points.id}: available 18 but its entries sum to 15",
    )
    drift(
        'UPDATE "issuance" SET "coupon_code" = %s WHERE "id" = %s',
        first.coupon_code,
        second.id,
        undo=(
            'UPDATE "issuance" SET "coupon_code" = %s WHERE "id" = %s',
            second.coupon_code,
            second.id,
        ),
        expect=f"code {first.coupon_code!r} of pool {pool.id} was issued 2 times",
    )
    drift(
        'UPDATE "issuance" SET "code_expires_at" = "issued_at" - 1 WHERE "id" = %s',
        first.id,
        undo=(
            'UPDATE "issuance" SET "code_expires_at" = %s WHERE "id" = %s',
            4_102_444_800 * 1_000_000,
            first.id,
        ),
        expect=f"issuance {first.id} drew code 'C-0' after it expired",
    )
    drift(
        'UPDATE "reward" SET "status" = %s WHERE "id" = %s',
        common_pb2.REWARD_STATUS_ACTIVE,
        mug.id,
        undo=(
            'UPDATE "reward" SET "status" = %s WHERE "id" = %s',
            common_pb2.REWARD_STATUS_OUT_OF_STOCK,
            mug.id,
        ),
        expect=f"reward {mug.id}: REWARD_STATUS_ACTIVE but its stock says REWARD_STATUS_OUT_OF",
    )
    # The issuance's event recorded as another type: the issuance has no event of its own.
    drift(
        'UPDATE "event" SET "type" = 7 WHERE "type" = 4 AND "payload" LIKE %s',
        f"%{first.id}%",
        undo=(
            'UPDATE "event" SET "type" = 4 WHERE "type" = 7 AND "payload" LIKE %s',
            f"%{first.id}%",
        ),
        expect=f"issuance {first.id} has no event",
    )
    drift(
        'UPDATE "event" SET "type" = 7 WHERE "type" = 12 AND "payload" LIKE %s',
        f"%{topped.entry.id}%",
        undo=(
            'UPDATE "event" SET "type" = 12 WHERE "type" = 7 AND "payload" LIKE %s',
            f"%{topped.entry.id}%",
        ),
        expect=f"group_ledger_entry {topped.entry.id} has no event",
    )
    drift(
        'UPDATE "code_pool" SET "available_count" = "available_count" + 1 WHERE "id" = %s',
        pool.id,
        undo=(
            'UPDATE "code_pool" SET "available_count" = "available_count" - 1 WHERE "id" = %s',
            pool.id,
        ),
        expect=f"code pool {pool.id}: total/available/issued 4/3/2 but its codes say 4/2/2",
    )
