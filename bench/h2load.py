"""Drive unary gRPC calls with h2load (nghttp2): a C client that costs the machine little, so
the server, not the client, sets the pace. h2load sends one fixed body, so calls that need a
fresh field per call (a new request_id) go through load.js instead."""

import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from google.protobuf.message import Message

from bench import proc


def _framed(message: Message) -> bytes:
    payload = message.SerializeToString()
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def server_cpu(cpu_before: float | None, cpu_after: float | None, calls: int) -> dict:
    """Server CPU time per call over a measured window, in microseconds."""
    if cpu_before is None or cpu_after is None or not calls:
        return {"server_cpu_us": None}
    return {"server_cpu_us": (cpu_after - cpu_before) / calls * 1e6}


def run(
    target: str,
    path: str,
    message: Message,
    *,
    key: str,
    streams: int,
    seconds: float,
    connections: int = 1,
    server_pids: list[int] = (),
):
    """Closed loop: `streams` concurrent streams in all, spread over `connections` HTTP/2
    connections (the kernel hands each connection to one --workers process). The server's CPU
    time is read when h2load opens and closes its measured window."""
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
        cpu_before = cpu_after = None
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as h2:
            for line in h2.stdout:
                if server_pids and "Main benchmark duration is started" in line:
                    cpu_before = proc.cpu_seconds(server_pids)
                elif server_pids and "Main benchmark duration is over" in line:
                    cpu_after = proc.cpu_seconds(server_pids)
            stderr = h2.stderr.read()
        if h2.returncode:
            raise RuntimeError(f"h2load failed ({h2.returncode}): {stderr}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = [line.split("\t") for line in log.read_text().splitlines()]
    latencies = sorted(int(r[2]) / 1000 for r in rows if r[1] == "200")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    failed = len(rows) - len(latencies)
    return {
        "ok": len(latencies),
        "errors": {"http": failed} if failed else {},
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.quantiles(latencies, n=100)[49] if len(latencies) > 1 else None,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else None,
        **server_cpu(cpu_before, cpu_after, len(rows)),
        "client_cpu_share": cpu / (seconds + 1),
        "client": "h2load",
    }
