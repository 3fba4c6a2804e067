"""The site build, one definition for ``make book``, ``make check`` and the test suite.

    python tools/book.py            # make book: build into _build/html, copy the student notebooks

Sphinx builds incrementally: a second build re-reads only the pages whose sources changed (and
the live-figure frames are cached in ``_build/.live_frames``), so after editing one chapter a
build takes seconds, not minutes. The test suite builds into a temporary folder with the same
command (``build_command(output)``), reusing the cached frames.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The committed student notebooks (what Colab opens), copied from every site build.
STUDENT_NOTEBOOKS = ROOT / "notebooks"
#: Warnings are errors (a broken reference or a MyST construct without a rule fails the build),
#: and every page is still written, so that one run shows all the problems.
BUILD_FLAGS = ("--warningiserror", "--nitpick", "--keep-going")
BUILD_TIMEOUT_SECONDS = 1800


def build_command(output: Path | None = None) -> list[str]:
    """The ``jupyter-book build`` command line; ``output``: where ``_build/`` goes (default: here)."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(ROOT), *BUILD_FLAGS]
    if output is not None:
        command[3:3] = ["--path-output", str(output)]
    return command


def html_folder(output: Path | None = None) -> Path:
    """Where ``build_command(output)`` writes the site."""
    return (output if output is not None else ROOT) / "_build" / "html"


def build_once(output: Path) -> dict:
    """Build the book into ``output`` unless another process did; return that build's result.

    For the test suite's workers: the first caller builds, under a lock on ``output/build.lock``;
    every other caller waits for the lock and reads the result the first one kept in
    ``output/result.json``: ``{"returncode", "stdout", "stderr", "html"}``.
    """
    output.mkdir(parents=True, exist_ok=True)
    kept = output / "result.json"
    with open(output / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not kept.exists():
            try:
                done = subprocess.run(
                    build_command(output), capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS
                )
                result = {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
            except subprocess.TimeoutExpired as error:
                result = {"returncode": -1, "stdout": str(error.stdout), "stderr": f"timed out: {error}"}
            result["html"] = str(html_folder(output))
            kept.write_text(json.dumps(result), encoding="utf-8")
        return json.loads(kept.read_text(encoding="utf-8"))


def copy_student_notebooks(html: Path, target: Path = STUDENT_NOTEBOOKS) -> list[str]:
    """Make ``target`` hold exactly the build's student notebooks; return the names that changed."""
    built = {path.name: path.read_bytes() for path in sorted((html / "notebooks").glob("*.ipynb"))}
    if not built:
        raise FileNotFoundError(f"{html / 'notebooks'} has no student notebooks: did the build fail?")
    target.mkdir(exist_ok=True)
    changed = []
    for path in target.glob("*.ipynb"):
        if path.name not in built:
            path.unlink()
            changed.append(path.name)
    for name, content in built.items():
        path = target / name
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            changed.append(name)
    return sorted(changed)


def main(argv: list[str] | None = None) -> int:
    """``make book``: build the site here, then copy its student notebooks to ``notebooks/``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args(argv)
    result = subprocess.run(build_command(), cwd=ROOT)
    if result.returncode != 0:
        return result.returncode
    changed = copy_student_notebooks(html_folder())
    if changed:
        print(
            f"Student notebooks updated in notebooks/: {', '.join(changed)} (commit them: Colab opens them)."
        )
    else:
        print("Student notebooks in notebooks/ are up to date.")
    print("\nThe site is built: open _build/html/index.html (or run 'make serve').")
    return 0


if __name__ == "__main__":
    sys.exit(main())
