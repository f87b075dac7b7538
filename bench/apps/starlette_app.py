"""Starlette, written the way its documentation shows (routes list, JSONResponse)."""

import io

import bench_files
import multipart
from bench_session import STARLETTE_COOKIE, STARLETTE_SECRET
from many_routes import ROUTES, route_template
from page_data import PAGE, TEMPLATES
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

templates = Jinja2Templates(directory=TEMPLATES)


async def template(request: Request) -> Response:
    return templates.TemplateResponse(request, "products.html", PAGE)


async def report(request: Request) -> Response:
    return JSONResponse(bench_files.REPORT)



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


async def items(request: Request) -> Response:
    data = await request.json()
    return JSONResponse(
        {"name": data["name"], "tags": len(data["tags"]), "stock": sum(data["stock"])}
    )


async def upload(request: Request) -> Response:
    # Starlette's request.form() needs python-multipart, whose `multipart` shim
    # would shadow the `multipart` 2.x package simples uses. So: the raw body,
    # parsed by that same package, files kept in memory up to 1 MiB as simples
    # does (bench/README.md).
    _, options = multipart.parse_options_header(request.headers["content-type"])
    body = await request.body()
    parser = multipart.MultipartParser(
        io.BytesIO(body), options["boundary"], content_length=len(body),
        spool_limit=1 << 20, memory_limit=16 << 20,
    )  # fmt: skip
    fields, files = {}, {}
    for part in parser.parts():
        if part.filename is None:
            fields[part.name] = part.value
        else:
            files[part.name] = part
    file = files["file"]
    answer = {"title": fields["title"], "filename": file.filename, "size": file.size}
    for part in parser.parts():
        part.close()
    return JSONResponse(answer)


async def session_counter(request: Request) -> Response:
    session = request.session
    session["n"] = session.get("n", 0) + 1
    return JSONResponse({"n": session["n"]})


# Starlette's sessions are client-side: the data itself travels in a signed
# cookie (itsdangerous), there is no store. The middleware is on this route
# only, so the other endpoints pay nothing for it.
session_middleware = Middleware(
    SessionMiddleware, secret_key=STARLETTE_SECRET, session_cookie=STARLETTE_COOKIE
)

app = Starlette(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", json_),
        Route("/user/{id}", user),
        Route("/items", items, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/session", session_counter, middleware=[session_middleware]),
        Route("/template", template),
        Mount("/static", app=StaticFiles(directory=bench_files.ensure())),
        # gzip level 6 on both sides (Starlette's default is 9); the mount keeps
        # the compression cost off the other endpoints, as simples' sub-router does
        # simples' `stack` router: CORS, compression and sessions on every
        # request (Starlette has no access log or idle timeout of its own)
        Mount(
            "/stack",
            app=Starlette(
                routes=[Route("/json", json_)],
                middleware=[
                    Middleware(CORSMiddleware, allow_origins=["https://example.com"]),
                    Middleware(GZipMiddleware),
                    session_middleware,
                ],
            ),
        ),
        Mount(
            "/compressed",
            app=GZipMiddleware(
                Starlette(routes=[Route("/report", report)]), minimum_size=1024, compresslevel=6
            ),
        ),
    ]
)


async def routed(request: Request) -> Response:
    return PlainTextResponse(request.path_params["id"])


app.router.routes.extend(Route(route_template(i), routed) for i in range(ROUTES))
