"""``server.openapi(title, version)``: an OpenAPI 3.1 document from the routes.

See docs/types.md. Paths come from the patterns (``/users/:id<int>`` is
``/users/{id}`` with an integer parameter), request bodies from ``body=``,
answers from ``returns=`` (JSON Schema by msgspec, or pydantic for its
models), operation ids from route names (else the handler's name) and
summaries from the handlers' docstrings. WebSocket routes are left out; a
route for every method (``all``) is listed under each of get, put, post,
delete and patch.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .paths import Param
from .validation import PROBLEM_JSON, is_pydantic

if TYPE_CHECKING:
    from .router import Route

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ANY_AS = ("get", "put", "post", "delete", "patch")
_REF = "#/components/schemas/{name}"

_PROBLEM = {
    "type": "object",
    "description": "Problem details (RFC 9457) of a body that does not match its type",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "pointer": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["loc", "message"],
            },
        },
    },
    "required": ["type", "title", "status"],
}


def document(
    routes: Iterable[Route], title: str, version: str, info: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (in registration order)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for route in routes:
        method = route.method.lower()
        if route.method == "*":
            methods: tuple[str, ...] = _ANY_AS
        elif method in _METHODS:
            methods = (method,)
        else:
            continue  # WebSocket routes and methods OpenAPI has no field for
        template, parameters = _template(route.pieces)
        item = paths.setdefault(template, {})
        for verb in methods:
            if verb in item:
                continue  # the route registered first answers (docs/routing.md)
            item[verb] = _operation(route, verb, parameters, schemas, used)
    result: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, **(info or {})},
        "paths": paths,
    }
    components = schemas.components()
    if components:
        result["components"] = {"schemas": components}
    return result


def _template(pieces: list[str | Param]) -> tuple[str, list[dict[str, Any]]]:
    parts: list[str] = []
    parameters: list[dict[str, Any]] = []
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(piece)
            continue
        name = "wildcard" if piece.name == "*" else piece.name
        parts.append("{" + name + "}")
        converter = piece.converter
        schema = dict(converter.schema) if converter is not None else {"type": "string"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return "".join(parts), parameters


def _operation(
    route: Route,
    verb: str,
    parameters: list[dict[str, Any]],
    schemas: _Schemas,
    used: set[str],
) -> dict[str, Any]:
    handler = route.handler
    base = route.name or getattr(handler, "__name__", None) or "operation"
    operation_id = base
    if operation_id in used:
        operation_id = f"{base}_{verb}"
    count = 2
    while operation_id in used:
        operation_id = f"{base}_{verb}_{count}"
        count += 1
    used.add(operation_id)
    operation: dict[str, Any] = {"operationId": operation_id}
    doc = inspect.getdoc(handler)
    if doc:
        summary, _, description = doc.partition("\n")
        operation["summary"] = summary.strip()
        if description.strip():
            operation["description"] = description.strip()
    if parameters:
        operation["parameters"] = [dict(parameter) for parameter in parameters]
    responses: dict[str, Any] = {}
    if route.returns is not None:
        responses["200"] = {
            "description": "OK",
            "content": {"application/json": {"schema": schemas.ref(route.returns)}},
        }
    else:
        responses["200"] = {"description": "OK"}
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(route.body)}},
        }
        responses["400"] = {"description": "Malformed JSON"}
        responses["422"] = {
            "description": "The body does not match its type",
            "content": {PROBLEM_JSON: {"schema": schemas.named("ValidationProblem", _PROBLEM)}},
        }
    operation["responses"] = responses
    return operation


class _Schemas:
    """JSON Schemas of the body and answer types, shared as components."""

    def __init__(self) -> None:
        self._types: list[Any] = []
        self._refs: list[tuple[dict[str, Any], int]] = []  # placeholders to fill
        self._components: dict[str, Any] = {}

    def named(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        self._components.setdefault(name, schema)
        return {"$ref": _REF.format(name=name)}

    def ref(self, kind: Any) -> dict[str, Any]:
        if is_pydantic(kind):
            schema = kind.model_json_schema(ref_template=_REF.replace("{name}", "{model}"))
            for name, definition in schema.pop("$defs", {}).items():
                self._components.setdefault(name, definition)
            return self.named(kind.__name__, schema)
        # msgspec: every type at once at the end, so shared types are one component
        placeholder: dict[str, Any] = {}
        if kind not in self._types:
            self._types.append(kind)
        self._refs.append((placeholder, self._types.index(kind)))
        return placeholder

    def components(self) -> dict[str, Any]:
        if self._types:
            import msgspec

            found, components = msgspec.json.schema_components(self._types, ref_template=_REF)
            for placeholder, index in self._refs:
                placeholder.update(found[index])
            for name, schema in components.items():
                self._components.setdefault(name, schema)
        return self._components


__all__ = ["document"]
