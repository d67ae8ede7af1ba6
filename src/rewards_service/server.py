"""start_server() makes a configured grpc.aio server on the running loop; build_server() does
it on a loop of its own for tests; serve() runs one until SIGTERM/SIGINT."""

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import peewee
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from rewards.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    groups_pb2,
    groups_pb2_grpc,
    issuance_pb2,
    issuance_pb2_grpc,
    participants_pb2,
    participants_pb2_grpc,
    programs_pb2,
    programs_pb2_grpc,
)

from rewards_service import logging as rewards_logging
from rewards_service import metrics, tracing
from rewards_service.api.catalog import RewardCatalogServicer
from rewards_service.api.events import EventsServicer, keep_retention
from rewards_service.api.groups import ParticipantGroupsServicer
from rewards_service.api.interceptor import RpcInterceptor
from rewards_service.api.issuance import MAX_MESSAGE_BYTES, RewardIssuanceServicer
from rewards_service.api.participants import ParticipantsServicer
from rewards_service.api.reflection import V1_SERVICE_NAME, add_v1_reflection
from rewards_service.api.registries import ProgramRegistryServicer
from rewards_service.api.streams import (
    BoundedHealthServicer,
    BoundedReflectionServicer,
    OpenStreams,
)
from rewards_service.config import Config, parse_args, split_address
from rewards_service.services import events, programs
from rewards_service.store import group_commit, observed
from rewards_service.store.db import (
    bind,
    contention_reason,
    database,
    database_settings,
    open_database,
    pool_connections,
    release_connections,
    session,
)
from rewards_service.store.migrations import migrate

log = structlog.get_logger("rewards.server")
# Bounds on what callers may hold open. Streams per connection: a client that wants more
# opens more connections, each counted against MAX_CONNECTIONS; connections with no call for
# IDLE_CONNECTION_MS, or that do not finish their handshake in HANDSHAKE_MS, are closed.
MAX_STREAMS_PER_CONNECTION = 100
MAX_CONNECTIONS = 4_096
IDLE_CONNECTION_MS = 5 * 60 * 1000
HANDSHAKE_MS = 10 * 1000


@dataclass
class RunningServer:
    """A started grpc.aio server and the event loop it runs on."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    loop: asyncio.AbstractEventLoop
    executor: futures.ThreadPoolExecutor
    events: EventsServicer | None = None

    async def drain(self, grace: float | None) -> None:
        """Health says NOT_SERVING, new calls are refused, calls in flight get `grace`;
        event streams end at once (their consumers resume elsewhere)."""
        await self.health.enter_graceful_shutdown()
        if self.events is not None:
            self.events.stop()
        await self.server.stop(grace)
        self.executor.shutdown(wait=False)

    def stop(self, grace: float | None) -> None:
        """From another thread than the server's loop (tests, embedding programs)."""
        asyncio.run_coroutine_threadsafe(self.drain(grace), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)


def prepare_database(config: Config) -> programs.IssuedKey | None:
    """Open the store, migrate it, and bootstrap the default program on an empty database."""
    bind(open_database(config.database_url, pool_size=config.threads + 4))
    migrate()
    with session():
        created = programs.bootstrap(config.bootstrap_api_key)
    release_connections()
    return created


class CannotListen(Exception):
    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot listen on {address}: {reason}")
        self.address = address
        self.reason = reason


def check_address_free(listen: str) -> None:
    """Bind the address as gRPC will (SO_REUSEADDR, no SO_REUSEPORT) and let it go, so that a
    port in use is found before anything else happens, with the system's reason. gRPC's own
    failure is a log line of its core and a bare RuntimeError."""
    host, port = split_address(listen)
    if port == 0:
        return
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CannotListen(listen, exc.strerror) from None
    reason = "no address"
    for family, kind, _, _, address in found:
        with socket.socket(family, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
                return  # gRPC binds every address it can, and is content with one
            except OSError as exc:
                reason = exc.strerror or str(exc)
    raise CannotListen(listen, reason)


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


def _service_names() -> list[str]:
    return [
        catalog_pb2.DESCRIPTOR.services_by_name["RewardCatalog"].full_name,
        issuance_pb2.DESCRIPTOR.services_by_name["RewardIssuance"].full_name,
        participants_pb2.DESCRIPTOR.services_by_name["Participants"].full_name,
        events_pb2.DESCRIPTOR.services_by_name["Events"].full_name,
        groups_pb2.DESCRIPTOR.services_by_name["ParticipantGroups"].full_name,
        programs_pb2.DESCRIPTOR.services_by_name["ProgramRegistry"].full_name,
    ]


def _database_answers() -> None:
    with session():
        database.execute_sql("SELECT 1")


async def watch_database(running: RunningServer, every: float) -> None:
    """Health follows the database: NOT_SERVING while it cannot be reached, SERVING again
    once it answers. Checked every `every` seconds on a thread of its own, never per call;
    a check that does not answer in time counts as a failure."""
    checker = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
    loop = asyncio.get_running_loop()
    timeout = max(every, 2.0)
    serving = True
    check: asyncio.Future | None = None
    try:
        while True:
            await asyncio.sleep(every)
            if check is None or check.done():  # a hung check is not stacked on
                check = loop.run_in_executor(checker, _database_answers)
            error = None
            try:
                await asyncio.wait_for(asyncio.shield(check), timeout)
            except TimeoutError:
                error = f"no answer within {timeout:g} s"
            except Exception as exc:
                error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            if (error is None) == serving:
                continue
            serving = error is None
            status = health_pb2.HealthCheckResponse.SERVING
            if serving:
                log.info("database_reachable")
            else:
                status = health_pb2.HealthCheckResponse.NOT_SERVING
                log.error("database_unreachable", error=error)
            for name in [*_service_names(), ""]:
                await running.health.set(name, status)
    finally:
        checker.shutdown(wait=False)


async def start_server(
    config: Config,
    *,
    reuse_port: bool = False,
    before_start: Callable[[], None] | None = None,
) -> RunningServer:
    """A started server on the running loop. reuse_port only for workers sharing one port.
    `before_start` runs once the port is bound, before any call is taken; if it raises, the
    server is stopped and the error goes on."""
    executor = futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="rpc")
    server = grpc.aio.server(
        interceptors=[RpcInterceptor(executor, config.threads)],
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            ("grpc.max_allowed_incoming_connections", MAX_CONNECTIONS),
            ("grpc.max_connection_idle_ms", IDLE_CONNECTION_MS),
            ("grpc.server_handshake_timeout_ms", HANDSHAKE_MS),
        ],
    )
    catalog_pb2_grpc.add_RewardCatalogServicer_to_server(RewardCatalogServicer(), server)
    issuance_pb2_grpc.add_RewardIssuanceServicer_to_server(RewardIssuanceServicer(), server)
    participants_pb2_grpc.add_ParticipantsServicer_to_server(ParticipantsServicer(), server)
    events_servicer = EventsServicer(executor, config.event_heartbeat)
    events_pb2_grpc.add_EventsServicer_to_server(events_servicer, server)
    groups_pb2_grpc.add_ParticipantGroupsServicer_to_server(ParticipantGroupsServicer(), server)
    programs_pb2_grpc.add_ProgramRegistryServicer_to_server(ProgramRegistryServicer(), server)
    keyless_streams = OpenStreams()
    health_servicer = BoundedHealthServicer(keyless_streams)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = _service_names()
    for name in [*service_names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection_servicer = BoundedReflectionServicer(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME, V1_SERVICE_NAME],
        keyless_streams,
    )
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection_servicer, server)
    add_v1_reflection(reflection_servicer, server)
    credentials = _credentials(config)
    try:
        if credentials is None:
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        executor.shutdown(wait=False)
        raise CannotListen(config.listen, "cannot bind it")
    if before_start is not None:
        # Bound, not yet serving: what must not happen unless the server can start.
        try:
            before_start()
        except BaseException:
            await server.stop(None)
            executor.shutdown(wait=False)
            raise
    await server.start()
    loop = asyncio.get_running_loop()
    return RunningServer(server, port, health_servicer, loop, executor, events_servicer)


def build_server(config: Config, *, reuse_port: bool = False) -> RunningServer:
    """A started server on an event loop of its own, in a daemon thread: for tests and for
    programs that embed the service. `stop()` drains it."""
    started: futures.Future[RunningServer] = futures.Future()

    def run_loop() -> None:
        loop = asyncio.new_event_loop()
        try:
            running = loop.run_until_complete(start_server(config, reuse_port=reuse_port))
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(running)
        loop.run_forever()  # until stop()

    threading.Thread(target=run_loop, name="grpc-loop", daemon=True).start()
    return started.result()


def _enable_tracing(config: Config) -> None:
    """In the serving process itself: the exporter's channel must not cross a fork."""
    assert config.otlp_endpoint is not None
    system = database_settings(config.database_url)[0]
    tracing.enable(config.otlp_endpoint, config.trace_sample_ratio, system)
    group_commit.hooks.around_write = tracing.traced_write


async def _serve_one(
    config: Config, *, reuse_port: bool, before_start: Callable[[], None] | None = None
) -> None:
    if config.otlp_endpoint:
        _enable_tracing(config)
    running = await start_server(config, reuse_port=reuse_port, before_start=before_start)
    stopping: list[asyncio.Task] = []

    def on_signal(signum: int) -> None:
        if not stopping:
            log.info("stopping", signal=signal.Signals(signum).name, grace=config.grace_seconds)
            stopping.append(asyncio.ensure_future(running.drain(config.grace_seconds)))

    # Before "serving": whoever waits for that line may signal at once.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    host = split_address(config.listen)[0]
    log.info(
        "serving",
        address=f"{host}:{running.port}",
        pid=os.getpid(),
        tls=bool(config.tls_cert),
        mtls=bool(config.tls_client_ca),
    )
    watcher = asyncio.ensure_future(watch_database(running, config.health_check_seconds))
    retention = asyncio.ensure_future(keep_retention(running.executor, config.event_retention))
    sampler = asyncio.ensure_future(metrics.sample_forever(pool_connections))
    await running.server.wait_for_termination()
    watcher.cancel()
    retention.cancel()
    sampler.cancel()
    if stopping:
        await stopping[0]
    tracing.shutdown()
    log.info("stopped")


@contextlib.contextmanager
def _reserved_port(listen: str) -> Iterator[str]:
    """The listen address with its port fixed: a socket bound with SO_REUSEPORT holds the port
    (grpc's multiprocessing example), so workers all bind that one even for port 0."""
    host, port = split_address(listen)
    family, kind, _, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise CannotListen(listen, exc.strerror or str(exc)) from None
        yield f"{host}:{sock.getsockname()[1]}"
    finally:
        sock.close()


# A worker that dies this soon after it started is replaced only after this long, so that a
# worker that cannot start does not make the parent spin.
RESTART_DELAY_SECONDS = 1.0


def _run_workers(config: Config) -> int:
    """Fork N workers before any gRPC object exists; each binds the one reserved port with
    SO_REUSEPORT, and the kernel spreads connections over them. A worker that dies is
    replaced (the port stays reserved for it); SIGTERM/SIGINT go to every worker, and the
    parent exits once they all have."""
    with _reserved_port(config.listen) as listen:
        _prepare_and_announce(config)
        worker_config = replace(config, listen=listen)
        children: dict[int, float] = {}  # pid -> when it started (monotonic)
        stopping: list[int] = []

        def start_worker() -> int:
            pid = os.fork()
            if pid == 0:
                # Until the worker's loop sets its own: not the parent's forwarding handler.
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = 0
                try:
                    asyncio.run(_serve_one(worker_config, reuse_port=True))
                except BaseException:
                    log.exception("worker_failed")
                    code = 1
                os._exit(code)
            children[pid] = time.monotonic()
            if stopping:  # the signal came between the fork and the line above
                os.kill(pid, stopping[0])
            return pid

        def forward(signum, _frame):
            stopping.append(signum)
            for child in list(children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signum)

        # Before the first fork: a signal from now on reaches every worker there is.
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for _ in range(config.workers):
            start_worker()
        status = 0
        while children:
            pid, wait_status = os.wait()
            started = children.pop(pid, None)
            if started is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if stopping:
                status = status or code
                continue
            how = {"signal": signal.Signals(-code).name} if code < 0 else {"exit_code": code}
            log.error("worker_died", worker_pid=pid, **how)
            metrics.worker_gone(pid)
            if time.monotonic() - started < RESTART_DELAY_SECONDS:
                time.sleep(RESTART_DELAY_SECONDS)
            if not stopping:
                log.info("worker_restarted", worker_pid=start_worker(), replaced=pid)
    return status


def _pool_stock(database_url: str) -> Callable[[int], metrics.PoolStock]:
    def read(limit: int) -> metrics.PoolStock:
        return metrics.PoolStock(*observed.code_pool_stock(database_url, limit))

    return read


def _serve_metrics(config: Config) -> None:
    """Metrics on, the writer's hooks connected, /metrics served: before any worker forks."""
    metrics.enable(workers=config.workers)
    reported = metrics.store_hooks()
    group_commit.hooks.group_committed = reported.group_committed
    group_commit.hooks.retried = lambda exc: reported.retried(contention_reason(exc) or "other")
    group_commit.hooks.gave_up = lambda exc: reported.gave_up(contention_reason(exc) or "other")
    group_commit.hooks.conflict = reported.conflict
    listen = config.metrics_listen
    assert listen is not None
    try:
        port = metrics.serve(listen, _pool_stock(config.database_url))
    except OSError as exc:
        raise CannotListen(listen, exc.strerror or str(exc)) from None
    log.info(
        "metrics",
        address=f"{split_address(listen)[0]}:{port}",
        path="/metrics",
        directory=metrics.multiprocess_directory(),
    )


class DatabaseUnavailable(Exception):
    pass


def _prepare_and_announce(config: Config) -> None:
    """Migrate and bootstrap; print the bootstrap key, if one was made."""
    try:
        created = prepare_database(config)
    except (peewee.OperationalError, peewee.InterfaceError, ValueError) as exc:
        raise DatabaseUnavailable(str(exc).strip().splitlines()[0]) from None
    if created is not None:
        # Printed, never logged: the key is a secret and is shown exactly this once.
        print(programs.bootstrap_notice(created, config.bootstrap_api_key), flush=True)


def serve(config: Config) -> int:
    """Bind first, then migrate and bootstrap, then serve: a start that fails (a port in
    use, a database out of reach) creates nothing, and a bootstrap key printed is one a
    running server accepts."""
    rewards_logging.configure(config.log_format, config.log_level, with_pid=config.workers > 1)
    programs.AUTH_CACHE_SECONDS = config.auth_cache_seconds
    events.record_events(config.events == "on")
    try:
        check_address_free(config.listen)
        if config.metrics_listen:
            _serve_metrics(config)
        if config.workers > 1:
            return _run_workers(config)
        asyncio.run(
            _serve_one(config, reuse_port=False, before_start=lambda: _prepare_and_announce(config))
        )
    except CannotListen as exc:
        log.error("cannot_listen", address=exc.address, error=exc.reason)
        return 1
    except DatabaseUnavailable as exc:
        log.error("database_unavailable", error=str(exc))
        return 1
    finally:
        metrics.cleanup()
    return 0


def main(argv: list[str] | None = None) -> None:
    sys.exit(serve(parse_args(argv)))
