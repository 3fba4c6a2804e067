"""Chapter 9's static figure functions: each draws the numbers it is given, on the axes it promises."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from nqm_lib import figures_adaptive as fa
from nqm_lib.adaptive import small_regression

plt.switch_backend("Agg")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_regression_paths_figure_draws_one_path_per_panel_from_the_start():
    fig = fa.regression_paths_figure(
        small_regression(), [-0.5, 2.0], [("a", None, 0.3), ("b", 4, 0.1)], steps=20
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    path = fig.axes[1].get_lines()[1]  # the star (θ̂) comes first
    assert len(path.get_xdata()) == 21 and (path.get_xdata()[0], path.get_ydata()[0]) == (-0.5, 2.0)


def test_batch_size_figure_draws_theory_against_steps_and_examples():
    t = np.arange(51)
    curves = [{"label": "x", "per_step": 8, "theory": np.exp(-t / 10) + 1e-3, "measured": np.exp(-t / 10)}]
    top, bottom = fa.batch_size_figure(curves, target=1e-2).axes
    np.testing.assert_allclose(bottom.get_lines()[0].get_xdata(), 8 * t)
    assert top.get_yscale() == bottom.get_yscale() == bottom.get_xscale() == "log"


def test_power_schedules_figure_and_tuned_schedules_figure():
    lrs = np.stack([0.02 / (1 + np.arange(100) / 10) ** a for a in (0.5, 1.0)])
    risks = np.stack([np.linspace(1, 0.1, 101), np.linspace(1, 0.05, 101)])
    fig = fa.power_schedules_figure(
        lrs, risks, [0.5, 1.0], simulated=(1, risks[1], 0.01 * risks[1]), floor=0.2
    )
    top, bottom = fig.axes
    assert "Robbins–Monro" in top.get_legend().get_texts()[1].get_text()
    assert top.get_title() == "power schedules"
    assert any(text.get_text() == "floor of the constant rate" for text in bottom.get_legend().get_texts())
    assert any(line.get_marker() == "o" for line in bottom.get_lines())
    budgets = np.array([10, 50, 100])
    fig = fa.tuned_schedules_figure({"a": lrs[0], "b": lrs[1]}, risks, budgets, risks[0], risks[1])
    assert len(fig.axes) == 3
    np.testing.assert_allclose(fig.axes[2].get_lines()[1].get_ydata(), risks[1][budgets])


def test_averaging_steps_and_coefficient_figures():
    curves = {"last": np.linspace(1, 0.1, 30), "uniform": np.linspace(2, 0.05, 30)}
    ax = fa.averaging_comparison_figure(curves, marker=10).axes[0]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), curves["uniform"])
    fig = fa.adaptive_steps_figure({"on": np.ones(5), "off": np.arange(1.0, 6.0)}, {"AdaGrad": np.ones(5)})
    assert [line.get_linestyle() for line in fig.axes[0].get_lines()] == ["-", "--"]
    fig = fa.coefficients_figure(
        np.array([0.0, 2.0, -1.0]), np.zeros(3), {"SGD": np.ones(3), "Adam": np.ones(3)}
    )
    assert len(fig.axes[0].patches) == 3 and "2 active genes" in fig.axes[0].get_title()


def test_tuned_optimizers_figure_draws_constant_solid_and_cosine_dotted():
    excess = np.tile(np.linspace(1, 0.01, 11)[:, None], (1, 4))
    fig = fa.tuned_optimizers_figure(
        {"SGD": (0.1, excess), "Adam": (0.01, excess)},
        {"SGD": (0.2, excess / 2)},
        np.linspace(1, 0.1, 3),
        batch_size=8,
        n_examples=100,
        runs=4,
    )
    top, bottom = fig.axes
    styles = [line.get_linestyle() for line in top.get_lines()]
    assert styles == ["-", "-", ":", "--"]
    np.testing.assert_allclose(bottom.get_lines()[3].get_xdata(), [100, 200])


def test_escape_figure_draws_shares_and_losses_for_each_learning_rate():
    noise = [0.0, 5.0, 10.0]
    shares = {
        0.01: ([1.0, 0.9, 0.5], [0.0, 0.0, 0.2], [3.6, 3.0, 1.0]),
        0.03: ([1, 0.5, 0.1], [0, 0.2, 0.5], [3, 1, 0]),
    }
    top, bottom = fa.escape_figure(noise, shares, descent_loss=3.6, best_loss=-1.8, runs=10, steps=5).axes
    assert len(top.get_lines()) == 4
    np.testing.assert_allclose(bottom.get_lines()[1].get_ydata(), [3, 1, 0])


def test_log_axes_are_labelled_in_plain_text_at_the_ticks_matplotlib_labels():
    """plain_log_ticks labels the ticks Matplotlib labels, with their values in plain text (2×10⁻³);
    minor ticks stay only on axes shorter than two decades (where Matplotlib labels some)."""
    from nqm_lib.plotting import plain_log_ticks

    digits = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")

    def value(label):  # "2×10⁻³" → 0.002
        factor, _, power = label.rpartition("×")
        return float(factor or 1) * 10.0 ** int(power.removeprefix("10").translate(digits))

    def labelled(ax):
        ticks = ax.get_yticklabels() + ax.yaxis.get_minorticklabels()
        return {round(t.get_position()[1], 12): t.get_text() for t in ticks if t.get_text()}

    for low, high, minor_ticks in [(1e-5, 1e2, False), (2e-3, 8e-3, True), (0.3, 3.0, True)]:
        fig, ax = plt.subplots()
        ax.plot([1, 2], [low, high])
        ax.set_yscale("log")
        fig.canvas.draw()
        default = labelled(ax)
        plain_log_ticks(ax)
        fig.canvas.draw()
        plain = labelled(ax)
        assert plain.keys() == default.keys() and plain
        for position, text in plain.items():
            assert "$" not in text and value(text) == pytest.approx(position, rel=1e-9)
        assert bool(len(ax.yaxis.get_minorticklocs())) == minor_ticks


def test_static_figures_write_no_mathtext_tick_labels():
    t = np.arange(1, 101)
    fig = fa.averaging_comparison_figure({"last": 1 / t, "uniform": 2 / t}, marker=30)
    fig.canvas.draw()
    labels = [text.get_text() for ax in fig.axes for text in ax.get_xticklabels() + ax.get_yticklabels()]
    assert "10⁻¹" in labels and not any(label.startswith("$") for label in labels)
