"""simples with its sessions in Redis (``RedisStore`` at ``$REDIS_URL``): only
the ``session`` endpoint, the same handler as ``simples_app``'s."""

import os

from bench_session import SEED, SESSION_ID

import simples

app = simples.server()
store = simples.RedisStore(os.environ["REDIS_URL"], prefix="bench:session:")
app.session(store=store)


async def seed():
    await store.set(SESSION_ID, dict(SEED), 3600)


app.on("start", seed)
app.on("stop", store.aclose)


@app.get("/session")
async def session_counter(connection):
    session = connection.session
    session["n"] = session.get("n", 0) + 1
    return {"n": session["n"]}
