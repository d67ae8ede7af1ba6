"""`rewards-admin`, the operator CLI, as a real process against a SQLite file, and the keys it
makes used against a real server."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from rewards.v1 import catalog_pb2

from tests.helpers import (
    assert_usage_error,
    expect_failure,
    failure_of,
    make_api,
    run_command,
    spawn_server,
)

ADMIN = Path(sys.executable).parent / "rewards-admin"
PRODUCT = catalog_pb2.Reward(
    name="Mug", type=2, product=catalog_pb2.ProductConfig(product_id="mug")
)


@pytest.fixture
def db_url(tmp_path) -> str:
    # An empty file is an empty SQLite database: rewards-admin migrates it. A missing one it
    # refuses without --create.
    (tmp_path / "admin.db").touch()
    return f"sqlite:///{tmp_path / 'admin.db'}"


def admin_cli(db_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(ADMIN), "--database-url", db_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def as_json(db_url: str, *args: str) -> dict:
    done = admin_cli(db_url, "--json", *args)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # exactly one JSON object
    return json.loads(lines[0])


def text_fields(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        name, sep, value = line.partition(": ")
        if sep and re.fullmatch(r"[a-z_]+", name):
            found[name] = value
    return found


def test_the_console_script_is_installed():
    assert ADMIN.exists()
    done = subprocess.run([str(ADMIN), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in (
        "create-program",
        "list-programs",
        "create-key",
        "revoke-key",
        "list-keys",
        "check",
    ):
        assert command in done.stdout


def test_create_program_prints_its_id_and_first_admin_key(db_url):
    out = admin_cli(db_url, "create-program", "Acme Rewards").stdout
    fields = text_fields(out)
    assert fields["program_id"].startswith("prg_")
    assert fields["key_id"].startswith("key_")
    assert fields["api_key"].startswith("rwk_") and len(fields["api_key"]) > 30
    assert fields["role"] == "admin"
    assert "only once" in out


def test_create_program_json(db_url):
    made = as_json(db_url, "create-program", "Acme")
    assert set(made) == {"program_id", "key_id", "api_key", "role"}
    assert made["program_id"].startswith("prg_") and made["role"] == "admin"
    other = as_json(db_url, "create-program", "Acme")
    assert other["program_id"] != made["program_id"]
    assert other["api_key"] != made["api_key"]


def test_json_may_follow_the_command(db_url):
    done = admin_cli(db_url, "create-program", "Acme", "--json", check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["role"] == "admin"


@pytest.mark.parametrize("role", ["reader", "issuer", "admin"])
def test_create_key_with_a_role(db_url, role):
    program = as_json(db_url, "create-program", "Acme")
    made = as_json(db_url, "create-key", "--program", program["program_id"], "--role", role)
    assert made["program_id"] == program["program_id"]
    assert made["role"] == role
    assert made["key_id"].startswith("key_") and made["key_id"] != program["key_id"]
    assert made["api_key"].startswith("rwk_") and made["api_key"] != program["api_key"]
    text = admin_cli(db_url, "create-key", "--program", program["program_id"], "--role", role)
    assert text_fields(text.stdout)["role"] == role


def test_list_keys_shows_ids_and_roles_never_secrets(db_url):
    program = as_json(db_url, "create-program", "Acme")
    pid = program["program_id"]
    reader = as_json(db_url, "create-key", "--program", pid, "--role", "reader")
    issuer = as_json(db_url, "create-key", "--program", pid, "--role", "issuer")
    secrets = [program["api_key"], reader["api_key"], issuer["api_key"]]

    listed = as_json(db_url, "list-keys", "--program", pid)
    roles = {k["key_id"]: k["role"] for k in listed["keys"]}
    assert roles == {
        program["key_id"]: "admin",
        reader["key_id"]: "reader",
        issuer["key_id"]: "issuer",
    }
    assert not any(k["revoked"] for k in listed["keys"])

    text = admin_cli(db_url, "list-keys", "--program", pid).stdout
    for key_id, role in roles.items():
        line = next(line for line in text.splitlines() if key_id in line)
        assert role in line and "active" in line
    for out in (text, json.dumps(listed)):
        for secret in secrets:
            assert secret not in out
            assert secret[4:] not in out
        assert "rwk_" not in out


def test_list_keys_of_another_program_is_separate(db_url):
    one = as_json(db_url, "create-program", "One")
    two = as_json(db_url, "create-program", "Two")
    listed = as_json(db_url, "list-keys", "--program", two["program_id"])
    assert [k["key_id"] for k in listed["keys"]] == [two["key_id"]]
    assert one["key_id"] not in json.dumps(listed)


def test_revoke_key(db_url):
    program = as_json(db_url, "create-program", "Acme")
    reader = as_json(db_url, "create-key", "--program", program["program_id"], "--role", "reader")
    revoked = as_json(db_url, "revoke-key", reader["key_id"])
    assert revoked["key_id"] == reader["key_id"] and revoked["revoked"] is True
    assert "api_key" not in revoked
    listed = as_json(db_url, "list-keys", "--program", program["program_id"])
    state = {k["key_id"]: k["revoked"] for k in listed["keys"]}
    assert state == {program["key_id"]: False, reader["key_id"]: True}
    text = admin_cli(db_url, "list-keys", "--program", program["program_id"]).stdout
    assert "revoked" in next(line for line in text.splitlines() if reader["key_id"] in line)
    # Revoking again is harmless.
    assert as_json(db_url, "revoke-key", reader["key_id"])["revoked"] is True


def test_keys_made_by_the_cli_work_against_a_server(db_url):
    program = as_json(db_url, "create-program", "Acme")
    pid = program["program_id"]
    reader = as_json(db_url, "create-key", "--program", pid, "--role", "reader")
    doomed = as_json(db_url, "create-key", "--program", pid, "--role", "issuer")
    server = spawn_server(db_url)
    try:
        # The database already had a program: no bootstrap key this time.
        assert not any("Admin API key" in line for line in server.stdout_lines)
        with grpc.insecure_channel(server.address) as channel:
            admin = make_api(channel, pid, program["api_key"])
            made = admin.catalog.CreateReward(catalog_pb2.CreateRewardRequest(reward=PRODUCT))
            reading = make_api(channel, pid, reader["api_key"])
            listed = reading.catalog.ListRewards(catalog_pb2.ListRewardsRequest())
            assert [r.id for r in listed.rewards] == [made.id]
            denied = expect_failure(
                reading.catalog.CreateReward, catalog_pb2.CreateRewardRequest(reward=PRODUCT)
            )
            assert denied.code == grpc.StatusCode.PERMISSION_DENIED
            assert denied.reason == "INSUFFICIENT_SCOPE"

            issuer = make_api(channel, pid, doomed["api_key"])
            issuer.catalog.GetReward(catalog_pb2.GetRewardRequest(id=made.id))
            admin_cli(db_url, "revoke-key", doomed["key_id"])
            # Another process revoked it; the server may remember a valid key briefly.
            failure = _eventually_refused(issuer, made.id)
            assert failure.code == grpc.StatusCode.UNAUTHENTICATED
            assert failure.reason == "INVALID_CREDENTIALS"
    finally:
        assert server.stop() == 0


def _eventually_refused(api, reward_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=reward_id))
        except grpc.RpcError as error:
            return failure_of(error)
        assert time.monotonic() < deadline, "a revoked key kept working"
        time.sleep(0.1)


def test_a_bad_role_fails_with_a_clear_message(db_url):
    program = as_json(db_url, "create-program", "Acme")
    done = admin_cli(
        db_url, "create-key", "--program", program["program_id"], "--role", "owner", check=False
    )
    assert done.returncode != 0
    assert "owner" in done.stderr
    for role in ("reader", "issuer", "admin"):
        assert role in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    listed = as_json(db_url, "list-keys", "--program", program["program_id"])
    assert len(listed["keys"]) == 1


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (("create-key", "--program", "prg_missing", "--role", "reader"), "prg_missing", 1),
        (("list-keys", "--program", "prg_missing"), "prg_missing", 1),
        (("check", "--program", "prg_missing"), "prg_missing", 1),
        (("revoke-key", "key_missing"), "key_missing", 1),
        (("create-program", ""), "1-255", 2),
        (("create-key", "--program", "prg_x"), "--role", 2),
        (("list-keys",), "--program", 2),
        (("drop-program", "prg_x"), "drop-program", 2),
        (("list-programs", "--verbose"), "--verbose", 2),
    ],
    ids=[
        "create-key-unknown-program",
        "list-keys-unknown-program",
        "check-unknown-program",
        "unknown-key",
        "empty-name",
        "missing-role",
        "missing-program",
        "unknown-command",
        "unknown-option",
    ],
)
def test_mistakes_fail_with_one_clear_line(db_url, args, message, status):
    """Not found is 1 for every command; a usage mistake is 2."""
    done = admin_cli(db_url, *args, check=False)
    assert done.returncode == status, done.stderr
    assert done.stdout == ""
    assert message in done.stderr
    assert done.stderr.startswith("rewards-admin: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_fails_without_echoing_its_url(tmp_path):
    url = "postgresql://operator:hunter2@127.0.0.1:1/rewards"
    done = subprocess.run(
        [str(ADMIN), "--database-url", url, "list-keys", "--program", "prg_x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "cannot use the database" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_database_url_comes_from_the_environment(tmp_path):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    env_run = subprocess.run(
        [str(ADMIN), "--json", "create-program", "FromEnv", "--create"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "REWARDS_DATABASE_URL": url},
        cwd=tmp_path,
    )
    assert env_run.returncode == 0, env_run.stderr
    made = json.loads(env_run.stdout)
    listed = as_json(url, "list-keys", "--program", made["program_id"])
    assert [k["key_id"] for k in listed["keys"]] == [made["key_id"]]
    assert not (tmp_path / "rewards.db").exists()


def test_rewards_admin_checks_its_settings_the_same_way(tmp_path):
    env = {"REWARDS_DATABASE_URL": "mysql://operator:hunter2@db/rewards"}
    done = run_command(ADMIN, "list-programs", env=env, cwd=tmp_path)
    assert_usage_error(done, "rewards-admin", "REWARDS_DATABASE_URL", "unsupported")
    assert "hunter2" not in done.stderr
    done = run_command(ADMIN, "list-programs", env={"REWARDS_LOG_LEVEL": "verbose"}, cwd=tmp_path)
    assert_usage_error(done, "rewards-admin", "REWARDS_LOG_LEVEL=verbose")
    assert list(tmp_path.iterdir()) == []


def test_rewards_admin_ignores_settings_only_the_server_uses(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    env = {"REWARDS_DATABASE_URL": url, "REWARDS_AUTH_CACHE_SECONDS": "1s"}
    done = run_command(ADMIN, "--create", "create-program", "Acme", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "program_id: prg_" in done.stdout


def test_list_programs(db_url):
    one = as_json(db_url, "create-program", "One")
    two = as_json(db_url, "create-program", "Two words")
    listed = as_json(db_url, "list-programs")
    assert [(p["program_id"], p["name"]) for p in listed["programs"]] == [
        (one["program_id"], "One"),
        (two["program_id"], "Two words"),
    ]
    text = admin_cli(db_url, "list-programs").stdout.splitlines()
    assert len(text) == 2
    assert text[1].startswith(two["program_id"]) and text[1].endswith("Two words")
    assert "rwk_" not in json.dumps(listed) + "".join(text)


def test_options_are_taken_before_or_after_the_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'anywhere.db'}"
    done = subprocess.run(
        [str(ADMIN), "create-program", "Acme", "--database-url", url, "--create", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    for args in (
        ["--database-url", url, "list-keys", "--program", made["program_id"], "--json"],
        ["list-keys", "--json", "--program", made["program_id"], "--database-url", url],
        ["--json", "list-keys", "--database-url", url, "--program", made["program_id"]],
    ):
        again = subprocess.run(
            [str(ADMIN), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert again.returncode == 0, (args, again.stderr)
        assert json.loads(again.stdout)["keys"][0]["key_id"] == made["key_id"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == ["anywhere.db"]


def test_a_missing_database_file_is_refused_unless_create(tmp_path):
    """Run from another directory, the default sqlite:///rewards.db would be a new, empty
    database, and a key made there one the real server rejects."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}
    for args in (["create-program", "Acme"], ["list-programs"], ["check"]):
        done = subprocess.run(
            [str(ADMIN), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=base
        )
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.startswith("rewards-admin: no database at ")
        assert str(tmp_path / "rewards.db") in done.stderr and "--create" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert list(tmp_path.iterdir()) == []
    done = subprocess.run(
        [str(ADMIN), "--create", "list-programs"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=base,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "rewards.db").exists()


def test_a_key_may_be_named_for_the_issuances_it_makes(db_url):
    program = as_json(db_url, "create-program", "Acme")
    pid = program["program_id"]
    till = as_json(db_url, "create-key", "--program", pid, "--role", "issuer", "--name", "till 7")
    listed = {
        k["key_id"]: k["name"] for k in as_json(db_url, "list-keys", "--program", pid)["keys"]
    }
    assert listed == {program["key_id"]: "", till["key_id"]: "till 7"}
    text = admin_cli(db_url, "list-keys", "--program", pid).stdout
    assert next(line for line in text.splitlines() if till["key_id"] in line).endswith("till 7")
    bad = admin_cli(
        db_url, "create-key", "--program", pid, "--role", "reader", "--name", "a\nb", check=False
    )
    assert bad.returncode == 2 and "key name" in bad.stderr  # a usage error
    assert len(as_json(db_url, "list-keys", "--program", pid)["keys"]) == 2
