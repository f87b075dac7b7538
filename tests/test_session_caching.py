"""Session responses are not for shared caches: ``Vary: Cookie`` on every
response that read the session, ``Cache-Control: private`` on responses that
set or clear the session cookie unless the handler chose its own. Over the wire."""

from __future__ import annotations

import httpx

import simples
from simples import HTTPConnection
from tests.conftest import serve


def session_app() -> simples.Server:
    app = simples.server()
    app.session(store=simples.MemoryStore())

    @app.get("/login")
    async def login(connection: HTTPConnection) -> str:
        assert connection.session is not None
        connection.session["user"] = "ada"
        return "in"

    @app.get("/me")
    async def me(connection: HTTPConnection) -> str:
        assert connection.session is not None
        return str(connection.session.get("user"))

    @app.get("/public")
    async def public(connection: HTTPConnection) -> str:
        return "the same for everyone"

    @app.get("/chosen")
    async def chosen(connection: HTTPConnection) -> str:
        assert connection.session is not None
        connection.session["seen"] = True
        connection.cache(type="public", max_age=60)
        return "the handler's choice"

    @app.get("/logout")
    async def logout(connection: HTTPConnection) -> str:
        assert connection.session is not None
        await connection.session.destroy()
        return "out"

    return app


def test_reading_the_session_varies_on_cookie() -> None:
    with serve(session_app()) as live, httpx.Client(base_url=live.url) as http:
        login = http.get("/login")
        me = http.get("/me")
        public = http.get("/public")
    assert login.headers["cache-control"] == "private"
    assert "set-cookie" in login.headers
    assert me.text == "ada"
    assert me.headers["vary"] == "Cookie"
    # refreshed cookie (sliding expiry): private, but it did not read the session
    assert public.headers["cache-control"] == "private"
    assert "vary" not in public.headers


def test_a_new_visitor_untouched_gets_a_cacheable_answer() -> None:
    with serve(session_app()) as live, httpx.Client(base_url=live.url) as http:
        public = http.get("/public")
    assert "set-cookie" not in public.headers
    assert "cache-control" not in public.headers
    assert "vary" not in public.headers


def test_the_handler_cache_policy_wins_and_logout_is_private() -> None:
    with serve(session_app()) as live, httpx.Client(base_url=live.url) as http:
        chosen = http.get("/chosen")
        http.get("/login")
        out = http.get("/logout")
    assert chosen.headers["cache-control"] == "public, max-age=60"
    assert "set-cookie" in chosen.headers
    assert out.headers["cache-control"] == "private"
    assert "Max-Age=0" in out.headers["set-cookie"]
