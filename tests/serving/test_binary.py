"""Triton's binary tensor data extension: bodies built by tritonclient itself decode as their JSON twins do."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
import tritonclient.http as http
from test_inputs import ROWS, SCHEMA

from shipyard.serving.binary import chosen_outputs, decode_v2_binary, encode_response
from shipyard.serving.inputs import Decoded, InvalidInput, decode_v2

# Every column of the schema as the datatype a client would send it in, binary and JSON alike.
DATATYPES = {"long": "INT64", "double": "FP64", "string": "BYTES", "boolean": "BOOL", "datetime": "BYTES"}


def tensors(binary: bool, overrides: dict[str, tuple[str, Any]] | None = None) -> list[http.InferInput]:
    out = []
    for field in SCHEMA.fields:
        if not field.required:  # binary data has no missing values: optional columns are left out
            continue
        datatype, dtype = DATATYPES[field.type], None
        if overrides and field.name in overrides:
            datatype, dtype = overrides[field.name]
        values = [row[field.name] for row in ROWS]
        array = np.array(values, dtype=object) if datatype == "BYTES" else np.array(values, dtype=dtype)
        tensor = http.InferInput(field.name, [len(values)], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        out.append(tensor)
    return out


def body_of(inputs: list[http.InferInput], **kw: Any) -> tuple[bytes, str | None]:
    body, length = http.InferenceServerClient.generate_request_body(inputs, **kw)
    return body, None if length is None else str(length)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tenure_months": ("INT32", np.int32), "monthly_charges": ("FP32", np.float32)},
        {"tenure_months": ("FP64", np.float64), "monthly_charges": ("INT64", np.int64)},
    ],
    ids=["native", "narrow", "crossed"],
)
def test_binary_inputs_decode_like_json(overrides: dict[str, tuple[str, Any]]) -> None:
    body, length = body_of(tensors(True, overrides))
    assert length is not None and len(body) > int(length)  # binary data really follows the JSON
    binary = decode_v2_binary(body, length, SCHEMA)
    plain, none = body_of(tensors(False, overrides))
    assert none is None
    assert binary.columns == decode_v2(plain, SCHEMA).columns
    assert binary.columns["paperless"] == [row["paperless"] for row in ROWS]  # BOOL, one byte each
    assert binary.columns["gender"] == [row["gender"] for row in ROWS]  # BYTES, length-prefixed


def test_binary_fp32_values_are_the_float32_values_sent() -> None:
    body, length = body_of(tensors(True, {"monthly_charges": ("FP32", np.float32)}))
    assert length is not None
    decoded = decode_v2_binary(body, length, SCHEMA)
    assert decoded.columns["monthly_charges"] == [float(np.float32(row["monthly_charges"])) for row in ROWS]


def _doc_and_data(body: bytes, length: str) -> tuple[dict[str, Any], bytes]:
    return json.loads(body[: int(length)]), body[int(length) :]


def _rebuild(doc: dict[str, Any], data: bytes, *, length: int | None = None) -> tuple[bytes, str]:
    head = json.dumps(doc).encode()
    return head + data, str(len(head) if length is None else length)


def _binary_body() -> tuple[dict[str, Any], bytes]:
    body, length = body_of(tensors(True))
    assert length is not None
    return _doc_and_data(body, length)


def _set_size(doc: dict[str, Any], name: str, size: object) -> None:
    next(t for t in doc["inputs"] if t["name"] == name)["parameters"]["binary_data_size"] = size


def _poke(doc: dict[str, Any], data: bytes, name: str, byte: int) -> bytes:
    """``data`` with the first byte of tensor ``name``'s binary data replaced."""
    offset = 0
    for tensor in doc["inputs"]:
        if tensor["name"] == name:
            return data[:offset] + bytes([byte]) + data[offset + 1 :]
        offset += tensor["parameters"]["binary_data_size"]
    raise AssertionError(name)


MALFORMED: list[tuple[str, Any, str]] = [
    ("header beyond the body", lambda doc, data: (json.dumps(doc).encode(), "999999"), "the body has only"),
    ("header not a number", lambda doc, data: (json.dumps(doc).encode() + data, "-3"), "must be a non-negative integer"),
    (
        "size not matching datatype × shape",
        lambda doc, data: (_set_size(doc, "tenure_months", 12), _rebuild(doc, data))[1],
        "shape [2] of INT64 takes 16 bytes",
    ),
    ("negative size", lambda doc, data: (_set_size(doc, "gender", -4), _rebuild(doc, data))[1], "binary_data_size -4"),
    ("size not an integer", lambda doc, data: (_set_size(doc, "gender", "8"), _rebuild(doc, data))[1], 'binary_data_size "8"'),
    (
        "size beyond the data",
        lambda doc, data: (_set_size(doc, "signup", 10**9), _rebuild(doc, data))[1],
        "has binary_data_size 1000000000, but only 37 bytes of binary data are left",
    ),
    ("data left over", lambda doc, data: _rebuild(doc, data + b"\x00\x00"), "2 bytes follow the JSON"),
    (
        "bool byte not 0 or 1",
        lambda doc, data: _rebuild(doc, _poke(doc, data, "paperless", 7)),
        "other than 0 (false) or 1 (true)",
    ),
    (
        "data and binary_data_size together",
        lambda doc, data: (doc["inputs"][0].update(data=[1, 2]), _rebuild(doc, data))[1],
        'both "data" and binary_data_size',
    ),
    ("binary size without the header", lambda doc, data: (json.dumps(doc).encode(), None), "no Inference-Header-Content-Length"),
    (
        "binary data without the header",
        lambda doc, data: (json.dumps(doc).encode() + data, None),
        "send the Inference-Header-Content-Length header",
    ),
]


@pytest.mark.parametrize(("case", "make", "message"), MALFORMED, ids=[case for case, _, _ in MALFORMED])
def test_a_malformed_binary_body_is_refused_with_a_400_naming_the_problem(case: str, make: Any, message: str) -> None:
    doc, data = _binary_body()
    body, length = make(doc, data)
    with pytest.raises(InvalidInput) as refused:
        if length is None:
            decode_v2(body, SCHEMA)
        else:
            decode_v2_binary(body, length, SCHEMA)
    assert refused.value.status == 400
    assert message in refused.value.message


def _bytes_tensor_body(elements: bytes, count: int, size: int | None = None) -> tuple[bytes, str]:
    doc, data = _binary_body()
    gender = next(t for t in doc["inputs"] if t["name"] == "gender")
    # gender's bytes sit after the two INT64, FP64 and contract_type tensors: rebuild them in order instead.
    offset = 0
    chunks = []
    for tensor in doc["inputs"]:
        n = tensor["parameters"]["binary_data_size"]
        chunk = data[offset : offset + n]
        offset += n
        if tensor is gender:
            chunk = elements
            tensor["parameters"]["binary_data_size"] = len(elements) if size is None else size
            tensor["shape"] = [count]
        chunks.append(chunk)
    return _rebuild(doc, b"".join(chunks))


@pytest.mark.parametrize(
    ("elements", "message"),
    [
        (struct.pack("<I", 50) + b"female" + struct.pack("<I", 4) + b"male", "element 0 says it has 50 bytes"),
        (struct.pack("<I", 6) + b"female" + b"\x04\x00", "ends inside the length of element 1"),
        (struct.pack("<I", 2) + b"\xff\xfe" + struct.pack("<I", 4) + b"male", "element 0 is not UTF-8 text"),
        (struct.pack("<I", 1) + b"f" + struct.pack("<I", 4) + b"male" + b"!", "its 2 BYTES elements take 13 bytes"),
        (b"\x00\x00\x00", "too small for 2 BYTES elements"),
    ],
    ids=["length past the end", "cut length", "not utf-8", "bytes left over", "too small"],
)
def test_malformed_bytes_elements_are_refused(elements: bytes, message: str) -> None:
    body, length = _bytes_tensor_body(elements, 2)
    with pytest.raises(InvalidInput) as refused:
        decode_v2_binary(body, length, SCHEMA)
    assert refused.value.status == 400 and refused.value.field == "gender"
    assert message in refused.value.message


def test_binary_outputs_are_chosen_per_output_or_for_all_and_read_back_by_tritonclient() -> None:
    outputs = {"predict": [1, 0], "probability": [0.75, float("nan")]}
    body, length = body_of(tensors(True))  # no outputs named: tritonclient asks for every output in binary
    assert length is not None
    decoded = decode_v2_binary(body, length, SCHEMA)
    assert decoded.parameters == {"binary_data_output": True}
    every = chosen_outputs(decoded, ("predict", "probability"))
    assert every == [("predict", True), ("probability", True)]
    answer, length = encode_response("churn", "1", "r1", outputs, every)
    assert length is not None
    result = http.InferenceServerClient.parse_response_body(answer, header_length=length)
    assert result.as_numpy("predict").tolist() == [1, 0]
    probability = result.as_numpy("probability")
    assert probability[0] == 0.75 and np.isnan(probability[1])  # NaN travels as NaN in binary, as null in JSON
    mixed = chosen_outputs(
        Decoded(
            {},
            0,
            parameters={"binary_data_output": True},
            outputs=[{"name": "probability", "parameters": {"binary_data": False}}],
        ),
        ("predict", "probability"),
    )
    assert mixed == [("probability", False)]
    answer, length = encode_response("churn", "1", None, outputs, mixed)
    assert length is None and json.loads(answer)["outputs"] == [
        {"name": "probability", "shape": [2], "datatype": "FP64", "data": [0.75, None]}
    ]


@pytest.mark.parametrize(
    ("outputs", "parameters", "message"),
    [
        ([{"name": "score"}], {}, "unknown output 'score' (this model's outputs: predict, probability)"),
        ([{"name": "predict"}, {"name": "predict"}], {}, "output 'predict' is requested twice"),
        ([{"name": "predict", "parameters": {"binary_data": "yes"}}], {}, 'binary_data "yes"'),
        ([{"name": "predict", "parameters": {"classification": 2}}], {}, "asks for classification"),
        ({"name": "predict"}, {}, '"outputs" must be a list'),
        (None, {"binary_data_output": 1}, '"parameters.binary_data_output" must be true or false'),
    ],
)
def test_bad_requested_outputs_are_refused(outputs: object, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        chosen_outputs(Decoded({}, 0, parameters=parameters, outputs=outputs), ("predict", "probability"))
    assert refused.value.status == 400 and message in refused.value.message
