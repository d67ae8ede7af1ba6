"""The ceiling: a gRPC server built like ours (same executor, options, services and messages)
whose RPCs do nothing. Prints its port, then serves until killed."""

import sys
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
    def IssueReward(self, request, context):
        return issuance_pb2.IssueRewardResponse()

    def ListIssuances(self, request, context):
        return issuance_pb2.ListIssuancesResponse()


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    catalog_pb2_grpc.add_RewardCatalogServicer_to_server(NoopCatalog(), server)
    issuance_pb2_grpc.add_RewardIssuanceServicer_to_server(NoopIssuance(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
