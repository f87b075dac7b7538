"""BlackSheep, written the way its documentation shows (router decorators, json())."""

from blacksheep import Application, Cookie, Request, Response, json, text
from many_routes import ROUTES

app = Application()
get = app.router.get
post = app.router.post


@get("/plaintext")
async def plaintext() -> Response:
    return text("Hello, World!")


@get("/json")
async def json_() -> Response:
    return json({"message": "Hello, World!"})


@get("/user/:id")
async def user(request: Request) -> Response:
    uid = request.route_values["id"]
    q = request.query.get("q")
    token = request.get_first_header(b"X-Token")
    response = json(
        {
            "id": uid,
            "q": q[0] if q else None,
            "session": request.cookies.get("session"),
            "token": token.decode() if token is not None else None,
        }
    )
    response.set_cookie(Cookie("seen", "1", http_only=True, path="/"))
    response.add_header(b"X-User", uid.encode())
    return response


@post("/items")
async def items(request: Request) -> Response:
    data = await request.json()
    return json({"name": data["name"], "tags": len(data["tags"]), "stock": sum(data["stock"])})


async def routed(request: Request) -> Response:
    return text(request.route_values["id"])


for i in range(ROUTES):
    get(f"/r{i}/items/:id")(routed)
