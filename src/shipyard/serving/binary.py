"""Triton's binary tensor data extension of the Open Inference Protocol, both ways.

A request may carry tensors as raw bytes after its JSON: the ``Inference-Header-Content-Length``
header says where the JSON ends, and each such input's ``parameters.binary_data_size`` says how
many of the following bytes are its values, in input order. Values are little-endian, row-major;
a BOOL is one byte (0 or 1); a BYTES element is a 4-byte little-endian length, then that many bytes.

``attach`` turns those bytes into the same value lists a JSON ``data`` holds, so one validation
path serves both forms. A response carries an output as bytes when the request asks for it
(``parameters.binary_data_output``, or an output's ``parameters.binary_data``).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.serving.inputs import Decoded, InputSchema, InvalidInput, decode_v2_doc, load_json, show, v2_tensor

HEADER = "inference-header-content-length"
_LAYOUT = "BYTES elements are each a 4-byte little-endian length followed by that many bytes"

# numpy dtype and bytes per element of every fixed-size datatype.
_FIXED: dict[str, tuple[str, int]] = {
    "BOOL": ("|u1", 1),
    "UINT8": ("|u1", 1),
    "UINT16": ("<u2", 2),
    "UINT32": ("<u4", 4),
    "UINT64": ("<u8", 8),
    "INT8": ("|i1", 1),
    "INT16": ("<i2", 2),
    "INT32": ("<i4", 4),
    "INT64": ("<i8", 8),
    "FP16": ("<f2", 2),
    "BF16": ("<u2", 2),
    "FP32": ("<f4", 4),
    "FP64": ("<f8", 8),
}


def decode_v2_binary(body: bytes, header_length: str, schema: InputSchema, *, max_rows: int = 10_000) -> Decoded:
    """Decode an Open Inference Protocol request whose JSON takes the first ``header_length`` bytes of ``body``."""
    head, data = split(body, header_length)
    doc = load_json(head)
    attach(doc.get("inputs"), data)
    return decode_v2_doc(doc, schema, max_rows=max_rows)


def split(body: bytes, header_length: str) -> tuple[bytes, bytes]:
    """The JSON part of a body and the binary data after it, as ``Inference-Header-Content-Length`` divides them."""
    if not (header_length.isascii() and header_length.isdigit()):
        reason = f"the Inference-Header-Content-Length header must be a non-negative integer (bytes), got {header_length!r}"
        raise InvalidInput(400, reason)
    length = int(header_length)
    if length > len(body):
        raise InvalidInput(
            400,
            f"the Inference-Header-Content-Length header says the JSON takes {length} bytes, but the body has only {len(body)}",
        )
    return body[:length], body[length:]


def attach(tensors: object, data: bytes) -> None:
    """Give every input sent as binary data its values (as a ``data`` list), taken in input order from ``data``.

    Anything malformed in the tensors themselves is left for the JSON decoder to name, except what
    reading the bytes needs: a size, a datatype and a shape.
    """
    if type(tensors) is not list:
        return
    offset = 0
    for tensor in tensors:
        parameters = tensor.get("parameters") if type(tensor) is dict else None
        if type(parameters) is not dict or "binary_data_size" not in parameters:
            continue
        name = tensor.get("name")
        label, field = (f"tensor {name!r}", name) if type(name) is str else ("an input tensor", None)
        size = parameters["binary_data_size"]
        if type(size) is not int or size < 0:
            reason = f"{label} has binary_data_size {show(size)}; expected a non-negative integer (bytes)"
            raise InvalidInput(400, reason, field=field)
        if "data" in tensor:
            raise InvalidInput(400, f'{label} has both "data" and binary_data_size: send its values one way', field=field)
        left = len(data) - offset
        if size > left:
            reason = f"{label} has binary_data_size {size}, but only {left} bytes of binary data are left after the JSON"
            raise InvalidInput(400, reason, field=field)
        tensor["data"] = _values(label, field, tensor.get("datatype"), tensor.get("shape"), data[offset : offset + size])
        offset += size
    if offset != len(data):
        extra = len(data) - offset
        raise InvalidInput(
            400,
            f"{extra} bytes follow the JSON that no input's binary_data_size accounts for "
            f"(check the Inference-Header-Content-Length header and each binary_data_size)",
        )


def _values(label: str, field: str | None, datatype: object, shape: object, chunk: bytes) -> list[Any]:
    if datatype != "BYTES" and datatype not in _FIXED:
        known = ", ".join([*_FIXED, "BYTES"])
        raise InvalidInput(400, f"{label} has datatype {show(datatype)}; expected one of {known}", field=field)
    if type(shape) is not list or any(type(n) is not int or n < 0 for n in shape):
        raise InvalidInput(400, f"{label} has shape {show(shape)}; expected a list of non-negative integers", field=field)
    count = math.prod(shape)
    if datatype == "BYTES":
        return _strings(label, field, count, chunk)
    dtype, width = _FIXED[str(datatype)]
    if count * width != len(chunk):
        reason = (
            f"{label} has binary_data_size {len(chunk)}, but shape {show(shape)} of {datatype} "
            f"takes {count * width} bytes ({count} elements of {width})"
        )
        raise InvalidInput(400, reason, field=field)
    if datatype == "BOOL":
        if chunk.translate(None, b"\x00\x01"):
            raise InvalidInput(400, f"{label} is BOOL but holds a byte other than 0 (false) or 1 (true)", field=field)
        return [byte == 1 for byte in chunk]
    import numpy as np

    array = np.frombuffer(chunk, dtype=dtype)
    if datatype == "BF16":  # the upper half of a float32
        array = (array.astype("<u4") << 16).view("<f4")
    values: list[Any] = array.tolist()
    return values


def _strings(label: str, field: str | None, count: int, chunk: bytes) -> list[Any]:
    end = len(chunk)
    if count * 4 > end:
        reason = f"{label} has binary_data_size {end}, too small for {count} BYTES elements ({_LAYOUT})"
        raise InvalidInput(400, reason, field=field)
    values: list[Any] = []
    position = 0
    for index in range(count):
        if position + 4 > end:
            reason = f"{label}: its binary data ends inside the length of element {index} ({_LAYOUT})"
            raise InvalidInput(400, reason, field=field)
        (length,) = struct.unpack_from("<I", chunk, position)
        position += 4
        if position + length > end:
            reason = f"{label}: element {index} says it has {length} bytes, but only {end - position} are left ({_LAYOUT})"
            raise InvalidInput(400, reason, field=field)
        try:
            values.append(chunk[position : position + length].decode())
        except UnicodeDecodeError as exc:
            raise InvalidInput(400, f"{label}: element {index} is not UTF-8 text ({exc.reason})", field=field) from None
        position += length
    if position != end:
        reason = f"{label} has binary_data_size {end}, but its {count} BYTES elements take {position} bytes ({_LAYOUT})"
        raise InvalidInput(400, reason, field=field)
    return values


# --- requested outputs and binary responses ---------------------------------------------------


def chosen_outputs(decoded: Decoded, available: Sequence[str]) -> list[tuple[str, bool]]:
    """The outputs a request asks for, in order, each with whether it travels as binary data."""
    return select(requested(decoded.outputs, decoded.parameters), decoded.parameters, available)


def requested(outputs: object, parameters: Mapping[str, Any]) -> tuple[tuple[str, bool | None], ...] | None:
    """A request's ``outputs`` as (name, binary) pairs, binary None when the output does not say; None when absent."""
    flag = parameters.get("binary_data_output")
    if flag is not None and type(flag) is not bool:
        raise InvalidInput(400, f'"parameters.binary_data_output" must be true or false, got {show(flag)}')
    if outputs is None:
        return None
    if type(outputs) is not list:
        reason = f'"outputs" must be a list of requested outputs, like [{{"name": "predict"}}], got {show(outputs)}'
        raise InvalidInput(400, reason)
    pairs: list[tuple[str, bool | None]] = []
    for output in outputs:
        if type(output) is not dict or type(output.get("name")) is not str:
            raise InvalidInput(400, f'each requested output must be an object with a "name", got {show(output)}')
        name = output["name"]
        extra = output.keys() - {"name", "parameters"}
        if extra:
            unknown = ", ".join(map(repr, sorted(extra)))
            reason = f"requested output {name!r} has unknown keys {unknown} (expected: name, parameters)"
            raise InvalidInput(400, reason, field=name)
        options = output.get("parameters") or {}
        if type(options) is not dict:
            raise InvalidInput(400, f"requested output {name!r} has parameters {show(options)}; expected an object", field=name)
        unsupported = sorted(options.keys() - {"binary_data"})
        if unsupported:
            reason = (
                f"requested output {name!r} asks for {', '.join(unsupported)}, which this gateway does not support "
                "(only binary_data)"
            )
            raise InvalidInput(400, reason, field=name)
        binary = options.get("binary_data")
        if binary is not None and type(binary) is not bool:
            reason = f"requested output {name!r} has binary_data {show(binary)}; expected true or false"
            raise InvalidInput(400, reason, field=name)
        pairs.append((name, binary))
    return tuple(pairs)


def select(
    outputs: tuple[tuple[str, bool | None], ...] | None, parameters: Mapping[str, Any], available: Sequence[str]
) -> list[tuple[str, bool]]:
    """Which outputs to answer with, in order, and whether each travels as binary data."""
    default = parameters.get("binary_data_output") is True
    if outputs is None:
        return [(name, default) for name in available]
    chosen: list[tuple[str, bool]] = []
    for name, binary in outputs:
        if name not in available:
            reason = f"unknown output {name!r} (this model's outputs: {', '.join(available)})"
            raise InvalidInput(400, reason, field=name)
        if any(name == seen for seen, _ in chosen):
            raise InvalidInput(400, f"output {name!r} is requested twice", field=name)
        chosen.append((name, default if binary is None else binary))
    return chosen


def encode_response(
    model: str,
    version: str,
    request_id: str | None,
    outputs: Mapping[str, Iterable[Any]],
    chosen: Sequence[tuple[str, bool]],
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON part when binary data follows it (else None)."""
    tensors = []
    blobs: list[bytes] = []
    for name, binary in chosen:
        tensor = v2_tensor(name, outputs[name])
        if binary:
            blob = _pack(tensor["datatype"], tensor.pop("data"))
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        tensors.append(tensor)
    response: dict[str, Any] = {"model_name": model, "model_version": version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = tensors
    header = json.dumps(response, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


def _pack(datatype: str, data: list[Any]) -> bytes:
    if datatype == "BYTES":
        encoded = [b"" if v is None else str(v).encode() for v in data]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    if datatype == "BOOL":
        return bytes(1 if v else 0 for v in data)
    import numpy as np

    if datatype == "FP64":  # a missing score: null in JSON, NaN in binary
        return np.array([math.nan if v is None else v for v in data], dtype="<f8").tobytes()
    dtype, _ = _FIXED[datatype]
    return np.array(data, dtype=dtype).tobytes()
