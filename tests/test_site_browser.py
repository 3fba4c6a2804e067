"""The built site, loaded page by page in a real browser (Debian's chromium via Playwright).

Every page must load from the local server alone (no request to any other host, none
failing), log no console error, render every formula with MathJax (no raw TeX, no MathJax
error), load every image, and show each chapter's interactive figure. Search must find a
term and the prev/next links must walk the table of contents in order. A full-page
screenshot of every page is saved under ``_build/screenshots/`` for reviewers.
"""

import json
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


CHAPTERS = [p for p in toc_pages() if p.startswith("chapters/")]


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_has_formulas_and_a_live_figure_with_labelled_controls(browser, site_url, name):
    page, _ = open_page(browser, site_url, name)
    assert page.evaluate("document.querySelectorAll('mjx-container').length") > 0, f"{name}: no formulas"
    figures = page.evaluate(
        """Array.from(document.querySelectorAll('.nqm-live')).map(f => {
             const img = f.querySelector('img.nqm-live-frame');
             return {id: f.dataset.figure,
                     figure: Boolean(img && img.complete && img.naturalWidth > 0),
                     note: f.innerText.includes('Live figure'),
                     controls: Array.from(f.querySelectorAll('input[type=range]')).map(i => ({
                         label: (i.labels[0] || {}).innerText || '',
                         shown: i.nextElementSibling.tagName === 'OUTPUT' ? i.nextElementSibling.innerText
                                                                          : '',
                         valuetext: i.getAttribute('aria-valuetext')}))};
           })"""
    )
    assert figures, f"{name}: no live figure"
    for figure in figures:
        assert figure["figure"], f"{name}: {figure['id']}: the default frame is missing"
        assert figure["note"], f"{name}: {figure['id']}: no note"
        assert figure["controls"], f"{name}: {figure['id']}: no controls"
        for control in figure["controls"]:
            assert control["label"].strip(), f"{name}: {figure['id']}: a control without a label"
            assert control["shown"] and control["shown"] == control["valuetext"], f"{name}: {figure['id']}"
    left = page.evaluate(
        "document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length"
    )
    assert left == 0, f"{name}: empty notebook widget areas left on the page"
    page.close()


def _live_figures_of(name):
    """The declared figures whose explore(...) cell is in chapter ``name`` (from its source)."""
    import nbformat

    from book_ext.live_figures import figure_of_source

    notebook = nbformat.read(ROOT / name.replace(".html", ".ipynb"), as_version=4)
    found = []
    for cell in notebook.cells:
        figure = figure_of_source(cell.source) if cell.cell_type == "code" else None
        if figure is not None:
            found.append(figure)
    return found


@pytest.mark.parametrize("name", CHAPTERS)
def test_live_figures_answer_the_keyboard_offline_in_under_100_ms(browser, site_url, name):
    """Move every live control with the arrow keys: the expected frame is shown, fast."""
    page, log = open_page(browser, site_url, name)
    figures = _live_figures_of(name)
    assert figures, f"{name}: no explore(...) cell"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for figure in figures:
        root = page.locator(f"#live-{figure.id}")
        assert root.count() == 1, f"{name}: live figure {figure.id} not on the page"
        values = {c.name: c.default for c in figure.live_controls}
        assert root.get_attribute("data-frame") == str(figure.frame_index(**values))
        for control in figure.live_controls:
            grid = control.site_values
            position = grid.index(values[control.name])
            key, step = ("ArrowRight", 1) if position + 1 < len(grid) else ("ArrowLeft", -1)
            values[control.name] = grid[position + step]
            expected = figure.frame_index(**values)
            slider = root.locator(f"input[name={control.name}]")
            slider.focus()
            page.keyboard.press(key)
            page.wait_for_function(
                f"document.querySelector('#live-{figure.id}').dataset.frame === '{expected}' && "
                f"document.querySelector('#live-{figure.id}').dataset.redrawMs !== undefined",
                timeout=10_000,
            )
            frame = root.locator("img.nqm-live-frame")
            src = frame.evaluate("i => i.complete && i.naturalWidth > 0 && i.src")
            assert src and src.endswith(f"/{expected}.png"), f"{name}: {figure.id}.{control.name}: {src}"
            shown = root.locator(f"output[for=live-{figure.id}-{control.name}]").inner_text()
            assert shown == control.text(values[control.name]), f"{name}: {figure.id}.{control.name}"
            redraw = float(root.get_attribute("data-redraw-ms"))
            assert redraw < 100, f"{name}: {figure.id}.{control.name}: redraw took {redraw:.0f} ms"
            page.evaluate(f"delete document.querySelector('#live-{figure.id}').dataset.redrawMs")
        root.screenshot(path=str(SCREENSHOTS / f"live_{figure.id}_moved.png"))
    assert log.off_site == [], f"{name}: requests to other hosts {log.off_site}"
    assert log.failed == [], f"{name}: failed requests {log.failed}"
    assert log.console_errors == [], f"{name}: console errors {log.console_errors}"
    page.close()


FIGURES_JS = "Array.from(document.querySelectorAll('.nqm-live'))"


def test_live_figure_redraw_times_are_recorded(browser, site_url):
    """Redraw time after a control move, over every control of chapter 2 (median and max, ms)."""
    page, _ = open_page(browser, site_url, "chapters/02_sgd.html")
    times = []
    for slider in page.locator(".nqm-live input[type=range]").all():
        slider.focus()
        room = slider.evaluate("i => Number(i.max) - Number(i.value)")
        keys = ("ArrowRight", "ArrowRight", "ArrowLeft", "ArrowLeft")
        for key in keys if room >= 2 else keys[::-1]:
            page.evaluate("document.querySelectorAll('.nqm-live').forEach(f => delete f.dataset.redrawMs)")
            page.keyboard.press(key)
            page.wait_for_function(f"{FIGURES_JS}.some(f => f.dataset.redrawMs)", timeout=10_000)
            times.append(float(page.evaluate(f"{FIGURES_JS}.find(f => f.dataset.redrawMs).dataset.redrawMs")))
    times.sort()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    summary = {"moves": len(times), "median_ms": times[len(times) // 2], "max_ms": times[-1]}
    (SCREENSHOTS / "live_redraw_ms.json").write_text(json.dumps(summary), encoding="utf-8")
    assert times and times[-1] < 100, f"redraw times (ms): {times}"
    page.close()


def _smallest_text_px(page):
    """For every image of the page's article: page, src, effective px of the smallest font."""
    from nqm_lib.plotting import SMALLEST_FONT_SIZE, STYLE

    scale = SMALLEST_FONT_SIZE * STYLE["figure.dpi"] / 72
    return page.evaluate(
        f"""Array.from(document.querySelectorAll('article.bd-article img'))
             .filter(i => i.naturalWidth > 0 && !i.closest('.navbar-brand'))
             .map((i, n) => ({{src: `figure ${{n + 1}} (${{i.getAttribute('src')}})`,
                          px: {scale} * i.getBoundingClientRect().width / i.naturalWidth}}))"""
    )


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_figure_shows_its_smallest_text_at_least_9_css_px(browser, site_url, name):
    """At a 1280-px window: SMALLEST_FONT_SIZE × dpi/72 × displayed/natural width ≥ 9 px."""
    page, _ = open_page(browser, site_url, name)
    images = _smallest_text_px(page)
    page.close()
    assert images, f"{name}: no figures"
    small = [f"{name} {image['src']}: {image['px']:.1f} px" for image in images if image["px"] < 9]
    assert not small, "figures shown too small for their text (need ≥ 9 CSS px):\n" + "\n".join(small)


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_figure_links_to_its_full_resolution_png(browser, site_url, name):
    page, _ = open_page(browser, site_url, name)
    unlinked = page.evaluate(
        """Array.from(document.querySelectorAll('article.bd-article img'))
             .filter(i => !i.closest('.navbar-brand'))
             .filter(i => { const a = i.closest('a'); return !a || !a.href.endsWith('.png'); })
             .map(i => i.getAttribute('src'))"""
    )
    assert unlinked == [], f"{name}: figures that do not link to their PNG {unlinked}"
    page.close()


def test_clicking_a_figure_opens_the_png_itself(browser, site_url):
    page, log = open_page(browser, site_url, "chapters/02_sgd.html")
    for selector in ("article .cell_output img:not(.nqm-live-frame)", "img.nqm-live-frame"):
        image = page.locator(selector).first
        natural = image.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        image.scroll_into_view_if_needed()
        with page.expect_navigation():
            image.click()
        assert page.url.endswith(".png"), page.url
        assert page.url.startswith(site_url), "the figure opened off-site"
        opened = page.evaluate("[document.images[0].naturalWidth, document.images[0].naturalHeight]")
        assert opened == natural, f"{selector}: opened {opened}, shown {natural}"
        page.go_back()
    assert log.off_site == []
    page.close()


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_has_launch_and_download_buttons(browser, site_url, name):
    page, _ = open_page(browser, site_url, name)
    links = page.evaluate("Array.from(document.querySelectorAll('a')).map(a => a.href)")
    notebook = f"notebooks/{Path(name).stem}.ipynb"  # the student notebook (book_ext/student_notebooks.py)
    repository = repository_url().removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{repository}/blob/main/{notebook}"
    assert colab in links, f"{name}: no Colab button for {notebook}"
    assert any(link.startswith("https://mybinder.org/v2/gh/") and notebook in link for link in links)
    download = f"{site_url}/{notebook}"
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
