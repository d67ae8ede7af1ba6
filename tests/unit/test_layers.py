"""The layers' import boundaries: api -> services -> store. The transport builds answers from
what the use cases return and never asks the store itself; the use cases reach the database
only through the store's functions (no peewee of their own, no SQL, no hot-path module)."""

import ast
import inspect
import pathlib
import re

import peewee
import pytest

import rewards_service
from rewards_service.services import records

PACKAGE = pathlib.Path(rewards_service.__file__).parent
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b", re.S)
# What records.py lists beside record types, each justified in its docstring.
NOT_RECORDS = {"change_token", "memoized", "session"}
# memoized lives beside the row memo it keys on (store/fast.py); records.py hands it on.
LISTED_FROM_FAST = {"rewards_service.store.fast", "rewards_service.store.fast.memoized"}


def _modules(layer: str) -> list[pathlib.Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def _imported(path: pathlib.Path) -> set[str]:
    """Every module a file imports, and every name it imports from one (as module.name)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.add(node.module or "")
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(f"{module}.")


@pytest.mark.parametrize("path", _modules("api"), ids=lambda p: p.name)
def test_the_transport_imports_nothing_from_the_store(path):
    found = [name for name in _imported(path) if _within(name, "rewards_service.store")]
    assert not found, f"api/{path.name} reaches into the store: {found}"


def test_records_lists_record_types_and_nothing_that_looks_up():
    listed = {name: getattr(records, name) for name in records.__all__}
    others = {
        name
        for name, value in listed.items()
        if not (inspect.isclass(value) and issubclass(value, peewee.Model))
    }
    assert others == NOT_RECORDS


@pytest.mark.parametrize("path", _modules("services"), ids=lambda p: p.name)
def test_use_cases_reach_the_database_only_through_the_store(path):
    forbidden = ("peewee", "playhouse", "rewards_service.store.fast")
    imported = _imported(path)
    if path.name == "records.py":
        imported -= LISTED_FROM_FAST
    found = [name for name in imported if any(_within(name, f) for f in forbidden)]
    assert not found, f"services/{path.name} imports {found}"
    sql = [
        node.value[:60]
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]
    assert not sql, f"services/{path.name} writes SQL: {sql}"


def test_the_checks_see_imports_of_every_form(tmp_path):
    # The checks above pass only if they would have found something: each form is seen.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import peewee\n"
        "from rewards_service import store\n"
        "from rewards_service.store.queries import asset_scale\n"
        "def f():\n"
        "    from rewards_service.store import fast\n"
    )
    imported = _imported(sample)
    assert {"peewee", "rewards_service.store", "rewards_service.store.queries.asset_scale"} <= (
        imported
    )
    assert "rewards_service.store.fast" in imported
    assert SQL.search('SELECT * FROM "participant" WHERE "id" = ?')
