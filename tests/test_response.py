"""The response's one owner: its state machine, all-or-none start hooks, the raw
ASGI side, and the connection members that go through it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import simples
from simples import HTTPConnection
from simples.response import PreparedAnswer, Response, ResponseStateError
from simples.types import Message


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Sink:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)


# ---------------------------------------------------------------- state machine


def test_states_move_one_way() -> None:
    async def go() -> list[str]:
        response = Response(Sink())
        seen = [response.state]
        await response.start(None)
        seen.append(response.state)
        await response.write(b"a")
        await response.end()
        seen.append(response.state)
        return seen

    assert run(go()) == ["idle", "streaming", "finished"]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("write_before_start", "has not started"),
        ("end_before_start", "has not started"),
        ("header_after_start", "already started"),
        ("start_twice", "already started"),
        ("write_after_end", "already complete"),
        ("respond_after_respond", "already started"),
    ],
)
def test_illegal_steps_raise_a_clear_error(step: str, message: str) -> None:
    async def go() -> None:
        response = Response(Sink())
        if step == "write_before_start":
            await response.write(b"x")
        elif step == "end_before_start":
            await response.end()
        elif step == "header_after_start":
            await response.start(None)
            response.set("x-late", ["1"])
        elif step == "start_twice":
            await response.start(None)
            await response.start(None)
        elif step == "write_after_end":
            await response.start(None)
            await response.end()
            await response.write(b"x")
        elif step == "respond_after_respond":
            await response.respond(b"a")
            await response.respond(b"b")

    with pytest.raises(ResponseStateError, match=message):
        run(go())
    assert issubclass(ResponseStateError, RuntimeError)


def test_a_failing_hook_restores_status_and_headers_and_is_dropped() -> None:
    calls: list[str] = []

    async def go() -> tuple[Response, Sink]:
        sink = Sink()
        response = Response(sink)
        response.set("content-type", ["text/plain"])

        async def encode(body: bytes | None) -> bytes | None:
            calls.append("encode")
            response.set("content-encoding", ["gzip"])
            response.set_status(299)
            return b"compressed"

        async def fail(body: bytes | None) -> bytes | None:
            calls.append("fail")
            raise simples.HTTPError(503)

        response.on_start(encode)
        response.on_start(fail)
        with pytest.raises(simples.HTTPError):
            await response.respond(b"plain")
        assert response.state == "idle"
        assert response.status == 200
        assert "content-encoding" not in response.headers
        await response.respond(b"again")
        return response, sink

    _, sink = run(go())
    # the failing hook ran once; the other one ran again for the second answer
    assert calls == ["encode", "fail", "encode"]
    assert sink.messages[0]["status"] == 299
    assert sink.messages[1]["body"] == b"compressed"


def test_a_304_keeps_validators_and_vary_but_not_representation_metadata() -> None:
    async def go() -> Message:
        sink = Sink()
        response = Response(sink)
        for name, value in {
            "etag": '"a"',
            "vary": "Accept-Encoding",
            "content-type": "text/html",
            "content-length": "10",
            "accept-ranges": "bytes",
        }.items():
            response.set(name, [value])
        response.set_status(304)
        await response.respond(b"")
        return sink.messages[0]

    head = dict(run(go())["headers"])
    assert head == {b"etag": b'"a"', b"vary": b"Accept-Encoding"}


# ---------------------------------------------------------------- raw ASGI side


def asgi_hello(text: bytes) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": text})

    return app


def test_an_asgi_app_called_from_a_handler_answers_once() -> None:
    app = simples.server()
    errors: list[BaseException] = []

    @app.get("/asgi")
    async def asgi(connection: HTTPConnection) -> None:
        raw = connection.request
        await asgi_hello(b"from asgi")(raw.scope, raw.receive, connection.response.send)
        assert connection.started
        assert connection.finished

    @app.get("/twice")
    async def twice(connection: HTTPConnection) -> None:
        await connection.send("first")
        try:
            await connection.response.send({"type": "http.response.start", "status": 200})
        except ResponseStateError as exc:
            errors.append(exc)

    async def go() -> tuple[int, bytes, int, bytes]:
        async with simples.client(app) as client:
            one = await client.get("/asgi")
            two = await client.get("/twice")
            return one.status, await one.buffer(), two.status, await two.buffer()

    assert run(go()) == (202, b"from asgi", 200, b"first")
    assert len(errors) == 1


def test_user_start_hooks_get_the_connection_and_the_body() -> None:
    app = simples.server()

    async def stamp(connection: HTTPConnection, body: bytes | None) -> bytes | None:
        connection.header("x-length", str(len(body or b"")))
        return body

    @app.get("/")
    async def home(connection: HTTPConnection) -> str:
        connection.on_start(stamp)
        return "hello"

    async def go() -> str | None:
        async with simples.client(app) as client:
            return (await client.get("/")).headers.get("x-length")

    assert run(go()) == "5"


def test_a_refused_redirect_target_changes_nothing() -> None:
    app = simples.server()

    @app.get("/")
    async def home(connection: HTTPConnection) -> None:
        try:
            await connection.redirect("/next\r\nx-injected: 1")
        except ValueError:
            await connection.send("stayed")

    async def go() -> tuple[int, Any, bytes]:
        async with simples.client(app) as client:
            response = await client.get("/")
            return response.status, response.headers, await response.buffer()

    status, headers, body = run(go())
    assert status == 200
    assert "location" not in headers
    assert body == b"stayed"


# ---------------------------------------------------------------- prepared answers

LINES = (("etag", '"5-1"'), ("content-type", "text/plain"), ("accept-ranges", "bytes"))


def _answers(shape: str) -> tuple[list[Message], list[Message], dict[str, list[str]]]:
    """The messages of respond_prepared() and of fill() + respond() on the same
    response shape, and the headers the prepared one leaves to read."""

    async def prepare(response: Response) -> None:
        if shape == "header":
            response.set("x-set", ["1"])
        elif shape == "status":
            response.set_status(404)
        elif shape == "hook":

            async def hook(body: bytes | None) -> bytes | None:
                response.set("x-hook", [response.headers["etag"][0]])
                return body

            response.on_start(hook)

    async def go() -> tuple[list[Message], list[Message], dict[str, list[str]]]:
        answer = PreparedAnswer(LINES, b"hello")
        fast, slow = Sink(), Sink()
        prepared = Response(fast, head_only=shape == "head")
        await prepare(prepared)
        await prepared.respond_prepared(answer)
        usual = Response(slow, head_only=shape == "head")
        await prepare(usual)
        usual.fill(LINES)
        await usual.respond(b"hello")
        assert prepared.finished
        assert prepared.state == "finished"
        return fast.messages, slow.messages, prepared.headers

    result: tuple[list[Message], list[Message], dict[str, list[str]]] = run(go())
    return result


@pytest.mark.parametrize("shape", ["plain", "head", "header", "status", "hook"])
def test_a_prepared_answer_goes_out_as_respond_would_send_it(shape: str) -> None:
    fast, slow, headers = _answers(shape)
    assert fast == slow
    prepared = [(b"etag", b'"5-1"'), (b"content-type", b"text/plain"), (b"accept-ranges", b"bytes")]
    sent = fast[0]["headers"]
    assert [line for line in sent if line in prepared] == prepared
    assert sent[-1] == (b"content-length", b"5")
    assert fast[1]["body"] == (b"" if shape == "head" else b"hello")
    # what went out can be read afterwards (logs, after-hooks)
    assert headers["content-length"] == ["5"]
    assert headers["etag"] == ['"5-1"']


def test_a_prepared_answer_is_not_changed_by_whoever_edits_what_was_sent() -> None:
    async def go() -> list[Message]:
        answer = PreparedAnswer(LINES, b"hello")
        sink = Sink()
        for _ in range(2):
            await Response(sink).respond_prepared(answer)
            # a wrapping middleware editing the start message in place
            sink.messages[-2]["headers"].append((b"x-added", b"1"))
        return sink.messages

    first, _, second, _ = run(go())
    assert first["headers"] == second["headers"]
    assert first["headers"].count((b"x-added", b"1")) == 1


def test_a_prepared_answer_cannot_answer_twice() -> None:
    async def go() -> None:
        response = Response(Sink())
        await response.respond(b"first")
        await response.respond_prepared(PreparedAnswer(LINES, b"hello"))

    with pytest.raises(ResponseStateError, match="already started"):
        run(go())
