"""The ASGI servers underneath: uvicorn (embedded default) and granian.

Uvicorn is configured by us, safely: no proxy-header rewriting (the ``proxy``
section decides whom to trust), no Server header, bounded keep-alive and
graceful shutdown, WebSocket pings so dead peers are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Listener, Server

GRACEFUL_TIMEOUT = 10
KEEP_ALIVE_TIMEOUT = 5
WS_PING_INTERVAL = 20.0
WS_PING_TIMEOUT = 20.0


def uvicorn_options(listener: Listener | None = None, http: str = "auto") -> dict[str, Any]:
    """The settings every uvicorn we start gets (``listen``, ``start``, the CLI).

    ``http`` picks the parser: ``"auto"`` (httptools when installed, else h11),
    ``"httptools"`` or ``"h11"``; either comes with the head deadline of
    ``simples.wire``."""
    from .wire import protocol

    options: dict[str, Any] = {
        "http": protocol(http),
        "proxy_headers": False,
        "server_header": False,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
        "timeout_graceful_shutdown": GRACEFUL_TIMEOUT,
        # issue #18: uvicorn's wsproto, frames handled in bounded turns (docs/websocket.md)
        "ws": "simples.wire:WSProto",
        "ws_ping_interval": WS_PING_INTERVAL,
        "ws_ping_timeout": WS_PING_TIMEOUT,
        # h11 (used when httptools is absent) buffers at most this much of a head
        "h11_max_incomplete_event_size": 64 * 1024,
        "access_log": False,
    }
    if listener is not None:
        options["host"] = listener.hostname
        options["port"] = listener.port
        if listener.https:
            options["ssl_certfile"] = listener.https["cert"]
            options["ssl_keyfile"] = listener.https["key"]
    return options


def uvicorn_server(app: Server, listener: Listener, *, lifespan: bool, http: str = "auto") -> Any:
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        # Signals belong to whoever embeds us (listen() handles them for all listeners).
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    options = uvicorn_options(listener, http)
    config = uvicorn.Config(app, lifespan="on" if lifespan else "off", **options)
    return EmbeddedServer(config)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed, else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def granian_options(app: Any) -> dict[str, Any]:
    """What every granian we start gets: the head deadline of ``app``'s limits
    (granian's ``header_read_timeout``, 30 s by default there; 0 turns ours off
    and leaves granian's)."""
    from .limits import LIMITS

    limits = getattr(getattr(app, "settings", None), "limits", None) or LIMITS
    seconds = limits["header_timeout"]
    if not seconds:
        return {}
    from granian.http import HTTP1Settings

    return {"http1_settings": HTTP1Settings(header_read_timeout=int(seconds * 1000))}


def serve_granian(app: Server, listener: Listener) -> None:
    """Serve ``app`` on granian in this process until Ctrl-C / SIGTERM."""
    from granian.constants import Interfaces, Loops
    from granian.server import Server as Granian

    options: dict[str, Any] = {
        "address": listener.hostname,
        "port": listener.port,
        "interface": Interfaces.ASGI,
        "loop": Loops.auto,
        "workers": 1,
        **granian_options(app),
    }
    if listener.https:
        from pathlib import Path

        options["ssl_cert"] = Path(listener.https["cert"])
        options["ssl_key"] = Path(listener.https["key"])
    logging.getLogger("simples").info(
        "simples serving on granian at %s:%d", listener.hostname, listener.port
    )
    # The target string is only a label: the loader hands granian our app object.
    server = Granian("simples:app", **options)
    server.serve(target_loader=lambda *args, **kwargs: app, wrap_loader=False)
