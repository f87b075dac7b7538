"""The ASGI ``websocket`` scope: the handshake, the handler, the end.

The handshake runs like an HTTP exchange: routing, origin and subprotocol
checks (RFC 6455 §4.2.1, §10.2), the session, then the middlewares with the
handler at the end of the chain. Returning from the handler closes the socket
with 1000.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..chain import run_chain
from ..errors import HTTPError
from ..feature import switched_on
from ..mount import child_scope, replay
from ..observe import routed
from ..types import Message, Receive, Scope, Send
from .channels import Hub, hub_of
from .connection import WebSocketConnection
from .frames import WebSocketClosed
from .refusal import refuse

if TYPE_CHECKING:
    from ..router import Route
    from ..server import Server

__all__ = ["handle_websocket", "refuse"]

logger = logging.getLogger("simples")

Endpoint = Callable[[WebSocketConnection], Awaitable[None]]


async def handle_websocket(server: Server, scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI ``websocket`` scope: route, check, run the chain and the handler."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return  # the client left before the handshake
    located = server.locate(scope)
    if isinstance(located, int):
        await refuse(scope, send, located)
        return
    router, host, forwarded = located
    hub = hub_of(server)
    ws = WebSocketConnection(scope, receive, send, router, host, hub)
    if forwarded is not None:
        ip, proto, fhost = forwarded
        if proto is not None:
            proto = "wss" if proto in ("https", "wss") else "ws"
        ws.forwarded(ip, proto, fhost)
    try:
        await _run(hub, ws, first)
    finally:
        await ws.finish()


async def _run(hub: Hub, ws: WebSocketConnection, first: Message) -> None:
    try:
        if hub.closing:
            await ws.refuse(503)
            return
        endpoint = _prepare(ws, first)
        if isinstance(endpoint, int):
            await ws.refuse(endpoint)
            return
        settings = ws.router.settings
        if settings.ws_attaching:
            for feature, enabled, state in settings.ws_attach_plan or settings.plan("attach_ws"):
                if (enabled is True or switched_on(enabled, ws)) and not await feature.attach_ws(
                    ws, state
                ):
                    return
        await hub.activate()
        chain: tuple[Callable[[Any, Any], Awaitable[Any]], ...] = ws.router.chain
        if chain:
            await run_chain(ws, chain, endpoint)
        else:
            await endpoint(ws)
        # Still connecting: a middleware ended the chain without answering, and
        # nothing agreed to the socket; close() refuses it with 403 then.
        await ws.close(1000)
    except WebSocketClosed:
        pass  # the client left
    except HTTPError as error:
        await ws.fail(error.code)
    except asyncio.CancelledError:
        ws.close_now(1001, "server shutting down")
        raise
    except Exception as exc:
        logger.error("unhandled error in WebSocket %s", ws.path, exc_info=exc)
        ws.data["error"] = exc
        await ws.fail(500)


def _prepare(ws: WebSocketConnection, first: Message) -> Endpoint | int:
    """Match the route and check origin and subprotocol, before any user code
    runs: the endpoint to call, or the status to refuse with."""
    match = ws.router.match_ws(ws.path)
    if match is None:
        if ws.router.mounted is not None:
            return _mounted(first)
        return _not_found
    route, params = match
    ws.apply_route(route, params)
    routed(ws.scope, route, "")
    options = route.options
    origins = options.get("origins")
    if origins is not None:
        origin = ws.headers.get("origin")
        # Browsers always send Origin; clients without it are not browsers, and
        # cross-site WebSocket hijacking needs a browser (RFC 6455 §10.2).
        if origin is not None:
            from ..cors import origin_allowed

            if not origin_allowed(origin, origins):
                logger.info("WebSocket %s refused: origin %r not allowed", ws.path, origin)
                return 403
    protocols = options.get("protocols")
    if protocols:
        offered = ws.scope.get("subprotocols") or ()
        chosen = next((name for name in protocols if name in offered), None)
        if chosen is None:
            logger.info("WebSocket %s refused: no supported subprotocol in %r", ws.path, offered)
            return 403
        ws.subprotocol = chosen
    return _endpoint_of(route)


def _mounted(first: Message) -> Endpoint:
    """The endpoint of a router with an app mounted: the app gets the socket,
    the ``websocket.connect`` message included (docs/ecosystem.md)."""

    async def endpoint(ws: WebSocketConnection) -> None:
        router = ws.router
        app = router.mounted
        assert app is not None
        ws.hand_off()
        scope = child_scope(ws.scope, router.prefix, app, router.mounted_state)
        await app(scope, replay(first, ws.request.receive), ws.response.send)

    return endpoint


async def _not_found(ws: WebSocketConnection) -> None:
    await ws.refuse(404)


def _endpoint_of(route: Route) -> Endpoint:
    handler = route.handler

    async def endpoint(ws: WebSocketConnection) -> None:
        await handler(ws)  # type: ignore[arg-type]
        # Returning from the handler closes with 1000 (advanced routes included:
        # iterating the socket is what hands events to listeners). Closed here,
        # inside the chain, so that a middleware's code after next() sees the
        # socket over.
        if not ws.closed:
            await ws.accept()
        await ws.close(1000)

    return endpoint
