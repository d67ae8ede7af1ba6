"""Builders for the resources most tests need, through the real API."""

import uuid

from google.protobuf import duration_pb2
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2

from tests.helpers import Api


def asset(api: Api, code: str = "POINTS", scale: int = 2) -> catalog_pb2.Asset:
    return api.catalog.CreateAsset(
        catalog_pb2.CreateAssetRequest(asset=catalog_pb2.Asset(code=code, name=code, scale=scale))
    )


def participant(
    api: Api,
    external_id: str | None = None,
    *,
    email: str = "",
    mobile: str = "",
    segments: list[tuple[str, str]] = (),
) -> participants_pb2.Participant:
    return api.participants.UpsertParticipant(
        participants_pb2.UpsertParticipantRequest(
            participant=participants_pb2.Participant(
                external_id=external_id or f"user-{uuid.uuid4().hex[:8]}",
                email=email,
                mobile=mobile,
                segments=[common_pb2.Segment(segment=s, partition=p) for s, p in segments],
            )
        )
    )


def reward(api: Api, **fields) -> catalog_pb2.Reward:
    """A product reward unless `fields` say otherwise (e.g. points=PointsConfig(...))."""
    fields.setdefault("name", "Reward")
    if not any(
        k in fields
        for k in ("points", "competition_entry", "unique_coupon", "non_unique_coupon", "product")
    ):
        fields["product"] = catalog_pb2.ProductConfig(product_id="sku-1")
    kinds = {
        "points": common_pb2.REWARD_TYPE_POINTS,
        "product": common_pb2.REWARD_TYPE_PRODUCT,
        "competition_entry": common_pb2.REWARD_TYPE_COMPETITION_ENTRY,
        "unique_coupon": common_pb2.REWARD_TYPE_UNIQUE_COUPON,
        "non_unique_coupon": common_pb2.REWARD_TYPE_NON_UNIQUE_COUPON,
    }
    fields.setdefault("type", next(v for k, v in kinds.items() if k in fields))
    if "segments" in fields:
        fields["segments"] = [
            common_pb2.Segment(segment=s, partition=p) for s, p in fields["segments"]
        ]
    if "limits" in fields:
        fields["limits"] = [
            catalog_pb2.RewardLimit(
                scope=scope, max_quantity=n, window=duration_pb2.Duration(seconds=seconds)
            )
            for scope, n, seconds in fields["limits"]
        ]
    return api.catalog.CreateReward(
        catalog_pb2.CreateRewardRequest(reward=catalog_pb2.Reward(**fields))
    )


def code_pool(api: Api, codes: list[str]) -> catalog_pb2.CodePool:
    pool = api.catalog.CreateCodePool(
        catalog_pb2.CreateCodePoolRequest(code_pool=catalog_pb2.CodePool(name="pool"))
    )
    if codes:
        api.catalog.AddCodes(catalog_pb2.AddCodesRequest(code_pool_id=pool.id, codes=codes))
    return pool


def ref(participant_id: str = "", **kwargs) -> common_pb2.ParticipantRef:
    return (
        common_pb2.ParticipantRef(id=participant_id)
        if participant_id
        else common_pb2.ParticipantRef(**kwargs)
    )


def issue(
    api: Api, reward_id: str, participant_id: str, **fields
) -> issuance_pb2.IssueRewardResponse:
    return api.issuance.IssueReward(
        issuance_pb2.IssueRewardRequest(
            reward_id=reward_id, participant=ref(participant_id), **fields
        )
    )


def fund(
    api: Api, participant_id: str, asset_id: str, delta: str
) -> participants_pb2.AdjustBalanceResponse:
    return api.participants.AdjustBalance(
        participants_pb2.AdjustBalanceRequest(
            participant=ref(participant_id), asset_id=asset_id, delta=delta, reason="test funds"
        )
    )


def balance(api: Api, participant_id: str, asset_id: str) -> participants_pb2.Balance:
    return api.participants.GetBalance(
        participants_pb2.GetBalanceRequest(participant=ref(participant_id), asset_id=asset_id)
    )
