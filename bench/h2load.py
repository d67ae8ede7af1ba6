"""Drive unary gRPC calls with h2load (nghttp2): a C client that costs the machine little, so
the server, not the client, sets the pace. h2load sends one fixed body, so calls that need a
fresh field per call (a new request_id) go through load.js instead."""

import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from google.protobuf.message import Message


def _framed(message: Message) -> bytes:
    payload = message.SerializeToString()
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def run(
    target: str,
    path: str,
    message: Message,
    *,
    key: str,
    streams: int,
    seconds: float,
    connections: int = 1,
):
    """Closed loop: `streams` concurrent streams in all, spread over `connections` HTTP/2
    connections (the kernel hands each connection to one --workers process)."""
    with tempfile.TemporaryDirectory() as tmp:
        body, log = Path(tmp) / "body", Path(tmp) / "log"
        body.write_bytes(_framed(message))
        cmd = [
            "h2load",
            f"http://{target}/{path}",
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-c",
            str(connections),
            "-m",
            str(streams // connections),
            "-D",
            str(seconds),
            "--warm-up-time",
            "1",
            "--log-file",
            str(log),
        ]
        if key:
            cmd += ["-H", f"authorization: Bearer {key}"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True, capture_output=True, timeout=seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = [line.split("\t") for line in log.read_text().splitlines()]
    latencies = sorted(int(r[2]) / 1000 for r in rows if r[1] == "200")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "ok": len(latencies),
        "errors": {"http": len(rows) - len(latencies)} if len(rows) > len(latencies) else {},
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.quantiles(latencies, n=100)[49] if len(latencies) > 1 else None,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else None,
        "client_cpu_share": cpu / (seconds + 1),
        "client": "h2load",
    }
