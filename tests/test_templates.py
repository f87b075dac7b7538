"""Templates: connection.render(), router.engine(), simples.Jinja and view routes (issue 6)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest

import simples
from simples import HTTPConnection
from tests.conftest import serve_inprocess

TEMPLATES = Path(__file__).resolve().parent / "templates"


def app_with_jinja(**options: Any) -> simples.Server:
    app = simples.server()
    app.engine(simples.Jinja(TEMPLATES, **options))
    return app


def template_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage() for record in caplog.records
        if record.name == "simples" and "template" in record.getMessage()
    ]


# ------------------------------------------------------------------ rendering


def test_render_extends_the_layout_and_escapes_script() -> None:
    app = app_with_jinja()

    @app.get("/page")
    async def page(connection: HTTPConnection) -> None:
        await connection.render(
            "page.html",
            {"title": "Home", "message": "<script>alert('x')</script>", "items": ["a&b", "c"]},
        )

    with serve_inprocess(app) as live:
        response = live.get("/page")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    body = response.text
    # inheritance: the child's blocks inside the base layout, super() included
    assert "<title>Home | Site</title>" in body
    assert "<header>layout for /page</header>" in body
    # autoescape: the script arrives as text, never as markup
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body
    assert "<script>" not in body
    assert "<li>a&amp;b</li><li>c</li>" in body
    assert response.headers["content-length"] == str(len(response.content))


def test_view_shorthand_with_a_dict_and_the_connection_global() -> None:
    app = app_with_jinja()
    app.get("/", "hello.html", {"name": "<b>Ann</b>"})

    with serve_inprocess(app) as live:
        response = live.get("/")
        head = live.request("HEAD", "/")
    assert response.status_code == 200
    assert response.text.strip() == "<p>Hello &lt;b&gt;Ann&lt;/b&gt; from GET /</p>"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert head.status_code == 200
    assert head.content == b""
    # HEAD renders with method HEAD, so its length is its own page's
    assert head.headers["content-length"] == str(len(response.content) + 1)


def test_view_shorthand_with_sync_and_async_import_functions() -> None:
    app = app_with_jinja()
    app.get("/sync", "hello.html", lambda connection: {"name": connection.query.get("name")})

    async def imports(connection: HTTPConnection) -> Mapping[str, Any]:
        await asyncio.sleep(0)  # a database query, say
        return {"name": connection.params["who"].upper()}

    app.get("/async/:who", "hello.html", imports)
    app.post("/posted", "hello.html", {"name": "poster"})

    with serve_inprocess(app) as live:
        by_sync = live.get("/sync", params={"name": "Bo"})
        by_async = live.get("/async/cy")
        posted = live.request("POST", "/posted")
    assert by_sync.text.strip() == "<p>Hello Bo from GET /sync</p>"
    assert by_async.text.strip() == "<p>Hello CY from GET /async/cy</p>"
    assert posted.text.strip() == "<p>Hello poster from POST /posted</p>"


def test_view_error_routes() -> None:
    app = app_with_jinja()
    app.error(404, "404.html")
    app.get("/gone", "hello.html", {"name": "x"})

    @app.get("/raise")
    async def raise_404(connection: HTTPConnection) -> None:
        raise simples.HTTPError(404)

    with serve_inprocess(app) as live:
        missing = live.get("/no/such/page")
        raised = live.get("/raise")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "text/html; charset=utf-8"
    assert "<p>Nothing at /no/such/page</p>" in missing.text
    assert "<header>layout for /no/such/page</header>" in missing.text
    assert raised.status_code == 404
    assert "<p>Nothing at /raise</p>" in raised.text


def test_a_type_set_before_render_wins_and_xml_is_escaped() -> None:
    app = app_with_jinja()

    @app.get("/feed")
    async def feed(connection: HTTPConnection) -> None:
        await connection.type("application/atom+xml").render("feed.xml", {"title": "A & <B>"})

    @app.get("/note")
    async def note(connection: HTTPConnection) -> None:
        await connection.type("txt").render("note.txt", {"text": "<not escaped>"})

    with serve_inprocess(app) as live:
        feed_response = live.get("/feed")
        note_response = live.get("/note")
    assert feed_response.headers["content-type"].startswith("application/atom+xml")
    assert feed_response.text.strip() == "<feed><title>A &amp; &lt;B&gt;</title></feed>"
    assert note_response.headers["content-type"] == "text/plain; charset=utf-8"
    assert note_response.text.strip() == "<not escaped>"


def test_templates_can_await() -> None:
    app = app_with_jinja()

    async def load(name: str) -> str:
        await asyncio.sleep(0)
        return f"loaded {name}"

    async def rows() -> AsyncIterator[str]:
        for row in ("r1", "<r2>"):
            await asyncio.sleep(0)
            yield row

    class User:
        async def greeting(self) -> str:
            await asyncio.sleep(0)
            return "hi <you>"

    @app.get("/awaits")
    async def awaits(connection: HTTPConnection) -> None:
        await connection.render("awaits.html", {"load": load, "user": User(), "rows": rows()})

    @app.get("/load")
    async def load_page(connection: HTTPConnection) -> None:
        await connection.render("load.html", {"load": load, "rows": rows()})

    with serve_inprocess(app) as live:
        response = live.get("/awaits")
        loaded = live.get("/load")
    assert response.status_code == 200
    assert "<p>loaded news</p>" in response.text
    assert "<p>hi &lt;you&gt;</p>" in response.text
    assert "<li>r1</li><li>&lt;r2&gt;</li>" in response.text
    assert loaded.status_code == 200
    assert "<p>loaded news</p>" in loaded.text
    assert "<li>r1</li><li>&lt;r2&gt;</li>" in loaded.text


# -------------------------------------------------------------------- engines


class Upper:
    """A template engine by the contract: any object with render(source, imports)."""

    def render(self, source: str, imports: Mapping[str, Any]) -> str:
        return f"{source}:{imports['name']}:{imports['connection'].path}".upper()


class Later:
    """An engine whose render returns an awaitable."""

    async def render(self, source: str, imports: Mapping[str, Any]) -> str:
        await asyncio.sleep(0)
        return f"later {source} {imports['name']}"


def test_engine_found_on_router_then_parents_then_host() -> None:
    app = app_with_jinja()
    admin = app.router("/admin")
    admin.engine(simples.Jinja(TEMPLATES / "admin"))
    deep = admin.router("/deep")  # no engine: its parent's
    plain = app.router("/plain")  # no engine: the server's
    custom = app.router("/custom").engine(Upper())
    later = app.router("/later").engine(Later())
    shop = app.host("shop.test")  # a host is its own tree
    shop.engine(Upper())
    for router in (app, admin, deep, plain, custom, later, shop):
        router.get("/hi", "hello.html", {"name": "Di"})

    with serve_inprocess(app) as live:
        main = live.get("/hi").text.strip()
        admin_page = live.get("/admin/hi").text.strip()
        deep_page = live.get("/admin/deep/hi").text.strip()
        plain_page = live.get("/plain/hi").text.strip()
        custom_page = live.get("/custom/hi")
        later_page = live.get("/later/hi").text
        host_page = live.get("/hi", headers={"Host": "shop.test"}).text
    assert main == "<p>Hello Di from GET /hi</p>"
    assert admin_page == "<p>Admin hello Di</p>"
    assert deep_page == "<p>Admin hello Di</p>"
    assert plain_page == "<p>Hello Di from GET /plain/hi</p>"
    assert custom_page.text == "HELLO.HTML:DI:/CUSTOM/HI"
    assert custom_page.headers["content-type"] == "text/html; charset=utf-8"
    assert later_page == "later hello.html Di"
    assert host_page == "HELLO.HTML:DI:/HI"


def test_engine_must_have_a_render_method() -> None:
    app = simples.server()
    with pytest.raises(TypeError, match="render"):
        app.engine(object())


# ------------------------------------------------------------- template errors


def test_template_error_is_a_500_through_the_error_route(caplog: pytest.LogCaptureFixture) -> None:
    app = app_with_jinja()
    app.error(500, "500.html")
    app.get("/broken", "broken.html", {})
    app.get("/syntax", "syntax.html", {})
    app.get("/included", "includes_broken.html", {})

    with caplog.at_level(logging.ERROR, logger="simples"), serve_inprocess(app) as live:
        broken = live.get("/broken")
        syntax = live.get("/syntax")
        included = live.get("/included")
    assert broken.status_code == 500
    assert broken.text.strip() == "<p>Broken: UndefinedError</p>"
    assert syntax.status_code == 500
    assert syntax.text.strip() == "<p>Broken: TemplateSyntaxError</p>"
    assert included.status_code == 500
    lines = template_errors(caplog)
    assert any("broken.html, line 3:" in line and "UndefinedError" in line for line in lines)
    assert any("syntax.html, line 2:" in line and "TemplateSyntaxError" in line for line in lines)
    assert any(
        "broken.html, line 3 (rendering includes_broken.html)" in line for line in lines
    ), lines


def test_missing_template_names_the_search_path(caplog: pytest.LogCaptureFixture) -> None:
    app = app_with_jinja()
    app.get("/missing", "no_such_template.html", {})
    app.get("/included", "includes_missing.html", {})

    with caplog.at_level(logging.ERROR, logger="simples"), serve_inprocess(app) as live:
        missing = live.get("/missing")
        included = live.get("/included")
    assert missing.status_code == 500
    assert missing.text == "Internal Server Error"
    assert included.status_code == 500
    lines = template_errors(caplog)
    assert any(
        "'no_such_template.html' not found" in line and str(TEMPLATES) in line for line in lines
    ), lines
    assert any("'nowhere.html' not found" in line and str(TEMPLATES) in line for line in lines)


def test_render_without_an_engine_is_a_500_with_a_clear_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = simples.server()
    app.get("/", "hello.html", {"name": "x"})

    with caplog.at_level(logging.ERROR, logger="simples"), serve_inprocess(app) as live:
        response = live.get("/")
    assert response.status_code == 500
    assert any(
        record.exc_info and "no template engine" in str(record.exc_info[1])
        for record in caplog.records
    )


def test_an_http_error_inside_a_template_keeps_its_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # HTTPError raised by a function the template calls goes to its error route,
    # and is not reported as a template fault.
    app = app_with_jinja()
    app.error(403, lambda connection: "no entry")

    def load(name: str) -> str:
        raise simples.HTTPError(403)

    app.get("/", "load.html", {"load": load, "rows": []})

    with caplog.at_level(logging.ERROR, logger="simples"), serve_inprocess(app) as live:
        response = live.get("/")
    assert response.status_code == 403
    assert response.text == "no entry"
    assert template_errors(caplog) == []


# --------------------------------------------------------- the engine itself


def test_plain_templates_render_without_awaiting() -> None:
    jinja = simples.Jinja(TEMPLATES)
    # nothing that awaits: a str straight away (the fast path)
    values = {"title": "T", "message": "m", "items": [], "connection": None}
    page = jinja.render("page.html", values)
    assert isinstance(page, str)
    assert "<title>T | Site</title>" in page
    # macros imported from another template and loop helpers never await
    form = jinja.render("form.html", {"query": "<q>", "items": [1, 2]})
    assert isinstance(form, str)
    assert '<input name="q" value="&lt;q&gt;">' in form
    assert "oddeven" in form


def test_templates_that_may_await_render_asynchronously() -> None:
    jinja = simples.Jinja(TEMPLATES)

    async def load(name: str) -> str:
        return name

    class User:
        async def greeting(self) -> str:
            return "hey"

    # a method call in the template: async mode even with sync values
    result = jinja.render("awaits.html", {"load": str, "user": User(), "rows": []})
    assert not isinstance(result, str)
    assert "<p>hey</p>" in asyncio.run(_await(result))
    # a plain name call is async only when the value given is async
    assert isinstance(jinja.render("load.html", {"load": str.upper, "rows": []}), str)
    result = jinja.render("load.html", {"load": load, "rows": []})
    assert "<p>news</p>" in asyncio.run(_await(result))
    # forced modes
    forced = simples.Jinja(TEMPLATES, enable_async=True).render(
        "hello.html", {"name": "n", "connection": None}
    )
    assert asyncio.run(_await(forced)).startswith("<p>Hello n")
    class SyncUser:
        def greeting(self) -> str:
            return "sync"

    plain = simples.Jinja(TEMPLATES, enable_async=False).render(
        "awaits.html", {"load": str, "user": SyncUser(), "rows": []}
    )
    assert isinstance(plain, str)
    assert "<p>sync</p>" in plain


async def _await(value: Any) -> str:
    result: str = await value
    return result


def test_filters_and_globals_added_later_reach_both_modes() -> None:
    jinja = simples.Jinja(TEMPLATES)
    jinja.environment.filters["shout"] = lambda text: f"{text}!"
    jinja.environment.globals["site"] = "Sitename"
    plain = jinja.environment.from_string("{{ site }} {{ 'a'|shout }}").render()
    assert plain == "Sitename a!"
    asynchronous = jinja.async_environment.from_string("{{ site }} {{ 'a'|shout }}")
    assert asyncio.run(asynchronous.render_async()) == "Sitename a!"


def test_templates_are_cached_unless_reloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(TEMPLATES / "hello.html", tmp_path / "hello.html")
    monkeypatch.delenv("SIMPLES_RELOAD", raising=False)
    cached = simples.Jinja(tmp_path)
    monkeypatch.setenv("SIMPLES_RELOAD", "1")  # what `simples run --reload` sets
    reloading = simples.Jinja(tmp_path)
    explicit = simples.Jinja(tmp_path, auto_reload=True)
    assert (cached.reload, reloading.reload, explicit.reload) == (False, True, True)
    for engine in (cached, reloading, explicit):
        assert "Hello a" in str(engine.render("hello.html", {"name": "a", "connection": None}))

    target = tmp_path / "hello.html"
    target.write_text("<p>Changed {{ name }}</p>")
    later = time.time() + 5  # mtime granularity must not hide the change
    os.utime(target, (later, later))
    assert "Hello b" in str(cached.render("hello.html", {"name": "b", "connection": None}))
    assert reloading.render("hello.html", {"name": "b"}) == "<p>Changed b</p>"
    assert explicit.render("hello.html", {"name": "b"}) == "<p>Changed b</p>"


def test_reload_notices_a_template_that_starts_to_await(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{{ name }}")
    jinja = simples.Jinja(tmp_path, auto_reload=True)
    assert jinja.render("page.html", {"name": "a"}) == "a"
    (tmp_path / "page.html").write_text("{{ user.name() }}")
    later = time.time() + 5
    os.utime(tmp_path / "page.html", (later, later))

    class User:
        async def name(self) -> str:
            return "async b"

    result = jinja.render("page.html", {"user": User()})
    assert asyncio.run(_await(result)) == "async b"


def test_missing_directory_and_bad_names_are_template_not_found(tmp_path: Path) -> None:
    jinja = simples.Jinja(tmp_path / "absent")
    with pytest.raises(jinja2.TemplateNotFound, match="no such directory"):
        jinja.render("x.html", {})
    real = simples.Jinja(TEMPLATES)
    with pytest.raises(jinja2.TemplateNotFound, match="search path"):
        real.render("../conftest.py", {})
    assert repr(real) == f"Jinja([{str(TEMPLATES)!r}])"


def test_several_directories_are_searched_in_order(tmp_path: Path) -> None:
    (tmp_path / "hello.html").write_text("override {{ name }}")
    jinja = simples.Jinja([tmp_path, TEMPLATES])
    assert jinja.render("hello.html", {"name": "n"}) == "override n"
    page = jinja.render("page.html", {"title": "t", "items": [], "connection": None})
    assert "<title>t | Site</title>" in str(page)


def test_the_templates_example_runs() -> None:
    from examples.templates.app import server

    with serve_inprocess(server) as live:
        search = live.get("/", params={"q": "<script>"})
        book = live.get("/books/1")
        missing = live.get("/books/9")
        about = live.get("/about")
    assert search.status_code == 200
    assert 'value="&lt;script&gt;"' in search.text
    assert "<script>" not in search.text
    assert "<li>Cold &amp; &lt;warm&gt;.</li>" in book.text  # awaited in the template
    assert missing.status_code == 404
    assert "Nothing lives at <code>/books/9</code>" in missing.text
    assert "A tiny shop &lt;em&gt;rendered&lt;/em&gt; by simples." in about.text


def test_what_makes_a_template_render_asynchronously(tmp_path: Path) -> None:
    files = {
        "macros.html": "{% macro field(name) %}<i>{{ name }}</i>{% endmacro %}",
        "from_import.html": (
            '{% from "macros.html" import field %}{% block x %}X{% endblock %}'
            '{{ field("a") }}{{ self.x() }}{{ range(2)|list|length }}'
        ),
        "dynamic.html": "{% include name %}",
        "filtered.html": "{{ 'a'|later }}",
        "global.html": "{{ site() }}",
        "parent_awaits.html": "{{ user.name() }}{% block body %}{% endblock %}",
        "child.html": '{% extends "parent_awaits.html" %}{% block body %}child{% endblock %}',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    async def later(value: str) -> str:
        return value.upper()

    class User:
        def name(self) -> str:
            return "sync name"

    jinja = simples.Jinja(tmp_path)
    jinja.environment.filters["later"] = later
    plain = jinja.render("from_import.html", {})
    assert plain == "X<i>a</i>X2"
    dynamic = jinja.render("dynamic.html", {"name": "macros.html"})
    assert not isinstance(dynamic, str)
    assert asyncio.run(_await(dynamic)) == ""
    assert asyncio.run(_await(jinja.render("filtered.html", {}))) == "A"
    # a method call in a parent template makes its children async too
    child = jinja.render("child.html", {"user": User()})
    assert asyncio.run(_await(child)) == "sync namechild"

    async def site() -> str:
        return "async global"

    with_global = simples.Jinja(tmp_path)
    with_global.environment.globals["site"] = site  # an async global function
    result = with_global.render("global.html", {})
    assert asyncio.run(_await(result)) == "async global"
