"""Server settings from flags, falling back to REWARDS_* environment variables."""

import argparse
import os
from dataclasses import dataclass

from rewards_service.domain.validation import weak_key_reason


@dataclass(frozen=True)
class Config:
    listen: str = "127.0.0.1:50051"
    database_url: str = "sqlite:///rewards.db"
    workers: int = 1
    threads: int = 16
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    log_format: str = "json"
    log_level: str = "info"
    grace_seconds: float = 10.0
    bootstrap_api_key: str | None = None


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"REWARDS_{name}", default)


def parse_args(argv: list[str] | None = None) -> Config:
    d = Config()
    p = argparse.ArgumentParser(prog="rewards-server", description="Run the rewards gRPC service.")
    p.add_argument(
        "--listen", default=_env("LISTEN", d.listen), help="host:port to listen on (REWARDS_LISTEN)"
    )
    p.add_argument(
        "--database-url",
        default=_env("DATABASE_URL", d.database_url),
        help="sqlite:///file.db or postgresql://... (REWARDS_DATABASE_URL)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=int(_env("WORKERS", str(d.workers))),
        help="server processes sharing the port with SO_REUSEPORT (REWARDS_WORKERS)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=int(_env("THREADS", str(d.threads))),
        help="request threads per process (REWARDS_THREADS)",
    )
    p.add_argument(
        "--tls-cert", default=_env("TLS_CERT"), help="PEM certificate (REWARDS_TLS_CERT)"
    )
    p.add_argument("--tls-key", default=_env("TLS_KEY"), help="PEM private key (REWARDS_TLS_KEY)")
    p.add_argument(
        "--tls-client-ca",
        default=_env("TLS_CLIENT_CA"),
        help="PEM CA that client certificates must chain to; enables mTLS (REWARDS_TLS_CLIENT_CA)",
    )
    p.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=_env("LOG_FORMAT", d.log_format),
        help="(REWARDS_LOG_FORMAT)",
    )
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=_env("LOG_LEVEL", d.log_level),
        help="(REWARDS_LOG_LEVEL)",
    )
    p.add_argument(
        "--grace-seconds",
        type=float,
        default=float(_env("GRACE_SECONDS", str(d.grace_seconds))),
        help="how long in-flight calls may finish after SIGTERM (REWARDS_GRACE_SECONDS)",
    )
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        p.error("--tls-client-ca needs --tls-cert and --tls-key")
    if args.workers < 1 or args.threads < 1:
        p.error("--workers and --threads must be at least 1")
    bootstrap_api_key = _env("BOOTSTRAP_API_KEY") or None
    if bootstrap_api_key is not None and (weak := weak_key_reason(bootstrap_api_key)):
        p.error(f"REWARDS_BOOTSTRAP_API_KEY is too weak to be an admin key: {weak}")
    return Config(
        listen=args.listen,
        database_url=args.database_url,
        workers=args.workers,
        threads=args.threads,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        log_format=args.log_format,
        log_level=args.log_level,
        grace_seconds=args.grace_seconds,
        bootstrap_api_key=bootstrap_api_key,
    )
