"""A gRPC proxy in front of the real server that records every request and injects faults:
refuse a call (UNAVAILABLE before the server sees it), drop an answer (the server acts, the
client gets UNAVAILABLE), or hang until the client's deadline passes."""

import functools
import threading
import time
from concurrent import futures

import grpc

FORWARDED_HEADERS = ("authorization", "x-api-key")


class FaultProxy(grpc.GenericRpcHandler):
    def __init__(self, upstream: str):
        self.seen: list[tuple[str, bytes]] = []
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._upstream = grpc.insecure_channel(upstream)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)]
        )
        self._server.add_generic_rpc_handlers([self])
        self.target = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def plan(self, method: str, *actions: str) -> None:
        """The next calls of `method` (e.g. "IssueReward") meet these faults, in order:
        "refuse", "drop" or "hang"; later calls pass through."""
        with self._lock:
            self._faults.setdefault(method, []).extend(actions)

    def requests(self, method: str, message_type):
        return [
            message_type.FromString(body)
            for name, body in self.seen
            if name.rsplit("/", 1)[1] == method
        ]

    def close(self) -> None:
        self._server.stop(0).wait()
        self._upstream.close()

    def service(self, handler_call_details):
        method = handler_call_details.method
        return grpc.unary_unary_rpc_method_handler(functools.partial(self._handle, method))

    def _handle(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.seen.append((method, request))
            queue = self._faults.get(method.rsplit("/", 1)[1], [])
            action = queue.pop(0) if queue else "pass"
        if action == "refuse":
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected: refused before the server")
        if action == "hang":
            while context.is_active():
                time.sleep(0.01)
            return b""
        metadata = [(k, v) for k, v in context.invocation_metadata() if k in FORWARDED_HEADERS]
        try:
            response = self._upstream.unary_unary(method)(request, metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            context.set_trailing_metadata(error.trailing_metadata())
            context.abort(error.code(), error.details())
        if action == "drop":
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected: the answer was lost")
        return response
