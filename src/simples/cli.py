"""``simples run module:server``: serve an app from the command line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from .engines import granian_options, uvicorn_options


def _check_target(target: str) -> Any:
    # Fail here with a clear message rather than deep inside the server's import.
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"simples run: expected module:attribute, got {target!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"simples run: cannot import {module_name!r}: {exc}") from exc
    if not hasattr(module, attribute):
        raise SystemExit(f"simples run: {module_name!r} has no attribute {attribute!r}")
    return getattr(module, attribute)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simples", description="Run a simples application.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve module:server")
    run.add_argument("target", help="the app to serve, as module:attribute (e.g. app:server)")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--reload", action="store_true", help="restart when files change (watchfiles)")
    run.add_argument("--workers", type=int, default=1, help="worker processes")
    run.add_argument("--engine", choices=("uvicorn", "granian"), default="uvicorn")
    run.add_argument(
        "--http",
        choices=("auto", "httptools", "h11"),
        default="auto",
        help="uvicorn's HTTP/1.1 parser (auto: httptools when installed, else h11)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.reload and args.workers > 1:
        parser.error("--reload runs a single worker; drop --workers")
    if args.reload:
        # read by simples.Jinja in the reloaded children: templates reload too
        os.environ["SIMPLES_RELOAD"] = "1"
    app = _check_target(args.target)
    if args.engine == "granian":
        if args.http != "auto":
            parser.error("--http picks uvicorn's parser; granian has its own")
        from granian.constants import Interfaces
        from granian.server import Server as Granian

        Granian(
            args.target,
            address=args.host,
            port=args.port,
            interface=Interfaces.ASGI,
            workers=args.workers,
            reload=args.reload,
            **granian_options(app),
        ).serve()
        return 0
    import uvicorn

    # the workers import the app again and read its header_timeout themselves
    options = uvicorn_options(http=args.http)
    options.update(host=args.host, port=args.port, lifespan="on")
    if args.reload:
        options.update(reload=True, reload_dirs=[os.getcwd()])
    elif args.workers > 1:
        options["workers"] = args.workers
    uvicorn.run(args.target, **options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
