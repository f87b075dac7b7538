"""WebSocket pieces on their own: close-code rules, frame encoding, the ASGI
handshake on a server without ``websocket.http.response``, broker wiring, and
the Redis subscriber's heartbeat against a frozen Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.redis_server import RedisProcess, running_redis

import simples
from simples import WebSocketConnection
from simples.ws import (
    Broker,
    LocalBroker,
    RedisBroker,
    _start_eagerly,
    check_close,
    encode_frame,
    hub_of,
)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1008, 1009, 1011, 1013, 1014, 3000, 4999])
def test_sendable_close_codes(code: int) -> None:
    check_close(code, "fine")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1010, 1015, 1016, 2999, 5000, True])
def test_reserved_or_out_of_range_close_codes(code: int) -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        check_close(code, "")


def test_close_reason_limits() -> None:
    check_close(1000, "é" * 61)  # 122 bytes
    with pytest.raises(ValueError, match="123 bytes"):
        check_close(1000, "é" * 62)
    with pytest.raises(TypeError):
        check_close(1000, b"bytes")  # type: ignore[arg-type]


def test_frames_by_type() -> None:
    assert encode_frame("é") == ({"type": "websocket.send", "text": "é"}, 1)
    assert encode_frame(b"ab") == ({"type": "websocket.send", "bytes": b"ab"}, 2)
    assert encode_frame(bytearray(b"x"))[0] == {"type": "websocket.send", "bytes": b"x"}
    assert encode_frame({"a": [1, None]})[0] == {"type": "websocket.send", "text": '{"a":[1,null]}'}
    assert encode_frame(None)[0] == {"type": "websocket.send", "text": "null"}
    with pytest.raises(TypeError):
        encode_frame(object())


def test_brokers_satisfy_the_protocol() -> None:
    assert isinstance(LocalBroker(), Broker)
    assert isinstance(RedisBroker("redis://127.0.0.1:1/0"), Broker)
    assert not isinstance(object(), Broker)


# -------------------------------------------- an ASGI server without the extension


class Exchange:
    """Drives the app as an ASGI server would, recording what it sends."""

    def __init__(self, path: str, extensions: dict[str, Any] | None, **scope: Any) -> None:
        self.scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 5000),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"example.com")],
            "subprotocols": [],
            **scope,
        }
        if extensions is not None:
            self.scope["extensions"] = extensions
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))
        if message["type"] == "websocket.close":
            self.incoming.put_nowait({"type": "websocket.disconnect", "code": message.get("code")})

    async def run(self, app: simples.Server) -> list[dict[str, Any]]:
        await asyncio.wait_for(app(self.scope, self.receive, self.send), 5)
        return self.sent


def refusing_app() -> simples.Server:
    app = simples.server()

    @app.ws("/no")
    async def no(ws: WebSocketConnection) -> None:
        await ws.error(401)

    @app.ws("/origin", origins=["https://ok.example"])
    async def origin(ws: WebSocketConnection) -> None:
        await ws.send("never")

    @app.ws("/yes")
    async def yes(ws: WebSocketConnection) -> None:
        message = await ws.receive()
        await ws.send(message.data)

    return app


def test_without_http_response_a_refusal_closes_before_accepting() -> None:
    app = refusing_app()
    sent = asyncio.run(Exchange("/no", None).run(app))
    assert sent == [{"type": "websocket.close", "code": 1008}]
    bad_origin = Exchange("/origin", {}, headers=[(b"host", b"x"), (b"origin", b"https://evil")])
    assert asyncio.run(bad_origin.run(app)) == [{"type": "websocket.close", "code": 1008}]


def test_with_http_response_a_refusal_is_an_http_answer() -> None:
    app = refusing_app()
    sent = asyncio.run(Exchange("/no", {"websocket.http.response": {}}).run(app))
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 401
    assert sent[-1] == {"type": "websocket.http.response.body", "body": b"Unauthorized"}


def test_an_accepted_exchange_in_asgi_messages() -> None:
    exchange = Exchange("/yes", {"websocket.http.response": {}})
    exchange.incoming.put_nowait({"type": "websocket.receive", "text": "ping"})
    sent = asyncio.run(exchange.run(refusing_app()))
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.send", "text": "ping"},
        {"type": "websocket.close", "code": 1000, "reason": ""},
    ]


def test_a_bad_host_is_refused_before_routing() -> None:
    exchange = Exchange("/yes", {"websocket.http.response": {}}, headers=[(b"host", b"bad host")])
    sent = asyncio.run(exchange.run(refusing_app()))
    assert sent[0]["status"] == 400


def test_a_client_gone_before_the_handshake_runs_nothing() -> None:
    exchange = Exchange("/yes", {})
    exchange.incoming = asyncio.Queue()
    exchange.incoming.put_nowait({"type": "websocket.disconnect", "code": 1006})
    assert asyncio.run(exchange.run(refusing_app())) == []


def test_a_broker_that_is_not_one_refuses_with_500_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = refusing_app()
    app.config(broker=object())
    with caplog.at_level(logging.ERROR, logger="simples"):
        sent = asyncio.run(Exchange("/yes", {"websocket.http.response": {}}).run(app))
    assert sent[0]["status"] == 500
    assert "publish(payload)" in caplog.text


def test_the_hub_ignores_what_is_not_a_broadcast() -> None:
    hub = hub_of(simples.server())
    for payload in (b"", b"garbage", b"simples-ws/1 {not json\n", b"simples-ws/1 {}\nbody",
                    b'simples-ws/1 {"o":"x","c":"nope","k":"t"}\n\xff'):
        hub.deliver(payload)  # no exception, nothing to deliver to
    assert hub.connections == set()


def test_channels_are_per_server_and_named() -> None:
    first, second = simples.server(), simples.server()
    kept = first.channel("a")
    assert first.channel("a") is kept
    assert first.channel("a") is not second.channel("a")
    assert kept.name == "a"
    assert len(kept) == 0
    with pytest.raises(ValueError, match="non-empty"):
        first.channel("")


def test_unused_empty_channels_do_not_pile_up() -> None:
    import gc

    app = simples.server()
    for index in range(100):
        app.channel(f"room:{index}")
    gc.collect()
    assert len(hub_of(app).channels) == 0
    kept = app.channel("kept")
    gc.collect()
    assert list(hub_of(app).channels) == ["kept"]
    assert app.channel("kept") is kept


# ------------------------------------------------------------------ Redis broker


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    with running_redis() as process:
        yield process


def test_redis_broker_delivers_and_survives_a_frozen_redis(redis: RedisProcess) -> None:
    async def scenario() -> list[bytes]:
        broker = RedisBroker(redis.url, channel="unit:ws", timeout=0.5, heartbeat=0.3)
        other = RedisBroker(redis.url, channel="unit:ws", timeout=0.5, heartbeat=0.3)
        received: list[bytes] = []
        await broker.subscribe(received.append)
        assert broker.connected
        await other.publish(b"one")
        await wait_until(lambda: received == [b"one"])
        # frozen: TCP still accepts but nothing answers; the heartbeat notices
        redis.pause()
        try:
            await wait_until(lambda: not broker.connected, seconds=5)
            await broker.publish(b"lost")  # dropped at once, not blocked on Redis
        finally:
            redis.resume()
        await wait_until(lambda: broker.connected, seconds=5)
        await other.publish(b"two")
        await wait_until(lambda: received[-1:] == [b"two"])
        await broker.unsubscribe(received.append)
        await other.unsubscribe(received.append)  # never subscribed: harmless
        assert not broker.connected
        return received

    started = time.monotonic()
    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == [b"one", b"two"]
    assert time.monotonic() - started < 10


def test_redis_broker_waits_only_briefly_when_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.redis_server import free_port

    async def scenario() -> float:
        broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
        delivered: list[bytes] = []
        started = asyncio.get_running_loop().time()
        await broker.subscribe(delivered.append)
        waited = asyncio.get_running_loop().time() - started
        await broker.publish(b"x")  # dropped: the subscriber is not connected
        await broker.unsubscribe(delivered.append)
        assert delivered == []
        return waited

    with caplog.at_level(logging.WARNING, logger="simples"):
        waited = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert waited < 1.0
    assert "not reachable yet" in caplog.text


async def wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        await asyncio.sleep(0.02)


# ------------------------------------------------- eager start of writer coroutines


def test_eager_start_finishes_without_a_task_when_nothing_waits() -> None:
    async def scenario() -> tuple[object, list[str]]:
        steps: list[str] = []

        async def quick() -> None:
            steps.append("ran")

        task = _start_eagerly(quick())
        steps.append("after")
        return task, steps

    assert asyncio.run(scenario()) == (None, ["ran", "after"])


def test_eager_start_hands_a_waiting_coroutine_to_a_task() -> None:
    async def scenario() -> list[str]:
        steps: list[str] = []
        event = asyncio.Event()

        async def slow() -> None:
            steps.append("first step")
            await event.wait()
            steps.append("woken")
            await asyncio.sleep(0)  # a bare yield
            await asyncio.sleep(0.01)
            steps.append("finished")

        task = _start_eagerly(slow())
        assert task is not None
        steps.append("returned")
        await asyncio.sleep(0.02)
        assert not task.done()
        event.set()
        await asyncio.wait_for(task, 2)
        return steps

    assert asyncio.run(scenario()) == ["first step", "returned", "woken", "finished"]


def test_cancelling_the_task_reaches_the_coroutine() -> None:
    async def scenario() -> list[str]:
        steps: list[str] = []

        async def waits_forever() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                steps.append("cancelled inside")
                raise
            finally:
                steps.append("cleaned up")

        task = _start_eagerly(waits_forever())
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return steps

    assert asyncio.run(scenario()) == ["cancelled inside", "cleaned up"]


def test_a_failing_future_raises_inside_the_coroutine() -> None:
    async def scenario() -> list[str]:
        steps: list[str] = []
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def fails() -> None:
            try:
                await future
            except KeyError:
                steps.append("saw the error")

        task = _start_eagerly(fails())
        assert task is not None
        future.set_exception(KeyError("x"))
        await asyncio.wait_for(task, 2)
        return steps

    assert asyncio.run(scenario()) == ["saw the error"]
