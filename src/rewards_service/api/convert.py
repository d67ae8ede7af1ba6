"""Proto <-> domain conversions shared by the servicers."""

from datetime import UTC, datetime

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message
from rewards.v1 import catalog_pb2, common_pb2, issuance_pb2, participants_pb2

from rewards_service.auth import caller, check_admin_flag
from rewards_service.domain import rewards as rules
from rewards_service.domain.errors import FieldViolation, InvalidArgument
from rewards_service.domain.issuance import IssueRequest
from rewards_service.domain.pagination import PageRequest, parse_page
from rewards_service.domain.participants import ParticipantRef
from rewards_service.domain.validation import Violations, format_amount
from rewards_service.services.paging import page_token_secret
from rewards_service.services.participants import BalanceView
from rewards_service.services.records import (
    Asset,
    CodePool,
    Issuance,
    LedgerEntry,
    Participant,
    Reward,
    memoized,
)
from rewards_service.services.scaled import Scaled

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


def page_in(v: Violations, request: Message, filters: dict[str, object]) -> PageRequest:
    """page_size and page_token of a List request; its token must be bound to `filters` and
    to the list it came from (a ListGroups token would page ListAssets by a group's id)."""
    bound = {"list": request.DESCRIPTOR.full_name, **filters}
    return parse_page(v, request.page_size, request.page_token, bound, secret=page_token_secret())


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
        conversion_ratio=msg.conversion_ratio,
        cost_rounding=msg.cost_rounding,
        payment_options=[_option_in(option) for option in msg.payment_options],
        redemption_unit=msg.redemption_unit,
    )


def _option_in(option: catalog_pb2.PaymentOption) -> dict[str, str]:
    """Only the fields set, so a stored option reads back as it was written."""
    return {f.name: value for f, value in option.ListFields()}


def config_out(kind: str, config: dict[str, object]) -> Message:
    message_type = type(getattr(catalog_pb2.Reward(), kind))
    return message_type(**config)


@memoized
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
        etag=rules.etag(row.version),
        conversion_ratio=row.conversion_ratio or "",
        cost_rounding=row.cost_rounding,
        payment_options=[catalog_pb2.PaymentOption(**option) for option in row.payment_options],
        redemption_unit=row.redemption_unit,
        program_id=row.program_id,
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
        low_stock_threshold=row.low_stock_threshold or 0,
        expired_count=row.expired_count,
    )


def ref_in(holder: Message, name: str = "participant") -> ParticipantRef | None:
    if not holder.HasField(name):
        return None
    ref = getattr(holder, name)
    kind = ref.WhichOneof("ref")
    return ParticipantRef(kind, getattr(ref, kind)) if kind else None


def participant_out(row: Participant) -> participants_pb2.Participant:
    return participants_pb2.Participant(
        id=row.id,
        external_id=row.external_id,
        email=row.email or "",
        mobile=row.mobile or "",
        segments=segments_out(row.segments),
        created_at=timestamp_out(row.created_at),
        updated_at=timestamp_out(row.updated_at),
    )


def balance_out(view: BalanceView) -> participants_pb2.Balance:
    return participants_pb2.Balance(
        participant_id=view.participant_id,
        asset_id=view.asset_id,
        available=format_amount(view.available, view.scale),
        lifetime_earned=format_amount(view.lifetime_earned, view.scale),
        lifetime_spent=format_amount(view.lifetime_spent, view.scale),
    )


def ledger_entry_out(found: Scaled[LedgerEntry]) -> participants_pb2.LedgerEntry:
    row = found.row
    scale = found.scale(row.asset_id)
    return participants_pb2.LedgerEntry(
        id=row.id,
        participant_id=row.participant_id,
        asset_id=row.asset_id,
        delta=format_amount(row.delta, scale),
        balance_after=format_amount(row.balance_after, scale),
        kind=row.kind,
        issuance_id=row.issuance_id or "",
        reason=row.reason,
        created_at=timestamp_out(row.created_at),
    )


def issue_request_in(v: Violations, msg: issuance_pb2.IssueRewardRequest) -> IssueRequest:
    """The request as the caller's: a manual grant needs an admin key (PERMISSION_DENIED)."""
    who = caller()
    if msg.manual:
        check_admin_flag(who.role, "manual")
    return IssueRequest(
        reward_id=msg.reward_id,
        participant=ref_in(msg),
        quantity=msg.quantity,
        amount=msg.amount,
        request_id=msg.request_id,
        transaction_number=msg.transaction_number,
        notes=msg.notes,
        metadata=dict(msg.metadata),
        custom_fields=dict(msg.custom_fields),
        fulfillment_status=msg.fulfillment_status,
        event_time=timestamp_in(v, "event_time", msg, "event_time"),
        owner_type=msg.owner.owner_type,
        owner_id=msg.owner.owner_id,
        payment_option_id=msg.payment_option_id,
        payment_method=msg.payment_method,
        manual=msg.manual,
        source_event_id=msg.source_event_id,
        issuer_key_id=who.key_id,
        issuer_key_name=who.key_name,
        pay_from=msg.pay_from,
    )


def _redemption_out(row: Issuance, cost_scale: int) -> issuance_pb2.RedemptionDetails | None:
    details = row.redemption
    if not details:
        return None
    tender = details.get("tender")
    return issuance_pb2.RedemptionDetails(
        payment_mode=details["payment_mode"],
        payment_option_id=details["payment_option_id"],
        conversion_ratio=details["conversion_ratio"],
        redemption_value=details["redemption_value"],
        redemption_unit=details["redemption_unit"],
        points=_asset_amount(row.cost_asset_id, row.cost_amount, cost_scale),
        tender=issuance_pb2.Tender(**tender) if tender else None,
    )


def _asset_amount(asset_id: str | None, units: int, scale: int) -> common_pb2.AssetAmount | None:
    if not asset_id:
        return None
    return common_pb2.AssetAmount(asset_id=asset_id, amount=format_amount(units, scale))


def _from_iso(text: str) -> timestamp_pb2.Timestamp | None:
    return timestamp_out(datetime.fromisoformat(text))


def issuance_out(found: Scaled[Issuance]) -> issuance_pb2.Issuance:
    row = found.row
    return _issuance_out(row, found.scale(row.cost_asset_id), found.scale(row.credit_asset_id))


@memoized
def _issuance_out(row: Issuance, cost_scale: int, credit_scale: int) -> issuance_pb2.Issuance:
    snapshot = issuance_pb2.RewardSnapshot(name=row.reward_snapshot.get("name", ""))
    kind = row.reward_snapshot.get("kind")
    if kind:
        getattr(snapshot, kind).CopyFrom(config_out(kind, row.reward_snapshot["config"]))
    return issuance_pb2.Issuance(
        id=row.id,
        reward_id=row.reward_id or "",
        participant_id=row.participant_id,
        type=row.type,
        status=row.status,
        quantity=row.quantity,
        amount=row.amount,
        cost=_asset_amount(row.cost_asset_id, row.cost_amount, cost_scale),
        credit=_asset_amount(row.credit_asset_id, row.credit_amount, credit_scale),
        coupon_code=row.coupon_code,
        reward_snapshot=snapshot,
        action_code=row.action_code,
        request_id=row.request_id or "",
        transaction_number=row.transaction_number,
        notes=row.notes,
        metadata=row.metadata,
        custom_fields=row.custom_fields,
        owner=common_pb2.Owner(owner_type=row.owner_type, owner_id=row.owner_id),
        fulfillment_status=row.fulfillment_status,
        fulfillment_history=[
            issuance_pb2.FulfillmentEvent(
                status=event["status"], note=event["note"], created_at=_from_iso(event["at"])
            )
            for event in row.fulfillment_history
        ],
        event_time=timestamp_out(row.event_time),
        issued_at=timestamp_out(row.issued_at),
        claimed_at=timestamp_out(row.claimed_at),
        revoked_at=timestamp_out(row.revoked_at),
        revoke_reason=row.revoke_reason,
        redemption_details=_redemption_out(row, cost_scale),
        manual=bool(row.manual),
        issuer_key_id=row.issuer_key_id or "",
        issuer_key_name=row.issuer_key_name,
        source_event_id=row.source_event_id or "",
        program_id=row.program_id,
        code_expires_at=timestamp_out(row.code_expires_at),
        cost_group_id=row.cost_group_id or "",
    )


def _nul_fields(message: Message, prefix: str = "") -> list[str]:
    """Paths of the text fields holding a NUL character."""
    found = []
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            found += [f"{path}[{k}]" for k, v in value.items() if "\x00" in f"{k}{v}"]
        elif field.message_type is not None:
            items = value if field.is_repeated else [value]
            for i, item in enumerate(items):
                found += _nul_fields(item, f"{path}[{i}]." if len(items) > 1 else f"{path}.")
        elif field.type == field.TYPE_STRING:
            texts = value if field.is_repeated else [value]
            found += [path for text in texts if "\x00" in text][:1]
    return found


def refuse_nul(request: Message) -> None:
    """PostgreSQL text cannot hold NUL, so no backend takes it: the same answer everywhere."""
    paths = _nul_fields(request)
    if paths:
        raise InvalidArgument(
            "Text fields must not contain NUL characters.",
            violations=tuple(
                FieldViolation(path, "must not contain NUL (0x00) characters") for path in paths
            ),
        )
