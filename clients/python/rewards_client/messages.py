"""Builders for request pieces: participant refs, request ids, decimals, times and masks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

from google.protobuf import field_mask_pb2, timestamp_pb2
from google.protobuf.message import Message
from rewards.v1 import common_pb2, issuance_pb2, participants_pb2

_M = TypeVar("_M", bound=Message)

ParticipantLike: TypeAlias = common_pb2.ParticipantRef | participants_pb2.Participant
DecimalLike: TypeAlias = str | Decimal | int
TimeLike: TypeAlias = datetime | timestamp_pb2.Timestamp
MaskLike: TypeAlias = field_mask_pb2.FieldMask | Iterable[str]


def new_request_id() -> str:
    """A fresh request id (a random UUID), as the SDK makes when the caller gives none."""
    return str(uuid.uuid4())


def ref(
    *,
    id: str | None = None,
    external_id: str | None = None,
    email: str | None = None,
    mobile: str | None = None,
) -> common_pb2.ParticipantRef:
    """A ParticipantRef by exactly one identifier: ref(external_id="u1")."""
    given = {
        k: v
        for k, v in {"id": id, "external_id": external_id, "email": email, "mobile": mobile}.items()
        if v is not None
    }
    if len(given) != 1:
        raise ValueError("name exactly one of id, external_id, email or mobile")
    return common_pb2.ParticipantRef(**given)


def to_ref(participant: ParticipantLike) -> common_pb2.ParticipantRef:
    """A ParticipantRef as is; a Participant by its id (or external_id if it has no id yet)."""
    if isinstance(participant, common_pb2.ParticipantRef):
        return participant
    if isinstance(participant, participants_pb2.Participant):
        if participant.id:
            return common_pb2.ParticipantRef(id=participant.id)
        return common_pb2.ParticipantRef(external_id=participant.external_id)
    raise TypeError(
        f"expected a ParticipantRef or Participant, got {type(participant).__name__}; "
        'use ref(external_id="...") and friends'
    )


def decimal_str(value: DecimalLike) -> str:
    """A decimal string for the wire. Floats are refused: they cannot hold 0.1 exactly."""
    if isinstance(value, bool | float):
        raise TypeError("pass decimal amounts as str or Decimal, never float")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def timestamp(value: TimeLike | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp from a datetime (naive datetimes are taken as UTC)."""
    if value is None or isinstance(value, timestamp_pb2.Timestamp):
        return value
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def field_mask(paths: MaskLike) -> field_mask_pb2.FieldMask:
    """A FieldMask from paths: a FieldMask as is, "name,description", or ["name", ...]."""
    if isinstance(paths, field_mask_pb2.FieldMask):
        return paths
    if isinstance(paths, str):
        paths = paths.split(",")
    return field_mask_pb2.FieldMask(paths=[p.strip() for p in paths])


def populated_paths(message: Message, skip: Iterable[str]) -> list[str]:
    """AIP-134's implied mask: every populated top-level field except `skip`."""
    skipped = set(skip)
    return [f.name for f, _ in message.ListFields() if f.name not in skipped]


def resource(cls: type[_M], message: _M | None, fields: Mapping[str, Any]) -> _M:
    """The resource of a Create/Update/Upsert call: a message, or keyword fields for one."""
    if message is not None and fields:
        raise TypeError(f"pass a {cls.__name__} or its fields as keywords, not both")
    if message is None:
        return cls(**fields)
    if not isinstance(message, cls):
        raise TypeError(f"expected {cls.__name__}, got {type(message).__name__}")
    return message


def issue_request(
    reward_id: str,
    participant: ParticipantLike,
    *,
    quantity: int = 0,
    amount: DecimalLike = "",
    request_id: str = "",
    transaction_number: str = "",
    notes: str = "",
    metadata: Mapping[str, str] | None = None,
    custom_fields: Mapping[str, str] | None = None,
    fulfillment_status: str = "",
    event_time: TimeLike | None = None,
    owner: common_pb2.Owner | None = None,
    payment_option_id: str = "",
    payment_method: str = "",
    manual: bool = False,
    source_event_id: str = "",
    pay_from: int = 0,
) -> issuance_pb2.IssueRewardRequest:
    """One IssueRewardRequest, e.g. an item of batch_issue_rewards."""
    return issuance_pb2.IssueRewardRequest(
        reward_id=reward_id,
        participant=to_ref(participant),
        quantity=quantity,
        amount=decimal_str(amount),
        request_id=request_id,
        transaction_number=transaction_number,
        notes=notes,
        metadata=metadata,
        custom_fields=custom_fields,
        fulfillment_status=fulfillment_status,
        event_time=timestamp(event_time),
        owner=owner,
        payment_option_id=payment_option_id,
        payment_method=payment_method,
        manual=manual,
        source_event_id=source_event_id,
        pay_from=pay_from,  # type: ignore[arg-type]
    )
