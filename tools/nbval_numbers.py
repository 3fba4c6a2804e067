"""nbval compares numbers at the precision that carries meaning, not to their last digit.

nbval (strict mode) compares every output of every chapter cell as text. Numbers computed
with floating point differ in their last digits from one machine to another: another BLAS
kernel, another SIMD width or another PyTorch kernel sums in another order, so
``repr(x)`` may end in ``…3021`` on one CPU and ``…3576`` on the next. Those digits carry
no meaning, and a test that compares them passes only on the machine that executed the
notebook.

:func:`install` (called by the repository's root ``conftest.py``) makes nbval compare
numbers as numbers: two output strings are equal when they are equal once every number in
them is read as a float and the numbers agree to :data:`RELATIVE_TOLERANCE` (all the text
between the numbers must be identical). Nothing else is relaxed. The tolerance is far below
anything a reader sees: the book prints and glues at most 4–6 significant digits, so a
change at any digit a reader can see (or an integer such as a step count changing by one)
still fails the suite, while the last-digit noise of another machine (relative differences
of 1e-16 to 1e-13 measured between OpenBLAS kernels) passes. ``tests/test_any_machine.py``
tests this comparison, re-runs the notebooks under other kernels to keep it that way, and
checks that no number the site shows is within that tolerance of a rounding boundary of its
display format (so the site shows the same digits on every machine).
"""

from __future__ import annotations

import math
import re

from nbformat import NotebookNode
from nbval.plugin import IPyNbCell

#: Two numbers in a cell's output are the same number when they agree to this relative
#: precision (about nine significant digits).
RELATIVE_TOLERANCE = 1e-9

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf")


def numbers_and_text(s: str) -> tuple[list[str], list[str]]:
    """Split ``s`` into its number tokens and the text around them (one more text piece)."""
    return _NUMBER.findall(s), _NUMBER.split(s)


def same_up_to_rounding(reference: str, output: str) -> bool:
    """Whether two outputs differ at most in the last digits of the numbers they contain."""
    if reference == output:
        return True
    ref_numbers, ref_text = numbers_and_text(reference)
    out_numbers, out_text = numbers_and_text(output)
    if ref_text != out_text or len(ref_numbers) != len(out_numbers):
        return False
    return all(
        a == b or math.isclose(float(a), float(b), rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)
        for a, b in zip(ref_numbers, out_numbers, strict=True)
    )


def _reconcile(output: NotebookNode, reference: NotebookNode) -> NotebookNode:
    """``output`` with each string that equals ``reference``'s up to rounding replaced by it."""
    if output.get("output_type") != reference.get("output_type"):
        return output
    merged = NotebookNode(output)
    if isinstance(output.get("text"), str) and isinstance(reference.get("text"), str):
        if same_up_to_rounding(reference["text"], output["text"]):
            merged["text"] = reference["text"]
    data, ref_data = output.get("data"), reference.get("data")
    if isinstance(data, dict) and isinstance(ref_data, dict):
        merged["data"] = NotebookNode({
            key: ref_data[key]
            if isinstance(value, str)
            and isinstance(ref_data.get(key), str)
            and same_up_to_rounding(ref_data[key], value)
            else value
            for key, value in data.items()
        })
    return merged


def _compare_outputs_up_to_rounding(self, test, ref, skip_compare=None):
    """Compare as nbval strictly does, after taking numbers equal up to rounding as equal.

    nbval has merged each cell's stream outputs already, so outputs pair up one to one.
    """
    if len(test) == len(ref):
        test = [_reconcile(out, reference) for out, reference in zip(test, ref, strict=True)]
    return _STRICT_COMPARE_OUTPUTS(self, test, ref, skip_compare)


_STRICT_COMPARE_OUTPUTS = IPyNbCell.compare_outputs


def install() -> None:
    """Make nbval (strict mode) compare the numbers in cell outputs up to rounding."""
    IPyNbCell.compare_outputs = _compare_outputs_up_to_rounding
