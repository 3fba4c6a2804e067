"""``nqm_lib.heavy_ball``: the closed-form exact risk of heavy ball, and tuning by a window of steps.

The closed form is checked against the recurrence it solves (impulse responses by iteration) and
against ``risk_curve``, which iterates the second-moment recursion instead, over settings that
include critical damping, its neighbourhood, negative roots, plain SGD and the stability edge.
"""

import numpy as np
import pytest

from nqm_lib import NQM, InstabilityError, max_stable_lr, risk_curve
from nqm_lib.heavy_ball import WindowTuning, impulse_response, risk_curves, tuning_grid, window_tuning

WORKED = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])


def impulse_by_recurrence(x, beta, steps):
    u = np.zeros(steps)
    u[0] = 1.0
    if steps > 1:
        u[1] = 1 - x + beta
    for k in range(2, steps):
        u[k] = (1 - x + beta) * u[k - 1] - beta * u[k - 2]
    return u


def settings():
    """(x = ηh, β) pairs: both damping regimes, critical damping exactly and within 1e-12, negative roots."""
    pairs = [
        (0.01, 0.9),
        (0.01, 0.5),
        (0.25, 0.8),
        (1.5, 0.6),
        (3.0, 0.7),
        (3.5, 0.9),
        (1.0, 0.0),
        (0.3, 0.0),
    ]
    for x in (0.01, 0.3, 1.7, 3.07):
        critical = (1 - np.sqrt(x)) ** 2
        pairs += [
            (x, critical),
            (x, critical * (1 + 1e-12)),
            (x, critical * (1 - 1e-12)),
            (x, critical + 1e-7),
        ]
    return pairs


@pytest.mark.parametrize(("x", "beta"), settings())
def test_impulse_response_solves_the_recurrence(x, beta):
    expected = impulse_by_recurrence(x, beta, 300)
    got = impulse_response(np.arange(300), x, beta)
    scale = np.maximum(np.abs(expected), 1e-300)
    assert np.all(np.abs(got - expected) <= 1e-9 * np.maximum(scale, np.abs(expected).max() * 1e-12))


@pytest.mark.parametrize(("x", "beta"), settings())
def test_closed_form_risk_equals_the_second_moment_recursion(x, beta):
    problem = NQM([2.0, 0.5], [3.0, 0.2], theta0=[1.5, -0.7])
    lr = x / 2.0  # x is η h₁
    got = risk_curves(problem, 400, [lr], momentum=beta, batch_size=3)[0]
    np.testing.assert_allclose(got, risk_curve(problem, 400, lr=lr, momentum=beta, batch_size=3), rtol=1e-9)


def test_one_row_per_learning_rate_and_long_runs_stay_exact():
    lrs = np.geomspace(1e-5, 0.07, 7)
    curves = risk_curves(WORKED, 120, lrs, momentum=0.9, batch_size=16)
    assert curves.shape == (7, 121)
    for row, lr in zip(curves, lrs, strict=True):
        np.testing.assert_allclose(
            row, risk_curve(WORKED, 120, lr=lr, momentum=0.9, batch_size=16), rtol=1e-9
        )
    long = risk_curves(WORKED, 25_000, [1e-4], momentum=0.5)[0]
    np.testing.assert_allclose(long, risk_curve(WORKED, 25_000, lr=1e-4, momentum=0.5), rtol=1e-9)


def test_window_tuning_judges_each_run_by_its_worst_risk_over_the_window():
    grid = tuning_grid(WORKED, 0.9)
    tuned = window_tuning(WORKED, grid, momentum=0.9, batch_size=1, budget=100, window_start=50)
    assert isinstance(tuned, WindowTuning)
    direct = np.array([risk_curve(WORKED, 100, lr=lr, momentum=0.9) for lr in grid])
    np.testing.assert_allclose(tuned.curves, direct, rtol=1e-9)
    np.testing.assert_allclose(tuned.worst, direct[:, 50:].max(axis=1), rtol=1e-9)
    np.testing.assert_array_equal(tuned.worst_step, 50 + direct[:, 50:].argmax(axis=1))
    assert tuned.best == int(np.argmin(direct[:, 50:].max(axis=1)))
    assert tuned.best_at_budget == int(np.argmin(direct[:, 100]))


def test_tuning_grid_spans_effective_rates_from_1e_4_to_the_stability_limit_and_includes_sgd():
    for beta in (0.0, 0.5, 0.9):
        grid = tuning_grid(WORKED, beta)
        assert grid.size == 60
        assert grid[0] / (1 - beta) == pytest.approx(1e-4)
        assert grid[-1] == pytest.approx(0.999 * max_stable_lr(WORKED, momentum=beta))
        np.testing.assert_allclose(np.diff(np.log(grid)), np.log(grid[1] / grid[0]))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: impulse_response([0.5], 0.1, 0.5), ValueError, "k"),
        (lambda: impulse_response([-1], 0.1, 0.5), ValueError, "k"),
        (lambda: impulse_response([1], 0.1, 1.0), ValueError, "momentum"),
        (lambda: risk_curves(WORKED, 10, [0.01, -0.01], momentum=0.5), ValueError, "lrs"),
        (lambda: risk_curves(WORKED, -1, [0.01], momentum=0.5), ValueError, "steps"),
        (lambda: risk_curves(WORKED, 10, [0.01], momentum=0.5, batch_size=0), ValueError, "batch_size"),
        (lambda: risk_curves(WORKED, 10, [0.01, 0.08], momentum=0.9), InstabilityError, "unstable"),
        (
            lambda: window_tuning(WORKED, [0.01], momentum=0.5, budget=10, window_start=20),
            ValueError,
            "window",
        ),
        (lambda: tuning_grid(WORKED, 0.5, points=1), ValueError, "points"),
        (lambda: tuning_grid(WORKED, 0.5, smallest=10.0), ValueError, "smallest"),
    ],
)
def test_invalid_arguments_raise_naming_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()
