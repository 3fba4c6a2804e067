"""Helpers for the chapter notebooks themselves (chapter 1 on).

:func:`glue` records a computed number for the text of the built book (MyST-NB's ``glue``);
where MyST-NB is not installed — on Colab, say — it does nothing, so the chapters run there
unchanged.
"""

from __future__ import annotations

import numbers

__all__ = ["glue"]


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
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # e.g. on Colab: the book's text is not being built there
        return
    myst_glue(name, value, display=False)
