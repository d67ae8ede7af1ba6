"""Domain errors -> google.rpc.Status with one ErrorInfo (and BadRequest for field errors)."""

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from rewards_service.domain import errors

DOMAIN = "rewards.v1"
# Trailers have a size limit; past this many field violations the rest are summarised.
MAX_VIOLATIONS = 100

CODES: dict[type[errors.RewardsError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Internal: grpc.StatusCode.INTERNAL,
}


def status_code(error: errors.RewardsError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in CODES:
            return CODES[cls]
    return grpc.StatusCode.INTERNAL


def to_status_proto(error: errors.RewardsError) -> status_pb2.Status:
    code = status_code(error)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    details = [info]
    if error.violations:
        shown = error.violations[:MAX_VIOLATIONS]
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
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
    return status_pb2.Status(
        code=getattr(code_pb2, code.name), message=error.message, details=packed
    )


def to_grpc_status(error: errors.RewardsError) -> grpc.Status:
    return rpc_status.to_status(to_status_proto(error))


def internal_error() -> errors.Internal:
    return errors.Internal("The service failed to handle this call; it has been logged.")
