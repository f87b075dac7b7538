#!/usr/bin/env python3
"""Autobahn|Testsuite's fuzzingclient against a simples echo app on each engine.

    ./dev autobahn [--cases 1.*,2.*,...] [--engines uvicorn-wsproto,granian,...]

Not part of the test suite (it takes minutes and needs Python 2.7). The suite's
``wstest`` runs from a Python 2.7 virtualenv (``$AUTOBAHN_VENV``, default
``.autobahn``), made with ``$PYTHON2`` (default ``python2.7``, e.g. pyenv's
2.7.18) and ``pip install autobahntestsuite`` on first use. For each engine, an
echo app is served on a free loopback port, the fuzzingclient runs every case
asked for, and the counts of each outcome (OK, NON-STRICT, INFORMATIONAL,
UNIMPLEMENTED, FAILED) are printed, FAILED cases by name. Reports land in
``.autobahn/reports/<engine>/``. Exit status 1 when any case FAILED.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = "1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,12.*,13.*"
# engine name -> the command serving bench.autobahn:app on {port}
ENGINES = {
    "uvicorn-websockets": ["uvicorn", "--ws", "websockets"],
    "uvicorn-websockets-sansio": ["uvicorn", "--ws", "websockets-sansio"],
    "uvicorn-wsproto": ["uvicorn", "--ws", "wsproto"],
    "simples": ["simples"],  # `simples run`: what listen() and the CLI choose
    "granian": ["granian"],
}


def build_app() -> object:
    import simples

    server = simples.server()

    @server.ws("/")
    async def echo(ws: simples.WebSocketConnection) -> None:
        async for message in ws:
            await ws.send(message.data)

    return server


def __getattr__(name: str) -> object:
    if name == "app":
        return build_app()
    raise AttributeError(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(engine: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    kind, *extra = ENGINES[engine]
    target = "bench.autobahn:app"
    python = sys.executable
    if kind == "uvicorn":
        command = [python, "-m", "uvicorn", target, "--port", str(port), *extra,
                   "--log-level", "warning", "--no-access-log"]  # fmt: skip
    elif kind == "granian":
        command = [python, "-m", "simples.cli", "run", target, "--port", str(port),
                   "--engine", "granian"]  # fmt: skip
    else:
        command = [python, "-m", "simples.cli", "run", target, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{engine} did not start; see {log}")


def find_python2() -> str | None:
    """pyenv's 2.7 (its shim fails unless 2.7 is a selected version), else one on PATH."""
    root = (
        subprocess.run(
            ["pyenv", "root"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if shutil.which("pyenv")
        else os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    )
    for candidate in sorted(Path(root).glob("versions/2.7.*/bin/python"), reverse=True):
        return str(candidate)
    for name in ("python2.7", "python2"):
        found = shutil.which(name)
        if (
            found
            and subprocess.run([found, "-c", "pass"], capture_output=True, check=False).returncode
            == 0
        ):
            return found
    return None


def wstest(venv: Path) -> Path:
    exe = venv / "bin" / "wstest"
    if exe.exists():
        return exe
    python2 = os.environ.get("PYTHON2") or find_python2()
    if python2 is None:
        raise SystemExit("autobahn: needs Python 2.7 (set PYTHON2=/path/to/python2.7)")
    subprocess.run([python2, "-m", "pip", "install", "-q", "virtualenv<20.22"], check=True)
    subprocess.run([python2, "-m", "virtualenv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "autobahntestsuite"], check=True)
    return exe


def run_engine(exe: Path, engine: str, cases: list[str], work: Path) -> Counter[str]:
    port = free_port()
    reports = work / "reports" / engine
    shutil.rmtree(reports, ignore_errors=True)
    spec = {
        "outdir": str(reports),
        "servers": [{"agent": engine, "url": f"ws://127.0.0.1:{port}/"}],
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_file = work / f"fuzzingclient-{engine}.json"
    spec_file.write_text(json.dumps(spec, indent=2))
    process = serve(engine, port, work / f"{engine}.log")
    try:
        quiet = subprocess.DEVNULL
        command = [str(exe), "-m", "fuzzingclient", "-s", str(spec_file)]
        subprocess.run(command, cwd=work, stdout=quiet, stderr=quiet, check=False)
    finally:
        process.terminate()
        process.wait(10)
    index = json.loads((reports / "index.json").read_text())[engine]
    counts: Counter[str] = Counter()
    failed = []
    for case, result in sorted(index.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]):
        behavior = result["behavior"]
        if behavior == "OK" and result.get("behaviorClose") not in ("OK", "INFORMATIONAL"):
            behavior = f"CLOSE-{result['behaviorClose']}"
        counts[behavior] += 1
        if behavior == "FAILED" or behavior.startswith("CLOSE-"):
            failed.append(case)
    counts["_failed_cases"] = 0
    print(f"{engine:<28}" + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())
                                      if not k.startswith("_")), flush=True)  # fmt: skip
    if failed:
        print(f"{'':<28}failed: {' '.join(failed)}", flush=True)
    counts["_failed_cases"] = len(failed)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=CASES)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    work = Path(os.environ.get("AUTOBAHN_VENV", ROOT / ".autobahn")).resolve()
    work.mkdir(exist_ok=True)
    exe = wstest(work)
    cases = args.cases.split(",")
    print(f"Autobahn|Testsuite fuzzingclient, cases {', '.join(cases)}")
    bad = 0
    for engine in args.engines.split(","):
        counts = run_engine(exe, engine, cases, work)
        bad += counts["FAILED"] + counts["_failed_cases"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
