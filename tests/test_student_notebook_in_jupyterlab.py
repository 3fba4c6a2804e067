"""A student notebook in a real client: JupyterLab (pinned, from PyPI) in Debian's chromium.

Plays a student who opens ``notebooks/02_sgd.ipynb`` in JupyterLab and runs it: JupyterLab is
started on a free local port, with a token, no browser, and a temporary root folder, settings
and runtime folders (nothing of the user's Jupyter set-up is read or written); Playwright drives
Debian's chromium. Before Run All the Markdown must already read well (numbers written in, no raw
MyST, formulas typeset by JupyterLab's MathJax, solutions folded); after Run All every code cell
has run, the widgets render (no "Error displaying widget") and moving a slider redraws the figure.
Screenshots go to ``_build/screenshots/jupyterlab_*.png``.

Run it alone with ``.venv/bin/pytest -q tests/test_student_notebook_in_jupyterlab.py``
(about 30–60 s; it is part of ``make test``).
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import sync_playwright

from tests.test_site_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_student_notebooks import glued_texts

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "02_sgd.ipynb"
SCREENSHOTS = ROOT / "_build" / "screenshots"
#: JupyterLab user settings: no news, and every cell in the page (no windowing), so that the
#: whole notebook can be checked without scrolling it into view.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
RAW_MYST = re.compile(r"\{glue|\{doc\}|\{cite|\{numref\}|\{prf:|\{ref\}|\{eq\}|:::|\(\S+\)=")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """JupyterLab serving a copy of the student notebook; yields (base URL, token, root folder)."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "root"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    for name, value in SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter-lab"),
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={home / 'settings'}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # never asks PyPI
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI and this sandbox run as root
        ],
        env=env,
        stdout=(home / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (home / "server.log").read_text()
            assert time.monotonic() < deadline, "JupyterLab did not start within 60 s"
            time.sleep(0.5)
        yield base, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def markdown_text(page) -> str:
    return page.evaluate(
        "Array.from(document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown'))"
        ".map(e => e.innerText).join('\\n')"
    )


def test_student_notebook_reads_runs_and_redraws_in_jupyterlab(jupyterlab):
    base, token, root = jupyterlab
    notebook = nbformat.read(root / NOTEBOOK, as_version=4)
    start = time.monotonic()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    hidden_sources = sum(bool(cell.metadata.get("jupyter", {}).get("source_hidden")) for cell in code_cells)
    folds = sum(cell.source.count("<details>") for cell in notebook.cells if cell.cell_type == "markdown")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        off_site, errors = [], []
        page.on("request", lambda r: None if r.url.startswith((base, "data:")) else off_site.append(r.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-MarkdownCell .jp-RenderedMarkdown", timeout=60_000)
        page.wait_for_function(
            "document.querySelectorAll('.jp-Notebook .jp-Cell').length >= "
            f"{len(notebook.cells)} && document.querySelectorAll('mjx-container').length > 0",
            timeout=60_000,
        )
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

        # Before Run All: the text reads as on the site.
        text = markdown_text(page)
        raw = RAW_MYST.findall(text)
        assert raw == [], f"raw MyST in the rendered Markdown: {raw[:5]}"
        missing = [value for value in glued_texts(ROOT / "chapters" / NOTEBOOK) if value not in text]
        assert missing == [], f"glued numbers not shown: {missing[:5]}"
        assert page.evaluate("document.querySelectorAll('mjx-merror').length") == 0, "MathJax errors"
        unrendered = [line for line in text.split("\n") if "$" in line]
        assert unrendered == [], f"untypeset math: {unrendered[:3]}"
        details = page.evaluate(
            "Array.from(document.querySelectorAll('.jp-RenderedMarkdown details')).map(d => d.open)"
        )
        assert details == [False] * folds, f"{folds} folds expected, closed: {details}"
        assert "Error displaying widget" not in page.inner_text(".jp-Notebook"), "before Run All"
        collapsed = page.evaluate("document.querySelectorAll('.jp-Cell .jp-InputPlaceholder').length")
        assert collapsed == hidden_sources, f"{collapsed} folded code cells, {hidden_sources} expected"
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab_before_run_all.png"))

        # Run All from the menu, as a student would.
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()
        running = (
            "Array.from(document.querySelectorAll('.jp-InputPrompt')).some(p => p.innerText.includes('*'))"
        )
        page.wait_for_function(running, timeout=30_000)
        idle = "document.querySelector(\".jp-Notebook-ExecutionIndicator[data-status='idle']\")"
        page.wait_for_function(f"!({running}) && {idle}", timeout=120_000)
        page.keyboard.press("Control+s")  # what ran is what is saved: every code cell, in order
        page.wait_for_function("!document.querySelector('.jp-mod-dirty')", timeout=30_000)
        saved = nbformat.read(root / NOTEBOOK, as_version=4)
        ran = [cell for cell in saved.cells if cell.cell_type == "code"]
        counts = [cell.execution_count for cell in ran]
        assert counts == list(range(1, len(code_cells) + 1)), f"execution counts after Run All: {counts}"
        failures = [
            output.get("ename") or output.get("text", "")[:300]
            for cell in ran
            for output in cell.outputs
            if output.output_type == "error" or output.get("name") == "stderr"
        ]
        assert failures == [], f"errors or warnings printed: {failures}"
        assert "Error displaying widget" not in page.inner_text(".jp-Notebook")
        assert page.locator(".jp-OutputArea-output .widget-slider").count() > 0, "no slider rendered"

        # A fold opens on a click and shows its solution.
        summary = page.locator(".jp-RenderedMarkdown details summary").first
        summary.scroll_into_view_if_needed()
        summary.click()
        assert summary.evaluate("s => s.parentElement.open && s.parentElement.innerText.length > 40")

        # Move the first slider of the last interactive figure: its figure must be redrawn.
        cell = page.locator(".jp-CodeCell", has=page.locator(".widget-slider")).last
        image = cell.locator(".jp-OutputArea-output img").last
        before = image.get_attribute("src")
        cell.scroll_into_view_if_needed()
        handle = cell.locator(".widget-slider .noUi-handle").first
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([cell, before]) => { const imgs = cell.querySelectorAll('.jp-OutputArea-output img');"
            " return imgs.length && imgs[imgs.length - 1].src !== before; }",
            arg=[cell.element_handle(), before],
            timeout=30_000,
        )
        cell.screenshot(path=str(SCREENSHOTS / "jupyterlab_slider_moved.png"))
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab_after_run_all.png"))
        browser.close()
    assert off_site == [], f"JupyterLab's page asked for other hosts: {off_site[:5]}"
    assert errors == [], f"page errors: {errors}"
    elapsed = time.monotonic() - start
    (SCREENSHOTS / "jupyterlab_seconds.json").write_text(json.dumps({"seconds": round(elapsed, 1)}))
