"""WebSocket pieces on their own: close-code rules, frame encoding, the ASGI
handshake on a server without ``websocket.http.response``, broker wiring, the
Redis subscriber's heartbeat against a frozen Redis, task start, and a
socket's outbox."""

from __future__ import annotations

import asyncio
import logging
import sys
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
    Outbox,
    RedisBroker,
    WebSocketClosed,
    check_close,
    encode_frame,
    hub_of,
)
from simples.ws.outbox import start_task, write_all


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


# ----------------------------------------- start_task: eager on 3.12+, plain on 3.11

EAGER = sys.version_info >= (3, 12)


def test_start_task_runs_at_once_on_312_and_next_turn_on_311() -> None:
    async def scenario() -> tuple[bool, list[str]]:
        steps: list[str] = []

        async def quick() -> None:
            steps.append("ran")

        task = start_task(asyncio.get_running_loop(), quick())
        steps.append("after")
        done_at_once = task.done()
        await task
        return done_at_once, steps

    expected = ["ran", "after"] if EAGER else ["after", "ran"]
    assert asyncio.run(scenario()) == (EAGER, expected)


def test_start_task_keeps_a_waiting_coroutine_going() -> None:
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

        task = start_task(asyncio.get_running_loop(), slow())
        steps.append("returned")
        await asyncio.sleep(0.02)
        assert not task.done()
        event.set()
        await asyncio.wait_for(task, 2)
        return steps

    first = ["first step", "returned"] if EAGER else ["returned", "first step"]
    assert asyncio.run(scenario()) == [*first, "woken", "finished"]


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

        task = start_task(asyncio.get_running_loop(), waits_forever())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return steps

    assert asyncio.run(scenario()) == ["cancelled inside", "cleaned up"]


# -------------------------------------------------------------------- the outbox


class Wire:
    """An ASGI ``send`` that records frames; ``stuck`` sockets wait until released."""

    def __init__(self, stuck: bool = False) -> None:
        self.sent: list[Any] = []
        self.gate: asyncio.Event | None = asyncio.Event() if stuck else None
        self.fail: BaseException | None = None

    async def send(self, message: Any) -> None:
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(message)


def outbox_for(wire: Wire, events: list[str] | None = None) -> Outbox:
    log = events if events is not None else []
    outbox = Outbox(
        wire.send, "/test",
        lost=lambda: log.append("lost"),
        too_slow=lambda: log.append("too slow"),
        closed_error=lambda: WebSocketClosed(1001, "gone"),
    )  # fmt: skip
    outbox.writable = True
    return outbox


def frame(text: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": text}


def test_outbox_writes_posted_frames_in_order() -> None:
    async def scenario() -> list[Any]:
        wire = Wire()
        outbox = outbox_for(wire)
        assert not outbox.post(frame("a"), 1)
        assert not outbox.post(frame("b"), 1)
        await asyncio.sleep(0.01)
        assert not outbox.busy
        assert outbox.queued == 0
        return wire.sent

    assert asyncio.run(scenario()) == [frame("a"), frame("b")]


def test_outbox_waits_for_the_handshake() -> None:
    async def scenario() -> list[Any]:
        wire = Wire()
        outbox = outbox_for(wire)
        outbox.writable = False  # connecting
        outbox.post(frame("early"), 5)
        await asyncio.sleep(0.01)
        assert wire.sent == []
        outbox.open()
        await asyncio.sleep(0.01)
        return wire.sent

    assert asyncio.run(scenario()) == [frame("early")]


def test_outbox_congestion_and_hard_limit() -> None:
    async def scenario() -> list[str]:
        events: list[str] = []
        wire = Wire(stuck=True)
        outbox = outbox_for(wire, events)
        outbox.limit = 1000
        # on 3.12+ the writer takes the first frame at once and waits with it
        assert not outbox.post(frame("x"), 500)
        outbox.post(frame("y"), 500)
        assert outbox.post(frame("z"), 500)  # at least 2 x (500 + 64) > 1000 waiting
        assert outbox.congested
        drained = outbox.wait_drained()
        outbox.post(frame("big"), 5000)  # past 4 x the limit: closed at once
        assert events == ["too slow"]
        assert wire.gate is not None
        wire.gate.set()
        await asyncio.wait_for(drained, 2)
        return events

    assert asyncio.run(scenario()) == ["too slow"]


def test_outbox_put_waits_behind_broadcast_frames_and_drop_fails_it() -> None:
    async def scenario() -> None:
        wire = Wire(stuck=True)
        outbox = outbox_for(wire)
        outbox.post(frame("broadcast"), 9)
        put = asyncio.ensure_future(outbox.put(frame("own")))
        await asyncio.sleep(0.01)
        assert not put.done()
        outbox.drop()
        with pytest.raises(WebSocketClosed) as caught:
            await put
        assert (caught.value.code, caught.value.reason) == (1001, "gone")
        assert not outbox.busy
        assert not outbox.accepting
        assert not outbox.post(frame("late"), 1)

    asyncio.run(scenario())


def test_a_failing_send_reports_the_socket_lost() -> None:
    async def scenario() -> list[str]:
        events: list[str] = []
        wire = Wire()
        wire.fail = OSError("gone")
        outbox = outbox_for(wire, events)
        outbox.post(frame("x"), 1)
        await asyncio.sleep(0.01)
        return events

    assert asyncio.run(scenario()) == ["lost"]


def test_a_broadcast_writes_idle_sockets_in_one_task() -> None:
    async def scenario() -> None:
        wires = [Wire() for _ in range(5)]
        outboxes = [outbox_for(wire) for wire in wires]
        idle: list[Outbox] = []
        for outbox in outboxes:
            outbox.post(frame("all"), 3, idle)
        assert idle == outboxes
        before = len(asyncio.all_tasks())
        write_all(idle)
        # at most the one batch task, never one per socket
        assert len(asyncio.all_tasks()) - before <= 1
        if EAGER:
            assert all(wire.sent == [frame("all")] for wire in wires)
        await asyncio.sleep(0)
        assert all(wire.sent == [frame("all")] for wire in wires)
        assert not any(outbox.busy for outbox in outboxes)

    asyncio.run(scenario())


def test_a_stuck_socket_does_not_hold_up_the_batch() -> None:
    async def scenario() -> None:
        wires = [Wire(), Wire(stuck=True), Wire(), Wire()]
        outboxes = [outbox_for(wire) for wire in wires]
        idle: list[Outbox] = []
        for outbox in outboxes:
            outbox.post(frame("all"), 3, idle)
        write_all(idle)
        await asyncio.sleep(0.01)
        assert [len(wire.sent) for wire in wires] == [1, 0, 1, 1]
        # the others take new frames on writers of their own meanwhile
        outboxes[3].post(frame("more"), 4)
        await asyncio.sleep(0.01)
        assert wires[3].sent == [frame("all"), frame("more")]
        assert outboxes[1].busy
        assert wires[1].gate is not None
        wires[1].gate.set()
        await asyncio.sleep(0.01)
        assert wires[1].sent == [frame("all")]
        assert not outboxes[1].busy

    asyncio.run(scenario())


def test_dropping_a_stuck_socket_in_a_batch_spares_the_others() -> None:
    async def scenario() -> None:
        wires = [Wire(stuck=True), Wire(), Wire()]
        outboxes = [outbox_for(wire) for wire in wires]
        idle: list[Outbox] = []
        for outbox in outboxes:
            outbox.post(frame("all"), 3, idle)
        write_all(idle)
        await asyncio.sleep(0)
        outboxes[0].drop()  # cancels the batch task, now writing only this one
        await asyncio.sleep(0.01)
        assert [len(wire.sent) for wire in wires] == [0, 1, 1]

    asyncio.run(scenario())
