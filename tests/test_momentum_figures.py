"""Chapter 3's static figure functions draw what their captions say.

Each test calls a figure function of ``nqm_lib.figures_momentum`` and compares the plotted data
with an independent computation (``risk_curve``, the quadratic formula, plain loops), so that a
figure cell of the chapter is one tested call.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from nqm_lib import NQM, risk_curve, steady_state_risk
from nqm_lib import figures_momentum as figures

plt.switch_backend("Agg")

WORKED = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def solid_lines(ax):
    return [
        line for line in ax.lines if line.get_linestyle() == "-" and line.get_marker() in (None, "None", "")
    ]


def assert_finished(fig):
    """A figure of the book: finite data, and no minor ticks on log axes of 3+ decades (drawing time)."""
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        for line in ax.lines:
            data = np.asarray(line.get_xydata(), dtype=float)
            assert np.all(np.isfinite(data)), line.get_label()
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(limits)
            if axis.get_scale() == "log" and high / low >= 1e3:
                assert len(axis.get_minorticklocs()) == 0


def test_noise_free_risk_figure_draws_the_exact_risk_of_each_beta():
    fig = figures.noise_free_risk_figure(lr_h=0.01, momenta=(0.8, 0.9), steps=150)
    (ax,) = fig.axes
    single = NQM([1.0], [0.0], theta0=[1.0])
    for line, beta in zip(solid_lines(ax), (0.8, 0.9), strict=True):
        np.testing.assert_allclose(
            line.get_ydata(), risk_curve(single, 150, lr=0.01, momentum=beta), rtol=1e-12
        )
    assert ax.get_yscale() == "log"
    assert_finished(fig)


def test_root_regimes_figure_shows_the_locus_and_the_boundaries():
    fig = figures.root_regimes_figure(lr_h=0.3)
    locus, regimes = fig.axes[:2]  # then the two colour bars
    star = [line for line in locus.lines if line.get_marker() == "*"][0]
    assert star.get_xdata()[0] == pytest.approx(1 - np.sqrt(0.3))
    white = [line for line in regimes.lines if line.get_color() == "white"][0]
    np.testing.assert_allclose(white.get_ydata(), (1 - np.sqrt(white.get_xdata())) ** 2, rtol=1e-12)
    stability = [line for line in regimes.lines if line.get_color() == "#1f77b4"][0]
    np.testing.assert_allclose(stability.get_xdata(), 2 * (1 + stability.get_ydata()), rtol=1e-12)
    assert regimes.get_xscale() == "log"
    assert_finished(fig)


def test_theorem1_gap_figure_draws_bound_minus_exact_risk_from_the_noise_floor():
    fig = figures.theorem1_gap_figure(lr=0.005, momentum=0.8, batch_size=1, steps=300)
    (ax,) = fig.axes
    gap = solid_lines(ax)[0].get_ydata()
    exact = risk_curve(WORKED, 300, lr=0.005, momentum=0.8)
    floor = steady_state_risk(WORKED, lr=0.005, momentum=0.8)
    assert gap[0] == pytest.approx(floor, rel=1e-9)  # nothing has accumulated at t = 0
    assert np.all(gap >= -1e-12) and gap[-1] < 1e-9 * exact[-1]
    assert_finished(fig)


def test_effective_rate_figure_draws_one_minus_the_largest_root_and_eta_h_over_one_minus_beta():
    fig = figures.effective_rate_figure(momenta=(0.0, 0.9))
    (ax,) = fig.axes
    exact, approximation = solid_lines(ax)[1], [line for line in ax.lines if line.get_linestyle() == "--"][1]
    x = exact.get_xdata()
    a = 1 - x + 0.9
    largest = np.abs((a + np.sqrt((a * a - 3.6).astype(complex))) / 2)
    np.testing.assert_allclose(exact.get_ydata(), 1 - largest, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(approximation.get_ydata(), x / 0.1, rtol=1e-12)
    assert_finished(fig)


def test_amplification_figure_dots_are_ratios_of_steady_state_risks():
    fig = figures.amplification_figure(momenta=(0.9,))
    (ax,) = fig.axes
    dots = [line for line in ax.lines if line.get_marker() == "o" and len(line.get_xdata())][0]
    one = NQM([1.0], [1.0])
    for x, ratio in zip(dots.get_xdata(), dots.get_ydata(), strict=True):
        expected = (1 + 0.9) * (2 - x) / ((1 - 0.9) * (2 + 2 * 0.9 - x))
        assert ratio == pytest.approx(expected, rel=1e-9)
        assert ratio == pytest.approx(
            steady_state_risk(one, lr=x, momentum=0.9) / steady_state_risk(one, lr=x)
        )
    assert_finished(fig)


def test_equivalence_figure_compares_momentum_with_sgd_at_the_effective_rate():
    fig = figures.equivalence_figure(momentum=0.5, qs=(0.1,))
    (ax,) = fig.axes
    lr = figures.equivalence_lr(0.5, 0.1)
    assert lr == pytest.approx(0.1 * 0.25 / (0.5 * 50))
    momentum, sgd = ax.lines[:2]
    t = momentum.get_xdata().astype(int)
    horizon = t[-1]
    np.testing.assert_allclose(
        momentum.get_ydata(), risk_curve(WORKED, horizon, lr=lr, momentum=0.5)[t], rtol=1e-9
    )
    np.testing.assert_allclose(sgd.get_ydata(), risk_curve(WORKED, horizon, lr=2 * lr)[t], rtol=1e-12)
    assert "largest relative gap" in ax.get_title()
    assert_finished(fig)


def test_window_tuning_figure_marks_the_best_worst_risk_of_each_beta():
    fig = figures.window_tuning_figure(batch_sizes=(1,), momenta=(0.0, 0.9), budget=100, window_start=50)
    (ax,) = fig.axes
    sgd = solid_lines(ax)[0]
    lrs = sgd.get_xdata()  # β = 0: the effective rate is η
    worst = [risk_curve(WORKED, 100, lr=lr)[50:].max() for lr in lrs]
    np.testing.assert_allclose(sgd.get_ydata(), worst, rtol=1e-9)
    dot = [line for line in ax.lines if line.get_marker() == "o"][0]
    assert dot.get_ydata()[0] == pytest.approx(min(worst), rel=1e-9)
    assert_finished(fig)


def test_tuned_runs_figure_draws_the_run_each_criterion_picks():
    fig = figures.tuned_runs_figure(batch_sizes=(10_000,), momenta=(0.0, 0.5, 0.9))
    (ax,) = fig.axes
    dotted = [line for line in ax.lines if line.get_linestyle() == ":"][0]
    assert "0.9" in dotted.get_label() and "t = 100" in dotted.get_label()
    curve = dotted.get_ydata()
    assert curve.size == 121
    assert curve[100] < min(curve[95:100].min(), curve[101:106].min())  # a dip at t = 100
    assert_finished(fig)


def test_variants_figure_draws_each_variant_at_the_same_effective_rate():
    fig = figures.variants_figure(momentum=0.9, effective_lr=0.03, batch_size=10_000, steps=300)
    (ax,) = fig.axes
    settings = figures.momentum_variants(0.9, 0.03)
    assert settings["heavy ball"]["lr"] == pytest.approx(0.003) and settings["dampening = β"]["lr"] == 0.03
    for line, options in zip(solid_lines(ax)[:3], settings.values(), strict=True):
        expected = risk_curve(WORKED, 300, momentum=0.9, batch_size=10_000, **options)
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
    assert_finished(fig)


def test_conventions_figure_draws_both_conventions_through_the_step_decay():
    from nqm_lib.momentum_conventions import scheduled_risk_curve

    fig = figures.conventions_figure(steps=200, drop_step=100, trials=200)
    (ax,) = fig.axes
    lrs = figures.step_decay(200, 0.01, drop_step=100, factor=0.1)
    np.testing.assert_array_equal(lrs[99:101], [0.01, 0.001])
    for line, convention in zip(solid_lines(ax)[:2], ("pytorch", "sutskever"), strict=True):
        np.testing.assert_allclose(
            line.get_ydata(), scheduled_risk_curve(WORKED, lrs, momentum=0.9, convention=convention)
        )
    assert_finished(fig)


def test_acceleration_figure_shows_heavy_balls_cycle_and_the_distances():
    fig = figures.acceleration_figure(theta0=3.3, steps=60)
    shape, distance = fig.axes
    cycle = [line for line in shape.lines if line.get_marker() == "o"][0]
    np.testing.assert_allclose(np.sort(cycle.get_xdata()), [-1.80245, 0.64653, 2.11592], atol=1e-5)
    heavy = solid_lines(distance)[0]
    assert heavy.get_ydata()[-30:].min() > 0.5  # never shrinks
    for line in solid_lines(distance)[1:]:
        assert line.get_ydata()[-1] < 1e-1 * line.get_ydata()[0]  # Nesterov and gradient descent converge
    assert distance.get_yscale() == "log"
    assert_finished(fig)


@pytest.mark.parametrize(
    "call",
    [
        lambda: figures.theorem1_gap_figure(lr=0.08, momentum=0.9),  # unstable: 0.08 > 0.076
        lambda: figures.conventions_figure(lr=0.08),
        lambda: figures.window_tuning_figure(budget=10, window_start=20),
        lambda: figures.noise_free_risk_figure(momenta=(1.0,)),
    ],
)
def test_invalid_or_unstable_settings_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
