"""simples.client() over real sockets on loopback: a simples server, a Starlette
app on uvicorn, a plain ``websockets`` server, raw asyncio servers that
misbehave, and TLS with a certificate made for the test."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket as StarletteWebSocket

import simples
from simples import ClientError, HTTPConnection
from tests.conftest import aio


def make_app() -> simples.Server:
    server = simples.server()
    server.data = {"produced": 0}  # type: ignore[attr-defined]

    @server.get("/")
    async def home(connection: HTTPConnection) -> str:
        return "hello"

    @server.post("/notes")
    async def notes(connection: HTTPConnection) -> None:
        await connection.status(201).send(await connection.body().json())

    @server.post("/login")
    async def login(connection: HTTPConnection) -> str:
        connection.cookie("user", (await connection.body().qs())["user"], path="/")
        return "in"

    @server.get("/me")
    async def me(connection: HTTPConnection) -> dict[str, str]:
        return connection.cookies

    @server.get("/go")
    async def go(connection: HTTPConnection) -> None:
        await connection.redirect("/me")

    @server.post("/upload")
    async def upload(connection: HTTPConnection) -> dict[str, Any]:
        form = await connection.body(limit=10 << 20).form()
        file = form.files["file"]
        return {"title": form.fields["title"], "size": file.size, "name": file.filename}

    @server.put("/count")
    async def count(connection: HTTPConnection) -> dict[str, int]:
        size = chunks = 0
        async for chunk in connection.body(limit=0):
            size += len(chunk)
            chunks += 1
        return {"size": size, "chunks": chunks}

    @server.get("/huge")
    async def huge(connection: HTTPConnection) -> None:
        block = b"x" * 65536
        data = server.data  # type: ignore[attr-defined]
        while data["produced"] < 50_000_000:
            await connection.write(block)
            data["produced"] += len(block)
        await connection.end()

    @server.ws("/live")
    async def live(ws: Any) -> None:
        async for message in ws:
            if message.data == "bye":
                await ws.close(4001, "bye")
                return
            await ws.send(message.data)

    @server.ws("/guarded", origins=["https://good.example"])
    async def guarded(ws: Any) -> None:
        await ws.send("in")

    @server.ws("/events", advanced=True)
    async def events(ws: Any) -> None:
        ws.on("ping", lambda data: ws.send("pong", data))
        async for _ in ws:
            pass

    return server


@contextlib.asynccontextmanager
async def simples_server(https: dict[str, str] | None = None) -> AsyncIterator[str]:
    app = make_app()
    host, port = (await app.start(0, "127.0.0.1", https=https))[0]
    try:
        yield f"{'https' if https else 'http'}://{host}:{port}"
    finally:
        await app.stop()


@contextlib.asynccontextmanager
async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
) -> AsyncIterator[str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await server.wait_closed()


# ---------------------------------------------------------------- simples server


@aio
async def test_simples_server_over_the_network(tmp_path: Path) -> None:
    attachment = tmp_path / "a.bin"
    attachment.write_bytes(b"q" * 200_000)

    async def slow_body() -> AsyncIterator[bytes]:
        for _ in range(4):
            await asyncio.sleep(0.01)
            yield b"z" * 10_000

    async with simples_server() as base, simples.client(base=base) as client:
        response = await client.get("/")
        assert response.status == 200
        assert await response.text() == "hello"
        created = await client.post("/notes").send({"text": "hi"})
        assert created.status == 201
        assert await created.json() == {"text": "hi"}
        upload = await client.post("/upload").form({"title": "t", "file": {"path": attachment}})
        assert await upload.json() == {"title": "t", "size": 200_000, "name": "a.bin"}
        streamed = await client.put("/count").drain(slow_body())
        counted = await streamed.json()
        assert counted["size"] == 40_000
        # cookies are kept across requests, redirects followed only when asked
        await client.post("/login").qs({"user": "ann"})
        assert await (await client.get("/me")).json() == {"user": "ann"}
        assert (await client.get("/go")).status == 302
        followed = await client.get("/go", follow_redirects=True)
        assert followed.status == 200
        assert await followed.json() == {"user": "ann"}
        # an absolute URL works without base too
        assert (await client.get(base + "/")).status == 200


@aio
async def test_network_limit_stops_reading_without_buffering() -> None:
    sent = 0
    gone = asyncio.Event()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        # no Content-Length: the body runs until the connection closes
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        block = b"x" * 65536
        try:
            while sent < 50_000_000:
                writer.write(block)
                await writer.drain()  # waits while the client does not read
                sent += len(block)
        except OSError:
            pass
        finally:
            gone.set()
            writer.close()

    async with raw_server(flood) as base, simples.client(base=base) as client:
        response = await client.get("/")
        with pytest.raises(ClientError, match="over the limit of 1048576 bytes"):
            await response.buffer(limit=1 << 20)
        await asyncio.wait_for(gone.wait(), 10)
        # what the server managed to push before the client hung up: socket
        # buffers, not the 50 MB
        assert sent < 20_000_000

    async with simples_server() as base, simples.client(base=base) as client:
        response = await client.get("/huge")  # a simples app streaming 50 MB
        with pytest.raises(ClientError, match="over the limit"):
            await response.json(limit=1 << 20)


@aio
async def test_network_websocket_with_simples() -> None:
    async with simples_server() as base, simples.client(base=base) as client:
        ws = await client.ws("/live")
        await ws.send("one")
        assert (await ws.receive()).data == "one"
        await ws.send(b"\x01")
        message = await ws.receive()
        assert (message.type, message.data) == ("binary", b"\x01")
        await ws.send("bye")
        assert [m async for m in ws] == []
        assert ws.close_code == 4001
        with pytest.raises(ClientError) as caught:
            await client.ws("/guarded", headers={"Origin": "https://evil.example"})
        assert caught.value.status == 403
        with pytest.raises(ClientError) as caught:
            await client.ws("/missing")
        assert caught.value.status == 404
        ws = await client.ws("/events", advanced=True)
        await ws.send("ping", [1, 2])
        message = await ws.receive()
        assert (message.event, message.data) == ("pong", [1, 2])
        await ws.close(4100)
        assert ws.close_code == 4100


# ----------------------------------------------------- servers that are not simples


def starlette_app() -> Starlette:
    async def home(request: Request) -> Response:
        response = PlainTextResponse("starlette")
        response.set_cookie("visits", "1", path="/")
        return response

    async def echo(request: Request) -> Response:
        return JSONResponse({"got": await request.json(), "cookie": request.cookies.get("visits")})

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(3):
                yield f"part{index};".encode()

        return StreamingResponse(chunks())

    async def socket_route(websocket: StarletteWebSocket) -> None:
        await websocket.accept(subprotocol="v1")
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close(3003)

    return Starlette(routes=[
        Route("/", home),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        WebSocketRoute("/ws", socket_route),
    ])


@aio
async def test_starlette_on_uvicorn() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(starlette_app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110  (uvicorn offers no event)
            await asyncio.sleep(0.01)
        async with simples.client(base=f"http://127.0.0.1:{port}") as client:
            response = await client.get("/")
            assert await response.text() == "starlette"
            assert response.cookies == {"visits": "1"}
            echo = await client.post("/echo").send({"a": [1, 2]})
            assert await echo.json() == {"got": {"a": [1, 2]}, "cookie": "1"}
            chunks = [chunk async for chunk in await client.get("/stream")]
            assert b"".join(chunks) == b"part0;part1;part2;"
            ws = await client.ws("/ws", protocols=["v1"])
            assert ws.subprotocol == "v1"
            await ws.send("shout")
            assert (await ws.receive()).data == "SHOUT"
            assert [m async for m in ws] == []
            assert ws.close_code == 3003
    finally:
        server.should_exit = True
        await task
        sock.close()


@aio
async def test_plain_websockets_server() -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(connection: ServerConnection) -> None:
        async for frame in connection:
            if frame == "bye":
                await connection.close(4002, "done")
                return
            await connection.send(frame)

    async with serve(handler, "127.0.0.1", 0, subprotocols=["chat"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        async with simples.client(base=f"http://127.0.0.1:{port}") as client:
            ws = await client.ws("/anything", protocols=["chat"])
            assert ws.subprotocol == "chat"
            await ws.send({"n": 1})
            assert (await ws.receive()).json() == {"n": 1}
            await ws.send("bye")
            async for _ in ws:
                pytest.fail("no message was expected")
            assert (ws.close_code, ws.close_reason) == (4002, "done")


# ------------------------------------------------------------------- failures


@aio
async def test_refused_connection() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    async with simples.client() as client:
        with pytest.raises(ClientError, match="cannot connect"):
            await client.get(f"http://127.0.0.1:{port}/")
        with pytest.raises(ClientError, match="cannot connect"):
            await client.ws(f"ws://127.0.0.1:{port}/")


@aio
async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)

    async with raw_server(silent) as base, simples.client(base=base, timeout=0.5) as client:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(ClientError, match=r"within 0\.5 s"):
            await client.get("/")
        assert loop.time() - began < 3
    total = simples.clients.Timeout(connect=5, read=5, total=0.4)
    async with raw_server(silent) as base, simples.client(base=base, timeout=total) as client:
        with pytest.raises(ClientError, match="total timeout"):
            await client.get("/")


@aio
async def test_truncated_and_malformed_bodies() -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    async with raw_server(short) as base, simples.client(base=base) as client:
        response = await client.get("/")
        with pytest.raises(ClientError, match="went away"):
            await response.buffer()

    async def chunked_cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        writer.close()

    async with raw_server(chunked_cut) as base, simples.client(base=base) as client:
        response = await client.get("/")
        with pytest.raises(ClientError, match="went away"):
            await response.text()

    async def bad_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 5\r\n\r\n{\"a\":")
        await writer.drain()
        writer.close()

    async with raw_server(bad_json) as base, simples.client(base=base) as client:
        with pytest.raises(ClientError, match="not valid JSON"):
            await (await client.get("/")).json()


# ----------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    chain = folder / "cert.pem"
    key = folder / "key.pem"
    ca_file = folder / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return {"ca": ca, "cert": cert, "https": {"cert": str(chain), "key": str(key)},
            "ca_file": str(ca_file)}


@aio
async def test_tls_is_verified(tls: dict[str, Any]) -> None:
    async with simples_server(https=tls["https"]) as base:
        async with simples.client(base=base, verify=tls["ca_file"]) as client:
            response = await client.get("/")
            assert await response.text() == "hello"
            ws = await client.ws("/live")  # wss:// from https://
            assert ws.url.startswith("wss://")
            await ws.send("secure")
            assert (await ws.receive()).data == "secure"
            await ws.close()
        async with simples.client(base=base) as client:  # the system's CAs do not know it
            with pytest.raises(ClientError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get("/")
            with pytest.raises(ClientError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.ws("/live")
        async with simples.client(base=base, verify=False) as client:
            assert (await client.get("/")).status == 200


@aio
async def test_wss_to_a_plain_websockets_server(tls: dict[str, Any]) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls["cert"].configure_cert(server_context)
    client_context = ssl.create_default_context()
    tls["ca"].configure_trust(client_context)

    async def handler(connection: ServerConnection) -> None:
        await connection.send("over tls")

    async with serve(handler, "127.0.0.1", 0, ssl=server_context) as server:
        port = server.sockets[0].getsockname()[1]
        async with simples.client(verify=client_context) as client:
            ws = await client.ws(f"wss://127.0.0.1:{port}/")
            assert (await ws.receive()).data == "over tls"
            async for _ in ws:
                pass
            assert ws.close_code == 1000


def test_websockets_version_supports_the_client() -> None:
    assert int(websockets.__version__.split(".")[0]) >= 15
