"""Expose intermediate values of an ONNX graph as extra outputs, on the serialized bytes (stdlib only).

The inspection session and export's per-layer parity build their session the same way: the shipped,
hash-verified bytes plus one `GraphProto.output` entry per tap, so what export checked is what the app
shows, without the `onnx` package on the serving side. Only the protobuf wire format is touched:
ModelProto field 7 is the graph; GraphProto field 12 is its repeated outputs; each is a ValueInfoProto
{1: name, 2: TypeProto{1: tensor_type{1: elem_type}}} (ONNX's onnx.proto3). ORT infers the shapes.
"""
FLOAT = 1  # TensorProto.DataType.FLOAT: every tap is a float32 activation
MODEL_GRAPH_FIELD = 7
GRAPH_OUTPUT_FIELD = 12
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class GraphBytesError(ValueError):
    """The bytes are not a protobuf ModelProto this editor can walk."""


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | 0x80 if value else low)
        if not value:
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise GraphBytesError("truncated or overlong varint in the model bytes")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def length_delimited(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | LENGTH_DELIMITED) + encode_varint(len(payload)) + payload


def float_output(name: str) -> bytes:
    tensor_type = length_delimited(1, encode_varint(1 << 3 | VARINT) + encode_varint(FLOAT))
    value_info = length_delimited(1, name.encode()) + length_delimited(2, tensor_type)
    return length_delimited(GRAPH_OUTPUT_FIELD, value_info)


def skip_field(data: bytes, pos: int, wire_type: int) -> int:
    """-> the position after one field's value."""
    if wire_type == VARINT:
        return decode_varint(data, pos)[1]
    if wire_type in (FIXED64, FIXED32):
        return pos + (8 if wire_type == FIXED64 else 4)
    if wire_type == LENGTH_DELIMITED:
        length, pos = decode_varint(data, pos)
        return pos + length
    raise GraphBytesError(f"unsupported protobuf wire type {wire_type} in the model bytes")


def with_outputs(model: bytes, names: list[str]) -> bytes:
    """A ModelProto's bytes -> the same model with float32 outputs `names` appended to its graph."""
    extra = b"".join(float_output(name) for name in names)
    out, pos, graphs = bytearray(), 0, 0
    while pos < len(model):
        key, value_at = decode_varint(model, pos)
        end = skip_field(model, value_at, key & 7)
        if end > len(model):
            raise GraphBytesError("the model bytes end inside a field")
        if key == MODEL_GRAPH_FIELD << 3 | LENGTH_DELIMITED:
            length, payload_at = decode_varint(model, value_at)
            out += length_delimited(MODEL_GRAPH_FIELD, model[payload_at:payload_at + length] + extra)
            graphs += 1
        else:
            out += model[pos:end]
        pos = end
    if graphs != 1:
        raise GraphBytesError(f"expected one graph in the model bytes, found {graphs}")
    return bytes(out)
