"""Typed errors: one class per gRPC status code, and under it one class per ErrorInfo reason.

Catch a whole code (`except NotFound`) or one cause (`except OutOfStock`). A reason this SDK
does not know yet raises the class of its code, so new server reasons never break callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "rewards.v1"

_BY_CODE: dict[grpc.StatusCode, type[RewardsError]] = {}
_BY_REASON: dict[str, type[RewardsError]] = {}
_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, from google.rpc.BadRequest."""

    field: str
    description: str


class RewardsError(Exception):
    """A failed call. `reason` is the ErrorInfo reason ("" when the status carried none)."""

    CODE: ClassVar[grpc.StatusCode | None] = None
    REASON: ClassVar[str | None] = None

    def __init_subclass__(
        cls, *, code: grpc.StatusCode | None = None, reason: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.CODE = code
            _BY_CODE[code] = cls
        if reason is not None:
            cls.REASON = reason
            _BY_REASON[reason] = cls

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        *,
        domain: str = DOMAIN,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        self.domain = domain

    def __str__(self) -> str:
        head = f"{self.code.name} {self.reason}" if self.reason else self.code.name
        lines = [f"{head}: {self.message}"]
        lines += [f"  {v.field}: {v.description}" for v in self.field_violations]
        return "\n".join(lines)

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.code, self.reason, self.message, self.metadata, self.field_violations)
        return (type(self), args, {"domain": self.domain})

    @property
    def violations(self) -> dict[str, str]:
        """Field violations as {field: description}."""
        return {v.field: v.description for v in self.field_violations}


# One base class per status code the service answers with.
class InvalidArgument(RewardsError, code=grpc.StatusCode.INVALID_ARGUMENT):
    """The request is invalid; nothing changed."""


class Unauthenticated(RewardsError, code=grpc.StatusCode.UNAUTHENTICATED):
    """No usable API key was sent."""


class PermissionDenied(RewardsError, code=grpc.StatusCode.PERMISSION_DENIED):
    """The key may not do this."""


class NotFound(RewardsError, code=grpc.StatusCode.NOT_FOUND):
    """The resource does not exist, or belongs to another program."""


class AlreadyExists(RewardsError, code=grpc.StatusCode.ALREADY_EXISTS):
    """Something with this identity exists already."""


class Aborted(RewardsError, code=grpc.StatusCode.ABORTED):
    """A concurrent change got there first; nothing changed."""


class FailedPrecondition(RewardsError, code=grpc.StatusCode.FAILED_PRECONDITION):
    """A check refused the call (state, stock, limits, balance); nothing changed."""


class ResourceExhausted(RewardsError, code=grpc.StatusCode.RESOURCE_EXHAUSTED):
    """Rate limited (RATE_LIMITED) or the message was too large (MESSAGE_TOO_LARGE)."""


class Unavailable(RewardsError, code=grpc.StatusCode.UNAVAILABLE):
    """The server could not be reached or was too busy, still so after every retry."""


class DeadlineExceeded(RewardsError, code=grpc.StatusCode.DEADLINE_EXCEEDED):
    """No answer in time. For a write without a request_id the outcome is unknown."""


class Cancelled(RewardsError, code=grpc.StatusCode.CANCELLED):
    """The call was cancelled, e.g. by closing the client."""


class Unimplemented(RewardsError, code=grpc.StatusCode.UNIMPLEMENTED):
    """The server does not have this method."""


class Internal(RewardsError, code=grpc.StatusCode.INTERNAL, reason="INTERNAL"):
    """A fault in the server; the message says no more."""


# One class per ErrorInfo reason (SPEC section 4).
class ValidationFailed(InvalidArgument, reason="VALIDATION_FAILED"):
    """Fields failed validation; `violations` names every one."""


class ImmutableField(InvalidArgument, reason="IMMUTABLE_FIELD"):
    """An update touched a field fixed at creation (type, redemption_type, cost_asset_id)."""


class MissingCredentials(Unauthenticated, reason="MISSING_CREDENTIALS"):
    """No API key was sent."""


class InvalidCredentials(Unauthenticated, reason="INVALID_CREDENTIALS"):
    """The API key is unknown or revoked."""


class InsufficientScope(PermissionDenied, reason="INSUFFICIENT_SCOPE"):
    """The key's role may not call this method."""


class RewardNotFound(NotFound, reason="REWARD_NOT_FOUND"):
    """No such reward in this program."""


class ParticipantNotFound(NotFound, reason="PARTICIPANT_NOT_FOUND"):
    """No participant matches the ref."""


class IssuanceNotFound(NotFound, reason="ISSUANCE_NOT_FOUND"):
    """No such issuance in this program."""


class CodePoolNotFound(NotFound, reason="CODE_POOL_NOT_FOUND"):
    """No such code pool in this program."""


class AssetNotFound(NotFound, reason="ASSET_NOT_FOUND"):
    """No such asset in this program."""


class IdempotencyKeyReused(AlreadyExists, reason="IDEMPOTENCY_KEY_REUSED"):
    """The request_id was used before with different attributes."""


class ParticipantExists(AlreadyExists, reason="PARTICIPANT_EXISTS"):
    """A participant with this identity exists already."""


class AssetExists(AlreadyExists, reason="ASSET_EXISTS"):
    """The program has an asset with this code already."""


class EtagMismatch(Aborted, reason="ETAG_MISMATCH"):
    """The resource changed since it was read: read it again and reapply the change."""


class PaymentOptionRequired(InvalidArgument, reason="PAYMENT_OPTION_REQUIRED"):
    """The reward has several payment options: name one in payment_option_id."""


class PaymentOptionNotFound(NotFound, reason="PAYMENT_OPTION_NOT_FOUND"):
    """The reward has no payment option with that id."""


class RewardNotActive(FailedPrecondition, reason="REWARD_NOT_ACTIVE"):
    """The reward is DRAFT, INACTIVE or ARCHIVED."""


class RewardNotAvailable(FailedPrecondition, reason="REWARD_NOT_AVAILABLE"):
    """Now is outside the reward's availability window."""


class NotEligible(FailedPrecondition, reason="NOT_ELIGIBLE"):
    """The participant is in none of the reward's segments."""


class OutOfStock(FailedPrecondition, reason="OUT_OF_STOCK"):
    """The reward's max_total is reached."""


class ParticipantLimitReached(FailedPrecondition, reason="PARTICIPANT_LIMIT_REACHED"):
    """max_per_participant or a rolling limit is reached (metadata: limit, window)."""


class CodePoolExhausted(FailedPrecondition, reason="CODE_POOL_EXHAUSTED"):
    """The reward's code pool has no code left."""


class InsufficientBalance(FailedPrecondition, reason="INSUFFICIENT_BALANCE"):
    """The balance does not cover the cost (metadata: available, required)."""


class AmbiguousParticipant(FailedPrecondition, reason="AMBIGUOUS_PARTICIPANT"):
    """The email or mobile belongs to several participants."""


class InvalidStateTransition(FailedPrecondition, reason="INVALID_STATE_TRANSITION"):
    """The resource's status does not allow this, e.g. claiming a REVOKED issuance."""


class GroupNotFound(NotFound, reason="GROUP_NOT_FOUND"):
    """No such participant group in this program."""


class NotGroupMember(FailedPrecondition, reason="NOT_GROUP_MEMBER"):
    """The participant is in no group (pay_from GROUP), or not in this one."""


class AlreadyInGroup(FailedPrecondition, reason="ALREADY_IN_GROUP"):
    """The participant is in another group already (metadata: group_id)."""


def error_class(code: grpc.StatusCode, reason: str = "") -> type[RewardsError]:
    """The most specific class for a code and reason; a reason under another code is ignored."""
    by_reason = _BY_REASON.get(reason)
    if by_reason is not None and code == by_reason.CODE:
        return by_reason
    return _BY_CODE.get(code, RewardsError)


def from_status(status: status_pb2.Status) -> RewardsError:
    """A typed error from a google.rpc.Status, e.g. a failed item of BatchIssueRewards."""
    code = _CODES_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    info = error_details_pb2.ErrorInfo()
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    cls = error_class(code, info.reason)
    return cls(
        code,
        info.reason,
        status.message,
        dict(info.metadata),
        violations,
        domain=info.domain,
    )


def call_status(error: grpc.RpcError) -> tuple[grpc.StatusCode, str] | None:
    """The code and details of a failed call, sync (grpc.Call) or async (AioRpcError); None
    for an RpcError that carries no status."""
    if isinstance(error, grpc.Call | grpc.aio.AioRpcError):
        return error.code(), error.details() or ""
    return None


def from_rpc_error(error: grpc.RpcError) -> RewardsError:
    """A typed error from a failed call, with its rich status when the server sent one."""
    status = call_status(error)
    if status is None:
        return RewardsError(grpc.StatusCode.UNKNOWN, "", str(error), domain="")
    try:
        # Both kinds of call give code(), details() and trailing_metadata() as from_call needs.
        rich = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # a status detail that contradicts the call's own code or message
        rich = None
    if rich is not None:
        return from_status(rich)
    code, details = status
    return error_class(code)(code, "", details, domain="")
