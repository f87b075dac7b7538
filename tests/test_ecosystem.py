"""simples among other ASGI code (docs/ecosystem.md): mounting real apps
(Starlette, prometheus_client), being mounted under Starlette, the route in the
scope for observability middlewares (OpenTelemetry with the SDK's in-memory
exporter), server-sent events. Real-server behaviour (wrap() under listen and
start) is in test_ecosystem_wire.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, Counter, make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import simples
from simples import ClientError
from simples.connection import format_event
from simples.router import path_format
from tests.conftest import aio

# ------------------------------------------------------------------- mounting


def starlette_app(events: list[str]) -> Starlette:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "path": request.scope["path"],
                "root_path": request.scope["root_path"],
                "url": str(request.url),
                "url_for": str(request.url_for("item", id=7)),
            }
        )

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"item {request.path_params['id']}")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{websocket.scope['root_path']} echo {text}")
        await websocket.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("starlette up")
        yield
        events.append("starlette down")

    return Starlette(
        routes=[
            Route("/hello", hello),
            Route("/items/{id:int}", item, name="item"),
            WebSocketRoute("/ws", echo),
        ],
        lifespan=lifespan,
    )


@aio
async def test_a_mounted_starlette_app_serves_http_websocket_and_lifespan() -> None:
    events: list[str] = []
    app = simples.server()
    app.on("start", lambda: events.append("simples up"))
    app.on("stop", lambda: events.append("simples down"))
    app.get("/", lambda c: "home")
    app.mount("/star", starlette_app(events))
    async with simples.client(app) as client:
        assert events == ["starlette up", "simples up"]
        r = await client.get("/star/hello?q=1")
        assert r.status == 200
        assert await r.json() == {
            "path": "/star/hello",
            "root_path": "/star",
            "url": "http://testserver/star/hello?q=1",
            "url_for": "http://testserver/star/items/7",
        }
        r = await client.get("/star/items/12")
        assert (r.status, await r.text()) == (200, "item 12")
        assert (await client.get("/star/nothing")).status == 404  # Starlette's 404
        assert await (await client.get("/")).text() == "home"
        ws = await client.ws("/star/ws")
        await ws.send("hi")
        assert (await ws.receive()).data == "/star echo hi"
        async for _ in ws:
            pass
        assert ws.close_code == 1000
    assert events[2:] == ["simples down", "starlette down"]


@aio
async def test_a_mounted_apps_lifespan_state_reaches_its_requests() -> None:
    # Starlette's lifespan yields its state; its requests read it as request.state
    # (https://asgi.readthedocs.io/en/latest/specs/lifespan.html#lifespan-state)
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"db": "ready"}

    async def status(request: Request) -> PlainTextResponse:
        seen = str(request.state.db)
        request.state.db = "changed"  # this request's copy: the next one sees "ready"
        return PlainTextResponse(seen)

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.state.db)
        await websocket.close()

    star = Starlette(routes=[Route("/db", status), WebSocketRoute("/ws", echo)], lifespan=lifespan)
    app = simples.server()
    app.mount("/star", star)
    async with simples.client(app) as client:
        for _ in range(2):
            r = await client.get("/star/db")
            assert (r.status, await r.text()) == (200, "ready")
        ws = await client.ws("/star/ws")
        assert (await ws.receive()).data == "ready"


@aio
async def test_the_mounting_routers_middleware_runs_first_and_may_answer() -> None:
    app = simples.server()
    api = app.router("/api")
    seen: list[str] = []

    @api.use
    async def auth(connection: Any, next: Any) -> None:
        seen.append(connection.path)
        if connection.headers.get("authorization") != "Bearer ok":
            await connection.error(401)
            return
        await next()

    api.mount("/star", starlette_app([]))
    async with simples.client(app) as client:
        r = await client.get("/api/star/items/3")
        assert r.status == 401
        r = await client.get("/api/star/items/3", headers={"authorization": "Bearer ok"})
        assert (r.status, await r.text()) == (200, "item 3")
        with pytest.raises(ClientError) as refused:
            await client.ws("/api/star/ws")
        assert refused.value.status == 401
        ws = await client.ws("/api/star/ws", headers={"authorization": "Bearer ok"})
        await ws.send("x")
        # a mount on a sub-router is relative to its prefix
        assert (await ws.receive()).data == "/api/star echo x"
        await ws.close()
    assert seen == ["/api/star/items/3"] * 2 + ["/api/star/ws"] * 2


@aio
async def test_prometheus_metrics_app_mounted() -> None:
    registry = CollectorRegistry()
    hits = Counter("hits", "Requests seen", registry=registry)
    app = simples.server()

    @app.get("/")
    async def home(connection: Any) -> str:
        hits.inc()
        return "ok"

    app.router("/ops").mount("/metrics", make_asgi_app(registry=registry))
    # prometheus_client's app has no lifespan support: it takes no part in it
    async with simples.client(app) as client:
        await client.get("/")
        await client.get("/")
        r = await client.get("/ops/metrics")
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert "hits_total 2.0" in await r.text()


@aio
async def test_longest_prefix_wins_and_prefixes_match_whole_segments() -> None:
    app = simples.server()
    app.mount("/star", starlette_app([]))
    app.router("/star/native").get("/x", lambda c: "simples")
    app.get("/starlight", lambda c: "not the mount")
    async with simples.client(app) as client:
        assert await (await client.get("/star/native/x")).text() == "simples"
        assert await (await client.get("/starlight")).text() == "not the mount"
        assert await (await client.get("/star/items/1")).text() == "item 1"


@aio
async def test_a_mounted_apps_failed_startup_is_reported() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    app = simples.server()
    app.mount("/broken", broken)
    with pytest.raises(ClientError, match="no database"):
        async with simples.client(app):
            pass


@aio
async def test_a_mounted_apps_failed_shutdown_is_reported(caplog: Any) -> None:
    async def app_(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "stuck"})

    stopped: list[bool] = []
    app = simples.server()
    app.on("stop", lambda: stopped.append(True))
    app.mount("/m", app_)
    with caplog.at_level(logging.ERROR, "simples"), pytest.raises(ClientError, match="stuck"):
        async with simples.client(app):
            pass
    assert stopped == [True]  # the server's own stop callbacks ran first


@aio
async def test_features_leave_a_mounted_apps_response_alone() -> None:
    app = simples.server(compression={"min_size": 1}, cors={"origins": "*"})
    app.mount("/star", starlette_app([]))
    async with simples.client(app) as client:
        r = await client.get(
            "/star/items/5", headers={"accept-encoding": "gzip", "origin": "https://a.example"}
        )
        assert await r.text() == "item 5"
        assert "content-encoding" not in r.headers
        assert "access-control-allow-origin" not in r.headers


def test_mount_refuses_what_is_not_a_mount() -> None:
    app = simples.server()
    with pytest.raises(ValueError, match="prefix"):
        app.mount("/", starlette_app([]))
    with pytest.raises(TypeError):
        app.mount("/x", "not an app")  # type: ignore[arg-type]
    app.mount("/x", starlette_app([]))
    with pytest.raises(ValueError, match="mounted already"):
        app.mount("/x/", starlette_app([]))


# --------------------------------------------------------------- being mounted


def simples_under_starlette() -> tuple[simples.Server, Starlette]:
    app = simples.server()

    @app.get("/users/:id")
    async def user(connection: Any) -> dict[str, Any]:
        return {
            "path": connection.path,
            "url": connection.url.href,
            "id": connection.params["id"],
        }

    @app.ws("/live")
    async def live(ws: Any) -> None:
        await ws.send(ws.path)

    app.router("/admin").get("", lambda c: c.path)
    outer = Starlette(routes=[Mount("/sub", app=app)])
    return app, outer


@aio
async def test_simples_mounted_in_starlette_honours_root_path() -> None:
    _, outer = simples_under_starlette()
    async with simples.client(outer) as client:
        r = await client.get("/sub/users/42?x=1")
        assert r.status == 200
        assert await r.json() == {
            "path": "/users/42",
            "url": "http://testserver/sub/users/42?x=1",
            "id": "42",
        }
        assert await (await client.get("/sub/admin")).text() == "/admin"
        assert (await client.get("/users/42")).status == 404  # Starlette's: not under /sub
        ws = await client.ws("/sub/live")
        assert (await ws.receive()).data == "/live"


@aio
async def test_root_path_without_the_prefix_in_path_is_taken_as_is() -> None:
    # an older server convention: path already below root_path
    app = simples.server()
    app.get("/p", lambda c: {"path": c.path, "url": c.url.href})
    scope_extra = {"root_path": "/mnt"}

    async def old_style(scope: Any, receive: Any, send: Any) -> None:
        scope = {**scope, **scope_extra}
        if scope["type"] == "http":
            scope["path"] = scope["path"].removeprefix("/mnt")
        await app(scope, receive, send)

    async with simples.client(old_style) as client:
        r = await client.get("/mnt/p")
        assert await r.json() == {"path": "/p", "url": "http://testserver/mnt/p"}


# ---------------------------------------------------------------- observability


def test_path_format() -> None:
    assert path_format("/users/:id") == "/users/{id}"
    assert path_format("/users/:id<int>/posts/:post") == "/users/{id}/posts/{post}"
    assert path_format("/files/*") == "/files/{path}"
    assert path_format("/plain") == "/plain"


class Recorder:
    """A pure ASGI middleware that looks at the scope after the app ran."""

    def __init__(self, app: Any, seen: list[Any]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] in ("http", "websocket"):
            self.seen.append((scope.get("route"), scope.get("endpoint")))


@aio
async def test_route_and_endpoint_reach_an_outer_middleware() -> None:
    seen: list[Any] = []
    app = simples.server()

    async def show(connection: Any) -> str:
        return "user"

    async def live(ws: Any) -> None:
        await ws.send("hi")

    app.router("/api").get("/users/:id", show)
    app.ws("/live/:room", live)
    app.wrap(Recorder, seen=seen)
    async with simples.client(app) as client:
        assert await (await client.get("/api/users/1")).text() == "user"
        assert (await client.get("/nowhere")).status == 404
        ws = await client.ws("/live/lobby")
        assert (await ws.receive()).data == "hi"
        async for _ in ws:
            pass
    (route, endpoint), missing, (ws_route, ws_endpoint) = seen
    assert (route.path, route.path_format, route.method) == (
        "/api/users/:id",
        "/api/users/{id}",
        "GET",
    )
    assert endpoint is show
    assert missing == (None, None)
    assert ws_route.path_format == "/live/{room}"
    assert ws_endpoint is live


@aio
async def test_opentelemetry_spans_are_named_by_route() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = simples.server()
    app.get("/users/:id", lambda c: "user")
    app.router("/v1").post("/orders/:id", lambda c: "order")
    traced = OpenTelemetryMiddleware(app, tracer_provider=provider)
    outer = Starlette(routes=[Mount("/svc", app=traced)])
    async with simples.client(traced) as client:
        assert (await client.get("/users/7")).status == 200
        assert (await client.post("/v1/orders/9").send("")).status == 200
        assert (await client.get("/missing/3")).status == 404
    async with simples.client(outer) as client:
        assert (await client.get("/svc/users/8")).status == 200
    servers = [span for span in exporter.get_finished_spans() if span.kind.name == "SERVER"]
    named = [(span.name, (span.attributes or {}).get("http.route")) for span in servers]
    assert named == [
        ("GET /users/{id}", "/users/{id}"),
        ("POST /v1/orders/{id}", "/v1/orders/{id}"),
        ("GET /missing/3", None),  # no route: the middleware's own name stays
        ("GET /svc/users/{id}", "/svc/users/{id}"),
    ]


@aio
async def test_route_log_token() -> None:
    lines: list[str] = []
    app = simples.server()
    app.logger(format="%method %route %path", log=lines.append)
    app.get("/users/:id", lambda c: "u")
    async with simples.client(app) as client:
        await client.get("/users/3")
        await client.get("/none")
    assert lines == ["GET /users/:id /users/3", "GET - /none"]


# ------------------------------------------------------------- server-sent events


def parse_events(text: str) -> list[dict[str, Any]]:
    """A minimal EventSource parser (the HTML standard's interpretation)."""
    events: list[dict[str, Any]] = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event: dict[str, Any] = {"data": []}
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                event["data"].append(value)
            elif field:
                event[field] = value
        event["data"] = "\n".join(event["data"])
        events.append(event)
    return events


@aio
async def test_server_sent_events() -> None:
    app = simples.server()

    @app.get("/events")
    async def stream(connection: Any) -> None:
        start = int(connection.headers.get("last-event-id") or 0)
        await connection.event("hello", retry=2500)
        await connection.event("line one\nline two\r\nline three", event="multi")
        await connection.event({"n": start + 1, "list": [1, 2]}, event="json", id=start + 1)
        await connection.event(b"bytes", id="abc")

    async with simples.client(app) as client:
        r = await client.get("/events")
        assert r.status == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["cache-control"] == "no-cache"
        assert "content-length" not in r.headers
        text = await r.text()
        assert text.startswith("retry: 2500\ndata: hello\n\n")
        events = parse_events(text)
        assert events == [
            {"retry": "2500", "data": "hello"},
            {"event": "multi", "data": "line one\nline two\nline three"},
            {"event": "json", "id": "1", "data": '{"n":1,"list":[1,2]}'},
            {"id": "abc", "data": "bytes"},
        ]
        assert json.loads(events[2]["data"]) == {"n": 1, "list": [1, 2]}
        r = await client.get("/events", headers={"last-event-id": "41"})
        assert parse_events(await r.text())[2]["id"] == "42"


@aio
async def test_compressed_events_are_flushed_one_by_one() -> None:
    app = simples.server(compression={"min_size": 1})
    gate = asyncio.Event()

    @app.get("/events")
    async def stream(connection: Any) -> None:
        await connection.event("first")
        await asyncio.wait_for(gate.wait(), 10)
        await connection.event("second")

    async with simples.client(app) as client:
        r = await client.get("/events", headers={"accept-encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunks = aiter(r)
        # the first event decodes whole before the handler sends the second
        first = b""
        while not first.endswith(b"\n\n"):
            first += inflate.decompress(await asyncio.wait_for(anext(chunks), 10))
        assert first == b"data: first\n\n"
        gate.set()
        rest = b"".join([inflate.decompress(chunk) async for chunk in chunks])
        assert rest + inflate.flush() == b"data: second\n\n"


def test_event_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="event"):
        format_event("x", event="a\nb")
    with pytest.raises(ValueError, match="id"):
        format_event("x", id="1\r2")
    with pytest.raises(ValueError, match="id"):
        format_event("x", id="1\x002")
    with pytest.raises(ValueError, match="retry"):
        format_event("x", retry=-1)
    with pytest.raises(ValueError, match="retry"):
        format_event("x", retry=1.5)  # type: ignore[arg-type]
    assert format_event("") == b"data: \n\n"


@aio
async def test_an_event_after_a_plain_response_raises() -> None:
    app = simples.server()
    errors: list[BaseException] = []

    @app.get("/")
    async def handler(connection: Any) -> None:
        await connection.send("done")
        try:
            await connection.event("late")
        except RuntimeError as exc:
            errors.append(exc)

    async with simples.client(app) as client:
        assert await (await client.get("/")).text() == "done"
    assert len(errors) == 1


@aio
async def test_the_events_example_resumes_after_the_last_event_id() -> None:
    from examples.events.app import COUNT, server

    async with simples.client(server) as client:
        assert "EventSource" in await (await client.get("/")).text()
        r = await client.get("/ticks", headers={"last-event-id": str(COUNT - 1)})
        events = parse_events(await r.text())
    assert [(e.get("event"), e.get("id")) for e in events] == [
        (None, None),
        ("tick", str(COUNT)),
        ("done", None),
    ]
    assert json.loads(events[1]["data"])["n"] == COUNT


@aio
async def test_the_hello_example_answers() -> None:
    # the wheel check (.ci/wheel_check.py) serves it from an installed wheel
    from examples.hello.app import server

    async with simples.client(server) as client:
        r = await client.get("/")
        assert r.status == 200
        assert (await r.text()).startswith("Hello from simples!")
        assert r.headers["server-timing"].startswith("app;dur=")


@aio
async def test_a_mounted_apps_reads_count_as_activity_for_the_timeout() -> None:
    async def upload(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    async def slowly() -> AsyncIterator[bytes]:
        for _ in range(4):
            await asyncio.sleep(0.25)
            yield b"x" * 10

    app = simples.server()
    app.timeout(0.6)  # idle for 0.6 s: more than each gap, less than the whole upload
    app.mount("/up", upload)
    async with simples.client(app) as client:
        r = await client.post("/up").drain(slowly())
        assert (r.status, await r.text()) == (200, "40")
