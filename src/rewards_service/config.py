"""Settings of rewards-server and rewards-admin: each from its flag, else its REWARDS_*
environment variable, else its default, and checked the same way whichever it came from.

A bad value ends the program with one line naming where it came from and exit status 2,
before anything is opened, bound or created.
"""

import argparse
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse

from rewards_service.domain.validation import weak_key_reason

USAGE_ERROR = 2
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Config:
    listen: str = "127.0.0.1:50051"
    database_url: str = "sqlite:///rewards.db"
    workers: int = 1
    threads: int = 16
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    # auto: console when stderr is a terminal, JSON lines otherwise
    log_format: str = "auto"
    log_level: str = "info"
    grace_seconds: float = 10.0
    bootstrap_api_key: str | None = None
    auth_cache_seconds: float = 1.0
    health_check_seconds: float = 5.0
    metrics_listen: str | None = None
    # Events older than this are deleted (unless a named consumer still needs them); 0: kept.
    event_retention: float = 7 * 86_400.0
    event_heartbeat: float = 10.0
    # "off" records no events: only to measure what the outbox costs.
    events: str = "on"
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = 1.0


class ConfigError(ValueError):
    """A setting's value is unusable; the message says which setting and why."""


# Checkers: the raw text in, the value out, ValueError with a short reason otherwise.


def _whole(minimum: int) -> Callable[[str], int]:
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return check


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of seconds, such as 2 or 0.5") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number of seconds, 0 or more")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise ValueError("must be more than 0 seconds")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def _duration(text: str) -> float:
    """Seconds of 90, 90s, 15m, 12h or 7d; 0 means off."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        return _seconds(number) * _UNITS[unit]
    except ValueError:
        raise ValueError("must be a duration such as 3600, 90s, 15m, 12h or 7d") from None


def _one_of(choices: Sequence[str]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text.lower()

    return check


def split_address(text: str) -> tuple[str, int]:
    """host:port, [v6]:port; port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("must be host:port, such as 127.0.0.1:50051 or [::]:50051")
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        raise ValueError("must be host:port; an IPv6 host goes in brackets, such as [::1]:50051")
    return host, int(port)


def _address(text: str) -> str:
    split_address(text)
    return text


def _pem_file(text: str) -> str:
    path = Path(text)
    if not path.is_file():
        raise ValueError("no such file")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror}") from None
    if b"-----BEGIN " not in content:
        raise ValueError("is not a PEM file")
    return text


def _database_url(text: str) -> str:
    # Imported here: the store pulls in peewee, and --help or --version need none of it.
    from rewards_service.store.db import database_settings

    database_settings(text)
    return text


def _otlp_endpoint(text: str) -> str:
    url = urlparse(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("must be a URL such as http://127.0.0.1:4317 (https:// for TLS)")
    try:
        url.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        raise ValueError("tracing needs the tracing extra: pip install 'rewards-service[tracing]'")
    return text


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number from 0 to 1, such as 0.1") from None
    if not 0 <= value <= 1:
        raise ValueError("must be a number from 0 to 1, such as 0.1")
    return value


def _admin_key(text: str) -> str:
    weak = weak_key_reason(text)
    if weak:
        raise ValueError(f"too weak to be an admin key: {weak}")
    return text


@dataclass(frozen=True)
class Setting:
    name: str  # the Config field
    check: Callable[[str], Any]
    help: str
    metavar: str = "VALUE"
    secret: bool = False  # never echoed in an error (it may hold a password or a key)
    flag: bool = True  # False: environment only

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "REWARDS_" + self.name.upper()


SETTINGS = {
    s.name: s
    for s in (
        Setting("listen", _address, "host:port to serve on; port 0 picks a free one", "ADDRESS"),
        Setting(
            "database_url",
            _database_url,
            "sqlite:///file.db (sqlite:////abs/path.db) or postgresql://user:password@host/db",
            "URL",
            secret=True,
        ),
        Setting("workers", _whole(1), "server processes sharing the port (SO_REUSEPORT)", "N"),
        Setting("threads", _whole(1), "request threads per process", "N"),
        Setting("tls_cert", _pem_file, "PEM certificate; serve TLS", "FILE"),
        Setting("tls_key", _pem_file, "PEM private key of --tls-cert", "FILE"),
        Setting(
            "tls_client_ca",
            _pem_file,
            "PEM CA that client certificates must chain to (mTLS)",
            "FILE",
        ),
        Setting(
            "log_format",
            _one_of(LOG_FORMATS),
            "json, console, or auto: console when stderr is a terminal, else json",
            "FORMAT",
        ),
        Setting("log_level", _one_of(LOG_LEVELS), ", ".join(LOG_LEVELS), "LEVEL"),
        Setting(
            "grace_seconds",
            _seconds,
            "how long in-flight calls may finish after SIGTERM/SIGINT",
            "SECONDS",
        ),
        Setting(
            "bootstrap_api_key",
            _admin_key,
            "admin key of the default program made on the first start",
            secret=True,
            flag=False,
        ),
        Setting(
            "auth_cache_seconds",
            _seconds,
            "how long a valid API key is remembered (a revoked one works that much longer)",
            "SECONDS",
        ),
        Setting(
            "health_check_seconds",
            _positive_seconds,
            "how often the health service checks that the database answers",
            "SECONDS",
        ),
        Setting(
            "metrics_listen",
            _address,
            "host:port of a Prometheus /metrics endpoint (off unless set)",
            "ADDRESS",
        ),
        Setting(
            "event_retention",
            _duration,
            "delete events older than this (90s, 15m, 12h, 7d; 0 keeps them), except those "
            "a named consumer has not acknowledged",
            "DURATION",
        ),
        Setting(
            "event_heartbeat",
            _positive_seconds,
            "how often an idle WatchEvents stream gets a heartbeat",
            "SECONDS",
        ),
        Setting(
            "events",
            _one_of(("on", "off")),
            "off records no events: only to measure what the outbox costs (bench)",
            flag=False,
        ),
        Setting(
            "otlp_endpoint",
            _otlp_endpoint,
            "OpenTelemetry collector to send traces to over OTLP/gRPC, such as "
            "http://127.0.0.1:4317 (off unless set)",
            "URL",
        ),
        Setting(
            "trace_sample_ratio",
            _ratio,
            "share of the traces started here that are kept (a caller's traceparent decides "
            "for its own)",
            "RATIO",
        ),
    )
}
SERVER_SETTINGS = tuple(SETTINGS)
ADMIN_SETTINGS = ("database_url", "log_format", "log_level")


def version() -> str:
    try:
        return metadata.version("rewards-service")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


class Parser(argparse.ArgumentParser):
    """Usage mistakes end with one line and exit status 2, like a bad setting."""

    def error(self, message: str) -> NoReturn:
        # A subcommand's prog is "rewards-admin list-keys": the line starts with the program.
        program, _, command = self.prog.partition(" ")
        where = f"{command}: " if command else ""
        fail(program, f"{where}{message} (see {self.prog} --help)")


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def add_options(parser: argparse.ArgumentParser, names: Sequence[str], *, suppress: bool) -> None:
    """The flags of `names`. With `suppress`, a flag not given leaves no attribute, so that
    options given before a subcommand are not reset by the subcommand's own copy."""
    defaults = Config()
    for name in names:
        s = SETTINGS[name]
        if not s.flag:
            continue
        default = getattr(defaults, name)
        shown = "off" if default is None else default
        parser.add_argument(
            s.option,
            dest=name,
            metavar=s.metavar,
            default=argparse.SUPPRESS if suppress else None,
            help=f"{s.help} [env {s.env}; default: {shown}]",
        )


def env_help(names: Sequence[str]) -> str:
    lines = [f"  {SETTINGS[n].env}: {SETTINGS[n].help}" for n in names if not SETTINGS[n].flag]
    return "environment only:\n" + "\n".join(lines) if lines else ""


def resolve(
    given: dict[str, str | None], names: Sequence[str], environ: dict[str, str] | None = None
) -> Config:
    """The Config of `names`: each from `given` (flags), else the environment, else its
    default; every value checked. Raises ConfigError naming the flag or variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in names:
        s = SETTINGS[name]
        raw, source = given.get(name), s.option
        if raw is None:
            raw, source = environ.get(s.env), s.env
            if raw == "":  # an empty variable counts as unset
                raw = None
        if raw is None:
            continue
        try:
            values[name] = s.check(raw)
        except ValueError as exc:
            if s.secret:
                shown = source
            else:
                shown = f"{source}={raw}" if source == s.env else f"{source} {raw}"
            raise ConfigError(f"{shown}: {exc}") from None
    config = Config(**values)
    _check_together(config, names)
    return config


def _check_together(config: Config, names: Sequence[str]) -> None:
    same = "metrics_listen" in names and config.metrics_listen == config.listen
    if same and split_address(config.listen)[1] != 0:  # port 0: each gets a port of its own
        raise ConfigError("--metrics-listen must differ from --listen")
    if "tls_cert" not in names:
        return
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("--tls-cert and --tls-key (or their REWARDS_* variables) go together")
    if config.tls_client_ca and not config.tls_cert:
        raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")


def given_options(args: argparse.Namespace, names: Sequence[str]) -> dict[str, str | None]:
    return {name: getattr(args, name, None) for name in names}


def parse_args(argv: list[str] | None = None) -> Config:
    """rewards-server's settings, or exit 2 with one line."""
    p = Parser(
        prog="rewards-server",
        description="Run the rewards gRPC service. Each option falls back to its environment "
        "variable, then to its default.",
        epilog=env_help(SERVER_SETTINGS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, SERVER_SETTINGS, suppress=False)
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    args = p.parse_args(argv)
    try:
        return resolve(given_options(args, SERVER_SETTINGS), SERVER_SETTINGS)
    except ConfigError as exc:
        fail(p.prog, str(exc))
