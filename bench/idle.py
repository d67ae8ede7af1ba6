"""Hold idle streams open against a server: Health/Watch streams, each counted as open once its
first message (the current status) has arrived, spread over several connections.

    python -m bench.idle --target 127.0.0.1:50051 --streams 1000 --per-connection 100

Prints the number of streams open, then holds them until stdin closes, then prints how many
were still open."""

import argparse
import asyncio
import math
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def hold(target: str, streams: int, per_connection: int) -> None:
    # A local subchannel pool per channel: one connection each, not one shared by all.
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(math.ceil(streams / per_connection))
    ]
    calls = [
        health_pb2_grpc.HealthStub(channels[i // per_connection]).Watch(
            health_pb2.HealthCheckRequest(service="")
        )
        for i in range(streams)
    ]
    firsts = [asyncio.ensure_future(call.read()) for call in calls]
    done, _ = await asyncio.wait(firsts, timeout=30)
    opened = sum(
        1 for first in done if not first.exception() and first.result() is not grpc.aio.EOF
    )
    print(opened, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    print(sum(1 for call in calls if not call.done()), flush=True)
    for call in calls:
        call.cancel()
    for channel in channels:
        await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--per-connection", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(hold(args.target, args.streams, args.per_connection))


if __name__ == "__main__":
    main()
