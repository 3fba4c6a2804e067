"""Helpers for the chapter notebooks themselves (chapter 1 on).

:func:`glue` records a computed number for the text of the built book (MyST-NB's ``glue``);
where MyST-NB is not installed — on Colab, say — it does nothing, so the chapters run there
unchanged.
"""

from __future__ import annotations

import numbers

__all__ = ["glue"]


def glue(name: str, value: object) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name:.3g``` in the chapter's text.

    NumPy scalars are converted to plain Python numbers first, so that format specifications
    such as ``:.3g`` apply. Nothing is displayed in the notebook.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # e.g. on Colab: the book's text is not being built there
        return
    myst_glue(name, value, display=False)
