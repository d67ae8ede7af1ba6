"""Prometheus metrics on --metrics-listen, named like the gRPC ecosystem's
(go-grpc-prometheus): grpc_server_handled_total and grpc_server_handling_seconds.

Off unless --metrics-listen is set; then every call of ours is counted from the point where
its access line is written. Off, `observe` returns at once.
"""

import time

from prometheus_client import Counter, Histogram, start_http_server

from rewards_service.api.errors import status_code
from rewards_service.config import split_address
from rewards_service.domain.errors import RewardsError

HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by method and status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from a call's arrival to its answer, by method.",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_enabled = False
# Label lookups cost more than the increment: each series' child is found once.
_handled: dict[tuple[str, str], Counter] = {}
_handling: dict[str, Histogram] = {}


def serve(listen: str) -> int:
    """Serve /metrics on `listen` from a daemon thread; the port it bound."""
    global _enabled
    host, port = split_address(listen)
    server, _thread = start_http_server(port, addr=host.strip("[]"))
    _enabled = True
    return server.server_port


def _labels(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def observe(method: str, error: RewardsError | None, started: float) -> None:
    """One finished call: `method` is /package.Service/Method, `started` its perf_counter."""
    if not _enabled:
        return
    elapsed = time.perf_counter() - started
    code = status_code(error).name if error else "OK"
    counter = _handled.get((method, code))
    if counter is None:
        counter = _handled[(method, code)] = HANDLED.labels("unary", *_labels(method), code)
    histogram = _handling.get(method)
    if histogram is None:
        histogram = _handling[method] = HANDLING_SECONDS.labels("unary", *_labels(method))
    counter.inc()
    histogram.observe(elapsed)
