"""The code base is ruff clean (library, tools, tests and the notebooks' code cells)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_reports_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# The course style (issue 16): figures sized for the site's text column, no text below the
# smallest font size.


def test_new_figure_refuses_a_figure_wider_than_the_text_column_and_names_width_and_range():
    import pytest

    from nqm_lib.plotting import FIGURE_WIDTH, new_figure

    for width in (FIGURE_WIDTH + 0.5, 13.0, 0.0, -1.0):
        with pytest.raises(ValueError) as error:
            new_figure(width=width)
        message = str(error.value)
        assert f"width = {width}" in message
        assert f"FIGURE_WIDTH = {FIGURE_WIDTH}" in message


def test_new_figure_accepts_the_full_text_column_width():
    import matplotlib.pyplot as plt

    from nqm_lib.plotting import FIGURE_WIDTH, new_figure

    fig, axes = new_figure(width=FIGURE_WIDTH, height=3.0)
    assert tuple(fig.get_size_inches()) == (FIGURE_WIDTH, 3.0)
    assert axes.shape == (1,)
    plt.close(fig)


def test_new_figure_stacks_rows_and_returns_a_flat_axes_array_row_by_row():
    import matplotlib.pyplot as plt
    import numpy as np

    from nqm_lib.plotting import FIGURE_WIDTH, new_figure

    fig, axes = new_figure(nrows=2, height=6.0)
    assert isinstance(axes, np.ndarray) and axes.shape == (2,)
    assert tuple(fig.get_size_inches()) == (FIGURE_WIDTH, 6.0)
    top, bottom = (ax.get_subplotspec().get_geometry() for ax in axes)
    assert top[:2] == (2, 1) and top[2] == 0 and bottom[2] == 1
    plt.close(fig)

    fig, axes = new_figure(2, nrows=2)
    assert axes.shape == (4,)
    assert [ax.get_subplotspec().get_geometry()[2] for ax in axes] == [0, 1, 2, 3]
    plt.close(fig)


def test_new_figure_stacks_rows_also_when_redrawing_a_widget_figure():
    from matplotlib.figure import Figure

    from nqm_lib.plotting import drawing_into, new_figure

    target = Figure()
    with drawing_into(target):
        fig, axes = new_figure(nrows=3, height=7.0)
    assert fig is target and axes.shape == (3,) and len(target.axes) == 3


def test_every_font_size_of_the_course_style_is_at_least_the_smallest_font_size():
    from nqm_lib.plotting import SMALLEST_FONT_SIZE, STYLE

    sizes = {key: value for key, value in STYLE.items() if key.endswith(("size", "fontsize"))}
    sizes = {key: value for key, value in sizes.items() if key != "figure.figsize"}
    assert {"font.size", "xtick.labelsize", "ytick.labelsize", "legend.fontsize"} <= set(sizes)
    too_small = {key: value for key, value in sizes.items() if value < SMALLEST_FONT_SIZE}
    assert not too_small, f"font sizes below SMALLEST_FONT_SIZE = {SMALLEST_FONT_SIZE} pt: {too_small}"


def test_the_text_column_shows_a_full_width_figure_with_its_smallest_text_at_least_9_css_px():
    # 1280-px window: sphinx-book-theme's text column is about 690 CSS px (measured in chromium);
    # the browser test checks every figure on the site, this checks the constants agree.
    from nqm_lib.plotting import FIGURE_WIDTH, SMALLEST_FONT_SIZE, STYLE

    column_px = 688
    natural_px = FIGURE_WIDTH * STYLE["figure.dpi"]
    shown = min(1.0, column_px / natural_px)
    assert SMALLEST_FONT_SIZE * STYLE["figure.dpi"] / 72 * shown >= 9
