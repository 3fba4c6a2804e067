"""pytest configuration for the whole repository (unit tests, doctests and nbval over the chapters).

nbval's strict comparison of the chapters' outputs compares numbers up to rounding (a relative
1e-9), so that the suite passes on any CPU: see ``tools/nbval_numbers.py``.

``make test`` runs the suite in two pytest-xdist workers (``-n 2``): the hooks below order the
work longest first and, for xdist's default mode, schedule it with
:func:`tools.parallel_tests.chapter_scheduling` (a notebook's cells in one worker, in order; tests
sharing an expensive fixture in one worker). Other ``--dist`` modes are left to pytest-xdist.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tools.nbval_numbers import install
from tools.parallel_tests import chapter_scheduling, order_longest_first, write_fixture_groups

install()

#: Where the workers write the fixture groups for the scheduler (``workerinput`` key).
GROUPS_FILE = "nqm_groups_file"
_GROUPS_PATH = pytest.StashKey[Path]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the work longest first; in an xdist worker, write the groups for the scheduler."""
    order_longest_first(items)
    workerinput = getattr(config, "workerinput", None)
    if workerinput and workerinput.get(GROUPS_FILE):
        write_fixture_groups(items, Path(workerinput[GROUPS_FILE]), workerinput["workerid"])


def pytest_configure(config: pytest.Config) -> None:
    """In the xdist controller of the default mode: a file for the workers' fixture groups."""
    controller = not hasattr(config, "workerinput")
    if controller and getattr(config.option, "numprocesses", None) and config.getvalue("dist") == "load":
        handle, name = tempfile.mkstemp(prefix="nqm-groups-", suffix=".json")
        os.close(handle)
        config.stash[_GROUPS_PATH] = Path(name)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the fixture groups' file."""
    path = config.stash.get(_GROUPS_PATH, None)
    if path is not None:
        path.unlink(missing_ok=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """Tell each xdist worker where to write the fixture groups."""
    path = node.config.stash.get(_GROUPS_PATH, None)
    if path is not None:
        node.workerinput[GROUPS_FILE] = str(path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Schedule xdist's default mode with :func:`~tools.parallel_tests.chapter_scheduling`."""
    path = config.stash.get(_GROUPS_PATH, None)
    return chapter_scheduling(config, path, log) if path is not None else None
