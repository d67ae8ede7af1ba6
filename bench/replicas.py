"""Run N stateless server processes on N ports against one database, until Ctrl-C.

    python -m bench.replicas --database-url postgresql://postgres@127.0.0.1:5432/test --count 3

Clients spread calls over them with gRPC's round_robin policy, e.g.
    grpc.insecure_channel("ipv4:127.0.0.1:50061,127.0.0.1:50062,127.0.0.1:50063",
                          options=[("grpc.lb_policy_name", "round_robin")])
"""

import argparse
import os
import signal
import subprocess
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("REWARDS_DATABASE_URL"))
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, default=50061)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or REWARDS_DATABASE_URL) is required")
    env = {**os.environ, "REWARDS_DATABASE_URL": args.database_url}
    addresses = [f"{args.host}:{args.base_port + i}" for i in range(args.count)]
    processes = [
        subprocess.Popen([sys.executable, "-m", "rewards_service", "--listen", address], env=env)
        for address in addresses
    ]
    print("round-robin target: ipv4:" + ",".join(addresses), flush=True)
    try:
        for process in processes:
            process.wait()
    except KeyboardInterrupt:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)


if __name__ == "__main__":
    main()
