"""CORS: an API that one other origin may call from the browser, with cookies.

python -m examples.cors.app

Then open http://localhost:8000/ (localhost, not 127.0.0.1). The page calls the
API at http://127.0.0.1:8000/api/...: another host name is another origin, so
the browser sends a preflight for the PUT and checks every answer's
Access-Control-* headers. Open http://127.0.0.1:8000/ instead and the calls are
same-origin; change ALLOWED below and watch the browser refuse them.
"""

from __future__ import annotations

from typing import Any

import simples
from simples import HTTPConnection, HTTPError

PORT = 8000
ALLOWED = [f"http://localhost:{PORT}"]

server = simples.server()
server.logger()

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>CORS demo</title>
<h1>CORS demo</h1>
<p>This page's origin: <code id="origin"></code></p>
<button id="get">GET /api/counter</button>
<button id="put">PUT /api/counter (preflighted)</button>
<pre id="out"></pre>
<script>
const api = "http://127.0.0.1:__PORT__/api/counter";
const out = document.getElementById("out");
document.getElementById("origin").textContent = location.origin;
async function call(options) {
  try {
    const response = await fetch(api, {credentials: "include", ...options});
    out.textContent = response.status + " " + await response.text()
      + "\\nX-Request-Id (exposed): " + response.headers.get("X-Request-Id");
  } catch (error) {
    out.textContent = "blocked by the browser: " + error;
  }
}
document.getElementById("get").onclick = () => call({});
document.getElementById("put").onclick = () => call({
  method: "PUT",
  headers: {"Content-Type": "application/json", "X-Client": "demo"},
  body: JSON.stringify({step: 2}),
});
</script>
""".replace("__PORT__", str(PORT))


@server.get("/")
async def page(connection: HTTPConnection) -> None:
    await connection.type("html").send(PAGE)


api = server.router("/api")
# Only the API speaks CORS. Listed origins get credentials (cookies); the
# browser may send X-Client and read X-Request-Id; preflights are cached 10 min.
api.cors(
    origins=ALLOWED,
    credentials=True,
    methods=["GET", "PUT"],
    headers=["X-Client"],
    expose=["X-Request-Id"],
    max_age=600,
)
counter = {"value": 0}


@api.get("/counter")
async def read(connection: HTTPConnection) -> dict[str, Any]:
    connection.header("X-Request-Id", "r-1")
    return counter


@api.put("/counter")
async def bump(connection: HTTPConnection) -> dict[str, Any]:
    body = await connection.body().json()
    step = body.get("step") if isinstance(body, dict) else None
    if not isinstance(step, int):
        raise HTTPError(400)
    counter["value"] += step
    connection.cookie("last_step", str(step), http_only=True, same_site="Lax")
    connection.header("X-Request-Id", "r-2")
    return counter


if __name__ == "__main__":
    server.listen(PORT)
