"""The ceiling: a gRPC server built like ours (same executor, options, services and messages)
whose RPCs do nothing. Prints its port, then serves until killed.

Given a handler cost, IssueReward instead holds the GIL for that long, split into slices
with a GIL release between them (as each step of a sqlite3 statement releases it): what any
handler of that cost can reach, whatever it does."""

import os
import signal
import sys
import time
from concurrent import futures

import grpc
from rewards.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    issuance_pb2,
    issuance_pb2_grpc,
)

from rewards_service.server import MAX_MESSAGE_BYTES


class NoopCatalog(catalog_pb2_grpc.RewardCatalogServicer):
    def GetReward(self, request, context):
        return catalog_pb2.Reward()


class NoopIssuance(issuance_pb2_grpc.RewardIssuanceServicer):
    # Set by main(): seconds of GIL-holding work per IssueReward, and GIL releases within it.
    handler_seconds = 0.0
    releases = 0

    def IssueReward(self, request, context):
        if self.handler_seconds:
            _hold_gil(self.handler_seconds, self.releases)
        return issuance_pb2.IssueRewardResponse()

    def ListIssuances(self, request, context):
        return issuance_pb2.ListIssuancesResponse()


def _hold_gil(seconds: float, releases: int) -> None:
    clock = time.perf_counter
    for i in range(releases + 1):
        if i:
            time.sleep(0)  # releases the GIL and takes it back, like a statement step
        until = clock() + seconds / (releases + 1)
        while clock() < until:
            pass


def serve(threads: int, listen: str, reuse_port: bool) -> None:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    catalog_pb2_grpc.add_RewardCatalogServicer_to_server(NoopCatalog(), server)
    issuance_pb2_grpc.add_RewardIssuanceServicer_to_server(NoopIssuance(), server)
    port = server.add_insecure_port(listen)
    server.start()
    # One write: forked workers print at the same time, and a pipe keeps short writes whole.
    os.write(sys.stdout.fileno(), f"{port}\n".encode())
    server.wait_for_termination()


def main() -> None:
    """Arguments: threads [workers listen [handler_us releases]]. Workers fork before any
    gRPC object exists and share the listen port, as `rewards-server --workers` does."""
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    listen = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1:0"
    if len(sys.argv) > 5:
        NoopIssuance.handler_seconds = int(sys.argv[4]) / 1e6
        NoopIssuance.releases = int(sys.argv[5])
    if workers == 1:
        serve(threads, listen, reuse_port=False)
        return
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            serve(threads, listen, reuse_port=True)
            os._exit(0)
        children.append(pid)
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(child, signal.SIGTERM) for child in children])
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
