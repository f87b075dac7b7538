"""The ceiling: a hand-written ASGI callable doing the benchmark's work minimally.

No framework, no router object: a few string comparisons, the query string and
the Cookie header parsed by hand, orjson (the JSON library simples uses when it
is installed) with a stdlib fallback.
"""

from urllib.parse import unquote, unquote_plus

try:
    import orjson

    def dumps(value: object) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - orjson is part of the bench extras
    import json

    def dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


PLAIN_BODY = b"Hello, World!"
TEXT = (b"content-type", b"text/plain; charset=utf-8")
JSON = (b"content-type", b"application/json")


def query_first(query_string: bytes, wanted: str) -> str | None:
    if not query_string:
        return None
    for pair in query_string.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if unquote_plus(name) == wanted:
            return unquote_plus(value)
    return None


def cookie_value(header: bytes, wanted: str) -> str | None:
    for part in header.decode("latin-1").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == wanted:
            return unquote(value)
    return None


async def respond(send, status: int, headers: list, body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send) -> None:
    kind = scope["type"]
    if kind != "http":
        if kind == "lifespan":
            await lifespan(receive, send)
        return
    if scope["method"] not in ("GET", "HEAD"):
        await respond(send, 405, [TEXT, (b"allow", b"GET, HEAD")], b"Method Not Allowed")
        return
    path = scope["path"]
    if path == "/plaintext":
        await respond(send, 200, [TEXT], PLAIN_BODY)
    elif path == "/json":
        await respond(send, 200, [JSON], dumps({"message": "Hello, World!"}))
    elif path.startswith("/user/") and len(path) > 6 and "/" not in path[6:]:
        uid = path[6:]
        session = token = None
        for name, value in scope["headers"]:
            if name == b"cookie" and session is None:
                session = cookie_value(value, "session")
            elif name == b"x-token" and token is None:
                token = value.decode("latin-1")
        payload = {
            "id": uid,
            "q": query_first(scope["query_string"], "q"),
            "session": session,
            "token": token,
        }
        headers = [
            JSON,
            (b"set-cookie", b"seen=1; HttpOnly; Path=/"),
            (b"x-user", uid.encode()),
        ]
        await respond(send, 200, headers, dumps(payload))
    else:
        await respond(send, 404, [TEXT], b"Not Found")
