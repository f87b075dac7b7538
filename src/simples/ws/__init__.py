"""WebSocket routes, connections, channels and brokers.

The package, one way from the bottom up (a module imports only those above it
at run time):

- ``frames``: received ``Message``, ``WebSocketClosed``, close codes
  (RFC 6455 §7.4), outgoing frame encoding;
- ``brokers``: the ``Broker`` protocol, ``LocalBroker``, ``RedisBroker``;
- ``outbox``: a socket's bounded send queue, its writer, congestion;
- ``refusal``: answering a handshake with an HTTP status;
- ``connection``: ``WebSocketConnection``;
- ``channels``: ``Channel``, the per-server hub, broadcasts and back-pressure;
- ``handshake``: the ASGI ``websocket`` scope (``handle_websocket``).

See docs/websocket.md for the user's guide.
"""

from __future__ import annotations

from .brokers import Broker, Deliver, LocalBroker, RedisBroker, redis_errors
from .channels import Channel, Hub, broadcast_all, channel_of, close_all, hub_of
from .connection import CLOSE_TIMEOUT, Listener, WebSocketConnection
from .frames import RESERVED_EVENTS, Message, WebSocketClosed, check_close, encode_frame
from .handshake import handle_websocket
from .outbox import SEND_QUEUE_LIMIT, SEND_TIMEOUT, Outbox
from .refusal import refuse

__all__ = [
    "CLOSE_TIMEOUT",
    "RESERVED_EVENTS",
    "SEND_QUEUE_LIMIT",
    "SEND_TIMEOUT",
    "Broker",
    "Channel",
    "Deliver",
    "Hub",
    "Listener",
    "LocalBroker",
    "Message",
    "Outbox",
    "RedisBroker",
    "WebSocketClosed",
    "WebSocketConnection",
    "broadcast_all",
    "channel_of",
    "check_close",
    "close_all",
    "encode_frame",
    "handle_websocket",
    "hub_of",
    "redis_errors",
    "refuse",
]
