"""Server reflection that serves our proto files with their comments, under both names
clients look for (grpc.reflection.v1 first, v1alpha as the fallback).

The descriptors compiled into the _pb2 modules carry no source info, so plain reflection
gives `grpcurl describe` no documentation. `make generate` also writes the files with source
info (descriptors.binpb); answers naming those files get the documented versions.
"""

from pathlib import Path

import grpc
import rewards.v1 as rewards_v1
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

DOCUMENTED = Path(rewards_v1.__file__).parent / "descriptors.binpb"


def _without_json_names(messages) -> None:
    # Plain reflection sends no json_name, and grpcurl then prints the proto field names;
    # keep that, so the comments are the only difference.
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _without_json_names(message.nested_type)


def _documented_files() -> dict[str, bytes]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DOCUMENTED.read_bytes()).file
    for file in files:
        _without_json_names(file.message_type)
    return {f.name: f.SerializeToString() for f in files}


class DocumentedReflectionServicer(reflection.aio.ReflectionServicer):
    # Overrides the two lookups grpcurl uses (list/describe) of grpcio-reflection's aio servicer.
    def __init__(self, service_names):
        super().__init__(service_names)
        self._documented = _documented_files()

    def _with_docs(self, response):
        if response.HasField("file_descriptor_response"):
            files = response.file_descriptor_response.file_descriptor_proto
            for i, raw in enumerate(files):
                name = descriptor_pb2.FileDescriptorProto.FromString(raw).name
                files[i] = self._documented.get(name, raw)
        return response

    def _file_by_filename(self, request, filename):
        return self._with_docs(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request, fully_qualified_name):
        response = super()._file_containing_symbol(request, fully_qualified_name)
        if response.HasField("error_response") and self._is_method_or_value(fully_qualified_name):
            # The pool finds services and enums but not their methods and values; those live
            # in the same file as their parent.
            parent = fully_qualified_name.rpartition(".")[0]
            response = super()._file_containing_symbol(request, parent)
        return self._with_docs(response)

    def _is_method_or_value(self, name: str) -> bool:
        parent, _, last = name.rpartition(".")
        for find, members in (
            (self._pool.FindServiceByName, "methods_by_name"),
            (self._pool.FindEnumTypeByName, "values_by_name"),
        ):
            try:
                return last in getattr(find(parent), members)
            except KeyError:
                continue
        return False


V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1ALPHA = ".grpc.reflection.v1alpha."


def _add_v1_descriptor() -> None:
    """grpc.reflection.v1 is v1alpha under a new package, field for field: its file is
    v1alpha's renamed, so that `describe` finds the v1 service as well."""
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    file.name = "grpc/reflection/v1/reflection.proto"
    file.package = "grpc.reflection.v1"
    for message in file.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace(_V1ALPHA, ".grpc.reflection.v1.")
    for method in file.service[0].method:
        method.input_type = method.input_type.replace(_V1ALPHA, ".grpc.reflection.v1.")
        method.output_type = method.output_type.replace(_V1ALPHA, ".grpc.reflection.v1.")
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(file.name)
    except KeyError:
        pool.Add(file)


def add_v1_reflection(servicer: reflection.BaseReflectionServicer, server) -> None:
    """Serves `servicer` as grpc.reflection.v1 too; the messages are the same on the wire."""
    _add_v1_descriptor()
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": handler}),)
    )
