"""Divergence computed, not refused: the ``ceiling`` opt-in of theory and simulation (issue 19).

By default every public function still raises ``InstabilityError`` for an unstable setting
(chapter 2 prints that message as a lesson). With ``ceiling`` the figures get the divergent
values: each diverging coordinate exactly as long as its risk stays below the ceiling, then
held at the ceiling, with no NaN, inf or overflow warning however far the iteration would go.
The expected values come from independent computations written out here: the SGD closed form
``r^{2t} ℓ(0) + (1 − r^{2t}) η c / (2B(2 − ηh))`` (valid for any ``r ≠ ±1``) and a brute-force
recursion of the second moments of the heavy-ball state ``(θ, v)``.
"""

import warnings

import numpy as np
import pytest

from nqm_lib import (
    NQM,
    Hyperparams,
    InstabilityError,
    risk_curve,
    risk_curve_per_coordinate,
    sample_path,
    simulate,
    steady_state_risk_per_coordinate,
)
from nqm_lib.dynamics import diverging_coordinates, instability_condition

WORKED = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def sgd_closed_form(h, c, theta0, t, lr, batch_size):
    """E[½ h θ_t²] of SGD for any r = 1 − ηh ≠ ±1, from the geometric series (not the library)."""
    r2t = (1.0 - lr * h) ** (2 * t)
    return r2t * 0.5 * h * theta0**2 + (1.0 - r2t) * lr * c / (2 * batch_size * (2.0 - lr * h))


def heavy_ball_by_hand(h, c, theta0, steps, lr, momentum, batch_size):
    """E[½ h θ_t²] of v ← βv + hθ + ε, θ ← θ − ηv, from the exact 2×2 moment recursion.

    Stops (the rest is ``inf``) once the risk passes 1e12, long before it could overflow.
    """
    A = np.array([[1.0 - lr * h, -lr * momentum], [h, momentum]])  # acts on (θ, v) before the step
    b = np.array([-lr, 1.0])
    second = np.array([[theta0**2, 0.0], [0.0, 0.0]])
    risk = np.full(steps + 1, np.inf)
    for t in range(steps + 1):
        risk[t] = 0.5 * h * second[0, 0]
        if risk[t] > 1e12:
            break
        second = A @ second @ A.T + (c / batch_size) * np.outer(b, b)
    return risk


def test_default_entry_points_still_refuse_unstable_settings():
    with pytest.raises(InstabilityError, match="choose lr < 0.04"):
        risk_curve(WORKED, 10, lr=0.05)
    with pytest.raises(InstabilityError):
        simulate(WORKED, 10, lr=0.05, trials=4)
    with pytest.raises(InstabilityError):
        sample_path(WORKED, 10, lr=0.05)
    with pytest.raises(InstabilityError):
        steady_state_risk_per_coordinate(WORKED, lr=0.05)


@pytest.mark.parametrize(
    "hyper",
    [
        {"lr": 0.02},
        {"lr": 0.01, "momentum": 0.9, "batch_size": 4},
        {"lr": 0.02, "ema_decay": 0.95},
        {"lr": 0.2, "precond_power": 0.5},
        {"lr": 0.01, "momentum": 0.5, "dampening": 0.5},
    ],
)
def test_a_ceiling_changes_nothing_for_stable_settings(hyper):
    exact = risk_curve_per_coordinate(WORKED, 200, **hyper)
    np.testing.assert_array_equal(risk_curve_per_coordinate(WORKED, 200, ceiling=1e-3, **hyper), exact)
    floors = steady_state_risk_per_coordinate(WORKED, **hyper)
    np.testing.assert_array_equal(steady_state_risk_per_coordinate(WORKED, ceiling=1e-3, **hyper), floors)
    plain = simulate(WORKED, 50, trials=20, seed=3, **hyper)
    capped = simulate(WORKED, 50, trials=20, seed=3, ceiling=1e-3, **hyper)
    np.testing.assert_array_equal(capped.risk_per_coordinate, plain.risk_per_coordinate)
    np.testing.assert_array_equal(capped.risk_stderr, plain.risk_stderr)
    np.testing.assert_array_equal(
        sample_path(WORKED, 30, ceiling=1e-9, **hyper), sample_path(WORKED, 30, **hyper)
    )


@pytest.mark.parametrize("lr", [0.045, 0.06, 0.1])
def test_diverging_sgd_follows_the_closed_form_until_the_ceiling_then_holds(lr):
    ceiling = 1e4
    risk = risk_curve_per_coordinate(WORKED, 300, lr=lr, ceiling=ceiling)
    t = np.arange(301)
    expected = sgd_closed_form(50.0, 50.0, 1.0, t[:40], lr, 1)
    first = int(np.flatnonzero(expected > ceiling)[0])  # the curve grows geometrically
    np.testing.assert_allclose(risk[:first, 0], expected[:first], rtol=1e-12)
    assert np.all(risk[first:, 0] == ceiling)
    # the flat coordinate converges (η h_2 < 2) and is exactly what it is on its own
    alone = risk_curve_per_coordinate(NQM([1.0], [1.0], theta0=[1.0]), 300, lr=lr)
    np.testing.assert_array_equal(risk[:, 1], alone[:, 0])


@pytest.mark.parametrize(("lr", "momentum"), [(0.08, 0.9), (0.1, 0.5), (0.2, 0.0)])
def test_diverging_heavy_ball_follows_the_moment_recursion_until_the_ceiling(lr, momentum):
    ceiling = 1e5
    risk = risk_curve_per_coordinate(WORKED, 400, lr=lr, momentum=momentum, ceiling=ceiling)
    expected = heavy_ball_by_hand(50.0, 50.0, 1.0, 400, lr, momentum, 1)
    first = int(np.flatnonzero(expected > ceiling)[0])
    np.testing.assert_allclose(risk[:first, 0], expected[:first], rtol=1e-9)
    assert np.all(risk[first:, 0] == ceiling)


def test_divergence_never_overflows_however_long_or_fast():
    for hyper in (
        {"lr": 10.0},
        {"lr": 10.0, "momentum": 0.99},
        {"lr": 1.0, "ema_decay": 0.9, "dampening": 0.0},
    ):
        risk = risk_curve(WORKED, 20_000, ceiling=1e6, **hyper)
        assert np.all(np.isfinite(risk)) and risk[-1] >= 1e6
        result = simulate(WORKED, 2_000, trials=50, ceiling=1e6, **hyper)
        assert np.all(np.isfinite(result.risk)) and np.all(np.isfinite(result.risk_stderr))


def test_steady_state_with_a_ceiling_is_the_ceiling_for_the_diverging_coordinate_only():
    floors = steady_state_risk_per_coordinate(WORKED, lr=0.05, batch_size=4, ceiling=7.0)
    assert floors[0] == 7.0
    assert floors[1] == pytest.approx(0.05 * 1.0 / (2 * 4 * (2 - 0.05)), rel=1e-12)


def test_simulated_divergence_agrees_with_theory_then_holds_and_spares_the_other_coordinate():
    ceiling = 1e4
    result = simulate(WORKED, 60, lr=0.045, trials=4000, seed=5, ceiling=ceiling)
    exact = risk_curve(WORKED, 60, lr=0.045, ceiling=ceiling)
    growing = np.flatnonzero(exact < 0.1 * ceiling)[1:]  # t ≥ 1 while well below the ceiling
    z = (result.risk[growing] - exact[growing]) / result.risk_stderr[growing]
    assert np.all(np.abs(z) < 5), z
    held = result.risk_per_coordinate[:, 0] == ceiling
    assert held[-1] and np.all(held[np.argmax(held) :])  # held from its first crossing on
    # coordinate 2 draws the same random numbers as in a run where coordinate 1 converges
    stable = simulate(NQM([20.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0]), 60, lr=0.045, trials=4000, seed=5)
    np.testing.assert_array_equal(result.risk_per_coordinate[:, 1], stable.risk_per_coordinate[:, 1])


def test_a_diverging_path_ends_at_its_first_iterate_beyond_the_ceiling():
    noise_free = NQM([50.0, 1.0], [0.0, 0.0], theta0=[1.0, 1.0])
    path = sample_path(noise_free, 100, lr=0.06, ceiling=1e3)  # θ_1 ← (1 − 3) θ_1 = −2 θ_1
    t = np.arange(len(path))
    np.testing.assert_allclose(path[:, 0], (-2.0) ** t)
    losses = noise_free.loss(path)
    assert losses[-1] > 1e3 and np.all(losses[:-1] <= 1e3)


def test_diverging_coordinates_and_the_broken_condition_in_the_course_symbols():
    three = NQM([50.0, 20.0, 1.0], 1.0)
    assert diverging_coordinates(three, Hyperparams(0.05)).tolist() == [True, False, False]
    assert diverging_coordinates(three, Hyperparams(0.1)).tolist() == [True, True, False]
    assert diverging_coordinates(three, Hyperparams(0.1, momentum=0.9)).tolist() == [True, False, False]
    assert instability_condition(three, Hyperparams(0.05)) == "ηh₁ = 2.5 ≥ 2"
    assert instability_condition(three, Hyperparams(0.08, momentum=0.8)) == "ηh₁ = 4 ≥ 2(1 + β) = 3.6"
    assert (
        instability_condition(NQM([4.0, 1.0], 1.0), Hyperparams(2.5, precond_power=0.5)) == "ηh₁¹⁻ᵖ = 5 ≥ 2"
    )
    assert instability_condition(three, Hyperparams(0.06, momentum=0.5, nesterov=True)) == (
        "ηh₁ = 3 ≥ 2(1 + β)/(1 + 2β) = 1.5"
    )
    with pytest.raises(ValueError, match="no coordinate diverges"):
        instability_condition(three, Hyperparams(0.01))


@pytest.mark.parametrize("ceiling", [0.0, -1.0, float("nan"), float("inf"), "high"])
def test_an_invalid_ceiling_is_rejected(ceiling):
    with pytest.raises(ValueError, match="ceiling"):
        risk_curve(WORKED, 10, lr=0.05, ceiling=ceiling)
    with pytest.raises(ValueError, match="ceiling"):
        simulate(WORKED, 10, lr=0.05, trials=4, ceiling=ceiling)
