"""What the transport sees of the store: the record types services hand back, and the few
questions the answer-building code may ask about them. The api layer imports these from
here, never from the store, so that the store can change behind this list."""

from rewards_service.store.db import change_token, session
from rewards_service.store.fast import memoized
from rewards_service.store.models import (
    Asset,
    CodePool,
    CustomFieldDef,
    FulfillmentStatusDef,
    GroupLedgerEntry,
    GroupMember,
    Issuance,
    LedgerEntry,
    Participant,
    ParticipantGroup,
    Reward,
)
from rewards_service.store.queries import asset_scale

__all__ = [
    "Asset",
    "CodePool",
    "CustomFieldDef",
    "FulfillmentStatusDef",
    "GroupLedgerEntry",
    "GroupMember",
    "Issuance",
    "LedgerEntry",
    "Participant",
    "ParticipantGroup",
    "Reward",
    "asset_scale",
    "change_token",
    "memoized",
    "session",
]
