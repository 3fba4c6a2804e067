"""Shared fixtures: the built site (one build per test run, shared by every worker) and its server.

The site is built once per ``pytest`` run, however many workers ``pytest-xdist`` starts: in a
folder that all workers of the run share, under a file lock, so that the first worker to ask
builds it and the others wait for it and read its result. The build starts in the background as
soon as a worker's session begins (if any selected test needs the site), so that it runs while
the other tests do, at a higher CPU priority than theirs (the site tests, which come last, wait
for it; frames of the live figures may have to be drawn first); a site test waits for it only if
it is not finished yet.

With ``NQM_BUILT_SITE=<html folder>`` the site tests use that already built site instead
(e.g. ``_build/html`` after ``make book``), to check a change to the browser tests quickly.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tools.book import build_once
from tools.parallel_tests import SITE_FIXTURES

#: How much lower the tests' CPU priority is than the site build's while it runs (``nice``).
YIELD_TO_THE_BUILD = 5


def shared_folder(tmp_path_factory: pytest.TempPathFactory, config: pytest.Config) -> Path:
    """A folder shared by every process of this run: under xdist, the workers' common parent."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


@pytest.fixture(scope="session", autouse=True)
def _site_build_in_the_background(request, tmp_path_factory):
    """Start building the site when the session starts, if a selected test needs it."""
    needed = any(SITE_FIXTURES & set(getattr(item, "fixturenames", ())) for item in request.session.items)
    if not needed or os.environ.get("NQM_BUILT_SITE"):
        yield
        return
    folder = shared_folder(tmp_path_factory, request.config) / "book"
    tests_thread, niced = threading.get_native_id(), threading.Event()

    def build_then_restore_priority() -> None:
        try:
            build_once(folder)
        finally:
            niced.wait()
            with contextlib.suppress(PermissionError):  # raising a priority again needs root (CI has it)
                os.setpriority(os.PRIO_PROCESS, tests_thread, priority)

    builder = threading.Thread(target=build_then_restore_priority, name="site build", daemon=True)
    builder.start()
    # The site tests wait for the build: let it have the cores first. On Linux a thread's nice
    # value is its own, so the build (started by the builder thread) keeps the normal priority
    # while the tests of this worker, and the kernels and browsers they start, yield to it until
    # it is done (then the browser tests, timed to 100 ms, run at the normal priority again).
    priority = os.getpriority(os.PRIO_PROCESS, tests_thread)
    os.nice(YIELD_TO_THE_BUILD)
    niced.set()
    yield
    builder.join()  # the build is someone's to use: never leave it half done


@pytest.fixture(scope="session")
def built_site(request, tmp_path_factory):
    """The built book: (completed process, html folder); built with warnings as errors."""
    if os.environ.get("NQM_BUILT_SITE"):
        return subprocess.CompletedProcess([], 0, "", ""), Path(os.environ["NQM_BUILT_SITE"])
    result = build_once(shared_folder(tmp_path_factory, request.config) / "book")
    process = subprocess.CompletedProcess([], result["returncode"], result["stdout"], result["stderr"])
    return process, Path(result["html"])


@pytest.fixture(scope="session")
def site_url(built_site):
    """Serve the built site on 127.0.0.1 (a free port) for the browser tests."""
    result, html = built_site
    assert result.returncode == 0, "the site did not build: see test_book.py"
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass
