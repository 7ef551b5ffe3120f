"""The control plane's OpenAPI document, generated from the endpoint table and the result types."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from shipyard.server.endpoints import API, ENDPOINTS, Endpoint, result_type

REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
    "required": ["status", "error", "message"],
    "properties": {
        "status": {"type": "integer"},
        "error": {"type": "string"},
        "message": {"type": "string"},
        "hint": {"type": ["string", "null"]},
    },
}
_REFUSALS = {
    "401": "no token, or a malformed, unknown, expired or revoked one",
    "403": "the principal lacks the role, or separation of duties forbids it",
    "404": "an unknown model, version, rollout or token",
    "409": "a gate blocked it, or the state does not allow it",
    "413": "the body is over the server's limit",
    "422": "a bad parameter",
    "503": "a store or registry cannot be reached",
}


def _fields(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


@cache
def openapi_document() -> dict[str, Any]:
    adapters: list[tuple[str, Any, TypeAdapter[Any]]] = []
    for endpoint in ENDPOINTS:
        adapters.append((f"{endpoint.name}.result", "serialization", TypeAdapter(result_type(endpoint))))
        adapters.append((f"{endpoint.name}.params", "validation", TypeAdapter(endpoint.params)))
    schemas, definitions = TypeAdapter.json_schemas(adapters, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        result = schemas[(f"{endpoint.name}.result", "serialization")]
        params = schemas[(f"{endpoint.name}.params", "validation")]
        paths.setdefault(f"{API}{endpoint.path}", {})[endpoint.method.lower()] = _operation(endpoint, result, params, definitions)
    components = {**definitions.get("$defs", {}), "Error": _ERROR}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shipyard control plane", "version": "1"},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(endpoint: Endpoint, result: dict[str, Any], params: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    model = defs.get("$defs", {}).get(params["$ref"].rsplit("/", 1)[-1], params) if "$ref" in params else params
    properties: dict[str, Any] = {k: v for k, v in model.get("properties", {}).items() if k != "file"}
    required = set(model.get("required", []))
    in_path = _fields(endpoint.path)
    parameters = [{"name": n, "in": "path", "required": True, "schema": properties.pop(n)} for n in in_path]
    body_fields = endpoint.method in ("POST", "PUT") and endpoint.body == "json"
    if not body_fields or endpoint.body == "raw":
        parameters += [{"name": n, "in": "query", "required": n in required, "schema": s} for n, s in properties.items()]
    if endpoint.paged:
        parameters += [
            {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0, "default": 0}},
            {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
        ]
        answer = {
            "type": "object",
            "required": ["items", "total", "next"],
            "properties": {"items": result, "total": {"type": "integer"}, "next": {"type": ["integer", "null"]}},
        }
    else:
        answer = {"type": "object", "required": ["result"], "properties": {"result": result}}
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "parameters": parameters,
        "responses": {
            "200": {"description": "done", "content": {"application/json": {"schema": answer}}},
            **{
                code: {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for code, text in _REFUSALS.items()
            },
        },
    }
    if body_fields:
        body = {
            "type": "object",
            "additionalProperties": False,
            "properties": properties,
            "required": sorted(required & set(properties)),
        }
        operation["requestBody"] = {"required": bool(body["required"]), "content": {"application/json": {"schema": body}}}
    elif endpoint.body == "raw":
        operation["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    return operation
