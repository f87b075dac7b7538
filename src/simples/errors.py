"""The one exception a handler raises to answer with an HTTP error status."""

from http import HTTPStatus


class HTTPError(Exception):
    """Raise ``HTTPError(404)`` anywhere in a handler or middleware to run the
    nearest error route for that status (docs/routing.md)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        if not 400 <= code <= 599:
            raise ValueError(f"HTTPError needs a status in 400-599, got {code}")
        self.code = code
        self.message = message if message is not None else reason_phrase(code)
        super().__init__(code, self.message)


def reason_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error" if code >= 400 else "Unknown"
