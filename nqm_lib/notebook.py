"""Helpers for the chapter notebooks themselves (chapter 1 on).

:func:`glue` records a computed number for the text of the built book (MyST-NB's ``glue``);
where MyST-NB is not installed — on Colab, say — it does nothing, so the chapters run there
unchanged.
"""

from __future__ import annotations

import functools
import importlib.util
import numbers

__all__ = ["GLUE_PREFIX", "glue"]

#: The MIME-type prefix of a glued value in a cell's outputs, which the book's build reads
#: (MyST-NB's, from papermill's scrapbook).
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: object, *, significant_digits: int | None = None) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name:.3g``` in the chapter's text.

    NumPy scalars are converted to plain Python numbers first, so that format specifications
    such as ``:.3g`` apply. Nothing is displayed in the notebook.

    ``significant_digits`` rounds a float before it is recorded. Use it for a number whose
    trailing digits are rounding noise — a small difference of two nearly equal numbers, say,
    whose ninth digit changes with the CPU that computes it — so that the recorded number
    holds only the digits that mean something (the tests compare recorded numbers to nine
    significant digits on every machine).
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
        if significant_digits is not None:
            digits = significant_digits
            if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) or digits < 1:
                raise ValueError(f"significant_digits must be an integer >= 1, got {digits!r}")
            value = float(f"{value:.{significant_digits}g}")
    if _myst_nb_installed():
        _record(name, value)


@functools.cache
def _myst_nb_installed() -> bool:
    """Whether MyST-NB is installed (not on Colab, say, where the book's text is not built)."""
    return importlib.util.find_spec("myst_nb") is not None


def _record(name: str, value: object) -> None:
    """Publish exactly what ``myst_nb.glue(name, value, display=False)`` publishes.

    That is a display output holding the value's MIME bundle, each type prefixed with
    :data:`GLUE_PREFIX`, and ``{"scrapbook": {"name": …, "mime_prefix": …}}`` in its metadata
    (a test compares the two byte for byte). MyST-NB's own function would import nbformat for a
    type annotation, and with it jsonschema's format checkers, which compile a URI grammar: about
    one second of CPU in every chapter's kernel.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    display({GLUE_PREFIX + key: data for key, data in bundle.items()}, raw=True, metadata=metadata)
