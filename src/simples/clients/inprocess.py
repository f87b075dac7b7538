"""The in-process transport: the app is called as an ASGI 3 server would call it
(https://asgi.readthedocs.io/en/latest/specs/www.html), no sockets involved."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

from simples.types import ASGIApp, Message, Scope

from .base import ClientError, Payload, Response, Timeout

ASGI = {"version": "3.0", "spec_version": "2.4"}
QUEUE = 16  # body chunks an app may send ahead of the reader before it waits

# Errors the app logged as unhandled (simples answers them with a 500 and logs
# them) in the current exchange; the exchange re-raises the first one.
_captured: contextvars.ContextVar[list[BaseException] | None] = contextvars.ContextVar(
    "simples_client_captured", default=None
)


class _Capture(logging.Filter):
    """A filter, not a handler, on the ``simples`` logger: adding a handler would
    change where the app's logs go (simples logs to stderr only when nothing else
    is set up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        errors = _captured.get()
        if errors is not None and record.levelno >= logging.ERROR and record.exc_info:
            error = record.exc_info[1]
            if error is not None:
                errors.append(error)
        return True


_CAPTURE = _Capture()


def _install_capture() -> None:
    target = logging.getLogger("simples")
    if _CAPTURE not in target.filters:
        target.addFilter(_CAPTURE)


class Disconnected(OSError):
    """Raised to the app when it sends on a connection the client has left (as
    ASGI servers do, spec 2.4)."""


class InProcess:
    def __init__(
        self,
        app: ASGIApp,
        timeout: Timeout,
        limit: int,
        client: tuple[str, int],
        raise_app_exceptions: bool,
    ) -> None:
        self.app = app
        self.timeout = timeout
        self.limit = limit
        self.client = client
        self.raise_app_exceptions = raise_app_exceptions
        self.state: dict[str, Any] = {}
        self._lifespan: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] | None = None
        self._from_app: asyncio.Queue[Message] | None = None
        if raise_app_exceptions:
            _install_capture()

    # -------------------------------------------------------------- lifespan

    async def start(self) -> None:
        """Run the app's startup (https://asgi.readthedocs.io/en/latest/specs/lifespan.html);
        an app that does not speak lifespan (raises, or returns) is used without it."""
        self.state = {}
        to_app: asyncio.Queue[Message] = asyncio.Queue()
        from_app: asyncio.Queue[Message] = asyncio.Queue()
        scope: Scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}

        async def send(message: Message) -> None:
            await from_app.put(message)

        async def run() -> None:
            try:
                await self.app(scope, to_app.get, send)
            except Exception as exc:
                await from_app.put({"type": "simples.client.failed", "error": exc})
            else:
                await from_app.put({"type": "simples.client.returned"})

        task = asyncio.create_task(run())
        await to_app.put({"type": "lifespan.startup"})
        reply = await self._wait(from_app, task, "startup")
        kind = reply["type"]
        if kind == "lifespan.startup.complete":
            self._lifespan, self._to_app, self._from_app = task, to_app, from_app
            return
        await _finish(task)
        if kind == "lifespan.startup.failed":
            raise ClientError(f"the app's startup failed: {reply.get('message') or ''}")
        # no lifespan support: go on without it (ASGI lifespan spec, "Scope")

    async def stop(self) -> None:
        task, to_app, from_app = self._lifespan, self._to_app, self._from_app
        self._lifespan = self._to_app = self._from_app = None
        if task is None or to_app is None or from_app is None:
            return
        await to_app.put({"type": "lifespan.shutdown"})
        try:
            reply = await self._wait(from_app, task, "shutdown")
        finally:
            await _finish(task)
        if reply["type"] == "lifespan.shutdown.failed":
            raise ClientError(f"the app's shutdown failed: {reply.get('message') or ''}")
        if reply["type"] == "simples.client.failed" and self.raise_app_exceptions:
            raise reply["error"]

    async def _wait(
        self, from_app: asyncio.Queue[Message], task: asyncio.Task[None], step: str
    ) -> Message:
        try:
            async with asyncio.timeout(self.timeout.read):
                return await from_app.get()
        except TimeoutError:
            task.cancel()
            raise ClientError(f"the app's lifespan {step} took more than "
                              f"{self.timeout.read} s") from None

    # ------------------------------------------------------------------ HTTP

    def _scope(self, kind: str, url: str, headers: list[tuple[str, str]]) -> Scope:
        parts = urlsplit(url)
        raw_path = parts.path or "/"
        secure = parts.scheme in ("https", "wss")
        port = parts.port or (443 if secure else 80)
        # A Host given by the caller replaces the URL's, as with httpx (one Host
        # line: two are a 400, RFC 9112 §3.2).
        given = [value for name, value in headers if name.lower() == "host"]
        host = given[0] if given else parts.netloc.rpartition("@")[2]
        raw = [(b"host", host.encode("idna" if not host.isascii() else "ascii"))]
        raw.extend(
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in headers
            if name.lower() != "host"
        )
        return {
            "type": kind,
            "asgi": ASGI,
            "http_version": "1.1",
            "scheme": parts.scheme,
            "path": unquote(raw_path),
            "raw_path": raw_path.encode("ascii", "ignore"),
            "query_string": parts.query.encode("ascii", "ignore"),
            "root_path": "",
            "headers": raw,
            "client": self.client,
            "server": (parts.hostname or "testserver", port),
            "state": dict(self.state),
        }

    async def exchange(
        self, method: str, url: str, headers: list[tuple[str, str]], payload: Payload
    ) -> Response:
        scope = self._scope("http", url, headers)
        scope["method"] = method
        exchange = _Exchange(self, scope, payload, method, url)
        return await exchange.run()

    # ------------------------------------------------------------- WebSocket

    async def websocket(
        self, url: str, headers: list[tuple[str, str]], protocols: list[str]
    ) -> _WebSocketChannel:
        scope = self._scope("websocket", url, headers)
        scope["subprotocols"] = protocols
        if protocols:
            scope["headers"].append((b"sec-websocket-protocol", ", ".join(protocols).encode()))
        # lets the app answer a refused handshake with a real HTTP response
        scope["extensions"] = {"websocket.http.response": {}}
        channel = _WebSocketChannel(self, scope, url)
        await channel.open()
        return channel


async def _finish(task: asyncio.Task[Any], grace: float = 1.0) -> None:
    """Let the app's task end by itself for a moment, then cancel it."""
    if task.done():
        return
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        task.cancel()
        await asyncio.wait({task})


def _run_app(
    transport: InProcess, scope: Scope, receive: Any, send: Any
) -> tuple[asyncio.Task[None], list[BaseException] | None]:
    errors: list[BaseException] | None = None
    context = contextvars.copy_context()
    if transport.raise_app_exceptions:
        errors = []
        context.run(_captured.set, errors)
    app = transport.app

    async def call() -> None:
        await app(scope, receive, send)

    task = asyncio.create_task(call(), context=context)
    return task, errors


class _End:
    """The pipe's last item: the app finished (``error`` if it raised)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


_COMPLETE = _End(None)


class _Exchange:
    """One HTTP exchange: the app runs in a task; the head wakes the caller; body
    chunks flow through a bounded pipe as the reader pulls them."""

    def __init__(
        self, transport: InProcess, scope: Scope, payload: Payload, method: str, url: str
    ) -> None:
        self.transport = transport
        self.scope = scope
        self.payload = payload
        self.method = method
        self.url = url
        loop = asyncio.get_running_loop()
        self.head: asyncio.Future[Message] = loop.create_future()
        self.over: asyncio.Future[None] = loop.create_future()  # response read or dropped
        self.items: deque[bytes | _End] = deque()
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self.closed = False
        self.finished = False  # the app sent its last body chunk
        self.body_iter: AsyncIterator[bytes] | None = None
        self.body_sent = False
        self.upload_error: BaseException | None = None
        self.errors: list[BaseException] | None = None
        self.task: asyncio.Task[None] | None = None
        self.expected: int | None = None
        self.received = 0

    # ---------------------------------------------------------- the app's side

    async def receive(self) -> Message:
        if not self.body_sent:
            content = self.payload.content
            if isinstance(content, bytes):
                self.body_sent = True
                return {"type": "http.request", "body": content, "more_body": False}
            if self.body_iter is None:
                self.body_iter = aiter(content)
            try:
                chunk = await anext(self.body_iter)
            except StopAsyncIteration:
                self.body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            except Exception as exc:
                # the body's source failed: to the app, the client went away
                self.body_sent = True
                self.upload_error = exc
                self._wake_reader()
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": True}
        await asyncio.shield(self.over)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.closed:
            raise Disconnected("the client closed the response")
        if kind == "http.response.start":
            if self.head.done():
                raise RuntimeError("http.response.start sent twice")
            self.head.set_result(message)
            return
        if kind != "http.response.body":
            return  # extensions this transport does not offer (trailers, push...)
        if not self.head.done():
            raise RuntimeError("http.response.body sent before http.response.start")
        if self.finished:
            raise RuntimeError("http.response.body sent after the last one")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        while len(self.items) >= QUEUE and not self.closed:
            self.writer = asyncio.get_running_loop().create_future()
            await self.writer
        if self.closed:
            raise Disconnected("the client closed the response")
        if body:
            self.items.append(bytes(body))
        if not more:
            self.finished = True
            self.items.append(_COMPLETE)
        self._wake_reader()

    def _wake_reader(self) -> None:
        reader = self.reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _done(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if isinstance(error, Disconnected):
            error = None
        if not self.head.done():
            if error is not None:
                self.head.set_exception(error)
            else:
                self.head.set_exception(ClientError(
                    f"{self.method} {self.url}: the app returned without sending a response"
                ))
        if not self.finished or error is not None:
            self.items.append(_End(error or ClientError("truncated")))
        self._wake_reader()

    # -------------------------------------------------------- the client's side

    async def run(self) -> Response:
        task, self.errors = _run_app(self.transport, self.scope, self.receive, self.send)
        self.task = task
        task.add_done_callback(self._done)
        read = self.transport.timeout.read
        try:
            if self.head.done():
                start = self.head.result()
            else:
                async with asyncio.timeout(read):
                    start = await self.head
        except TimeoutError:
            await self._drop()
            raise ClientError(
                f"{self.method} {self.url}: no response from the app within {read} s"
            ) from None
        except BaseException:
            await self._drop()
            self._raise_logged()
            raise
        if self.errors:
            await self._drop()
            self._raise_logged()
        headers: list[tuple[bytes, bytes]] = [
            (bytes(name).lower(), bytes(value)) for name, value in start.get("headers", ())
        ]
        for name, value in headers:
            if name == b"content-length" and value.isdigit():
                self.expected = int(value)
        chunks: AsyncIterator[bytes]
        if self.method == "HEAD":
            self.expected = None
        chunks = self._chunks()
        return Response(
            int(start["status"]),
            headers,
            chunks,
            self._drop,
            url=self.url,
            method=self.method,
            limit=self.transport.limit,
        )

    def _raise_logged(self) -> None:
        if self.errors:
            raise self.errors[0]

    async def _chunks(self) -> AsyncIterator[bytes]:
        read = self.transport.timeout.read
        items = self.items
        while True:
            while not items:
                self.reader = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(read):
                        await self.reader
                except TimeoutError:
                    raise ClientError(
                        f"{self.method} {self.url}: the body stalled for {read} s"
                    ) from None
                finally:
                    self.reader = None
            item = items.popleft()
            writer = self.writer
            if writer is not None and not writer.done():
                writer.set_result(None)
            if isinstance(item, _End):
                if item is not _COMPLETE:
                    self._raise_logged()
                    if self.upload_error is not None:
                        raise ClientError(
                            f"{self.method} {self.url}: the request body failed: "
                            f"{self.upload_error!r}"
                        ) from self.upload_error
                    if isinstance(item.error, ClientError) or item.error is None:
                        raise ClientError(
                            f"{self.method} {self.url}: the app ended the response before "
                            "the body was complete"
                        )
                    raise item.error
                if self.expected is not None and self.received != self.expected:
                    raise ClientError(
                        f"{self.method} {self.url}: the body has {self.received} bytes, "
                        f"Content-Length said {self.expected}"
                    )
                await self._complete()
                return
            self.received += len(item)
            if self.expected is not None and self.received > self.expected:
                raise ClientError(
                    f"{self.method} {self.url}: the body is longer than its Content-Length "
                    f"({self.expected})"
                )
            yield item

    async def _complete(self) -> None:
        """The last chunk is in: tell the app the exchange is over and let it finish,
        so that what it raises or logs afterwards still reaches the test."""
        if not self.over.done():
            self.over.set_result(None)
        task = self.task
        if task is not None and not task.done():
            read = self.transport.timeout.read
            done, _ = await asyncio.wait({task}, timeout=read)
            if not done:
                task.cancel()
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None and not isinstance(error, Disconnected):
                self._raise_logged()
                raise error
        self._raise_logged()

    async def _drop(self) -> None:
        """The reader is done (or gave up): the app's next send raises, its next
        receive says ``http.disconnect``, and a stuck app is cancelled."""
        if self.closed:
            return
        self.closed = True
        if not self.over.done():
            self.over.set_result(None)
        writer = self.writer
        if writer is not None and not writer.done():
            writer.set_result(None)
        task = self.task
        if task is not None and not task.done():
            await _finish(task, 0.1)


class _WebSocketChannel:
    """A WebSocket to the app (https://asgi.readthedocs.io/en/latest/specs/www.html#websocket)."""

    def __init__(self, transport: InProcess, scope: Scope, url: str) -> None:
        self.transport = transport
        self.scope = scope
        self.url = url
        self.subprotocol: str | None = None
        self.set_cookies: list[str] = []
        self.close_code: int | None = None
        self.close_reason = ""
        loop = asyncio.get_running_loop()
        self.accepted: asyncio.Future[None] = loop.create_future()
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.frames: deque[str | bytes | _End] = deque()
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self.denial: tuple[int, list[tuple[bytes, bytes]], list[bytes]] | None = None
        self.task: asyncio.Task[None] | None = None
        self.errors: list[BaseException] | None = None
        self.gone = False  # the client closed
        self.ended = False  # the app closed or returned

    async def open(self) -> None:
        self.to_app.put_nowait({"type": "websocket.connect"})
        task, self.errors = _run_app(self.transport, self.scope, self.to_app.get, self.app_send)
        self.task = task
        task.add_done_callback(self._done)
        wait = self.transport.timeout.connect
        try:
            async with asyncio.timeout(wait):
                await self.accepted
        except TimeoutError:
            await self._stop()
            raise ClientError(
                f"WebSocket {self.url}: no handshake answer within {wait} s"
            ) from None
        except BaseException:
            await self._stop()
            if self.errors:
                raise self.errors[0] from None
            raise

    # ---------------------------------------------------------- the client's side

    async def send(self, frame: str | bytes) -> None:
        if self.close_code is not None:
            raise ClientError(f"the WebSocket {self.url} is closed (code {self.close_code})")
        if isinstance(frame, str):
            self.to_app.put_nowait({"type": "websocket.receive", "text": frame})
        else:
            self.to_app.put_nowait({"type": "websocket.receive", "bytes": frame})

    async def recv(self) -> str | bytes | None:
        frames = self.frames
        while not frames:
            self.reader = asyncio.get_running_loop().create_future()
            try:
                await self.reader
            finally:
                self.reader = None
        item = frames[0]
        if isinstance(item, _End):
            # stays in place: every later recv sees the end too
            if self.close_code is None:
                self.close_code = 1006
            errors = self.errors
            if errors:
                raise errors[0]
            if item.error is not None:
                raise item.error
            return None
        frames.popleft()
        _wake(self.writer)
        return item

    async def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.to_app.put_nowait(
                {"type": "websocket.disconnect", "code": code, "reason": reason}
            )
        self.gone = True
        _wake(self.writer)
        await self._stop()
        if self.errors:
            raise self.errors[0]

    async def _stop(self) -> None:
        self.gone = True
        task = self.task
        if task is not None and not task.done():
            await _finish(task, self.transport.timeout.read or 1.0)

    # ----------------------------------------------------------- the app's side

    async def app_send(self, message: Message) -> None:
        kind = message["type"]
        if not self.accepted.done():
            self._handshake(kind, message)
            return
        if self.gone or self.ended:
            raise Disconnected("the WebSocket is closed")
        if kind == "websocket.send":
            text = message.get("text")
            while len(self.frames) >= QUEUE and not self.gone:
                self.writer = asyncio.get_running_loop().create_future()
                await self.writer
            if self.gone:
                raise Disconnected("the WebSocket is closed")
            self.frames.append(text if text is not None else bytes(message.get("bytes") or b""))
            _wake(self.reader)
        elif kind == "websocket.close":
            self.ended = True
            if self.close_code is None:
                self.close_code = message.get("code", 1000)
                self.close_reason = message.get("reason") or ""
            # the client's half of the close handshake (RFC 6455 §5.5.1)
            self.to_app.put_nowait(
                {"type": "websocket.disconnect", "code": self.close_code,
                 "reason": self.close_reason}
            )
            self.frames.append(_COMPLETE)
            _wake(self.reader)

    def _handshake(self, kind: str, message: Message) -> None:
        if kind == "websocket.accept":
            self.subprotocol = message.get("subprotocol")
            for name, value in message.get("headers") or ():
                if bytes(name).lower() == b"set-cookie":
                    self.set_cookies.append(bytes(value).decode("latin-1"))
            self.accepted.set_result(None)
        elif kind == "websocket.close":
            # a close before accept is a refusal, which servers answer with 403
            self.accepted.set_exception(ClientError(f"WebSocket {self.url} refused: 403", 403))
        elif kind == "websocket.http.response.start":
            self.denial = (int(message["status"]), list(message.get("headers") or ()), [])
        elif kind == "websocket.http.response.body" and self.denial is not None:
            self.denial[2].append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                status, _, pieces = self.denial
                self.accepted.set_exception(ClientError(
                    f"WebSocket {self.url} refused: {status}", status, b"".join(pieces)
                ))
        else:
            raise RuntimeError(f"{kind} before the WebSocket handshake completed")

    def _done(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if isinstance(error, Disconnected):
            error = None
        if not self.accepted.done():
            # an app that returns without accepting refuses the handshake (403)
            self.accepted.set_exception(
                error or ClientError(f"WebSocket {self.url} refused: 403", 403)
            )
            return
        if not self.ended:
            self.ended = True
            self.frames.append(_End(error))
            _wake(self.reader)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
