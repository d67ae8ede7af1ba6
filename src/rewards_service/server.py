"""build_server() makes a configured grpc.Server; serve() runs it until SIGTERM/SIGINT."""

import contextlib
import os
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import peewee
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from rewards.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    issuance_pb2,
    issuance_pb2_grpc,
    participants_pb2,
    participants_pb2_grpc,
)

from rewards_service import logging as rewards_logging
from rewards_service.api.catalog import RewardCatalogServicer
from rewards_service.api.interceptor import RpcInterceptor
from rewards_service.api.issuance import RewardIssuanceServicer
from rewards_service.api.participants import ParticipantsServicer
from rewards_service.api.reflection import DocumentedReflectionServicer
from rewards_service.config import Config, parse_args
from rewards_service.services import programs
from rewards_service.store.db import bind, open_database, release_connections, session
from rewards_service.store.migrations import migrate

log = structlog.get_logger("rewards.server")
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    def stop(self, grace: float | None) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def prepare_database(config: Config) -> programs.IssuedKey | None:
    """Open the store, migrate it, and bootstrap the default program on an empty database."""
    bind(open_database(config.database_url, pool_size=config.threads + 4))
    migrate()
    with session():
        created = programs.bootstrap(config.bootstrap_api_key)
    release_connections()
    return created


def _credentials(config: Config) -> grpc.ServerCredentials | None:
    if not config.tls_cert:
        return None
    pair = (Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())
    if config.tls_client_ca:
        return grpc.ssl_server_credentials(
            [pair],
            root_certificates=Path(config.tls_client_ca).read_bytes(),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials([pair])


def build_server(config: Config, *, reuse_port: bool = False) -> RunningServer:
    """A started server. reuse_port only for forked workers sharing one port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.threads),
        interceptors=[RpcInterceptor()],
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    catalog_pb2_grpc.add_RewardCatalogServicer_to_server(RewardCatalogServicer(), server)
    issuance_pb2_grpc.add_RewardIssuanceServicer_to_server(RewardIssuanceServicer(), server)
    participants_pb2_grpc.add_ParticipantsServicer_to_server(ParticipantsServicer(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = [
        catalog_pb2.DESCRIPTOR.services_by_name["RewardCatalog"].full_name,
        issuance_pb2.DESCRIPTOR.services_by_name["RewardIssuance"].full_name,
        participants_pb2.DESCRIPTOR.services_by_name["Participants"].full_name,
    ]
    for name in service_names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        DocumentedReflectionServicer(
            [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        ),
        server,
    )
    credentials = _credentials(config)
    if credentials is None:
        port = server.add_insecure_port(config.listen)
    else:
        port = server.add_secure_port(config.listen, credentials)
    if port == 0:
        raise RuntimeError(f"cannot listen on {config.listen}")
    server.start()
    return RunningServer(server, port, health_servicer)


def _serve_one(config: Config, *, reuse_port: bool) -> None:
    running = build_server(config, reuse_port=reuse_port)
    host = config.listen.rsplit(":", 1)[0]
    log.info(
        "serving",
        address=f"{host}:{running.port}",
        pid=os.getpid(),
        tls=bool(config.tls_cert),
        mtls=bool(config.tls_client_ca),
    )
    stopping = threading.Event()

    def on_signal(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            log.info("stopping", signal=signal.Signals(signum).name, grace=config.grace_seconds)
            threading.Thread(target=running.stop, args=(config.grace_seconds,)).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running.server.wait_for_termination()
    log.info("stopped")


def _run_workers(config: Config) -> int:
    """Fork N workers before any gRPC object exists; each binds the port with SO_REUSEPORT."""
    children = []
    for _ in range(config.workers):
        pid = os.fork()
        if pid == 0:
            _serve_one(config, reuse_port=True)
            os._exit(0)
        children.append(pid)

    def forward(signum, _frame):
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    return status


def serve(config: Config) -> int:
    rewards_logging.configure(config.log_format, config.log_level)
    try:
        created = prepare_database(config)
    except (peewee.OperationalError, ValueError) as exc:
        log.error("database_unavailable", error=str(exc).strip().splitlines()[0])
        return 1
    if created is not None:
        # Printed, never logged: the key is a secret and is shown exactly this once.
        print(programs.bootstrap_notice(created, config.bootstrap_api_key), flush=True)
    if config.workers > 1:
        return _run_workers(config)
    _serve_one(config, reuse_port=False)
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(serve(parse_args(argv)))
