"""Domain errors -> google.rpc.Status with one ErrorInfo (and BadRequest for field errors)."""

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from rewards_service.domain import errors

DOMAIN = "rewards.v1"
# The status travels in trailers, which gRPC starts refusing past 8 KiB. Errors may echo what
# the caller sent, so echoed text is clipped by its UTF-8 size (grpc-message percent-encodes
# each non-ASCII byte as three characters) and past this many field violations the rest are
# counted.
MAX_VIOLATIONS = 20
MAX_MESSAGE_BYTES = 512
MAX_DETAIL_BYTES = 128

CODES: dict[type[errors.RewardsError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Internal: grpc.StatusCode.INTERNAL,
}


def status_code(error: errors.RewardsError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def clip(text: str, limit: int = MAX_DETAIL_BYTES) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def to_status_proto(error: errors.RewardsError) -> status_pb2.Status:
    code = status_code(error)
    metadata = {clip(k, 64): clip(v) for k, v in error.metadata.items()}
    details: list = [
        error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)
    ]
    if error.violations:
        shown = error.violations[:MAX_VIOLATIONS]
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=clip(v.field), description=clip(v.description)
                )
                for v in shown
            ]
        )
        if len(error.violations) > len(shown):
            bad_request.field_violations.add(
                field="*", description=f"and {len(error.violations) - len(shown)} more"
            )
        details.append(bad_request)
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    message = clip(error.message, MAX_MESSAGE_BYTES)
    return status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)


def to_grpc_status(error: errors.RewardsError) -> grpc.Status:
    return rpc_status.to_status(to_status_proto(error))


def internal_error() -> errors.Internal:
    return errors.Internal("The service failed to handle this call; it has been logged.")
