"""Pure rules of issuances: what identifies a call for idempotency, and the status machine."""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from rewards.v1 import common_pb2 as common
from rewards.v1 import groups_pb2

from rewards_service.domain.errors import FailedPrecondition
from rewards_service.domain.participants import ParticipantRef, check_ref
from rewards_service.domain.validation import (
    Violations,
    check_action_code,
    check_client_reference,
    check_label,
    check_request_id,
    check_string_map,
    check_text,
    one_of,
    parse_decimal,
)

IS = common.IssuanceStatus
MAX_BATCH = 500
# GrantCustomReward: dollars, 1.00-100.00, at most two places.
CUSTOM_AMOUNT_RE = re.compile(r"\d{1,3}(\.\d{1,2})?", re.ASCII)
CUSTOM_MIN, CUSTOM_MAX = Decimal("1.00"), Decimal("100.00")
OWNER_TYPES = frozenset(common.OwnerType.values())
PAY_FROM_VALUES = frozenset(groups_pb2.PayFrom.values())
PAY_FROM_GROUP = groups_pb2.PAY_FROM_GROUP
# An issuance is read whole: an unbounded history would make it too large to send (and slow
# every read of it). 100 entries of up to 64 + 1000 characters stay far below the 8 MiB limit.
MAX_FULFILLMENT_HISTORY = 100


@dataclass
class IssueRequest:
    reward_id: str
    participant: ParticipantRef | None
    quantity: int = 0
    amount: str = ""
    request_id: str = ""
    transaction_number: str = ""
    notes: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    custom_fields: dict[str, str] = field(default_factory=dict)
    fulfillment_status: str = ""
    event_time: datetime | None = None
    owner_type: int = 0
    owner_id: str = ""
    payment_option_id: str = ""
    payment_method: str = ""
    manual: bool = False
    source_event_id: str = ""
    pay_from: int = 0  # groups_pb2.PayFrom
    # Who calls: recorded on the issuance, not part of the call's attributes (a replay by
    # another key of the program gets the original back).
    issuer_key_id: str = ""
    issuer_key_name: str = ""

    def _later_attributes(self) -> tuple[object, ...]:
        """Attributes added after issue/2 digests were recorded: only when one is set, so an
        older call's digest is unchanged and it still replays."""
        later = (
            self.payment_option_id,
            self.payment_method,
            self.manual,
            self.source_event_id,
            self.pay_from == PAY_FROM_GROUP,
        )
        return ("pricing", *later) if any(later) else ()

    def fingerprint(self) -> str:
        """Every attribute of the call: a replay must repeat them all, and any difference is
        IDEMPOTENCY_KEY_REUSED. The participant is compared by identity instead (any of its
        identifiers may name it)."""
        return digest(
            "issue/2",
            self.reward_id,
            self.quantity or 1,
            canonical_decimal(self.amount),
            self.transaction_number,
            self.notes,
            sorted(self.metadata.items()),
            sorted(self.custom_fields.items()),
            self.fulfillment_status,
            self.event_time.isoformat() if self.event_time else "",
            self.owner_type,
            self.owner_id,
            *self._later_attributes(),
        )

    def fingerprints(self) -> tuple[str, str]:
        """What an issuance of this call may have recorded: today's fingerprint, or the one
        recorded before it covered every attribute (those issuances still replay)."""
        earlier = digest(
            "issue",
            self.reward_id,
            self.quantity or 1,
            canonical_decimal(self.amount),
            self.transaction_number,
        )
        return self.fingerprint(), earlier


@dataclass
class GrantRequest:
    participant: ParticipantRef | None
    amount: str
    action_code: str
    client_reference: str
    notes: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    issuer_key_id: str = ""
    issuer_key_name: str = ""

    def fingerprint(self) -> str:
        return digest(
            "custom/2",
            normalize_dollars(self.amount),
            self.action_code,
            self.notes,
            sorted(self.metadata.items()),
        )

    def fingerprints(self) -> tuple[str, str]:
        """As IssueRequest.fingerprints."""
        earlier = digest("custom", normalize_dollars(self.amount), self.action_code)
        return self.fingerprint(), earlier


# json.dumps(parts, default=str), without building an encoder per call.
_ENCODER = json.JSONEncoder(default=str)


def digest(*parts: object) -> str:
    return hashlib.sha256(_ENCODER.encode(parts).encode()).hexdigest()


def canonical_decimal(text: str) -> str:
    """One spelling per value ("1000" and "1000.00" alike), for comparing replays."""
    if not text:  # the usual case: no amount
        return text
    try:
        return format(Decimal(text).normalize(), "f")
    except ArithmeticError:
        return text


def normalize_dollars(text: str) -> str:
    try:
        return f"{Decimal(text):.2f}"
    except ArithmeticError:
        return text


def check_issue_request(v: Violations, r: IssueRequest, prefix: str = "") -> None:
    check_text(v, prefix + "reward_id", r.reward_id, max_len=128, required=True)
    check_ref(v, prefix + "participant", r.participant)
    v.check(r.quantity >= 0, prefix + "quantity", "must not be negative")
    v.check(r.quantity <= 1_000_000, prefix + "quantity", "must be at most 1000000")
    if r.amount:
        amount = parse_decimal(v, prefix + "amount", r.amount)
        if amount is not None:
            v.check(amount > 0, prefix + "amount", "must be greater than zero")
    check_request_id(v, prefix + "request_id", r.request_id)
    check_text(v, prefix + "transaction_number", r.transaction_number, max_len=128)
    check_text(v, prefix + "notes", r.notes, max_len=1000)
    check_string_map(v, prefix + "metadata", r.metadata)
    check_string_map(v, prefix + "custom_fields", r.custom_fields)
    check_label(v, prefix + "fulfillment_status", r.fulfillment_status, max_len=64)
    v.check(r.owner_type in OWNER_TYPES, prefix + "owner.owner_type", one_of(common.OwnerType))
    check_text(v, prefix + "owner.owner_id", r.owner_id, max_len=128)
    check_text(v, prefix + "payment_option_id", r.payment_option_id, max_len=64)
    check_text(v, prefix + "payment_method", r.payment_method, max_len=32)
    check_text(v, prefix + "source_event_id", r.source_event_id, max_len=128)
    v.check(r.pay_from in PAY_FROM_VALUES, prefix + "pay_from", one_of(groups_pb2.PayFrom))


def check_grant_request(v: Violations, r: GrantRequest) -> None:
    check_ref(v, "participant", r.participant)
    if not CUSTOM_AMOUNT_RE.fullmatch(r.amount) or not (
        CUSTOM_MIN <= Decimal(r.amount) <= CUSTOM_MAX
    ):
        v.add("amount", 'must be dollars from "1.00" to "100.00" with at most 2 decimal places')
    check_action_code(v, "action_code", r.action_code)
    check_client_reference(v, "client_reference", r.client_reference)
    check_text(v, "notes", r.notes, max_len=1000)
    check_string_map(v, "metadata", r.metadata)


def check_claim(status: int) -> bool:
    """True when the claim changes something; CLAIMED stays CLAIMED; REVOKED is refused."""
    if status == IS.ISSUANCE_STATUS_REVOKED:
        raise FailedPrecondition(
            "A revoked issuance cannot be claimed.",
            reason="INVALID_STATE_TRANSITION",
            metadata={"from": IS.Name(status), "to": "ISSUANCE_STATUS_CLAIMED"},
        )
    return status == IS.ISSUANCE_STATUS_CONFIRMED


def check_fulfillable(status: int) -> None:
    """A REVOKED issuance is not fulfilled any more: no status may be appended to it."""
    if status == IS.ISSUANCE_STATUS_REVOKED:
        raise FailedPrecondition(
            "A revoked issuance takes no fulfillment status.",
            reason="INVALID_STATE_TRANSITION",
            metadata={"from": IS.Name(status), "to": "fulfillment status"},
        )


def check_fulfillment_append(entries: int) -> None:
    """An issuance whose history already holds `entries` may take one more, or not."""
    if entries >= MAX_FULFILLMENT_HISTORY:
        raise FailedPrecondition(
            f"The issuance's fulfillment history is full ({MAX_FULFILLMENT_HISTORY} entries).",
            reason="FULFILLMENT_HISTORY_FULL",
            metadata={"limit": MAX_FULFILLMENT_HISTORY},
        )
