"""The simples showcase: a shared notes board, live.

    ./dev showcase                         # or: python -m examples.showcase.app
    simples run examples.showcase.app:server --port 8000

Environment: ``PORT`` (8000; 0 picks a free one), ``SHOWCASE_DATA`` (where notes
and attachments go; default ``examples/showcase/data``), ``REDIS_URL`` (sessions
in Redis instead of memory), ``SHOWCASE_PAGE_SIZE`` (notes per page, 6),
``SHOWCASE_MAX_UPLOAD`` (bytes per attachment, 25 MiB), ``SHOWCASE_ALLOWED_HOSTS``
(host names answered, comma-separated), ``SHOWCASE_CORS_ORIGINS``
(comma-separated origins allowed to call ``/api``), ``SHOWCASE_DEBUG=1`` (adds
``/boom``, a route that fails, to see the 500 page).

Every member of the connection shows up somewhere: sessions for sign-in, forms
with uploads (``body().form()`` within limits), ``drain`` for attachments
(ranges, so videos seek), static files with precompressed sidecars, Jinja pages,
``langs``/``lang`` for English or French, ``links`` for pagination, ``cache``,
``redirect`` after each POST, custom error pages, ``log`` lines, a JSON API on a
sub-router with CORS, and a WebSocket feed that puts new notes on every open
page.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import simples
from simples import HTTPConnection, HTTPError

from .build_assets import ensure as ensure_assets
from .i18n import LANGUAGES, STRINGS, human_size, pick_language
from .notes import INLINE_TYPES, Board, Note

HERE: Final = Path(__file__).resolve().parent
PUBLIC: Final = HERE / "public"
TEMPLATES: Final = HERE / "templates"
MiB: Final = 1 << 20
YEAR: Final = 365 * 24 * 3600

# Pages load only our own files: no inline script, no third-party anything.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
NAME: Final = re.compile(r"[\w .'\-]{1,40}")
MAX_TEXT: Final = 2000

access_log = logging.getLogger("showcase.access")
audit_log = logging.getLogger("showcase.audit")
logger = logging.getLogger("showcase")


@dataclass(frozen=True)
class Options:
    """What the environment may change (see the module docstring)."""

    data: Path = HERE / "data"
    redis_url: str | None = None
    page_size: int = 6
    max_upload: int = 25 * MiB
    cors_origins: tuple[str, ...] = ("http://localhost:3000", "http://127.0.0.1:3000")
    # The names the site answers to; anything else is 400 (docs/security.md).
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
    debug: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Options:
        default = cls()
        origins = env.get("SHOWCASE_CORS_ORIGINS")
        hosts = env.get("SHOWCASE_ALLOWED_HOSTS")
        return cls(
            data=Path(env["SHOWCASE_DATA"]).resolve() if env.get("SHOWCASE_DATA") else default.data,
            redis_url=env.get("REDIS_URL") or None,
            page_size=int(env.get("SHOWCASE_PAGE_SIZE", default.page_size)),
            max_upload=int(env.get("SHOWCASE_MAX_UPLOAD", default.max_upload)),
            cors_origins=(
                tuple(o.strip() for o in origins.split(",") if o.strip())
                if origins is not None
                else default.cors_origins
            ),
            allowed_hosts=(
                tuple(h.strip() for h in hosts.split(",") if h.strip())
                if hosts is not None
                else default.allowed_hosts
            ),
            debug=env.get("SHOWCASE_DEBUG", "") not in ("", "0"),
        )


# ----------------------------------------------------------------------- helpers


def user_of(connection: HTTPConnection) -> str | None:
    session = connection.session
    if session is None:
        return None
    user = session.get("user")
    return user if isinstance(user, str) else None


def strings_of(connection: HTTPConnection) -> dict[str, str]:
    return STRINGS[lang_of(connection)]


def lang_of(connection: HTTPConnection) -> str:
    lang = connection.data.get("lang")
    if lang not in STRINGS:
        lang = connection.data["lang"] = pick_language(connection)
    return str(lang)


def safe_next(target: str | None) -> str:
    """Only a path on this site (no ``//host``, no scheme): an open redirect otherwise."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def number_in(raw: str) -> int:
    """A page number or id from the URL: ASCII digits, bounded; 0 for anything else."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="..."; filename*=UTF-8''...`` for any file name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


LOG_TOKENS: Final[dict[str, Callable[[HTTPConnection], str]]] = {
    "user": lambda connection: user_of(connection) or "-",
    "ms": lambda connection: (
        f"{(time.perf_counter() - connection.data['t0']) * 1000:.1f}"
        if "t0" in connection.data
        else "-"
    ),
}
ACCESS_FORMAT: Final = '%ip "%method %href" %status %res[content-type] %ms ms lang=%lang user=%user'


# --------------------------------------------------------------------------- app


def create_app(options: Options | None = None) -> simples.Server:
    """Build the showcase server; ``options`` default to the environment's."""
    options = options or Options.from_env()
    board = Board(options.data)
    server = simples.server()
    server.allowed_hosts(*options.allowed_hosts)
    online = 0

    # ----- configuration: each section switched on where it is needed
    store: Any = (
        simples.RedisStore(options.redis_url, prefix="showcase:session:")
        if options.redis_url
        else simples.MemoryStore()
    )
    server.session(store=store, timeout=7 * 24 * 3600)
    if options.redis_url:
        server.on("stop", store.aclose)
    # public/ holds fingerprinted names (site.<hash>.css): served immutable for a
    # year, with the .br/.gz sidecars to clients that accept them
    manifest = ensure_assets()
    server.static(str(PUBLIC))
    server.compression()
    server.logger(format=ACCESS_FORMAT, tokens=LOG_TOKENS, log=access_log)
    server.timeout(30)
    server.limits(part_size=options.max_upload, form_files=1, form_fields=10)

    jinja = simples.Jinja(TEMPLATES, trim_blocks=True, lstrip_blocks=True)
    jinja.environment.globals["asset"] = lambda name: "/" + manifest[name]
    jinja.environment.globals["languages"] = [
        (code, STRINGS[code]["language_name"]) for code in LANGUAGES
    ]
    jinja.environment.globals["version"] = simples.__version__
    jinja.environment.filters["size"] = human_size
    server.engine(jinja)

    def announce() -> None:
        board.notes  # noqa: B018 - load (or create) the board before the first request
        for host, port in server.addresses[:1]:
            print(f"Showcase running on http://{host}:{port} (Ctrl-C to stop)", flush=True)

    server.on("start", announce)

    # ----- middlewares: every request, static files and error pages included

    @server.use
    async def context(connection: HTTPConnection, next: Callable[[], Awaitable[None]]) -> None:
        connection.data["t0"] = time.perf_counter()
        lang_of(connection)
        if isinstance(connection, HTTPConnection):
            connection.header("X-Content-Type-Options", "nosniff")
            connection.header("Referrer-Policy", "same-origin")
            connection.header("X-Frame-Options", "DENY")
            connection.header("Content-Security-Policy", CSP)
        else:
            # A WebSocket handshake: only this site's pages may open the feed
            # (browsers send Origin; other sites' pages are refused with 403).
            origin = connection.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != connection.host:
                raise HTTPError(403)
        await next()

    async def page(
        connection: HTTPConnection, template: str, status: int = 200, **values: Any
    ) -> None:
        """Render a page in the visitor's language; pages are private and revalidated."""
        lang = lang_of(connection)
        session = connection.session
        flash = session.pop("flash", None) if session is not None and "flash" in session else None
        connection.status(status).lang(lang).header("Vary", "Accept-Language, Cookie")
        if connection.cache() is None:
            connection.cache(type="private", no_cache=True)
        user = user_of(connection)
        await connection.render(
            template,
            {
                "t": STRINGS[lang],
                "lang": lang,
                "user": user,
                "csrf": session.get("csrf") if session is not None and user else None,
                "flash": flash,
                "here": connection.url.path
                + (f"?{connection.url.query}" if connection.url.query else ""),
                "max_upload": human_size(options.max_upload, lang),
                "max_upload_bytes": options.max_upload,
                **values,
            },
        )

    def check_csrf(connection: HTTPConnection, sent: str | None) -> None:
        session = connection.session
        expected = session.get("csrf") if session is not None else None
        if not expected or not sent or not secrets.compare_digest(expected, sent):
            raise HTTPError(403)

    def audit(connection: HTTPConnection, what: str) -> None:
        connection.log(f"%ip user=%user {what}", LOG_TOKENS, audit_log)

    async def render_card(note: Note, lang: str) -> str:
        html = jinja.render("_note.html", {"note": note, "t": STRINGS[lang], "lang": lang})
        return await html if inspect.isawaitable(html) else html

    def paginate(connection: HTTPConnection, base: str) -> tuple[int, int, dict[str, str]]:
        """The requested page number (404 outside the board), the page count and the
        links to the others, also sent as the Link header."""
        number = number_in(connection.query.get("page", "1"))
        pages = board.pages(options.page_size)
        if not 1 <= number <= pages:
            raise HTTPError(404)
        links = {"first": f"{base}?page=1", "last": f"{base}?page={pages}"}
        if number > 1:
            links["prev"] = f"{base}?page={number - 1}"
        if number < pages:
            links["next"] = f"{base}?page={number + 1}"
        connection.links(links)
        return number, pages, links

    # ----- pages

    async def board_page(connection: HTTPConnection, status: int = 200, **values: Any) -> None:
        number, pages, links = paginate(connection, "/")
        await page(
            connection,
            "board.html",
            status,
            notes=board.page(number, options.page_size),
            total=len(board),
            number=number,
            pages=pages,
            links=links,
            page_size=options.page_size,
            **values,
        )

    @server.get("/")
    async def home(connection: HTTPConnection) -> None:
        await board_page(connection)

    @server.get("/login")
    async def login_form(connection: HTTPConnection) -> None:
        if user_of(connection):
            return await connection.redirect("/", 303)
        await page(connection, "login.html")

    @server.post("/login")
    async def login(connection: HTTPConnection) -> None:
        form = await connection.body(limit=4096).form()
        name = " ".join(form.fields.get("name", "").split())
        if not NAME.fullmatch(name):
            return await page(connection, "login.html", 422, error=True, name=name)
        session = connection.session
        assert session is not None
        session.regenerate()  # a new id at each change of privilege
        session["user"] = name
        session["csrf"] = secrets.token_urlsafe(24)
        session["flash"] = "welcome_back"
        audit(connection, "signed in")
        await connection.redirect("/", 303)

    @server.post("/logout")
    async def logout(connection: HTTPConnection) -> None:
        form = await connection.body(limit=4096).form()
        check_csrf(connection, form.fields.get("csrf"))
        audit(connection, "signed out")
        session = connection.session
        assert session is not None
        await session.destroy()
        session["flash"] = "signed_out"  # a fresh session, just for the message
        await connection.redirect("/", 303)

    @server.post("/notes")
    async def post_note(connection: HTTPConnection) -> None:
        author = user_of(connection)
        if author is None:
            return await connection.redirect("/login", 303)
        # the whole request: the attachment (part_size) plus a little for the fields
        form = await connection.body(limit=options.max_upload + 64 * 1024).form()
        check_csrf(connection, form.fields.get("csrf"))
        text = form.fields.get("text", "").strip().replace("\r\n", "\n")
        if not text or len(text) > MAX_TEXT:
            return await board_page(connection, 422, error="text_invalid", text=text)
        note = await board.add(author, text, form.files.get("attachment"))
        audit(connection, f"posted note {note.id}")
        assert connection.session is not None
        connection.session["flash"] = "posted"
        cards = {lang: await render_card(note, lang) for lang in LANGUAGES}
        await server.channel("notes").broadcast(
            {"type": "note", "id": note.id, "html": cards, "total": len(board)}
        )
        await connection.redirect("/", 303)

    @server.get("/files/:id")
    async def download(connection: HTTPConnection) -> None:
        found = board.attachment(connection.params["id"])
        if found is None:
            raise HTTPError(404)
        attachment, path = found
        inline = attachment.content_type in INLINE_TYPES
        connection.header(
            "Content-Disposition",
            content_disposition("inline" if inline else "attachment", attachment.filename),
        )
        connection.header("Content-Security-Policy", "default-src 'none'; sandbox")
        connection.cache(type="public", max_age=YEAR, immutable=True)
        await connection.drain(path, attachment.content_type)

    @server.get("/lang/:code")
    async def switch_language(connection: HTTPConnection) -> None:
        code = connection.params["code"]
        if code not in STRINGS:
            raise HTTPError(404)
        connection.cookie("lang", code, max_age=YEAR, path="/", same_site="Lax")
        await connection.redirect(safe_next(connection.query.get("next")), 303)

    @server.get("/favicon.ico")
    async def favicon(connection: HTTPConnection) -> None:
        await connection.redirect("/" + manifest["favicon.svg"], True)

    if options.debug:

        @server.get("/boom")
        async def boom(connection: HTTPConnection) -> None:
            raise RuntimeError("boom: the showcase's deliberate failure (SHOWCASE_DEBUG)")

    # ----- error pages, in the visitor's language

    async def error_page(connection: HTTPConnection) -> None:
        code = connection.status()
        t = strings_of(connection)
        message = t.get(f"error_{code}", t["error_other"]).format(
            max=human_size(options.max_upload, lang_of(connection))
        )
        connection.cache("no-store")
        await page(connection, "error.html", code, code=code, message=message)

    for code in (400, 403, 404, 405, 413, 500, 503):
        server.error(code, error_page)

    # ----- the JSON API: a sub-router with its own config, errors and CORS

    api = server.router("/api")
    api.session(False)  # no cookies here, so answers may be cached publicly
    api.cors(origins=list(options.cors_origins), expose=["Link"], max_age=600)

    def api_page(number: int) -> dict[str, Any]:
        size = options.page_size
        return {
            "page": number,
            "pages": board.pages(size),
            "total": len(board),
            "notes": [note.public() for note in board.page(number, size)],
        }

    @api.get("/notes")
    async def api_notes(connection: HTTPConnection) -> dict[str, Any]:
        number = paginate(connection, "/api/notes")[0]
        connection.cache(type="public", max_age=5)
        return api_page(number)

    @api.get("/notes/:id")
    async def api_note(connection: HTTPConnection) -> dict[str, Any]:
        note = board.get(number_in(connection.params["id"]))
        if note is None:
            raise HTTPError(404)
        connection.cache(type="public", max_age=60)
        return note.public()

    async def api_error(connection: HTTPConnection) -> dict[str, Any]:
        code = connection.status()
        connection.cache("no-store")
        return {"error": code, "message": STRINGS["en"].get(f"error_{code}", "error")}

    for code in (400, 404, 405, 500):
        api.error(code, api_error)

    # ----- the live feed

    @server.ws("/live")
    async def live(ws: Any) -> None:
        nonlocal online
        channel = server.channel("notes")
        channel.bind(ws)
        online += 1
        try:
            await channel.broadcast({"type": "presence", "online": online})
            async for message in ws:
                if message.data == "ping":
                    await ws.send("pong")
        finally:
            online -= 1
            channel.unbind(ws)
            try:
                await channel.broadcast({"type": "presence", "online": online})
            except Exception:
                logger.debug("presence broadcast failed", exc_info=True)

    return server


server = create_app()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout
    )
    port = int(os.environ.get("PORT", 8000))
    server.listen(port)


if __name__ == "__main__":
    main()
