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
    pass


class Unauthenticated(RewardsError, code=grpc.StatusCode.UNAUTHENTICATED):
    pass


class PermissionDenied(RewardsError, code=grpc.StatusCode.PERMISSION_DENIED):
    pass


class NotFound(RewardsError, code=grpc.StatusCode.NOT_FOUND):
    pass


class AlreadyExists(RewardsError, code=grpc.StatusCode.ALREADY_EXISTS):
    pass


class Aborted(RewardsError, code=grpc.StatusCode.ABORTED):
    pass


class FailedPrecondition(RewardsError, code=grpc.StatusCode.FAILED_PRECONDITION):
    pass


class ResourceExhausted(RewardsError, code=grpc.StatusCode.RESOURCE_EXHAUSTED):
    pass


class Unavailable(RewardsError, code=grpc.StatusCode.UNAVAILABLE):
    """The server could not be reached or was too busy, still so after every retry."""


class DeadlineExceeded(RewardsError, code=grpc.StatusCode.DEADLINE_EXCEEDED):
    """No answer in time. For a write without a request_id the outcome is unknown."""


class Cancelled(RewardsError, code=grpc.StatusCode.CANCELLED):
    pass


class Unimplemented(RewardsError, code=grpc.StatusCode.UNIMPLEMENTED):
    pass


class Internal(RewardsError, code=grpc.StatusCode.INTERNAL, reason="INTERNAL"):
    pass


# One class per ErrorInfo reason (SPEC section 4).
class ValidationFailed(InvalidArgument, reason="VALIDATION_FAILED"):
    pass


class ImmutableField(InvalidArgument, reason="IMMUTABLE_FIELD"):
    pass


class MissingCredentials(Unauthenticated, reason="MISSING_CREDENTIALS"):
    pass


class InvalidCredentials(Unauthenticated, reason="INVALID_CREDENTIALS"):
    pass


class InsufficientScope(PermissionDenied, reason="INSUFFICIENT_SCOPE"):
    pass


class RewardNotFound(NotFound, reason="REWARD_NOT_FOUND"):
    pass


class ParticipantNotFound(NotFound, reason="PARTICIPANT_NOT_FOUND"):
    pass


class IssuanceNotFound(NotFound, reason="ISSUANCE_NOT_FOUND"):
    pass


class CodePoolNotFound(NotFound, reason="CODE_POOL_NOT_FOUND"):
    pass


class AssetNotFound(NotFound, reason="ASSET_NOT_FOUND"):
    pass


class IdempotencyKeyReused(AlreadyExists, reason="IDEMPOTENCY_KEY_REUSED"):
    """The request_id was used before with different attributes."""


class ParticipantExists(AlreadyExists, reason="PARTICIPANT_EXISTS"):
    pass


class AssetExists(AlreadyExists, reason="ASSET_EXISTS"):
    pass


class EtagMismatch(Aborted, reason="ETAG_MISMATCH"):
    """The resource changed since it was read: read it again and reapply the change."""


class RewardNotActive(FailedPrecondition, reason="REWARD_NOT_ACTIVE"):
    pass


class RewardNotAvailable(FailedPrecondition, reason="REWARD_NOT_AVAILABLE"):
    pass


class NotEligible(FailedPrecondition, reason="NOT_ELIGIBLE"):
    pass


class OutOfStock(FailedPrecondition, reason="OUT_OF_STOCK"):
    pass


class ParticipantLimitReached(FailedPrecondition, reason="PARTICIPANT_LIMIT_REACHED"):
    pass


class CodePoolExhausted(FailedPrecondition, reason="CODE_POOL_EXHAUSTED"):
    pass


class InsufficientBalance(FailedPrecondition, reason="INSUFFICIENT_BALANCE"):
    pass


class AmbiguousParticipant(FailedPrecondition, reason="AMBIGUOUS_PARTICIPANT"):
    pass


class InvalidStateTransition(FailedPrecondition, reason="INVALID_STATE_TRANSITION"):
    pass


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
