"""A two-chapter book that uses every MyST construct the student notebooks convert.

``write_small_book(folder)`` writes it (configuration like the course's, the notebooks
"executed" with hand-made outputs: glued values, a captioned figure, printed text), so that
``tests/test_student_notebooks.py`` can build it with the real extensions in a few seconds and
check each conversion against the page Sphinx made. The notebooks are written at run time, not
committed, because nbval would collect any ``.ipynb`` under ``tests/``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://example.org/small-book/"
#: A 1×1 PNG: the "figure" of the first chapter.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
    )
).decode()

CONFIG = f"""
title: "A small book"
author: "Test"
only_build_toc_files: true
execute:
  execute_notebooks: "off"
parse:
  myst_enable_extensions: [amsmath, colon_fence, dollarmath]
repository:
  url: https://github.com/example/small-book
  branch: main
html:
  baseurl: {BASE_URL}
launch_buttons:
  notebook_interface: classic
  binderhub_url: https://mybinder.org
  colab_url: https://colab.research.google.com
bibtex_bibfiles: [references.bib]
sphinx:
  local_extensions:
    student_notebooks: {ROOT / "book_ext"}
  extra_extensions: [sphinx_proof, sphinx_exercise]
  config:
    bibtex_reference_style: author_year
    numfig: true
    numfig_format: {{figure: "Figure %s"}}
    math_numfig: true
"""

TOC = """
format: jb-book
root: intro
parts:
  - caption: Chapters
    numbered: true
    chapters:
      - file: chapters/01_basics
      - file: chapters/02_more
  - caption: Reference
    chapters:
      - file: bibliography
"""

BIB = """
@article{smith2020,
  author = {Smith, Ann},
  title = {A paper},
  journal = {Journal},
  year = {2020}
}
@article{doe2021,
  author = {Doe, John and Roe, Richard and Poe, Edgar},
  title = {Another paper},
  journal = {Journal},
  year = {2021}
}
"""

BASICS = [
    (
        "markdown",
        "# Basics\n\n(sec-start)=\n## A first section\n\n"
        "As {cite:t}`smith2020` showed, and others agree {cite:p}`smith2020,doe2021`.\n\n"
        "% a comment that only the site's source shows\n\n"
        "The energy\n\n$$\nE = m c^2\n$$ (eq-energy)\n\n"
        "is {eq}`eq-energy`, and with a directive\n\n"
        "```{math}\n:label: eq-momentum\np = m v\n```\n\n"
        "it is {eq}`eq-momentum`.",
    ),
    ("code", "figure()"),
    ("markdown", "{numref}`fig-basics-dot` is a dot. A sum: {math}`\\sum_i x_i`, H{sub}`2`O."),
]

MORE = [
    (
        "markdown",
        "# More\n\n:::{admonition} Learning goals\n:class: tip\n"
        "Inline math over two lines, $a +\nb$, and display math:\n\n$$\nx = 1\n\\\\ y = 2\n$$\n:::\n\n"
        "(sec-results)=\n## Results\n\n"
        "The value is {glue:text}`x:.3f` ({glue:text}`count:d` runs, {glue:text}`ratio:.1%`); "
        "{numref}`fig-basics-dot` shows it, {numref}`Plot %s <fig-basics-dot>` too. "
        "Chapter {doc}`01_basics` has {ref}`sec-start`; this is [the results](#sec-results) "
        "or [](#sec-results), [a chapter](01_basics.ipynb). See [the site](https://example.org/).",
    ),
    ("code", "x = 0.123456\nglue('x', x)"),
    (
        "markdown",
        ":::{prf:theorem} A claim on $x$\n:label: thm-claim\n\nBody with $y$.\n:::\n\n"
        ":::{prf:proof}\nObvious.\n:::\n\nBy {prf:ref}`thm-claim`.\n\n"
        ":::{note}\nA note.\n:::\n\n:::{warning}\nCareful.\n:::\n\n"
        ":::{dropdown} More detail\nHidden at first.\n:::\n\n"
        ":::{admonition} Folded\n:class: dropdown\nAlso hidden.\n:::",
    ),
    (
        "markdown",
        "## Exercises\n\n:::{exercise}\n:label: ex-one\nDo it.\n:::\n\n"
        ":::{solution} ex-one\n:class: dropdown\nDone: $z = 1$.\n:::\n\n"
        ":::{exercise} Titled\n:label: ex-two\nCompute it.\n:::\n\n"
        ":::{solution-start} ex-two\n:class: dropdown\n:::\n\nFirst the idea.",
    ),
    ("code", "print('the answer: 42')"),
    ("markdown", "Then the check.\n\n:::{solution-end}\n:::\n\nAfter the exercises: {ref}`ex-one`."),
]


def _code_cell(source: str) -> nbformat.NotebookNode:
    """A code cell with the outputs an executed chapter would have."""
    cell = nbformat.v4.new_code_cell(source)
    if source.startswith("x ="):
        for name, value in [("x", "0.123456"), ("count", "7"), ("ratio", "0.25")]:
            cell.outputs.append(
                nbformat.v4.new_output(
                    "display_data",
                    data={"application/papermill.record/text/plain": value},
                    metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}},
                )
            )
    elif source.startswith("figure"):
        cell.metadata["mystnb"] = {
            "figure": {"name": "fig-basics-dot", "caption": "A dot."},
            "image": {"alt": "A single black dot on a white background."},
        }
        cell.outputs.append(
            nbformat.v4.new_output("display_data", data={"image/png": PIXEL, "text/plain": "<Figure>"})
        )
    else:
        cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text="the answer: 42\n"))
    return cell


def _notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    count = 0
    for index, (kind, source) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            count += 1
            cell = _code_cell(source)
            cell.execution_count = count
        cell["id"] = f"cell-{index:03d}"
        notebook.cells.append(cell)
    return notebook


def write_small_book(folder: Path) -> Path:
    """Write the small book into ``folder``; return it."""
    (folder / "chapters").mkdir(parents=True, exist_ok=True)
    (folder / "_config.yml").write_text(CONFIG, encoding="utf-8")
    (folder / "_toc.yml").write_text(TOC, encoding="utf-8")
    (folder / "references.bib").write_text(BIB, encoding="utf-8")
    (folder / "intro.md").write_text("# A small book\n\nTwo chapters.\n", encoding="utf-8")
    (folder / "bibliography.md").write_text("# Bibliography\n\n```{bibliography}\n```\n", encoding="utf-8")
    nbformat.write(_notebook(BASICS), folder / "chapters" / "01_basics.ipynb")
    nbformat.write(_notebook(MORE), folder / "chapters" / "02_more.ipynb")
    return folder
