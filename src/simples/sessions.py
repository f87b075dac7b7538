"""Server-side sessions: the ``Session`` mapping, its stores and the per-router policy.

The browser only ever holds an opaque id; the data lives in a store (memory or
Redis) as JSON. See ``docs/sessions.md`` for the user-facing rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from simples.errors import HTTPError
from simples.feature import Feature
from simples.http.cookies import serialize_cookie

if TYPE_CHECKING:
    from simples.connection import HTTPConnection
    from simples.router import Router

__all__ = [
    "MemoryStore",
    "MergingStore",
    "RedisStore",
    "Session",
    "SessionManager",
    "SessionStore",
    "SessionTooLarge",
    "StoreUnavailable",
]

T = TypeVar("T")

logger = logging.getLogger("simples")

# 32 random bytes = 256 bits, well past the 128 the spec asks for. Base64url
# without padding gives 43 characters; the last one carries only 4 bits, so just
# 16 of the 64 letters can appear there. Checking that rejects hand-made ids that
# token_urlsafe could never have produced.
_ID_BYTES = 32
_ID_LENGTH = 43
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def _new_id() -> str:
    return secrets.token_urlsafe(_ID_BYTES)


def _valid_id(value: str) -> bool:
    # The length test first keeps a 10 KB garbage cookie as cheap as a short one.
    return len(value) == _ID_LENGTH and _ID_PATTERN.fullmatch(value) is not None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class StoreUnavailable(HTTPError):
    """The session store could not be reached in time; the request cannot be served.

    It is an ``HTTPError(503)``: wherever it escapes (loading, saving, or
    ``await session.destroy()`` in a handler), the framework answers 503 through
    the error routes, so a client is never told "done" about a session write that
    did not happen.
    """

    def __init__(self, message: str = "the session store is unavailable") -> None:
        super().__init__(503, message)

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- stores


@runtime_checkable
class SessionStore(Protocol):
    """What the framework needs from a session store.

    Ids are opaque strings. ``data`` is a dict of JSON values; a store must hand
    back an equal dict from ``get`` and must not share it with the caller (encode
    it, as both built-in stores do). ``timeout`` is in whole seconds; the entry
    disappears that long after the last ``set`` or ``touch``. A non-positive
    timeout removes the entry. ``touch`` and ``remove`` of an unknown id do
    nothing. A store that cannot be reached raises ``StoreUnavailable``.
    """

    async def get(self, id: str) -> dict[str, Any] | None: ...

    async def set(self, id: str, data: dict[str, Any], timeout: int) -> None: ...

    async def touch(self, id: str, timeout: int) -> None: ...

    async def remove(self, id: str) -> None: ...


@runtime_checkable
class MergingStore(SessionStore, Protocol):
    """Optional extension: a store that can merge one request's changes atomically.

    Without it the manager merges with ``get`` then ``set``, which is atomic for
    an in-process store but leaves a short window for lost updates with a
    networked one.
    """

    async def merge(
        self,
        id: str,
        changes: dict[str, Any],
        removed: Collection[str],
        timeout: int,
        new_id: str,
    ) -> bool:
        """As one atomic step: take the data under ``id``, delete the keys in
        ``removed``, set those in ``changes``, store the result under ``new_id``
        for ``timeout`` (> 0) seconds, and drop ``id`` when it differs from
        ``new_id``. Return False, writing nothing, when ``id`` does not exist."""
        ...


class _Entry:
    __slots__ = ("expires", "payload", "timeout")

    def __init__(self, expires: float, timeout: int, payload: str) -> None:
        self.expires = expires
        self.timeout = timeout
        self.payload = payload


# Expired entries removed per write. Anything above one per write outpaces the
# rate at which writes can create entries, so memory stays bounded by live
# sessions while no single call scans the store.
_PURGE_BATCH = 16


class MemoryStore:
    """Sessions in this process's memory: the default, for one worker process.

    Entries are kept JSON-encoded, so a dict mutated after ``set`` (or one
    returned by ``get``) never changes what is stored, and a value that is not
    JSON fails at ``set`` exactly as it would with Redis. At most ``max_entries``
    sessions are kept; when full, the one closest to expiring makes room.
    ``clock`` (seconds, monotonic) is there for tests.
    """

    def __init__(
        self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive int, got {max_entries!r}")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # One queue per distinct timeout: within a queue, entries were last
        # written in clock order and share a timeout, so they also expire in
        # queue order. The front of each queue is therefore its soonest expiry,
        # which makes purging and eviction O(1) without a heap of stale records.
        self._queues: dict[int, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        """Entries held, counting expired ones not purged yet."""
        return len(self._entries)

    async def get(self, id: str) -> dict[str, Any] | None:
        entry = self._entries.get(id)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(id)
            return None
        data: dict[str, Any] = json.loads(entry.payload)
        return data

    async def set(self, id: str, data: dict[str, Any], timeout: int) -> None:
        payload = _dumps(data)  # before any change, so a TypeError leaves no trace
        if timeout <= 0:
            self._drop(id)
            return
        now = self._clock()
        self._purge(now)
        if id not in self._entries and len(self._entries) >= self.max_entries:
            self._evict_one()
        self._place(id, now + timeout, timeout, payload)

    async def touch(self, id: str, timeout: int) -> None:
        entry = self._entries.get(id)
        if entry is None:
            return
        now = self._clock()
        if entry.expires <= now or timeout <= 0:
            self._drop(id)
            return
        self._purge(now)
        self._place(id, now + timeout, timeout, entry.payload)

    async def remove(self, id: str) -> None:
        self._drop(id)

    def _place(self, id: str, expires: float, timeout: int, payload: str) -> None:
        old = self._entries.get(id)
        if old is not None and old.timeout != timeout:
            self._unqueue(id, old.timeout)
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = OrderedDict()
        queue[id] = None
        queue.move_to_end(id)
        self._entries[id] = _Entry(expires, timeout, payload)

    def _drop(self, id: str) -> None:
        entry = self._entries.pop(id, None)
        if entry is not None:
            self._unqueue(id, entry.timeout)

    def _unqueue(self, id: str, timeout: int) -> None:
        queue = self._queues[timeout]
        del queue[id]
        if not queue:
            del self._queues[timeout]

    def _purge(self, now: float) -> None:
        budget = _PURGE_BATCH
        for queue in list(self._queues.values()):
            while budget and queue:
                id = next(iter(queue))
                if self._entries[id].expires > now:
                    break
                self._drop(id)
                budget -= 1
            if not budget:
                return

    def _evict_one(self) -> None:
        soonest: str | None = None
        soonest_expires = 0.0
        for queue in self._queues.values():
            id = next(iter(queue))
            expires = self._entries[id].expires
            if soonest is None or expires < soonest_expires:
                soonest, soonest_expires = id, expires
        if soonest is not None:
            self._drop(soonest)


# One Redis hash per session: the field "v" marks the format (and keeps an empty
# session in existence); each session key is a field named by the key's JSON
# string (quotes included, so any str works and none can be "v") holding the
# JSON of its value. Keys being separate fields is what lets a merge run inside
# Redis as one atomic script, without reading and rewriting the whole session
# and without optimistic-locking retries.
_FORMAT_FIELD = "v"
_FORMAT = "1"

# KEYS[1] the session, KEYS[2] where it ends up; ARGV[1] the timeout, ARGV[2] the
# number of fields to delete, then those fields, then field/value pairs to set.
# A key that is not a session of this format counts as missing: nothing written.
_MERGE_SCRIPT = """
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
if redis.call('HGET', KEYS[1], 'v') ~= '1' then return 0 end
local removed = tonumber(ARGV[2])
for i = 3, removed + 2 do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = removed + 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if KEYS[1] ~= KEYS[2] then redis.call('RENAME', KEYS[1], KEYS[2]) end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""


def _fields(data: Mapping[Any, Any]) -> dict[str, str]:
    """The hash fields of ``data``; raises TypeError before anything is written."""
    fields = {_FORMAT_FIELD: _FORMAT}
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, got {type(key).__name__}")
        fields[_dumps(key)] = _dumps(value)
    return fields


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _from_fields(raw: Mapping[Any, Any]) -> dict[str, Any] | None:
    if not raw:
        return None
    data: dict[str, Any] = {}
    try:
        if _text(raw.get(_FORMAT_FIELD) or raw.get(_FORMAT_FIELD.encode()) or "") != _FORMAT:
            return None  # not a session of ours
        for field, value in raw.items():
            name = _text(field)
            if name.startswith('"'):
                data[json.loads(name)] = json.loads(value)
    except ValueError:
        # Damaged: an unreadable session is as good as none, and the client gets
        # a fresh id rather than an error on every request.
        return None
    return data


class RedisStore:
    """Sessions in Redis, shared by every worker process and machine.

    Each session is one hash ``f"{prefix}{id}"``: a field per session key
    holding the JSON of its value (see ``_fields``), with an expiry set by
    ``EXPIRE``. A save merges the request's changes inside Redis with one Lua
    script: atomic, one round trip, no retries however many requests of one
    session run at once. Every operation either finishes within ``timeout``
    seconds or raises ``StoreUnavailable``; the pool reconnects by itself once
    Redis is back. ``redis_options`` go to
    ``redis.asyncio.BlockingConnectionPool`` (for example ``max_connections``,
    ``password``, ``ssl_ca_certs``).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "simples:session:",
        timeout: float = 2.0,
        **redis_options: Any,
    ) -> None:
        try:
            from redis.asyncio import BlockingConnectionPool, Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "RedisStore needs the redis package: pip install 'simples-web[redis]'"
            ) from exc
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.prefix = prefix
        self.timeout = float(timeout)
        options: dict[str, Any] = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            # One immediate retry lets a pooled connection that died with a
            # restarted server be replaced transparently; more retries (and
            # redis-py's default backoff) would blow the time budget.
            "retry": Retry(NoBackoff(), 1),
            # Waiting for a free connection beats failing a burst of requests;
            # the deadline in _run still bounds the wait.
            "max_connections": 100,
            "timeout": self.timeout,
        }
        options.update(redis_options)
        self._redis = Redis.from_pool(BlockingConnectionPool.from_url(url, **options))
        # redis-py runs it with EVALSHA and loads it again after a Redis restart.
        self._merge_script = self._redis.register_script(_MERGE_SCRIPT)

    async def get(self, id: str) -> dict[str, Any] | None:
        from redis.exceptions import ResponseError

        key = self.prefix + id

        async def read() -> Any:
            try:
                return await self._redis.hgetall(key)
            except ResponseError as exc:
                if str(exc).startswith("WRONGTYPE"):
                    return None  # something else lives under that name: not ours
                raise

        return _from_fields(await self._run(read))

    async def set(self, id: str, data: dict[str, Any], timeout: int) -> None:
        fields = _fields(data)
        if timeout <= 0:
            await self.remove(id)
            return
        key = self.prefix + id

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.expire(key, timeout)
                await pipe.execute()

        await self._run(write)

    async def touch(self, id: str, timeout: int) -> None:
        if timeout <= 0:
            await self.remove(id)
            return
        await self._run(lambda: self._redis.expire(self.prefix + id, timeout))

    async def remove(self, id: str) -> None:
        await self._run(lambda: self._redis.delete(self.prefix + id))

    async def merge(
        self,
        id: str,
        changes: dict[str, Any],
        removed: Collection[str],
        timeout: int,
        new_id: str,
    ) -> bool:
        if timeout <= 0:
            raise ValueError(f"merge needs a positive timeout, got {timeout!r}")
        args: list[str | int] = [timeout, len(removed)]
        args.extend(_dumps(name) for name in removed)
        for name, value in _fields(changes).items():
            if name != _FORMAT_FIELD:
                args += (name, value)
        keys = [self.prefix + id, self.prefix + new_id]
        done = await self._run(lambda: self._merge_script(keys=keys, args=args))
        return bool(done)

    async def aclose(self) -> None:
        """Close the connections; the store must not be used afterwards."""
        await self._redis.aclose()

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T:
        from redis.exceptions import RedisError

        try:
            # Socket timeouts alone do not bound the total: a retry or a wait for
            # a pooled connection adds to them. One deadline covers everything.
            async with asyncio.timeout(self.timeout):
                return await operation()
        except TimeoutError as exc:
            raise StoreUnavailable(f"Redis did not answer within {self.timeout:g}s") from exc
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc


# --------------------------------------------------------------------------- session


class SavePlan:
    """One request's changes to a session, as ``SessionManager.commit`` saves them."""

    __slots__ = (
        "data",
        "deleted",
        "destroyed",
        "regenerated",
        "replace",
        "source",
        "written",
    )

    def __init__(
        self,
        *,
        source: str | None,
        data: dict[str, Any],
        written: set[str],
        deleted: set[str],
        replace: bool,
        regenerated: bool,
        destroyed: bool,
    ) -> None:
        #: The id whose stored data the session mirrors (None: nothing stored).
        self.source = source
        self.data = data
        self.written = written
        self.deleted = deleted
        self.replace = replace
        self.regenerated = regenerated
        self.destroyed = destroyed

    @property
    def touched_only(self) -> bool:
        """Nothing to write: at most the expiry to renew."""
        return not (self.written or self.deleted or self.replace or self.regenerated)


class SessionTooLarge(HTTPError):
    """The application stored more in a session than ``max_size`` allows: a 500
    through the error routes, the stored session left as it was."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            500,
            f"session data is {size} bytes of JSON, over the session max_size of {limit}: "
            "keep large data elsewhere (a database, a file) and its key in the session",
        )


class Session(MutableMapping[str, Any]):
    """One client's session: a dict of JSON values plus an ``id``.

    Created by ``SessionManager.load``. It records what the request changed so
    that ``commit`` writes only those keys (see the concurrency rule in
    ``docs/sessions.md``). Lists and dicts read from it may be mutated in place:
    the change is noticed at commit by comparing with their JSON at first read.
    """

    __slots__ = (
        "_data",
        "_deleted",
        "_destroyed",
        "_id",
        "_is_new",
        "_read",
        "_regenerated",
        "_replace",
        "_snapshots",
        "_source",
        "_store",
        "_written",
    )

    def __init__(
        self, store: SessionStore, id: str | None, data: dict[str, Any], *, is_new: bool
    ) -> None:
        self._store = store
        # None: a random one is drawn when first needed (most new sessions are
        # never written, and a draw is a system call)
        self._id = id
        self._data = data
        self._is_new = is_new
        self._read = False
        # The id whose stored data this session mirrors; None when nothing is
        # stored for it (a new session, or one just destroyed).
        self._source: str | None = None if is_new else id
        self._reset_changes()

    def _reset_changes(self) -> None:
        self._written: set[str] = set()
        self._deleted: set[str] = set()
        self._snapshots: dict[str, str] = {}
        self._replace = False
        self._regenerated = False
        self._destroyed = False

    @property
    def id(self) -> str:
        id = self._id
        if id is None:
            id = self._id = _new_id()
        return id

    @property
    def is_new(self) -> bool:
        """True when the client brought no usable session and this one was created."""
        return self._is_new

    @property
    def read(self) -> bool:
        """True once the request looked at the data: the answer may depend on
        whose session it is (the response then varies on Cookie)."""
        return self._read

    @property
    def pristine(self) -> bool:
        """New in this request and left alone: nothing to save, no cookie."""
        return self._source is None and not (
            self._destroyed
            or self._regenerated
            or self._replace
            or self._written
            or self._deleted
            or self._snapshots
        )

    @property
    def changed(self) -> bool:
        """True once the data was modified, or the session regenerated or destroyed."""
        return (
            self._destroyed
            or self._regenerated
            or self._replace
            or bool(self._written or self._deleted)
            or bool(self._mutated_in_place())
        )

    def __getitem__(self, key: str) -> Any:
        self._read = True
        value = self._data[key]
        # Only containers can change behind our back; scalars are immutable.
        if type(value) in (list, dict) and key not in self._snapshots and key not in self._written:
            # A custom store breaking the JSON contract must not make reads fail;
            # such a value just is not watched for in-place changes.
            with contextlib.suppress(TypeError, ValueError):
                self._snapshots[key] = _dumps(value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        self._read = True
        return self[key] if key in self._data else default

    def __contains__(self, key: object) -> bool:
        self._read = True
        return key in self._data

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            # JSON would silently turn 1 into "1" and the value would come back
            # under another key.
            raise TypeError(f"session keys must be str, got {type(key).__name__}")
        self._data[key] = value
        self._written.add(key)
        self._deleted.discard(key)
        self._snapshots.pop(key, None)

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._deleted.add(key)
        self._written.discard(key)
        self._snapshots.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        self._read = True
        return iter(self._data)

    def __len__(self) -> int:
        self._read = True
        return len(self._data)

    def clear(self) -> None:
        """Empty the session. Unlike deleting keys one by one, the saved result is
        exactly empty, even of keys another request added meanwhile."""
        self._data.clear()
        self._written.clear()
        self._deleted.clear()
        self._snapshots.clear()
        self._replace = True

    def regenerate(self) -> None:
        """Give the session a new id, keeping its data (call it after a login).

        The old id stops working when the response is committed."""
        self._id = None  # drawn when needed
        self._regenerated = True

    async def destroy(self) -> None:
        """Remove the session from the store now and expire the client's cookie.

        The object stays usable: writing to it afterwards starts a new session
        with a new id."""
        if self._source is not None:
            try:
                await self._store.remove(self._source)
            except StoreUnavailable as exc:
                logger.error("session store unavailable, answering 503: %s", exc)
                raise
        self._data.clear()
        self._reset_changes()
        self._source = None
        self._id = None  # drawn when needed
        self._destroyed = True

    def plan(self) -> SavePlan:
        """What committing this request's work means (read by ``SessionManager``)."""
        return SavePlan(
            source=self._source,
            data=self._data,
            written=self._written | self._mutated_in_place(),
            deleted=self._deleted,
            replace=self._replace,
            regenerated=self._regenerated,
            destroyed=self._destroyed,
        )

    def saved(self, id: str) -> None:
        """The store now holds this session under ``id`` (after a commit)."""
        self._id = id
        self._source = id
        self._reset_changes()

    def _mutated_in_place(self) -> set[str]:
        mutated = set()
        for key, before in self._snapshots.items():
            try:
                if _dumps(self._data[key]) != before:
                    mutated.add(key)
            except (TypeError, ValueError):
                # Now holds something JSON cannot encode: a change, and commit
                # reports it properly.
                mutated.add(key)
        return mutated

    def __repr__(self) -> str:
        # The id is a bearer credential; keep it out of logs and tracebacks.
        shown = "(none yet)" if self._id is None else self._id[:6] + "…"
        return f"<Session {shown} keys={len(self._data)} new={self._is_new}>"


# --------------------------------------------------------------------------- manager


def _check_json(data: dict[str, Any], keys: Collection[str]) -> None:
    for key in keys:
        try:
            _dumps(data[key])
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"session[{key!r}] cannot be saved: {exc}; session values must be JSON "
                "(dict, list, str, int, float, bool or None)"
            ) from exc


_SAME_SITE = {"lax", "strict", "none"}


class SessionManager:
    """The session policy of a router: where sessions live and how the cookie looks.

    The connection calls ``load`` before the middlewares and ``commit`` just
    before the response headers go out, adding the Set-Cookie value it returns.
    ``secure=None`` marks the cookie Secure when the effective protocol is
    https, and always when the browser would refuse it otherwise
    (``same_site="none"``, ``__Secure-`` or ``__Host-`` names).
    """

    def __init__(
        self,
        *,
        store: SessionStore | None = None,
        timeout: int = 3600,
        cookie: str = "_session",
        http_only: bool = True,
        same_site: str = "lax",
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        max_size: int = 64 << 10,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0:
            raise ValueError(f"max_size must be bytes (an int >= 0, 0 = no cap), got {max_size!r}")
        self.max_size = max_size
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
            raise ValueError(f"timeout must be a positive int of seconds, got {timeout!r}")
        if not isinstance(same_site, str) or same_site.lower() not in _SAME_SITE:
            raise ValueError(f"same_site must be 'lax', 'strict' or 'none', got {same_site!r}")
        if not isinstance(cookie, str):
            raise ValueError(f"cookie must be a str, got {cookie!r}")
        self.store: SessionStore = store if store is not None else default_store()
        self.timeout = timeout
        self.cookie = cookie
        self.http_only = http_only
        self.same_site = same_site
        self.path = path
        self.domain = domain
        self.secure = secure
        merge = getattr(self.store, "merge", None)
        self._merge: Callable[..., Awaitable[bool]] | None = merge if callable(merge) else None
        # The built-in stores encode everything before they write anything, so a
        # value JSON cannot take fails there with nothing stored; the manager only
        # names the key afterwards. Any other store is checked up front.
        self._store_checks_json = type(self.store) in (MemoryStore, RedisStore)
        must_be_secure = same_site.lower() == "none" or cookie.lower().startswith(
            ("__secure-", "__host-")
        )
        # The attributes never change per request, only Secure may, so both
        # variants are rendered once here; that also rejects a bad name, path or
        # domain when the router is configured rather than on the first request.
        self._variants: dict[bool, tuple[str, str]] = {}
        for https in (False, True):
            effective = secure if secure is not None else (https or must_be_secure)
            self._variants[https] = (
                self._render(_new_id(), effective)[len(cookie) + 1 + _ID_LENGTH :],
                self._render(None, effective),
            )

    def _render(self, value: str | None, secure: bool) -> str:
        return serialize_cookie(
            self.cookie,
            value,
            max_age=self.timeout if value is not None else None,
            path=self.path,
            domain=self.domain,
            secure=secure,
            http_only=self.http_only,
            same_site=self.same_site,
        )

    def _set_cookie(self, id: str, https: bool) -> str:
        return f"{self.cookie}={id}{self._variants[https][0]}"

    async def load(self, cookie_value: str | None) -> Session:
        """The session named by the request's cookie, or a fresh one.

        Only an id of our own format that the store knows is adopted; anything
        else gets a new random id, so a client can never choose its id."""
        if cookie_value and _valid_id(cookie_value):
            data = await self.store.get(cookie_value)
            if isinstance(data, dict):
                return Session(self.store, cookie_value, data, is_new=False)
        return Session(self.store, None, {}, is_new=True)

    async def commit(self, session: Session, *, https: bool) -> str | None:
        """Save what the request did to ``session``; return the Set-Cookie value
        to send, or None. Returns only once the store has acknowledged the write.

        Raises ``TypeError`` naming the key when a value is not JSON,
        ``SessionTooLarge`` over ``max_size`` (nothing written) and
        ``StoreUnavailable`` when the store cannot be reached."""
        if session.pristine:
            return None  # the commonest case, without making a plan
        plan = session.plan()
        if plan.touched_only:
            if plan.destroyed:
                return self._variants[https][1]
            if plan.source is None:
                return None  # new and untouched: no cookie, no store entry
            # Rolling expiry: every request that carries the session renews both
            # the stored entry and the cookie.
            await self.store.touch(plan.source, self.timeout)
            return self._set_cookie(plan.source, https)

        source, data, written = plan.source, plan.data, plan.written
        replace = source is None or plan.replace
        checked = data.keys() if replace else written
        if not self._store_checks_json:
            _check_json(data, checked)
        new_id = session.id
        try:
            if self.max_size:
                self._check_size(data)
            if replace:
                await self.store.set(new_id, dict(data), self.timeout)
                if source is not None and source != new_id:
                    await self.store.remove(source)
            else:
                assert source is not None
                changes = {key: data[key] for key in written}
                if not await self._merge_into(source, changes, plan.deleted, new_id):
                    # The stored session vanished during the request: it expired or
                    # another request destroyed it (a logout). Keep only what this
                    # request wrote, under a new id, so a destroyed id never comes
                    # back and a logout is not undone by a slower request.
                    new_id = _new_id()
                    await self.store.set(new_id, changes, self.timeout)
        except TypeError:
            _check_json(data, checked)  # the same error, naming the key
            raise
        session.saved(new_id)
        return self._set_cookie(new_id, https)

    def _check_size(self, data: dict[str, Any]) -> None:
        # The whole session as this request sees it: what any later request will
        # load. Encoded once more only when something changed.
        size = sum(len(_dumps(key)) + len(_dumps(data[key])) for key in data)
        if size > self.max_size:
            logger.error("session of %d bytes refused (max_size %d)", size, self.max_size)
            raise SessionTooLarge(size, self.max_size)

    async def _merge_into(
        self, source: str, changes: dict[str, Any], removed: Collection[str], target: str
    ) -> bool:
        if self._merge is not None:
            return await self._merge(source, changes, removed, self.timeout, target)
        data = await self.store.get(source)
        if not isinstance(data, dict):
            return False
        for key in removed:
            data.pop(key, None)
        data.update(changes)
        await self.store.set(target, data, self.timeout)
        if target != source:
            await self.store.remove(source)
        return True


# --------------------------------------------------------------------------- wiring

_default_store: MemoryStore | None = None


def default_store() -> MemoryStore:
    """The MemoryStore used when none is configured, one per process.

    Shared rather than one per manager because every router resolves its own
    settings: a sub-router that inherits ``session`` must see the same sessions
    as its parent."""
    global _default_store
    if _default_store is None:
        _default_store = MemoryStore()
    return _default_store


_MANAGER_OPTIONS = (
    "store", "timeout", "cookie", "http_only", "same_site", "path", "domain", "max_size",
)


def manager_from_config(section: Mapping[str, Any]) -> SessionManager:
    """A SessionManager from a router's resolved ``session`` section."""
    options = {name: section[name] for name in _MANAGER_OPTIONS if name in section}
    return SessionManager(**options, secure=section.get("secure"))


class SessionFeature(Feature):
    """The ``session`` section: the session is loaded before the middlewares and
    saved just before the response headers go out; a store outage is a 503."""

    name: ClassVar[str] = "session"
    defaults: ClassVar[Mapping[str, Any]] = {
        "enabled": False,
        "store": None,
        "timeout": 3600,
        "cookie": "_session",
        "http_only": True,
        "same_site": "lax",
        "path": "/",
        "domain": None,
        "secure": None,
        "max_size": 64 << 10,
    }

    def validate(self, partial: Mapping[str, Any]) -> None:
        max_size = partial.get("max_size", 0)
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0:
            raise ValueError(
                f"session max_size is bytes of JSON (an int >= 0, 0 = no cap), got {max_size!r}"
            )

    def compile(self, section: Mapping[str, Any], router: Router) -> SessionManager:
        return manager_from_config(section)

    async def attach(self, connection: HTTPConnection, state: SessionManager) -> None:
        try:
            session = await state.load(connection.cookies.get(state.cookie))
        except StoreUnavailable as exc:
            logger.error("session store unavailable, answering 503: %s", exc)
            raise HTTPError(503) from exc
        connection.session = session
        connection.response.on_start(partial(_commit, connection, state, session))

    async def attach_ws(self, ws: Any, state: SessionManager) -> bool:
        # Saved when the handshake is accepted (the cookie goes with the 101) and
        # once more when the socket closes (see WebSocketConnection).
        try:
            session = await state.load(ws.cookies.get(state.cookie))
        except StoreUnavailable as exc:
            logger.error("session store unavailable, WebSocket refused with 503: %s", exc)
            await ws.refuse(503)
            return False
        ws.use_sessions(session, state)
        return True


FEATURE = SessionFeature()


async def _commit(
    connection: HTTPConnection, manager: SessionManager, session: Session, body: bytes | None
) -> bytes | None:
    """The start hook: save the session and add its cookie. When saving fails, the
    hook is dropped (the response's all-or-none rule) and the 503 goes out
    without trying again."""
    try:
        header = await manager.commit(session, https=connection.protocol == "https")
    except StoreUnavailable as exc:
        if connection.answering_error:
            # Already answering with an error (a 404, the 500 of a failed
            # handler, the 503 of a failed destroy()): that answer confirms
            # nothing, so it goes out as it is, without the cookie.
            logger.error("session store unavailable, session not saved: %s", exc)
            return body
        logger.error("session store unavailable, answering 503: %s", exc)
        raise HTTPError(503) from exc
    response = connection.response
    if session.read:
        # The answer depends on whose session it is: a shared cache must not
        # hand it to the next user (RFC 9111 §4.1).
        response.vary("Cookie")
    if header is not None:
        response.append("set-cookie", header)
        if "cache-control" not in response.headers:
            # Nor store the session cookie for everyone (RFC 9111 §5.2.2.7).
            response.set("cache-control", ["private"])
    return body
