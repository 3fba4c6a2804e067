"""The NQM measured along training, and the digits problems (chapter 10), against closed forms."""

import math

import numpy as np
import pytest
import torch

from nqm_lib import digits
from nqm_lib import network_nqm as nn
from nqm_lib import networks as nw
from nqm_lib.noise_scale import gradient_noise_scales

torch.set_num_threads(1)

SIGMA = np.array([1.0, 0.7, 0.4])
THETA_STAR = np.array([0.5, -1.0, 2.0])
DELTA = np.array([0.6, -0.4, 0.9])


def linear(noise_std=0.5):
    return nw.LinearRegression(SIGMA, THETA_STAR, noise_std, DELTA)


def linear_moments(noise_std=0.5):
    """Closed forms for linear regression on Gaussian x at θ* + δ: H, C (Isserlis) and G."""
    h = np.diag(SIGMA**2)
    g = h @ DELTA
    c = np.outer(g, g) + (DELTA @ h @ DELTA + noise_std**2) * h
    return h, c, g


# ------------------------------------------------------------------------------ noise scales


def test_sample_noise_scales_match_the_closed_form_of_linear_regression():
    problem = linear()
    h, c, g = linear_moments()
    exact = gradient_noise_scales(h, c, g)
    gradients = nw.per_example_gradients(problem, THETA_STAR + DELTA, samples=400_000, seed=5)
    estimate = nn.sample_noise_scales(gradients, h)
    # 400 000 samples: relative standard errors well below 1 %; tolerance 3 %
    assert estimate.simple == pytest.approx(exact.simple, rel=0.03)
    assert estimate.critical == pytest.approx(exact.critical, rel=0.03)


def test_sample_noise_scales_correct_the_small_sample_bias_of_the_gradient_norm():
    # With n = 40 examples the plug-in |mean|² is too large by tr C / n on average; the estimate's
    # denominator (tr Ĉ / B_simple) is unbiased. Averaged over 400 draws (standard error ≈ 3 %).
    h, c, g = linear_moments(noise_std=2.0)
    problem = linear(noise_std=2.0)
    theta = THETA_STAR + DELTA
    denominators, plug_in = [], []
    for seed in range(400):
        gradients = nw.per_example_gradients(problem, theta, samples=40, seed=seed)
        mean = gradients.mean(axis=0)
        try:
            scales = nn.sample_noise_scales(gradients)
        except ValueError:  # a draw whose corrected |G|² is not positive: count it as 0
            denominators.append(0.0)
        else:
            denominators.append(np.trace(np.cov(gradients.T)) / scales.simple)
        plug_in.append(mean @ mean)
    truth = g @ g
    assert abs(np.mean(denominators) / truth - 1) < 0.12
    assert np.mean(plug_in) / truth > 1.3
    symmetric = np.vstack([np.eye(3), -np.eye(3)])  # mean exactly 0
    with pytest.raises(ValueError, match="too few samples"):
        nn.sample_noise_scales(symmetric)


# -------------------------------------------------------------------------- measure_point


def test_measure_point_of_linear_regression_is_its_closed_form():
    problem = linear()
    theta = THETA_STAR + DELTA
    start = THETA_STAR + np.array([1.0, 1.0, 1.0])
    point = nn.measure_point(problem, theta, start=start, reference=THETA_STAR, samples=200_000, seed=1)
    h, c, g = linear_moments()
    order = np.argsort(-np.diag(h))
    np.testing.assert_allclose(point.eigenvalues, np.diag(h)[order], rtol=1e-12)
    np.testing.assert_allclose(point.noise, np.diag(c)[order], rtol=0.04)
    np.testing.assert_allclose(np.abs(point.start), np.ones(3), rtol=1e-12)
    assert point.trace_noise == pytest.approx(np.trace(c), rel=0.03)
    assert point.trace_curvature == pytest.approx(np.trace(h), rel=1e-12)
    assert point.risk == pytest.approx(0.5 * DELTA @ h @ DELTA, rel=1e-12)
    exact = gradient_noise_scales(h, c, g)
    assert point.noise_scales.simple == pytest.approx(exact.simple, rel=0.05)


def test_nqm_from_points_pools_seeds_and_rescales_the_start():
    problem = linear()
    points = [
        nn.measure_point(
            problem, THETA_STAR + DELTA, start=THETA_STAR + s, reference=THETA_STAR, samples=20_000, seed=k
        )  # fmt: skip
        for k, s in enumerate([np.ones(3), 2 * np.ones(3)])
    ]
    pooled = nn.nqm_from_points(points)
    assert pooled.d == 6 and np.allclose(pooled.counts, 0.5)
    assert pooled.initial_risk == pytest.approx(0.5 * (0.5 * np.sum(SIGMA**2) * (1 + 4)), rel=1e-12)
    rescaled = nn.nqm_from_points(points, initial_risk=0.3)
    assert rescaled.initial_risk == pytest.approx(0.3, rel=1e-12)
    np.testing.assert_allclose(rescaled.theta0 / pooled.theta0, rescaled.theta0[0] / pooled.theta0[0])
    with pytest.raises(ValueError, match="points"):
        nn.nqm_from_points([])


# ------------------------------------------------------------------ weights at risk levels


def test_weights_at_risk_levels_are_first_crossings():
    problem = nw.LinearRegression(SIGMA, THETA_STAR, 0.2, np.array([1.0, -1.0, 1.0]))
    levels = [0.2, 0.1, 0.05]
    found = nn.weights_at_risk_levels(problem, lr=0.2, batch_size=4, seeds=[0, 1, 2], levels=levels,
                                      max_steps=500, data_seed=3)  # fmt: skip
    assert np.all(np.isfinite(found.steps))
    assert np.all(np.diff(found.steps, axis=0) >= 0)  # a lower level is reached later
    for level_index, level in enumerate(levels):
        risk = problem.excess_risk(torch.tensor(found.weights[level_index])).numpy()
        assert np.all(risk <= level)
    # replaying seed 0's run step by step: the stored step is the first one at or below the level
    params = problem.init([0, 1, 2]).requires_grad_(True)
    optimizer = torch.optim.SGD([params], lr=0.2)
    generator = torch.Generator().manual_seed(3)
    risks = []
    for _ in range(int(found.steps[-1].max()) + 1):
        risks.append(problem.excess_risk(params.detach()).numpy())
        x, y = problem.sample((3, 4), generator)
        optimizer.zero_grad()
        problem.loss(params, x, y).sum().backward()
        optimizer.step()
    risks = np.array(risks)
    for level_index, level in enumerate(levels):
        for seed in range(3):
            assert int(found.steps[level_index, seed]) == int(np.argmax(risks[:, seed] <= level))


def test_weights_at_risk_levels_validate():
    with pytest.raises(ValueError, match="levels"):
        nn.weights_at_risk_levels(linear(), lr=0.1, batch_size=1, seeds=[0], levels=[0.1, 0.2], max_steps=5)


# ---------------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def softmax():
    return digits.DigitsSoftmax()


def test_digits_split_is_a_standardised_partition_of_the_1797_images():
    split = digits.load_digits_split()
    assert split.x_train.shape == (1348, 64) and split.x_test.shape == (449, 64)
    assert split.y_train.dtype == torch.int64 and set(split.y_train.tolist()) == set(range(10))
    np.testing.assert_allclose(split.x_train.mean(dim=0).numpy(), 0.0, atol=1e-12)
    std = split.x_train.std(dim=0, unbiased=False).numpy()
    assert np.all((np.abs(std - 1) < 1e-12) | (std < 1e-12))  # constant pixels are only centred
    # the same images as scikit-learn's, split without overlap
    from sklearn.datasets import load_digits

    assert split.x_train.shape[0] + split.x_test.shape[0] == load_digits().target.size
    with pytest.raises(ValueError, match="test_fraction"):
        digits.load_digits_split(test_fraction=1.0)


def test_softmax_optimum_is_a_stationary_point_with_the_closed_form_hessian(softmax):
    theta = softmax.theta_star

    def loss(p):
        return softmax.training_loss(p.unsqueeze(0))[0]

    gradient = torch.autograd.functional.jacobian(loss, theta)
    assert float(gradient.norm()) < 1e-12
    exact = torch.autograd.functional.hessian(loss, theta + 0.01)
    np.testing.assert_allclose(softmax.hessian(theta + 0.01).numpy(), exact.numpy(), atol=1e-13)
    assert float(torch.linalg.eigvalsh(softmax.hessian(theta)).min()) >= softmax.weight_decay * (1 - 1e-9)
    assert softmax.excess_risk(theta.unsqueeze(0)).item() == pytest.approx(0.0, abs=1e-14)
    assert softmax.excess_risk(softmax.init([0])).item() > 2.0  # from θ = 0: log 10 − L*


def test_digits_gradient_noise_is_the_training_set_covariance(softmax):
    # minibatches drawn with replacement: the covariance of one draw is the population covariance
    # of the per-example gradients (exact), which 100 000 real draws reproduce.
    theta = softmax.theta_star + 0.05
    mean, covariance, n = nn.gradient_moments(softmax, theta)
    assert n == 1348
    full = torch.autograd.functional.jacobian(lambda p: softmax.training_loss(p.unsqueeze(0))[0], theta)
    np.testing.assert_allclose(mean, full.numpy(), atol=1e-12)
    draws = 100_000
    x, y = softmax.sample((draws, 1), torch.Generator().manual_seed(0))
    # the draws repeat the 1348 examples: one gradient per distinct example, weighted by its count
    rows, counts = torch.unique(torch.cat([x[:, 0], y.to(x.dtype)], dim=1), dim=0, return_counts=True)
    params = theta.reshape(1, -1).expand(len(rows), -1).clone().requires_grad_(True)
    softmax.loss(params, rows[:, None, :-1], rows[:, None, -1].long()).sum().backward()
    gradients, weights = params.grad.numpy(), counts.numpy()[:, None]
    deviations = gradients - (weights * gradients).sum(axis=0) / draws
    # the trace of the sample covariance is the sum of the sample variances (no 650 × 650 matrix)
    sample_variances = (weights * deviations**2).sum(axis=0) / (draws - 1)
    assert sample_variances.sum() == pytest.approx(np.trace(covariance), rel=0.02)


def test_digits_mlp_starts_near_log_ten_and_trains():
    mlp = digits.DigitsMLP(hidden=8)
    assert mlp.n_params == 8 * 65 + 10 * 9
    start = mlp.init([0, 1])
    assert start.shape == (2, mlp.n_params)
    assert np.all(np.abs(mlp.excess_risk(start).numpy() - math.log(10)) < 0.6)
    result = nw.train(mlp, method="sgd", lrs=[0.5], batch_size=32, seeds=[0, 1], target=1.0, max_steps=300)
    assert nw.steps_to_target(result)[0] < 300
    assert np.all(mlp.accuracy(start) < 0.3)
