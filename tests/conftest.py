"""Shared fixtures: the built site (built once per session) and a local server for it."""

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """Build the book once, with warnings as errors; return (completed process, html folder).

    With ``NQM_BUILT_SITE=<html folder>`` the site tests use that already built site instead
    (e.g. ``_build/html`` after ``make book``), to check a change to the browser tests quickly.
    """
    if os.environ.get("NQM_BUILT_SITE"):
        return subprocess.CompletedProcess([], 0, "", ""), Path(os.environ["NQM_BUILT_SITE"])
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [
            str(jupyter_book),
            "build",
            str(ROOT),
            "--path-output",
            str(out),
            "--warningiserror",
            "--nitpick",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result, out / "_build" / "html"


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
