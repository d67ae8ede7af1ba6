"""What --metrics-listen costs a write, on its own: first the hooks one IssueReward runs,
timed in-process (CPU time, so a loaded machine does not inflate it), in one process and in
the --workers mode; then the SQLite server with and without it, measured back to back in
each round (make bench measures the same within its full run).

    python -m bench.metrics_cost [--rounds 5] [--seconds 4]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rewards.v1 import common_pb2

from bench import seed
from bench.__main__ import (
    WRITES,
    Lineup,
    metrics_cost,
    metrics_cost_lines,
    preflight,
    rounds,
    start_ours,
)
from rewards_service import metrics

CALLS = 200_000
METHOD = "/rewards.v1.RewardIssuance/IssueReward"


def hooks_cost(workers: int) -> float:
    """CPU µs of the hooks one IssueReward runs with metrics on: the call's count and time,
    the issuance's outcome, and its group's size and time (a group of one: the dearest)."""
    metrics.enable(workers=workers)
    try:
        group = metrics.store_hooks().group_committed
        points = common_pb2.REWARD_TYPE_POINTS
        started = time.process_time()
        for _ in range(CALLS):
            metrics.observe(METHOD, None, time.perf_counter())
            metrics.issued(points, False)
            group(1, 0.001)
        return (time.process_time() - started) / CALLS * 1e6
    finally:
        metrics.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--hooks-only", type=int, metavar="WORKERS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hooks_only is not None:
        print(f"{hooks_cost(args.hooks_only):.2f}")
        return
    for workers in (1, 2):  # each in a fresh process: the mode is chosen once per process
        done = subprocess.run(
            [sys.executable, "-m", "bench.metrics_cost", "--hooks-only", str(workers)],
            capture_output=True,
            text=True,
            check=True,
        )
        mode = "one process" if workers == 1 else "--workers (multiprocess files)"
        print(f"metrics hooks per IssueReward, {mode}: {done.stdout.strip()} µs CPU", flush=True)
    threads = ("--threads", str(args.threads))
    servers = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for label, extra in (
                ("without", ()),
                ("with --metrics-listen", ("--metrics-listen", "127.0.0.1:0")),
            ):
                url = f"sqlite:///{tmp}/{len(servers)}.db"
                key = seed.program(url)
                server = start_ours(label, url, Path(tmp) / f"{len(servers)}.log", *threads, *extra)
                servers.append(server)
                server.key, server.ids = key, seed.catalog(server.target, key)
                preflight(server, WRITES)
            lineup = Lineup([], None, servers, connections=1)
            runs = rounds([lineup], seconds=args.seconds, count=args.rounds, cases=WRITES)
        finally:
            for server in servers:
                server.stop()
    print()
    for line in metrics_cost_lines(metrics_cost(runs, servers[0].label, servers[1].label)):
        print(line)


if __name__ == "__main__":
    main()
