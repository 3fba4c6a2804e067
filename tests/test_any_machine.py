"""The test suite passes on any machine, not only on the one that executed the notebooks.

Another CPU runs other BLAS, SIMD and PyTorch kernels, which sum in another order: the last
digits of floating-point results change. ``tools/nbval_numbers.py`` makes nbval compare
numbers to a relative 1e-9 (far below anything printed); these tests check that comparison,
check that no number the site shows sits so close to a rounding boundary of its display
format that such a difference could change it, and re-run every chapter under other
kernels, as another user's machine would.
"""

import functools
import json
import os
import re
import subprocess
import sys
from ast import literal_eval
from pathlib import Path

import nbformat
import numpy as np
import pytest
from myst_nb.core.variables import format_plain_text

from tools.nbval_numbers import RELATIVE_TOLERANCE, same_up_to_rounding
from tools.notebooks import chapter_notebooks

ROOT = Path(__file__).resolve().parent.parent
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
GLUE_RECORD = "application/papermill.record/text/plain"
#: Plugins a chapter's own pytest does not use: loading them took half of its 1.2 s start.
UNUSED_PLUGINS = ("cacheprovider", "xdist", "xdist.looponfail", "hypothesispytest", "anyio")


# --- the comparison nbval uses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "reference, output",
    [
        ("0.0005494929667173021", "0.0005494929667173576"),  # measured between two OpenBLAS kernels
        ("2.0", "1.9999999999999996"),
        ("16.410661857183037", "16.410661857183033"),
        ("t = 10: exact 0.12345 gap 1.00e-04", "t = 10: exact 0.12345 gap 1.00e-04"),
        ("[1.0000000000000002, -3.0]", "[1.0, -2.9999999999999996]"),
    ],
)
def test_last_digit_differences_compare_equal(reference, output):
    assert same_up_to_rounding(reference, output)


@pytest.mark.parametrize(
    "reference, output",
    [
        ("0.1235", "0.1234"),  # a digit a reader sees
        ("steps to target: 7352", "steps to target: 7351"),  # an integer off by one
        ("9.9108982e-08", "9.9108992e-08"),  # the eighth significant digit
        ("bound >= exact: True", "bound >= exact: False"),  # text
        ("[1.0, 2.0]", "[1.0, 2.0, 3.0]"),  # another number of numbers
        ("x = 1.5", "y = 1.5"),
    ],
)
def test_visible_differences_still_fail(reference, output):
    assert not same_up_to_rounding(reference, output)


def test_the_tolerance_is_far_below_the_precision_the_book_prints():
    # The book prints and glues at most six significant digits.
    assert RELATIVE_TOLERANCE <= 1e-7 * 1e-2


# --- numbers shown on the site ------------------------------------------------------------------


def glued_records(notebook):
    return {
        output.metadata["scrapbook"]["name"]: output.data[GLUE_RECORD]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "scrapbook" in output.get("metadata", {}) and GLUE_RECORD in output.get("data", {})
    }


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_every_number_the_site_shows_survives_last_digit_differences(path):
    """A glued float, perturbed by the comparison's tolerance, is displayed exactly the same."""
    notebook = nbformat.read(path, as_version=4)
    records = glued_records(notebook)
    fragile = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for name, spec in GLUE_ROLE.findall(cell.source):
            try:
                value = literal_eval(records[name])
            except (KeyError, ValueError, SyntaxError):
                continue  # unglued names are test_notebooks.py's concern; strings are exact
            if not isinstance(value, float):
                continue
            if not spec:
                fragile.append(f"{name} = {value!r} is shown with all its digits: give it a format")
                continue
            shown = format_plain_text(repr(value), spec)
            for factor in (1 - RELATIVE_TOLERANCE, 1 + RELATIVE_TOLERANCE):
                if format_plain_text(repr(value * factor), spec) != shown:
                    fragile.append(f"{name} = {value!r} shown as {shown!r} (:{spec}) sits on a rounding edge")
    assert not fragile, f"{path.name}: " + "; ".join(fragile)


# --- the notebooks under other kernels --------------------------------------------------------


def _openblas_core(env):
    """The OpenBLAS kernel numpy picks under ``env``."""
    code = (
        "import ctypes, glob, numpy, os\n"
        "lib = ctypes.CDLL(glob.glob(os.path.dirname(numpy.__file__) + '.libs/libscipy_openblas*.so')[0])\n"
        "lib.scipy_openblas_get_corename64_.restype = ctypes.c_char_p\n"
        "print(lib.scipy_openblas_get_corename64_().decode())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def _simd_features_to_disable():
    """numpy's dispatched SIMD levels above X86_V3 that this CPU has (else X86_V3 itself).

    Read from numpy's own dispatch tables (what ``numpy.show_runtime()`` prints as "found").
    """
    umath = np._core._multiarray_umath
    found = {name for name in umath.__cpu_dispatch__ if umath.__cpu_features__.get(name)}
    above = sorted(found - {"X86_V2", "X86_V3"})
    return above or sorted(found & {"X86_V3"})


@functools.cache
def other_machine_environment():
    """Environment variables that make this machine compute like another one, and a description."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    current = _openblas_core(env)
    for core_type in ("Prescott", "Sandybridge", "Haswell", "Zen"):
        candidate = {**env, "OPENBLAS_CORETYPE": core_type}
        core = _openblas_core(candidate)
        if core != current:
            break
    else:
        pytest.fail(f"no other OpenBLAS kernel could be selected (current: {current})")
    candidate.update(ATEN_CPU_CAPABILITY="default", MKL_CBWR="COMPATIBLE")
    disabled = _simd_features_to_disable()
    if disabled:
        candidate["NPY_DISABLE_CPU_FEATURES"] = " ".join(disabled)
    description = (
        f"OpenBLAS kernel {core} instead of {current} (OPENBLAS_CORETYPE={core_type}), "
        f"PyTorch's default (non-vectorised) CPU kernels, MKL in compatible mode, "
        f"numpy without {disabled or 'no'} SIMD"
    )
    return candidate, description


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_passes_nbval_on_another_machine(path):
    """The chapter's strict nbval, in a pytest of its own started with another machine's kernels.

    One test per chapter, so that the chapters run in parallel workers and ``make check`` runs
    only the edited one.
    """
    env, description = other_machine_environment()
    print(f"re-running {path.name} with {description}")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(path.relative_to(ROOT)),
            "-q",
            "--no-header",
            *(option for plugin in UNUSED_PLUGINS for option in ("-p", f"no:{plugin}")),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, f"with {description}:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


# --- glue keeps only the digits that mean something --------------------------------------------


@pytest.fixture
def published(monkeypatch):
    """What glue publishes, as {name: value}, read back from the records as the build reads them."""
    import IPython.display

    records = {}

    def display(bundle, raw, metadata):
        records[metadata["scrapbook"]["name"]] = literal_eval(bundle[GLUE_RECORD])

    monkeypatch.setattr(IPython.display, "display", display)
    return records


def test_glue_rounds_a_cancellation_prone_number_to_its_meaningful_digits(published):
    from nqm_lib import notebook

    # Two machines' values of the same small difference agree only to ~9 digits ...
    notebook.glue("gap", 9.910898235432342e-08, significant_digits=3)
    first = published["gap"]
    notebook.glue("gap", 9.910898246534572e-08, significant_digits=3)
    # ... and are recorded as the same number.
    assert first == published["gap"] == 9.91e-08
    notebook.glue("steps", np.int64(7352), significant_digits=3)
    assert published["steps"] == 7352 and isinstance(published["steps"], int)  # integers are exact


@pytest.mark.parametrize("value", [0.123456789, 7352, "text", [1.5, 2.0]])
def test_glue_publishes_exactly_the_record_of_myst_nbs_glue(monkeypatch, value):
    """nqm_lib writes MyST-NB's record itself (importing myst_nb's glue costs a second per chapter)."""
    import IPython.display
    import myst_nb.ext.glue

    from nqm_lib import notebook

    calls = []
    record = lambda *args, **kwargs: calls.append((args, kwargs))  # noqa: E731
    monkeypatch.setattr(IPython.display, "display", record)
    monkeypatch.setattr(myst_nb.ext.glue, "ipy_display", record)
    notebook.glue("name", value)
    myst_nb.glue("name", value, display=False)
    assert len(calls) == 2 and calls[0] == calls[1]
    assert json.dumps(calls[0], sort_keys=False) == json.dumps(calls[1], sort_keys=False)
    assert notebook.GLUE_PREFIX == myst_nb.ext.glue.GLUE_PREFIX


@pytest.mark.parametrize("digits", [0, -1, 2.5, True])
def test_glue_refuses_a_meaningless_number_of_digits(digits):
    from nqm_lib import notebook

    with pytest.raises(ValueError, match="significant_digits must be an integer >= 1"):
        notebook.glue("x", 1.0, significant_digits=digits)
