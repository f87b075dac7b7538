"""WebSocket routes through a real server: the ``websockets`` client
for what a client normally does, raw frames on a socket for what it never does
(fragments around a ping, ignoring pings, not reading at all)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import resource
import signal
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import simples
import simples.ws
from simples import HTTPConnection, HTTPError, WebSocketConnection
from simples.engines import uvicorn_options
from simples.ws import SEND_QUEUE_LIMIT, Message
from tests.conftest import Live, serve

# What the server-side handlers saw, for the tests to check (the server runs in
# another thread; every read waits with a bound).
seen: dict[str, list[Any]] = {}


def note(key: str, value: Any) -> None:
    seen.setdefault(key, []).append(value)


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        time.sleep(0.01)


def run(coroutine: Awaitable[Any], seconds: float = 20.0) -> Any:
    """Run a client coroutine in its own loop, bounded in time."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, seconds)

    return asyncio.run(bounded())


# ------------------------------------------------------------------ raw frames


class RawSocket:
    """A WebSocket client that does only what it is told: masked frames out,
    frames in, no automatic pong, no reading unless asked."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ", 2)[1])

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.sock.sendall(self.frame(opcode, payload, fin))

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
        """A masked client frame (several can go out in one write)."""
        mask = os.urandom(4)
        first = (0x80 if fin else 0) | opcode
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", first, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", first, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, size)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        return header + mask + masked

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read(8))[0]
        return bool(first & 0x80), first & 0x0F, self._read(size)

    def read_until_close(self) -> tuple[int, list[tuple[int, bytes]]]:
        """Frames until the close frame: (close code, [(opcode, payload), ...])."""
        frames = []
        while True:
            _, opcode, payload = self.read_frame()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0], frames
            frames.append((opcode, payload))

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------- the app


def build_app() -> simples.Server:
    app = simples.server()

    @app.ws("/echo")
    async def echo(ws: WebSocketConnection) -> None:
        async for message in ws:
            note("echo-types", message.type)
            await ws.send(message.data)

    @app.ws("/json")
    async def as_json(ws: WebSocketConnection) -> None:
        message = await ws.receive()
        await ws.send({"got": message.json(), "type": message.type})
        await ws.send([1, 2])
        await ws.send(b"\xff\x00")

    api = app.router("/api")

    @api.ws("/info/:room")
    async def info(ws: WebSocketConnection) -> None:
        ip = ws.ip
        await ws.send({
            "params": ws.params,
            "protocol": ws.protocol,
            "path": ws.path,
            "method": ws.method,
            "query": ws.query.getall("a"),
            "cookies": ws.cookies,
            "header": ws.headers.get("x-thing"),
            "host": ws.host,
            "hostname": ws.hostname,
            "url": str(ws.url),
            "scheme": ws.url.scheme,
            "ip": [ip.address, ip.family, isinstance(ip.port, int)],
            "langs": ws.langs,
            "raw": [ws.request.scope["type"], callable(ws.response.send)],
            "session": ws.session,
            "is_request": isinstance(ws, simples.WebSocketConnection),
        })

    chat = app.host("chat.example.com")

    @chat.ws("/where")
    async def where_chat(ws: WebSocketConnection) -> None:
        await ws.send("chat host")

    @app.ws("/where")
    async def where_main(ws: WebSocketConnection) -> None:
        await ws.send("main host")

    @app.ws("/limited", limit=1000)
    async def limited(ws: WebSocketConnection) -> None:
        async for message in ws:
            await ws.send(str(len(message.data)))
        note("limited-close", ws.close_code)

    @app.ws("/origin", origins=["https://good.example"])
    async def origin(ws: WebSocketConnection) -> None:
        await ws.send("welcome")

    @app.ws("/proto", protocols=["v2", "v1"])
    async def proto(ws: WebSocketConnection) -> None:
        await ws.send(str(ws.subprotocol))

    @app.ws("/crash")
    async def crash(ws: WebSocketConnection) -> None:
        await ws.receive()
        raise RuntimeError("handler bug")

    @app.ws("/crash-early")
    async def crash_early(ws: WebSocketConnection) -> None:
        raise RuntimeError("bug before accepting")

    @app.ws("/refuse")
    async def refuse(ws: WebSocketConnection) -> None:
        if ws.query.get("token") != "yes":
            await ws.error(401)
            return
        await ws.send("in")

    @app.ws("/too-many")
    async def too_many(ws: WebSocketConnection) -> None:
        raise HTTPError(429)

    @app.ws("/after-accept-error")
    async def after_accept_error(ws: WebSocketConnection) -> None:
        await ws.accept()
        raise HTTPError(403)

    @app.error(401)
    async def unauthorized(connection: HTTPConnection) -> dict[str, str]:
        return {"error": "log in first"}

    @app.ws("/returns")
    async def returns(ws: WebSocketConnection) -> None:
        await ws.send("bye")

    @app.ws("/close-code")
    async def close_code(ws: WebSocketConnection) -> None:
        message = await ws.receive()
        code, _, reason = message.data.partition(" ")
        try:
            await ws.close(int(code), reason)
        except ValueError as exc:
            await ws.send(f"refused: {exc}")
            await ws.close(4000, "fallback")

    @app.ws("/idle", timeout=0.3)
    async def idle(ws: WebSocketConnection) -> None:
        async for message in ws:
            await ws.send(message.data)
        note("idle-close", (ws.close_code, ws.close_reason))

    guarded = app.router("/guarded")

    @guarded.use
    async def gate(connection: Any, next: Callable[[], Awaitable[None]]) -> None:
        note("mw", f"before {type(connection).__name__}")
        if connection.query.get("pass") == "no":
            await connection.error(403)
            return
        if connection.query.get("pass") == "raise":
            raise HTTPError(451)
        if connection.query.get("pass") == "skip":
            return  # neither next() nor an answer
        connection.data["user"] = "ann"
        await next()
        note("mw", f"after closed={connection.closed}")

    @guarded.ws("/in")
    async def guarded_in(ws: WebSocketConnection) -> None:
        await ws.send(ws.data["user"])

    @app.ws("/advanced", advanced=True)
    async def advanced(ws: WebSocketConnection) -> None:
        moves: list[Any] = []

        def on_move(data: Any) -> None:
            moves.append(data)

        async def on_ask(data: Any) -> None:
            await ws.send("answer", {"to": data, "moves": moves})

        ws.on("move", on_move).on("ask", on_ask)
        ws.on("close", lambda info: note("advanced-close", info))
        async for message in ws:
            # what no listener took: unknown events and non-envelopes
            data = message.data.hex() if message.type == "binary" else message.data
            await ws.send("unhandled", {"event": message.event, "data": data})

    @app.ws("/advanced-return", advanced=True)
    async def advanced_return(ws: WebSocketConnection) -> None:
        async def on_ping(data: Any) -> None:
            await ws.send("pong", data)

        ws.on("ping", on_ping)
        # returning closes with 1000 (docs/websocket.md), listeners included

    @app.ws("/plain-on")
    async def plain_on(ws: WebSocketConnection) -> None:
        try:
            ws.on("move", lambda data: None)
        except ValueError as exc:
            await ws.send(str(exc))
        try:
            ws.on("message", lambda data: None)
        except ValueError as exc:
            await ws.send(str(exc))

    lobby = app.channel("lobby")

    @app.ws("/room/:name")
    async def room(ws: WebSocketConnection) -> None:
        channel = app.channel(ws.params["name"])
        channel.bind(ws)
        await ws.send(f"joined {len(channel)}")
        async for message in ws:
            text = message.data
            if text == "leave":
                channel.unbind(ws)
                await ws.send("left")
            elif text.startswith("others:"):
                await channel.broadcast(text[7:], filter=lambda other: other is not ws)
            elif text.startswith("all:"):
                await app.broadcast(text[4:])
            else:
                await channel.broadcast({"from": ws.params["name"], "text": text})

    @app.ws("/lobby")
    async def in_lobby(ws: WebSocketConnection) -> None:
        lobby.bind(ws)
        await ws.send(f"members {len(lobby)}")
        async for _ in ws:
            pass

    @app.post("/flood")
    async def flood(connection: HTTPConnection) -> dict[str, int]:
        count = int(connection.query["n"])
        size = int(connection.query["size"])
        chunk = os.urandom(size)
        for _ in range(count):
            await lobby.broadcast(chunk)
        return {"members": len(lobby)}

    @app.get("/lobby-size")
    async def lobby_size(connection: HTTPConnection) -> int:
        return len(lobby)

    @app.ws("/slow")
    async def slow(ws: WebSocketConnection) -> None:
        ws.send_timeout = 0.5  # how long a broadcaster waits for this socket to drain
        lobby.bind(ws)
        await ws.accept()
        async for _ in ws:
            pass
        note("slow-close", (ws.close_code, ws.close_reason, ws.channels))

    return app


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with serve(build_app()) as running:
        yield running


def url(live: Live, path: str) -> str:
    return f"ws://127.0.0.1:{live.port}{path}"


# --------------------------------------------------------------------- messages


def test_echo_text_and_binary(live: Live) -> None:
    async def client() -> list[Any]:
        async with connect(url(live, "/echo")) as ws:
            await ws.send("héllo")
            text = await ws.recv()
            await ws.send(b"\x00\x01\xff")
            binary = await ws.recv()
            return [text, binary]

    assert run(client()) == ["héllo", b"\x00\x01\xff"]
    assert seen["echo-types"][-2:] == ["text", "binary"]


def test_json_both_ways(live: Live) -> None:
    async def client() -> list[Any]:
        async with connect(url(live, "/json")) as ws:
            await ws.send('{"a": [1, "x"]}')
            return [await ws.recv(), await ws.recv(), await ws.recv()]

    first, second, third = run(client())
    assert first == '{"got":{"a":[1,"x"]},"type":"text"}'
    assert second == "[1,2]"
    assert third == b"\xff\x00"


def test_request_side_members_on_a_sub_router(live: Live) -> None:
    async def client() -> str:
        headers = {"Cookie": "k=v%20w", "X-Thing": "t", "Accept-Language": "fr;q=0.5, en"}
        target = url(live, "/api/info/r%20one?a=1&a=2")
        async with connect(target, additional_headers=headers) as ws:
            message = await ws.recv()
            assert isinstance(message, str)
            return message

    import json

    info = json.loads(run(client()))
    assert info["params"] == {"room": "r one"}
    assert info["protocol"] == "ws"
    assert info["scheme"] == "ws"
    assert info["path"] == "/api/info/r one"
    assert info["method"] == "GET"
    assert info["query"] == ["1", "2"]
    assert info["cookies"] == {"k": "v w"}
    assert info["header"] == "t"
    assert info["host"] == f"127.0.0.1:{live.port}"
    assert info["hostname"] == "127.0.0.1"
    assert info["url"].startswith(f"ws://127.0.0.1:{live.port}/api/info/")
    assert info["ip"] == ["127.0.0.1", "IPv4", True]
    assert info["langs"] == ["en", "fr"]
    assert info["raw"] == ["websocket", True]
    assert info["session"] is None
    assert info["is_request"] is True


def test_virtual_hosts_have_their_own_ws_routes(live: Live) -> None:
    async def client(host: str) -> Any:
        # the URI names the virtual host; the TCP connection goes to the test server
        uri = f"ws://{host}:{live.port}/where"
        async with connect(uri, host="127.0.0.1", port=live.port) as ws:
            return await ws.recv()

    assert run(client("chat.example.com")) == "chat host"
    assert run(client("CHAT.example.com")) == "chat host"
    assert run(client("localhost")) == "main host"


def test_fragmented_messages_are_reassembled(live: Live) -> None:
    async def client() -> list[Any]:
        async with connect(url(live, "/echo")) as ws:
            await ws.send(["frag", "men", "ted"])
            await ws.send([b"\x01", b"\x02\x03"])
            return [await ws.recv(), await ws.recv()]

    assert run(client()) == ["fragmented", b"\x01\x02\x03"]

    # a ping between the fragments of one message (RFC 6455 §5.4)
    raw = RawSocket(live.port, "/echo")
    try:
        assert raw.status == 101
        raw.send_frame(0x1, b"one ", fin=False)
        raw.send_frame(0x9, b"are you there")
        raw.send_frame(0x0, b"two ", fin=False)
        raw.send_frame(0x0, b"three", fin=True)
        assert raw.read_frame() == (True, 0xA, b"are you there")
        assert raw.read_frame() == (True, 0x1, b"one two three")
    finally:
        raw.close()


def test_frames_beyond_one_turn_keep_their_order(live: Live) -> None:
    # simples.wire.WSProto handles 64 frames per turn of the event loop: what
    # one write brings beyond that waits for later turns, in order, pings
    # answered in their place, a Close mid-message answered 1000 (RFC 6455 §5.4)
    raw = RawSocket(live.port, "/echo")
    try:
        assert raw.status == 101
        messages = [raw.frame(0x1, b"m%d" % n) for n in range(300)]
        fragments = [raw.frame(0x0 if n else 0x1, b"f", fin=False) for n in range(200)]
        tail = [raw.frame(0x9, b"still there"), raw.frame(0x0, b"!", fin=True)]
        raw.sock.sendall(b"".join(messages + fragments + tail))
        for n in range(300):
            assert raw.read_frame() == (True, 0x1, b"m%d" % n)
        assert raw.read_frame() == (True, 0xA, b"still there")
        assert raw.read_frame() == (True, 0x1, b"f" * 200 + b"!")
        fragments = [raw.frame(0x0 if n else 0x1, b"g", fin=False) for n in range(200)]
        raw.sock.sendall(b"".join(fragments) + raw.frame(0x8, struct.pack("!H", 1000)))
        code, frames = raw.read_until_close()
        assert (code, frames) == (1000, [])
    finally:
        raw.close()


def test_oversized_message_closes_with_1009(live: Live) -> None:
    async def client(message: Any) -> tuple[list[Any], int | None]:
        received = []
        async with connect(url(live, "/limited")) as ws:
            await ws.send("x" * 1000)  # exactly the limit passes
            received.append(await ws.recv())
            await ws.send(message)
            with pytest.raises(ConnectionClosed):
                received.append(await ws.recv())
            return received, ws.close_code

    assert run(client("y" * 1001)) == (["1000"], 1009)
    assert run(client(b"z" * 5000)) == (["1000"], 1009)
    # every fragment is small, the message is not
    assert run(client(["a" * 600, "b" * 600])) == (["1000"], 1009)
    # 400 characters but 1200 bytes of UTF-8
    assert run(client("€" * 400)) == (["1000"], 1009)
    wait_for(lambda: seen.get("limited-close", []).count(1009) >= 4)


# -------------------------------------------------------------------- handshake


def test_origin_rule(live: Live) -> None:
    async def client(origin: str | None) -> Any:
        async with connect(url(live, "/origin"), origin=origin) as ws:  # type: ignore[arg-type]
            return await ws.recv()

    assert run(client("https://good.example")) == "welcome"
    assert run(client("https://GOOD.example:443")) == "welcome"  # compared whole, normalised
    assert run(client(None)) == "welcome"  # not a browser: no Origin header
    for bad in ("https://evil.example", "http://good.example", "https://good.example:8443", "null"):
        with pytest.raises(InvalidStatus) as refused:
            run(client(bad))
        assert refused.value.response.status_code == 403


def test_subprotocol_negotiation(live: Live) -> None:
    async def client(offered: list[str] | None) -> tuple[Any, Any, list[str]]:
        async with connect(url(live, "/proto"), subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.response is not None
            header = ws.response.headers.get_all("Sec-WebSocket-Protocol")
            return await ws.recv(), ws.subprotocol, header

    # the server's order of preference decides; exactly one is selected
    assert run(client(["v1", "v2"])) == ("v2", "v2", ["v2"])
    assert run(client(["x", "v1"])) == ("v1", "v1", ["v1"])
    for offered in (["nope"], None):
        with pytest.raises(InvalidStatus) as refused:
            run(client(offered))
        assert refused.value.response.status_code == 403


def test_route_without_protocols_selects_none(live: Live) -> None:
    raw = RawSocket(live.port, "/echo", {"Sec-WebSocket-Protocol": "chat, superchat"})
    try:
        assert raw.status == 101
        assert "sec-websocket-protocol" not in raw.head.lower()
    finally:
        raw.close()


def test_refusals_use_http_statuses_and_error_routes(live: Live) -> None:
    def status_of(path: str) -> tuple[int, bytes]:
        with pytest.raises(InvalidStatus) as refused:
            run(connect(url(live, path)))
        response = refused.value.response
        return response.status_code, response.body or b""

    assert status_of("/refuse") == (401, b'{"error":"log in first"}')  # the app's error route
    assert status_of("/too-many") == (429, b"Too Many Requests")
    assert status_of("/nowhere") == (404, b"Not Found")
    assert status_of("/crash-early") == (500, b"Internal Server Error")

    async def allowed() -> Any:
        async with connect(url(live, "/refuse?token=yes")) as ws:
            return await ws.recv()

    assert run(allowed()) == "in"


def test_middlewares_run_for_the_handshake(live: Live) -> None:
    seen.pop("mw", None)

    async def client(query: str) -> Any:
        async with connect(url(live, "/guarded/in" + query)) as ws:
            return await ws.recv()

    assert run(client("")) == "ann"
    wait_for(lambda: len(seen.get("mw", [])) == 2)
    # next() is the socket's whole life: code after it runs once it is over
    assert seen["mw"] == ["before WebSocketConnection", "after closed=True"]
    for query, status in (("?pass=no", 403), ("?pass=raise", 451), ("?pass=skip", 403)):
        with pytest.raises(InvalidStatus) as refused:
            run(client(query))
        assert refused.value.response.status_code == status


def test_permessage_deflate_is_negotiated(live: Live) -> None:
    async def client() -> tuple[str, Any]:
        async with connect(url(live, "/echo")) as ws:
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            await ws.send("a" * 10_000)
            return extensions, await ws.recv()

    extensions, echoed = run(client())
    assert extensions.startswith("permessage-deflate")
    assert echoed == "a" * 10_000


# ---------------------------------------------------------------------- closing


def test_returning_closes_with_1000(live: Live) -> None:
    async def client() -> tuple[Any, int | None]:
        async with connect(url(live, "/returns")) as ws:
            message = await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return message, ws.close_code

    assert run(client()) == ("bye", 1000)


def test_handler_exception_closes_with_1011_and_is_logged(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    async def client() -> tuple[int | None, str | None]:
        async with connect(url(live, "/crash")) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    with caplog.at_level(logging.ERROR, logger="simples"):
        assert run(client()) == (1011, "Internal Server Error")
        wait_for(lambda: "handler bug" in caplog.text)
    assert "unhandled error in WebSocket /crash" in caplog.text


def test_http_error_after_accepting_closes_with_a_policy_code(live: Live) -> None:
    async def client() -> tuple[int | None, str | None]:
        async with connect(url(live, "/after-accept-error")) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    assert run(client()) == (1008, "Forbidden")


def test_close_codes_and_reasons_are_validated(live: Live) -> None:
    async def client(request: str) -> tuple[list[Any], int | None, str | None]:
        received = []
        async with connect(url(live, "/close-code")) as ws:
            await ws.send(request)
            with contextlib.suppress(ConnectionClosed):
                while True:
                    received.append(await ws.recv())
            return received, ws.close_code, ws.close_reason

    assert run(client("4321 custom reason")) == ([], 4321, "custom reason")
    assert run(client("1001 going")) == ([], 1001, "going")
    for bad in ("1005 x", "1006 x", "999 x", "2000 x", "5000 x", "1000 " + "r" * 124):
        received, code, reason = run(client(bad))
        assert code == 4000
        assert reason == "fallback"
        assert received
        assert received[0].startswith("refused:")


def test_client_close_code_reaches_the_handler(live: Live) -> None:
    async def client() -> None:
        async with connect(url(live, "/idle")) as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4100, "client done")

    seen.pop("idle-close", None)
    run(client())
    wait_for(lambda: bool(seen.get("idle-close")))
    assert seen["idle-close"] == [(4100, "client done")]


def test_idle_timeout_closes_with_1001(live: Live) -> None:
    async def client() -> tuple[list[Any], int | None, float]:
        received = []
        async with connect(url(live, "/idle")) as ws:
            for _ in range(3):  # traffic keeps it alive past the timeout
                await asyncio.sleep(0.15)
                await ws.send("tick")
                received.append(await ws.recv())
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return received, ws.close_code, time.monotonic() - started

    seen.pop("idle-close", None)
    received, code, waited = run(client())
    assert received == ["tick"] * 3
    assert code == 1001
    assert 0.2 < waited < 2.0
    wait_for(lambda: bool(seen.get("idle-close")))
    assert seen["idle-close"] == [(1001, "idle timeout")]


# ----------------------------------------------------------------- advanced mode


def test_advanced_mode_events(live: Live) -> None:
    import json

    async def client() -> list[Any]:
        async with connect(url(live, "/advanced")) as ws:
            await ws.send(json.dumps({"event": "move", "data": [1, 2]}))
            await ws.send(json.dumps({"event": "move", "data": {"x": 3}}))
            await ws.send(json.dumps({"event": "ask", "data": "moves?"}))
            replies = [json.loads(await ws.recv())]
            # never a crash: unknown and reserved names, malformed envelopes, binary
            await ws.send(json.dumps({"event": "close", "data": None}))  # reserved: dropped
            await ws.send(json.dumps({"event": "open"}))  # reserved: dropped
            await ws.send(json.dumps({"event": "dance", "data": 7}))
            await ws.send("not json {")
            await ws.send(json.dumps({"event": 5}))
            await ws.send(json.dumps(["event", "x"]))
            await ws.send("[" * 100_000)
            await ws.send(b"\x00")
            for _ in range(6):
                reply = await ws.recv()
                replies.append(json.loads(reply) if isinstance(reply, str) else reply)
            return replies

    seen.pop("advanced-close", None)
    replies = run(client())
    assert replies[0] == {"event": "answer", "data": {"to": "moves?", "moves": [[1, 2], {"x": 3}]}}
    assert replies[1] == {"event": "unhandled", "data": {"event": "dance", "data": 7}}
    assert replies[2] == {"event": "unhandled", "data": {"event": None, "data": "not json {"}}
    assert replies[3] == {"event": "unhandled", "data": {"event": None, "data": '{"event": 5}'}}
    assert replies[4] == {"event": "unhandled", "data": {"event": None, "data": '["event", "x"]'}}
    assert replies[5]["data"] == {"event": None, "data": "[" * 100_000}
    assert replies[6] == {"event": "unhandled", "data": {"event": None, "data": "00"}}
    wait_for(lambda: bool(seen.get("advanced-close")))
    assert seen["advanced-close"] == [{"code": 1000, "reason": ""}]


def test_returning_from_an_advanced_handler_closes_with_1000(live: Live) -> None:
    import json

    async def client() -> tuple[int | None, list[Any]]:
        async with connect(url(live, "/advanced-return")) as ws:
            received = []
            with contextlib.suppress(ConnectionClosed):
                # the server may already have closed: no pong can come back
                await ws.send(json.dumps({"event": "ping", "data": 1}))
                received.append(await ws.recv())
            await ws.wait_closed()
            return ws.close_code, received

    code, received = run(client())
    assert code == 1000
    assert received == []


def test_on_needs_an_advanced_route_and_a_free_name(live: Live) -> None:
    async def client() -> list[Any]:
        async with connect(url(live, "/plain-on")) as ws:
            return [await ws.recv(), await ws.recv()]

    first, second = run(client())
    assert "advanced=True" in first
    assert "reserved" in second


# --------------------------------------------------------------------- channels


def test_channel_broadcast_bind_unbind_and_filter(live: Live) -> None:
    import json

    async def client() -> dict[str, list[Any]]:
        async with (
            connect(url(live, "/room/blue")) as ann,
            connect(url(live, "/room/blue")) as bob,
            connect(url(live, "/room/red")) as cid,
        ):
            assert await ann.recv() == "joined 1"
            assert await bob.recv() == "joined 2"
            assert await cid.recv() == "joined 1"
            await ann.send("hello")
            got = {
                "ann": [json.loads(await ann.recv())],
                "bob": [json.loads(await bob.recv())],
            }
            await bob.send("others:psst")  # everyone but bob
            got["ann"].append(await ann.recv())
            await bob.send("leave")
            got["bob"].append(await bob.recv())
            await ann.send("after")
            got["ann"].append(json.loads(await ann.recv()))
            await cid.send("all:everyone")  # server.broadcast: every ws route
            got["ann"].append(await ann.recv())
            got["bob"].append(await bob.recv())
            got["cid"] = [await cid.recv()]
            # bob unbound: nothing more from "blue" reached him
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bob.recv(), 0.2)
            return got

    got = run(client())
    assert got["ann"] == [
        {"from": "blue", "text": "hello"},
        "psst",
        {"from": "blue", "text": "after"},
        "everyone",
    ]
    assert got["bob"] == [{"from": "blue", "text": "hello"}, "left", "everyone"]
    assert got["cid"] == ["everyone"]


def test_closed_sockets_leave_their_channels(live: Live) -> None:
    async def client() -> list[Any]:
        async with connect(url(live, "/lobby")) as first:
            before = await first.recv()
            async with connect(url(live, "/lobby")) as second:
                during = await second.recv()
        return [before, during]

    before, during = run(client())
    assert before.startswith("members ")
    assert during == f"members {int(before[8:]) + 1}"
    wait_for(lambda: live.get("/lobby-size").json() == 0)


def test_a_slow_reader_is_closed_with_1013_and_others_get_everything(live: Live) -> None:
    """Back-pressure: a socket that does not read never makes the server buffer
    without bound; it is closed with 1013 while a reading socket gets it all."""
    count, size = 300, 64 * 1024
    slow = RawSocket(live.port, "/slow")
    assert slow.status == 101
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    seen.pop("slow-close", None)

    async def fast_reader_and_flood() -> list[int]:
        async with connect(url(live, "/lobby"), compression=None, max_size=None) as fast:
            await fast.recv()  # "members n"

            async def read_all() -> list[int]:
                return [len(await fast.recv()) for _ in range(count)]

            reader = asyncio.create_task(read_all())
            async with httpx.AsyncClient(timeout=30) as http:
                response = await http.post(f"{live.url}/flood?n={count}&size={size}")
                assert response.json()["members"] >= 1
            return await reader

    sizes = run(fast_reader_and_flood(), seconds=40)
    assert sizes == [size] * count
    wait_for(lambda: bool(seen.get("slow-close")))
    code, reason, channels = seen["slow-close"][0]
    assert (code, reason, channels) == (1013, "too slow: send queue full", frozenset())
    # what reached the socket before the close is bounded: kernel buffers plus the queue
    slow.sock.settimeout(10)
    close_code, frames = slow.read_until_close()
    slow.close()
    assert close_code == 1013
    assert 0 < sum(len(payload) for _, payload in frames) < count * size
    assert count * size > SEND_QUEUE_LIMIT


# ------------------------------------------------------------------ sessions


def test_session_is_loaded_at_the_handshake_and_saved() -> None:
    app = simples.server()
    app.session()

    @app.get("/login")
    async def login(connection: HTTPConnection) -> str:
        assert connection.session is not None
        connection.session["user"] = "ann"
        return "ok"

    @app.get("/whoami")
    async def whoami(connection: HTTPConnection) -> Any:
        assert connection.session is not None
        return dict(connection.session)

    @app.ws("/me")
    async def me(ws: WebSocketConnection) -> None:
        assert ws.session is not None
        await ws.send(str(ws.session.get("user")))
        ws.session["visited_ws"] = True

    @app.ws("/fresh")
    async def fresh(ws: WebSocketConnection) -> None:
        assert ws.session is not None
        ws.session["from_ws"] = "before accepting"
        await ws.send(ws.session.id)

    with serve(app) as running:
        running.get("/login")
        cookie = running.client.cookies["_session"]

        async def client(headers: dict[str, str] | None) -> Any:
            async with connect(url(running, "/me"), additional_headers=headers) as ws:
                return await ws.recv()

        assert run(client({"Cookie": f"_session={cookie}"})) == "ann"
        assert run(client(None)) == "None"
        wait_for(lambda: running.get("/whoami").json().get("visited_ws") is True)
        assert running.get("/whoami").json() == {"user": "ann", "visited_ws": True}

        async def fresh_client() -> tuple[Any, list[str]]:
            async with connect(url(running, "/fresh")) as ws:
                assert ws.response is not None
                return await ws.recv(), ws.response.headers.get_all("Set-Cookie")

        # written before accepting: saved, and its cookie rides on the 101 answer
        session_id, cookies = run(fresh_client())
        assert len(cookies) == 1
        assert cookies[0].startswith(f"_session={session_id};")
        assert "HttpOnly" in cookies[0]
        with httpx.Client(base_url=running.url, cookies={"_session": session_id}) as other:
            assert other.get("/whoami").json() == {"from_ws": "before accepting"}


# ------------------------------------------------------------ server's duties


def test_dead_peers_are_dropped_by_the_servers_pings() -> None:
    """A peer that never answers pings is closed by the server (``listen()``
    configures the pings; here they are made short to keep the test fast)."""
    assert uvicorn_options()["ws_ping_interval"]
    assert uvicorn_options()["ws_ping_timeout"]
    app = simples.server()
    closed: list[Any] = []

    @app.ws("/hang")
    async def hang(ws: WebSocketConnection) -> None:
        async for _ in ws:
            pass
        closed.append(ws.close_code)

    options = {**uvicorn_options(), "ws_ping_interval": 0.2, "ws_ping_timeout": 0.3}
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_level="warning", **options)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[listener]),))
        thread.start()
        try:
            wait_for(lambda: server.started)
            raw = RawSocket(port, "/hang")  # never answers a ping
            assert raw.status == 101
            started = time.monotonic()
            _, opcode, _ = raw.read_frame()
            assert opcode == 0x9  # the server's ping
            close_code, _ = raw.read_until_close()
            assert close_code == 1011  # keepalive ping timeout
            assert time.monotonic() - started < 3
            wait_for(lambda: bool(closed))
            raw.close()
        finally:
            server.should_exit = True
            thread.join(10)
    assert closed[0] in (1005, 1006, 1011)


def test_graceful_shutdown_closes_sockets_with_1001() -> None:
    app = simples.server()

    @app.ws("/wait")
    async def wait(ws: WebSocketConnection) -> None:
        await ws.send("ready")
        async for _ in ws:
            pass

    codes: list[int | None] = []
    ready = threading.Event()
    done = threading.Event()

    async def client(port: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/wait") as ws:
            await ws.recv()
            ready.set()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            codes.append(ws.close_code)
        done.set()

    with serve(app) as running:
        thread = threading.Thread(target=run, args=(client(running.port),))
        thread.start()
        assert ready.wait(5)
    # leaving the block stopped the server
    assert done.wait(5)
    thread.join(5)
    assert codes == [1001]


def test_a_thousand_concurrent_connections_on_one_worker() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    app = simples.server()
    everyone = app.channel("everyone")

    @app.ws("/c/:n")
    async def member(ws: WebSocketConnection) -> None:
        everyone.bind(ws)
        async for message in ws:
            await ws.send(f"{ws.params['n']}:{message.data}")

    @app.post("/shout")
    async def shout(connection: HTTPConnection) -> int:
        await everyone.broadcast("shout")
        return len(everyone)

    total = 1000

    async def clients(port: int) -> tuple[int, int, int]:
        gate = asyncio.Semaphore(200)
        sockets: list[ClientConnection] = []

        async def open_one(index: int) -> None:
            async with gate:
                target = f"ws://127.0.0.1:{port}/c/{index}"
                sockets.append(await connect(target, compression=None, open_timeout=20))

        await asyncio.gather(*(open_one(index) for index in range(total)))
        try:
            async with httpx.AsyncClient(timeout=20) as http:
                members = (await http.post(f"http://127.0.0.1:{port}/shout")).json()
            shouts = await asyncio.gather(*(ws.recv() for ws in sockets))

            async def round_trip(ws: ClientConnection) -> bool:
                await ws.send("hi")
                reply = await ws.recv()
                return isinstance(reply, str) and reply.endswith(":hi")

            echoes = await asyncio.gather(*(round_trip(ws) for ws in sockets))
            return members, shouts.count("shout"), sum(echoes)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))

    with serve(app) as running:
        assert run(clients(running.port), seconds=50) == (total, total, total)
        wait_for(lambda: len(everyone) == 0, seconds=10)


def test_message_repr_and_json() -> None:
    message = Message("text", '{"a": 1}')
    assert message.json() == {"a": 1}
    assert repr(message) == "Message('text', '{\"a\": 1}')"
    assert repr(Message("text", 1, "tick")) == "Message('text', 1, event='tick')"


def test_explicit_accept_with_headers_and_close_before_accepting() -> None:
    app = simples.server()

    @app.ws("/accept")
    async def accept(ws: WebSocketConnection) -> None:
        with contextlib.suppress(ValueError):
            await ws.accept(subprotocol="never-offered")
            await ws.send("accepted a subprotocol nobody offered")
        await ws.accept(headers={"X-Hello": "there"})
        await ws.send(f"accepted={ws.accepted}")

    @app.ws("/shut")
    async def shut(ws: WebSocketConnection) -> None:
        await ws.close()  # before the handshake: a refusal

    async def client(port: int) -> tuple[Any, Any]:
        async with connect(f"ws://127.0.0.1:{port}/accept") as ws:
            assert ws.response is not None
            return ws.response.headers.get("X-Hello"), await ws.recv()

    with serve(app) as running:
        assert run(client(running.port)) == ("there", "accepted=True")
        with pytest.raises(InvalidStatus) as refused:
            run(connect(url(running, "/shut")))
        assert refused.value.response.status_code == 403


def test_servers_sharing_a_local_broker_reach_each_others_sockets() -> None:
    """The in-process broker across two servers, each on its own event loop."""
    broker = simples.ws.LocalBroker()
    apps = [simples.server(broker=broker), simples.server(broker=broker)]
    for app in apps:

        def make(app: simples.Server) -> Callable[[WebSocketConnection], Awaitable[None]]:
            async def talk(ws: WebSocketConnection) -> None:
                app.channel("shared").bind(ws)
                await ws.send("ready")
                async for message in ws:
                    await app.channel("shared").broadcast(message.data)

            return talk

        app.ws("/talk", make(app))

    with serve(apps[0]) as first, serve(apps[1]) as second:

        async def clients() -> list[Any]:
            async with connect(url(first, "/talk")) as ann, connect(url(second, "/talk")) as bob:
                assert [await ann.recv(), await bob.recv()] == ["ready", "ready"]
                await ann.send("across loops")
                return [await ann.recv(), await bob.recv()]

        assert run(clients()) == ["across loops", "across loops"]


def test_the_chat_example() -> None:
    import json

    from examples.chat.app import ORIGINS, server

    with serve(server) as running:
        page = running.get("/")
        assert page.status_code == 200
        assert "new WebSocket" in page.text
        assert running.request("POST", "/name", data={"name": "ada"}).json() == {"name": "ada"}
        cookie = running.client.cookies["_session"]

        async def client() -> list[Any]:
            headers = {"Cookie": f"_session={cookie}"}
            target = url(running, "/chat/lobby")
            async with connect(target, origin=ORIGINS[0], additional_headers=headers) as ada:  # type: ignore[arg-type]
                joined = json.loads(await ada.recv())
                async with connect(target, origin=ORIGINS[1]) as guest:  # type: ignore[arg-type]
                    others = [json.loads(await ada.recv()), json.loads(await guest.recv())]
                    await guest.send("hi all")
                    said = json.loads(await ada.recv())
                left = json.loads(await ada.recv())
                return [joined, others, said, left]

        joined, others, said, left = run(client())
        assert (joined["kind"], joined["from"]) == ("joined", "ada")
        assert [(m["kind"], m["from"]) for m in others] == [("joined", "anonymous")] * 2
        assert (said["kind"], said["from"], said["text"]) == ("said", "anonymous", "hi all")
        assert (left["kind"], left["from"]) == ("left", "anonymous")
        with pytest.raises(InvalidStatus) as refused:
            run(connect(url(running, "/chat/lobby"), origin="https://elsewhere.example"))  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403


def test_on_granian() -> None:
    import subprocess
    import sys
    from pathlib import Path

    from tests.redis_server import free_port

    root = Path(__file__).resolve().parent.parent
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.ws_app", str(port), "granian"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert child.poll() is None, child.communicate()[0]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "granian did not start within 20 s"
                time.sleep(0.05)

        async def client() -> Any:
            async with connect(f"ws://127.0.0.1:{port}/echo/n", subprotocols=["v1"]) as ws:  # type: ignore[list-item]
                await ws.send("hi")
                return await ws.recv()

        assert run(client()) == "n ws v1 hi"
        with pytest.raises(InvalidStatus) as refused:
            run(connect(f"ws://127.0.0.1:{port}/no"))
        assert refused.value.response.status_code == 401
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate(timeout=5)


def test_trusted_proxy_headers_give_wss_and_the_client_address() -> None:
    app = simples.server()
    app.proxy(["127.0.0.1"])

    @app.ws("/who")
    async def who(ws: WebSocketConnection) -> None:
        await ws.send(f"{ws.protocol} {ws.ip} {ws.url.scheme}")

    async def client(port: int, headers: dict[str, str]) -> Any:
        async with connect(f"ws://127.0.0.1:{port}/who", additional_headers=headers) as ws:
            return await ws.recv()

    with serve(app) as running:
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        assert run(client(running.port, forwarded)) == "wss 203.0.113.9 wss"
        assert run(client(running.port, {})) == "ws 127.0.0.1 ws"
