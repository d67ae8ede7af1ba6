"""The SDK's documentation covers what it exports: every error class is in its README, and
every public method of both clients has a docstring."""

import inspect
from pathlib import Path

import rewards_client as rc

README = (Path(__file__).resolve().parents[2] / "clients/python/README.md").read_text()


def test_the_readme_names_every_error_class():
    errors = [
        name
        for name in rc.__all__
        if isinstance(getattr(rc, name), type) and issubclass(getattr(rc, name), rc.RewardsError)
    ]
    assert len(errors) > 30
    missing = [name for name in errors if name != "RewardsError" and f"`{name}`" not in README]
    assert missing == []


def test_every_public_method_has_a_docstring():
    for client in (rc.RewardsClient, rc.AsyncRewardsClient):
        undocumented = [
            name
            for name, member in inspect.getmembers(client)
            if not name.startswith("_")
            and (callable(member) or isinstance(member, property))
            and not (member.__doc__ or "").strip()
        ]
        assert undocumented == [], client.__name__


def test_every_exported_function_and_class_has_a_docstring():
    undocumented = [
        name
        for name in rc.__all__
        if callable(getattr(rc, name)) and not (getattr(rc, name).__doc__ or "").strip()
    ]
    assert undocumented == []
