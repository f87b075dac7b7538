"""``simples.Jinja``: the Jinja2 template engine behind ``connection.render()`` (docs/templates.md).

An engine is any object with ``render(source, imports)`` returning a str or an
awaitable of one; this is the one simples ships.

Templates can await (Jinja's async mode), but async rendering costs: every
output and attribute access goes through an ``await``, about 1.7 times the
work of a plain render. So each template is rendered in async mode only when
it may await something:

- it (or anything it extends, includes or imports) calls a method or a value
  that is not a macro or a template builtin (``user.avatar()``,
  ``db.load(id)``), or uses an async filter or test, or names a template
  with a variable; or
- the render's imports (or the environment's globals) hold an ``async def``
  function, an awaitable or an async iterable.

Everything else renders in plain (sync) mode, which gives the same text.
``Jinja(..., enable_async=True)`` forces async mode, ``False`` forces plain.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import jinja2
from jinja2 import meta, nodes

from .errors import HTTPError
from .request import Request

logger = logging.getLogger("simples")

# Extensions whose templates are escaped; ``.html.j2`` style names included
# because select_autoescape matches on the end of the name.
AUTOESCAPE: Final = (
    "html", "htm", "xhtml", "xml", "svg",
    "html.j2", "html.jinja", "html.jinja2", "xml.j2", "xml.jinja", "xml.jinja2",
)

# Callees that never await: template builtins and Jinja's runtime helpers.
_SYNC_NAMES: Final = frozenset(
    {"super", "caller", "range", "varargs", "kwargs", "dict", "lipsum", "cycler", "joiner",
     "namespace", "loop", "self"}
)

# Values that are certainly not awaitable, checked before the slower inspect calls.
_PLAIN: Final = frozenset({str, int, float, bool, list, dict, tuple, set, type(None), bytes})


class Jinja:
    """Jinja2 with HTML/XML autoescape, async-capable rendering and cached templates.

    ``directory`` is a path or a list of paths (relative ones are taken from
    the working directory now). ``options`` go to ``jinja2.Environment``
    (``trim_blocks=True``, ``undefined=jinja2.StrictUndefined``, ``extensions``,
    ...). ``auto_reload`` (re-read changed templates) defaults to on under
    ``simples run --reload`` (the ``SIMPLES_RELOAD`` environment variable) and
    off otherwise, where each template is read and compiled once.
    """

    def __init__(self, directory: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                 **options: Any) -> None:
        directories = [directory] if isinstance(directory, str | os.PathLike) else list(directory)
        self.search_path: list[str] = [str(Path(path).resolve()) for path in directories]
        self._mode: bool | None = options.pop("enable_async", None)
        options.setdefault("loader", jinja2.FileSystemLoader(self.search_path))
        options.setdefault("autoescape", jinja2.select_autoescape(AUTOESCAPE))
        options.setdefault("auto_reload", os.environ.get("SIMPLES_RELOAD", "") not in ("", "0"))
        self.reload: bool = bool(options["auto_reload"])
        #: The (plain mode) ``jinja2.Environment``: add filters, tests and globals
        #: here; the async mode environment shares them.
        self.environment = jinja2.Environment(**options)
        # url_for("user", id=7) in a template: the rendering connection's url_for
        self.environment.globals.setdefault("url_for", _url_for)
        self._async_environment: jinja2.Environment | None = None
        # compiled templates by name, per mode; used only when templates never reload
        self._plain: dict[str, jinja2.Template] = {}
        self._async: dict[str, jinja2.Template] = {}
        self._awaits: dict[str, _Analysis] = {}

    def __repr__(self) -> str:
        return f"Jinja({self.search_path!r})"

    @property
    def async_environment(self) -> jinja2.Environment:
        """The async mode twin of ``environment`` (same loader, filters, globals)."""
        env = self._async_environment
        if env is None:
            # overlay() shares the filters, tests and globals dicts: what is added
            # to ``environment`` later is seen here too.
            env = self._async_environment = self.environment.overlay(enable_async=True)
        return env

    def render(self, source: str, imports: Mapping[str, Any] | None = None) -> str | Awaitable[str]:
        """Render the template named ``source`` with ``imports`` as its variables."""
        values = imports if imports is not None else {}
        try:
            use_async = self._mode
            if use_async is None:
                use_async = self._needs_async(source) or _has_async_value(values)
            template = self._template(source, use_async)
            if use_async:
                return self._render_async(source, template, values)
            return template.render(values)
        except Exception as error:
            reported = self._report(source, error)
            if reported is error:
                raise
            raise reported from None

    async def _render_async(self, source: str, template: jinja2.Template,
                            values: Mapping[str, Any]) -> str:
        try:
            return await template.render_async(values)
        except Exception as error:
            reported = self._report(source, error)
            if reported is error:
                raise
            raise reported from None

    # ---------------------------------------------------------------- internals

    def _template(self, name: str, use_async: bool) -> jinja2.Template:
        env = self.async_environment if use_async else self.environment
        if self.reload:
            # Jinja checks the file's mtime on each lookup in this mode.
            return env.get_template(name)
        cache = self._async if use_async else self._plain
        template = cache.get(name)
        if template is None:
            template = cache[name] = env.get_template(name)
        return template

    def _needs_async(self, name: str) -> bool:
        analysis = self._awaits.get(name)
        if analysis is None or (self.reload and not analysis.up_to_date()):
            analysis = self._awaits[name] = _analyse(self.environment, name)
        return analysis.awaits

    def _report(self, source: str, error: Exception) -> Exception:
        """Log one line naming the template and line; give back the error to raise."""
        if isinstance(error, HTTPError):
            return error  # meant for the error routes, not a template fault
        if isinstance(error, jinja2.TemplateNotFound):
            missing = error.name if isinstance(error.name, str) else source
            where = ", ".join(
                path if os.path.isdir(path) else f"{path} (no such directory)"
                for path in self.search_path
            ) or repr(self.environment.loader)
            message = f"template {missing!r} not found (search path: {where})"
            logger.error("render(%r): %s", source, message)
            found = jinja2.TemplateNotFound(missing, message)
            found.__traceback__ = error.__traceback__
            return found
        name, line = self._location(error)
        if name is None:
            # not a template error: an exception from code the template called
            return error
        # the failing template may be one that ``source`` extends or includes
        where = f"{name}, line {line}" + (f" (rendering {source})" if name != source else "")
        logger.error("template error in %s: %s: %s", where, type(error).__name__, error)
        error.add_note(f"(template {where})")
        return error

    def _location(self, error: Exception) -> tuple[str | None, int | None]:
        if isinstance(error, jinja2.TemplateSyntaxError):
            return error.name or error.filename, error.lineno
        # Jinja rewrites tracebacks so that template frames carry the template's
        # file name and line; the innermost one is where the error happened.
        filename: str | None = None
        line: int | None = None
        tb: TracebackType | None = error.__traceback__
        while tb is not None:
            if "__jinja_exception__" in tb.tb_frame.f_globals:
                filename = tb.tb_frame.f_code.co_filename
                line = tb.tb_lineno
            tb = tb.tb_next
        if filename is None:
            return None, None
        return self._name_of(filename), line

    def _name_of(self, filename: str) -> str:
        for path in self.search_path:
            if filename.startswith(path + os.sep):
                return Path(os.path.relpath(filename, path)).as_posix()
        return filename


class _Analysis:
    """Whether a template tree may await, and how to tell that it changed."""

    __slots__ = ("awaits", "checks", "complete")

    def __init__(self, awaits: bool, checks: list[Callable[[], bool]], complete: bool) -> None:
        self.awaits = awaits
        self.checks = checks
        # False when a referenced template was missing: look again next time
        self.complete = complete

    def up_to_date(self) -> bool:
        return self.complete and all(check() for check in self.checks)


def _analyse(env: jinja2.Environment, name: str) -> _Analysis:
    """Walk ``name`` and every template it references for anything that may await.

    A missing or broken ``name`` raises here, as rendering it would."""
    checks: list[Callable[[], bool]] = []
    if any(_is_async_value(value) for value in env.globals.values()):
        return _Analysis(True, checks, True)
    loader = env.loader
    if loader is None:
        return _Analysis(True, checks, True)
    seen: set[str] = set()
    pending = [name]
    complete = True
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            source, filename, uptodate = loader.get_source(env, current)
        except jinja2.TemplateNotFound:
            if current == name:
                raise
            # rendering reports it, or `ignore missing` allows it
            complete = False
            continue
        if uptodate is not None:
            checks.append(uptodate)
        tree = env.parse(source, current, filename)
        if _tree_awaits(env, tree):
            return _Analysis(True, checks, complete)
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:
                # a template named by a variable: it could be anything
                return _Analysis(True, checks, complete)
            pending.append(referenced)
    return _Analysis(False, checks, complete)


def _tree_awaits(env: jinja2.Environment, tree: nodes.Template) -> bool:
    modules = {node.target for node in tree.find_all(nodes.Import)}
    for call in tree.find_all(nodes.Call):
        callee = call.node
        if isinstance(callee, nodes.Name):
            # a macro, a builtin, a global or an import: globals and imports are
            # checked as values, so a name call alone never needs async mode
            continue
        if (
            isinstance(callee, nodes.Getattr)
            and isinstance(callee.node, nodes.Name)
            and (callee.node.name in _SYNC_NAMES or callee.node.name in modules)
        ):
            continue  # loop.cycle(), self.block(), forms.field() (a macro)
        return True
    for filter_ in tree.find_all(nodes.Filter):
        if _is_async_value(env.filters.get(filter_.name)):
            return True
    return any(_is_async_value(env.tests.get(test.name)) for test in tree.find_all(nodes.Test))


def _is_async_value(value: Any) -> bool:
    if type(value) in _PLAIN or isinstance(value, Request):
        return False
    if inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value):
        return True
    if inspect.isawaitable(value) or hasattr(value, "__aiter__"):
        return True
    call = getattr(type(value), "__call__", None)  # noqa: B004 - async callable objects
    return call is not None and inspect.iscoroutinefunction(call)


@jinja2.pass_context
def _url_for(context: Any, name: str, /, query: Any = None, **params: Any) -> str:
    """``url_for`` in templates: the path of a named route (docs/types.md)."""
    connection = context.get("connection")
    if not isinstance(connection, Request):
        raise RuntimeError("url_for() in a template needs a render through connection.render()")
    return connection.url_for(name, query, **params)


def _has_async_value(values: Mapping[str, Any]) -> bool:
    return any(_is_async_value(value) for value in values.values())


__all__ = ["AUTOESCAPE", "Jinja"]
