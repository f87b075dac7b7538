"""The network transport: HTTP on httpx (pooled keep-alive connections), WebSocket
on ``websockets``; TLS certificates verified unless told otherwise."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar as StdCookieJar
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import httpx

from .base import ClientError, Payload, Response, Timeout

Verify = bool | str | ssl.SSLContext


def ssl_context(verify: Verify) -> ssl.SSLContext | bool:
    """``True``: the system's trust store (https://docs.python.org/3/library/ssl.html
    #ssl.create_default_context); a str: a CA bundle file; a context as given."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    if verify:
        return ssl.create_default_context()
    return False


class Network:
    def __init__(self, timeout: Timeout, limit: int, verify: Verify) -> None:
        self.timeout = timeout
        self.limit = limit
        self.tls = ssl_context(verify)
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        http = self._http
        if http is None:
            # the client's own jar keeps cookies (the same rules in both transports):
            # httpx's is given a policy that accepts none
            refuse = StdCookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            http = self._http = httpx.AsyncClient(
                verify=self.tls,
                timeout=httpx.Timeout(
                    self.timeout.read, connect=self.timeout.connect, pool=self.timeout.connect
                ),
                follow_redirects=False,
                cookies=refuse,
                trust_env=False,
            )
        return http

    async def start(self) -> None:
        self._client()

    async def stop(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def exchange(
        self, method: str, url: str, headers: list[tuple[str, str]], payload: Payload
    ) -> Response:
        http = self._client()
        content = payload.content
        request = http.build_request(
            method,
            url,
            headers=headers,
            content=content if content or method not in ("GET", "HEAD") else None,
        )
        try:
            answer = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _client_error(method, url, exc, self.timeout) from exc

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_bytes():
                    yield chunk
            except httpx.HTTPError as exc:
                raise _client_error(method, url, exc, self.timeout) from exc
            finally:
                await answer.aclose()

        return Response(
            answer.status_code,
            [(name.lower(), value) for name, value in answer.headers.raw],
            chunks(),
            answer.aclose,
            url=url,
            method=method,
            limit=self.limit,
        )

    async def websocket(
        self, url: str, headers: list[tuple[str, str]], protocols: list[str]
    ) -> NetworkWebSocket:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus
        from websockets.typing import Subprotocol

        agent = next((value for name, value in headers if name == "user-agent"), None)
        extra = [(name, value) for name, value in headers if name != "user-agent"]
        secure = url.startswith("wss:")
        try:
            connection = await connect(
                url,
                additional_headers=extra,
                subprotocols=[Subprotocol(name) for name in protocols] or None,
                open_timeout=self.timeout.connect,
                ssl=(self.tls or _unverified()) if secure else None,
                user_agent_header=agent,
                max_size=self.limit or None,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ClientError(f"WebSocket {url} refused: {status}", status,
                              bytes(exc.response.body or b"")) from None
        except TimeoutError:
            raise ClientError(f"WebSocket {url}: no handshake answer within "
                              f"{self.timeout.connect} s") from None
        except (OSError, InvalidHandshake) as exc:
            raise ClientError(f"WebSocket {url}: cannot connect: {exc}") from exc
        return NetworkWebSocket(connection)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _client_error(method: str, url: str, exc: httpx.HTTPError, timeout: Timeout) -> ClientError:
    where = f"{method} {url}"
    if isinstance(exc, httpx.ConnectTimeout):
        return ClientError(f"{where}: could not connect within {timeout.connect} s")
    if isinstance(exc, httpx.TimeoutException):
        return ClientError(f"{where}: no answer from the server within {timeout.read} s")
    if isinstance(exc, httpx.ConnectError):
        return ClientError(f"{where}: cannot connect: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return ClientError(
            f"{where}: the server went away before the response was complete ({exc})"
        )
    return ClientError(f"{where}: {type(exc).__name__}: {exc}")


class NetworkWebSocket:
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.subprotocol: str | None = connection.subprotocol
        self.set_cookies: list[str] = list(connection.response.headers.get_all("set-cookie"))
        self.close_code: int | None = None
        self.close_reason = ""

    def _closed(self) -> None:
        from websockets.frames import CloseCode

        connection = self.connection
        code = connection.close_code
        self.close_code = int(code) if code is not None else int(CloseCode.ABNORMAL_CLOSURE)
        self.close_reason = connection.close_reason or ""

    async def send(self, frame: str | bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self.connection.send(frame)
        except ConnectionClosed:
            self._closed()
            raise ClientError(f"the WebSocket is closed (code {self.close_code})") from None

    async def recv(self) -> str | bytes | None:
        from websockets.exceptions import ConnectionClosed

        try:
            frame: str | bytes = await self.connection.recv()
        except ConnectionClosed:
            self._closed()
            return None
        return frame

    async def close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.connection.close(code, reason), 10)
        finally:
            self._closed()
