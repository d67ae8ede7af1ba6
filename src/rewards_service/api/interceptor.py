"""One wrapper around every unary RPC of ours: authentication, role check, a database session,
the access log line, and domain errors -> rich gRPC status.

The wrapper runs on the event loop: it parses the request and writes the access line there,
and hands everything that may block (the key lookup, the servicer and its store calls) to a
thread of `executor`. A call waiting for its client holds no thread.
"""

import asyncio
import contextlib
import inspect
import time
from concurrent.futures import Executor
from functools import cache

import grpc
import structlog
from google.protobuf.message import DecodeError, Message

from rewards_service import metrics, tracing
from rewards_service.api import answers, convert
from rewards_service.api.admission import Admission
from rewards_service.api.errors import internal_error, status_code, to_grpc_status
from rewards_service.auth import Caller, check_role, current_caller, key_from_metadata
from rewards_service.domain.errors import FieldViolation, InvalidArgument, RewardsError
from rewards_service.logging import access
from rewards_service.services.programs import authenticate, remembered
from rewards_service.services.records import session

log = structlog.get_logger("rewards.rpc")
OWN_SERVICES = "/rewards.v1."
# Calls one program (or all unknown keys together) may queue beyond those running.
WAITING_CALLS = 256
BATCH_ISSUE = "/rewards.v1.RewardIssuance/BatchIssueRewards"
_UNTRACED: dict[str, str] = {}


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


class _CallState:
    """What a servicer may ask of its call from the thread it runs on: whether the caller is
    still there. The grpc.aio context itself belongs to the event loop."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._active = True
        context.add_done_callback(self._end)

    def _end(self, _context) -> None:
        self._active = False

    def is_active(self) -> bool:
        return self._active


def _run(behavior, request, found: Caller, state: _CallState, earlier: answers.Earlier | None):
    """On a pool thread, in one store session: the servicer, as the authenticated caller;
    its answer kept when `earlier` says the call's answers are (api/answers.py)."""
    token = current_caller.set(found)
    try:
        with session():
            if earlier is not None:
                return answers.computed(earlier, lambda: behavior(request, state))
            return behavior(request, state)
    finally:
        current_caller.reset(token)


async def _run_on_loop(behavior, request, found: Caller, context, earlier: answers.Earlier | None):
    """A servicer written as a coroutine: it runs on the event loop, with the call's own
    context, and hands its store work over itself (e.g. to the store's writer), holding no
    thread while it waits."""
    token = current_caller.set(found)
    try:
        if earlier is not None:
            return await answers.computed_async(earlier, lambda: behavior(request, context))
        return await behavior(request, context)
    finally:
        current_caller.reset(token)


def _authenticate(key: str) -> Caller:
    with session():
        return authenticate(key)


class _Calls:
    """What every call shares: the pool its blocking part runs on, and the admission limits
    that keep any one program (or a flood of unknown keys) from taking all of it."""

    def __init__(self, executor: Executor, threads: int) -> None:
        self.executor = executor
        self.per_program = Admission(running=max(1, threads // 2), waiting=WAITING_CALLS)
        self.key_lookups = Admission(running=max(1, threads // 4), waiting=WAITING_CALLS)

    async def on_pool(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def caller(self, metadata) -> Caller:
        key = key_from_metadata(metadata)
        found = remembered(key)
        if found is None:
            async with self.key_lookups.slot(""):
                found = await self.on_pool(_authenticate, key)
        return found


def _wrap(method: str, behavior, deserialize, calls: _Calls):
    on_loop = inspect.iscoroutinefunction(behavior)
    reusable = method in answers.REUSABLE

    async def wrapped(raw: bytes, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        request_id = program = None
        error: RewardsError | None = None
        span = None
        if tracing.tracer is not None:
            span = tracing.RpcSpan(method, context.invocation_metadata())
        try:
            # Parsed here rather than by gRPC, so a malformed message gets a typed error too.
            request = _parse(deserialize, raw)
            # A NUL in any text field is a zero byte on the wire. A batch checks each item on
            # its own, so that one bad item fails alone.
            if b"\x00" in raw and method != BATCH_ISSUE:
                convert.refuse_nul(request)
            request_id = _request_id(request) or None
            found = await calls.caller(context.invocation_metadata())
            program = found.program_id
            check_role(found.role, method)
            earlier = None
            if reusable:
                # A kept answer is found without a query: the loop gives it, no thread.
                earlier = answers.look_up((method, program, request))
                if earlier.answer is not None:
                    return earlier.answer
            async with calls.per_program.slot(program):
                if on_loop:
                    return await _run_on_loop(behavior, request, found, context, earlier)
                run = _run if span is None else tracing.in_call_context(_run)
                return await calls.on_pool(
                    run, behavior, request, found, _CallState(context), earlier
                )
        except RewardsError as exc:
            error = exc
        except Exception:
            log.exception("rpc_failed", method=method, request_id=request_id, program=program)
            error = internal_error()
        finally:
            metrics.observe(method, error, started)
            traced = _UNTRACED if span is None else span.end(error)
            access(
                method=method,
                request_id=request_id,
                program=program,
                code=(status_code(error) if error else grpc.StatusCode.OK).name,
                reason=error.reason if error else None,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                **traced,
            )
        await context.abort_with_status(to_grpc_status(error))

    return wrapped


def _wrap_stream(method: str, behavior, deserialize, calls: _Calls):
    """The same parse, key, role, access line and error mapping for a server stream (an
    async generator on the event loop). It holds no admission slot: a stream lives long,
    and its servicer bounds how many are open."""

    async def wrapped(raw: bytes, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        program = None
        error: RewardsError | None = None
        code = grpc.StatusCode.OK
        sent = 0
        try:
            request = _parse(deserialize, raw)
            if b"\x00" in raw:
                convert.refuse_nul(request)
            found = await calls.caller(context.invocation_metadata())
            program = found.program_id
            check_role(found.role, method)
            token = current_caller.set(found)
            # A stream the client left while it waited at `yield` is closed later by the
            # loop, in a task (and context) of its own: the servicer's stream is closed
            # with it, and the caller it set belongs to a context that is gone.
            try:
                async with contextlib.aclosing(behavior(request, context)) as responses:
                    async for response in responses:
                        yield response
                        sent += 1
            finally:
                with contextlib.suppress(ValueError):
                    current_caller.reset(token)
        except RewardsError as exc:
            error = exc
        except (asyncio.CancelledError, GeneratorExit):  # the client went away, or the
            code = grpc.StatusCode.CANCELLED  # server is stopping
            raise
        except Exception:
            log.exception("rpc_failed", method=method, program=program)
            error = internal_error()
        finally:
            access(
                method=method,
                program=program,
                code=(status_code(error) if error else code).name,
                reason=error.reason if error else None,
                messages=sent,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        if error is not None:
            await context.abort_with_status(to_grpc_status(error))

    return wrapped


class RpcInterceptor(grpc.aio.ServerInterceptor):
    """Wraps our unary RPCs; `executor` (of `threads` threads) runs their blocking part."""

    def __init__(self, executor: Executor, threads: int) -> None:
        self._calls = _Calls(executor, threads)
        # Handlers are per method, not per call: wrap each once.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        # Health and reflection need no key and keep their own semantics.
        if handler is None or not method.startswith(OWN_SERVICES):
            return handler
        if handler.unary_stream:
            stream = handler.unary_stream
            wrapped = grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method, stream, handler.request_deserializer, self._calls),
                response_serializer=handler.response_serializer,
            )
            self._wrapped[method] = wrapped
            return wrapped
        if not handler.unary_unary:
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            _wrap(method, handler.unary_unary, handler.request_deserializer, self._calls),
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped
