"""How `make test` shares the suite between pytest-xdist workers (used by the root ``conftest.py``).

- the cells of one chapter run in one worker, in order (nbval runs a notebook's cells as separate
  tests that share one kernel);
- the tests that share an expensive module-scoped fixture (:data:`SHARED_FIXTURES`) run in one
  worker, so that it is made once, not once per worker;
- the browser tests that share a loaded page (:data:`PAGE_FIXTURES`, parametrised by the page's
  ``name``) run in one worker per page, so that each page is loaded (and its formulas typeset,
  2–4 CPU seconds for a chapter) once per run, not once per worker;
- every other test goes to whichever worker is free, and the work is ordered longest first so
  that the workers finish together: each chapter under another machine's kernels, then each
  chapter's nbval run (slowest chapters first, from ``benchmarks/results.json``), then the tests
  with shared fixtures, the other tests, and the tests of the built site last (the site is built
  in the background meanwhile: ``tests/conftest.py``).

pytest-xdist's own ``--dist loadgroup`` cannot group with this pytest: it renames items through
an attribute (``_nodeid``) that pytest 9 no longer reads. So the grouping is a scheduler of our
own (:func:`chapter_scheduling`), which learns the fixture groups from a file the workers write
when they collect.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Module-scoped fixtures that take seconds to make: the tests that use one share a worker.
SHARED_FIXTURES = {"small_book", "colab_like_kernel", "jupyterlab", "scheduled", "monte_carlo"}
#: Module-scoped fixtures of ``tests/test_site_browser.py`` that keep each page loaded once per worker.
PAGE_FIXTURES = {"loaded_page", "phone_page"}
#: The fixtures of ``tests/conftest.py`` that give a test the built site.
SITE_FIXTURES = {"built_site", "site_url"}
NBVAL_CELL = re.compile(r"^(chapters/[^:]+\.ipynb)::Cell \d+$")
#: The test that runs one chapter's nbval under another machine's kernels (``tests/test_any_machine.py``).
ANOTHER_MACHINE = "test_chapter_passes_nbval_on_another_machine"


def chapter_seconds() -> dict[str, float]:
    """Each chapter's last measured execution time (``make bench``), to start the slowest first."""
    try:
        results = json.loads((ROOT / "benchmarks" / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prefix, suffix = "chapter_", "_seconds_median"
    return {
        key.removeprefix(prefix).removesuffix(suffix): value
        for key, value in results.items()
        if key.startswith(prefix) and key.endswith(suffix)
    }


def _chapter_of(item: pytest.Item) -> str | None:
    """The chapter an nbval cell belongs to, or that a per-chapter nbval re-run runs."""
    if NBVAL_CELL.match(item.nodeid):
        return Path(item.nodeid.split("::")[0]).stem
    callspec = getattr(item, "callspec", None)
    if callspec is not None and getattr(item, "originalname", "") == ANOTHER_MACHINE:
        return Path(str(callspec.params["path"])).stem
    return None


def work_rank(item: pytest.Item, seconds: dict[str, float]) -> tuple[int, float]:
    """Where an item goes in the order of work: lower first (see the module docstring)."""
    chapter = _chapter_of(item)
    fixtures = set(getattr(item, "fixturenames", ()))
    if chapter is not None:
        return (1 if NBVAL_CELL.match(item.nodeid) else 0, -seconds.get(chapter, 0.0))
    if SITE_FIXTURES & fixtures:
        return (4, 0.0)
    if SHARED_FIXTURES & fixtures:
        return (2, 0.0)
    return (3, 0.0)


def fixture_groups(items: list[pytest.Item]) -> dict[str, str]:
    """Test id -> the group whose tests must run in one worker (for the scheduler): its shared
    fixture's, or its page's for a browser test on a shared loaded page."""
    groups = {}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        shared = sorted(SHARED_FIXTURES & fixtures)
        page = getattr(getattr(item, "callspec", None), "params", {}).get("name")
        if shared:
            groups[item.nodeid] = "fixture:" + "+".join(shared)
        elif PAGE_FIXTURES & fixtures and page is not None:
            groups[item.nodeid] = f"page:{page}"
    return groups


def order_longest_first(items: list[pytest.Item]) -> None:
    """Sort the items in the order of work (stable: a notebook's cells stay together, in order)."""
    seconds = chapter_seconds()
    items.sort(key=lambda item: work_rank(item, seconds))


def write_fixture_groups(items: list[pytest.Item], path: Path, worker: str) -> None:
    """Write :func:`fixture_groups` to ``path`` for the scheduler (atomically: workers race)."""
    scratch = path.with_name(f"{path.name}.{worker}")
    scratch.write_text(json.dumps(fixture_groups(items)), encoding="utf-8")
    scratch.replace(path)  # every worker collects the same tests: any complete copy will do


def scope_of(nodeid: str, groups: dict[str, str]) -> str:
    """The scope a test is scheduled with: its notebook, its shared fixture's group, or itself."""
    cell = NBVAL_CELL.match(nodeid)
    if cell:  # correctness: one kernel per notebook
        return cell.group(1)
    return groups.get(nodeid, nodeid)


def chapter_scheduling(config: pytest.Config, groups_file: Path, log=None) -> object:
    """pytest-xdist's scheduling by scope, with the scopes of :func:`scope_of`.

    Work units are handed out in the order of the collection (which the root ``conftest.py``
    sorted longest first) to whichever worker has fewer than three tests left to run. The fixture
    groups are read from ``groups_file``, which the workers write when they collect.
    """
    from xdist.scheduler import LoadScopeScheduling  # only where tests are distributed

    class ChapterScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if not hasattr(self, "_groups"):  # the workers wrote it before reporting their collection
                try:
                    self._groups = json.loads(groups_file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    self._groups = {}
            return scope_of(nodeid, self._groups)

    config.option.loadscopereorder = False  # keep the order of the collection: longest first
    return ChapterScheduling(config, log)
