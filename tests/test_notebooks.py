"""The chapter notebooks are committed executed, clean and in the table of contents.

nbval re-executes each chapter and compares its outputs with the committed ones, but it
compares nothing in a cell that was never executed: these tests forbid that, and check
that every chapter opens with the shared setup cell and glues every number its text quotes.
"""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from tools.notebooks import chapter_notebooks, first_cell_source

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = chapter_notebooks()
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]+))?`")
SKIP_TAGS = {"nbval-skip", "nbval-ignore-output", "raises-exception"}


def code_cells(path):
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


def glued_names(path):
    notebook = nbformat.read(path, as_version=4)
    return {
        output.metadata["scrapbook"]["name"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "scrapbook" in output.get("metadata", {})
    }


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return {entry["file"] for part in toc["parts"] for entry in part["chapters"]}


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 2


def test_every_chapter_is_in_the_table_of_contents_and_vice_versa():
    chapters_in_toc = {name for name in toc_files() if name.startswith("chapters/")}
    on_disk = {f"chapters/{path.stem}" for path in NOTEBOOKS}
    assert chapters_in_toc == on_disk


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_was_executed_top_to_bottom_in_one_kernel(path):
    counts = [cell.execution_count for cell in code_cells(path)]
    assert None not in counts, f"{path.name}: unexecuted code cells (nbval would compare nothing)"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_committed_errors_or_warnings(path):
    for index, cell in enumerate(code_cells(path)):
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name} cell {index}: error output"
            is_stderr = output.output_type == "stream" and output.name == "stderr"
            assert not is_stderr, f"{path.name} cell {index}: stderr output {output.text[:200]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_escapes_output_comparison(path):
    for index, cell in enumerate(code_cells(path)):
        tags = set(cell.metadata.get("tags", []))
        assert not tags & SKIP_TAGS, f"{path.name} cell {index}: tagged {tags & SKIP_TAGS}"
        assert "NBVAL_" not in cell.source, f"{path.name} cell {index}: nbval marker in source"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_relies_on_a_trailing_semicolon(path):
    # nbval executes cells without IPython's history, so `ax.legend();` would print a repr
    # under nbval that the committed notebook does not have.
    for index, cell in enumerate(code_cells(path)):
        assert not cell.source.rstrip().endswith(";"), f"{path.name} cell {index}: ends with ';'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_shared_setup_cell(path):
    assert code_cells(path)[0].source == first_cell_source()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_number_in_the_text_is_computed_in_the_chapter(path):
    notebook = nbformat.read(path, as_version=4)
    referenced = {
        match.group(1)
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for match in GLUE_ROLE.finditer(cell.source)
    }
    missing = referenced - glued_names(path)
    assert not missing, f"{path.name}: text quotes unglued names {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_goals_takeaways_exercises_and_citations(path):
    text = "\n".join(
        cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"
    )
    assert "Learning goals" in text
    assert "## Key takeaways" in text
    assert 2 <= text.count(":::{exercise}") <= 4
    assert text.count(":::{solution") >= text.count(":::{exercise}")
    assert "{cite" in text
