"""The SDK as another service installs it: wheels built by `make dist`, a fresh virtualenv on
the oldest and the newest Python it supports, `pip install --find-links dist rewards-client`
(our wheels from dist/, third-party ones from the package index), nothing of the server in
it, and every example run against a real server.

Needs python3.10 and python3.13 (on PATH or under pyenv). The wheels are built once per test
process and each virtualenv once per Python, under a lock, since `make dist` builds in the
source tree.
"""

import fcntl
import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import new_program

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "clients/python/examples").glob("*.py"))
PYTHONS = ("3.10", "3.13")
# Distributions of the server that a client must never pull in.
SERVER_ONLY = ("rewards-service", "peewee", "psycopg2", "psycopg2-binary", "structlog", "orjson")


def _interpreter(version: str) -> str:
    # pyenv's own builds first: its shims on PATH answer only for the versions it has enabled.
    builds = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python3")))
    found = builds[-1] if builds else shutil.which(f"python{version}")
    if found is None:
        pytest.fail(f"python{version} is needed to test the SDK's install; none on PATH or pyenv")
    return found


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    lock_path = Path(tempfile.gettempdir()) / f"rewards-dist-{abs(hash(str(ROOT)))}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building in the tree
        _run(["make", "-s", "dist", f"DIST={out}"], cwd=ROOT)
    built = sorted(p.name.split("-")[0] for p in out.glob("*.whl"))
    assert built == ["rewards_client", "rewards_proto", "rewards_service"]
    return out


@pytest.fixture(scope="session")
def venvs(tmp_path_factory, wheels):
    made: dict[str, Path] = {}

    def make(version: str) -> Path:
        if version not in made:
            home = tmp_path_factory.mktemp(f"venv-{version}")
            _run([_interpreter(version), "-m", "venv", str(home)])
            pip = [str(home / "bin/python"), "-m", "pip", "--quiet"]
            _run([*pip, "install", "--find-links", str(wheels), "rewards-client"], cwd=home)
            made[version] = home
        return made[version]

    return make


INSPECT = """
import importlib.metadata, importlib.util, json, sys
import rewards_client, rewards.v1.issuance_pb2_grpc
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "modules": {m: importlib.util.find_spec(m) is not None
                for m in ("peewee", "psycopg2", "structlog", "rewards_service")},
    "sdk": rewards_client.__file__,
}))
"""


@pytest.mark.parametrize("version", PYTHONS)
def test_the_sdk_installs_without_the_server(venvs, version):
    home = venvs(version)
    # -I: nothing from the environment or the working directory, only the virtualenv.
    found = json.loads(_run([str(home / "bin/python"), "-I", "-c", INSPECT], cwd=home).stdout)
    assert found["python"] == version
    assert {"rewards-client", "rewards-proto", "grpcio", "protobuf"} <= set(found["distributions"])
    assert not set(SERVER_ONLY) & set(found["distributions"]), found["distributions"]
    assert found["modules"] == dict.fromkeys(
        ("peewee", "psycopg2", "structlog", "rewards_service"), False
    )
    assert found["sdk"].startswith(str(home)), found["sdk"]  # the wheel, not the source tree
    for name in ("peewee", "psycopg2-binary", "structlog"):
        shown = subprocess.run([str(home / "bin/pip"), "show", name], capture_output=True)
        assert shown.returncode != 0, name


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("version", PYTHONS)
def test_the_examples_run_from_the_installed_sdk(venvs, target, version, example):
    home = venvs(version)
    issued = new_program("sdk-install")
    env = {
        "PATH": os.environ["PATH"],
        "REWARDS_TARGET": target,
        "REWARDS_API_KEY": issued.api_key,
    }
    out = _run([str(home / "bin/python"), "-I", str(example)], cwd=home, env=env).stdout
    assert "replayed: True" in out
    assert "status: ISSUANCE_STATUS_CLAIMED" in out
    assert "balance: 50 miles" in out
