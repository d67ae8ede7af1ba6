"""Server reflection that serves our proto files with their comments.

The descriptors compiled into the _pb2 modules carry no source info, so plain reflection
gives `grpcurl describe` no documentation. `make generate` also writes the files with source
info (descriptors.binpb); answers naming those files get the documented versions.
"""

from pathlib import Path

import rewards.v1 as rewards_v1
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection

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
        return self._with_docs(super()._file_containing_symbol(request, fully_qualified_name))
