"""Proto <-> domain conversions shared by the servicers."""

from datetime import UTC, datetime

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message
from rewards.v1 import catalog_pb2, common_pb2

from rewards_service.domain import rewards as rules
from rewards_service.domain.validation import Violations
from rewards_service.store import queries
from rewards_service.store.models import Asset, CodePool, Reward

# Timestamp's own valid range (0001-01-01 .. 9999-12-31).
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def timestamp_in(v: Violations, field: str, holder: Message, name: str) -> datetime | None:
    if not holder.HasField(name):
        return None
    ts: timestamp_pb2.Timestamp = getattr(holder, name)
    if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS) or not (0 <= ts.nanos < 1_000_000_000):
        v.add(field, "is not a valid timestamp")
        return None
    return ts.ToDatetime(tzinfo=UTC)


def timestamp_out(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def fields_of(message: Message) -> dict[str, object]:
    return {f.name: getattr(message, f.name) for f in message.DESCRIPTOR.fields}


def segments_in(segments) -> list[dict[str, str]]:
    return [{"segment": s.segment, "partition": s.partition} for s in segments]


def segments_out(segments: list[dict[str, str]]) -> list[common_pb2.Segment]:
    return [common_pb2.Segment(**pair) for pair in segments]


def reward_spec_in(v: Violations, msg: catalog_pb2.Reward) -> rules.RewardSpec:
    kind = msg.WhichOneof("config")
    return rules.RewardSpec(
        name=msg.name,
        description=msg.description,
        category=msg.category,
        type=msg.type,
        status=msg.status,
        config_kind=kind,
        config=fields_of(getattr(msg, kind)) if kind else {},
        redemption_type=msg.redemption_type,
        cost_asset_id=msg.cost_asset_id,
        unit_cost=msg.unit_cost,
        max_total=msg.max_total if msg.HasField("max_total") else None,
        max_per_participant=(
            msg.max_per_participant if msg.HasField("max_per_participant") else None
        ),
        limits=[
            rules.RewardLimit(
                scope=limit.scope,
                max_quantity=limit.max_quantity,
                window_seconds=limit.window.seconds,
            )
            for limit in msg.limits
        ],
        available_from=timestamp_in(v, "reward.available_from", msg, "available_from"),
        available_until=timestamp_in(v, "reward.available_until", msg, "available_until"),
        segments=segments_in(msg.segments),
        metadata=dict(msg.metadata),
    )


def config_out(kind: str, config: dict[str, object]) -> Message:
    message_type = type(getattr(catalog_pb2.Reward(), kind))
    return message_type(**config)


def reward_out(row: Reward) -> catalog_pb2.Reward:
    msg = catalog_pb2.Reward(
        id=row.id,
        name=row.name,
        description=row.description,
        category=row.category,
        type=row.type,
        status=row.status,
        redemption_type=row.redemption_type,
        cost_asset_id=row.cost_asset_id or "",
        unit_cost=row.unit_cost or "",
        max_total=row.max_total,
        max_per_participant=row.max_per_participant,
        limits=[
            catalog_pb2.RewardLimit(
                scope=limit["scope"],
                max_quantity=limit["max_quantity"],
                window=duration_pb2.Duration(seconds=limit["window_seconds"]),
            )
            for limit in row.limits
        ],
        available_from=timestamp_out(row.available_from),
        available_until=timestamp_out(row.available_until),
        segments=segments_out(row.segments),
        metadata=row.metadata,
        redeemed_count=row.redeemed_count,
        created_at=timestamp_out(row.created_at),
        updated_at=timestamp_out(row.updated_at),
        etag=queries.etag(row),
    )
    kind = rules.CONFIG_FOR_TYPE.get(row.type)
    if kind:
        getattr(msg, kind).CopyFrom(config_out(kind, row.config))
    return msg


def asset_out(row: Asset) -> catalog_pb2.Asset:
    return catalog_pb2.Asset(
        id=row.id,
        code=row.code,
        name=row.name,
        scale=row.scale,
        created_at=timestamp_out(row.created_at),
    )


def code_pool_out(row: CodePool) -> catalog_pb2.CodePool:
    return catalog_pb2.CodePool(
        id=row.id,
        name=row.name,
        description=row.description,
        total_count=row.total_count,
        available_count=row.available_count,
        issued_count=row.issued_count,
        created_at=timestamp_out(row.created_at),
    )
