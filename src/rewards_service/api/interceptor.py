"""One wrapper around every unary RPC of ours: authentication, role check, a database session,
the access log line, and domain errors -> rich gRPC status.

The work happens in the wrapped handler, which runs on the worker thread; intercept_service
itself runs on another thread, so per-call context cannot be set there.
"""

import time
from functools import cache

import grpc
import structlog
from google.protobuf.message import DecodeError, Message

from rewards_service.api import answers
from rewards_service.api.errors import internal_error, status_code, to_grpc_status
from rewards_service.auth import check_role, current_caller, key_from_metadata
from rewards_service.domain.errors import FieldViolation, InvalidArgument, RewardsError
from rewards_service.services.programs import authenticate
from rewards_service.store.db import session

log = structlog.get_logger("rewards.rpc")
OWN_SERVICES = "/rewards.v1."


@cache
def _request_id_field(message_type: type[Message]) -> str | None:
    """The field holding a call's request_id, if its request has one."""
    names = message_type.DESCRIPTOR.fields_by_name
    return next((name for name in ("request_id", "client_reference") if name in names), None)


def _request_id(request: Message) -> str:
    field = _request_id_field(type(request))
    return getattr(request, field) if field else ""


def _parse(deserialize, raw: bytes):
    try:
        return deserialize(raw)
    except DecodeError:
        raise InvalidArgument(
            "The request is not a well-formed protobuf message.",
            violations=(FieldViolation("*", "is not a well-formed protobuf message"),),
        ) from None


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


def _refuse_nul(request: Message) -> None:
    """PostgreSQL text cannot hold NUL, so no backend takes it: the same answer everywhere."""
    paths = _nul_fields(request)
    if paths:
        raise InvalidArgument(
            "Text fields must not contain NUL characters.",
            violations=tuple(
                FieldViolation(path, "must not contain NUL (0x00) characters") for path in paths
            ),
        )


def _call(behavior, request, context, found):
    token = current_caller.set(found)
    try:
        return behavior(request, context)
    finally:
        current_caller.reset(token)


def _wrap(method: str, behavior, deserialize):
    reusable = method in answers.REUSABLE

    def wrapped(raw: bytes, context: grpc.ServicerContext):
        started = time.perf_counter()
        request_id = program = None
        error: RewardsError | None = None
        try:
            # Parsed here rather than by gRPC, so a malformed message gets a typed error too.
            request = _parse(deserialize, raw)
            if b"\x00" in raw:  # a NUL in any text field is a zero byte on the wire
                _refuse_nul(request)
            request_id = _request_id(request) or None
            with session():
                found = authenticate(key_from_metadata(context.invocation_metadata()))
                program = found.program_id
                check_role(found.role, method)
                if reusable:
                    return answers.given_again(
                        (method, program, request), lambda: _call(behavior, request, context, found)
                    )
                return _call(behavior, request, context, found)
        except RewardsError as exc:
            error = exc
        except Exception:
            log.exception("rpc_failed", method=method, request_id=request_id, program=program)
            error = internal_error()
        finally:
            log.info(
                "rpc",
                method=method,
                request_id=request_id,
                program=program,
                code=(status_code(error) if error else grpc.StatusCode.OK).name,
                reason=error.reason if error else None,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        context.abort_with_status(to_grpc_status(error))

    return wrapped


class RpcInterceptor(grpc.ServerInterceptor):
    def __init__(self) -> None:
        # Handlers are per method, not per call: wrap each once.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = continuation(handler_call_details)
        # Health and reflection need no key and keep their own semantics.
        if handler is None or not method.startswith(OWN_SERVICES) or not handler.unary_unary:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            _wrap(method, handler.unary_unary, handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped
