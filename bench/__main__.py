"""make bench: our server against a do-nothing gRPC server, driven by the same load generator.

Prints a markdown table and writes bench/results.json. Figures, never pass/fail.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
from google.protobuf import json_format
from rewards.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, issuance_pb2

from bench import h2load, seed

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "bench" / "load.js"
PROTO_INCLUDE = ":".join(
    [str(ROOT / "protos"), str(ROOT / "third_party" / "protos"), seed.wkt_include()]
)


def run_load(target, service, method, request, *, concurrency, seconds, key="", unique=""):
    """load.js: the Node.js generator, for calls that need a fresh request_id each time."""
    proto = f"rewards/v1/{'catalog' if service == 'RewardCatalog' else 'issuance'}.proto"
    args = [
        "node",
        str(LOAD),
        "--target",
        target,
        "--proto",
        proto,
        "--include",
        PROTO_INCLUDE,
        "--service",
        service,
        "--method",
        method,
        "--request",
        json.dumps(request),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(seconds),
        "--warmup",
        "1",
        "--key",
        key,
        "--unique",
        unique,
        "--prefix",
        uuid.uuid4().hex[:8],
    ]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return json.loads(out.stdout)


def start_baseline(threads: int, workers: int = 1, handler_cost: tuple[int, int] | None = None):
    """handler_cost: (microseconds holding the GIL, GIL releases) per IssueReward."""
    listen = f"127.0.0.1:{free_port() if workers > 1 else 0}"
    cost = [str(n) for n in handler_cost] if handler_cost else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline", str(threads), str(workers), listen, *cost],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    ports = [proc.stdout.readline().strip() for _ in range(workers)]
    return proc, f"127.0.0.1:{ports[0]}"


def start_server(database_url: str, log_path: Path, *extra: str):
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewards_service", "--listen", "127.0.0.1:0", *extra],
        env={**os.environ, "REWARDS_DATABASE_URL": database_url},
        stdout=log,
        stderr=log,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if '"event":"serving"' in line:
                return proc, json.loads(line)["address"]
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start: " + log_path.read_text())


def _cases(ids):
    """(name, gRPC path, request, generator). h2load repeats one body; load.js varies request_id."""
    ref = common_pb2.ParticipantRef(id=ids["participant_id"])
    issue = issuance_pb2.IssueRewardRequest(reward_id=ids["reward_id"], participant=ref)
    replay = issuance_pb2.IssueRewardRequest(
        reward_id=ids["reward_id"], participant=ref, request_id=ids["replay_request_id"]
    )
    return [
        ("IssueReward", "rewards.v1.RewardIssuance/IssueReward", issue, "h2load"),
        ("IssueReward new request_id", "rewards.v1.RewardIssuance/IssueReward", issue, "load.js"),
        ("IssueReward replay", "rewards.v1.RewardIssuance/IssueReward", replay, "h2load"),
        (
            "GetReward",
            "rewards.v1.RewardCatalog/GetReward",
            catalog_pb2.GetRewardRequest(id=ids["reward_id"]),
            "h2load",
        ),
        (
            "ListIssuances",
            "rewards.v1.RewardIssuance/ListIssuances",
            issuance_pb2.ListIssuancesRequest(page_size=50),
            "h2load",
        ),
    ]


def measure(target, path, message, generator, *, key, streams, seconds):
    if generator == "h2load":
        return h2load.run(target, path, message, key=key, streams=streams, seconds=seconds)
    service, method = path.split("/")
    request = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return run_load(
        target,
        service.split(".")[-1],
        method,
        request,
        concurrency=streams,
        seconds=seconds,
        key=key,
        unique="request_id",
    )


def preflight(target, key, ids):
    """h2load cannot see gRPC status trailers: make sure each fixed request really succeeds."""
    with grpc.insecure_channel(target) as channel:
        for _name, path, message, _generator in _cases(ids):
            call = channel.unary_unary("/" + path)
            call(message.SerializeToString(), metadata=(("authorization", f"Bearer {key}"),))


def _median(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]


def _ratios(ours_runs: list[dict], base_runs: list[dict]) -> dict:
    """The rounds' ratios, ours to the baseline's, and their median."""
    ratios = sorted(o["rps"] / b["rps"] for o, b in zip(ours_runs, base_runs, strict=True))
    return {"ratio": ratios[len(ratios) // 2], "round_ratios": ratios}


def _rounds_text(ratios: list[float]) -> str:
    return " (rounds " + " ".join(f"{r:.2f}" for r in ratios) + ")" if len(ratios) > 1 else ""


def issuance_matrix(target, key, ids, *, seconds, concurrencies, rounds=1, baseline=None):
    """Each point runs `rounds` times, ours and the baseline back to back, and reports the
    median run of each and the median of the rounds' ratios: on a shared machine one run of
    either can be off by a quarter."""
    preflight(target, key, ids)
    rows = []
    for name, path, message, generator in _cases(ids):
        for streams in concurrencies:
            ours_runs, base_runs = [], []
            for _ in range(rounds):
                ours_runs.append(
                    measure(
                        target, path, message, generator, key=key, streams=streams, seconds=seconds
                    )
                )
                if baseline:
                    base_runs.append(
                        measure(
                            baseline,
                            path,
                            message,
                            generator,
                            key="",
                            streams=streams,
                            seconds=seconds,
                        )
                    )
            row = {"rpc": name, "streams": streams, "client": generator, "ours": _median(ours_runs)}
            if baseline:
                row["baseline"] = _median(base_runs)
                row.update(_ratios(ours_runs, base_runs))
            rows.append(row)
            print(_row_text(row), flush=True)
    return rows


def _row_text(row):
    ours = row["ours"]
    text = (
        f"{row['rpc']:<20} streams={row['streams']:<3} {ours['rps']:8.0f} req/s  "
        f"p50 {ours['p50_ms']:.2f} ms  p99 {ours['p99_ms']:.2f} ms"
    )
    if "baseline" in row:
        text += f"  baseline {row['baseline']['rps']:8.0f} req/s  ratio {row['ratio']:.2f}"
        text += _rounds_text(row["round_ratios"])
    if ours["errors"]:
        text += f"  errors {ours['errors']}"
    text += f"  [{row['client']} cpu {ours['client_cpu_share']:.2f} core]"
    return text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The kernel hands each connection, not each call, to one worker: with 4 connections over 2
# workers, 5 runs in 8 put 3 or 4 of them on one worker. One stream per connection.
WORKER_CONNECTIONS = 16


def workers_effect(database_url, key, ids, *, threads, seconds):
    """--workers 1 vs 2 with 16 streams, one per connection: what a second process buys."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            log = Path(tmp) / f"workers{workers}.log"
            # Workers share one fixed port; each logs its own "serving" line once it listens.
            listen = f"127.0.0.1:{free_port()}"
            server, target = start_server(
                database_url,
                log,
                "--listen",
                listen,
                "--threads",
                str(threads),
                "--workers",
                str(workers),
            )
            while log.read_text().count('"event":"serving"') < workers:
                time.sleep(0.1)
            baseline_proc, baseline = start_baseline(threads, workers)
            try:
                for name, path, message, generator in _cases(ids):
                    if generator != "h2load" or name == "ListIssuances":
                        continue
                    measured = h2load.run(
                        target,
                        path,
                        message,
                        key=key,
                        streams=16,
                        seconds=seconds,
                        connections=WORKER_CONNECTIONS,
                    )
                    base = h2load.run(
                        baseline,
                        path,
                        message,
                        key="",
                        streams=16,
                        seconds=seconds,
                        connections=WORKER_CONNECTIONS,
                    )
                    ratio = measured["rps"] / base["rps"]
                    rows.append(
                        {"rpc": name, "workers": workers, **measured, "baseline_rps": base["rps"]}
                    )
                    print(
                        f"{name:<20} workers={workers} {WORKER_CONNECTIONS} connections"
                        f"  {measured['rps']:8.0f} req/s"
                        f"  p99 {measured['p99_ms']:.2f} ms  baseline {base['rps']:8.0f} req/s"
                        f"  ratio {ratio:.2f}",
                        flush=True,
                    )
            finally:
                server.terminate()
                server.wait(30)
                baseline_proc.terminate()
                baseline_proc.wait(30)
    return rows


# (microseconds holding the GIL, GIL releases) per call; (0, 0) shows how far two identical
# servers measure apart. An issue on SQLite steps about ten statements, each releasing the
# GIL two or three times.
HANDLER_COSTS = ((0, 0), (50, 0), (100, 0), (200, 0), (100, 3), (100, 10), (200, 20))


def handler_ceiling(baseline, ids, *, threads, seconds, rounds):
    """The do-nothing baseline against itself with a handler of a known cost: the ratio any
    handler of that cost can reach, before it does anything useful."""
    path, message = "rewards.v1.RewardIssuance/IssueReward", _cases(ids)[0][2]
    rows = []
    for micros, releases in HANDLER_COSTS:
        proc, target = start_baseline(threads, handler_cost=(micros, releases))
        try:
            runs, base_runs = [], []
            for _ in range(rounds):
                runs.append(h2load.run(target, path, message, key="", streams=16, seconds=seconds))
                base_runs.append(
                    h2load.run(baseline, path, message, key="", streams=16, seconds=seconds)
                )
        finally:
            proc.terminate()
            proc.wait(30)
        run = _median(runs)
        rows.append(
            {
                "handler_us": micros,
                "gil_releases": releases,
                "rps": run["rps"],
                "p99_ms": run["p99_ms"],
                **_ratios(runs, base_runs),
            }
        )
        print(
            f"handler holding the GIL {micros:>3} us, {releases:>2} releases: "
            f"{run['rps']:8.0f} req/s  p99 {run['p99_ms']:.2f} ms  ratio {rows[-1]['ratio']:.2f}"
            + _rounds_text(rows[-1]["round_ratios"]),
            flush=True,
        )
    return rows


def list_scaling(database_url, key, target, sizes, *, seconds):
    results = []
    for size in sizes:
        seed.fill_issuances(database_url, key, size)
        measured = run_load(
            target,
            "RewardIssuance",
            "ListIssuances",
            {"page_size": 50},
            concurrency=1,
            seconds=seconds,
            key=key,
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


def markdown(results) -> str:
    lines = [
        f"SQLite points: the median of {results['rounds']} rounds, ours and the baseline back "
        "to back; the ratio is the median of the rounds' ratios.",
        "",
        "| backend | RPC | streams | req/s | p50 ms | p99 ms | baseline req/s | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, rows in (("sqlite", results["sqlite"]), ("postgresql", results["postgresql"])):
        for r in rows:
            base = r.get("baseline")
            lines.append(
                f"| {backend} | {r['rpc']} | {r['streams']} | {r['ours']['rps']:.0f} | "
                f"{r['ours']['p50_ms']:.2f} | {r['ours']['p99_ms']:.2f} | "
                f"{base['rps']:.0f} | {r['ratio']:.2f} |"
                if base
                else f"| {backend} | {r['rpc']} | {r['streams']} | {r['ours']['rps']:.0f} | "
                f"{r['ours']['p50_ms']:.2f} | {r['ours']['p99_ms']:.2f} | | |"
            )
    lines += ["", "| issuances in store | ListIssuances p50 ms |", "|---|---|"]
    lines += [f"| {r['issuances']:,} | {r['p50_ms']:.2f} |" for r in results["list_scaling"]]
    lines += ["", f"AddCodes, 100,000 codes: {results['add_codes_100k_seconds']:.2f} s"]
    lines += [
        "",
        f"| RPC (SQLite, 16 streams over {WORKER_CONNECTIONS} connections) | --workers | req/s "
        "| p99 ms | baseline req/s (same workers) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['rpc']} | {r['workers']} | {r['rps']:.0f} | {r['p99_ms']:.2f} "
        f"| {r['baseline_rps']:.0f} | {r['rps'] / r['baseline_rps']:.2f} |"
        for r in results["workers"]
    ]
    lines += [
        "",
        "| the baseline's IssueReward holding the GIL for | GIL releases within | req/s | p99 ms "
        "| ratio to the plain baseline |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['handler_us']} µs | {r['gil_releases']} | {r['rps']:.0f} | {r['p99_ms']:.2f} "
        f"| {r['ratio']:.2f} |"
        for r in results["handler_ceiling"]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs per SQLite point, against the baseline"
    )
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--list-sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "REWARDS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    streams = (1, 16)
    results = {"threads": args.threads, "seconds": args.seconds, "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        baseline, baseline_target = start_baseline(args.threads)
        try:
            key = seed.program(sqlite_url)
            server, target = start_server(
                sqlite_url, Path(tmp) / "sqlite.log", "--threads", str(args.threads)
            )
            try:
                ids = seed.catalog(target, key)
                print("== SQLite, against the do-nothing baseline ==", flush=True)
                results["sqlite"] = issuance_matrix(
                    target,
                    key,
                    ids,
                    seconds=args.seconds,
                    concurrencies=streams,
                    rounds=args.rounds,
                    baseline=baseline_target,
                )
                results["add_codes_100k_seconds"] = add_codes_time(target, key, 100_000)
            finally:
                server.terminate()
                server.wait(30)
            print("== The baseline with a handler of known cost, 16 streams ==", flush=True)
            results["handler_ceiling"] = handler_ceiling(
                baseline_target, ids, threads=args.threads, seconds=args.seconds, rounds=args.rounds
            )
            print(f"== --workers, 16 streams over {WORKER_CONNECTIONS} connections ==", flush=True)
            results["workers"] = workers_effect(
                sqlite_url, key, ids, threads=args.threads, seconds=args.seconds
            )
            server, target = start_server(
                sqlite_url, Path(tmp) / "sqlite-list.log", "--threads", str(args.threads)
            )
            try:
                print("== ListIssuances as the store grows ==", flush=True)
                sizes = [int(s) for s in args.list_sizes.split(",")]
                results["list_scaling"] = list_scaling(sqlite_url, key, target, sizes, seconds=3)
            finally:
                server.terminate()
                server.wait(30)
        finally:
            baseline.terminate()
            baseline.wait(30)
        print("== PostgreSQL ==", flush=True)
        pg_key = seed.program(args.postgres)
        server, target = start_server(
            args.postgres, Path(tmp) / "pg.log", "--threads", str(args.threads)
        )
        try:
            ids = seed.catalog(target, pg_key)
            results["postgresql"] = issuance_matrix(
                target, pg_key, ids, seconds=args.seconds, concurrencies=streams
            )
        finally:
            server.terminate()
            server.wait(30)
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (ROOT / "bench" / "results.md").write_text(table + "\n")
    print()
    print(table)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
    sys.exit(0)
