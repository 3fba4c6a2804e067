"""The built site, loaded page by page in a real browser (Debian's chromium via Playwright).

Every page must load from the local server alone (no request to any other host, none
failing), log no console error, render every formula with MathJax (no raw TeX, no MathJax
error), load every image, and show each chapter's interactive figure. Search must find a
term and the prev/next links must walk the table of contents in order. A full-page
screenshot of every page is saved under ``_build/screenshots/`` for reviewers.
"""

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from playwright.sync_api import sync_playwright

from tools.notebooks import repository_url

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# The flags this sandbox needs: no background traffic to Google's hosts, no GPU, no sandbox (root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def toc_pages():
    """Pages in reading order: the root, then every file of the table of contents."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    return [f"{name}.html" for name in files]


PAGES = toc_pages() + ["search.html", "genindex.html"]


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), (
        f"chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageLog:
    """Console errors, failed requests and off-site requests seen while a page loads."""

    def __init__(self, page, site_host):
        self.console_errors, self.failed, self.off_site = [], [], []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        page.on("requestfailed", lambda r: self.failed.append(r.url))
        page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

        def check_host(request):
            host = urlparse(request.url).netloc
            if request.url.startswith(("http:", "https:")) and host != site_host:
                self.off_site.append(request.url)

        page.on("request", check_host)


def open_page(browser, site_url, name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log = PageLog(page, urlparse(site_url).netloc)
    page.goto(f"{site_url}/{name}", wait_until="networkidle")
    if page.evaluate("Boolean(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
        page.evaluate("MathJax.startup.promise")
    return page, log


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_cleanly_offline_with_math_and_images(browser, site_url, name):
    page, log = open_page(browser, site_url, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name.replace('/', '__')}.png"), full_page=True)

    assert log.off_site == [], f"{name}: requests to other hosts {log.off_site}"
    assert log.failed == [], f"{name}: failed requests {log.failed}"
    assert log.console_errors == [], f"{name}: console errors {log.console_errors}"

    math = page.evaluate("document.querySelectorAll('.math').length")
    unrendered = page.evaluate(
        "Array.from(document.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container')).length"
    )
    assert unrendered == 0, f"{name}: {unrendered} of {math} formulas not rendered by MathJax"
    assert page.evaluate("document.querySelectorAll('mjx-merror').length") == 0, f"{name}: MathJax errors"

    broken = page.evaluate(
        "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == [], f"{name}: images that did not load {broken}"
    page.close()


@pytest.mark.parametrize("name", [p for p in toc_pages() if p.startswith("chapters/")])
def test_every_chapter_has_formulas_and_an_interactive_figure_showing_its_default(browser, site_url, name):
    page, _ = open_page(browser, site_url, name)
    assert page.evaluate("document.querySelectorAll('mjx-container').length") > 0, f"{name}: no formulas"
    widgets = page.evaluate(
        """Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
             .map(s => {
                 const area = s.closest('.cell_output') || s.parentElement;
                 const img = area.querySelector('img');
                 return {figure: Boolean(img && img.complete && img.naturalWidth > 0),
                         note: area.innerText.includes('Interactive figure')};
             })"""
    )
    assert widgets, f"{name}: no interactive figure"
    for widget in widgets:
        assert widget["figure"], f"{name}: an interactive figure's default image is missing"
        assert widget["note"], f"{name}: an interactive figure lacks the note on how to run it live"
    page.close()


@pytest.mark.parametrize("name", [p for p in toc_pages() if p.startswith("chapters/")])
def test_every_chapter_has_launch_and_download_buttons(browser, site_url, name):
    page, _ = open_page(browser, site_url, name)
    links = page.evaluate("Array.from(document.querySelectorAll('a')).map(a => a.href)")
    notebook = name.removesuffix(".html") + ".ipynb"
    repository = repository_url().removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{repository}/blob/main/{notebook}"
    assert colab in links, f"{name}: no Colab button for {notebook}"
    assert any(link.startswith("https://mybinder.org/v2/gh/") and notebook in link for link in links)
    download = f"{site_url}/_sources/{notebook}"
    assert download in links, f"{name}: no .ipynb download button"
    assert page.request.get(download).ok, f"{name}: the .ipynb download is broken"
    page.close()


def test_search_finds_a_term(browser, site_url):
    page, log = open_page(browser, site_url, "search.html?q=curvature")
    page.wait_for_selector("#search-results ul li", timeout=15_000)
    hits = page.evaluate("document.querySelectorAll('#search-results ul li').length")
    assert hits >= 2, f"search for 'curvature' found {hits} pages"
    assert log.console_errors == []
    page.close()


def test_next_links_walk_the_table_of_contents_in_order(browser, site_url):
    pages = toc_pages()
    page, _ = open_page(browser, site_url, pages[0])
    visited = [pages[0]]
    while page.locator("a.right-next").count():
        page.locator("a.right-next").first.click()
        page.wait_for_load_state("load")
        visited.append(page.url.removeprefix(site_url + "/").split("#")[0])
    assert visited == pages
    page.locator("a.left-prev").first.click()
    page.wait_for_load_state("load")
    assert page.url.removeprefix(site_url + "/") == pages[-2]
    page.close()
