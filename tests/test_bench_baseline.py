"""bench/run.py --baseline: the simples app on another revision's package, in the
same rounds as this checkout's (a before/after pair measured side by side);
--compiled: the same on the opt-in compiled build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench import run

ROOT = Path(__file__).resolve().parent.parent


def head_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_revision_is_exported_once_and_runs_as_simples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "DATA", tmp_path)
    commit = head_commit()
    app = run.baseline_app("HEAD")
    assert app.name == f"simples@{commit[:7]}"
    assert app.module == "simples_app"
    assert app.src == tmp_path / "revisions" / commit / "src"
    committed = subprocess.run(
        ["git", "show", f"{commit}:src/simples/__init__.py"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    assert (app.src / "simples" / "__init__.py").read_bytes() == committed
    # nothing half-made is left beside it, and a second call reuses the export
    assert [path.name for path in (tmp_path / "revisions").iterdir()] == [commit]
    marker = app.src / "marker"
    marker.write_text("kept")
    assert run.baseline_app(commit[:10]).src == app.src
    assert marker.read_text() == "kept"

    # A server of that app runs on the export: it answers, and its path says so.
    plaintext = next(e for e in run.ENDPOINTS if e.name == "plaintext")
    with run.Server(run.ENGINES["uvicorn"], app, None, tmp_path) as server:
        server.wait_ready(plaintext, 30)
        assert run.problems(plaintext, run.fetch(server.port, plaintext)) is None
        assert server.proc is not None
        environ = Path(f"/proc/{server.proc.pid}/environ").read_bytes().split(b"\0")
    path = next(v for v in environ if v.startswith(b"PYTHONPATH=")).split(b"=", 1)[1]
    assert path.decode().split(":")[:2] == [str(run.APPS_DIR), str(app.src)]


def test_the_baseline_is_served_the_simples_endpoints() -> None:
    only_simples = [e for e in run.ENDPOINTS if e.apps is not None and "bare" not in e.apps]
    assert only_simples, "an endpoint only simples serves"
    for endpoint in only_simples:
        assert endpoint.served_by("simples@0123abc") == endpoint.served_by("simples")
        assert not endpoint.served_by("bare@0123abc")


def test_an_unknown_revision_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run.parse_args(["--baseline", "no-such-revision-here", "--apps", "bare,simples"])
    assert stopped.value.code == 2
    assert "--baseline no-such-revision-here: not a commit" in capsys.readouterr().err


def test_overhead_times_the_baseline_in_a_worker_of_its_own() -> None:
    commit = head_commit()
    export = run.DATA / "revisions" / commit
    made_here = not export.exists()
    try:
        done = subprocess.run(
            [sys.executable, "bench/overhead.py", "--apps", "simples", "--baseline", "HEAD",
             "--endpoints", "plaintext,json", "--n", "50", "--rounds", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        if made_here:
            shutil.rmtree(export, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("simples")]
    # a timing table and a calls table, each with the app and its baseline
    assert [row[0] for row in rows] == ["simples", f"simples@{commit[:7]}"] * 2
    timed, counted = rows[1], rows[3]
    assert float(timed[1]) > 0
    assert float(timed[2]) > 0
    # the same code on both sides: the same calls per request
    assert counted[1:] == rows[2][1:]


def test_the_compiled_build_is_made_once_and_served_beside_simples(tmp_path: Path) -> None:
    # bench/data/compiled/ (shared with ./dev bench): built once per state of
    # the package and interpreter, then reused
    app = run.compiled_app()
    assert app.name == "simples@compiled"
    assert app.src.parent == run.DATA / "compiled"
    extensions = sorted(path.name.partition(".")[0] for path in app.src.rglob("*.so"))
    assert extensions == ["headers", "multidict", "paths", "query", "simples__mypyc"]
    stamp = [path.stat().st_mtime_ns for path in app.src.glob("simples__mypyc*")]
    assert run.compiled_app().src == app.src
    assert [path.stat().st_mtime_ns for path in app.src.glob("simples__mypyc*")] == stamp

    # next to simples (and after a baseline), in the same rounds
    commit = head_commit()
    args = run.parse_args(["--compiled", "--baseline", "HEAD", "--apps", "bare,simples,falcon"])
    assert args.apps == ["bare", "simples", f"simples@{commit[:7]}", "simples@compiled", "falcon"]

    # a server of that app runs on the compiled modules and answers right
    user = next(e for e in run.ENDPOINTS if e.name == "user")
    with run.Server(run.ENGINES["uvicorn"], app, None, tmp_path) as server:
        server.wait_ready(user, 30)
        assert run.problems(user, run.fetch(server.port, user)) is None


def test_overhead_times_the_compiled_build_whose_calls_it_cannot_see() -> None:
    done = subprocess.run(
        [sys.executable, "bench/overhead.py", "--apps", "simples", "--compiled",
         "--endpoints", "plaintext,user", "--n", "50", "--rounds", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        # the pure package beside it, also when this suite runs on the compiled one
        env={name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("simples")]
    assert [row[0] for row in rows] == ["simples", "simples@compiled"] * 2
    assert all(float(cell) > 0 for cell in rows[1][1:])
    pure, compiled = rows[2], rows[3]
    # plaintext goes through no compiled function; user's route lookup, query
    # and headers do, and the profiler counts none of those frames
    assert compiled[1:4] == pure[1:4]
    assert int(compiled[6]) < int(pure[6])
