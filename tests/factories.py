"""Builders for the resources most tests need, through the real API."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from google.protobuf import duration_pb2
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2

from tests.helpers import Api, RpcFailure, expect_failure


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


# Reads and state snapshots used to prove that a call changed (or did not change) anything.


def get_reward(api: Api, reward_id: str) -> catalog_pb2.Reward:
    return api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=reward_id))


def get_pool(api: Api, pool_id: str) -> catalog_pb2.CodePool:
    return api.catalog.GetCodePool(catalog_pb2.GetCodePoolRequest(id=pool_id))


def get_issuance(api: Api, issuance_id: str) -> issuance_pb2.Issuance:
    return api.issuance.GetIssuance(issuance_pb2.GetIssuanceRequest(id=issuance_id))


def ledger_entries(
    api: Api, participant_id: str, asset_id: str = ""
) -> list[participants_pb2.LedgerEntry]:
    """Every ledger entry of a participant (of one asset, or all), newest first, all pages."""
    entries: list[participants_pb2.LedgerEntry] = []
    token = ""
    while True:
        page = api.participants.ListLedgerEntries(
            participants_pb2.ListLedgerEntriesRequest(
                participant=ref(participant_id), asset_id=asset_id, page_size=1000, page_token=token
            )
        )
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            return entries


def all_issuances(api: Api, **filters) -> list[issuance_pb2.Issuance]:
    """Every issuance of the program matching `filters`, newest first, all pages."""
    found: list[issuance_pb2.Issuance] = []
    token = ""
    while True:
        page = api.issuance.ListIssuances(
            issuance_pb2.ListIssuancesRequest(page_size=1000, page_token=token, **filters)
        )
        found.extend(page.issuances)
        token = page.next_page_token
        if not token:
            return found


def assert_ledger_consistent(api: Api, participant_id: str, asset_id: str) -> None:
    """available == sum of every entry's delta == lifetime_earned - lifetime_spent, and >= 0;
    each entry's balance_after is the running sum up to it."""
    entries = ledger_entries(api, participant_id, asset_id)
    got = balance(api, participant_id, asset_id)
    total = sum((Decimal(e.delta) for e in entries), Decimal(0))
    assert Decimal(got.available) == total, (got, [e.delta for e in entries])
    assert total == Decimal(got.lifetime_earned) - Decimal(got.lifetime_spent), got
    assert total >= 0, got
    running = Decimal(0)
    for entry in reversed(entries):  # oldest first
        running += Decimal(entry.delta)
        assert Decimal(entry.balance_after) == running, entry
        assert Decimal(entry.balance_after) >= 0, entry


def snapshot(
    api: Api,
    *,
    rewards: tuple[str, ...] = (),
    pools: tuple[str, ...] = (),
    balances: tuple[tuple[str, str], ...] = (),
) -> dict[str, object]:
    """What a refused call must leave as it was: rewards' redeemed_count and status, pools'
    counts, balances and ledger entries of (participant, asset) pairs, and every issuance."""
    state: dict[str, object] = {"issuances": [i.id for i in all_issuances(api)]}
    for reward_id in rewards:
        got = get_reward(api, reward_id)
        state[reward_id] = (got.redeemed_count, got.status, got.etag)
    for pool_id in pools:
        got = get_pool(api, pool_id)
        state[pool_id] = (got.total_count, got.available_count, got.issued_count)
    for participant_id, asset_id in balances:
        got = balance(api, participant_id, asset_id)
        state[f"{participant_id}/{asset_id}"] = (
            got.available,
            got.lifetime_earned,
            got.lifetime_spent,
            [e.id for e in ledger_entries(api, participant_id, asset_id)],
        )
    return state


def refused(
    api: Api,
    call,
    *,
    rewards: tuple[str, ...] = (),
    pools: tuple[str, ...] = (),
    balances: tuple[tuple[str, str], ...] = (),
) -> RpcFailure:
    """Run `call()`, which must fail, and prove it changed nothing `snapshot` can see."""
    before = snapshot(api, rewards=rewards, pools=pools, balances=balances)
    failure = expect_failure(call)
    assert failure.domain == "rewards.v1"
    assert snapshot(api, rewards=rewards, pools=pools, balances=balances) == before
    return failure


def grant(
    api: Api,
    participant_id: str,
    client_reference: str,
    *,
    amount: str = "10.00",
    action_code: str = "survey.completed",
    **fields,
) -> issuance_pb2.GrantCustomRewardResponse:
    return api.issuance.GrantCustomReward(
        issuance_pb2.GrantCustomRewardRequest(
            participant=ref(participant_id),
            amount=amount,
            action_code=action_code,
            client_reference=client_reference,
            **fields,
        )
    )


def revoke(api: Api, issuance_id: str, reason: str = "") -> issuance_pb2.Issuance:
    return api.issuance.RevokeIssuance(
        issuance_pb2.RevokeIssuanceRequest(id=issuance_id, reason=reason)
    )


def claim(api: Api, issuance_id: str) -> issuance_pb2.Issuance:
    return api.issuance.ClaimIssuance(issuance_pb2.ClaimIssuanceRequest(id=issuance_id))


@dataclass
class Scene:
    """A program with money in it: a POINTS asset (scale 2), a participant holding 100.00, a
    unique-coupon reward costing 10.00 a code drawn from a pool of 3 (up to 10 codes a
    participant), one of them issued."""

    api: Api
    points: catalog_pb2.Asset
    user: participants_pb2.Participant
    pool: catalog_pb2.CodePool
    coupon: catalog_pb2.Reward
    first: issuance_pb2.Issuance

    def priced(self, **fields) -> catalog_pb2.Reward:
        """A reward (product unless `fields` say otherwise) costing 10.00 POINTS a unit."""
        fields.setdefault("cost_asset_id", self.points.id)
        fields.setdefault("unit_cost", "10")
        return reward(self.api, **fields)

    def watched(
        self, *reward_ids: str, balances: tuple[tuple[str, str], ...] = ()
    ) -> dict[str, tuple]:
        """`refused` keyword arguments covering the scene, the given rewards and balances."""
        return {
            "rewards": (self.coupon.id, *reward_ids),
            "pools": (self.pool.id,),
            "balances": ((self.user.id, self.points.id), *balances),
        }


def scene(api: Api) -> Scene:
    points = asset(api)
    user = participant(api)
    fund(api, user.id, points.id, "100.00")
    pool = code_pool(api, ["CODE-1", "CODE-2", "CODE-3"])
    coupon = reward(
        api,
        unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id),
        cost_asset_id=points.id,
        unit_cost="10",
        max_per_participant=10,
    )
    first = issue(api, coupon.id, user.id, request_id="scene-first").issuance
    return Scene(api, points, user, pool, coupon, first)
