"""`make check`: every check of the chapters you edited, in about a minute.

    python tools/check_chapter.py [chapters/NN_name.ipynb ...]   # default: the chapters changed
    python tools/check_chapter.py --no-execute chapters/03_momentum.ipynb   # keep its saved outputs

Without a chapter it checks the chapters changed since the last commit (``git diff --name-only
HEAD`` and untracked chapter notebooks), and says so when there is none. For each chapter:

1. re-execute it and save it, as ``make execute NB=…`` does (skipped with ``--no-execute``), and
   lint it with ruff, as ``make test`` does;
2. build the site incrementally into ``_build/html`` and copy the student notebooks to
   ``notebooks/``, as ``make book`` does — in the background, while
3. pytest (two workers) runs the chapter's strict nbval in this environment and under another
   CPU's BLAS/SIMD/PyTorch kernels (``tests/test_any_machine.py``): the ``nbval`` phase;
4. then, once the site is built and the student notebook copied, every other test of ``tests/``
   parametrised by the chapter or its page: structure, glue and the numbers' rounding edges,
   figure captions, the code a reader sees, the student notebook, the glued numbers on the page,
   the launch buttons, and the browser checks (console, requests, formulas, images, live figures,
   legibility): the ``checks`` phase.

It ends with one line per failure: the cell or page element, the problem and what to do.
Book-wide checks (every chapter, the library's unit tests) are ``make test``'s.

A test file takes part when it parametrises tests by chapter, that is when it names the chapters
through :data:`CHAPTER_SOURCES`; a test is selected when its parameter id names the chapter
(``03_momentum.ipynb`` or ``chapters/03_momentum.html``). The same module is the pytest plugin
that makes this selection (``-p tools.check_chapter --check-chapters 03_momentum …``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tools` importable
    sys.path.insert(0, str(ROOT))

from tools.book import build_command, copy_student_notebooks, html_folder  # noqa: E402
from tools.parallel_tests import ANOTHER_MACHINE  # noqa: E402

CHAPTERS = ROOT / "chapters"
TESTS = ROOT / "tests"
#: How a test file names the chapters it parametrises over.
CHAPTER_SOURCES = re.compile(r"chapter_notebooks\(\)|toc_pages\(\)|\"chapters\"")
#: A chapter named in a test's parameter id: ``03_momentum.ipynb`` or ``chapters/03_momentum.html``.
CHAPTER_IN_ID = re.compile(r"(?<![\w.])(\d\d_\w+)\.(?:ipynb|html)(?![\w.])")
NBVAL_CELL = re.compile(r"^chapters/(\d\d_\w+\.ipynb)::Cell (\d+)$")
PHASES = ("nbval", "checks")
#: The nbval runs of a chapter that are tests of ``tests/`` (under another machine's kernels).
NBVAL_TESTS = {ANOTHER_MACHINE}
WORKERS = 2


# --- which chapters, which tests ---------------------------------------------------------------


def changed_chapters(root: Path = ROOT) -> list[Path]:
    """Chapter notebooks changed since the last commit, and untracked ones, in file order."""

    def git(*args: str) -> list[str]:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return result.stdout.splitlines()

    names = git("diff", "--name-only", "HEAD", "--", "chapters/*.ipynb")
    names += git("ls-files", "--others", "--exclude-standard", "--", "chapters/*.ipynb")
    return sorted({root / name for name in names if (root / name).exists()})


def chapter_test_files(tests: Path = TESTS) -> list[Path]:
    """The test files that parametrise tests by chapter."""
    return [
        path for path in sorted(tests.glob("test_*.py")) if CHAPTER_SOURCES.search(path.read_text("utf-8"))
    ]


def chapters_of_test(nodeid: str) -> set[str]:
    """The chapters (file stems) a test's parameter id names; empty for other tests."""
    name = nodeid.split("::")[-1]
    if "[" not in name:
        return set()
    parameters = name[name.index("[") + 1 : name.rindex("]")] if "]" in name else ""
    return set(CHAPTER_IN_ID.findall(parameters))


def selected(nodeid: str, chapters: set[str], phase: str) -> bool:
    """Whether ``make check`` runs this test of ``tests/`` for ``chapters`` in ``phase``.

    ``nbval``: the chapter's nbval runs (they take the time, and run while the site builds);
    ``checks``: the chapter's other tests (they need the built site or the student notebooks).
    """
    if not chapters_of_test(nodeid) & chapters:
        return False
    nbval = nodeid.split("::")[-1].split("[")[0] in NBVAL_TESTS
    return nbval if phase == "nbval" else not nbval


# --- the pytest plugin (loaded in every xdist worker with -p tools.check_chapter) -------------


def pytest_addoption(parser) -> None:
    group = parser.getgroup("check_chapter", "make check (tools/check_chapter.py)")
    group.addoption("--check-chapters", default="", help="comma-separated chapter stems to select")
    group.addoption("--check-phase", choices=PHASES, default="nbval")
    group.addoption("--check-report", default="", help="write the failures to this JSON file")


def pytest_collection_modifyitems(config, items) -> None:
    chapters = {name for name in config.getoption("check_chapters").split(",") if name}
    if not chapters:
        return
    phase = config.getoption("check_phase")
    keep, drop = [], []
    for item in items:
        if item.nodeid.startswith("chapters/"):  # nbval's cells of a chapter named on the command line
            chosen = phase == "nbval"
        else:
            chosen = selected(item.nodeid, chapters, phase)
        (keep if chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


_FAILURES: list[dict] = []


def pytest_runtest_logreport(report) -> None:
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        _FAILURES.append(
            {
                "nodeid": report.nodeid.split("@")[0],
                "when": report.when,
                "message": crash.message if crash is not None else "",
                "text": report.longreprtext,
            }
        )


def pytest_sessionfinish(session) -> None:
    path = session.config.getoption("check_report", default="")
    if path and not hasattr(session.config, "workerinput"):  # the controller, or a run without xdist
        Path(path).write_text(json.dumps(_FAILURES), encoding="utf-8")


# --- what a failure means ---------------------------------------------------------------------

#: What to do when a test fails, by test function.
HINTS = {
    ANOTHER_MACHINE: (
        "another CPU's kernels change this output: print at most ~6 significant digits, and glue a "
        "number that is a small difference of large ones with glue(name, value, significant_digits=3)"
    ),
    "test_every_number_the_site_shows_survives_last_digit_differences": (
        "a glued number sits on a rounding edge of its format: show fewer digits, or round it "
        "with glue(..., significant_digits=3)"
    ),
    "test_every_code_cell_was_executed_top_to_bottom_in_one_kernel": "run make execute NB={chapter}",
    "test_no_committed_errors_or_warnings": "fix the cell: it raises or writes to stderr (a warning)",
    "test_no_cell_escapes_output_comparison": "remove the nbval skip tag or NBVAL_ marker",
    "test_no_cell_relies_on_a_trailing_semicolon": "drop the trailing ';' (assign the value instead)",
    "test_first_code_cell_is_the_shared_setup_cell": "run make execute NB={chapter}",
    "test_every_glued_number_in_the_text_is_computed_in_the_chapter": (
        "call glue(name, value) in a code cell for every {{glue:text}} name the text uses"
    ),
    "test_chapter_has_goals_takeaways_exercises_and_citations": (
        "add what is missing (README: editing or adding a chapter)"
    ),
    "test_every_figure_cell_has_a_name_caption_and_alt_text": (
        'give the cell "mystnb": {{"figure": {{"name", "caption"}}, "image": {{"alt"}}}} metadata'
    ),
    "test_a_figure_cell_shows_one_image": "split the cell: one figure per cell",
    "test_the_text_refers_to_every_figure_by_number": "refer to it in the text: {{numref}}`fig-…`",
    "test_no_visible_code_cell_is_longer_than_forty_lines": (
        "move drawing into a figure function of nqm_lib, checks into tests/, or tag the cell hide-input"
    ),
    "test_a_chapter_shows_at_most_seven_hundred_lines_of_code": (
        "move code into nqm_lib or fold cells with the hide-input tag"
    ),
    "test_no_chapter_prints_a_true_or_false_verdict": (
        "move the check into tests/; state a lesson in prose with its number glued"
    ),
    "test_chapter_page_shows_every_glued_number": "see the glued name and its format spec in the text",
    "test_page_loads_cleanly_offline_with_math_and_images": (
        "look at _build/screenshots/{page_file}.png and the message (console, request, formula or image)"
    ),
    "test_live_figures_answer_the_keyboard_offline": (
        "check the explore(...) cell against its declaration in nqm_lib/interactive.py; screenshots in "
        "_build/screenshots/live_*_moved.png"
    ),
    "test_every_figure_shows_its_smallest_text_at_least_9_css_px": (
        "draw the figure with plotting.new_figure at most FIGURE_WIDTH wide (stack panels with nrows=…)"
    ),
    "test_every_figure_links_to_its_full_resolution_png": "show it as a cell output (no HTML image)",
    "test_every_chapter_has_launch_and_download_buttons": "see book_ext/student_notebooks.py and _config.yml",
    "test_every_chapter_has_formulas_and_a_live_figure_with_labelled_controls": (
        'show the chapter\'s declared figure with explore("<id>")'
    ),
    "test_every_chapter_explore_call_matches_its_declaration": (
        'call explore("<id>") exactly as declared in nqm_lib/interactive.py'
    ),
}
DEFAULT_HINT = "see the message above"


@dataclass
class Failure:
    """One failed test, said as: where, what, what to do, and how to run it alone."""

    where: str
    message: str
    hint: str
    rerun: str

    def __str__(self) -> str:
        return f"- {self.where}: {self.message}\n    what to do: {self.hint}\n    run it alone: {self.rerun}"


def code_cell(notebook: Path, number: int) -> tuple[str, str]:
    """Id and first source line of a notebook's ``number``-th code cell (nbval's "Cell N")."""
    import nbformat

    cells = [cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]
    if not 0 <= number < len(cells):
        return "?", ""
    cell = cells[number]
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return cell.get("id", "?"), first[:60]


def describe_cell(name: str, number: int, chapters: Path = CHAPTERS) -> str:
    """``code cell 12 (id cell-031, `first line`) of chapters/03_momentum.ipynb``."""
    cell_id, first = code_cell(chapters / name, number)
    return f"code cell {number} (id {cell_id}, `{first}`) of chapters/{name}"


def _short(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][:lines]
    return " | ".join(line.strip() for line in kept)[:600]


def explain(failure: dict, executed: bool, chapters: Path = CHAPTERS) -> list[Failure]:
    """The failure of one test as lines an instructor can act on (an nbval run: one per cell)."""
    nodeid = failure["nodeid"]
    rerun = f".venv/bin/pytest -q '{nodeid}'"
    cell = NBVAL_CELL.match(nodeid)
    if cell:
        name, number = cell.group(1), int(cell.group(2))
        if executed:
            hint = (
                "the output changed between two runs in a fresh kernel on this machine: seed every random "
                "draw, and print no timings, addresses or unordered sets"
            )
        else:
            hint = f"if the change is intended, run make execute NB=chapters/{name}"
        message = "output differs from the saved one" if failure["when"] == "call" else failure["when"]
        detail = _short(failure["text"].split("\n", 1)[-1], 4)
        return [Failure(describe_cell(name, number, chapters), f"{message}: {detail}", hint, rerun)]
    function = nodeid.split("::")[-1].split("[")[0]
    named = sorted(chapters_of_test(nodeid))
    chapter = f"chapters/{named[0]}.ipynb" if named else "the chapter"
    page = f"chapters/{named[0]}.html" if named else "the page"
    hint = HINTS.get(function, DEFAULT_HINT).format(chapter=chapter, page_file=page.replace("/", "__"))
    message = failure["message"] or _short(failure["text"])
    if function == ANOTHER_MACHINE:
        cells = sorted(set(re.findall(r"chapters/(\d\d_\w+\.ipynb)::Cell (\d+)", failure["text"])))
        if cells:
            return [
                Failure(describe_cell(n, int(k), chapters), "output changes on another machine", hint, rerun)
                for n, k in cells
            ]
    where = page if "html" in nodeid.split("[")[-1] else chapter
    if failure["when"] != "call":
        message = f"({failure['when']} failed) {message}"
    return [Failure(f"{where} [{function}]", _short(message), hint, rerun)]


# --- running it -------------------------------------------------------------------------------


def _pytest(arguments: list[str], report: Path, env: dict[str, str]) -> tuple[int, list[dict]]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "tools.check_chapter",
        "-p",
        "no:cacheprovider",
        "--check-report",
        str(report),
        "-q",
        "--no-header",
        "-rN",
        *arguments,
    ]
    returncode = subprocess.run(command, cwd=ROOT, env=env).returncode
    failures = json.loads(report.read_text(encoding="utf-8")) if report.exists() else []
    if returncode not in (0, 1, 5) and not failures:  # pytest itself failed (usage, collection …)
        failures = [{"nodeid": "pytest " + " ".join(arguments), "when": "run", "message": "", "text": ""}]
    return returncode, failures


ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def build_problems(log: str, limit: int = 10) -> list[str]:
    """The build's warnings and errors, each once, without terminal colours (else its last lines)."""
    lines = [ANSI_COLOUR.sub("", line).strip() for line in log.splitlines()]
    problems = list(dict.fromkeys(line for line in lines if re.search(r"WARNING|ERROR|Error", line)))
    if not problems:
        return [line for line in lines if line][-limit:]
    more = [f"… and {len(problems) - limit} more (make book shows them all)"] if len(problems) > limit else []
    return problems[:limit] + more


def check(notebooks: list[Path], execute_first: bool = True, workers: int = WORKERS) -> int:
    """Run every check of ``notebooks``; print a summary; return 0 when all passed."""
    from tools.notebooks import execute

    start = time.perf_counter()
    stems = [path.stem for path in notebooks]
    relative = [str(path.relative_to(ROOT)) for path in notebooks]
    print(f"make check: {', '.join(relative)}", flush=True)
    if execute_first:
        for path, name in zip(notebooks, relative, strict=True):
            try:
                seconds = execute(path)
            except Exception as error:  # nbclient's CellExecutionError names the cell and the error
                print(
                    f"\nFAILED  {name} does not run: {error}\n"
                    f"    what to do: fix that cell; the chapter was not saved."
                )
                return 1
            print(f"executed {name} in {seconds:.1f} s", flush=True)

    failures: list[dict] = []
    scratch = Path(tempfile.mkdtemp(prefix="nqm-check-"))
    build_log = scratch / "build.log"
    with build_log.open("w") as log:
        build = subprocess.Popen(build_command(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    print("building the site in the background (_build/html) …", flush=True)

    lint = subprocess.run(
        [str(Path(sys.executable).parent / "ruff"), "check", "--output-format", "concise", *relative],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if lint.returncode != 0:
        findings = [line for line in lint.stdout.splitlines() if line.startswith("chapters/")]
        failures.append({"nodeid": "ruff", "when": "lint", "message": "\n      ".join(findings), "text": ""})

    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    selection = ["--check-chapters", ",".join(stems)]
    tests = [str(path.relative_to(ROOT)) for path in chapter_test_files()]
    parallel = ["-n", str(workers)] if workers > 1 else []
    nbval_code, nbval_failures = _pytest(
        [*parallel, *selection, "--check-phase", "nbval", *relative, *tests], scratch / "nbval.json", env
    )

    failures += nbval_failures
    build_code = build.wait()
    print(
        f"site built in {time.perf_counter() - start:.0f} s since the start"
        if build_code == 0
        else "the site build FAILED",
        flush=True,
    )
    if build_code != 0:  # warnings are errors; with --keep-going every page is written all the same
        problems = build_problems(build_log.read_text(encoding="utf-8", errors="replace"))
        message = "\n      ".join(problems)
        failures.append({"nodeid": "site build", "when": "build", "message": message, "text": ""})
    if (html_folder() / "notebooks").is_dir():
        changed = copy_student_notebooks(html_folder())
        if changed:
            print(f"student notebooks updated in notebooks/: {', '.join(changed)} (commit them)", flush=True)
    checks_env = {**env, "NQM_BUILT_SITE": str(html_folder())}
    _, check_failures = _pytest(
        [*selection, "--check-phase", "checks", *tests], scratch / "checks.json", checks_env
    )
    failures += check_failures

    elapsed = time.perf_counter() - start
    if not failures and nbval_code in (0, 5):
        print(f"\nmake check: all checks of {', '.join(relative)} passed in {elapsed:.0f} s.")
        return 0
    print(f"\nmake check: {len(failures)} failed check(s) of {', '.join(relative)} ({elapsed:.0f} s):")
    for failure in failures:
        if failure["nodeid"] == "site build":
            print(
                f"- the site build (log: {build_log}) warned or failed:\n      {failure['message']}\n"
                "    what to do: fix each of these (warnings are errors), in whichever page they are"
            )
            continue
        if failure["nodeid"] == "ruff":
            print(
                f"- ruff (make test lints the chapters too):\n      {failure['message']}\n"
                f"    what to do: fix these; `.venv/bin/ruff check --fix {' '.join(relative)}` fixes some"
            )
            continue
        for line in explain(failure, executed=execute_first):
            print(line)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Check the chapters named on the command line, or those changed since the last commit."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="default: chapters changed since the last commit"
    )
    parser.add_argument("--no-execute", action="store_true", help="check the saved outputs as they are")
    parser.add_argument("--workers", type=int, default=WORKERS, help="pytest-xdist workers (default 2)")
    args = parser.parse_args(argv)
    notebooks = [path.resolve() for path in args.notebooks]
    for path in notebooks:
        if path.parent != CHAPTERS or path.suffix != ".ipynb" or not path.exists():
            parser.error(f"{path} is not a chapter notebook (chapters/NN_name.ipynb)")
    if not notebooks:
        notebooks = changed_chapters()
        if not notebooks:
            print(
                "make check: no chapter changed since the last commit (git diff HEAD, untracked files); "
                "nothing to check. Name one: make check NB=chapters/NN_name.ipynb"
            )
            return 0
    return check(notebooks, execute_first=not args.no_execute, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
