"""Falcon (falcon.asgi), written the way its documentation shows (resources, resp.media)."""

import falcon
import falcon.asgi
from many_routes import ROUTES, route_template


class Plaintext:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "Hello, World!"


class Json:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"message": "Hello, World!"}


class User:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, id: str) -> None:
        resp.media = {
            "id": id,
            "q": req.get_param("q"),
            "session": req.cookies.get("session"),
            "token": req.get_header("X-Token"),
        }
        # Falcon marks cookies Secure by default; the benchmark runs on plain HTTP.
        resp.set_cookie("seen", "1", http_only=True, path="/", secure=False)
        resp.set_header("X-User", id)


class Items:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        data = await req.get_media()
        resp.media = {"name": data["name"], "tags": len(data["tags"]), "stock": sum(data["stock"])}


class Routed:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, id: str) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = id


app = falcon.asgi.App()
app.add_route("/plaintext", Plaintext())
app.add_route("/json", Json())
app.add_route("/user/{id}", User())
app.add_route("/items", Items())
routed = Routed()
for i in range(ROUTES):
    app.add_route(route_template(i), routed)
