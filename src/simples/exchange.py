"""One HTTP exchange from routed connection to finished response.

Order: the router's features attach in registry order (timeout armed, CORS and
compression hooks registered, session loaded), then the middlewares from the
outer router inwards, then the route's handler (or the router's own answer:
a feature's answer such as a static file or a CORS preflight, then OPTIONS,
405, 404). Errors go to the nearest error route; an exception after the
response started aborts the connection; the features' finish phase (the
access log) closes it. ``docs/architecture.md`` draws the whole path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import observe
from .chain import run_chain
from .connection import HTTPConnection
from .errors import HTTPError
from .feature import switched_on
from .mount import child_scope
from .types import Message

if TYPE_CHECKING:
    from .config import Settings
    from .response import Response
    from .router import Route, Router

logger = logging.getLogger("simples")

Endpoint = Callable[[HTTPConnection], Awaitable[None]]


class ExchangeAborted(Exception):
    """Raised to the ASGI server so it drops a connection whose response broke
    midway; the cause was logged already, so the server's own log of it is muted."""


class _MutedAbort(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        return not (info and isinstance(info[1], ExchangeAborted))


MUTE_ABORTS = _MutedAbort()


def _endpoint_for(route: Route) -> Endpoint:
    handler = route.handler

    async def endpoint(connection: HTTPConnection) -> None:
        result = await handler(connection)
        if not connection.response.started:
            if result is not None:
                await connection.send(result)
            else:
                _unanswered(route, connection.response)

    return endpoint


def _unanswered(route: Route, response: Response) -> None:
    """A handler returned None without responding: an empty answer goes out,
    which is worth a warning (once per route) unless the status says so."""
    if response.status not in (204, 304) and not route.warned:
        route.warned = True
        logger.warning(
            "%s %s returned without responding; sent status %d with an empty "
            "body (a missing 'await' before send/render/drain?)",
            route.method,
            route.path,
            response.status,
        )


def endpoint_of(route: Route) -> Endpoint:
    endpoint: Endpoint | None = route.endpoint
    if endpoint is None:
        endpoint = route.endpoint = _endpoint_for(route)
    return endpoint


async def router_answer(connection: HTTPConnection) -> None:
    """What a router says when no route took the request."""
    router = connection.router
    settings = router.settings
    if settings.answering:
        for feature, enabled, state in settings.answer_plan or settings.plan("answer"):
            if (enabled is True or switched_on(enabled, connection)) and await feature.answer(
                connection, state
            ):
                return
    allowed = router.allowed(connection.path)
    if allowed:
        connection.header("allow", ", ".join(allowed))
        if connection.method == "OPTIONS":
            await connection.status(204).send(None)
            return
        await connection.error(405)
        return
    await connection.error(404)


async def mounted_app(connection: HTTPConnection) -> None:
    """The endpoint of a router with an app mounted (``router.mount``): the app
    answers through the state-tracked ``response.send``, so start hooks (CORS,
    compression, the session cookie) do not touch its response."""
    router = connection.router
    app = router.mounted
    assert app is not None
    scope = child_scope(connection.scope, router.prefix, app, router.mounted_state)
    receive = connection.request.receive
    keeper = connection.deadline
    if keeper is not None:  # the timeout section: what the app reads is activity too
        raw = receive

        async def receive() -> Message:
            message = await raw()
            keeper.touch()
            return message

    await app(scope, receive, connection.response.send)


async def _reply(connection: HTTPConnection, result: Any) -> None:
    """A middleware that returns a value without responding has it sent."""
    if not connection.response.started:
        await connection.send(result)


async def run_exchange(connection: HTTPConnection, router: Router) -> None:
    settings = router.settings
    match = router.match(connection.method, connection.path)
    if match is not None:
        route, connection.params = match
        connection.route = route
        # scope["route"]/["endpoint"] for observability tools (observe.py), inline:
        # every exchange pays this, the span naming only with OpenTelemetry
        scope = connection.scope
        scope["route"] = route
        scope["endpoint"] = route.handler
        if observe.TRACE is not False:
            observe.name_span(scope, route, connection.method)
    else:
        route = None
    response = connection.response
    try:
        try:
            if settings.attaching:
                for feature, enabled, state in settings.attach_plan or settings.plan("attach"):
                    if enabled is True or switched_on(enabled, connection):
                        await feature.attach(connection, state)
            chain = router.chain
            if route is not None and not chain:
                # the common case, without the endpoint's coroutine in between
                result = await route.handler(connection)
                if not response.started:
                    if result is not None:
                        await connection.send(result)
                    else:
                        _unanswered(route, response)
            else:
                if route is not None:
                    endpoint = endpoint_of(route)
                elif router.mounted is not None:
                    endpoint = mounted_app
                else:
                    endpoint = router_answer
                if chain:
                    await run_chain(connection, chain, endpoint, _reply)
                else:
                    await endpoint(connection)
            if not response.started:
                await connection.send(None)
            elif not response.finished:
                await response.end()
        except HTTPError as error:
            if response.started:
                raise
            connection.data["error"] = error
            try:
                await connection.error(error.code)
            finally:
                _forget_frames(error)
    except asyncio.CancelledError:
        keeper = connection.deadline
        if keeper is None or not keeper.withdraw():
            raise
        await _idle_timeout(connection)
    except Exception as exc:
        if _is_disconnect(exc):
            await _gone(connection)
            return
        await _failed(connection, exc)
    finally:
        # most exchanges have nothing to clean up: skip the extra coroutine then
        if connection.deadline is not None or connection.body_reader is not None or (
            settings.finishing
        ):
            await _finish(connection, settings)


def _is_disconnect(exc: BaseException) -> bool:
    from .body import ClientDisconnect

    return isinstance(exc, ClientDisconnect)


async def _gone(connection: HTTPConnection) -> None:
    """The client stopped sending mid-body. Some servers (granian) turn an exchange
    that returns unanswered into a 500 of their own: answer a quiet 400 instead.
    Where the client is really gone, the server drops it unseen."""
    response = connection.response
    if response.started:
        return
    response.reset(400)
    response.set("connection", ["close"])
    try:
        await response.respond(b"")
    except Exception as exc:  # the client is gone: there is no one to tell
        logger.debug("no answer to a client that left: %r", exc)


async def _idle_timeout(connection: HTTPConnection) -> None:
    if connection.response.started:
        connection.response.abort()
        raise ExchangeAborted("inactivity timeout after the response started")
    connection.header("connection", "close")
    await connection.error(408)


async def _failed(connection: HTTPConnection, exc: Exception) -> None:
    where = f"{connection.method} {connection.path}"
    response = connection.response
    if response.started:
        logger.error(
            "error after the response started, connection aborted: %s", where, exc_info=exc
        )
        response.abort()
        raise ExchangeAborted(where) from exc
    logger.error("unhandled error in %s", where, exc_info=exc)
    connection.data["error"] = exc
    try:
        await connection.error(500)
        _forget_frames(exc)
    except Exception as again:
        logger.error("the 500 error route failed too: %s", where, exc_info=again)
        if response.started:
            response.abort()
            raise ExchangeAborted(where) from again
        # skip the broken error route: a plain body from a clean response
        response.reset(500)
        await response.respond_plain(500)


def _forget_frames(error: BaseException) -> None:
    """Once the error route has run: ``connection.data["error"]`` holds the
    exception, whose traceback holds this exchange's frames, which hold the
    connection: a reference cycle that keeps the connection, and the server's
    ``receive`` with it, alive until the garbage collector runs. granian goes on
    reading an unread body for as long as that ``receive`` lives, whatever the
    ``Connection: close`` said. The traceback was logged already."""
    seen: BaseException | None = error
    for _ in range(16):  # the chain of causes is short; never loop on a cycle
        if seen is None:
            break
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__


async def _finish(connection: HTTPConnection, settings: Settings) -> None:
    keeper = connection.deadline
    if keeper is not None:
        keeper.stop()
    body = connection.body_reader
    if body is not None:
        await body.aclose()
    if settings.finishing:
        for feature, enabled, state in settings.finish_plan or settings.plan("finish"):
            if enabled is True or switched_on(enabled, connection):
                feature.finish(connection, state)


__all__ = ["MUTE_ABORTS", "ExchangeAborted", "endpoint_of", "router_answer", "run_exchange"]
