"""The instructor's tools: `make execute` is deterministic, `make check` checks the right things.

``make check`` (``tools/check_chapter.py``) must pick the chapters that changed, run exactly the
tests that concern them, and say what to do about each failure; ``make book`` and the test suite
build the site with one command (``tools/book.py``), once per test run however many workers ask.
"""

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from tools import book, check_chapter
from tools.book import BUILD_FLAGS, build_command, build_once, copy_student_notebooks, html_folder
from tools.check_chapter import changed_chapters, chapter_test_files, chapters_of_test, explain, selected
from tools.notebooks import chapter_notebooks, execute
from tools.parallel_tests import fixture_groups, scope_of, work_rank

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", chapter_notebooks()[:1], ids=lambda p: p.name)
def test_re_executing_an_unchanged_chapter_reproduces_the_committed_file_byte_for_byte(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    execute(copy)
    assert copy.read_bytes() == path.read_bytes(), (
        f"re-executing {path.name} changed it: outputs or metadata are not deterministic"
    )


# --- which chapters make check checks -----------------------------------------------------------


def git(folder, *args):
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


@pytest.fixture
def repository(tmp_path):
    """A small git repository: two committed chapters, a committed library file."""
    for name in ("chapters/01_first.ipynb", "chapters/02_second.ipynb", "nqm_lib/theory.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "start")
    return tmp_path


def test_check_selects_nothing_when_no_chapter_changed(repository):
    (repository / "nqm_lib" / "theory.py").write_text("# changed\n")  # not a chapter
    assert changed_chapters(repository) == []


def test_check_selects_edited_staged_and_untracked_chapters_in_file_order(repository):
    (repository / "chapters" / "02_second.ipynb").write_text('{"edited": 1}\n')
    (repository / "chapters" / "03_new.ipynb").write_text("{}\n")  # untracked
    (repository / "chapters" / "notes.txt").write_text("not a notebook\n")
    assert changed_chapters(repository) == [
        repository / "chapters" / n for n in ("02_second.ipynb", "03_new.ipynb")
    ]
    git(repository, "add", "chapters/02_second.ipynb")  # staged is still uncommitted
    assert repository / "chapters" / "02_second.ipynb" in changed_chapters(repository)


def test_check_with_nothing_changed_says_so_and_succeeds(monkeypatch, capsys):
    monkeypatch.setattr(check_chapter, "changed_chapters", lambda: [])
    assert check_chapter.main([]) == 0
    assert "no chapter changed since the last commit" in capsys.readouterr().out


def test_check_refuses_a_file_that_is_not_a_chapter(capsys):
    with pytest.raises(SystemExit):
        check_chapter.main(["README.md"])
    assert "is not a chapter notebook" in capsys.readouterr().err


# --- which tests make check runs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "nodeid, chapters",
    [
        (
            "tests/test_notebooks.py::test_first_code_cell_is_the_shared_setup_cell[03_momentum.ipynb]",
            {"03_momentum"},
        ),
        ("tests/test_site_browser.py::test_page_loads_cleanly[chapters/03_momentum.html]", {"03_momentum"}),
        (
            'tests/test_interactive.py::test_explore[03_momentum.ipynb-explore("momentum_risk")-import m]',
            {"03_momentum"},
        ),
        ("tests/test_site_browser.py::test_page_loads_cleanly[intro.html]", set()),
        ("tests/test_theory.py::test_risk[0.5-1]", set()),
        ("tests/test_theory.py::test_risk", set()),
        ("tests/test_x.py::test_y[103_momentum.ipynb]", set()),
    ],
    ids=["notebook", "page", "explore-call", "other-page", "numbers", "no-parameters", "longer-number"],
)
def test_a_test_belongs_to_the_chapters_its_parameter_id_names(nodeid, chapters):
    assert chapters_of_test(nodeid) == chapters


def test_the_nbval_phase_runs_the_chapters_nbval_tests_and_the_checks_phase_the_rest():
    another_machine = (
        "tests/test_any_machine.py::test_chapter_passes_nbval_on_another_machine[03_momentum.ipynb]"
    )
    page_test = "tests/test_site_browser.py::test_page[chapters/03_momentum.html]"
    notebook_test = "tests/test_notebooks.py::test_setup_cell[03_momentum.ipynb]"
    assert selected(another_machine, {"03_momentum"}, "nbval")
    assert not selected(another_machine, {"03_momentum"}, "checks")
    for test in (page_test, notebook_test):
        assert selected(test, {"03_momentum"}, "checks")
        assert not selected(test, {"03_momentum"}, "nbval")
    assert not selected(notebook_test, {"02_sgd"}, "checks")


def test_check_looks_in_every_test_file_that_parametrises_by_chapter():
    names = {path.name for path in chapter_test_files()}
    assert {"test_notebooks.py", "test_site_browser.py", "test_any_machine.py", "test_book.py"} <= names
    assert {"test_figure_captions.py", "test_reader_code.py", "test_student_notebooks.py"} <= names
    assert "test_theory.py" not in names and "test_validation.py" not in names


FAKE_TESTS = """
import pytest

CHAPTERS = ["01_first.ipynb", "03_momentum.ipynb"]

@pytest.mark.parametrize("path", CHAPTERS)
def test_chapter_passes_nbval_on_another_machine(path):
    pass

@pytest.mark.parametrize("path", CHAPTERS)
def test_structure(path):
    pass

@pytest.mark.parametrize("page", ["chapters/03_momentum.html", "chapters/01_first.html", "intro.html"])
def test_page(page):
    pass

def test_book_wide():
    pass
"""


@pytest.mark.parametrize(
    "phase, expected",
    [
        ("nbval", ["test_fake.py::test_chapter_passes_nbval_on_another_machine[03_momentum.ipynb]"]),
        (
            "checks",
            [
                "test_fake.py::test_structure[03_momentum.ipynb]",
                "test_fake.py::test_page[chapters/03_momentum.html]",
            ],
        ),
    ],
)
def test_the_plugin_collects_exactly_the_chapters_tests_of_each_phase(tmp_path, phase, expected):
    (tmp_path / "test_fake.py").write_text(FAKE_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tools.check_chapter", "-p", "no:cacheprovider", "--co", "-q",
         "--check-chapters", "03_momentum", "--check-phase", phase, "test_fake.py",
         "-c", "/dev/null", "--rootdir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected == expected, result.stdout + result.stderr


# --- what make check says about a failure ----------------------------------------------------------


@pytest.fixture
def chapters(tmp_path):
    """A chapters folder with one small notebook: a Markdown cell and three code cells."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("# setup\nimport numpy"),
        nbformat.v4.new_markdown_cell("Text."),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("\nprint(numpy.random.rand())"),
    ]
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"
    folder = tmp_path / "chapters"
    folder.mkdir()
    nbformat.write(notebook, folder / "03_momentum.ipynb")
    return folder


def failure(nodeid, message="", text="", when="call"):
    return {"nodeid": nodeid, "when": when, "message": message, "text": text}


def test_an_nbval_failure_names_the_code_cell_its_id_and_first_line(chapters):
    report = failure("chapters/03_momentum.ipynb::Cell 2", text="Cell 2: Cell outputs differ\n0.51 != 0.77")
    (line,) = explain(report, executed=True, chapters=chapters)
    assert (
        line.where == "code cell 2 (id cell-004, `print(numpy.random.rand())`) of chapters/03_momentum.ipynb"
    )
    assert "seed every random draw" in line.hint
    assert line.rerun == ".venv/bin/pytest -q 'chapters/03_momentum.ipynb::Cell 2'"
    (unexecuted,) = explain(report, executed=False, chapters=chapters)
    assert unexecuted.hint == "if the change is intended, run make execute NB=chapters/03_momentum.ipynb"


def test_another_machines_failure_names_each_cell_that_changed(chapters):
    text = "FAILED chapters/03_momentum.ipynb::Cell 1 - differ\nFAILED chapters/03_momentum.ipynb::Cell 2 - x"
    nodeid = "tests/test_any_machine.py::test_chapter_passes_nbval_on_another_machine[03_momentum.ipynb]"
    report = failure(nodeid, "AssertionError: with OpenBLAS kernel …", text)
    lines = explain(report, executed=True, chapters=chapters)
    assert [line.where.split(" (")[0] for line in lines] == ["code cell 1", "code cell 2"]
    assert all("significant_digits=3" in line.hint for line in lines)


def test_a_page_failure_names_the_page_the_problem_and_where_to_look(chapters):
    test = "test_page_loads_cleanly_offline_with_math_and_images"
    nodeid = f"tests/test_site_browser.py::{test}[chapters/03_momentum.html]"
    report = failure(nodeid, "AssertionError: chapters/03_momentum.html: images that did not load ['x.png']")
    (line,) = explain(report, executed=True, chapters=chapters)
    assert line.where.startswith(
        "chapters/03_momentum.html [test_page_loads_cleanly_offline_with_math_and_images]"
    )
    assert "images that did not load" in line.message
    assert "_build/screenshots/chapters__03_momentum.html.png" in line.hint
    structure = failure(
        "tests/test_notebooks.py::test_first_code_cell_is_the_shared_setup_cell[03_momentum.ipynb]"
    )
    (line,) = explain(structure, executed=False, chapters=chapters)
    assert line.where.startswith("chapters/03_momentum.ipynb") and "make execute NB=" in line.hint


# --- one site build per test run -------------------------------------------------------------------


def test_build_command_is_make_books_with_warnings_as_errors(tmp_path):
    command = build_command()
    assert command[1:3] == ["build", str(ROOT)] and set(BUILD_FLAGS) <= set(command)
    assert "--warningiserror" in BUILD_FLAGS
    assert build_command(tmp_path)[3:5] == ["--path-output", str(tmp_path)]
    assert html_folder(tmp_path) == tmp_path / "_build" / "html"


def test_copying_student_notebooks_makes_the_folder_exactly_the_builds(tmp_path):
    built, target = tmp_path / "html" / "notebooks", tmp_path / "notebooks"
    built.mkdir(parents=True)
    target.mkdir()
    (built / "01_a.ipynb").write_text("new")
    (built / "02_b.ipynb").write_text("same")
    (target / "01_a.ipynb").write_text("old")
    (target / "02_b.ipynb").write_text("same")
    (target / "09_gone.ipynb").write_text("stale")
    assert copy_student_notebooks(tmp_path / "html", target) == ["01_a.ipynb", "09_gone.ipynb"]
    assert sorted(p.name for p in target.iterdir()) == ["01_a.ipynb", "02_b.ipynb"]
    assert (target / "01_a.ipynb").read_text() == "new"
    with pytest.raises(FileNotFoundError, match="no student notebooks"):
        copy_student_notebooks(tmp_path / "nothing", target)


def test_the_site_is_built_once_however_many_workers_ask(tmp_path, monkeypatch):
    count = tmp_path / "builds"
    script = f"import time; time.sleep(0.5); open({str(count)!r}, 'a').write('x')"
    monkeypatch.setattr(book, "build_command", lambda output: [sys.executable, "-c", script])
    results = []
    workers = [
        threading.Thread(target=lambda: results.append(build_once(tmp_path / "book"))) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
        time.sleep(0.05)
    for worker in workers:
        worker.join()
    assert count.read_text() == "x", "the site was built more than once"
    assert len(results) == 3 and all(result == results[0] for result in results)
    assert results[0]["returncode"] == 0 and results[0]["html"] == str(tmp_path / "book" / "_build" / "html")
    assert json.loads((tmp_path / "book" / "result.json").read_text()) == results[0]


# --- how make test shares the work between two workers ---------------------------------------------


class FakeItem:
    def __init__(self, nodeid, fixtures=(), originalname="", params=None):
        self.nodeid, self.fixturenames, self.originalname = nodeid, list(fixtures), originalname
        if params is not None:
            self.callspec = type("CallSpec", (), {"params": params})()


ANOTHER = "test_chapter_passes_nbval_on_another_machine"


def test_the_longest_work_starts_first_and_the_site_tests_last():
    seconds = {"01_a": 3.0, "02_b": 9.0}
    items = [
        FakeItem("tests/test_site_browser.py::test_page[chapters/01_a.html]", ["site_url"]),
        FakeItem("tests/test_theory.py::test_risk"),
        FakeItem("chapters/01_a.ipynb::Cell 0"),
        FakeItem("chapters/02_b.ipynb::Cell 0"),
        FakeItem("tests/test_ema.py::test_claim", ["monte_carlo"]),
        FakeItem(
            f"tests/test_any_machine.py::{ANOTHER}[01_a.ipynb]",
            ["path"],
            ANOTHER,
            {"path": Path("01_a.ipynb")},
        ),
    ]
    order = [item.nodeid.split("::")[0] for item in sorted(items, key=lambda i: work_rank(i, seconds))]
    assert order == [
        "tests/test_any_machine.py",
        "chapters/02_b.ipynb",
        "chapters/01_a.ipynb",
        "tests/test_ema.py",
        "tests/test_theory.py",
        "tests/test_site_browser.py",
    ]


def test_a_notebooks_cells_and_a_shared_fixtures_tests_each_go_to_one_worker():
    items = [
        FakeItem("tests/test_ema.py::test_one", ["monte_carlo"]),
        FakeItem("tests/test_ema.py::test_two"),
    ]
    groups = fixture_groups(items)
    nodeids = ["chapters/02_b.ipynb::Cell 0", "chapters/02_b.ipynb::Cell 11", "tests/test_ema.py::test_one"]
    nodeids += ["tests/test_ema.py::test_two", "tests/test_x.py::test_y[chapters/02_b.ipynb::Cell 1]"]
    scopes = {nodeid: scope_of(nodeid, groups) for nodeid in nodeids}
    assert (
        scopes["chapters/02_b.ipynb::Cell 0"]
        == scopes["chapters/02_b.ipynb::Cell 11"]
        == "chapters/02_b.ipynb"
    )
    assert scopes["tests/test_ema.py::test_one"] == "fixture:monte_carlo"
    assert scopes["tests/test_ema.py::test_two"] == "tests/test_ema.py::test_two"
    assert scopes["tests/test_x.py::test_y[chapters/02_b.ipynb::Cell 1]"].startswith("tests/")


def test_the_browser_tests_of_one_loaded_page_go_to_one_worker():
    browser = "tests/test_site_browser.py"
    items = [
        FakeItem(f"{browser}::test_a[a.html]", ["site_url", "loaded_page"], "test_a", {"name": "a.html"}),
        FakeItem(f"{browser}::test_b[a.html]", ["site_url", "phone_page"], "test_b", {"name": "a.html"}),
        FakeItem(f"{browser}::test_a[b.html]", ["site_url", "loaded_page"], "test_a", {"name": "b.html"}),
        FakeItem(f"{browser}::test_c[a.html]", ["site_url"], "test_c", {"name": "a.html"}),
    ]
    scopes = [scope_of(item.nodeid, fixture_groups(items)) for item in items]
    assert scopes[0] == scopes[1] == "page:a.html" != scopes[2] == "page:b.html"
    assert scopes[3] == items[3].nodeid  # no shared page: free to go anywhere


def test_a_failed_build_is_reported_by_its_warnings_each_once_without_colours():
    warning = "\x1b[91m/x/chapters/01_a.ipynb:90002: WARNING: Duplicate target 'fig-a'.\x1b[39;49;00m"
    log = "\n".join(["reading sources...", warning, warning, "ERROR: broken", "build finished"])
    assert check_chapter.build_problems(log) == [
        "/x/chapters/01_a.ipynb:90002: WARNING: Duplicate target 'fig-a'.",
        "ERROR: broken",
    ]
    many = "\n".join(f"WARNING: number {n}" for n in range(15))
    assert check_chapter.build_problems(many, limit=10)[-1] == "… and 5 more (make book shows them all)"
    assert check_chapter.build_problems("Traceback\nboom\n") == ["Traceback", "boom"]
