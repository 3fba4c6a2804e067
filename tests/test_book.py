"""The site builds with warnings as errors, and shows the numbers the chapters computed."""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from tools.notebooks import chapter_notebooks

ROOT = Path(__file__).resolve().parent.parent
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]+))?`")


def as_number(text, spec):
    """The glued text as the number type its format spec expects (``d`` needs an int)."""
    return int(text) if spec.endswith("d") else float(text)


@pytest.fixture(scope="module")
def site(built_site):
    return built_site


def test_book_builds_without_warnings(site):
    result, html = site
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "WARNING" not in result.stdout + result.stderr
    assert (html / "index.html").exists()


#: The whole site, live frames at 1x and 2x included (issue 19's budget).
SITE_BUDGET_BYTES = 150 * 2**20


def test_site_fits_its_size_budget_without_copies_of_the_chapters(site):
    _, html = site
    assert not list((html / "_sources").glob("**/*.ipynb")), "the chapters' copies in _sources are unused"
    total = sum(path.stat().st_size for path in html.rglob("*") if path.is_file())
    assert total <= SITE_BUDGET_BYTES, f"the site is {total / 2**20:.1f} MiB, over its 150 MiB budget"


def test_build_does_not_execute_notebooks():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["execute"]["execute_notebooks"] == "off"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_page_shows_every_glued_number(site, path):
    _, html = site
    page = (html / "chapters" / f"{path.stem}.html").read_text(encoding="utf-8")
    notebook = nbformat.read(path, as_version=4)
    values = {
        output.metadata["scrapbook"]["name"]: output.data["application/papermill.record/text/plain"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "scrapbook" in output.get("metadata", {})
    }
    assert "{glue" not in page
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for match in GLUE_ROLE.finditer(cell.source):
            name, spec = match.group(1), match.group(2)
            text = values[name] if spec is None else format(as_number(values[name], spec), spec)
            assert text in page, f"{path.name}: glued {name} = {text} not on the page"


def test_library_reference_documents_every_public_name_of_every_module(site):
    import importlib
    import pkgutil

    import nqm_lib

    _, html = site
    page = (html / "reference.html").read_text(encoding="utf-8")
    missing = []
    for module_info in pkgutil.iter_modules(nqm_lib.__path__):
        module = importlib.import_module(f"nqm_lib.{module_info.name}")
        if f'id="module-{module.__name__}"' not in page:
            missing.append(module.__name__)
        names = [f"{module.__name__}.{name}" for name in module.__all__]
        missing += [name for name in names if f'id="{name}"' not in page]
    assert not missing, f"not on the library reference page: {missing}"
