"""The ceiling for durable writes: a minimal IssueReward built like ours (grpc.aio in front, one
writer thread per process that group-commits the queued calls and answers only after COMMIT)
doing the five rows of an issue and nothing else: the idempotency row (unique program and
request_id), the reward's conditional counter update, the issuance row, the balance upsert and
the ledger row. SQLite in WAL mode with synchronous=NORMAL, as ours. Its schema is its own.
Prints its port, then serves until killed.

    python -m bench.durable --database /tmp/durable.db --reward rew_1 [--reward rew_2 ...]
"""

import argparse
import asyncio
import os
import sqlite3
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import grpc
from rewards.v1 import common_pb2, issuance_pb2, issuance_pb2_grpc

from rewards_service.server import MAX_MESSAGE_BYTES

# As ours: bounds how long one commit keeps the callers in its group waiting.
MAX_GROUP = 16
PROGRAM = "prg_durable"
ASSET = "POINTS"

SCHEMA = """
CREATE TABLE IF NOT EXISTS reward (
    id TEXT PRIMARY KEY, amount INTEGER NOT NULL,
    redeemed INTEGER NOT NULL DEFAULT 0, max_total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    program TEXT NOT NULL, request_id TEXT NOT NULL, issuance_id TEXT NOT NULL,
    PRIMARY KEY (program, request_id));
CREATE TABLE IF NOT EXISTS issuance (
    id TEXT PRIMARY KEY, program TEXT NOT NULL, reward_id TEXT NOT NULL,
    participant_id TEXT NOT NULL, request_id TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS balance (
    program TEXT NOT NULL, participant_id TEXT NOT NULL, asset TEXT NOT NULL,
    amount INTEGER NOT NULL, PRIMARY KEY (program, participant_id, asset));
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY, issuance_id TEXT NOT NULL, participant_id TEXT NOT NULL,
    asset TEXT NOT NULL, delta INTEGER NOT NULL, created_at REAL NOT NULL);
"""


class Refused(Exception):
    """The reward is unknown or its cap is reached: this call alone rolls back."""


@dataclass(frozen=True)
class Issued:
    id: str
    reward_id: str
    participant_id: str
    request_id: str
    replay: bool


def _issue(db: sqlite3.Connection, reward_id: str, participant_id: str, request_id: str):
    issuance_id = "iss_" + uuid.uuid4().hex
    try:
        db.execute(
            "INSERT INTO idempotency (program, request_id, issuance_id) VALUES (?, ?, ?)",
            (PROGRAM, request_id, issuance_id),
        )
    except sqlite3.IntegrityError:
        row = db.execute(
            "SELECT i.id, i.reward_id, i.participant_id FROM idempotency k"
            " JOIN issuance i ON i.id = k.issuance_id WHERE k.program = ? AND k.request_id = ?",
            (PROGRAM, request_id),
        ).fetchone()
        return Issued(row[0], row[1], row[2], request_id, replay=True)
    counted = db.execute(
        "UPDATE reward SET redeemed = redeemed + 1 WHERE id = ? AND redeemed + 1 <= max_total"
        " RETURNING amount",
        (reward_id,),
    ).fetchone()
    if counted is None:
        raise Refused(f"reward {reward_id} is unknown or exhausted")
    now = time.time()
    db.execute(
        "INSERT INTO issuance (id, program, reward_id, participant_id, request_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (issuance_id, PROGRAM, reward_id, participant_id, request_id, now),
    )
    db.execute(
        "INSERT INTO balance (program, participant_id, asset, amount) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (program, participant_id, asset) DO UPDATE"
        " SET amount = amount + excluded.amount",
        (PROGRAM, participant_id, ASSET, counted[0]),
    )
    db.execute(
        "INSERT INTO ledger (issuance_id, participant_id, asset, delta, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (issuance_id, participant_id, ASSET, counted[0], now),
    )
    return Issued(issuance_id, reward_id, participant_id, request_id, replay=False)


def _settle(future: asyncio.Future, outcome) -> None:
    if future.done():  # the caller went away
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Writer:
    """One thread owns the connection; each call runs in its own savepoint, the group commits
    once, and only then are the callers' futures resolved (on their loop)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: list = []
        self._ready = threading.Condition()
        threading.Thread(target=self._write_forever, name="writer", daemon=True).start()

    def submit(self, reward_id: str, participant_id: str, request_id: str) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._ready:
            self._queue.append((loop, future, (reward_id, participant_id, request_id)))
            self._ready.notify()
        return future

    def _write_forever(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=wal")
        db.execute("PRAGMA synchronous=NORMAL")
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                group = self._queue[:MAX_GROUP]
                del self._queue[:MAX_GROUP]
            outcomes: list = []
            try:
                db.execute("BEGIN IMMEDIATE")
                for _loop, _future, args in group:
                    db.execute("SAVEPOINT call")
                    try:
                        outcomes.append(_issue(db, *args))
                    except (Refused, sqlite3.IntegrityError) as exc:
                        db.execute("ROLLBACK TO call")
                        outcomes.append(exc)
                    db.execute("RELEASE call")
                db.execute("COMMIT")
            except sqlite3.Error as exc:  # nothing of the group is acknowledged
                if db.in_transaction:
                    db.execute("ROLLBACK")
                outcomes = [exc] * len(group)
            for (loop, future, _args), outcome in zip(group, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)


class DurableIssuance(issuance_pb2_grpc.RewardIssuanceServicer):
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    async def IssueReward(self, request, context):
        try:
            issued = await self._writer.submit(
                request.reward_id,
                request.participant.id,
                request.request_id or "auto-" + uuid.uuid4().hex,
            )
        except Refused as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return issuance_pb2.IssueRewardResponse(
            issuance=issuance_pb2.Issuance(
                id=issued.id,
                reward_id=issued.reward_id,
                participant_id=issued.participant_id,
                type=common_pb2.REWARD_TYPE_POINTS,
                status=common_pb2.ISSUANCE_STATUS_CONFIRMED,
                quantity=1,
                request_id=issued.request_id,
            ),
            idempotent_replay=issued.replay,
        )


def create(path: str, rewards: list[str]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=wal")
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT OR IGNORE INTO reward (id, amount, max_total) VALUES (?, 10, ?)",
        [(reward, 2**62) for reward in rewards],
    )
    db.close()


async def serve(path: str, listen: str) -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    issuance_pb2_grpc.add_RewardIssuanceServicer_to_server(DurableIssuance(Writer(path)), server)
    port = server.add_insecure_port(listen)
    await server.start()
    os.write(sys.stdout.fileno(), f"{port}\n".encode())
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a SQLite file of its own")
    parser.add_argument("--reward", action="append", default=[], help="reward ids to create")
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()
    create(args.database, args.reward)
    asyncio.run(serve(args.database, args.listen))


if __name__ == "__main__":
    main()
