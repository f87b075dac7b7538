"""Typed routes, names and url_for, query types, typed bodies (422), send() of
Structs and pydantic models, and server.openapi() (docs/types.md)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, TypedDict

import msgspec
import pydantic
import pytest
from openapi_spec_validator import validate

import simples
from simples.validation import ValidationError
from tests.conftest import aio


def echo(tag: str) -> Any:
    async def handler(connection: Any) -> dict[str, Any]:
        return {"tag": tag, "params": {k: str(v) for k, v in connection.params.items()}}

    handler.__name__ = f"echo_{tag}"
    return handler


async def get_json(client: Any, path: str) -> tuple[int, Any]:
    response = await client.get(path)
    text = await response.text()
    return response.status, text


# ------------------------------------------------------------------ converters


@aio
async def test_builtin_converters_parse_and_fall_through() -> None:
    app = simples.server()
    seen: dict[str, Any] = {}

    @app.get("/n/:id<int>")
    async def by_int(connection: Any) -> str:
        seen["int"] = connection.params["id"]
        return "int"

    @app.get("/n/:id<uuid>")
    async def by_uuid(connection: Any) -> str:
        seen["uuid"] = connection.params["id"]
        return "uuid"

    @app.get("/f/:x<float>")
    async def by_float(connection: Any) -> str:
        seen["float"] = connection.params["x"]
        return "float"

    @app.get("/files/:rest<path>")
    async def by_path(connection: Any) -> str:
        seen["path"] = connection.params["rest"]
        return "path"

    app.get("/n/:slug", echo("slug"))
    async with simples.client(app) as client:
        assert await (await client.get("/n/-42")).text() == "int"
        assert seen["int"] == -42
        value = "0F8FAD5B-D9CB-469F-A165-70867728950E"
        assert await (await client.get(f"/n/{value}")).text() == "uuid"
        assert seen["uuid"] == uuid.UUID(value)
        assert "slug" in await (await client.get("/n/4x2")).text()
        assert await (await client.get("/f/1.5")).text() == "float"
        assert seen["float"] == 1.5
        assert (await client.get("/f/abc")).status == 404
        assert await (await client.get("/files/a/b/c.txt")).text() == "path"
        assert seen["path"] == "a/b/c.txt"
        assert (await client.get("/files/")).status == 404
        # percent-encoded values arrive decoded
        assert await (await client.get("/files/a%20b/%C3%A9")).text() == "path"
        assert seen["path"] == "a b/é"
        response = await client.get("/n/caf%C3%A9")
        assert '"slug":"café"' in (await response.text()).replace(" ", "") or response.status == 200


@aio
async def test_unparsable_segment_is_404_or_405() -> None:
    app = simples.server()
    app.get("/users/:id<int>", echo("user"))
    app.post("/users/:id<int>", echo("post"))
    async with simples.client(app) as client:
        assert (await client.get("/users/abc")).status == 404
        assert (await client.get("/users/1.5")).status == 404
        assert (await client.delete("/users/3")).status == 405
        assert (await client.delete("/users/x")).status == 404


@aio
async def test_custom_converter() -> None:
    app = simples.server()
    app.converter("color", "[0-9a-f]{6}", lambda text: int(text, 16), lambda n: f"{n:06x}")
    app.get("/c/:hex<color>", lambda connection: str(connection.params["hex"]), name="color")
    async with simples.client(app) as client:
        assert await (await client.get("/c/ff0000")).text() == str(0xFF0000)
        assert (await client.get("/c/red")).status == 404
    assert app.url_for("color", hex=255) == "/c/0000ff"


@aio
async def test_converters_reach_hosts_and_sub_routers() -> None:
    app = simples.server()
    app.converter("even", "[0-9]+", lambda text: int(text) if int(text) % 2 == 0 else int("x"))
    api = app.router("/api")
    api.get("/:n<even>", echo("even"), name="even")
    host = app.host("example.com")
    host.get("/:n<even>", echo("host"))
    async with simples.client(app) as client:
        assert (await client.get("/api/4")).status == 200
        assert (await client.get("/api/3")).status == 404
    assert app.url_for("even", n=8) == "/api/8"


# ------------------------------------------------------------------ url_for


@aio
async def test_url_for_round_trips_to_the_same_route_and_params() -> None:
    app = simples.server()
    got: dict[str, Any] = {}

    async def capture(connection: Any) -> str:
        got.clear()
        got.update(connection.params)
        got["route"] = connection.route.name
        return "ok"

    app.get("/users/:id<int>", capture, name="user")
    app.get("/items/:key", capture, name="item")
    app.get("/docs/:page<path>", capture, name="doc")
    app.get("/things/:id<uuid>/:n<float>", capture, name="thing")
    api = app.router("/api")
    api.get("/orders/:id<int>", capture, name="order")
    key = uuid.uuid4()
    cases = [
        ("user", {"id": -7}),
        ("item", {"key": "café au lait & co"}),
        ("doc", {"page": "guide/intro v2.md"}),
        ("thing", {"id": key, "n": 2.5}),
        ("order", {"id": 12}),
    ]
    async with simples.client(app) as client:
        for name, params in cases:
            path = app.url_for(name, **params)
            response = await client.get(path)
            assert response.status == 200, path
            assert got == {**params, "route": name}, path

        @app.get("/link/:id<int>")
        async def link(connection: Any) -> str:
            return str(connection.url_for("user", id=connection.params["id"], query={"tab": "a b"}))

        assert await (await client.get("/link/5")).text() == "/users/5?tab=a+b"
    assert app.url_for("item", key="a/b") == "/items/a%2Fb"
    assert app.url_for("doc", page="a/b c") == "/docs/a/b%20c"
    assert app.url_for("user", query=[("x", 1), ("x", 2)], id=1) == "/users/1?x=1&x=2"


@aio
async def test_url_for_errors() -> None:
    app = simples.server()
    app.get("/users/:id<int>", echo("u"), name="user")
    with pytest.raises(LookupError):
        app.url_for("nope")
    with pytest.raises(LookupError):
        app.url_for("user")
    with pytest.raises(LookupError):
        app.url_for("user", id=1, other=2)
    with pytest.raises(ValueError, match="does not fit"):
        app.url_for("user", id="seven")
    with pytest.raises(ValueError, match="taken"):
        app.get("/other", echo("o"), name="user")


@aio
async def test_url_for_adds_the_root_path_of_the_request() -> None:
    app = simples.server()
    app.get("/users/:id<int>", echo("u"), name="user")

    @app.get("/here")
    async def here(connection: Any) -> str:
        connection.scope["root_path"] = "/mounted"
        return str(connection.url_for("user", id=1))

    async with simples.client(app) as client:
        assert await (await client.get("/here")).text() == "/mounted/users/1"


@aio
async def test_names_on_every_registration_form_and_per_host() -> None:
    app = simples.server()
    app.route(["GET", "POST"], "/a", echo("a"), name="a")
    app.put("/b", echo("b"), name="b")
    app.patch("/c", name="c")(echo("c"))
    app.delete("/d", echo("d"), name="d")
    app.all("/e", echo("e"), name="e")
    app.ws("/f/:room", lambda ws: None, name="f")
    host = app.host("other.test")
    host.get("/g", echo("g"), name="g")
    assert [app.url_for(n) for n in "abcde"] == ["/a", "/b", "/c", "/d", "/e"]
    assert app.url_for("f", room="x") == "/f/x"
    with pytest.raises(LookupError):
        app.url_for("g")
    assert host.url_for("g") == "/g"


@aio
async def test_url_for_in_templates(tmp_path: Any) -> None:
    (tmp_path / "page.html").write_text('<a href="{{ url_for("user", id=3, query={"t": 1}) }}">')
    app = simples.server()
    app.engine(simples.Jinja(str(tmp_path)))
    app.get("/users/:id<int>", echo("u"), name="user")
    app.get("/page", "page.html")
    async with simples.client(app) as client:
        assert await (await client.get("/page")).text() == '<a href="/users/3?t=1">'


# ------------------------------------------------------------------ query types


@aio
async def test_query_types_and_400() -> None:
    app = simples.server()
    errors: list[Any] = []

    @app.get("/list")
    async def listing(connection: Any) -> dict[str, Any]:
        query = connection.query
        return {
            "page": query.get("page", 1, type=int),
            "ratio": query.get("ratio", type=float),
            "on": query.get("on", False, type=bool),
            "plain": query.get("plain", "x"),
        }

    @app.error(400)
    async def bad(connection: Any) -> str:
        errors.append(connection.data["error"])
        return "bad query"

    async with simples.client(app) as client:
        response = await client.get("/list?page=3&ratio=0.5&on=yes")
        assert await response.json() == {"page": 3, "ratio": 0.5, "on": True, "plain": "x"}
        assert await (await client.get("/list")).json() == {
            "page": 1, "ratio": None, "on": False, "plain": "x",
        }
        for query in ("page=x", "ratio=abc", "on=maybe"):
            response = await client.get(f"/list?{query}")
            assert response.status == 400
            assert await response.text() == "bad query"
    assert all(isinstance(error, simples.HTTPError) for error in errors)


def test_multidict_get_type_outside_a_request() -> None:
    from simples.http.multidict import MultiDict

    values = MultiDict([("a", "1"), ("b", "x")])
    assert values.get("a", type=int) == 1
    assert values.get("z", 5, type=int) == 5
    with pytest.raises(ValueError, match="b="):
        values.get("b", type=int)


# ------------------------------------------------------------------ bodies


@dataclasses.dataclass
class Item:
    name: str
    qty: int


@dataclasses.dataclass
class Order:
    customer: str
    items: list[Item]
    tags: list[str] = dataclasses.field(default_factory=list)


class Movie(TypedDict):
    title: str
    year: int


class Point(msgspec.Struct):
    x: int
    y: int


class Child(pydantic.BaseModel):
    age: int


class Parent(pydantic.BaseModel):
    name: str
    children: list[Child]


def typed_app() -> simples.Server:
    app = simples.server(limits={"body": 200})

    @app.post("/orders", body=Order)
    async def orders(connection: Any) -> Any:
        order = await connection.body().json()
        assert isinstance(order, Order)
        assert isinstance(order.items[0], Item)
        return order

    @app.post("/movies", body=Movie)
    async def movies(connection: Any) -> Any:
        return await connection.body().json()

    @app.post("/points", body=Point)
    async def points(connection: Any) -> Any:
        point = await connection.body().json()
        assert isinstance(point, Point)
        return point

    @app.post("/parents", body=Parent)
    async def parents(connection: Any) -> Any:
        parent = await connection.body().json()
        assert isinstance(parent, Parent)
        return parent

    @app.post("/free")
    async def free(connection: Any) -> Any:
        order = await connection.body().json(schema=Order)
        return {"customer": order.customer}

    return app


async def post(client: Any, path: str, data: Any) -> tuple[int, str | None, Any]:
    request = client.post(path).type("json")
    response = await request.send(data if isinstance(data, bytes) else msgspec.json.encode(data))
    body = await response.text()
    return response.status, response.headers.get("content-type"), body


@pytest.mark.parametrize(
    ("path", "good", "bad", "loc"),
    [
        (
            "/orders",
            {"customer": "ann", "items": [{"name": "pen", "qty": 2}], "tags": ["a"]},
            {"customer": "ann", "items": [{"name": "pen", "qty": 2}, {"name": "ink", "qty": "x"}]},
            ["items", 1, "qty"],
        ),
        ("/orders", None, {"customer": "ann", "items": [{"name": "pen"}]}, ["items", 0, "qty"]),
        ("/orders", None, {"customer": "ann", "items": [], "tags": [1]}, ["tags", 0]),
        ("/movies", {"title": "M", "year": 1931}, {"title": "M", "year": "old"}, ["year"]),
        ("/points", {"x": 1, "y": 2}, {"x": 1}, ["y"]),
        (
            "/parents",
            {"name": "p", "children": [{"age": 3}]},
            {"name": "p", "children": [{"age": 3}, {"age": "old"}]},
            ["children", 1, "age"],
        ),
    ],
)
@aio
async def test_declared_bodies_validate_and_answer_422(
    path: str, good: Any, bad: Any, loc: list[Any]
) -> None:
    app = typed_app()
    async with simples.client(app) as client:
        if good is not None:
            status, kind, body = await post(client, path, good)
            assert status == 200, body
            assert msgspec.json.decode(body) == good
        status, kind, body = await post(client, path, bad)
        assert status == 422
        assert kind == "application/problem+json"
        problem = msgspec.json.decode(body)
        assert problem["type"] == "about:blank"
        assert problem["title"] == "Unprocessable Content"
        assert problem["status"] == 422
        assert problem["detail"]
        assert problem["errors"][0]["loc"] == loc
        assert problem["errors"][0]["message"]
        assert problem["errors"][0]["pointer"] == "".join(f"/{step}" for step in loc)


@aio
async def test_malformed_json_is_400_and_413_comes_before_parsing() -> None:
    app = typed_app()
    async with simples.client(app) as client:
        for path in ("/orders", "/parents", "/free"):
            status, _, _ = await post(client, path, b'{"customer": ')
            assert status == 400, path
            status, _, _ = await post(client, path, b"{" + b" " * 300 + b"}")
            assert status == 413, path
        status, _, body = await post(client, "/free", {"customer": 1, "items": []})
        assert status == 422
        status, _, body = await post(client, "/free", {"customer": "c", "items": []})
        assert msgspec.json.decode(body) == {"customer": "c"}


@aio
async def test_422_goes_through_the_error_routes() -> None:
    app = typed_app()
    seen: list[Any] = []

    @app.error(422)
    async def invalid(connection: Any) -> dict[str, Any]:
        error = connection.data["error"]
        seen.append(error)
        return {"fields": [entry["loc"] for entry in error.errors]}

    async with simples.client(app) as client:
        status, kind, body = await post(client, "/points", {"x": "1", "y": 2})
        assert status == 422
        assert kind == "application/json"
        assert msgspec.json.decode(body) == {"fields": [["x"]]}
    assert isinstance(seen[0], ValidationError)


# ------------------------------------------------------------------ send()


@aio
async def test_send_structs_and_pydantic_models() -> None:
    app = simples.server()
    app.get("/struct", lambda connection: Point(1, 2))
    app.get("/model", lambda connection: Parent(name="p", children=[Child(age=1)]))
    app.get("/nested", lambda connection: {"p": Point(3, 4), "m": Child(age=5)})
    async with simples.client(app) as client:
        response = await client.get("/struct")
        assert response.headers.get("content-type") == "application/json"
        assert await response.json() == {"x": 1, "y": 2}
        assert await (await client.get("/model")).json() == {
            "name": "p", "children": [{"age": 1}],
        }
        assert await (await client.get("/nested")).json() == {
            "p": {"x": 3, "y": 4}, "m": {"age": 5},
        }


# ------------------------------------------------------------------ openapi


def test_openapi_document_is_valid_and_complete() -> None:
    app = typed_app()

    @app.get("/orders/:id<int>", name="order", returns=Order)
    async def order(connection: Any) -> None:
        """One order.

        By its number."""

    @app.get("/things/:key<uuid>/:ratio<float>/:rest<path>", returns=list[Point])
    async def thing(connection: Any) -> None:
        return None

    app.get("/parents/:name", echo("p"), returns=Parent)
    app.all("/any/*", echo("any"))
    app.ws("/socket/:room", lambda ws: None)
    api = app.router("/api")
    api.put("/movies/:id", echo("m"), body=Movie, name="put_movie")
    document = app.openapi("Shop", "1.0", description="A test")
    validate(document)  # type: ignore[arg-type]
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Shop", "version": "1.0", "description": "A test"}
    paths = document["paths"]
    get = paths["/orders/{id}"]["get"]
    assert get["operationId"] == "order"
    assert get["summary"] == "One order."
    assert get["description"] == "By its number."
    assert get["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }
    params = paths["/things/{key}/{ratio}/{rest}"]["get"]["parameters"]
    assert [p["schema"] for p in params] == [
        {"type": "string", "format": "uuid"},
        {"type": "number"},
        {"type": "string"},
    ]
    post = paths["/orders"]["post"]
    assert post["operationId"] == "orders"
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Order"
    }
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert paths["/api/movies/{id}"]["put"]["operationId"] == "put_movie"
    assert set(paths["/any/{wildcard}"]) == {"get", "put", "post", "delete", "patch"}
    assert not any(path.startswith("/socket") for path in paths)
    schemas = document["components"]["schemas"]
    assert {"Order", "Item", "Movie", "Point", "Parent", "Child"} <= set(schemas)
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


@aio
async def test_example_api() -> None:
    from examples.api.app import server

    async with simples.client(server) as client:
        response = await client.post("/api/notes").type("json").send({"title": "milk"})
        assert response.status == 201
        assert response.headers.get("location") == "/api/notes/1"
        note = await response.json()
        assert (await client.get("/api/notes/1")).status == 200
        assert (await client.get(f"/api/by-token/{note['token'].upper()}")).status == 200
        assert (await client.get("/api/notes/one")).status == 404
        listing = await (await client.get("/api/notes?size=5")).json()
        assert listing["next"] == "/api/notes?page=2&size=5"
        assert (await client.get("/api/notes?page=x")).status == 400
        bad = await client.post("/api/notes").type("json").send({"title": 3})
        assert bad.status == 422
        validate(await (await client.get("/openapi.json")).json())
