"""simples, written against the documented API."""

import bench_files
from bench_session import SEED, SESSION_ID
from many_routes import ROUTES
from page_data import PAGE, TEMPLATES

import simples

app = simples.server()
app.engine(simples.Jinja(TEMPLATES))

files = app.router("/static")
files.static(str(bench_files.ensure()))
compressed = app.router("/compressed")
compressed.compression(level=6)


@compressed.get("/report")
async def report(connection):
    return bench_files.REPORT


# What a typical API router turns on: every exchange goes through the features.
stack = app.router("/stack")
stack.cors(origins=["https://example.com"])
stack.compression()
stack.timeout(30)
stack.logger(log=lambda line: None)
stack.session(store=simples.MemoryStore())


@stack.get("/json")
async def stack_json(connection):
    return {"message": "Hello, World!"}


@app.get("/template")
async def template(connection):
    await connection.render("products.html", PAGE)


@app.get("/plaintext")
async def plaintext(connection):
    return "Hello, World!"


@app.get("/json")
async def json_(connection):
    return {"message": "Hello, World!"}


@app.get("/user/:id")
async def user(connection):
    uid = connection.params["id"]
    connection.cookie("seen", "1", http_only=True, path="/").header("X-User", uid)
    return {
        "id": uid,
        "q": connection.query.get("q"),
        "session": connection.cookies.get("session"),
        "token": connection.headers.get("x-token"),
    }


@app.post("/items")
async def items(connection):
    data = await connection.body().json()
    return {"name": data["name"], "tags": len(data["tags"]), "stock": sum(data["stock"])}


@app.post("/upload")
async def upload(connection):
    form = await connection.body().form()
    file = form.files["file"]
    return {"title": form.fields["title"], "filename": file.filename, "size": file.size}


# The ``session`` endpoint: sessions only under /session, so the other
# endpoints pay nothing for them. MemoryStore, seeded at start (bench_session).
store = simples.MemoryStore()
sessions = app.router("/session")
sessions.session(store=store)


async def seed():
    await store.set(SESSION_ID, dict(SEED), 3600)


app.on("start", seed)


@sessions.get("")
async def session_counter(connection):
    session = connection.session
    session["n"] = session.get("n", 0) + 1
    return {"n": session["n"]}


async def routed(connection):
    return connection.params["id"]


for i in range(ROUTES):
    app.get(f"/r{i}/items/:id")(routed)
