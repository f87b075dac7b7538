"""One HTTP exchange from routed connection to finished response.

Order (SPEC §2, §4): timeout armed, session loaded, middlewares from the outer
router inwards, then the route's handler (or the router's own answer: static
file, OPTIONS, 405, 404). Errors go to the nearest error route; an exception
after the response started aborts the connection; one access-log line closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .config import is_on
from .connection import HTTPConnection
from .errors import HTTPError
from .router import Route, Router, run_chain

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
        if not connection._started:
            if result is not None:
                await connection.send(result)
            elif connection._status not in (204, 304) and not route.warned:
                route.warned = True
                logger.warning(
                    "%s %s returned without responding; sent status %d with an empty "
                    "body (a missing 'await' before send/render/drain?)",
                    route.method,
                    route.path,
                    connection._status,
                )

    return endpoint


def endpoint_of(route: Route) -> Endpoint:
    endpoint: Endpoint | None = route.endpoint
    if endpoint is None:
        endpoint = route.endpoint = _endpoint_for(route)
    return endpoint


async def router_answer(connection: HTTPConnection) -> None:
    """What a router says when no route took the request."""
    router = connection.router
    method = connection.method
    settings = router.settings
    if (
        method in ("GET", "HEAD")
        and settings.static is not None
        and is_on(settings.static, connection)
    ):
        from .files import serve_static

        if await serve_static(connection):
            return
    allowed = router.allowed(connection.path)
    if allowed:
        connection.header("allow", ", ".join(allowed))
        if method == "OPTIONS":
            if settings.cors is not None and is_on(settings.cors, connection):
                from .cors import answer_preflight

                if await answer_preflight(connection, settings.cors, allowed):
                    return
            await connection.status(204).send(None)
            return
        await connection.error(405)
        return
    await connection.error(404)


async def _reply(connection: HTTPConnection, result: Any) -> None:
    """A middleware that returns a value without responding has it sent."""
    if not connection._started:
        await connection.send(result)


async def run_exchange(connection: HTTPConnection, router: Router) -> None:
    settings = router.settings
    match = router.match(connection.method, connection.path)
    if match is not None:
        route, connection.params = match
        connection.route = route
        endpoint = endpoint_of(route)
    else:
        endpoint = router_answer
    try:
        try:
            if settings.timeout is not None and is_on(settings.timeout, connection):
                connection.keep(settings.timeout["value"])
            if settings.cors is not None and is_on(settings.cors, connection):
                from .cors import attach_cors

                attach_cors(connection, settings.cors)
            if settings.compression is not None and is_on(settings.compression, connection):
                from .compression import attach_compression

                attach_compression(connection, settings.compression)
            if settings.session is not None and is_on(settings.session, connection):
                from .sessions import attach_session

                await attach_session(connection, settings)
            chain = router.chain()
            if chain:
                await run_chain(connection, chain, endpoint, _reply)
            else:
                await endpoint(connection)
            if not connection._started:
                await connection.send(None)
            elif not connection._finished:
                await connection.end()
        except HTTPError as error:
            if connection._started:
                raise
            await connection.error(error.code)
    except asyncio.CancelledError:
        keeper = connection._keeper
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
        if connection._keeper is not None or connection._body is not None or settings.logger:
            await _finish(connection, settings)


def _is_disconnect(exc: BaseException) -> bool:
    from .body import ClientDisconnect

    return isinstance(exc, ClientDisconnect)


async def _gone(connection: HTTPConnection) -> None:
    """The client stopped sending mid-body. Some servers (granian) turn an exchange
    that returns unanswered into a 500 of their own: answer a quiet 400 instead.
    Where the client is really gone, the server drops it unseen."""
    if connection._started:
        return
    connection._out = {"connection": ["close"]}
    connection._start_hooks = None
    connection._status = 400
    with contextlib.suppress(Exception):
        await connection._respond(b"")


async def _idle_timeout(connection: HTTPConnection) -> None:
    if connection._started:
        raise ExchangeAborted("inactivity timeout after the response started")
    connection.header("connection", "close")
    await connection.error(408)


async def _failed(connection: HTTPConnection, exc: Exception) -> None:
    where = f"{connection.method} {connection.path}"
    if connection._started:
        logger.error(
            "error after the response started, connection aborted: %s", where, exc_info=exc
        )
        raise ExchangeAborted(where) from exc
    logger.error("unhandled error in %s", where, exc_info=exc)
    connection.data["error"] = exc
    try:
        await connection.error(500)
    except Exception as again:
        logger.error("the 500 error route failed too: %s", where, exc_info=again)
        if connection._started:
            raise ExchangeAborted(where) from again
        connection._out.clear()
        connection._start_hooks = None
        connection._error_depth = 1  # skip the broken error route: plain body
        await connection.error(500)


async def _finish(connection: HTTPConnection, settings: Any) -> None:
    keeper = connection._keeper
    if keeper is not None:
        keeper.stop()
    body = connection._body
    if body is not None:
        await body.aclose()
    log = settings.logger
    if log is not None and is_on(log, connection):
        try:
            connection.log(log["format"], log["tokens"], log["log"])
        except Exception:
            logger.exception("the access logger failed")
