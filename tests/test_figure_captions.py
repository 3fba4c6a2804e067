"""Every figure of every chapter is numbered, captioned, described and referred to by number.

A code cell that draws a figure carries MyST-NB cell metadata::

    "mystnb": {"figure": {"name": "fig-<chapter>-<what>", "caption": "<what to look at>"},
               "image": {"alt": "<what the figure shows, for a reader who cannot see it>"}}

so that the site wraps its image in a numbered ``<figure>`` with a caption (``numfig``, chapter
numbers from the numbered table of contents: "Figure 3.2"), and the text refers to it with
``{numref}`fig-…```. A cell shows one figure; its other outputs (text, glued numbers) are not
wrapped.
"""

import re
from collections import Counter

import nbformat
import pytest

from tools.notebooks import chapter_notebooks

NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?(fig-[^`>]+)>?`")
MIN_ALT_WORDS = 8
MIN_CAPTION_WORDS = 6


def figure_cells(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and any("image/png" in o.get("data", {}) for o in cell.outputs):
            yield index, cell


def figure_metadata(cell):
    metadata = cell.metadata.get("mystnb", {})
    return metadata.get("figure", {}), metadata.get("image", {})


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_every_figure_cell_has_a_name_caption_and_alt_text(path):
    problems = []
    for index, cell in figure_cells(path):
        figure, image = figure_metadata(cell)
        name, caption, alt = figure.get("name", ""), figure.get("caption", ""), image.get("alt", "")
        if not name.startswith("fig-"):
            problems.append(f"cell {index}: mystnb.figure.name {name!r} must start with 'fig-'")
        if len(caption.split()) < MIN_CAPTION_WORDS:
            problems.append(f"cell {index}: mystnb.figure.caption {caption!r} is missing or too short")
        if len(alt.split()) < MIN_ALT_WORDS or alt.lower().endswith((".png", ".svg")):
            problems.append(f"cell {index}: mystnb.image.alt {alt!r} does not describe the figure")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_a_figure_cell_shows_one_image(path):
    many = [
        (index, n)
        for index, cell in figure_cells(path)
        if (n := sum("image/png" in o.get("data", {}) for o in cell.outputs)) != 1
    ]
    assert not many, f"{path.name}: cells with several images (cell index, images): {many}; split them"


def test_figure_names_are_unique_across_the_book():
    names = Counter(
        figure_metadata(cell)[0].get("name") for path in chapter_notebooks() for _, cell in figure_cells(path)
    )
    assert not [name for name, count in names.items() if name and count > 1]


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_the_text_refers_to_every_figure_by_number(path):
    notebook = nbformat.read(path, as_version=4)
    referred = {
        m for cell in notebook.cells if cell.cell_type == "markdown" for m in NUMREF.findall(cell.source)
    }
    names = {figure_metadata(cell)[0].get("name") for _, cell in figure_cells(path)}
    missing = sorted(n for n in names - referred if n)
    assert not missing, f"{path.name}: figures never referred to with {{numref}}: {missing}"
