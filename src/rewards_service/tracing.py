"""OpenTelemetry traces over OTLP/gRPC, on when --otlp-endpoint is set (the `tracing` extra).

One server span per call of ours, named and described as gRPC's semantic conventions say
(rpc.system, rpc.service, rpc.method, rpc.grpc.status_code), continuing the caller's trace
when it sends a W3C `traceparent`. Each write the store's writer runs for the call is a child
span: the write carries its caller's context variables to the writer's thread
(group_commit.py), OpenTelemetry's current span among them; a call served on the thread pool
gets its task's context the same way (`in_call_context`). The access line of a call whose
span records carries its trace_id.

Off, OpenTelemetry is not even imported, and the interceptor looks at `tracer` only. Set up
in each serving process (after a --workers fork): the exporter's gRPC channel must not cross
a fork.
"""

import contextvars
import os
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import grpc

from rewards_service.api.errors import status_code
from rewards_service.domain.errors import RewardsError

# The tracer once enabled; None while tracing is off.
tracer: Any = None
# OpenTelemetry's modules, imported by `enable`.
_otel: Any = None
_provider: Any = None
# Codes that make a server span an error (the gRPC conventions); the others are the caller's.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_PROPAGATED = frozenset({"traceparent", "tracestate"})


def enable(endpoint: str, sample_ratio: float, database_system: str) -> None:
    """Export spans to the OTLP/gRPC collector at `endpoint` (http:// is plaintext), keeping
    `sample_ratio` of the traces that start here; a caller's traceparent decides for its own."""
    global tracer, _otel, _provider
    from opentelemetry import context, trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from rewards_service.config import version

    _provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "rewards-service",
                "service.version": version(),
                "process.pid": os.getpid(),  # which worker, with --workers
            }
        ),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    _otel = SimpleNamespace(
        context=context,
        trace=trace,
        propagator=TraceContextTextMapPropagator(),
        error=trace.StatusCode.ERROR,
        store_attributes={"db.system.name": database_system},
    )
    tracer = _provider.get_tracer("rewards_service")


def shutdown() -> None:
    """Send what is buffered (on the way out)."""
    if _provider is not None:
        _provider.shutdown()


class RpcSpan:
    """A call's server span, current on the call's task from start to `end`."""

    __slots__ = ("_token", "span")

    def __init__(self, method: str, metadata) -> None:
        carrier = {key: value for key, value in metadata or () if key in _PROPAGATED}
        parent = _otel.propagator.extract(carrier) if carrier else None
        service, _, name = method.lstrip("/").rpartition("/")
        self.span = tracer.start_span(
            method.lstrip("/"),
            context=parent,
            kind=_otel.trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        self._token = _otel.context.attach(_otel.trace.set_span_in_context(self.span, parent))

    def end(self, error: RewardsError | None) -> dict[str, str]:
        """End the span with the call's status; the access line's fields (its trace_id)."""
        code = status_code(error) if error else grpc.StatusCode.OK
        span = self.span
        recording = span.is_recording()
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if error is not None:
            span.set_attribute("error.type", error.reason)
            if code in _SERVER_FAULTS:
                span.set_status(_otel.error, error.reason)
        span.end()
        _otel.context.detach(self._token)
        if not recording:
            return {}
        return {"trace_id": format(span.get_span_context().trace_id, "032x")}


def in_call_context(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` to run on a pool thread in the calling task's context (its span)."""
    context = contextvars.copy_context()

    def run(*args: Any) -> Any:
        return context.run(function, *args)

    return run


def traced_write(step: Callable[[], Any]) -> Any:
    """A write on the store's writer, run in its caller's context: a child of its call."""
    with tracer.start_as_current_span(
        "store write", kind=_otel.trace.SpanKind.INTERNAL, attributes=_otel.store_attributes
    ):
        return step()
