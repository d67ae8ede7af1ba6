"""Event feed settings go through config.py's one validation path."""

import pytest

from rewards_service.config import ConfigError, resolve

NAMES = ("event_retention", "event_heartbeat", "events")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("12h", 43_200.0), ("7d", 604_800.0), ("0", 0.0)],
)
def test_retention_takes_a_duration(text, seconds):
    assert resolve({"event_retention": text}, NAMES, {}).event_retention == seconds


def test_defaults_keep_a_week_and_beat_every_ten_seconds_with_events_on():
    config = resolve({}, NAMES, {})
    assert (config.event_retention, config.event_heartbeat, config.events) == (604_800, 10, "on")


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"REWARDS_EVENT_RETENTION": "1y"}, "REWARDS_EVENT_RETENTION=1y"),
        ({"REWARDS_EVENT_RETENTION": "-1d"}, "REWARDS_EVENT_RETENTION=-1d"),
        ({"REWARDS_EVENT_HEARTBEAT": "-1"}, "REWARDS_EVENT_HEARTBEAT=-1"),
        ({"REWARDS_EVENTS": "maybe"}, "REWARDS_EVENTS=maybe"),
    ],
)
def test_bad_values_are_refused_naming_their_variable(env, shown):
    with pytest.raises(ConfigError, match=shown):
        resolve({}, NAMES, env)


def test_the_switch_reads_the_environment():
    assert resolve({}, NAMES, {"REWARDS_EVENTS": "OFF"}).events == "off"
