"""The matched route, told to the observability tools around the server.

After routing, ``scope["route"]`` is the ``Route`` (``.path``, ``.path_format``)
and ``scope["endpoint"]`` its handler: what Sentry's, OpenTelemetry's and
Prometheus' ASGI middlewares read to name an exchange by its route rather than
its raw path. With OpenTelemetry installed, the current server span also gets
``http.route`` and the name ``GET /users/{id}`` (its generic ASGI middleware
cannot know the route; frameworks set it, as the HTTP semantic conventions
say: https://opentelemetry.io/docs/specs/semconv/http/http-spans/). Without
OpenTelemetry this costs one module-global read per exchange: the import is
tried once. See docs/ecosystem.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .types import Scope

if TYPE_CHECKING:
    from .router import Route

# None: not tried yet; False: not installed; else opentelemetry.trace. Read by
# the exchange before it calls name_span, so that without OpenTelemetry an
# exchange pays one module-global read.
TRACE: Any = None
# opentelemetry.context.get_current, once TRACE is the module
_current_context: Any = None


def _load() -> Any:
    global TRACE, _current_context
    try:
        from opentelemetry import context, trace
    except ImportError:
        TRACE = False
    else:
        _current_context = context.get_current
        TRACE = trace
    return TRACE


def routed(scope: Scope, route: Route, method: str) -> None:
    """Put the matched route into the scope and name the current server span
    (``method`` empty for a WebSocket, whose spans are named by path alone)."""
    scope["route"] = route
    scope["endpoint"] = route.handler
    if TRACE is not False:
        name_span(scope, route, method)


def name_span(scope: Scope, route: Route, method: str) -> None:
    """With OpenTelemetry: ``http.route`` and the span name, on a recording span."""
    trace = TRACE
    if trace is None:
        trace = _load()
    if trace is False:
        return
    # OpenTelemetry installed is not tracing set up: while nothing put a value
    # in the current context there is no span, and one call says so where
    # get_current_span() and is_recording() take five.
    current = _current_context()
    if not current:
        return
    span = trace.get_current_span(current)
    if not span.is_recording():
        return
    template = route.path_format
    root = scope.get("root_path")
    if root:
        template = root + template
    span.set_attribute("http.route", template)
    span.update_name(f"{method} {template}" if method else template)


__all__ = ["routed"]
