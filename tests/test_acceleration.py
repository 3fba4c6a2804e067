"""Acceleration on quadratics and beyond (chapter 3): tuned rates, the lower bound, and the counterexample.

The rates are checked against the spectral radius of each method's 2×2 transition matrix over a
dense grid of curvatures (not the library's root formula), the counterexample's cycle against the
linear equations that a three-point cycle must solve, and the iterations against plain loops.
"""

import numpy as np
import pytest

from nqm_lib import acceleration
from nqm_lib.acceleration import (
    LESSARD_CURVATURES,
    first_order_lower_bound,
    lessard_function,
    lessard_gradient,
    momentum_iterates,
    quadratic_rate,
    tuned_heavy_ball,
    tuned_nesterov,
)

H_MIN, H_MAX = LESSARD_CURVATURES
STARTS = np.linspace(-10.0, 10.0, 2001)


def spectral_radius(x, momentum, nesterov=False):
    """Largest |eigenvalue| of the (θ, v) matrix of one coordinate with η h = x (h = 1, η = x);
    ``x`` may be an array (one matrix per entry)."""
    x = np.asarray(x, dtype=float)
    A = np.empty((*x.shape, 2, 2))
    A[..., 0, 0] = 1 - x * (1 + momentum) if nesterov else 1 - x
    A[..., 0, 1] = -x * momentum**2 if nesterov else -x * momentum
    A[..., 1, 0], A[..., 1, 1] = 1.0, momentum
    return np.max(np.abs(np.linalg.eigvals(A)), axis=-1)


def worst_on_grid(lr, momentum=0.0, nesterov=False, h_min=H_MIN, h_max=H_MAX):
    curvatures = np.concatenate([np.geomspace(h_min, h_max, 3001), [h_min, h_max]])
    return float(spectral_radius(lr * curvatures, momentum, nesterov).max())


def by_loop(gradient, theta0, steps, lr, momentum=0.0, nesterov=False):
    theta, velocity, path = float(theta0), 0.0, [float(theta0)]
    for _ in range(steps):
        g = float(gradient(theta))
        velocity = momentum * velocity + g
        theta -= lr * (g + momentum * velocity if nesterov else velocity)
        path.append(theta)
    return np.array(path)


def test_lessard_function_is_1_strongly_convex_and_25_smooth_but_not_a_quadratic():
    theta = np.linspace(-5.0, 5.0, 100_001)
    gradient = lessard_gradient(theta)
    slopes = np.diff(gradient) / np.diff(theta)
    assert slopes.min() == pytest.approx(1.0, abs=1e-6) and slopes.max() == pytest.approx(25.0, abs=1e-6)
    for kink in (1.0, 2.0):  # the function and its derivative are continuous at the kinks
        left, right = np.nextafter(kink, -np.inf), kink
        assert lessard_function(left) == pytest.approx(lessard_function(right), abs=1e-9)
        assert lessard_gradient(left) == pytest.approx(lessard_gradient(right), abs=1e-9)
    np.testing.assert_allclose(np.gradient(lessard_function(theta), theta)[1:-1], gradient[1:-1], atol=1e-3)
    assert lessard_function(0.0) == 0.0 and lessard_gradient(0.0) == 0.0
    assert np.all(lessard_function(theta) >= 0.5 * theta**2 - 1e-9)  # strong convexity about θ* = 0


@pytest.mark.parametrize("kappa", [4.0, 25.0, 50.0, 1e4])
def test_claim_tuned_rates_on_quadratics_match_the_spectral_radius_on_a_dense_grid(kappa):
    h_min, h_max = 1.0, kappa
    lr, beta = tuned_heavy_ball(h_min, h_max)
    rate = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    assert beta == pytest.approx(rate**2)
    assert worst_on_grid(lr, beta, h_min=h_min, h_max=h_max) == pytest.approx(rate, rel=1e-6)
    # both ends are critically damped, where the two roots meet and max|z| is only accurate to about
    # √(machine ε): the square root of a discriminant that is zero up to rounding
    assert quadratic_rate(h_min, h_max, lr=lr, momentum=beta) == pytest.approx(rate, rel=1e-7)
    assert first_order_lower_bound(kappa) == pytest.approx(rate, rel=1e-12)

    lr, beta = tuned_nesterov(h_min, h_max)
    expected = 1 - 2 / np.sqrt(3 * kappa + 1)
    assert worst_on_grid(lr, beta, nesterov=True, h_min=h_min, h_max=h_max) == pytest.approx(
        expected, rel=1e-6
    )
    assert quadratic_rate(h_min, h_max, lr=lr, momentum=beta, nesterov=True) == pytest.approx(
        expected, rel=1e-7
    )
    # Nesterov's textbook tuning η = 1/h₁, β = (√κ − 1)/(√κ + 1): the rate 1 − 1/√κ
    textbook = quadratic_rate(h_min, h_max, lr=1 / h_max, momentum=rate, nesterov=True)
    assert textbook == pytest.approx(1 - 1 / np.sqrt(kappa), rel=1e-6)
    # gradient descent at 2/(h₁ + h_d)
    gd = quadratic_rate(h_min, h_max, lr=2 / (h_min + h_max))
    assert gd == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-12)
    assert rate < expected < gd  # heavy ball fastest on quadratics, then Nesterov, then gradient descent


@pytest.mark.parametrize("nesterov", [False, True])
def test_quadratic_rate_is_the_worst_over_the_whole_interval_for_any_setting(nesterov):
    rng = np.random.default_rng(0)
    for _ in range(40):
        lr, beta = rng.uniform(0.001, 0.2), rng.uniform(0.05, 0.95)
        expected = worst_on_grid(lr, beta, nesterov)
        assert quadratic_rate(H_MIN, H_MAX, lr=lr, momentum=beta, nesterov=nesterov) == pytest.approx(
            expected, rel=1e-6
        )


def test_claim_nesterov_needs_sqrt_3_times_as_many_steps_as_heavy_ball_for_large_kappa():
    kappa = 1e8
    heavy = first_order_lower_bound(kappa)
    nesterov = quadratic_rate(1.0, kappa, lr=tuned_nesterov(1.0, kappa)[0],
                              momentum=tuned_nesterov(1.0, kappa)[1], nesterov=True)  # fmt: skip
    assert np.log(heavy) / np.log(nesterov) == pytest.approx(np.sqrt(3), rel=1e-3)
    gd = (kappa - 1) / (kappa + 1)
    assert np.log(nesterov) / np.log(gd) > 1000  # steps ∝ √κ against κ


def test_iterates_follow_each_method_step_for_step():
    for settings in [
        {"lr": 0.04},
        {"lr": tuned_heavy_ball(H_MIN, H_MAX)[0], "momentum": tuned_heavy_ball(H_MIN, H_MAX)[1]},
        {
            "lr": tuned_nesterov(H_MIN, H_MAX)[0],
            "momentum": tuned_nesterov(H_MIN, H_MAX)[1],
            "nesterov": True,
        },
    ]:
        ours = momentum_iterates(lessard_gradient, 3.3, 80, **settings)
        np.testing.assert_allclose(
            ours, by_loop(lessard_gradient, 3.3, 80, **settings), rtol=1e-12, atol=1e-300
        )
        many = momentum_iterates(lessard_gradient, np.array([3.3, -2.0]), 80, **settings)
        np.testing.assert_array_equal(many[:, 0], ours)


def heavy_ball_cycle():
    """The three-point cycle p → q → r → p of tuned heavy ball with p, r < 1 ≤ 2 ≤ q, by linear algebra.

    On the pieces the gradient is 25θ (θ < 1) or 25θ − 24 (θ ≥ 2), and each step of the cycle is
    θ' = θ − η g(θ) + β (θ − θ_previous): three linear equations in (p, q, r).
    """
    lr, beta = tuned_heavy_ball(H_MIN, H_MAX)
    a = 1 - 25 * lr + beta
    matrix = np.array([[a, -1.0, -beta], [-beta, a, -1.0], [-1.0, -beta, a]])
    rhs = np.array([0.0, -24 * lr, 0.0])  # q = a p − β r;  r = a q + 24η − β p;  p = a r − β q
    return np.linalg.solve(matrix, rhs)


def test_claim_tuned_heavy_ball_cycles_on_the_lessard_function_from_205_of_2001_starting_points():
    lr, beta = tuned_heavy_ball(H_MIN, H_MAX)
    final = momentum_iterates(lessard_gradient, STARTS, 600, lr=lr, momentum=beta)[-3:]
    stuck = np.abs(final[-1]) > 1e-6
    assert stuck.sum() == 205
    p, q, r = heavy_ball_cycle()
    assert p < 1 and r < 1 and q >= 2  # all on the two outer pieces
    for run in final[:, stuck].T:  # every run that does not converge ends on this cycle
        np.testing.assert_allclose(np.sort(run), np.sort([p, q, r]), atol=1e-9)
    np.testing.assert_allclose(
        momentum_iterates(lessard_gradient, 3.3, 600, lr=lr, momentum=beta)[-3:], [p, q, r], atol=1e-9
    )
    # Lessard, Recht & Packard's interval of starting points is among them
    inside = (STARTS >= 3.07) & (STARTS <= 3.46)
    assert inside.sum() > 30 and np.all(stuck[inside])
    # while on quadratics of the class the same tuning converges at (√κ − 1)/(√κ + 1)
    for curvature in (H_MIN, H_MAX, 5.0):
        path = momentum_iterates(lambda theta, h=curvature: h * theta, 3.3, 200, lr=lr, momentum=beta)
        assert np.abs(path[-1]) <= 3.3 * (1 + 2 * 200) * (2 / 3) ** 200  # (1 + 5t/3) z^t at h = h_1


def test_claim_nesterov_and_gradient_descent_converge_from_every_starting_point():
    lr, beta = tuned_nesterov(H_MIN, H_MAX)
    for settings in [{"lr": lr, "momentum": beta, "nesterov": True}, {"lr": 2 / (H_MIN + H_MAX)}]:
        final = momentum_iterates(lessard_gradient, STARTS, 500, **settings)[-1]
        assert np.all(np.abs(final) < 1e-6)
    # Nesterov's textbook tuning too, at least as fast as its guarantee 1 − 1/√κ = 0.8 (here much faster)
    path = momentum_iterates(lessard_gradient, STARTS, 200, lr=1 / H_MAX, momentum=2 / 3, nesterov=True)
    assert np.all(np.abs(path[-1]) <= 20 * 0.8**200)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: tuned_heavy_ball(0.0, 1.0), "h_min"),
        (lambda: tuned_nesterov(2.0, 1.0), "h_max"),
        (lambda: first_order_lower_bound(0.5), "kappa"),
        (lambda: quadratic_rate(1.0, 2.0, lr=-1.0), "lr"),
        (lambda: quadratic_rate(1.0, 2.0, lr=0.1, momentum=1.0), "momentum"),
        (lambda: quadratic_rate(1.0, 2.0, lr=0.1, nesterov=True), "nesterov"),
        (lambda: momentum_iterates(lessard_gradient, np.nan, 3, lr=0.1), "theta0"),
        (lambda: momentum_iterates(lessard_gradient, 1.0, -1, lr=0.1), "steps"),
        (lambda: momentum_iterates(lessard_gradient, 1.0, 3, lr=0.1, nesterov=True), "nesterov"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_module_names_its_public_functions():
    assert set(acceleration.__all__) >= {"lessard_function", "tuned_heavy_ball", "quadratic_rate"}
