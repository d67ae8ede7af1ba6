"""An access line is recorded by the call and rendered when its batch is written: it keeps
the call's time, is clipped once, and holds no caller's value at full size meanwhile."""

import io
import json
import logging
import sys
import time
import types

import pytest
import structlog

from rewards_service import logging as rewards_logging
from rewards_service.logging import MAX_VALUE_CHARS, access


@pytest.fixture
def stderr(monkeypatch):
    """What logging configured by `_configure` writes; the defaults restored after. Its
    flushing thread sleeps through the test: lines go out when a test writes another."""
    monkeypatch.setattr(rewards_logging, "FLUSH_SECONDS", 3600)
    written = io.BytesIO()
    yield written
    structlog.reset_defaults()
    rewards_logging._access.write = rewards_logging._immediately
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, rewards_logging._ToStructlog)]:
        root.removeHandler(handler)


def _configure(written: io.BytesIO, *args: str) -> None:
    """`configure(*args)` writing to `written` (pytest swaps sys.stderr around each phase)."""
    real = sys.stderr
    sys.stderr = types.SimpleNamespace(buffer=written, isatty=lambda: False)
    try:
        rewards_logging.configure(*args)
    finally:
        sys.stderr = real


def _lines(written: io.BytesIO) -> list[dict]:
    return [json.loads(line) for line in written.getvalue().splitlines()]


def test_an_access_line_keeps_the_time_of_its_call_and_its_place_before_later_lines(
    stderr, monkeypatch
):
    _configure(stderr, "json")
    monkeypatch.setattr(rewards_logging, "time", types.SimpleNamespace(time=lambda: 0.0))
    access(method="/rewards.v1.RewardCatalog/GetReward", program="prg_1", code="OK")
    monkeypatch.setattr(rewards_logging, "time", time)
    assert stderr.getvalue() == b""  # recorded, not rendered yet
    structlog.get_logger("rewards.server").info("stopping")  # writes what waits first
    rpc, stopping = _lines(stderr)
    assert rpc == {
        "method": "/rewards.v1.RewardCatalog/GetReward",
        "program": "prg_1",
        "code": "OK",
        "event": "rpc",
        "level": "info",
        "timestamp": "1970-01-01T00:00:00Z",
    }
    assert stopping["event"] == "stopping" and stopping["timestamp"] > "2026"


def test_a_long_value_is_clipped_once_and_not_held_at_full_size(stderr):
    _configure(stderr, "json")
    request_id = "r" * 100_000
    references = sys.getrefcount(request_id)
    access(method="/rewards.v1.RewardIssuance/IssueReward", request_id=request_id)
    assert sys.getrefcount(request_id) == references  # only its clipped copy waits
    structlog.get_logger("rewards.server").info("stopping")
    logged = _lines(stderr)[0]["request_id"]
    assert logged == "r" * MAX_VALUE_CHARS + f"…[{len(request_id)} chars]"


def test_above_info_no_access_line_is_recorded(stderr):
    _configure(stderr, "json", "warning")
    access(method="/rewards.v1.RewardCatalog/GetReward", code="OK")
    structlog.get_logger("rewards.server").warning("degraded")
    assert [line["event"] for line in _lines(stderr)] == ["degraded"]


def test_access_lines_past_the_bound_are_dropped_and_counted(stderr, monkeypatch):
    monkeypatch.setattr(rewards_logging, "MAX_HELD_LINES", 3)
    _configure(stderr, "json")
    for _ in range(5):  # nothing takes them meanwhile: as if stderr had stalled
        access(method="/rewards.v1.RewardCatalog/GetReward", code="OK")
    structlog.get_logger("rewards.server").info("stopping")  # never dropped
    lines = _lines(stderr)
    assert [line["event"] for line in lines] == ["rpc"] * 3 + ["stopping", "access_lines_dropped"]
    assert lines[-1]["dropped"] == 2 and lines[-1]["level"] == "warning"
    access(method="/rewards.v1.RewardCatalog/GetReward", code="OK")
    structlog.get_logger("rewards.server").info("stopped")
    assert [line["event"] for line in _lines(stderr)[5:]] == ["rpc", "stopped"]
