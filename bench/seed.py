"""Bench fixtures: a program with a points reward, a participant, and bulk issuances."""

import uuid
from pathlib import Path

import grpc
import grpc_tools
from rewards.v1 import (
    catalog_pb2,
    catalog_pb2_grpc,
    common_pb2,
    issuance_pb2,
    issuance_pb2_grpc,
    participants_pb2,
    participants_pb2_grpc,
)

from rewards_service.domain.ids import new_id
from rewards_service.services import programs
from rewards_service.store.db import bind, database, open_database, session
from rewards_service.store.migrations import migrate
from rewards_service.store.models import Issuance, Participant, Reward


def wkt_include() -> str:
    return str(Path(grpc_tools.__file__).parent / "_proto")


def _open(database_url: str) -> None:
    bind(open_database(database_url, pool_size=2))
    migrate()


def program(database_url: str) -> str:
    _open(database_url)
    with session():
        return programs.create_program(f"bench-{uuid.uuid4().hex[:6]}").api_key


def catalog(target: str, key: str) -> dict[str, str]:
    channel = grpc.insecure_channel(target)
    md = (("authorization", f"Bearer {key}"),)
    cat = catalog_pb2_grpc.RewardCatalogStub(channel)
    asset = cat.CreateAsset(
        catalog_pb2.CreateAssetRequest(asset=catalog_pb2.Asset(code="POINTS", name="P", scale=0)),
        metadata=md,
    )
    reward = cat.CreateReward(
        catalog_pb2.CreateRewardRequest(
            reward=catalog_pb2.Reward(
                name="10 points",
                type=common_pb2.REWARD_TYPE_POINTS,
                points=catalog_pb2.PointsConfig(asset_id=asset.id, amount="10"),
            )
        ),
        metadata=md,
    )
    person = participants_pb2_grpc.ParticipantsStub(channel).UpsertParticipant(
        participants_pb2.UpsertParticipantRequest(
            participant=participants_pb2.Participant(external_id="bench-user")
        ),
        metadata=md,
    )
    replay_id = f"replay-{uuid.uuid4().hex[:8]}"
    issuance_pb2_grpc.RewardIssuanceStub(channel).IssueReward(
        issuance_pb2.IssueRewardRequest(
            reward_id=reward.id,
            participant=common_pb2.ParticipantRef(id=person.id),
            request_id=replay_id,
        ),
        metadata=md,
    )
    channel.close()
    return {"reward_id": reward.id, "participant_id": person.id, "replay_request_id": replay_id}


def fill_issuances(database_url: str, key: str, total: int) -> None:
    """Insert issuances directly until the key's program holds `total` of them."""
    _open(database_url)
    with session():
        caller = programs.authenticate(key)
        reward = Reward.select().where(Reward.program == caller.program_id).first()
        person = Participant.select().where(Participant.program == caller.program_id).first()
        have = Issuance.select().where(Issuance.program == caller.program_id).count()
        batch = []
        for _ in range(total - have):
            batch.append(
                {
                    "id": new_id("iss"),
                    "program": caller.program_id,
                    "reward": reward.id,
                    "participant": person.id,
                    "type": reward.type,
                    "status": common_pb2.ISSUANCE_STATUS_CONFIRMED,
                }
            )
            if len(batch) == 5000:
                with database.atomic():
                    Issuance.insert_many(batch).execute()
                batch = []
        if batch:
            with database.atomic():
                Issuance.insert_many(batch).execute()
