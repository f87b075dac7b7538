"""Route lookup cost by number of routes, in process (issue #15).

    .venv/bin/python bench/routes.py [--n 200000] [--sizes 10,100,1000]

For each size N, N pattern routes (``/items{i}/:id``, ``/users/:id/posts{i}``
and ``/v{i}/:a/:b`` in turn, plus as many fixed paths) are registered on one
router; the script prints the nanoseconds of ``Router.match`` for a request to
the first pattern route and to the last one (median of interleaved rounds), the
``user`` endpoint of bench/overhead.py (``/user/:id`` among a few routes), and
the ratio of the last-route lookup to the 10-route one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from simples.router import Router


async def handler(connection: Any) -> None:
    return None


def pattern(i: int) -> tuple[str, str]:
    """The i-th route pattern and a path that reaches it."""
    kind = i % 3
    if kind == 0:
        return f"/items{i}/:id", f"/items{i}/42"
    if kind == 1:
        return f"/users/:id/posts{i}", f"/users/7/posts{i}"
    return f"/v{i}/:a/:b", f"/v{i}/x/y"


def build(size: int) -> tuple[Router, str, str]:
    router = Router()
    for i in range(size):
        router.get(f"/static/page{i}", handler)
    paths = []
    for i in range(size):
        path, example = pattern(i)
        router.get(path, handler)
        paths.append(example)
    return router, paths[0], paths[-1]


def small() -> Router:
    """The routes of the ``simples`` app of bench/overhead.py."""
    router = Router()
    router.get("/plaintext", handler)
    router.get("/json", handler)
    router.get("/user/:id", handler)
    router.post("/upload", handler)
    return router


def timed(call: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    cases: dict[str, Callable[[], Any]] = {}
    user = small()
    assert user.match("GET", "/user/42") is not None
    cases["user /user/:id"] = lambda: user.match("GET", "/user/42")
    for size in (int(s) for s in args.sizes.split(",")):
        router, first, last = build(size)
        assert router.match("GET", first) is not None
        found = router.match("GET", last)
        assert found is not None
        cases[f"{size} routes, first"] = lambda r=router, p=first: r.match("GET", p)
        cases[f"{size} routes, last"] = lambda r=router, p=last: r.match("GET", p)
        cases[f"{size} routes, miss"] = lambda r=router: r.match("GET", "/nothing/here")
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):  # interleaved: each round times every case once
        for name, call in cases.items():
            results[name].append(timed(call, args.n // args.rounds))
    medians = {name: statistics.median(values) for name, values in results.items()}
    base = medians.get("10 routes, last")
    print(f"{'case':<24} {'ns/lookup':>10} {'x 10-route last':>16}")
    for name, value in medians.items():
        ratio = f"{value / base:.2f}" if base else "-"
        print(f"{name:<24} {value:>10.0f} {ratio:>16}")


if __name__ == "__main__":
    main()
