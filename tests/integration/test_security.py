"""Security promises: keys live only as hashes, every bad key gets one answer, no secret reaches
a log line, and request_id namespaces belong to one program."""

import contextlib
import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import grpc
import psycopg2
import pytest
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2

from rewards_service.services import programs
from rewards_service.store.db import database, is_sqlite, session
from rewards_service.store.models import ALL_MODELS, ApiKey
from tests import factories as f
from tests.conftest import new_key, new_program
from tests.helpers import expect_failure, failure_of, make_api, spawn_server, wait_for_line

TIMEOUT = 10


def _unauthenticated(api) -> tuple:
    """Everything a caller learns from a refused key."""
    failure = expect_failure(
        api.catalog.ListAssets, catalog_pb2.ListAssetsRequest(), timeout=TIMEOUT
    )
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    metadata = tuple(sorted(failure.metadata.items()))
    return failure.code, failure.message, failure.reason, failure.domain, metadata


def _sqlite_files(url: str) -> list[Path]:
    path = Path(url[len("sqlite:///") :])
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def _rows_holding(text: str) -> dict[str, int]:
    """Rows of any table whose text holds `text` (PostgreSQL: searched by the server)."""
    found = {}
    with session():
        for model in ALL_MODELS:
            table = model._meta.table_name
            if is_sqlite():
                rows = model.select().tuples()
                count = sum(any(text in str(value) for value in row) for row in rows)
            else:
                cursor = database.execute_sql(
                    f'SELECT count(*) FROM "{table}" t WHERE strpos(t::text, %s) > 0', (text,)
                )
                count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found


def test_database_holds_only_hashes_of_keys(channel, store):
    issued = new_program("hashes")
    keys = [issued, new_key(issued.program_id, "issuer"), new_key(issued.program_id, "reader")]
    for key in keys:  # every key has been used, so the auth path has seen it
        api = make_api(channel, issued.program_id, key.api_key)
        api.catalog.ListAssets(catalog_pb2.ListAssetsRequest(), timeout=TIMEOUT)
    unknown = f"rwk_{uuid.uuid4().hex}"
    _unauthenticated(make_api(channel, issued.program_id, unknown))
    with session():
        rows = {row.id: row for row in ApiKey.select().where(ApiKey.program == issued.program_id)}
    assert set(rows) == {key.key_id for key in keys}
    for key in keys:
        row = rows[key.key_id]
        assert row.key_hash == hashlib.sha256(key.api_key.encode()).hexdigest()
        assert key.api_key not in row.key_hash
        assert row.role == key.role
    for secret in [*(key.api_key for key in keys), unknown]:
        assert _rows_holding(secret) == {}
        assert _rows_holding(secret.removeprefix("rwk_")) == {}
    if store.startswith("sqlite"):
        files = _sqlite_files(store)
        assert files, "the SQLite database file was not found"
        # Read by another process: closing a descriptor of the file in this one would drop
        # the SQLite locks this process's connections hold on it.
        data = subprocess.run(["cat", *map(str, files)], capture_output=True, check=True).stdout
        # The scan is real: the stored hashes are in the bytes.
        assert all(rows[key.key_id].key_hash.encode() in data for key in keys)
        for key in keys:
            assert key.api_key.encode() not in data
            assert key.api_key.removeprefix("rwk_").encode() not in data


def test_unknown_revoked_and_malformed_keys_get_one_answer(channel):
    issued = new_program("keys")
    issuer = new_key(issued.program_id, "issuer")
    revoked_api = make_api(channel, issued.program_id, issuer.api_key)
    assert revoked_api.catalog.ListAssets(catalog_pb2.ListAssetsRequest(), timeout=TIMEOUT)
    with session():
        programs.revoke_key(issuer.key_id)
    other = new_program("keys-other")
    with session():
        programs.revoke_key(other.key_id)  # a revoked admin key of another program
    answers = {
        "revoked": _unauthenticated(revoked_api),
        "revoked via x-api-key": _unauthenticated(
            make_api(channel, issued.program_id, issuer.api_key, header="x-api-key")
        ),
        "revoked admin": _unauthenticated(make_api(channel, other.program_id, other.api_key)),
        "unknown": _unauthenticated(make_api(channel, issued.program_id, f"rwk_{uuid.uuid4()}")),
        "garbage": _unauthenticated(make_api(channel, issued.program_id, "x" * 300)),
        "almost": _unauthenticated(make_api(channel, issued.program_id, issued.api_key + "x")),
        "prefix": _unauthenticated(make_api(channel, issued.program_id, issued.api_key[:-1])),
    }
    assert len(set(answers.values())) == 1, answers
    _, message, reason, domain, metadata = answers["revoked"]
    assert (reason, domain) == ("INVALID_CREDENTIALS", "rewards.v1")
    assert "revoked" not in message.lower()
    assert issuer.api_key not in message + repr(metadata)
    # The program's own admin key still works: only the revoked key stopped.
    admin = make_api(channel, issued.program_id, issued.api_key)
    assert admin.catalog.ListAssets(catalog_pb2.ListAssetsRequest(), timeout=TIMEOUT)


def test_missing_credentials_are_told_how_to_send_a_key(channel):
    issued = new_program("nokey")
    answers = set()
    for metadata in (
        (),
        (("authorization", "Bearer "),),
        (("authorization", f"Basic {issued.api_key}"),),
        (("authorization", issued.api_key),),
        (("x-api-key", " "),),
    ):
        call = channel.unary_unary(
            "/rewards.v1.RewardCatalog/ListAssets",
            request_serializer=catalog_pb2.ListAssetsRequest.SerializeToString,
            response_deserializer=catalog_pb2.ListAssetsResponse.FromString,
        )
        try:
            call(catalog_pb2.ListAssetsRequest(), metadata=metadata, timeout=TIMEOUT)
        except grpc.RpcError as error:
            failure = failure_of(error)
        else:
            raise AssertionError(f"{metadata} was accepted")
        assert failure.code == grpc.StatusCode.UNAUTHENTICATED
        assert failure.reason == "MISSING_CREDENTIALS"
        assert issued.api_key not in failure.message
        answers.add(failure.message)
    assert len(answers) == 1


def test_a_key_revoked_elsewhere_stops_working_within_the_cache_time(store):
    server = spawn_server(store, env={"REWARDS_AUTH_CACHE_SECONDS": "0.3"})
    try:
        issued = new_program("revoke-elsewhere")
        issuer = new_key(issued.program_id, "issuer")
        with grpc.insecure_channel(server.address) as channel:
            api = make_api(channel, issued.program_id, issuer.api_key)
            assert api.catalog.ListAssets(catalog_pb2.ListAssetsRequest(), timeout=TIMEOUT)
            unknown = _unauthenticated(make_api(channel, issued.program_id, "rwk_unknown"))
            with session():
                programs.revoke_key(issuer.key_id)  # in this process, not the server's
            revoked_at = time.monotonic()
            while True:
                try:
                    api.catalog.ListAssets(catalog_pb2.ListAssetsRequest(), timeout=TIMEOUT)
                except grpc.RpcError as error:
                    failure = failure_of(error)
                    break
                assert time.monotonic() - revoked_at < 3, "the revoked key kept working"
                time.sleep(0.02)
            assert time.monotonic() - revoked_at < 0.3 + 1.0
            refused = (
                failure.code,
                failure.message,
                failure.reason,
                failure.domain,
                tuple(sorted(failure.metadata.items())),
            )
            assert refused == unknown
    finally:
        assert server.stop() == 0


# Logs


@pytest.fixture
def empty_database(store, tmp_path):
    """A database nobody has used yet, on the suite's backend, so the server bootstraps."""
    if store.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"rewards_logs_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(store)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(store)._replace(path=f"/{name}"))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _admin_cli(database_url: str, *args: str) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from rewards_service.cli import main; main()",
            "--database-url",
            database_url,
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_no_secret_reaches_any_log_line(empty_database):
    server = spawn_server(
        empty_database,
        "--log-level",
        "debug",
        env={"REWARDS_AUTH_CACHE_SECONDS": "0", "REWARDS_BOOTSTRAP_API_KEY": ""},
    )
    try:
        printed = [line for line in server.stdout_lines if "Admin API key" in line]
        assert len(printed) == 1, "the bootstrap key is printed exactly once"
        bootstrap_key = printed[0].rsplit(":", 1)[1].strip()
        program_id = (
            next(line for line in server.stdout_lines if line.startswith("Created program"))
            .split("(")[1]
            .split(")")[0]
        )
        issuer = _admin_cli(
            empty_database, "create-key", "--program", program_id, "--role", "issuer"
        )
        reader = _admin_cli(
            empty_database, "create-key", "--program", program_id, "--role", "reader"
        )
        _admin_cli(empty_database, "revoke-key", reader["key_id"])
        unknown = f"rwk_{uuid.uuid4().hex}"
        secrets = [bootstrap_key, issuer["api_key"], reader["api_key"], unknown]

        calls = 0
        with grpc.insecure_channel(server.address) as channel:
            admin = make_api(channel, program_id, bootstrap_key)
            by_header = make_api(channel, program_id, issuer["api_key"], header="x-api-key")
            reward = f.reward(admin)
            user = f.participant(by_header, "log-user")
            f.issue(by_header, reward.id, user.id, request_id="log-issue")
            calls += 3
            for api in (
                by_header,  # an issuer may not create rewards
                make_api(channel, program_id, reader["api_key"]),  # revoked
                make_api(channel, program_id, unknown),
                make_api(channel, program_id, "Basic " + issuer["api_key"]),
            ):
                expect_failure(f.reward, api)
                calls += 1
            # A call the server may fail to handle: its error log must not carry a key either.
            with contextlib.suppress(grpc.RpcError):
                admin.catalog.UpdateReward(
                    catalog_pb2.UpdateRewardRequest(
                        reward=catalog_pb2.Reward(id=reward.id, status=99),
                        update_mask={"paths": ["status"]},
                    ),
                    timeout=TIMEOUT,
                )
            calls += 1
    finally:
        assert server.stop() == 0
    wait_for_line(server, '"event":"stopped"')

    logs = []
    for line in server.stdout_lines:
        if line in printed or line.startswith("Created program") or not line.strip():
            continue
        assert line.startswith("{"), f"not a log line: {line!r}"
        logs.append(json.loads(line))
    rpc_lines = [entry for entry in logs if entry["event"] == "rpc"]
    assert len(rpc_lines) == calls, "every call left its access log line"
    assert {"PERMISSION_DENIED", "UNAUTHENTICATED", "OK"} <= {e["code"] for e in rpc_lines}
    assert all(e["program"] == program_id for e in rpc_lines if e["code"] == "OK")
    for secret in secrets:
        for token in (secret, secret.removeprefix("rwk_")):
            leaked = [line for line in server.stdout_lines if token in line]
            if secret == bootstrap_key:
                assert leaked == printed
            else:
                assert leaked == []


# request_id namespaces


def test_request_id_namespaces_are_per_program(channel):
    a_issued, b_issued = new_program("ns-a"), new_program("ns-b")
    a = make_api(channel, a_issued.program_id, a_issued.api_key)
    b = make_api(channel, b_issued.program_id, b_issued.api_key)
    shared = "order-42"
    a_reward, b_reward = f.reward(a), f.reward(b)
    a_user, b_user = f.participant(a, "same-user"), f.participant(b, "same-user")
    a_points, b_points = f.asset(a), f.asset(b)

    first = f.issue(a, a_reward.id, a_user.id, request_id=shared)
    theirs = f.issue(b, b_reward.id, b_user.id, request_id=shared)
    assert not first.idempotent_replay and not theirs.idempotent_replay
    assert theirs.issuance.id != first.issuance.id
    assert theirs.issuance.reward_id == b_reward.id
    # Each program replays its own call.
    assert f.issue(a, a_reward.id, a_user.id, request_id=shared).issuance.id == first.issuance.id
    assert f.issue(b, b_reward.id, b_user.id, request_id=shared).issuance.id == theirs.issuance.id

    grant = issuance_pb2.GrantCustomRewardRequest(
        participant=f.ref(external_id="same-user"),
        amount="5.00",
        action_code="review",
        client_reference="grant-1",
    )
    a_grant, b_grant = a.issuance.GrantCustomReward(grant), b.issuance.GrantCustomReward(grant)
    assert not a_grant.idempotent_replay and not b_grant.idempotent_replay
    assert a_grant.issuance.id != b_grant.issuance.id
    adjust = participants_pb2.AdjustBalanceRequest(
        participant=f.ref(external_id="same-user"), delta="7", request_id="adj-1"
    )
    adjust.asset_id = a_points.id
    a_adjust = a.participants.AdjustBalance(adjust)
    adjust.asset_id = b_points.id
    b_adjust = b.participants.AdjustBalance(adjust)
    assert not a_adjust.idempotent_replay and not b_adjust.idempotent_replay
    assert a_adjust.entry.id != b_adjust.entry.id

    # B sees nothing of A's.
    for issuance_id in (first.issuance.id, a_grant.issuance.id):
        for call, request in (
            (b.issuance.GetIssuance, issuance_pb2.GetIssuanceRequest(id=issuance_id)),
            (b.issuance.ClaimIssuance, issuance_pb2.ClaimIssuanceRequest(id=issuance_id)),
            (b.issuance.RevokeIssuance, issuance_pb2.RevokeIssuanceRequest(id=issuance_id)),
            (
                b.issuance.UpdateFulfillment,
                issuance_pb2.UpdateFulfillmentRequest(id=issuance_id, status="SHIPPED"),
            ),
        ):
            failure = expect_failure(call, request)
            assert (failure.code, failure.reason) == (
                grpc.StatusCode.NOT_FOUND,
                "ISSUANCE_NOT_FOUND",
            )
            assert "ns-a" not in failure.message
    listed = b.issuance.ListIssuances(issuance_pb2.ListIssuancesRequest(page_size=1000))
    assert {i.id for i in listed.issuances} == {theirs.issuance.id, b_grant.issuance.id}
    assert {i.request_id for i in listed.issuances} == {shared, "grant-1"}
    failure = expect_failure(f.issue, b, a_reward.id, b_user.id, request_id="probe")
    assert failure.reason == "REWARD_NOT_FOUND"
    failure = expect_failure(f.issue, b, b_reward.id, a_user.id, request_id="probe")
    assert failure.reason == "PARTICIPANT_NOT_FOUND"
    failure = expect_failure(f.balance, b, b_user.id, a_points.id)
    assert failure.reason == "ASSET_NOT_FOUND"

    # A's issuance is untouched by B's attempts.
    mine = a.issuance.GetIssuance(issuance_pb2.GetIssuanceRequest(id=first.issuance.id))
    assert mine.status == common_pb2.ISSUANCE_STATUS_CONFIRMED
    assert mine.fulfillment_status == "" and not mine.fulfillment_history
    assert f.balance(a, a_user.id, a_points.id).available == "7.00"
    assert f.balance(b, b_user.id, b_points.id).available == "7.00"
