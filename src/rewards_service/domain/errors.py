"""Domain errors. Each class is one gRPC status code; `reason` is the ErrorInfo reason.

The transport maps these to google.rpc.Status (api/errors.py); nothing below the transport
knows about gRPC.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class RewardsError(Exception):
    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, object] | None = None,
        violations: tuple[FieldViolation, ...] = (),
    ):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}
        self.violations = violations


class InvalidArgument(RewardsError):
    default_reason = "VALIDATION_FAILED"


class Unauthenticated(RewardsError):
    default_reason = "INVALID_CREDENTIALS"


class PermissionDenied(RewardsError):
    default_reason = "INSUFFICIENT_SCOPE"


class NotFound(RewardsError):
    pass


class AlreadyExists(RewardsError):
    pass


class Aborted(RewardsError):
    default_reason = "ETAG_MISMATCH"


class FailedPrecondition(RewardsError):
    pass


class Unavailable(RewardsError):
    """The store stayed too contended to finish; the call changed nothing and may be retried."""

    default_reason = "CONTENTION"


class ResourceExhausted(RewardsError):
    """A size or quota limit (MESSAGE_TOO_LARGE, RATE_LIMITED), not a cap of the product (those
    are FAILED_PRECONDITION). `retry_after` seconds, when given, is when a retry may succeed."""

    default_reason = "MESSAGE_TOO_LARGE"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Internal(RewardsError):
    default_reason = "INTERNAL"


def idempotency_key_reused(request_id: str, **original: str) -> AlreadyExists:
    """The same request_id came back with different attributes (AIP-155); `original` names
    what the first call made, e.g. issuance_id=..."""
    return AlreadyExists(
        "This request_id was already used for a different request.",
        reason="IDEMPOTENCY_KEY_REUSED",
        metadata={"request_id": request_id, **original},
    )
