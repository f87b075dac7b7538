"""Sessions: log in and out with a form, a visit counter, a one-time message.

python -m examples.sessions.app                  # sessions in memory
REDIS_URL=redis://127.0.0.1:6379/0 python -m examples.sessions.app   # in Redis

Then open http://127.0.0.1:8000/ and log in as ada / lovelace.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os

import simples
from simples import HTTPConnection
from simples.sessions import SessionStore

# A real app keeps salted password hashes in a database (argon2, bcrypt or
# hashlib.scrypt); this one hashes a demo password at start.
_SALT = os.urandom(16)


def _hash(password: str) -> bytes:
    return hashlib.scrypt(password.encode(), salt=_SALT, n=2**14, r=8, p=1)


USERS = {"ada": _hash("lovelace")}
_NOBODY = _hash("")  # compared against for unknown users, so timing says nothing


def check_password(user: str, password: str) -> bool:
    expected = USERS.get(user, _NOBODY)
    return hmac.compare_digest(_hash(password), expected) and user in USERS


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>simples sessions</title></head>
<body>
{flash}
{content}
<p>Visits in this session: {visits}</p>
</body>
</html>
"""

LOGIN_FORM = """<h1>Log in</h1>
<form method="post" action="/login">
  <label>User <input name="user" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button>Log in</button>
</form>
<p>(try ada / lovelace)</p>"""

WELCOME = """<h1>Hello, {user}</h1>
<form method="post" action="/logout"><button>Log out</button></form>"""


def default_store() -> SessionStore:
    """Redis when ``REDIS_URL`` is set (every worker shares the sessions), else memory."""
    url = os.environ.get("REDIS_URL")
    return simples.RedisStore(url) if url else simples.MemoryStore()


def create(store: SessionStore | None = None) -> simples.Server:
    store = store if store is not None else default_store()
    server = simples.server()
    server.logger()
    server.session(store=store, timeout=1800)
    aclose = getattr(store, "aclose", None)
    if aclose is not None:
        server.on("stop", aclose)

    def session_of(connection: HTTPConnection) -> simples.Session:
        session = connection.session
        assert session is not None, "sessions are on for every route of this server"
        return session

    @server.get("/")
    async def home(connection: HTTPConnection) -> None:
        session = session_of(connection)
        session["visits"] = session.get("visits", 0) + 1
        flash = session.pop("flash", None)  # shown once, then gone
        user = session.get("user")
        content = WELCOME.format(user=html.escape(user)) if user else LOGIN_FORM
        connection.cache({"no_store": True})  # a personal page: never cache it
        connection.type("html")
        await connection.send(
            PAGE.format(
                flash=f"<p><em>{html.escape(flash)}</em></p>" if flash else "",
                content=content,
                visits=session["visits"],
            )
        )

    @server.post("/login")
    async def login(connection: HTTPConnection) -> None:
        fields = (await connection.body().form()).fields
        user, password = fields.get("user", ""), fields.get("password", "")
        session = session_of(connection)
        if check_password(user, password):
            # A new id at every change of privilege: an id someone planted or saw
            # before the login is worth nothing afterwards.
            session.regenerate()
            session["user"] = user
            session["flash"] = "Welcome back!"
        else:
            session["flash"] = "Wrong user name or password."
        # 303: the browser follows with a GET, so a reload does not post again.
        await connection.redirect("/", 303)

    @server.post("/logout")
    async def logout(connection: HTTPConnection) -> None:
        session = session_of(connection)
        await session.destroy()  # the data is gone from the store, the cookie expires
        session["flash"] = "You have been logged out."  # starts a new, anonymous session
        await connection.redirect("/", 303)

    @server.error(503)
    async def unavailable(connection: HTTPConnection) -> str:
        connection.header("Retry-After", "5")
        return "Sessions are unavailable for a moment; please try again."

    return server


server = create()

if __name__ == "__main__":
    server.listen(8000)
