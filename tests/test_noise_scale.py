"""The gradient noise scales (nqm_lib.noise_scale) against what they are defined to predict."""

import numpy as np
import pytest

from nqm_lib import NQM, risk_curve_per_coordinate, simulate
from nqm_lib.noise_scale import gradient_noise_scales, nqm_noise_scales


def one_step_expected_loss(h, c, theta, lr, batch_size):
    """E[L(θ − η g)] for L = ½θᵀHθ and g = Hθ + noise of covariance C/B: written out term by term."""
    after_mean = theta - lr * h @ theta
    return 0.5 * after_mean @ h @ after_mean + 0.5 * lr**2 * np.trace(h @ c) / batch_size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_one_step_progress_falls_as_one_over_one_plus_b_noise_over_b(seed):
    # McCandlish et al.'s defining property: with η tuned for B, one step's expected progress is
    # the noise-free progress divided by 1 + B_noise / B. Checked on a non-diagonal H and C by
    # minimising the exact one-step loss over a fine grid of η, independently of the formula.
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    h = q @ np.diag([3.0, 1.0, 0.3, 0.1]) @ q.T
    a = rng.normal(size=(4, 4))
    c = a @ a.T
    theta = rng.normal(size=4)
    loss = 0.5 * theta @ h @ theta
    lrs = np.linspace(1e-4, 2.0, 200_001)
    noise_free = loss - min(one_step_expected_loss(h, 0 * c, theta, lr, 1) for lr in lrs[::100])
    scales = gradient_noise_scales(h, c, h @ theta)
    for batch_size in [1, 3, 10, 100]:
        progress = loss - np.min([one_step_expected_loss(h, c, theta, lr, batch_size) for lr in lrs[::100]])
        assert progress == pytest.approx(noise_free / (1 + scales.critical / batch_size), rel=1e-3)


def test_simple_noise_scale_is_the_ratio_of_noise_variance_to_squared_gradient_by_monte_carlo():
    # Sample per-example gradients G + ε with covariance C and estimate tr C and |G|² from them.
    rng = np.random.default_rng(7)
    gradient = np.array([0.5, -0.2, 0.1])
    c = np.diag([1.0, 2.0, 0.5])
    samples = gradient + rng.multivariate_normal(np.zeros(3), c, size=400_000)
    estimate = np.trace(np.cov(samples.T)) / np.sum(samples.mean(axis=0) ** 2)
    assert gradient_noise_scales(np.eye(3), c, gradient).simple == pytest.approx(estimate, rel=0.01)


def test_with_h_proportional_to_identity_both_scales_agree():
    scales = gradient_noise_scales(2.5 * np.eye(3), [1.0, 4.0, 2.0], [1.0, -1.0, 0.5])
    assert scales.critical == pytest.approx(scales.simple, rel=1e-12)


def test_nqm_noise_scales_grow_along_an_sgd_run_and_match_the_monte_carlo_second_moments():
    problem = NQM.paper_spectrum(100, bins=100)
    curve = risk_curve_per_coordinate(problem, 400, lr=0.5, batch_size=4)
    scales = nqm_noise_scales(problem, 2 * curve / problem.h)
    assert scales.simple.shape == (401,)
    assert np.all(np.diff(scales.simple[:200]) > 0) and np.all(np.diff(scales.critical[:200]) > 0)
    small = NQM([4.0, 1.0], [4.0, 1.0], theta0=[1.0, 1.0])
    run = simulate(small, 30, lr=0.1, batch_size=2, trials=40_000, seed=3)
    exact = nqm_noise_scales(small, 2 * risk_curve_per_coordinate(small, 30, lr=0.1, batch_size=2) / small.h)
    sampled = nqm_noise_scales(small, 2 * run.risk_per_coordinate / small.h)
    np.testing.assert_allclose(sampled.critical, exact.critical, rtol=0.03)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1.0, 1.0], [1.0, 1.0], [0.0, 0.0]), "stationary point"),
        (([1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0]), "covariance must be"),
        (([-1.0, -1.0], [1.0, 1.0], [1.0, 0.0]), "positive curvature"),
        (([1.0, np.nan], [1.0, 1.0], [1.0, 0.0]), "hessian must be finite"),
    ],
)
def test_bad_input_names_the_parameter(args, message):
    with pytest.raises(ValueError, match=message):
        gradient_noise_scales(*args)


def test_nqm_noise_scales_reject_the_optimum_and_wrong_shapes():
    problem = NQM([2.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="infinite at the optimum"):
        nqm_noise_scales(problem, [0.0, 0.0])
    with pytest.raises(ValueError, match="last axis of length d = 2"):
        nqm_noise_scales(problem, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="second_moment"):
        nqm_noise_scales(problem, [-1.0, 1.0])
