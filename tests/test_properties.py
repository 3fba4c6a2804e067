"""Property-based tests (hypothesis) of the exact risk for random valid settings.

For random curvatures, noise, starting points, multiplicities, learning rates below the
stability limit ``2(1 + β)/max h^{1−p}``, batch sizes, momentum, EMA and preconditioning:
the risk curve is finite and non-negative, starts at the initial risk, its per-coordinate
rows sum to it, its noise part (risk minus the risk of the same problem with ``c = 0``) grows
monotonically to the steady-state risk and scales exactly as ``1/B``, a noiseless problem has
steady state 0, and plain SGD from the optimum has a non-decreasing risk.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nqm_lib import NQM, risk_curve, risk_curve_per_coordinate, steady_state_risk

# derandomize: the suite is deterministic (same examples on every run and machine)
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
STEPS = 120


def stability_limit(h, momentum, precond_power):
    """2(1 + β) / max_i h_i^{1−p}, written out here (checked against eigenvalues elsewhere)."""
    return 2.0 * (1.0 + momentum) / max(x ** (1.0 - precond_power) for x in h)


@st.composite
def nqm_settings(
    draw,
    *,
    h_range=(0.05, 20.0),
    fraction_range=(0.05, 0.95),
    max_decay=0.95,
    plain=False,
    zero_start=False,
):
    """A random problem and stable hyperparameters (dict of keyword arguments)."""
    d = draw(st.integers(1, 4))
    h = draw(st.lists(st.floats(*h_range), min_size=d, max_size=d))
    # no subnormal-scale values: risks below ~1e-300 lose relative precision in any code
    noise = st.one_of(st.just(0.0), st.floats(1e-6, 10.0))
    start = st.one_of(st.just(0.0), st.floats(1e-3, 3.0), st.floats(-3.0, -1e-3))
    c = draw(st.lists(noise, min_size=d, max_size=d))
    theta0 = [0.0] * d if zero_start else draw(st.lists(start, min_size=d, max_size=d))
    counts = draw(st.lists(st.integers(1, 5), min_size=d, max_size=d))
    decay = st.one_of(st.just(0.0), st.floats(0.0, max_decay))
    momentum = 0.0 if plain else draw(decay)
    ema_decay = 0.0 if plain else draw(decay)
    precond_power = draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)))
    fraction = draw(st.floats(*fraction_range))
    hyper = {
        "lr": fraction * stability_limit(h, momentum, precond_power),
        "batch_size": draw(st.integers(1, 64)),
        "momentum": momentum,
        "ema_decay": ema_decay,
        "precond_power": precond_power,
    }
    return NQM(h, c, theta0, counts=counts), hyper


def noiseless(problem):
    return NQM(problem.h, 0.0, problem.theta0, counts=problem.counts)


def noise_part(problem, steps, hyper):
    """risk − bias part, and a rounding allowance for that difference (1e-12 of the scale)."""
    risk = risk_curve(problem, steps, **hyper)
    bias = risk_curve(noiseless(problem), steps, **hyper)
    return risk - bias, 1e-12 * (np.max(risk) + np.max(bias))


@PROPERTY
@given(nqm_settings())
def test_risk_curve_is_finite_and_nonnegative(setting):
    problem, hyper = setting
    curve = risk_curve(problem, STEPS, **hyper)
    assert curve.shape == (STEPS + 1,)
    assert np.all(np.isfinite(curve))
    assert np.all(curve >= 0.0)


@PROPERTY
@given(nqm_settings())
def test_risk_curve_starts_at_the_initial_risk(setting):
    problem, hyper = setting
    expected = sum(
        0.5 * n * h * x**2 for h, x, n in zip(problem.h, problem.theta0, problem.counts, strict=True)
    )
    assert risk_curve(problem, 3, **hyper)[0] == pytest.approx(expected, rel=1e-12, abs=0.0)


@PROPERTY
@given(nqm_settings())
def test_per_coordinate_rows_sum_to_the_total(setting):
    problem, hyper = setting
    per_coordinate = risk_curve_per_coordinate(problem, STEPS, **hyper)
    assert per_coordinate.shape == (STEPS + 1, problem.d)
    np.testing.assert_allclose(per_coordinate.sum(axis=1), risk_curve(problem, STEPS, **hyper), rtol=1e-12)


@PROPERTY
@given(nqm_settings())
def test_noise_part_is_nondecreasing_and_below_the_steady_state(setting):
    problem, hyper = setting
    noise, rounding = noise_part(problem, STEPS, hyper)
    floor = steady_state_risk(problem, **hyper)
    assert abs(noise[0]) <= rounding
    assert np.all(np.diff(noise) >= -rounding)
    assert np.all(noise <= floor * (1 + 1e-9) + rounding)


def slowest_contraction(problem, hyper):
    """Largest |eigenvalue| of the heavy-ball mean iteration over coordinates, and γ."""
    radius = hyper["ema_decay"]
    for h in problem.h:
        h_eff = h ** (1.0 - hyper["precond_power"])
        lr, beta = hyper["lr"], hyper["momentum"]
        matrix = np.array([[1.0 - lr * h_eff, -lr * beta], [h_eff, beta]])
        radius = max(radius, float(np.max(np.abs(np.linalg.eigvals(matrix)))))
    return radius


@PROPERTY
@given(nqm_settings(h_range=(0.2, 5.0), fraction_range=(0.2, 0.9), max_decay=0.9))
def test_noise_part_converges_to_the_steady_state_risk(setting):
    problem, hyper = setting
    rho = slowest_contraction(problem, hyper)
    # enough steps that every mode has decayed by rho^(2T) <= 1e-16 (rho = 0: one step)
    steps = max(1, math.ceil(math.log(1e-16) / (2.0 * math.log(max(rho, 1e-8)))))
    assume(steps <= 3000)
    noise, rounding = noise_part(problem, steps, hyper)
    floor = steady_state_risk(problem, **hyper)
    assert noise[-1] == pytest.approx(floor, rel=1e-6, abs=rounding)


@PROPERTY
@given(nqm_settings())
def test_noise_part_scales_exactly_as_one_over_batch_size(setting):
    problem, hyper = setting
    noise_b, rounding_b = noise_part(problem, STEPS, hyper)
    noise_1, rounding_1 = noise_part(problem, STEPS, {**hyper, "batch_size": 1})
    batch_size = hyper["batch_size"]
    np.testing.assert_allclose(
        noise_b * batch_size, noise_1, rtol=1e-9, atol=batch_size * rounding_b + rounding_1
    )
    assert steady_state_risk(problem, **hyper) * batch_size == pytest.approx(
        steady_state_risk(problem, **{**hyper, "batch_size": 1}), rel=1e-12
    )


@PROPERTY
@given(nqm_settings())
def test_noiseless_problem_has_zero_steady_state(setting):
    problem, hyper = setting
    assert steady_state_risk(noiseless(problem), **hyper) == 0.0


@PROPERTY
@given(nqm_settings(plain=True, zero_start=True))
def test_plain_sgd_risk_from_the_optimum_is_nondecreasing(setting):
    problem, hyper = setting
    curve = risk_curve(problem, STEPS, **hyper)
    assert curve[0] == 0.0
    assert np.all(np.diff(curve) >= 0.0)
