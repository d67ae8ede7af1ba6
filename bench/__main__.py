"""make bench: our server against the two ceilings of this stack, under the same load.

The references run in every round, back to back with ours: do-nothing gRPC servers on grpc.aio
and on sync grpcio (the faster of the two in that round is the reference), and a minimal
durable IssueReward built like ours (bench/durable.py). Every figure is the median of the
rounds; each ratio is the median of the rounds' ratios. Prints markdown tables and writes
bench/results.json and bench/results.md. Figures, never pass/fail.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import grpc
import psycopg2
from google.protobuf import json_format
from grpc_health.v1 import health_pb2
from rewards.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, issuance_pb2

from bench import bad_rounds, events, h2load, loadjs, proc, seed

ROOT = Path(__file__).resolve().parent.parent
STREAMS = 16
# --workers 2: 16 connections, one stream each. The kernel hands each connection, not each
# call, to one worker: with 4 connections over 2 workers, 5 runs in 8 put 3 or 4 of them on
# one worker.
WORKER_CONNECTIONS = 16
# The design before the grpc.aio move: a sync server, one transaction per write on PostgreSQL.
OLD_DESIGN = "5e1d650"


@dataclass
class Server:
    label: str
    process: subprocess.Popen
    target: str
    pids: list[int]
    key: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _read_ports(process: subprocess.Popen, count: int) -> list[str]:
    ports = [process.stdout.readline().strip() for _ in range(count)]
    if not all(ports):
        process.kill()
        raise RuntimeError(f"{process.args} did not start")
    return ports


def start_baseline(kind: str, *, threads: int, workers: int = 1) -> Server:
    listen = f"127.0.0.1:{free_port() if workers > 1 else 0}"
    args = ["--kind", kind, "--threads", str(threads), "--workers", str(workers)]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline", *args, "--listen", listen],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    ports = _read_ports(process, workers)
    label = f"do-nothing {kind}" + (f", {workers} workers" if workers > 1 else "")
    return Server(label, process, f"127.0.0.1:{ports[0]}", proc.tree(process.pid))


def start_durable(database: Path, ids: dict[str, str]) -> Server:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.durable",
            "--database",
            str(database),
            "--reward",
            ids["reward_id"],
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    port = _read_ports(process, 1)[0]
    server = Server("minimal durable issue", process, f"127.0.0.1:{port}", [process.pid])
    server.ids = dict(ids, replay_request_id="durable-replay")
    return server


def start_ours(
    label: str, database_url: str, log_path: Path, *extra: str, workers: int = 1, env=None
) -> Server:
    log = log_path.open("w")
    listen = f"127.0.0.1:{free_port() if workers > 1 else 0}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rewards_service",
            "--listen",
            listen,
            "--workers",
            str(workers),
            *extra,
        ],
        env={**os.environ, **(env or {}), "REWARDS_DATABASE_URL": database_url},
        stdout=log,
        stderr=log,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = log_path.read_text().splitlines()
        serving = [line for line in lines if '"event":"serving"' in line]
        if len(serving) >= workers:
            target = json.loads(serving[0])["address"]
            return Server(label, process, target, proc.tree(process.pid))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{label} did not start: " + log_path.read_text()[-2000:])


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    generator: str  # h2load repeats one body; load.js sends a new request_id per call

    def message(self, ids: dict[str, str]):
        ref = common_pb2.ParticipantRef(id=ids["participant_id"])
        if self.name.startswith("IssueReward new") or self.name.startswith("IssueReward no"):
            return issuance_pb2.IssueRewardRequest(reward_id=ids["reward_id"], participant=ref)
        if self.name == "IssueReward replay":
            return issuance_pb2.IssueRewardRequest(
                reward_id=ids["reward_id"], participant=ref, request_id=ids["replay_request_id"]
            )
        if self.name == "GetReward":
            return catalog_pb2.GetRewardRequest(id=ids["reward_id"])
        if self.name.startswith("ListIssuances"):
            return issuance_pb2.ListIssuancesRequest(page_size=10)
        return health_pb2.HealthCheckRequest()


ISSUE = Case("IssueReward new request_id", "rewards.v1.RewardIssuance/IssueReward", "load.js")
# The same write without a request_id (no idempotency row in ours) through h2load, whose
# calls cost the machine a fraction of load.js's.
ISSUE_H2LOAD = Case("IssueReward no request_id", "rewards.v1.RewardIssuance/IssueReward", "h2load")
REPLAY = Case("IssueReward replay", "rewards.v1.RewardIssuance/IssueReward", "h2load")
GET = Case("GetReward", "rewards.v1.RewardCatalog/GetReward", "h2load")
LIST = Case("ListIssuances page_size 10", "rewards.v1.RewardIssuance/ListIssuances", "h2load")
HEALTH = Case("Health/Check", "grpc.health.v1.Health/Check", "h2load")
CASES = (ISSUE, ISSUE_H2LOAD, REPLAY, GET, LIST, HEALTH)
WRITES = (ISSUE, ISSUE_H2LOAD)


def measure(server: Server, case: Case, *, seconds: float, connections: int = 1) -> dict:
    message = case.message(server.ids)
    if case.generator == "h2load":
        return h2load.run(
            server.target,
            case.path,
            message,
            key=server.key,
            streams=STREAMS,
            seconds=seconds,
            connections=connections,
            server_pids=server.pids,
        )
    service, method = case.path.split("/")
    return loadjs.run(
        server.target,
        service.split(".")[-1],
        method,
        json_format.MessageToDict(message, preserving_proto_field_name=True),
        concurrency=STREAMS,
        connections=connections,
        seconds=seconds,
        key=server.key,
        unique="request_id",
        server_pids=server.pids,
    )


def preflight(server: Server, cases) -> None:
    """h2load cannot see gRPC status trailers: make sure each fixed request really succeeds."""
    with grpc.insecure_channel(server.target) as channel:
        for case in cases:
            call = channel.unary_unary("/" + case.path)
            metadata = (("authorization", f"Bearer {server.key}"),) if server.key else ()
            call(case.message(server.ids).SerializeToString(), metadata=metadata, timeout=30)


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratios(runs: list[dict], references: list[dict]) -> dict:
    """The rounds' ratios of `runs` to the reference runs of the same rounds, and the median
    of those that count (bench/bad_rounds.py: no errors, no stalled reference)."""
    judged = bad_rounds.judge(
        [run["rps"] for run in runs],
        [ref["rps"] for ref in references],
        [bool(run["errors"] or ref["errors"]) for run, ref in zip(runs, references, strict=True)],
    )
    return {
        "ratio": bad_rounds.median_ratio(judged),
        "round_ratios": [r.ratio for r in judged],
        "left_out": [r.left_out for r in judged],
    }


def _rounds_text(ratios: list[float]) -> str:
    return " (" + " ".join(f"{r:.2f}" for r in ratios) + ")" if len(ratios) > 1 else ""


def _line(label: str, case: Case, run: dict) -> str:
    text = (
        f"{label:<34} {case.name:<27} {run['rps']:8.0f} req/s  p50 {run['p50_ms']:6.2f} ms"
        f"  p99 {run['p99_ms']:6.2f} ms"
    )
    if run.get("server_cpu_us") is not None:
        text += f"  cpu {run['server_cpu_us']:5.0f} us/call"
    if run["errors"]:
        text += f"  errors {run['errors']}"
    return text + f"  [{run['client']} {run['client_cpu_share']:.2f} core]"


@dataclass
class Lineup:
    """One round's order: the references of a kind of connection set, then the servers
    compared with them."""

    references: list[Server]
    durable: Server | None
    servers: list[Server]
    connections: int
    writes_only: frozenset[str] = frozenset()


def rounds(lineups: list[Lineup], *, seconds: float, count: int, cases=CASES) -> dict:
    """runs[(server label, case name)]: one run per round, every server measured back to back
    with the references of its lineup, RPC by RPC."""
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for number in range(count):
        print(f"-- round {number + 1} of {count}", flush=True)
        for case in cases:
            for lineup in lineups:
                servers = [*lineup.references, *lineup.servers]
                if case in WRITES and lineup.durable:
                    servers.insert(len(lineup.references), lineup.durable)
                for server in servers:
                    if case not in WRITES and server.label in lineup.writes_only:
                        continue
                    run = measure(server, case, seconds=seconds, connections=lineup.connections)
                    runs[(server.label, case.name)].append(run)
                    print(_line(server.label, case, run), flush=True)
    return runs


def table_rows(lineups: list[Lineup], runs) -> list[dict]:
    rows = []
    for lineup in lineups:
        servers = [*lineup.references, *([lineup.durable] if lineup.durable else [])]
        for server in [*servers, *lineup.servers]:
            for case in CASES:
                own = runs.get((server.label, case.name))
                if not own:
                    continue
                fastest = [
                    max(
                        (runs[(ref.label, case.name)][i] for ref in lineup.references),
                        key=lambda run: run["rps"],
                    )
                    for i in range(len(own))
                ]
                median = _median_run(own)
                row = {
                    "server": server.label,
                    "rpc": case.name,
                    "connections": lineup.connections,
                    "rps": median["rps"],
                    "p50_ms": median["p50_ms"],
                    "p99_ms": median["p99_ms"],
                    "server_cpu_us": _median([run.get("server_cpu_us") for run in own]),
                    "errors": dict(sum((Counter(run["errors"]) for run in own), Counter())),
                    "client": median["client"],
                    "rounds": own,
                    "to_do_nothing": _ratios(own, fastest),
                }
                if case in WRITES and lineup.durable and server is not lineup.durable:
                    durable = runs[(lineup.durable.label, case.name)]
                    row["to_durable"] = _ratios(own, durable)
                rows.append(row)
    return rows


def metrics_cost(runs, without: str, with_metrics: str) -> dict:
    """What --metrics-listen costs per write: the median over rounds of the server CPU per
    call with it less without it (µs), and the throughput ratio with ÷ without."""
    cost = {}
    for case in WRITES:
        off, on = runs[(without, case.name)], runs[(with_metrics, case.name)]
        extra = [
            b["server_cpu_us"] - a["server_cpu_us"]
            for a, b in zip(off, on, strict=True)
            if a.get("server_cpu_us") is not None and b.get("server_cpu_us") is not None
        ]
        cost[case.name] = {
            "cpu_us_without": _median([run.get("server_cpu_us") for run in off]),
            "cpu_us_with": _median([run.get("server_cpu_us") for run in on]),
            "extra_cpu_us": _median(extra),
            "round_extra_cpu_us": extra,
            "throughput": _ratios(on, off),
        }
    return cost


def metrics_cost_lines(cost: dict) -> list[str]:
    lines = []
    for name, c in cost.items():
        extra = "" if c["extra_cpu_us"] is None else f"{c['extra_cpu_us']:+.0f}"
        rounds_extra = " ".join(f"{v:+.0f}" for v in c["round_extra_cpu_us"])
        lines.append(
            f"--metrics-listen on, {name}: server CPU {extra} µs/call (rounds {rounds_extra}; "
            f"{_cell(c['cpu_us_without'], '{:.0f}')} without, "
            f"{_cell(c['cpu_us_with'], '{:.0f}')} with), throughput with ÷ without "
            + _ratio_cell(c["throughput"])
        )
    return lines


def new_over_old(runs, new: str, old: str) -> dict:
    return {case.name: _ratios(runs[(new, case.name)], runs[(old, case.name)]) for case in WRITES}


IDLE_CASES = (HEALTH, GET, ISSUE)


def idle_streams(server: Server, *, count: int, seconds: float, rounds_count: int) -> dict:
    """Each round: the RPCs without idle streams, then with `count` Health/Watch streams held
    open by one helper process over count/100 connections."""
    without, with_idle, opened = defaultdict(list), defaultdict(list), []
    for number in range(rounds_count):
        print(f"-- round {number + 1} of {rounds_count}", flush=True)
        for case in IDLE_CASES:
            without[case.name].append(measure(server, case, seconds=seconds))
            print(_line("without idle streams", case, without[case.name][-1]), flush=True)
        helper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.idle",
                "--target",
                server.target,
                "--streams",
                str(count),
                "--per-connection",
                "100",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            opened.append(int(helper.stdout.readline()))
            for case in IDLE_CASES:
                with_idle[case.name].append(measure(server, case, seconds=seconds))
                label = f"with {opened[-1]} idle streams"
                print(_line(label, case, with_idle[case.name][-1]), flush=True)
            helper.stdin.close()
            opened.append(int(helper.stdout.readline()))  # still open at the end
        finally:
            helper.wait(30)
    rows = []
    for case in IDLE_CASES:
        before, after = without[case.name], with_idle[case.name]
        p99 = sorted(a["p99_ms"] / b["p99_ms"] for a, b in zip(after, before, strict=True))
        rows.append(
            {
                "rpc": case.name,
                "without": _median_run(before),
                "with": _median_run(after),
                "p99_ratio": statistics.median(p99),
                "round_p99_ratios": p99,
                **_ratios(after, before),
            }
        )
    return {"streams": count, "open_counts": opened, "fewest_open": min(opened), "rows": rows}


def event_feed(tmp: Path, threads, *, seconds: float, count: int, rate: int) -> dict:
    """IssueReward with and without the outbox (alternating rounds, same build), then the
    lag of an open WatchEvents stream while issuing `rate` a second (bench/events.py)."""
    on, off = events.servers(tmp, start_ours, threads)
    try:
        preflight(on, [ISSUE_H2LOAD])
        preflight(off, [ISSUE_H2LOAD])
        runs: dict[str, list[dict]] = {on.label: [], off.label: []}
        for i in range(count):
            # Each order in turn: a load that drifts during a round favours neither.
            for server in (off, on) if i % 2 == 0 else (on, off):
                runs[server.label].append(measure(server, ISSUE_H2LOAD, seconds=seconds))
                print(_line(server.label, ISSUE_H2LOAD, runs[server.label][-1]), flush=True)
        cost = _ratios(runs[on.label], runs[off.label])
        print(f"IssueReward req/s, events on / off: {_ratio_cell(cost)}", flush=True)
        lag = events.event_lag(on.target, on.key, on.ids, rate=rate, seconds=max(seconds, 5))
        print(
            f"event lag at {rate}/s: p50 {_cell(lag['p50_ms'])} ms, p99 {_cell(lag['p99_ms'])} ms"
            f" ({lag['delivered']} of {lag['issued']} issued, {lag['failed']} failed)",
            flush=True,
        )
    finally:
        on.stop()
        off.stop()
    return {
        "on": _median_run(runs[on.label]),
        "off": _median_run(runs[off.label]),
        "on_over_off": cost,
        "lag": lag,
    }


def log_errors(log: Path) -> dict[str, int]:
    """Calls our server answered with an error, by code, from its access log."""
    codes: Counter[str] = Counter()
    with log.open() as lines:
        for line in lines:
            if '"event":"rpc"' in line and '"code":"OK"' not in line:
                codes[json.loads(line).get("code", "?")] += 1
    return dict(codes)


def list_scaling(database_url, server: Server, sizes, *, seconds):
    results = []
    for size in sizes:
        seed.fill_issuances(database_url, server.key, size)
        measured = loadjs.run(
            server.target,
            "RewardIssuance",
            "ListIssuances",
            {"page_size": 50},
            concurrency=1,
            seconds=seconds,
            key=server.key,
        )
        results.append(
            {"issuances": size, "p50_ms": measured["p50_ms"], "p99_ms": measured["p99_ms"]}
        )
        print(
            f"ListIssuances with {size:>9,} issuances: p50 {measured['p50_ms']:.2f} ms", flush=True
        )
    return results


def add_codes_time(target, key, total):
    channel = grpc.insecure_channel(target)
    stub = catalog_pb2_grpc.RewardCatalogStub(channel)
    metadata = (("authorization", f"Bearer {key}"),)
    pool = stub.CreateCodePool(
        catalog_pb2.CreateCodePoolRequest(code_pool=catalog_pb2.CodePool(name="bench")),
        metadata=metadata,
    )
    started = time.perf_counter()
    for start in range(0, total, 10_000):
        codes = [f"BENCH-{i:08d}" for i in range(start, min(total, start + 10_000))]
        stub.AddCodes(
            catalog_pb2.AddCodesRequest(code_pool_id=pool.id, codes=codes),
            metadata=metadata,
            timeout=120,
        )
    elapsed = time.perf_counter() - started
    channel.close()
    print(f"AddCodes {total:,} codes in 10k batches: {elapsed:.2f} s", flush=True)
    return elapsed


def _cell(value, fmt="{:.2f}"):
    return fmt.format(value) if value is not None else ""


def _ratio_cell(ratio: dict | None) -> str:
    if not ratio:
        return ""
    judged = [
        bad_rounds.Round(value, why)
        for value, why in zip(ratio["round_ratios"], ratio["left_out"], strict=True)
    ]
    median = "none counts" if ratio["ratio"] is None else f"{ratio['ratio']:.2f}"
    return median + bad_rounds.text(judged)


def markdown(results) -> str:
    rounds_count = results["rounds"]
    lines = [
        f"{STREAMS} streams, {results['seconds']} s per run, the median of {rounds_count} rounds;"
        " every server of a round measured back to back, RPC by RPC. Ratios: the median of the"
        " rounds' ratios (each round's in parentheses) to the faster do-nothing server of the"
        " same round and connections, and for a new IssueReward to the minimal durable issue."
        " Server CPU: utime + stime of the server's processes over the measured window, per"
        " call (PostgreSQL's own processes not included).",
        "",
        "| server | RPC | connections | req/s | p50 ms | p99 ms | server CPU µs/call "
        "| ÷ fastest do-nothing | ÷ minimal durable issue | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("table", []):
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items())
        lines.append(
            f"| {r['server']} | {r['rpc']} | {r['connections']} | {r['rps']:.0f} "
            f"| {_cell(r['p50_ms'])} | {_cell(r['p99_ms'])} "
            f"| {_cell(r['server_cpu_us'], '{:.0f}')} | {_ratio_cell(r['to_do_nothing'])} "
            f"| {_ratio_cell(r.get('to_durable'))} | {errors} |"
        )
    for case in WRITES:
        cpu = [
            f"{r['server']} {r['server_cpu_us']:.0f}"
            for r in results.get("table", [])
            if r["rpc"] == case.name and r["server_cpu_us"] is not None
        ]
        lines += ["", f"Server CPU per {case.name} ({case.generator}), µs/call: " + "; ".join(cpu)]
    for name, ratio in results.get("new_over_old", {}).items():
        lines += [
            "",
            f"PostgreSQL, one hot reward, {name}: this design ÷ the design at "
            f"{results['old_design']}: {_ratio_cell(ratio)}",
        ]
    if results.get("metrics_cost"):
        lines += ["", *metrics_cost_lines(results["metrics_cost"])]
    if results.get("log_errors"):
        lines += ["", "Calls our servers answered with an error, from their access logs:"]
        lines += [f"- {label}: {codes}" for label, codes in results["log_errors"].items()]
    idle = results.get("idle")
    if idle:
        lines += [
            "",
            f"Our server on SQLite with {idle['streams']:,} idle Health/Watch streams open "
            f"(open at the start and end of each round: {idle['open_counts']}):",
            "",
            "| RPC | req/s without | p99 ms without | req/s with | p99 ms with "
            "| p99 with ÷ without | req/s with ÷ without |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in idle["rows"]:
            lines.append(
                f"| {r['rpc']} | {r['without']['rps']:.0f} | {r['without']['p99_ms']:.2f} "
                f"| {r['with']['rps']:.0f} | {r['with']['p99_ms']:.2f} "
                f"| {r['p99_ratio']:.2f}{_rounds_text(r['round_p99_ratios'])} "
                f"| {_ratio_cell(r)} |"
            )
    if results.get("list_scaling"):
        lines += ["", "| issuances in store | ListIssuances page_size 50 p50 ms |", "|---|---|"]
        lines += [f"| {r['issuances']:,} | {r['p50_ms']:.2f} |" for r in results["list_scaling"]]
    if results.get("add_codes_100k_seconds") is not None:
        lines += ["", f"AddCodes, 100,000 codes: {results['add_codes_100k_seconds']:.2f} s"]
    feed = results.get("events")
    if feed:
        lag = feed["lag"]
        lines += [
            "",
            "Event feed, SQLite, the same build with REWARDS_EVENTS=off as the reference: "
            f"{ISSUE_H2LOAD.name} {feed['on']['rps']:.0f} req/s with events, "
            f"{feed['off']['rps']:.0f} without; with ÷ without {_ratio_cell(feed['on_over_off'])}."
            f" Commit-to-delivery lag on an open WatchEvents stream at {lag['rate']} issues/s "
            f"for {lag['seconds']} s: p50 {_cell(lag['p50_ms'])} ms, p99 {_cell(lag['p99_ms'])} "
            f"ms, max {_cell(lag['max_ms'])} ms ({lag['delivered']} events of {lag['issued']} "
            f"issues, {lag['failed']} failed).",
        ]
    return "\n".join(lines)


def _fresh_database(url: str, name: str) -> str:
    """An empty database `name` on the PostgreSQL server of `url` (dropped first if there)."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def _bootstrap_key(log: Path) -> str:
    """The admin key a first start on an empty database printed."""
    for line in log.read_text().splitlines():
        if "Admin API key" in line:
            return line.rsplit(" ", 1)[-1]
    raise RuntimeError(f"no bootstrap key in {log}")


def _export(ref: str, into: Path) -> Path:
    """The source tree of commit `ref`, to run with PYTHONPATH in the same virtualenv."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--idle-streams", type=int, default=1000)
    parser.add_argument(
        "--list-sizes", default="10000,100000,1000000", help="empty to skip this section"
    )
    parser.add_argument(
        "--event-rate", type=int, default=400, help="issues/s while measuring event lag; 0 skips"
    )
    parser.add_argument(
        "--only-events", action="store_true", help="only the event feed's figures (short run)"
    )
    parser.add_argument(
        "--old-design",
        default=OLD_DESIGN,
        help="commit of the design to compare with on PostgreSQL; empty to skip",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "REWARDS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    results = {
        "threads": args.threads,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "streams": STREAMS,
        "load_before": os.getloadavg(),
    }
    started = time.monotonic()
    threads = ("--threads", str(args.threads))
    servers: list[Server] = []
    if args.only_events:
        with tempfile.TemporaryDirectory() as tmp:
            results["events"] = event_feed(
                Path(tmp), threads, seconds=args.seconds, count=args.rounds, rate=args.event_rate
            )
        _write(results, started)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:
            sqlite_url = f"sqlite:///{tmp}/bench.db"
            key = seed.program(sqlite_url)
            ours = start_ours("ours, SQLite", sqlite_url, tmp / "sqlite.log", *threads)
            servers.append(ours)
            ours.key, ours.ids = key, seed.catalog(ours.target, key)

            # The same server with --metrics-listen, on a file of its own: what metrics cost.
            metrics_url = f"sqlite:///{tmp}/metrics.db"
            metrics_key = seed.program(metrics_url)
            ours_metrics = start_ours(
                "ours, SQLite, --metrics-listen",
                metrics_url,
                tmp / "metrics.log",
                *threads,
                "--metrics-listen",
                "127.0.0.1:0",
            )
            servers.append(ours_metrics)
            ours_metrics.key = metrics_key
            ours_metrics.ids = seed.catalog(ours_metrics.target, metrics_key)

            workers_url = f"sqlite:///{tmp}/workers.db"
            workers_key = seed.program(workers_url)
            ours_workers = start_ours(
                "ours, SQLite, --workers 2", workers_url, tmp / "workers.log", *threads, workers=2
            )
            servers.append(ours_workers)
            ours_workers.key = workers_key
            ours_workers.ids = seed.catalog(ours_workers.target, workers_key)

            pg_key = seed.program(args.postgres)
            ours_pg = start_ours("ours, PostgreSQL", args.postgres, tmp / "pg.log", *threads)
            servers.append(ours_pg)
            ours_pg.key, ours_pg.ids = pg_key, seed.catalog(ours_pg.target, pg_key)

            old_pg = None
            if args.old_design:
                old_src = _export(args.old_design, tmp)
                # A database of its own, made by its own migrations: today's schema may hold
                # columns the old code does not fill.
                old_url = _fresh_database(args.postgres, "rewards_bench_old_design")
                old_pg = start_ours(
                    f"ours at {args.old_design}, PostgreSQL",
                    old_url,
                    tmp / "old-pg.log",
                    *threads,
                    env={"PYTHONPATH": str(old_src)},
                )
                servers.append(old_pg)
                old_key = _bootstrap_key(tmp / "old-pg.log")
                old_pg.key, old_pg.ids = old_key, seed.catalog(old_pg.target, old_key)

            references = []
            for kind in ("aio", "sync"):
                references.append(start_baseline(kind, threads=args.threads))
                servers.append(references[-1])
            worker_references = []
            for kind in ("aio", "sync"):
                worker_references.append(start_baseline(kind, threads=args.threads, workers=2))
                servers.append(worker_references[-1])
            durable = start_durable(tmp / "durable.db", ours.ids)
            servers.append(durable)
            for reference in [*references, *worker_references]:
                reference.ids = ours.ids

            for server in [
                ours,
                ours_metrics,
                ours_workers,
                ours_pg,
                *([old_pg] if old_pg else []),
            ]:
                preflight(server, CASES)
            preflight(durable, WRITES)

            lineups = [
                Lineup(
                    references,
                    durable,
                    [ours, ours_metrics, ours_pg, *([old_pg] if old_pg else [])],
                    connections=1,
                    writes_only=frozenset(
                        [ours_metrics.label, *([old_pg.label] if old_pg else [])]
                    ),
                ),
                Lineup(worker_references, None, [ours_workers], connections=WORKER_CONNECTIONS),
            ]
            print(
                f"== {STREAMS} streams: do-nothing, minimal durable issue, ours on SQLite and "
                f"PostgreSQL (1 connection); --workers 2 ({WORKER_CONNECTIONS} connections) ==",
                flush=True,
            )
            runs = rounds(lineups, seconds=args.seconds, count=args.rounds)
            results["table"] = table_rows(lineups, runs)
            # The --workers 2 IssueReward against the one-process minimal durable issue too.
            for row in results["table"]:
                if row["server"] == ours_workers.label and row["rpc"] in [w.name for w in WRITES]:
                    durable_runs = runs[(durable.label, row["rpc"])]
                    row["to_durable"] = _ratios(row["rounds"], durable_runs)
            results["metrics_cost"] = metrics_cost(runs, ours.label, ours_metrics.label)
            for line in metrics_cost_lines(results["metrics_cost"]):
                print(line, flush=True)
            if old_pg:
                results["old_design"] = args.old_design
                results["new_over_old"] = new_over_old(runs, ours_pg.label, old_pg.label)
                for name, ratio in results["new_over_old"].items():
                    print(
                        f"PostgreSQL {name}, this design / the one at {args.old_design}: "
                        + _ratio_cell(ratio),
                        flush=True,
                    )
            # Only ours on SQLite from here on.
            for server in servers:
                if server is not ours:
                    server.stop()
            servers = [ours]

            print(f"== ours on SQLite, with {args.idle_streams:,} idle streams ==", flush=True)
            results["idle"] = idle_streams(
                ours, count=args.idle_streams, seconds=args.seconds, rounds_count=args.rounds
            )
            results["add_codes_100k_seconds"] = add_codes_time(ours.target, ours.key, 100_000)
            if args.list_sizes:
                print("== ListIssuances as the store grows ==", flush=True)
                sizes = [int(s) for s in args.list_sizes.split(",")]
                results["list_scaling"] = list_scaling(sqlite_url, ours, sizes, seconds=3)
            if args.event_rate:
                ours.stop()
                servers = []
                print("== event feed: lag on an open stream, the outbox's cost ==", flush=True)
                results["events"] = event_feed(
                    tmp, threads, seconds=args.seconds, count=args.rounds, rate=args.event_rate
                )
        finally:
            for server in servers:
                server.stop()
        results["log_errors"] = {
            label: codes
            for label, log in (
                ("ours, SQLite", tmp / "sqlite.log"),
                ("ours, SQLite, --metrics-listen", tmp / "metrics.log"),
                ("ours, SQLite, --workers 2", tmp / "workers.log"),
                ("ours, PostgreSQL", tmp / "pg.log"),
                (f"ours at {args.old_design}, PostgreSQL", tmp / "old-pg.log"),
            )
            if log.exists() and (codes := log_errors(log))
        }
    _write(results, started)


def _write(results: dict, started: float) -> None:
    results["load_after"] = os.getloadavg()
    results["elapsed_seconds"] = time.monotonic() - started
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (ROOT / "bench" / "results.md").write_text(table + "\n")
    print()
    print(table)
    print(
        f"\nload average before {results['load_before'][0]:.2f}, after "
        f"{results['load_after'][0]:.2f}; {results['elapsed_seconds'] / 60:.1f} min"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
    sys.exit(0)
