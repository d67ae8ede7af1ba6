"""What the transport sees of the store: the record types services hand back. The api layer
imports these from here, never from the store, so that the store can change behind this list.
Answers are built from what the use cases return (services/scaled.py: each record with the
scales of its assets); nothing here looks anything up for them.

Beside the record types, three things the transport needs that are not answers' content:
- session: the connection of one call. The transport decides which thread runs a call, so
  it opens the call's connection there; it reads nothing.
- change_token: whether anything was committed since (api/answers.py reuses a whole answer
  only while nothing was). Asked before and after a call, never while building its answer.
- memoized: what is built from a row, kept with the row as it was read; it asks the store
  nothing, and rows changed since they were read are built afresh.
"""

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
    "change_token",
    "memoized",
    "session",
]
