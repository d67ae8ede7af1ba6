"""Drive unary gRPC calls with load.js (Node.js, @grpc/grpc-js): slower than h2load, but it can
send a fresh request_id with every call."""

import json
import subprocess
import uuid
from pathlib import Path

from bench import h2load, proc, seed

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "bench" / "load.js"
PROTO_INCLUDE = ":".join(
    [str(ROOT / "protos"), str(ROOT / "third_party" / "protos"), seed.wkt_include()]
)


def run(
    target: str,
    service: str,
    method: str,
    request: dict,
    *,
    concurrency: int,
    seconds: float,
    key: str = "",
    unique: str = "",
    connections: int = 1,
    server_pids: list[int] = (),
) -> dict:
    """Closed loop, `concurrency` streams over `connections` connections; `unique` names a field
    given a new value on every call. The server's CPU time is read when load.js opens and
    closes its measured window."""
    proto = f"rewards/v1/{'catalog' if service == 'RewardCatalog' else 'issuance'}.proto"
    options = {
        "target": target,
        "proto": proto,
        "include": PROTO_INCLUDE,
        "service": service,
        "method": method,
        "request": json.dumps(request),
        "concurrency": concurrency,
        "connections": connections,
        "duration": seconds,
        "warmup": 1,
        "key": key,
        "unique": unique,
        "prefix": uuid.uuid4().hex[:8],
    }
    args = ["node", str(LOAD)]
    for name, value in options.items():
        args += [f"--{name}", str(value)]
    cpu_before = cpu_after = None
    notes = []
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    ) as node:
        for line in node.stderr:
            if line.strip() == "measuring":
                cpu_before = proc.cpu_seconds(server_pids) if server_pids else None
            elif line.strip() == "stopped":
                cpu_after = proc.cpu_seconds(server_pids) if server_pids else None
            else:
                notes.append(line)
        out = node.stdout.read()
    if node.returncode:
        raise RuntimeError(f"load.js failed ({node.returncode}): {''.join(notes)}")
    result = json.loads(out)
    calls = result["ok"] + sum(result["errors"].values())
    return {**result, **h2load.server_cpu(cpu_before, cpu_after, calls), "client": "load.js"}
