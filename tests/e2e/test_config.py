"""Settings of the real `rewards-server` and `rewards-admin` processes: flags and REWARDS_*
variables checked alike, one line and exit 2 for a bad value, nothing created."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import assert_usage_error, run_command

BIN = Path(sys.executable).parent
SERVER = BIN / "rewards-server"
ADMIN = BIN / "rewards-admin"


BAD_VALUES = [
    ("WORKERS", "abc", "whole number"),
    ("WORKERS", "0", "at least 1"),
    ("THREADS", "-3", "at least 1"),
    ("LOG_LEVEL", "verbose", "debug, info, warning, error"),
    ("LOG_FORMAT", "text", "json"),
    ("LISTEN", "bogus", "host:port"),
    ("LISTEN", "127.0.0.1:99999", "host:port"),
    ("GRACE_SECONDS", "ten", "seconds"),
    ("AUTH_CACHE_SECONDS", "1s", "seconds"),
    ("HEALTH_CHECK_SECONDS", "0", "more than 0"),
    ("METRICS_LISTEN", "9100", "host:port"),
    ("TLS_CERT", "/nonexistent/cert.pem", "no such file"),
    ("DATABASE_URL", "mysql://operator:hunter2@db/rewards", "unsupported database scheme"),
    ("DATABASE_URL", "sqlite://", "names no file"),
    ("EVENT_RETENTION", "7w", "duration such as"),
    ("EVENT_HEARTBEAT", "0", "more than 0"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_VALUES)
def test_a_bad_environment_value_is_one_line_and_exit_2(tmp_path, name, value, reason):
    db = tmp_path / "rewards.db"
    env = {"REWARDS_DATABASE_URL": f"sqlite:///{db}", f"REWARDS_{name}": value}
    args = [] if name == "LISTEN" else ["--listen", "127.0.0.1:0"]
    done = run_command(SERVER, *args, env=env, cwd=tmp_path)
    variable = f"REWARDS_{name}"
    assert_usage_error(done, "rewards-server", variable, reason)
    assert "hunter2" not in done.stderr
    # Checked before anything is opened: no database file, nothing else in the directory.
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "value", "reason"), BAD_VALUES)
def test_the_same_value_as_a_flag_gets_the_same_answer(tmp_path, name, value, reason):
    db = tmp_path / "rewards.db"
    flag = "--" + name.lower().replace("_", "-")
    args = ["--database-url", f"sqlite:///{db}", flag, value]
    if name != "LISTEN":
        args += ["--listen", "127.0.0.1:0"]
    done = run_command(SERVER, *args, cwd=tmp_path)
    assert_usage_error(done, "rewards-server", flag, reason)
    assert "hunter2" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_flag_wins_over_the_environment_and_is_checked_too(tmp_path):
    env = {"REWARDS_WORKERS": "abc"}
    done = run_command(SERVER, "--workers", "x", "--listen", "127.0.0.1:0", env=env, cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "--workers x", "whole number")


def test_tls_cert_and_key_go_together(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    done = run_command(SERVER, "--tls-cert", str(cert), "--listen", "127.0.0.1:0", cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "--tls-key")
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("hello")
    done = run_command(SERVER, "--tls-cert", str(cert), "--tls-key", str(not_pem), cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "--tls-key", "not a PEM file")


def test_metrics_and_grpc_need_two_addresses(tmp_path):
    args = ["--metrics-listen", "127.0.0.1:9", "--workers", "2", "--listen", "127.0.0.1:9"]
    done = run_command(SERVER, *args, cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "--metrics-listen", "must differ")


def test_an_unknown_flag_is_one_line_and_exit_2(tmp_path):
    done = run_command(SERVER, "--listn", "127.0.0.1:0", cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "--listn", "--help")


def test_help_lists_every_setting_with_its_default_and_variable():
    done = run_command(SERVER, "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for flag, env, default in [
        ("--listen", "REWARDS_LISTEN", "127.0.0.1:50051"),
        ("--database-url", "REWARDS_DATABASE_URL", "sqlite:///rewards.db"),
        ("--workers", "REWARDS_WORKERS", "default: 1"),
        ("--threads", "REWARDS_THREADS", "default: 16"),
        ("--tls-cert", "REWARDS_TLS_CERT", "default: off"),
        ("--log-format", "REWARDS_LOG_FORMAT", "default: auto"),
        ("--log-level", "REWARDS_LOG_LEVEL", "default: info"),
        ("--grace-seconds", "REWARDS_GRACE_SECONDS", "default: 10.0"),
        ("--auth-cache-seconds", "REWARDS_AUTH_CACHE_SECONDS", "default: 1.0"),
    ]:
        assert flag in text and env in text and default in text, flag
    assert "REWARDS_BOOTSTRAP_API_KEY" in text
    admin = run_command(ADMIN, "--help")
    assert admin.returncode == 0
    assert "REWARDS_DATABASE_URL" in admin.stdout


def test_version():
    for command, prog in ((SERVER, "rewards-server"), (ADMIN, "rewards-admin")):
        done = run_command(command, "--version")
        assert done.returncode == 0
        assert done.stdout.strip() == f"{prog} 0.1.0"


def test_log_format_from_the_environment_is_used(tmp_path):
    """REWARDS_LOG_FORMAT=console was once ignored in favour of JSON."""
    env = {
        "REWARDS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "REWARDS_LOG_FORMAT": "console",
    }
    lines = _first_lines_until(env, "serving")
    serving = next(line for line in lines if "serving" in line)
    assert not serving.lstrip().startswith("{")
    assert "address=127.0.0.1:" in serving


def _first_lines_until(env: dict[str, str], text: str, timeout: float = 30) -> list[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}
    process = subprocess.Popen(
        [str(SERVER), "--listen", "127.0.0.1:0"],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + timeout
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if text in line:
                return lines
        raise AssertionError("".join(lines))
    finally:
        process.terminate()
        assert process.wait(20) == 0


def test_tracing_settings_are_checked_from_flags_and_environment_alike(tmp_path):
    done = run_command(SERVER, "--otlp-endpoint", "127.0.0.1:4317", cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "--otlp-endpoint 127.0.0.1:4317", "http://")
    env = {"REWARDS_OTLP_ENDPOINT": "http://collector:43x7"}
    done = run_command(SERVER, "--listen", "127.0.0.1:0", env=env, cwd=tmp_path)
    assert_usage_error(
        done, "rewards-server", "REWARDS_OTLP_ENDPOINT=http://collector:43x7", "port"
    )
    done = run_command(SERVER, "--trace-sample-ratio", "1.5", cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "--trace-sample-ratio 1.5", "from 0 to 1")
    env = {"REWARDS_TRACE_SAMPLE_RATIO": "half"}
    done = run_command(SERVER, "--listen", "127.0.0.1:0", env=env, cwd=tmp_path)
    assert_usage_error(done, "rewards-server", "REWARDS_TRACE_SAMPLE_RATIO=half", "from 0 to 1")
    assert list(tmp_path.iterdir()) == []
