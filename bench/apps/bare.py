"""The ceiling: a hand-written ASGI callable doing the benchmark's work minimally.

No framework, no router object: a few string comparisons, the query string and
the Cookie header parsed by hand, orjson (the JSON library simples uses when it
is installed) with a stdlib fallback, and the ``multipart`` package's push
parser (the one simples uses) for the upload.
"""

import gzip
from urllib.parse import unquote, unquote_plus

import bench_files
from many_routes import ROUTES
from multipart import PushMultipartParser

try:
    import orjson

    def dumps(value: object) -> bytes:
        return orjson.dumps(value)

    loads = orjson.loads

except ImportError:  # pragma: no cover - orjson is part of the bench extras
    import json

    def dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    loads = json.loads


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


def declared_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)
    return None


async def read_body(scope, receive) -> bytes:
    # Stops at the declared length, as simples does: granian sends the end of
    # a body as one more (empty) message, not worth a trip through the loop.
    length = declared_length(scope)
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionError("client disconnected")
        chunk = message.get("body", b"")
        chunks.append(chunk)
        received += len(chunk)
        if received == length or not message.get("more_body", False):
            return b"".join(chunks)


async def items(scope, receive, send) -> None:
    data = loads(await read_body(scope, receive))
    payload = {"name": data["name"], "tags": len(data["tags"]), "stock": sum(data["stock"])}
    await respond(send, 200, [JSON], dumps(payload))


async def upload(scope, receive, send) -> None:
    """multipart/form-data streamed through the ``multipart`` package's push parser."""
    boundary = ""
    for name, value in scope["headers"]:
        if name == b"content-type":
            boundary = value.decode("latin-1").partition("boundary=")[2].strip('"')
    length = declared_length(scope)
    received = 0
    parser = PushMultipartParser(boundary)
    title = bytearray()
    filename = None
    size = 0
    current = None
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        chunk = message.get("body", b"")
        received += len(chunk)
        for event in parser.parse(chunk):
            if event is None:
                current = None
            elif isinstance(event, bytes):
                if current is not None and current.filename is not None:
                    size += len(event)
                elif current is not None and current.name == "title":
                    title += event
            else:
                current = event
                if event.filename is not None:
                    filename = event.filename
        if received == length or not message.get("more_body", False):
            break
    parser.close()
    payload = {"title": title.decode(), "filename": filename, "size": size}
    await respond(send, 200, [JSON], dumps(payload))


POSTS = {"/items": items, "/upload": upload}

# the ceiling for files: bytes read once, the gzip made once
_static = bench_files.ensure()
FILES = {
    "/static/4k.txt": ((_static / "4k.txt").read_bytes(), b"text/plain; charset=utf-8"),
    "/static/1m.bin": ((_static / "1m.bin").read_bytes(), b"application/octet-stream"),
}
REPORT_GZIP = gzip.compress(dumps(bench_files.REPORT), 6, mtime=0)


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _routed(path: str) -> bytes | None:
    """``/r{i}/items/{id}`` for i below ROUTES (many_routes.py): the id, else None."""
    parts = path.split("/")
    if len(parts) != 4 or parts[2] != "items" or not parts[3]:
        return None
    index = parts[1][1:]
    if not index.isdigit() or int(index) >= ROUTES:
        return None
    return parts[3].encode()


async def app(scope, receive, send) -> None:
    kind = scope["type"]
    if kind != "http":
        if kind == "lifespan":
            await lifespan(receive, send)
        return
    path = scope["path"]
    if scope["method"] == "POST" and path in POSTS:
        await POSTS[path](scope, receive, send)
        return
    if scope["method"] not in ("GET", "HEAD"):
        await respond(send, 405, [TEXT, (b"allow", b"GET, HEAD")], b"Method Not Allowed")
        return
    found = FILES.get(path)
    if found is not None:
        await respond(send, 200, [(b"content-type", found[1])], found[0])
    elif path == "/compressed/report":
        headers = [JSON, (b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
        await respond(send, 200, headers, REPORT_GZIP)
    elif path == "/plaintext":
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
    elif path.startswith("/r") and (routed := _routed(path)) is not None:
        await respond(send, 200, [TEXT], routed)
    else:
        await respond(send, 404, [TEXT], b"Not Found")
