"""The outgoing response of one HTTP exchange, and its one owner.

``Response`` alone holds and changes what goes back to the client: the status,
the header lines (cookies included), the start hooks features register, the
encoder a hook may set for streamed bodies, and the progress of the exchange.
Every other module changes the response through its methods.

Progress is an explicit state machine, in the manner of h11's connection
states (https://h11.readthedocs.io/en/latest/api.html#the-state-machine)::

    IDLE ──start()──▶ STREAMING ──end()──▶ FINISHED
      │                   │
      └──respond()────────┴──────────────▶ FINISHED
    (any) ──abort()──▶ ABORTED

Headers change only while IDLE; body chunks go out only while STREAMING; an
illegal step raises ``ResponseStateError`` (a ``RuntimeError``) saying what
happened. ``send(message)`` is the raw ASGI side (``connection.response.send``)
and goes through the same machine, so third-party ASGI code called from a
handler and the framework never answer twice.

Start hooks run when the head is about to go out, all or none: if one raises,
the status and headers are put back as they were before the first hook ran,
the failing hook is dropped and the error propagates, so an error answer
starts from the response as the handler left it, with no half-applied feature
(a ``Content-Encoding`` without the encoded body, a cookie for a session that
was not saved).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from .errors import reason_phrase
from .http.headers import with_token
from .timers import IdleDeadline
from .types import Message, Send

IDLE: Final = "idle"
STREAMING: Final = "streaming"
FINISHED: Final = "finished"
ABORTED: Final = "aborted"

TEXT_PLAIN: Final = "text/plain; charset=utf-8"

StartHook = Callable[[bytes | None], Awaitable[bytes | None]]
# encoder(chunk, final) -> bytes to send; final=True flushes and ends the stream
Encoder = Callable[[bytes, bool], bytes]

_BODY: Final = "http.response.body"
_START: Final = "http.response.start"
_PATHSEND: Final = "http.response.pathsend"
# Statuses whose answers have no body (RFC 9110 §6.4.1).
_NO_BODY: Final = frozenset({204, 304})
_NOT_IN_304: Final = ("content-type", "content-encoding", "accept-ranges")


class ResponseStateError(RuntimeError):
    """An illegal step for the response's state: changing it after the head
    went out, sending a body before the head, answering twice."""


class Response:
    """Status, headers, hooks, encoder and progress of one exchange's response."""

    __slots__ = (
        "_encoder",
        "_hooks",
        "_send",
        "_state",
        "deadline",
        "finished",
        "head_only",
        "headers",
        "started",
        "status",
    )

    def __init__(self, send: Send, head_only: bool = False) -> None:
        self._send = send
        self._state = IDLE
        # Mirrors of the state, read on every exchange: plain attributes are the
        # cheapest reads there are. Only this class writes them (_move).
        #: Whether the head has gone out (or the exchange was aborted).
        self.started = False
        #: Whether nothing more will be sent.
        self.finished = False
        self._hooks: list[StartHook] | None = None
        self._encoder: Encoder | None = None
        #: HEAD: the head goes out as for GET, every body byte is dropped.
        self.head_only = head_only
        #: The status to send (read it; change it with ``set_status``).
        self.status = 200
        #: Header lines by lowercase name. Read freely; change through the methods.
        self.headers: dict[str, list[str]] = {}
        #: An idle deadline touched by every message sent (``connection.keep()``).
        self.deadline: IdleDeadline | None = None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self._state}>"

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> str:
        """``"idle"``, ``"streaming"``, ``"finished"`` or ``"aborted"``."""
        return self._state

    @property
    def encoder(self) -> Encoder | None:
        """What a start hook chose to transform streamed chunks with, if anything."""
        return self._encoder

    def abort(self) -> None:
        """The exchange is broken (the client left, an error after the head): nothing
        more is sent."""
        self._move(ABORTED)

    def _move(self, state: str) -> None:
        self._state = state
        self.started = True
        self.finished = state is not STREAMING

    def expect_idle(self) -> None:
        """Raise ``ResponseStateError`` unless the head is still to be sent (callers
        test ``started`` first: the common case costs no call)."""
        if self.started:
            raise ResponseStateError(
                "the response has already started: status, headers and cookies can no "
                "longer change, and send()/error() cannot answer again"
            )

    # ---------------------------------------------------------------- changes

    def set_status(self, code: int) -> None:
        if self.started:
            self.expect_idle()
        self.status = code

    def get(self, name: str) -> str | list[str] | None:
        """One value as a str, several as a list, ``None`` when absent (``name``
        lowercase)."""
        values = self.headers.get(name)
        if not values:
            return None
        return values[0] if len(values) == 1 else list(values)

    def first(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def set(self, name: str, values: list[str]) -> None:
        """Replace the lines of ``name`` (lowercase, values already validated)."""
        if self.started:
            self.expect_idle()
        self.headers[name] = values

    def default(self, name: str, value: str) -> None:
        """Set ``name`` unless the response already has it."""
        if self.started:
            self.expect_idle()
        if name not in self.headers:
            self.headers[name] = [value]

    def fill(self, lines: Iterable[tuple[str, str]]) -> None:
        """Set each ``(name, value)`` line whose name the response lacks (names
        lowercase, values already validated): prepared headers in one call."""
        if self.started:
            self.expect_idle()
        headers = self.headers
        for name, value in lines:
            if name not in headers:
                headers[name] = [value]

    def append(self, name: str, value: str) -> None:
        """Add one more line (``set-cookie``)."""
        if self.started:
            self.expect_idle()
        # A new list, never an edit in place: _run_hooks keeps a shallow copy.
        headers = self.headers
        values = headers.get(name)
        headers[name] = [value] if values is None else [*values, value]

    def remove(self, *names: str) -> None:
        if self.started:
            self.expect_idle()
        for name in names:
            self.headers.pop(name, None)

    def vary(self, *tokens: str) -> None:
        """Add ``tokens`` to Vary unless listed there already (or Vary is ``*``)."""
        if self.started:
            self.expect_idle()
        current = self.headers.get("vary")
        for token in tokens:
            # no Vary yet (the common case): with_token's answer, without the call
            updated = [token] if not current else with_token(current, token)
            if updated is not None:
                current = self.headers["vary"] = updated

    def set_encoder(self, encoder: Encoder) -> None:
        """For start hooks: transform every streamed chunk with ``encoder``."""
        if self.started:
            self.expect_idle()
        self._encoder = encoder

    def reset(self, status: int) -> None:
        """Start over as a plain answer with ``status``: no header lines, no hooks
        (used when even the error route could not answer)."""
        if self.started:
            self.expect_idle()
        self.status = status
        self.headers = {}
        self._hooks = None
        self._encoder = None

    def on_start(self, hook: StartHook) -> None:
        """Run ``await hook(body)`` just before the head goes out (``None`` for a
        stream); it may change status and headers through this object and
        returns the body to send. Hooks run in registration order, all or none."""
        if self.started:
            self.expect_idle()
        hooks = self._hooks
        if hooks is None:
            self._hooks = [hook]
        else:
            hooks.append(hook)

    # ---------------------------------------------------------------- sending

    async def start(self, body: bytes | None) -> bytes | None:
        """Run the start hooks and send the head. ``body`` is the whole body, or
        ``None`` when a stream follows; the body to send is returned."""
        if self.started:
            self.expect_idle()
        hooks = self._hooks
        if hooks is not None:
            body = await self._run_hooks(hooks, body)
        head, body = self._head(body)
        await self._transmit(head)
        return body

    def _head(self, body: bytes | None) -> tuple[Message, bytes | None]:
        """The start message for the status and headers as the hooks left them,
        and the body that may follow it; the response is streaming from here."""
        status = self.status
        headers = self.headers
        if status in _NO_BODY or status < 200:
            headers.pop("content-length", None)
            if status == 304:
                # RFC 9110 §15.4.5: a 304 carries the validators and Vary, not
                # the metadata of a body it does not have.
                for name in _NOT_IN_304:
                    headers.pop(name, None)
            if body is not None:
                body = b""
        elif body is not None:
            # kept in the headers (not added on the side) so logs can read it
            headers["content-length"] = [str(len(body))]
        # A plain loop (a comprehension is one more call per response on 3.11)
        # and the names' bytes looked up: one encode per line instead of two.
        raw: list[tuple[bytes, bytes]] = []
        names = _NAME_BYTES
        for name, values in headers.items():
            key = names[name]
            for value in values:
                raw.append((key, value.encode("latin-1")))
        self._state = STREAMING  # _move, inlined on the hot path
        self.started = True
        return {"type": _START, "status": status, "headers": raw}, body

    async def _run_hooks(self, hooks: list[StartHook], body: bytes | None) -> bytes | None:
        saved_status = self.status
        # Shallow: this class replaces a name's list of lines, never edits one.
        saved = self.headers.copy()
        index = 0
        try:
            for index, hook in enumerate(hooks):  # noqa: B007 - index read on failure
                body = await hook(body)
        except BaseException:
            self.status = saved_status
            self.headers = saved
            self._encoder = None
            del hooks[index]
            raise
        return body

    async def respond(self, body: bytes, content_type: str | None = None) -> None:
        """Send a whole response: the head, then ``body`` in one message;
        ``content_type`` unless the response has one."""
        # start() and _transmit(), inlined: a whole response is the commonest
        if self.started:
            self.expect_idle()
        if content_type is not None and "content-type" not in self.headers:
            self.headers["content-type"] = [content_type]
        hooks = self._hooks
        whole: bytes | None = body
        if hooks is not None:
            whole = await self._run_hooks(hooks, whole)
        head, sent = self._head(whole)
        deadline = self.deadline
        if deadline is not None:
            deadline.touch()
        send = self._send
        await send(head)
        self._state = FINISHED  # _move, inlined on the hot path
        self.finished = True
        await send({"type": _BODY, "body": b"" if self.head_only else sent})

    async def respond_prepared(self, answer: PreparedAnswer) -> None:
        """Send ``answer``, a whole 200 made once for many exchanges. When nothing
        else shapes this response (no header set, no start hook, status 200) its
        lines go out as encoded when it was made; otherwise they fill in what
        the response lacks and :meth:`respond` sends it as any other."""
        headers = self.headers
        if headers or self._hooks is not None or self.status != 200 or self.started:
            self.fill(answer.lines)
            await self.respond(answer.body)
            return
        # What _head would leave: the lines by name, Content-Length last.
        for name, value in answer.lines:
            headers[name] = [value]
        headers["content-length"] = [answer.length]
        self._state = STREAMING  # _move, inlined as in respond()
        self.started = True
        deadline = self.deadline
        if deadline is not None:
            deadline.touch()
        send = self._send
        # A copy: a wrapping middleware may edit the list it is given in place
        # (Starlette's MutableHeaders does), and the prepared one is shared.
        await send({"type": _START, "status": 200, "headers": list(answer.raw)})
        self._state = FINISHED
        self.finished = True
        await send({"type": _BODY, "body": b"" if self.head_only else answer.body})

    async def respond_plain(self, status: int) -> None:
        """The default answer for an error status: its reason phrase as text."""
        self.set_status(status)
        self.headers["content-type"] = [TEXT_PLAIN]
        await self.respond(reason_phrase(status).encode())

    async def write(self, chunk: bytes) -> None:
        """Send one chunk of a streamed body (encoded when a hook set an encoder)."""
        if self._state is not STREAMING:
            raise ResponseStateError(self._why_not("write a body chunk"))
        encoder = self._encoder
        if encoder is not None:
            chunk = encoder(chunk, False)
        if chunk and not self.head_only:
            await self._transmit({"type": _BODY, "body": chunk, "more_body": True})

    async def write_raw(self, chunk: bytes, more: bool = True) -> None:
        """Send bytes already encoded (the file pipeline encodes in its reader
        thread); ``more=False`` ends the body."""
        if self._state is not STREAMING:
            raise ResponseStateError(self._why_not("write a body chunk"))
        if not more:
            self._move(FINISHED)
        await self._transmit({"type": _BODY, "body": chunk, "more_body": more})

    async def end(self) -> None:
        """Finish a streamed body (flushing the encoder)."""
        if self._state is not STREAMING:
            raise ResponseStateError(self._why_not("end the body"))
        self._move(FINISHED)
        encoder = self._encoder
        tail = encoder(b"", True) if encoder is not None else b""
        await self._transmit(
            {"type": _BODY, "body": b"" if self.head_only else tail, "more_body": False}
        )

    async def send_path(self, path: str) -> None:
        """Let the server send the file at ``path`` as the whole body (the ASGI
        ``http.response.pathsend`` extension)."""
        if self._state is not STREAMING:
            raise ResponseStateError(self._why_not("send a file"))
        self._move(FINISHED)
        await self._transmit({"type": _PATHSEND, "path": path})

    async def send(self, message: Message) -> None:
        """The raw ASGI ``send``, for third-party code: the same state machine
        applies, so the framework knows when the response started and ended."""
        kind = message.get("type")
        state = self._state
        if kind == _START:
            if state is not IDLE:
                raise ResponseStateError(self._why_not("send http.response.start"))
            self.status = int(message.get("status", 200))
            self._move(STREAMING)
        elif kind in (_BODY, _PATHSEND):
            if state is not STREAMING:
                raise ResponseStateError(self._why_not(f"send {kind}"))
            if kind == _PATHSEND or not message.get("more_body", False):
                self._move(FINISHED)
        await self._transmit(message)

    def _why_not(self, action: str) -> str:
        state = self._state
        if state is IDLE:
            return f"cannot {action}: the response has not started"
        if state is STREAMING:
            return f"cannot {action}: the head was already sent"
        return f"cannot {action}: the response is already complete"

    async def _transmit(self, message: Message) -> None:
        if self.deadline is not None:
            self.deadline.touch()
        await self._send(message)


class _NameBytes(dict[str, bytes]):
    """Header names (lowercase str, already validated) to their bytes, made once:
    applications use a few names, so the table is bounded rather than evicted."""

    def __missing__(self, name: str) -> bytes:
        key = name.encode("latin-1")
        if len(self) < 1024:
            self[name] = key
        return key


_NAME_BYTES: Final = _NameBytes()


class PreparedAnswer:
    """A whole 200 answer sent many times (a static file kept in memory): its
    body and header lines, checked and encoded once, for
    :meth:`Response.respond_prepared`. The lines are lowercase names with
    validated values, without Content-Length (the body's length is added)."""

    __slots__ = ("body", "length", "lines", "raw")

    def __init__(self, lines: Iterable[tuple[str, str]], body: bytes) -> None:
        self.lines = tuple(lines)
        self.body = body
        self.length = str(len(body))
        # the start message's lines, byte for byte as _head would encode them
        self.raw = (
            *((_NAME_BYTES[name], value.encode("latin-1")) for name, value in self.lines),
            (b"content-length", self.length.encode()),
        )


__all__ = [
    "ABORTED",
    "FINISHED",
    "IDLE",
    "STREAMING",
    "Encoder",
    "PreparedAnswer",
    "Response",
    "ResponseStateError",
    "StartHook",
]
