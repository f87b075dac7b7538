"""simples, written against the SPEC API."""

import simples

app = simples.server()


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
