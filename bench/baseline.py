"""The ceiling for speed: gRPC servers built like ours (same options, services and messages)
whose RPCs do nothing, on grpc.aio (as ours is) and on sync grpcio (a thread pool). Prints
its port, then serves until killed.

    python -m bench.baseline --kind aio|sync [--threads 16] [--workers 1] [--listen host:port]
"""

import argparse
import asyncio
import os
import signal
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rewards.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    issuance_pb2,
    issuance_pb2_grpc,
)

from rewards_service.server import MAX_MESSAGE_BYTES

SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class NoopCatalog(catalog_pb2_grpc.RewardCatalogServicer):
    def GetReward(self, request, context):
        return catalog_pb2.Reward()


class NoopIssuance(issuance_pb2_grpc.RewardIssuanceServicer):
    def IssueReward(self, request, context):
        return issuance_pb2.IssueRewardResponse()

    def ListIssuances(self, request, context):
        return issuance_pb2.ListIssuancesResponse()


class NoopHealth(health_pb2_grpc.HealthServicer):
    def Check(self, request, context):
        return SERVING


class AsyncNoopCatalog(catalog_pb2_grpc.RewardCatalogServicer):
    async def GetReward(self, request, context):
        return catalog_pb2.Reward()


class AsyncNoopIssuance(issuance_pb2_grpc.RewardIssuanceServicer):
    async def IssueReward(self, request, context):
        return issuance_pb2.IssueRewardResponse()

    async def ListIssuances(self, request, context):
        return issuance_pb2.ListIssuancesResponse()


class AsyncNoopHealth(health_pb2_grpc.HealthServicer):
    async def Check(self, request, context):
        return SERVING


def _options(reuse_port: bool) -> list[tuple[str, int]]:
    return [
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


def _announce(port: int) -> None:
    # One write: forked workers print at the same time, and a pipe keeps short writes whole.
    os.write(sys.stdout.fileno(), f"{port}\n".encode())


def serve_sync(threads: int, listen: str, reuse_port: bool) -> None:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads), options=_options(reuse_port)
    )
    catalog_pb2_grpc.add_RewardCatalogServicer_to_server(NoopCatalog(), server)
    issuance_pb2_grpc.add_RewardIssuanceServicer_to_server(NoopIssuance(), server)
    health_pb2_grpc.add_HealthServicer_to_server(NoopHealth(), server)
    port = server.add_insecure_port(listen)
    server.start()
    _announce(port)
    server.wait_for_termination()


async def serve_aio(listen: str, reuse_port: bool) -> None:
    server = grpc.aio.server(options=_options(reuse_port))
    catalog_pb2_grpc.add_RewardCatalogServicer_to_server(AsyncNoopCatalog(), server)
    issuance_pb2_grpc.add_RewardIssuanceServicer_to_server(AsyncNoopIssuance(), server)
    health_pb2_grpc.add_HealthServicer_to_server(AsyncNoopHealth(), server)
    port = server.add_insecure_port(listen)
    await server.start()
    _announce(port)
    await server.wait_for_termination()


def serve(kind: str, threads: int, listen: str, reuse_port: bool) -> None:
    if kind == "aio":
        asyncio.run(serve_aio(listen, reuse_port))
    else:
        serve_sync(threads, listen, reuse_port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("aio", "sync"), default="aio")
    parser.add_argument("--threads", type=int, default=16, help="sync only")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()
    if args.workers == 1:
        serve(args.kind, args.threads, args.listen, reuse_port=False)
        return
    # Workers fork before any gRPC object exists and share the listen port, as
    # `rewards-server --workers` does.
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            serve(args.kind, args.threads, args.listen, reuse_port=True)
            os._exit(0)
        children.append(pid)
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(child, signal.SIGTERM) for child in children])
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
