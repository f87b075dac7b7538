"""Other ASGI applications mounted under a prefix (``router.mount``).

A mounted app sees the scope as the ASGI specification says
(https://asgi.readthedocs.io/en/latest/specs/www.html#http-connection-scope):
``path`` is kept whole and ``root_path`` grows by the mount's prefix, as
Starlette's ``Mount`` does, so the app routes on the path below its
``root_path``. The lifespan events reach it too: ``MountedLifespan`` runs its
``lifespan`` scope beside the server's own (https://asgi.readthedocs.io/en/
latest/specs/lifespan.html). See docs/ecosystem.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .types import ASGIApp, Message, Receive, Scope

logger = logging.getLogger("simples")

# How long a mounted app may take to answer a lifespan event.
LIFESPAN_TIMEOUT = 30.0


def child_scope(
    scope: Scope, prefix: str, app: ASGIApp, state: dict[str, Any] | None = None
) -> Scope:
    """The scope a mounted app sees: the same ``path``, ``root_path`` extended by
    ``prefix`` (the mount's prefix below the server's own root). ``state``: what
    the app's own lifespan startup stored, copied into the request's ``state``
    over the server's, as a server does for its app (https://asgi.readthedocs.io/
    en/latest/specs/lifespan.html#lifespan-state)."""
    child = dict(scope)
    child["root_path"] = scope.get("root_path", "") + prefix
    child["endpoint"] = app
    if state:
        child["state"] = {**scope.get("state", {}), **state}
    # a route matched above the mount is no route of the mounted app
    child.pop("route", None)
    return child


def replay(first: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``first`` again before the rest (the WebSocket
    ``websocket.connect`` message the handshake already read)."""
    pending: list[Message] = [first]

    async def receive_again() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return receive_again


class MountedLifespan:
    """One mounted app's ``lifespan`` scope, run as a task beside the server's."""

    def __init__(self, app: ASGIApp, label: str) -> None:
        self.app = app
        self.label = label
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._supported = True
        #: The lifespan state: what the app stored at startup, for its requests.
        self.state: dict[str, Any] = {}

    async def _run(self, state: dict[str, Any]) -> None:
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": state,
        }
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        except Exception as exc:
            # An app without lifespan support raises on the scope type (the
            # specification says so): it simply takes no part, as with
            # uvicorn's lifespan="auto". After a successful startup, an error
            # is a failure to report.
            await self._outbox.put({"type": "simples.lifespan.error", "error": exc})
        else:
            # returned: before answering startup, an app that ignores the
            # lifespan scope; after, one that has nothing more to say
            await self._outbox.put({"type": "simples.lifespan.ended"})

    async def _exchange(self, event: str) -> Message:
        self._inbox.put_nowait({"type": f"lifespan.{event}"})
        return await asyncio.wait_for(self._outbox.get(), LIFESPAN_TIMEOUT)

    async def startup(self) -> None:
        """Send ``lifespan.startup``; raise ``RuntimeError`` when the app says it failed."""
        self.state = {}
        self._task = asyncio.create_task(self._run(self.state))
        message = await self._exchange("startup")
        kind = message["type"]
        if kind in ("simples.lifespan.error", "simples.lifespan.ended"):
            self._supported = False
            logger.debug("mounted app %s: no lifespan support (%r)", self.label, message)
            return
        if kind == "lifespan.startup.failed":
            raise RuntimeError(
                f"mounted app {self.label} failed to start: {message.get('message', '')}"
            )

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown``; raise ``RuntimeError`` when the app says it failed."""
        task = self._task
        if task is None or not self._supported:
            return
        try:
            if task.done():
                # it ended after startup: nothing to shut down
                return
            message = await self._exchange("shutdown")
            kind = message["type"]
            if kind == "lifespan.shutdown.failed":
                raise RuntimeError(
                    f"mounted app {self.label} failed to stop: {message.get('message', '')}"
                )
            if kind == "simples.lifespan.error":
                raise RuntimeError(
                    f"mounted app {self.label} failed to stop: {message['error']!r}"
                )
        finally:
            self._task = None
            if not task.done():
                task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task


__all__ = ["LIFESPAN_TIMEOUT", "MountedLifespan", "child_scope", "replay"]
