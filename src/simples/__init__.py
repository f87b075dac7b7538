"""simples: one object, the connection, is both the request and the response."""

from typing import TYPE_CHECKING, Any

from .connection import HTTPConnection
from .errors import HTTPError
from .http.multidict import MultiDict
from .request import IP
from .router import Router
from .server import Server, server

if TYPE_CHECKING:
    from .body import Body, Form, UploadedFile
    from .clients import ClientError, client
    from .sessions import MemoryStore, RedisStore, Session
    from .templates import Jinja
    from .ws import Channel, LocalBroker, RedisBroker, WebSocketClosed, WebSocketConnection

__version__ = "0.1.0"

# Optional parts load on first use, so `import simples` stays light and does not
# need jinja2 or redis unless they are used.
_LAZY = {
    "Body": "body",
    "ClientError": "clients",
    "client": "clients",
    "Form": "body",
    "UploadedFile": "body",
    "MemoryStore": "sessions",
    "RedisStore": "sessions",
    "Session": "sessions",
    "Jinja": "templates",
    "Channel": "ws",
    "RedisBroker": "ws",
    "LocalBroker": "ws",
    "WebSocketClosed": "ws",
    "WebSocketConnection": "ws",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'simples' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"simples.{module}"), name)


__all__ = [
    "IP",
    "Body",
    "Channel",
    "ClientError",
    "Form",
    "HTTPConnection",
    "HTTPError",
    "Jinja",
    "LocalBroker",
    "MemoryStore",
    "MultiDict",
    "RedisBroker",
    "RedisStore",
    "Router",
    "Server",
    "Session",
    "UploadedFile",
    "WebSocketClosed",
    "WebSocketConnection",
    "client",
    "server",
]
