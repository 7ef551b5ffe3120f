"""The gateway's OpenAPI document, written by hand: the routes take raw bodies for speed."""

from __future__ import annotations

from typing import Any

# The Open Inference Protocol's error body: "error" is the whole message; the rest are details.
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "hint": {"type": "string"},
        "field": {"type": "string"},
        "row": {"type": "integer"},
    },
}
_VALUE = {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]}
_V1_REQUEST = {
    "type": "object",
    "description": "Exactly one of instances (records), inputs (columns) or dataframe_split.",
    "properties": {
        "instances": {"type": "array", "items": {"type": "object", "additionalProperties": _VALUE}},
        "inputs": {"type": "object", "additionalProperties": {"type": "array", "items": _VALUE}},
        "dataframe_split": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array", "items": _VALUE}},
            },
        },
    },
}
_EXPLAINED = {
    "type": "object",
    "required": ["model", "version", "features", "explanations"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "explainer": {"type": "string"},
        "output": {"type": "string", "description": "what a row's attributions and the base value add up to"},
        "base_value": {"type": "number"},
        "features": {"type": "array", "items": {"type": "string"}},
        "explanations": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "number"}}},
    },
}
_V2_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": {
                        "type": "string",
                        "enum": ["BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP32", "FP64", "BYTES"],
                    },
                    "data": {"type": "array"},
                },
            },
        },
    },
}


def _responses(ok: dict[str, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ERROR}}}
    return {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}},
        "400": {"description": "Malformed request", **error},
        "401": {"description": "Missing, unknown, revoked or expired bearer token", **error},
        "404": {"description": "Model or version not served", **error},
        "413": {"description": "Body too large", **error},
        "422": {"description": "Invalid input", **error},
        "503": {"description": "Model not loaded yet", **error},
    }


def openapi_document(models: list[str] | None = None) -> dict[str, Any]:
    """The document, naming the models served now so clients (and fuzzers) reach real ones."""
    name_schema: dict[str, Any] = {"type": "string"}
    if models:
        name_schema = {"type": "string", "enum": sorted(models)}

    def _name(version: bool = False) -> list[dict[str, Any]]:
        params = [{"name": "name", "in": "path", "required": True, "schema": name_schema}]
        if version:
            params.append(
                {"name": "version", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
            )
        return params

    v1 = {"type": "object", "properties": {"predictions": {"type": "array"}, "probabilities": {"type": "array"}}}
    v2 = {"type": "object", "properties": {"model_name": {"type": "string"}, "outputs": {"type": "array"}}}
    # Triton's binary tensor data extension: the JSON, then raw tensor bytes (Inference-Header-Content-Length says where).
    binary_body = {
        "type": "string",
        "format": "binary",
        "description": "The JSON request followed by binary tensor data; send Inference-Header-Content-Length.",
    }
    infer = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _V2_REQUEST}, "application/octet-stream": {"schema": binary_body}},
        },
        "responses": _responses(v2),
    }
    infer["responses"]["200"]["content"]["application/octet-stream"] = {"schema": binary_body}
    meta = {"responses": _responses({"type": "object"})}
    stats = {"type": "object", "required": ["model_stats"], "properties": {"model_stats": {"type": "array"}}}
    index_request = {"type": "object", "properties": {"ready": {"type": "boolean"}}}
    index = {
        "requestBody": {"required": False, "content": {"application/json": {"schema": index_request}}},
        "responses": _responses({"type": "array", "items": {"type": "object"}}),
    }
    server = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "extensions": {"type": "array"}},
    }
    health = {"responses": {"200": {"description": "OK"}, "503": {"description": "Not ready"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Shipyard gateway", "version": "1"},
        "paths": {
            "/v2": {
                "get": {
                    "responses": {"200": {"description": "Server metadata", "content": {"application/json": {"schema": server}}}}
                }
            },
            "/v2/health/live": {"get": health},
            "/v2/health/ready": {"get": health},
            "/v2/models/{name}": {"get": {**meta, "parameters": _name()}},
            "/v2/models/{name}/ready": {"get": {**meta, "parameters": _name()}},
            "/v2/models/{name}/infer": {"post": {**infer, "parameters": _name()}},
            "/v2/models/{name}/versions/{version}": {"get": {**meta, "parameters": _name(True)}},
            "/v2/models/{name}/versions/{version}/infer": {"post": {**infer, "parameters": _name(True)}},
            "/v2/models/{name}/config": {"get": {**meta, "parameters": _name()}},
            "/v2/models/{name}/versions/{version}/config": {"get": {**meta, "parameters": _name(True)}},
            "/v2/models/stats": {"get": {"responses": _responses(stats)}},
            "/v2/models/{name}/stats": {"get": {"responses": _responses(stats), "parameters": _name()}},
            "/v2/models/{name}/versions/{version}/stats": {"get": {"responses": _responses(stats), "parameters": _name(True)}},
            "/v2/repository/index": {"post": index},
            "/v1/models/{name}:predict": {
                "post": {
                    "parameters": _name(),
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _V1_REQUEST}}},
                    "responses": _responses(v1),
                }
            },
            "/v1/models/{name}:explain": {
                "post": {
                    "parameters": _name(),
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _V1_REQUEST}}},
                    "responses": _responses(_EXPLAINED),
                }
            },
            "/metrics": {"get": {"responses": {"200": {"description": "Prometheus text format"}}}},
        },
    }
