"""The middleware chain: an onion of ``async def mw(connection, next)`` around an
endpoint, shared by HTTP exchanges and WebSocket handshakes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

Next = Callable[[], Awaitable[None]]
C = TypeVar("C")


async def run_chain(
    connection: C,
    chain: tuple[Callable[[C, Next], Awaitable[Any]], ...],
    endpoint: Callable[[C], Awaitable[None]],
    reply: Callable[[C, Any], Awaitable[None]] | None = None,
) -> None:
    """Run middlewares as an onion around ``endpoint``: each gets ``next()``, which
    runs the rest of the chain; ``reply`` handles what a middleware returns."""
    size = len(chain)

    def step(index: int) -> Next:
        called = False

        async def next_() -> None:
            nonlocal called
            if called:
                raise RuntimeError("next() was called twice by one middleware")
            called = True
            if index < size:
                result = await chain[index](connection, step(index + 1))
                if result is not None and reply is not None:
                    await reply(connection, result)
            else:
                await endpoint(connection)

        return next_

    await step(0)()
