"""buf breaking, as `make lint` and CI run it, passes an unchanged or extended rewards.v1 and
fails one that renumbers, removes or retypes a field. Each case edits a copy of the contract
and compares it with the repository's."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = Path(sys.executable).parent / "buf"
CATALOG = "protos/rewards/v1/catalog.proto"


@pytest.fixture
def contract(tmp_path) -> Path:
    for part in ("protos", "third_party"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    return tmp_path


def edit(contract: Path, old: str, new: str) -> None:
    path = contract / CATALOG
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def breaking(contract: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), "breaking", str(contract), "--against", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unchanged_contract_passes(contract):
    done = breaking(contract)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_new_field_passes(contract):
    edit(
        contract,
        "  CodePool code_pool = 3;\n}",
        "  CodePool code_pool = 3;\n  // Codes refused as malformed.\n"
        "  int64 rejected_count = 4;\n}",
    )
    done = breaking(contract)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("int64 added_count = 1;", "int64 added_count = 4;", r'field "1" with name "added_count"'),
        ("int64 duplicate_count = 2;", "reserved 2;", r'field "2" with name "duplicate_count"'),
        ("int64 added_count = 1;", "string added_count = 1;", r'type from "int64" to "string"'),
        ("int64 added_count = 1;", "int64 codes_added = 1;", r'name from "added_count"'),
    ],
    ids=["renumbered", "removed", "retyped", "renamed"],
)
def test_a_breaking_change_fails(contract, old, new, complaint):
    edit(contract, old, new)
    done = breaking(contract)
    assert done.returncode != 0
    assert re.search(complaint, done.stdout + done.stderr), done.stdout + done.stderr
