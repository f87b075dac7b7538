"""Check what users install: build the sdist and the wheel, install the wheel in
a clean virtualenv outside the checkout, and serve the hello example from it.

    python .ci/wheel_check.py      (./dev test runs it after the test suites)

Fails (exit status 1) when a module of ``src/simples`` is missing from the
wheel, the sdist lacks the sources, the installed package is not the one
imported, or the hello example does not answer over a socket.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "simples"

# Run by the installed interpreter, from the temporary directory: the checkout
# is not on its path, so `import simples` finds the installed wheel or nothing.
SERVE = textwrap.dedent(
    """
    import asyncio, importlib.util, socket, sys
    from pathlib import Path

    import simples

    venv = Path(sys.prefix).resolve()
    assert Path(simples.__file__).resolve().is_relative_to(venv), simples.__file__
    spec = importlib.util.spec_from_file_location("hello_app", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.server


    def fetch(port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


    async def main():
        (host, port), *_ = await server.start(0)
        try:
            answer = await asyncio.to_thread(fetch, port)
        finally:
            await server.stop()
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert b"Hello from simples!" in answer, answer
        print("served", answer.split(b"\\r\\n", 1)[0].decode(), "from", simples.__file__)


    asyncio.run(main())
    """
)


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(
            f"wheel check: {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def check_contents(wheel: Path, sdist: Path) -> None:
    modules = sorted(
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix in (".py", ".typed")
    )
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(
            (archive.read(n).decode() for n in names if n.endswith("entry_points.txt")), ""
        )
    missing = [name for name in modules if name not in names]
    if missing:
        raise SystemExit(f"wheel check: the wheel lacks {missing}")
    stray = sorted(n for n in names if n.startswith(("tests/", "examples/", "bench/")))
    if stray:
        raise SystemExit(f"wheel check: the wheel carries files that are not the package: {stray}")
    for needed in ("simples = simples.cli:main", "simples = simples.clients.pytest_plugin"):
        if needed not in entry_points:
            raise SystemExit(f"wheel check: no entry point {needed!r} in the wheel")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    # hatch_build.py: the compiled build is made from the sdist too
    sources = (f"src/{name}" for name in modules)
    for needed in ("pyproject.toml", "README.md", "hatch_build.py", *sources):
        if needed not in members:
            raise SystemExit(f"wheel check: the sdist lacks {needed}")


def main() -> int:
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="simples-wheel-") as temp:
        work = Path(temp)
        dist = work / "dist"
        run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=work)
        (wheel,) = dist.glob("*.whl")
        (sdist,) = dist.glob("*.tar.gz")
        check_contents(wheel, sdist)
        venv = work / "venv"
        run(sys.executable, "-m", "venv", venv, cwd=work)
        python = venv / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", wheel, cwd=work)
        run(venv / "bin" / "simples", "--help", cwd=work)
        script = work / "serve_hello.py"
        script.write_text(SERVE)
        print(run(python, script, ROOT / "examples" / "hello" / "app.py", cwd=work).strip())
    print(f"wheel check: {wheel.name} and {sdist.name} fine ({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
