"""simples.client() against apps in the same process: ASGI HTTP, lifespan,
WebSocket, failures, the sync facade and the pytest fixture."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import simples
from simples import ClientError, HTTPConnection
from simples.clients.pytest_plugin import simples_client  # noqa: F401  (the fixture)
from tests.conftest import aio

ROOT = Path(__file__).resolve().parent.parent


def make_app() -> simples.Server:
    server = simples.server()
    server.data = {"start": 0, "stop": 0}  # type: ignore[attr-defined]

    def started() -> None:
        server.data["start"] += 1  # type: ignore[attr-defined]

    def stopped() -> None:
        server.data["stop"] += 1  # type: ignore[attr-defined]

    server.on("start", started).on("stop", stopped)

    @server.get("/")
    async def home(connection: HTTPConnection) -> str:
        return "hello"

    @server.get("/who")
    async def who(connection: HTTPConnection) -> dict[str, Any]:
        return {
            "host": connection.host,
            "ip": connection.ip.address,
            "port": connection.ip.port,
            "protocol": connection.protocol,
            "agent": connection.headers.get("user-agent"),
            "token": connection.headers.get("x-token"),
            "query": connection.query.getall("q"),
            "path": connection.path,
        }

    @server.post("/echo")
    async def echo(connection: HTTPConnection) -> None:
        body = await connection.body(limit=0)
        connection.header("X-Type", connection.headers.get("content-type") or "-")
        connection.header("X-Length", connection.headers.get("content-length") or "-")
        await connection.type("bin").send(body)

    @server.post("/notes")
    async def notes(connection: HTTPConnection) -> None:
        note = await connection.body().json()
        await connection.status(201).send(note)

    @server.post("/login")
    async def login(connection: HTTPConnection) -> dict[str, str]:
        fields = await connection.body().qs()
        connection.cookie("user", fields["user"], http_only=True, path="/")
        connection.cookie("scoped", "yes", path="/account")
        return {"user": fields["user"]}

    @server.get("/me")
    async def me(connection: HTTPConnection) -> dict[str, Any]:
        return {"cookies": connection.cookies}

    @server.get("/account/me")
    async def account(connection: HTTPConnection) -> dict[str, Any]:
        return {"cookies": connection.cookies}

    @server.get("/logout")
    async def logout(connection: HTTPConnection) -> str:
        connection.cookie("user", None, path="/")
        return "bye"

    @server.post("/upload")
    async def upload(connection: HTTPConnection) -> dict[str, Any]:
        form = await connection.body(limit=50 << 20).form()
        files = {}
        for name in form.files:
            for file in form.files.getall(name):
                data = await file.read()
                files[name] = {"filename": file.filename, "type": file.content_type,
                               "size": file.size, "head": data[:8].decode("latin-1")}
        return {"fields": form.fields.to_dict(), "files": files}

    @server.get("/boom")
    async def boom(connection: HTTPConnection) -> None:
        raise ValueError("the handler broke")

    @server.get("/go")
    async def go(connection: HTTPConnection) -> None:
        await connection.redirect("/who?q=moved")

    @server.get("/loop")
    async def loop(connection: HTTPConnection) -> None:
        await connection.redirect("/loop")

    @server.post("/form-done")
    async def form_done(connection: HTTPConnection) -> None:
        await connection.redirect("/who", 303)

    @server.ws("/live")
    async def live(ws: Any) -> None:
        await ws.send("hello")
        async for message in ws:
            if message.data == "close-me":
                await ws.close(4001, "asked")
                return
            await ws.send(message.data)

    @server.ws("/chat", protocols=["chat.v2", "chat.v1"])
    async def chat(ws: Any) -> None:
        await ws.send(ws.subprotocol)

    @server.ws("/guarded", origins=["https://good.example"])
    async def guarded(ws: Any) -> None:
        await ws.send("in")

    @server.ws("/events", advanced=True)
    async def events(ws: Any) -> None:
        async def on_ping(data: Any) -> None:
            await ws.send("pong", data)
            await ws.send("other", {"n": data["n"] + 1})

        ws.on("ping", on_ping)
        async for message in ws:
            await ws.send("echo", message.data)

    return server


# ------------------------------------------------------------------- lifespan


@aio
async def test_lifespan_runs_once_per_async_with() -> None:
    app = make_app()
    counts: Any = app.data  # type: ignore[attr-defined]
    client = simples.client(app)
    async with client:
        assert counts == {"start": 1, "stop": 0}
        await client.get("/")
        await client.get("/")
        assert counts == {"start": 1, "stop": 0}
    assert counts == {"start": 1, "stop": 1}
    async with client:
        assert counts == {"start": 2, "stop": 1}
    assert counts == {"start": 2, "stop": 2}


@aio
async def test_app_without_lifespan_support_is_used_anyway() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("only http here")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with simples.client(app) as client:
        assert (await client.get("/")).status == 204


@aio
async def test_failed_startup_is_a_client_error() -> None:
    app = simples.server()

    def broken() -> None:
        raise RuntimeError("no database")

    app.on("start", broken)
    with pytest.raises(ClientError, match="startup failed"):
        async with simples.client(app):
            pass


# ------------------------------------------------------------------ requests


@aio
async def test_get_head_and_what_the_app_sees() -> None:
    async with simples.client(make_app(), headers={"X-Token": "t1"}) as client:
        response = await client.get("/who?q=a&q=b")
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert await response.json() == {
            "host": "testserver", "ip": "127.0.0.1", "port": 50000, "protocol": "http",
            "agent": "simples-client", "token": "t1", "query": ["a", "b"], "path": "/who",
        }
        head = await client.head("/")
        assert head.status == 200
        assert head.headers["content-length"] == "5"
        assert await head.buffer() == b""
        override = await client.get("/who", headers={"x-token": "t2"})
        assert (await override.json())["token"] == "t2"
        encoded = await client.get("/who/../who%20x")
        assert encoded.status == 404


@aio
async def test_client_address_scheme_and_base() -> None:
    app = make_app()
    async with simples.client(app, client=("10.1.2.3", 4444), scheme="https") as client:
        seen = await (await client.get("/who")).json()
        assert (seen["ip"], seen["port"], seen["protocol"]) == ("10.1.2.3", 4444, "https")
    async with simples.client(app, base="http://api.example.com:8080/") as client:
        seen = await (await client.get("who")).json()
        assert seen["host"] == "api.example.com:8080"


@aio
async def test_send_json_text_bytes_type_and_header() -> None:
    async with simples.client(make_app()) as client:
        response = await client.post("/notes").type("json").send({"text": "hi"})
        assert response.status == 201
        assert (await response.json())["text"] == "hi"

        echo = await client.post("/echo").header("X-Token", "t").send("héllo")
        assert await echo.buffer() == "héllo".encode()
        assert echo.headers["x-type"] == "text/plain; charset=utf-8"
        assert echo.headers["x-length"] == str(len("héllo".encode()))

        echo = await client.post("/echo").send(b"\x00\x01")
        assert echo.headers["x-type"] == "application/octet-stream"
        echo = await client.post("/echo").type("html").send("<p>")
        assert echo.headers["x-type"] == "text/html; charset=utf-8"
        echo = await client.post("/echo").send([1, 2])
        assert echo.headers["x-type"] == "application/json"
        assert await echo.buffer() == b"[1,2]"

        empty = await client.post("/echo")  # awaiting the builder sends no body
        assert empty.headers["x-length"] == "0"
        assert await empty.buffer() == b""
        with pytest.raises(ValueError, match="header"):
            client.post("/echo").header("X-Bad", "a\r\nb")


@aio
async def test_qs_and_form_with_files(tmp_path: Path) -> None:
    picture = tmp_path / "a.png"
    picture.write_bytes(b"\x89PNG" + b"x" * 300_000)
    stream = io.BytesIO(b"streamed!")
    stream.name = "notes.txt"
    async with simples.client(make_app()) as client:
        response = await client.post("/login").qs({"user": "ann"})
        assert await response.json() == {"user": "ann"}
        response = await client.post("/upload").form({
            "title": "a",
            "tags": ["x", "y"],
            "file": {"path": str(picture)},
            "raw": {"data": b"GIF89a..", "filename": "b.gif", "type": "image/gif"},
            "doc": stream,
        })
        body = await response.json()
        assert body["fields"] == {"title": ["a"], "tags": ["x", "y"]}
        assert body["files"]["file"] == {"filename": "a.png", "type": "image/png",
                                         "size": 300_004, "head": "\x89PNGxxxx"}
        assert body["files"]["raw"]["type"] == "image/gif"
        assert body["files"]["doc"]["filename"] == "notes.txt"
        assert body["files"]["doc"]["size"] == 9


@aio
async def test_form_files_are_streamed_not_read_whole(tmp_path: Path) -> None:
    reads: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    big = Counting(b"z" * 1_000_000)
    async with simples.client(make_app()) as client:
        response = await client.post("/upload").form({"big": big})
        assert (await response.json())["files"]["big"]["size"] == 1_000_000
    assert len(reads) > 10
    assert all(0 < size <= 65536 for size in reads)


@aio
async def test_drain_streams_a_file_and_an_iterator(tmp_path: Path) -> None:
    path = tmp_path / "blob.json"
    path.write_bytes(b'{"big": true}')
    chunks_seen: list[int] = []
    app = simples.server()

    @app.put("/blob")
    async def blob(connection: HTTPConnection) -> dict[str, Any]:
        size = 0
        async for chunk in connection.body(limit=0):
            chunks_seen.append(len(chunk))
            size += len(chunk)
        return {"size": size, "type": connection.headers.get("content-type")}

    async def generate() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"a" * 1000

    async with simples.client(app) as client:
        response = await client.put("/blob").drain(path)
        assert await response.json() == {"size": 13, "type": "application/json"}
        chunks_seen.clear()
        response = await client.put("/blob").drain(generate())
        assert (await response.json())["size"] == 5000
        assert len(chunks_seen) == 5  # arrived as sent, not gathered first
        response = await client.put("/blob").type("text").drain(iter([b"ab", b"cd"]))
        assert await response.json() == {"size": 4, "type": "text/plain; charset=utf-8"}


# ---------------------------------------------------------------- streaming


@aio
async def test_get_returns_at_the_head_and_the_body_streams_after() -> None:
    release = asyncio.Event()
    app = simples.server()

    @app.get("/stream")
    async def stream(connection: HTTPConnection) -> None:
        await connection.write("first;")
        await release.wait()
        await connection.write("second;")
        await connection.end("third")

    async with simples.client(app) as client:
        response = await client.get("/stream")  # returns while the app waits
        assert response.status == 200
        chunks = []
        async for chunk in response:
            chunks.append(chunk)
            release.set()
        assert b"".join(chunks) == b"first;second;third"
        assert len(chunks) >= 2


@aio
async def test_over_the_limit_raises_without_buffering_the_rest() -> None:
    produced = 0
    app = simples.server()

    @app.get("/huge")
    async def huge(connection: HTTPConnection) -> None:
        nonlocal produced
        block = b"x" * 65536
        while produced < 50_000_000:
            await connection.write(block)
            produced += len(block)
        await connection.end()

    @app.get("/declared")
    async def declared(connection: HTTPConnection) -> None:
        await connection.send(b"y" * 2_000_000)

    async with simples.client(app) as client:
        response = await client.get("/huge")
        with pytest.raises(ClientError, match="over the limit of 1048576 bytes"):
            await response.buffer(limit=1 << 20)
        # the app could only run a bounded queue ahead of the reader
        assert produced < 3 << 20
        response = await client.get("/huge")
        with pytest.raises(ClientError, match="limit"):
            await response.text()  # the default limit is 1 MiB too
        response = await client.get("/declared")
        with pytest.raises(ClientError, match="Content-Length is 2000000"):
            await response.json(limit=1000)
        response = await client.get("/declared")
        assert len(await response.buffer(limit=0)) == 2_000_000
    assert produced < 10 << 20


@aio
async def test_a_body_is_read_once_and_buffered_reads_are_cached() -> None:
    async with simples.client(make_app()) as client:
        response = await client.post("/notes").send({"a": 1})
        assert await response.buffer() == b'{"a":1}'
        assert await response.text() == '{"a":1}'
        assert await response.json() == {"a": 1}
        assert [chunk async for chunk in response] == [b'{"a":1}']
        response = await client.get("/")
        assert [chunk async for chunk in response] == [b"hello"]
        with pytest.raises(RuntimeError, match="read once"):
            await response.buffer()


def _raw_app(*messages: dict[str, Any], then: str = "return") -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan")
        for message in messages:
            await send(message)
        if then == "raise":
            raise KeyError("broken mid-body")

    return app


@aio
async def test_truncated_bodies_are_errors() -> None:
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-length", b"10")]}
    short = _raw_app(start, {"type": "http.response.body", "body": b"12345"})
    async with simples.client(short) as client:
        response = await client.get("/")
        with pytest.raises(ClientError, match="5 bytes, Content-Length said 10"):
            await response.buffer()
    gone = _raw_app(
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"part", "more_body": True},
    )
    async with simples.client(gone) as client:
        response = await client.get("/")
        with pytest.raises(ClientError, match="before the body was complete"):
            await response.text()
    broken = _raw_app(
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"part", "more_body": True},
        then="raise",
    )
    async with simples.client(broken) as client:
        response = await client.get("/")
        with pytest.raises(KeyError, match="broken mid-body"):
            await response.buffer()


@aio
async def test_malformed_json_is_a_client_error() -> None:
    app = simples.server()

    @app.get("/bad")
    async def bad(connection: HTTPConnection) -> None:
        await connection.type("json").send('{"a": ')

    async with simples.client(app) as client:
        response = await client.get("/bad")
        with pytest.raises(ClientError, match="not valid JSON") as caught:
            await response.json()
        assert caught.value.status == 200


@aio
async def test_an_app_that_never_answers_times_out() -> None:
    app = simples.server()

    @app.get("/slow")
    async def slow(connection: HTTPConnection) -> None:
        await asyncio.sleep(60)

    async with simples.client(app, timeout=0.3) as client:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(ClientError, match=r"no response from the app within 0\.3 s"):
            await client.get("/slow")
        assert loop.time() - began < 2


@aio
async def test_the_app_sees_http_disconnect_when_the_client_drops_the_response() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("http only")
        assert (await receive())["type"] == "http.request"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        seen.append((await receive())["type"])
        try:
            await send({"type": "http.response.body", "body": b"late", "more_body": True})
        except OSError:
            seen.append("send refused")

    async with simples.client(app) as client:
        response = await client.get("/")
        async for chunk in response:
            assert chunk == b"tick"
            break
        await response.close()
    assert seen == ["http.disconnect", "send refused"]


# ------------------------------------------------------------ app exceptions


@aio
async def test_app_exceptions_surface_in_the_test() -> None:
    async with simples.client(make_app()) as client:
        with pytest.raises(ValueError, match="the handler broke"):
            await client.get("/boom")
        assert (await client.get("/")).status == 200  # the client is still usable
    async with simples.client(make_app(), raise_app_exceptions=False) as client:
        response = await client.get("/boom")
        assert response.status == 500
        assert await response.text() == "Internal Server Error"

    async def raw(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise LookupError("raw app broke")

    async with simples.client(raw) as client:
        with pytest.raises(LookupError, match="raw app broke"):
            await client.get("/")


# ------------------------------------------------------------ cookies, redirects


@aio
async def test_cookies_are_kept_with_path_expiry_and_secure() -> None:
    async with simples.client(make_app()) as client:
        login = await client.post("/login").qs({"user": "ann b"})
        assert login.cookies == {"user": "ann b", "scoped": "yes"}
        assert client.cookies["user"] == "ann b"
        assert (await (await client.get("/me")).json())["cookies"] == {"user": "ann b"}
        inside = await (await client.get("/account/me")).json()
        assert inside["cookies"] == {"user": "ann b", "scoped": "yes"}
        await client.get("/logout")  # Max-Age=0 removes it
        assert (await (await client.get("/me")).json())["cookies"] == {}
        assert "user" not in client.cookies

    secure = simples.server()

    @secure.get("/set")
    async def set_secure(connection: HTTPConnection) -> str:
        connection.cookie("token", "s3", secure=True)
        return "ok"

    @secure.get("/read")
    async def read(connection: HTTPConnection) -> dict[str, str]:
        return connection.cookies

    async with simples.client(secure) as client:  # http: a Secure cookie is refused
        await client.get("/set")
        assert "token" not in client.cookies
    async with simples.client(secure, scheme="https") as client:
        await client.get("/set")
        assert await (await client.get("/read")).json() == {"token": "s3"}


@aio
async def test_redirects_are_followed_only_when_asked() -> None:
    async with simples.client(make_app()) as client:
        response = await client.get("/go")
        assert response.status == 302
        assert response.headers["location"] == "/who?q=moved"
        followed = await client.get("/go", follow_redirects=True)
        assert followed.status == 200
        assert followed.url == "http://testserver/who?q=moved"
        assert (await followed.json())["query"] == ["moved"]
        with pytest.raises(ClientError, match="more than 3 redirects"):
            await client.get("/loop", follow_redirects=3)
        after_post = await client.post("/form-done", follow_redirects=True).send({"a": 1})
        assert after_post.status == 200
        assert after_post.url == "http://testserver/who"
    async with simples.client(make_app(), follow_redirects=True) as client:
        assert (await client.get("/go")).status == 200


# ------------------------------------------------------------------ WebSocket


@aio
async def test_websocket_messages_and_close_codes() -> None:
    app = make_app()
    async with simples.client(app) as client:
        ws = await client.ws("/live")
        assert (await ws.receive()).data == "hello"
        await ws.send("text")
        message = await ws.receive()
        assert (message.type, message.data) == ("text", "text")
        await ws.send(b"\x00\x01")
        message = await ws.receive()
        assert (message.type, message.data) == ("binary", b"\x00\x01")
        await ws.send({"json": True})
        assert (await ws.receive()).json() == {"json": True}
        await ws.send("close-me")
        assert [m async for m in ws] == []  # iteration ends whatever the code
        assert ws.close_code == 4001
        assert ws.close_reason == "asked"
        with pytest.raises(ClientError, match="closed"):
            await ws.receive()

        ws = await client.ws("ws://testserver/live")
        async with ws:
            assert (await ws.receive()).data == "hello"
        assert ws.close_code == 1000


@aio
async def test_websocket_client_close_code_reaches_the_app() -> None:
    seen: list[Any] = []
    app = simples.server()

    @app.ws("/w")
    async def handler(ws: Any) -> None:
        ws.on("close", lambda info: seen.append(info))
        async for _ in ws:
            pass

    async with simples.client(app) as client:
        ws = await client.ws("/w")
        await ws.close(4321, "done")
        assert ws.close_code == 4321
    assert seen == [{"code": 4321, "reason": "done"}]


@aio
async def test_websocket_refusals_carry_the_status() -> None:
    async with simples.client(make_app()) as client:
        with pytest.raises(ClientError) as caught:
            await client.ws("/guarded", headers={"Origin": "https://evil.example"})
        assert caught.value.status == 403
        with pytest.raises(ClientError) as caught:
            await client.ws("/nowhere")
        assert caught.value.status == 404
        with pytest.raises(ClientError) as caught:
            await client.ws("/chat", protocols=["other"])
        assert caught.value.status == 403
        ws = await client.ws("/guarded", headers={"Origin": "https://good.example"})
        assert (await ws.receive()).data == "in"
        await ws.close()

    async def closes_first(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async with simples.client(closes_first) as client:
        with pytest.raises(ClientError) as caught:
            await client.ws("/")
        assert caught.value.status == 403


@aio
async def test_websocket_subprotocol() -> None:
    async with simples.client(make_app()) as client:
        ws = await client.ws("/chat", protocols=["chat.v1", "chat.v2"])
        assert ws.subprotocol == "chat.v2"  # the route's preference wins
        assert (await ws.receive()).data == "chat.v2"


@aio
async def test_websocket_advanced_mode() -> None:
    async with simples.client(make_app()) as client:
        ws = await client.ws("/events", advanced=True)
        pongs: list[Any] = []

        async def on_pong(data: Any) -> None:
            pongs.append(data)

        ws.on("pong", on_pong)
        await ws.send("ping", {"n": 1})
        message = await ws.receive()  # the pong went to its listener first
        assert pongs == [{"n": 1}]
        assert (message.event, message.data) == ("other", {"n": 2})
        await ws.send({"plain": 1})
        message = await ws.receive()
        assert (message.event, message.data) == ("echo", '{"plain":1}')  # not an envelope
        await ws.close()
    plain = await simples.client(make_app()).ws("/live")
    with pytest.raises(ValueError, match="advanced"):
        plain.on("x", print)
    await plain.close()


@aio
async def test_websocket_app_exception_surfaces() -> None:
    app = simples.server()

    @app.ws("/w")
    async def handler(ws: Any) -> None:
        await ws.send("one")
        raise ArithmeticError("ws handler broke")

    async with simples.client(app) as client:
        ws = await client.ws("/w")
        assert (await ws.receive()).data == "one"
        with pytest.raises(ArithmeticError, match="ws handler broke"):
            await ws.receive()


# ---------------------------------------------------------------- sync facade


def test_sync_facade() -> None:
    app = make_app()
    counts: Any = app.data  # type: ignore[attr-defined]
    with simples.client(app).sync() as client:
        assert counts["start"] == 1
        response = client.get("/")
        assert response.status == 200
        assert response.text() == "hello"
        created = client.post("/notes").type("json").send({"text": "hi"})
        assert created.status == 201
        assert created.json()["text"] == "hi"
        client.post("/login").qs({"user": "bo"})
        assert client.get("/me").json()["cookies"] == {"user": "bo"}
        assert b"".join(client.get("/")) == b"hello"
        with pytest.raises(ValueError, match="the handler broke"):
            client.get("/boom")
        assert client.head("/").status == 200
    assert counts == {"start": 1, "stop": 1}


# ----------------------------------------------------------------- the plugin


@pytest.fixture
def simples_app() -> simples.Server:
    return make_app()


def test_plugin_fixture(simples_client: Any) -> None:  # noqa: F811
    assert simples_client.get("/").text() == "hello"
    assert simples_client.client.app.data["start"] == 1


def test_plugin_loads_by_name(tmp_path: Path) -> None:
    (tmp_path / "test_it.py").write_text(textwrap.dedent("""
        import pytest, simples

        @pytest.fixture
        def simples_app():
            app = simples.server()
            app.get("/", lambda c: c.send("plugged"))
            return app

        def test_it(simples_client):
            assert simples_client.get("/").text() == "plugged"
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        # "no:simples" blocks the installed entry point of the same module, which
        # pytest would otherwise refuse to register under a second name
        [sys.executable, "-m", "pytest", "-q", "-p", "no:simples",
         "-p", "simples.clients.pytest_plugin", "-p", "no:cacheprovider",
         str(tmp_path / "test_it.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=50, check=False,
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr
    declared = (ROOT / "pyproject.toml").read_text()
    assert 'simples = "simples.clients.pytest_plugin"' in declared


def test_exports_are_lazy_and_typed() -> None:
    assert callable(simples.client)
    assert issubclass(simples.ClientError, Exception)
    from simples.clients import Response

    assert simples.client.__module__ == "simples.clients"
    assert Response.__module__ == "simples.clients.base"


def test_the_example_runs() -> None:
    from examples.client import app as example

    example.notes.clear()
    asyncio.run(example.main())
    assert [note["text"] for note in example.notes] == ["hi"]


def test_a_host_header_replaces_the_urls_host() -> None:
    app = simples.server()

    @app.get("/")
    async def home(connection: simples.HTTPConnection) -> str:
        return f"{connection.host} {len(connection.headers.getall('host'))}"

    async def go() -> tuple[int, str]:
        async with simples.client(app) as client:
            response = await client.get("/", headers={"Host": "example.com"})
            return response.status, await response.text()

    assert asyncio.run(go()) == (200, "example.com 1")
