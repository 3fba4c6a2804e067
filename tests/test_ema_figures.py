"""Chapter 4's static figures (nqm_lib.figures_ema) draw the exact curves their captions describe."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nqm_lib import NQM, risk_curve
from nqm_lib.averaging import averaged_risk_curve
from nqm_lib.figures_ema import ema_batch_size_figure, ema_lag_figure, theorem2_bound, theorem2_figure

WORKED = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
NOISE_FREE = NQM([50.0, 1.0], [0.0, 0.0], theta0=[1.0, 1.0])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def line_data(ax, style):
    return [line.get_ydata() for line in ax.lines if line.get_linestyle() == style]


def test_theorem2_figure_draws_exact_risk_bound_bias_and_noise_part():
    fig = theorem2_figure(lr=0.02, ema_decay=0.9, steps=120)
    (ax,) = fig.axes
    exact = risk_curve(WORKED, 120, lr=0.02, ema_decay=0.9)
    bias = risk_curve(NOISE_FREE, 120, lr=0.02, ema_decay=0.9)
    (solid,) = line_data(ax, "-")[:1]
    np.testing.assert_allclose(solid, exact, rtol=1e-12)
    (dashed,) = line_data(ax, "--")
    np.testing.assert_allclose(dashed, theorem2_bound(WORKED, 120, lr=0.02, ema_decay=0.9), rtol=1e-12)
    (dash_dot,) = line_data(ax, "-.")
    np.testing.assert_allclose(dash_dot, bias, rtol=1e-12)
    (dotted,) = line_data(ax, ":")
    np.testing.assert_allclose(dotted, (exact - bias)[1:], rtol=1e-12)
    assert ax.get_yscale() == "log"


def test_ema_lag_figure_styles_each_decay_by_its_side_of_r_d():
    decays = (0.9, 0.98, 0.99)
    fig = ema_lag_figure(decays, lr=0.02, steps=300)
    (ax,) = fig.axes
    styles = [line.get_linestyle() for line in ax.lines]
    assert styles == ["-", "-", "-.", "--"]  # SGD, then γ < r_2, γ = r_2 = 0.98, γ > r_2
    for line, gamma in zip(ax.lines[1:], decays, strict=True):
        np.testing.assert_allclose(line.get_ydata(), risk_curve(NOISE_FREE, 300, lr=0.02, ema_decay=gamma))


def test_ema_batch_size_figure_bottom_panel_is_the_risk_at_the_budget():
    fig = ema_batch_size_figure(lr=0.02, ema_decay=0.9, budget=50, largest_batch=64)
    top, bottom = fig.axes
    assert len(top.lines) == 4
    sgd, ema, ema98 = (line for line in bottom.lines if line.get_marker() == "o")
    for line, gamma in [(sgd, 0.0), (ema, 0.9), (ema98, 0.98)]:
        expected = [
            risk_curve(WORKED, 50, lr=0.02, batch_size=b, ema_decay=gamma)[-1] for b in 2 ** np.arange(7)
        ]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)


def test_claim_tail_average_beats_the_last_iterate_after_its_start_at_every_batch_size_of_chapter_4():
    # Chapter 4: T = 1000, tail from s = 500, B = 1 ... 1024 (the table's batch sizes).
    for batch_size in [1, 4, 16, 64, 256, 1024]:
        last = risk_curve(WORKED, 1000, lr=0.02, batch_size=batch_size)
        tail = averaged_risk_curve(WORKED, 1000, lr=0.02, batch_size=batch_size, start=500)
        assert np.all(tail[501:] < last[501:]), batch_size
