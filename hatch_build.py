"""The compiled build: the pure parsers a request goes through, compiled with mypyc.

The package is complete in pure Python and that is what a plain install gets
(``pip install simples-web``, no compiler needed). The compiled build is
opt-in and behaves the same; CI runs the whole suite on both (``./dev test``).

    HATCH_BUILD_HOOK_ENABLE_CUSTOM=1 pip wheel .     a wheel with the modules
                                                     below compiled (needs a C
                                                     compiler and the Python
                                                     headers)
    python hatch_build.py DIR                        a compiled copy of the
                                                     package in DIR, to put
                                                     first on PYTHONPATH

Mypyc (https://mypyc.readthedocs.io) compiles type-annotated modules to C
extensions; an extension module is imported before the ``.py`` beside it, so
the sources stay in the wheel (for type checkers, tracebacks and reading).

Only synchronous modules with no validated public parameters are compiled
(bench/README.md, "Compiled with mypyc"): a compiled coroutine that awaits
application code can raise an exception the application had caught (the
family of https://github.com/mypyc/mypyc/issues/1177), and a compiled
function checks its annotations on entry, which would turn the documented
``ValueError`` for a wrong value into a ``TypeError``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent

COMPILED = (
    "simples/paths.py",
    "simples/http/headers.py",
    "simples/http/multidict.py",
    "simples/http/query.py",
)

# Run by the interpreter that builds, in a copy of the package: mypycify type
# checks the modules (libraries missing from an isolated build environment
# are typed Any: the compiled code still checks every call it makes) and
# setuptools builds the extensions in place. group_name names the shared
# runtime library (simples__mypyc) instead of a hash.
_SETUP = textwrap.dedent(
    """
    import sys
    from setuptools import setup
    from mypyc.build import mypycify

    setup(
        name="simples-compiled",
        ext_modules=mypycify(sys.argv.pop(1).split(","), opt_level="3", group_name="simples"),
        script_args=["build_ext", "--inplace", "--build-temp", "build"],
    )
    """
)
_MYPY_INI = "[mypy]\nignore_missing_imports = True\nfollow_imports = silent\n"


def compile_package(work: Path) -> list[Path]:
    """Compile ``work/simples`` (a copy of the package) in place; return the
    extension files made, relative to ``work``."""
    (work / "setup_compiled.py").write_text(_SETUP)
    (work / "mypy.ini").write_text(_MYPY_INI)
    done = subprocess.run(
        [sys.executable, "setup_compiled.py", ",".join(COMPILED)],
        cwd=work,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mypyc failed:\n{done.stdout[-20000:]}{done.stderr[-20000:]}")
    for scaffolding in ("build", ".mypy_cache"):
        shutil.rmtree(work / scaffolding, ignore_errors=True)
    for scaffolding in ("setup_compiled.py", "mypy.ini"):
        (work / scaffolding).unlink()
    made = sorted(
        path.relative_to(work)
        for pattern in ("simples__mypyc*.so", "simples/**/*.so", "*.pyd", "simples/**/*.pyd")
        for path in work.glob(pattern)
    )
    expected = len(COMPILED) + 1  # and the shared runtime
    if len(made) != expected:
        raise RuntimeError(f"mypyc made {len(made)} extensions, expected {expected}: {made}")
    return made


def compiled_copy(destination: Path) -> list[Path]:
    """A compiled copy of ``src/simples`` in ``destination`` (replaced)."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    shutil.copytree(ROOT / "src" / "simples", destination / "simples")
    return compile_package(destination)


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script, outside a build
    pass
else:

    class CompiledBuildHook(BuildHookInterface):  # type: ignore[type-arg]
        """Puts the extensions in the wheel, which becomes platform specific."""

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            if self.target_name != "wheel" or version == "editable":
                return
            work = Path(tempfile.mkdtemp(prefix="simples-mypyc-"))
            self._work = work
            for made in compiled_copy(work):
                build_data["force_include"][str(work / made)] = made.as_posix()
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

        def finalize(self, version: str, build_data: dict[str, Any], artifact: str) -> None:
            work = getattr(self, "_work", None)
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for made in compiled_copy(Path(sys.argv[1]).resolve()):
        print(made)
