"""Sphinx extension: a notebook cell with figure metadata becomes exactly one numbered figure.

A chapter's figure cell carries MyST-NB cell metadata::

    "mystnb": {"figure": {"name": "fig-sgd-risk", "caption": "What to look at."},
               "image": {"alt": "What the figure shows."}}

MyST-NB wraps *every* display output of such a cell in a ``<figure>`` of that name: a cell that
also glues numbers, or an ``explore(...)`` cell (a note, the widget and the default PNG), gets
several figures of one name — Sphinx warns about duplicate targets, and the glued numbers'
empty figures show the caption again with no image. This extension

1. at ``source-read``, takes the figure's ``name`` out of the cell metadata (it keeps it as
   ``nqm_figure_name``), so MyST-NB makes only unnamed figures, each with the caption rendered
   as Markdown (maths and all);
2. after parsing (a transform that runs before Sphinx collects labels), keeps the one figure
   around the cell's image, gives it the name (``{numref}`` then resolves, and ``numfig``
   numbers it "Figure 3.2"), and unwraps the other outputs' figures.

The live figures (``live_figures.py``) later put their controls and frames inside that figure.
"""

from __future__ import annotations

import json

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Cell metadata key that keeps the figure's name away from MyST-NB (see the module docstring).
NAME_KEY = "nqm_figure_name"


def move_figure_names(notebook_json: str) -> str:
    """The notebook with each figure cell's ``mystnb.figure.name`` moved to ``NAME_KEY``.

    Returns the text unchanged when no cell has figure metadata (or it is not a notebook).
    """
    try:
        notebook = json.loads(notebook_json)
    except ValueError:
        return notebook_json
    changed = False
    for cell in notebook.get("cells", []) if isinstance(notebook, dict) else []:
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
        if cell.get("cell_type") == "code" and isinstance(figure, dict):
            cell["metadata"][NAME_KEY] = figure.pop("name", "")
            changed = True
    return json.dumps(notebook) if changed else notebook_json


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        source[0] = move_figure_names(source[0])


def _has_image(node: nodes.Element) -> bool:
    return any(
        container.get("mime_type", "").startswith("image/") for container in node.findall(nodes.container)
    ) or bool(list(node.findall(nodes.image)))


class OneFigurePerCell(SphinxTransform):
    """Keep one named figure per figure cell: the one around its (last) image."""

    # Before AutoNumbering (210), which gives a numbered figure without an id an automatic one:
    # the name becomes the id (the anchor of "Figure 2.3" links), and the label is collected later.
    default_priority = 205

    def apply(self, **kwargs: object) -> None:
        """Rewrite every figure cell of the document (see the module docstring)."""
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("nb_element") != "cell_code" or NAME_KEY not in cell.get("cell_metadata", {}):
                continue
            outputs = next(
                (c for c in cell.findall(nodes.container) if c.get("nb_element") == "cell_code_output"), None
            )
            figures = [] if outputs is None else [c for c in outputs.children if isinstance(c, nodes.figure)]
            with_image = [figure for figure in figures if _has_image(figure)]
            name = cell["cell_metadata"][NAME_KEY]
            if not with_image:
                logger.warning(f"figure cell {name!r} has no image output", location=cell)
            kept = with_image[-1] if with_image else None
            for figure in figures:
                if figure is not kept:
                    body = [c for c in figure.children if not isinstance(c, nodes.caption | nodes.legend)]
                    figure.parent.replace(figure, body)
            if kept is not None and name:
                kept["names"].append(nodes.fully_normalize_name(name))
                self.document.note_explicit_target(kept, kept)


def setup(app: Sphinx) -> dict[str, object]:
    """Register the source hook and the transform with Sphinx."""
    app.connect("source-read", _source_read)
    app.add_transform(OneFigurePerCell)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
