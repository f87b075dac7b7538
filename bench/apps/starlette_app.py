"""Starlette, written the way its documentation shows (routes list, JSONResponse)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


async def plaintext(request: Request) -> Response:
    return PlainTextResponse("Hello, World!")


async def json_(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


async def user(request: Request) -> Response:
    uid = request.path_params["id"]
    response = JSONResponse(
        {
            "id": uid,
            "q": request.query_params.get("q"),
            "session": request.cookies.get("session"),
            "token": request.headers.get("x-token"),
        }
    )
    response.set_cookie("seen", "1", httponly=True, path="/")
    response.headers["X-User"] = uid
    return response


app = Starlette(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", json_),
        Route("/user/{id}", user),
    ]
)
