"""What a reader of the site sees of each chapter's code: short cells, the computation in view.

A code cell is *visible* unless it is tagged to hide or remove its input (``hide-input`` keeps
it one click away behind the theme's toggle). Drawing code lives in figure functions of
``nqm_lib`` and consistency checks in ``tests/``, so that what stays in view is the computation
the text explains. Checks that only guard the implementation (``… agrees: True``) belong to the
tests; an equivalence the chapter teaches is stated in prose with its number glued.
"""

import re

import nbformat
import pytest

from tools.notebooks import chapter_notebooks

#: Longest code cell a reader sees unfolded, and most visible code lines on one chapter page.
MAX_CELL_LINES = 40
MAX_CHAPTER_LINES = 700
HIDDEN = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
VERDICT = re.compile(r"\b(True|False)\s*$")


def visible_code_cells(path):
    notebook = nbformat.read(path, as_version=4)
    return [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and not HIDDEN & set(cell.metadata.get("tags", []))
    ]


def line_count(cell):
    return len(cell.source.strip().splitlines())


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_no_visible_code_cell_is_longer_than_forty_lines(path):
    long = [
        (index, line_count(cell))
        for index, cell in visible_code_cells(path)
        if line_count(cell) > MAX_CELL_LINES
    ]
    assert not long, (
        f"{path.name}: visible code cells longer than {MAX_CELL_LINES} lines (cell index, lines): {long}. "
        "Move drawing into a figure function of nqm_lib, checks into tests/, or tag the cell hide-input."
    )


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_a_chapter_shows_at_most_seven_hundred_lines_of_code(path):
    total = sum(line_count(cell) for _, cell in visible_code_cells(path))
    assert total <= MAX_CHAPTER_LINES, (
        f"{path.name}: {total} visible lines of code (at most {MAX_CHAPTER_LINES})"
    )


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_no_chapter_prints_a_true_or_false_verdict(path):
    notebook = nbformat.read(path, as_version=4)
    verdicts = [
        (index, line)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
        for line in output.text.splitlines()
        if VERDICT.search(line)
    ]
    assert not verdicts, (
        f"{path.name}: printed verdicts (cell index, line): {verdicts[:5]}. A check that guards the "
        "implementation belongs in tests/; a lesson is stated in prose with its number glued."
    )
