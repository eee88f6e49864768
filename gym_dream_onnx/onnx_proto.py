"""Which tensors of a serialized ONNX model keep their data outside it (external data), read without the onnx package.

An ONNX tensor may say its bytes live in another file (``data_location: EXTERNAL`` and a ``location`` that can be any
path). An exported dream keeps every weight inside its graphs, so a graph that points elsewhere is refused before
onnxruntime sees it: :func:`external_tensors` walks the protobuf wire format over the parts of the ONNX schema
(onnx/onnx.proto3) that can hold a tensor: graph initializers, sparse initializers, node attributes (``Constant``
values, subgraphs of ``If``/``Loop``/``Scan``), functions and training graphs.
"""

from __future__ import annotations

#: the ONNX schema's fields that lead to a tensor: {message: {field number: message it holds}}
_FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node", 11: "attribute"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 8, 13, 14, 1
#: nesting deeper than this (subgraphs in subgraphs ...) is refused rather than followed
MAX_DEPTH = 64


class ProtoError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def _varint(data: bytes | memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ProtoError("truncated or overlong varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _fields(data: memoryview):
    """(field number, wire type, value) of each field: an int for varints, a memoryview for length-delimited ones."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > len(data):
                raise ProtoError("a length-delimited field runs past the end of its message")
            value, i = data[i:i + size], i + size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
            value = None
        else:
            raise ProtoError(f"wire type {wire} (groups) is not used by ONNX")
        if i > len(data):
            raise ProtoError("truncated fixed-width field")
        yield number, wire, value


def _walk(data: memoryview, kind: str, depth: int, found: list[str]) -> None:
    if depth > MAX_DEPTH:
        raise ProtoError(f"nested more than {MAX_DEPTH} deep")
    if kind == "tensor":
        name, external = "", False
        for number, wire, value in _fields(data):
            if number == _TENSOR_NAME and wire == 2:
                name = bytes(value).decode("utf-8", "replace")
            elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
                external = True
            elif number == _TENSOR_DATA_LOCATION and wire == 0 and value == _EXTERNAL:
                external = True
        if external:
            found.append(name or "(unnamed)")
        return
    children = _FIELDS[kind]
    for number, wire, value in _fields(data):
        if wire == 2 and number in children:
            _walk(value, children[number], depth + 1, found)


def external_tensors(model: bytes) -> list[str]:
    """Names of the tensors of a serialized ONNX ``ModelProto`` whose data is in another file (empty: self-contained).
    Raises :class:`ProtoError` for bytes that are not a well-formed message."""
    found: list[str] = []
    _walk(memoryview(model), "model", 0, found)
    return found
