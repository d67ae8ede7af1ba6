"""Prometheus metrics on --metrics-listen (off unless set), named like the gRPC ecosystem's
(go-grpc-prometheus) and prefixed rewards_ for our own. README ("Metrics") lists them all.

Off, every hook returns at once. On, each series' child is bound once and kept: a label
lookup costs more than the increment it leads to.

With --workers N the parent makes a private directory before it forks, and every worker's
values go to files there (prometheus_client's multiprocess mode); the parent serves one
scrape that adds them up, and marks a dead worker's live gauges gone. The directory is made
empty and removed on exit.

The store and the services import nothing from here: the writer reports through hooks that
server.py connects (`store_hooks`), and issuance outcomes are observed by the api layer from
the answer or the typed error.
"""

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import REGISTRY, Collector
from rewards.v1 import common_pb2

from rewards_service.api.errors import status_code
from rewards_service.config import split_address
from rewards_service.domain.errors import RewardsError

log = structlog.get_logger("rewards.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The code pools shown one by one, fewest codes left first: a program may have thousands of
# pools, and a series per pool would be one per pool for ever. The totals cover them all.
LOWEST_POOLS = 50
# How often each process samples what it cannot count as it happens (connections in use).
SAMPLE_SECONDS = 1.0
CALL_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# A failed issue's reward type is not known without a lookup on the failure path.
UNKNOWN_TYPE = "UNKNOWN"


class _Metrics:
    """Every metric this process writes. Made by `enable`, after the multiprocess mode (if
    any) is chosen: a value made before would live in this process's memory only."""

    def __init__(self) -> None:
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by method and status code.",
            ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from a call's arrival to its answer, by method.",
            ["grpc_type", "grpc_service", "grpc_method"],
            buckets=CALL_SECONDS,
        )
        self.issuances = Counter(
            "rewards_issuances",
            "Issue attempts (IssueReward, each BatchIssueRewards item, GrantCustomReward) by "
            "reward type and outcome: issued, replayed, or the failure's ErrorInfo reason.",
            ["type", "outcome"],
        )
        self.group_size = Histogram(
            "rewards_store_group_size",
            "Writes committed together by the store's writer, per group.",
            buckets=(1, 2, 4, 8, 16),
        )
        self.group_seconds = Histogram(
            "rewards_store_group_commit_seconds",
            "Time to run and commit one group of writes (its statements, retries and COMMIT; "
            "not the wait for another worker's writer).",
            buckets=CALL_SECONDS,
        )
        self.retries = Counter(
            "rewards_store_retries",
            "Groups run again after contention: serialization_failure (40001), "
            "deadlock_detected (40P01) or busy (SQLite locked/busy).",
            ["reason"],
        )
        self.gave_up = Counter(
            "rewards_store_gave_up",
            "Groups that met contention on every attempt of the retry budget; their calls "
            "were answered UNAVAILABLE.",
            ["reason"],
        )
        self.conflicts = Counter(
            "rewards_store_conflicts",
            "Unique-key clashes between concurrent writes (e.g. two calls with one "
            "request_id), answered as the race's loser or failed as a conflict.",
        )
        self.connections = Gauge(
            "rewards_store_connections",
            "PostgreSQL connections of the pool, by state (in_use includes the writer's).",
            ["state"],
            multiprocess_mode="livesum",
        )


_metrics: _Metrics | None = None
_handled: dict[tuple[str, str], Counter] = {}
_handling: dict[str, Histogram] = {}
_issued: dict[tuple[int, bool], Counter] = {}
_failed: dict[str, Counter] = {}
_multiproc_dir: str | None = None


def enabled() -> bool:
    return _metrics is not None


def enable(*, workers: int) -> None:
    """Make the metrics; before the first fork when `workers` > 1, so that every worker
    writes to the shared directory."""
    global _metrics, _multiproc_dir
    if workers > 1:
        _multiproc_dir = tempfile.mkdtemp(prefix="rewards-metrics-")
        os.environ[MULTIPROC_ENV] = _multiproc_dir
        # prometheus_client picks its value class when imported, from the environment.
        prometheus_values.ValueClass = prometheus_values.get_value_class()
    _metrics = _Metrics()


def multiprocess_directory() -> str | None:
    return _multiproc_dir


def cleanup() -> None:
    """Remove the multiprocess directory (the parent, on its way out)."""
    if _multiproc_dir is not None:
        shutil.rmtree(_multiproc_dir, ignore_errors=True)


def worker_gone(pid: int) -> None:
    """A worker exited: its live gauges stop counting; its counters stay in the totals."""
    if _multiproc_dir is not None:
        mark_process_dead(pid, _multiproc_dir)


@dataclass(frozen=True)
class PoolStock:
    """What the store says of code pools at scrape time."""

    lowest: list[tuple[str, str, int]]  # (program_id, code_pool_id, available), fewest first
    pools: int
    empty: int


class _PoolStockCollector(Collector):
    """Codes left per pool, read when scraped with one bounded query."""

    def __init__(self, read: Callable[[int], PoolStock]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            stock = self._read(LOWEST_POOLS)
        except Exception as exc:  # e.g. the database out of reach: the rest is still served
            log.warning("metrics_pool_stock_failed", error=str(exc).strip().splitlines()[:1])
            return
        available = GaugeMetricFamily(
            "rewards_code_pool_available_codes",
            f"Codes left to issue in the {LOWEST_POOLS} code pools with the fewest, by program "
            "and pool.",
            labels=["program_id", "code_pool_id"],
        )
        for program_id, pool_id, count in stock.lowest:
            available.add_metric([program_id, pool_id], count)
        yield available
        yield GaugeMetricFamily("rewards_code_pools", "Code pools in the store.", stock.pools)
        yield GaugeMetricFamily(
            "rewards_code_pools_empty", "Code pools with no code left to issue.", stock.empty
        )


def serve(listen: str, pool_stock: Callable[[int], PoolStock]) -> int:
    """Serve /metrics on `listen` from a daemon thread; the port it bound. With workers, one
    registry adds up every worker's files."""
    if _multiproc_dir is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=_multiproc_dir)
    else:
        registry = REGISTRY
    registry.register(_PoolStockCollector(pool_stock))
    host, port = split_address(listen)
    server, _thread = start_http_server(port, addr=host.strip("[]"), registry=registry)
    return server.server_port


# Hot-path hooks: each returns at once while metrics are off.


def _labels(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def observe(method: str, error: RewardsError | None, started: float) -> None:
    """One finished call: `method` is /package.Service/Method, `started` its perf_counter."""
    if _metrics is None:
        return
    elapsed = time.perf_counter() - started
    code = status_code(error).name if error else "OK"
    counter = _handled.get((method, code))
    if counter is None:
        counter = _handled[(method, code)] = _metrics.handled.labels(
            "unary", *_labels(method), code
        )
    histogram = _handling.get(method)
    if histogram is None:
        histogram = _handling[method] = _metrics.handling_seconds.labels("unary", *_labels(method))
    counter.inc()
    histogram.observe(elapsed)


def _type_name(value: int) -> str:
    try:
        return common_pb2.RewardType.Name(value).removeprefix("REWARD_TYPE_")
    except ValueError:
        return UNKNOWN_TYPE


def issued(reward_type: int, replayed: bool) -> None:
    """An issue answered with an issuance (`replayed`: an earlier one, for its request_id)."""
    if _metrics is None:
        return
    counter = _issued.get((reward_type, replayed))
    if counter is None:
        outcome = "replayed" if replayed else "issued"
        counter = _issued[(reward_type, replayed)] = _metrics.issuances.labels(
            _type_name(reward_type), outcome
        )
    counter.inc()


def issue_failed(reason: str) -> None:
    """An issue refused: counted by its ErrorInfo reason (a fixed set, named in code)."""
    if _metrics is None:
        return
    counter = _failed.get(reason)
    if counter is None:
        counter = _failed[reason] = _metrics.issuances.labels(UNKNOWN_TYPE, reason)
    counter.inc()


@dataclass(frozen=True)
class StoreHooks:
    """What the store's writer reports (store/group_commit.py's WriterHooks)."""

    group_committed: Callable[[int, float], None]
    retried: Callable[[str], None]
    gave_up: Callable[[str], None]
    conflict: Callable[[], None]


def store_hooks() -> StoreHooks:
    assert _metrics is not None
    size, seconds, conflicts = _metrics.group_size, _metrics.group_seconds, _metrics.conflicts
    retries, gave_up_total = _metrics.retries, _metrics.gave_up

    def group_committed(calls: int, elapsed: float) -> None:
        size.observe(calls)
        seconds.observe(elapsed)

    def retried(reason: str) -> None:
        retries.labels(reason).inc()  # rare: no child kept

    def gave_up(reason: str) -> None:
        gave_up_total.labels(reason).inc()

    return StoreHooks(group_committed, retried, gave_up, conflicts.inc)


async def sample_forever(connections: Callable[[], tuple[int, int] | None]) -> None:
    """In each serving process: what is read rather than counted, every SAMPLE_SECONDS.
    `connections` gives (in use, idle) of the PostgreSQL pool, None on SQLite."""
    if _metrics is None:
        return
    in_use, idle = _metrics.connections.labels("in_use"), _metrics.connections.labels("idle")
    while True:
        counts = connections()
        if counts is not None:
            in_use.set(counts[0])
            idle.set(counts[1])
        await asyncio.sleep(SAMPLE_SECONDS)
