"""The routes scenario over the wire (issue #15): every app registers ROUTES
pattern routes ``/r{i}/items/{id}`` after its own, each answering the id as
text; the endpoints ``route_1``, ``route_100`` and ``route_1000`` request the
first, the 100th and the last of them. A router that scans its routes in order
pays for the position; a lookup structure does not."""

ROUTES = 1000


def route_template(i: int) -> str:
    """Route i in the ``{id}`` syntax (Starlette, Falcon); simples and BlackSheep
    write ``:id``."""
    return f"/r{i}/items/{{id}}"


def probe(i: int) -> str:
    return f"/r{i}/items/42"
