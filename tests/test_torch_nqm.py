"""PyTorch on the NQM (``nqm_lib.torch_nqm``) and the claims of chapter 7, "PyTorch: the training loop".

- ``torch.optim.SGD(momentum=β, dampening=0)`` fed the draws of ``nqm_lib.simulate`` reproduces
  its risk to 1e-12 relative (float64), and a hand-written NumPy heavy ball on draws made
  here from ``numpy.random.default_rng`` reproduces the whole trajectory;
- ``weight_decay=λ`` is the curvature shift ``h → h + λ`` (draw by draw, and against exact theory);
- autograd's gradients are the closed forms of linear and logistic regression; ``backward()`` on a
  mean loss gives the mean of the per-example gradients, accumulates, and ``F.mse_loss`` has no ½;
- least squares: the training risk is optimistic by about ``σ_ε² d/N`` (the exact expectations);
- the finite-population variance ``(c/B)(N − B)/(N − 1)`` (exact enumeration and ``randperm``);
- the fraction of distinct examples per epoch: 1 for ``DataLoader(shuffle=True)``,
  ``1 − (1 − 1/N)^N`` for ``RandomSampler(replacement=True)`` (``1 − (1 − 1/N)^(kN)`` after
  ``k`` epochs: 5 epochs to see 99% of 1000 examples); the default ``shuffle=False`` serves the
  same order every epoch;
- the noise floor of SGD on a training set: with replacement the training set's NQM predicts it,
  shuffled epochs reach a much lower one at small ``η``;
- a forgotten ``zero_grad()`` is momentum 1 for plain SGD only; micro-batch accumulation; the
  ``optim.SGD`` update rule (weight decay leaves ``.grad`` alone);
- schedulers: the rates of the table, when to call ``scheduler.step()``, ``get_last_lr()``
  against ``get_lr()``, the exact epoch-by-epoch risk fed to ``ReduceLROnPlateau``, a cosine
  stepped per iteration; the primed ``AveragedModel`` is the course's EMA.

Monte Carlo comparisons allow 4 standard errors, with enough samples that 4 standard errors
are below 3% of the compared quantity (or a stated tolerance).
"""

import itertools
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from matplotlib.figure import Figure
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    ReduceLROnPlateau,
    StepLR,
)
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from nqm_lib import (
    NQM,
    InstabilityError,
    risk_curve,
    risk_curve_per_coordinate,
    sample_minibatch_gradients,
    simulate,
    trajectory_risk,
)
from nqm_lib.figures_pytorch import minibatch_noise_figure, minibatch_noise_variance
from nqm_lib.torch_finite_sum import epoch_noise_floor, excess_empirical_risk, least_squares, training_set_nqm
from nqm_lib.torch_nqm import (
    TorchNQM,
    minibatch_stream,
    torch_sgd_trajectory,
)
from nqm_lib.torch_schedulers import EpochwiseSGDRisk, scheduler_learning_rates

plt.switch_backend("Agg")
torch.set_num_threads(1)
RTOL = 1e-12
N_SE = 4.0

PROBLEMS = {
    "worked example h = c = (50, 1)": NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0]),
    "data model": NQM.from_data_model([2.0, 1.0], [1.0, 2.0], theta0=[1.0, -1.0]),
    "binned, three coordinates": NQM(
        [3.0, 1.0, 0.1], [2.0, 1.0, 0.5], theta0=[1.0, 2.0, 3.0], counts=[1, 2, 5]
    ),
}
SETTINGS = {
    "plain SGD": {"lr": 0.02},
    "momentum 0.9, B = 4": {"lr": 0.01, "momentum": 0.9, "batch_size": 4},
    "momentum 0.5 and EMA 0.9, B = 2": {"lr": 0.01, "momentum": 0.5, "ema_decay": 0.9, "batch_size": 2},
}


@pytest.mark.parametrize("setting", SETTINGS.values(), ids=SETTINGS.keys())
@pytest.mark.parametrize("problem", PROBLEMS.values(), ids=PROBLEMS.keys())
def test_torch_sgd_with_momentum_reproduces_simulate_risk_to_1e_12(problem, setting):
    steps, trials, seed = 150, 64, 11
    torch_risk = trajectory_risk(
        problem, torch_sgd_trajectory(problem, steps, trials=trials, seed=seed, **setting)
    )
    reference = simulate(problem, steps, trials=trials, seed=seed, **setting)
    np.testing.assert_allclose(torch_risk.risk, reference.risk, rtol=RTOL, atol=0)
    np.testing.assert_allclose(
        torch_risk.risk_per_coordinate, reference.risk_per_coordinate, rtol=RTOL, atol=0
    )
    np.testing.assert_allclose(torch_risk.risk_stderr[1:], reference.risk_stderr[1:], rtol=1e-10, atol=0)


def test_torch_trajectory_equals_hand_written_heavy_ball_with_ema_on_the_same_noise():
    # independent reference: the noise is drawn here, in the order nqm_lib.simulate draws it
    h, c, theta0 = np.array([4.0, 0.5]), np.array([2.0, 3.0]), np.array([1.0, -2.0])
    lr, beta, gamma, batch_size, trials, steps, seed = 0.05, 0.8, 0.7, 3, 5, 80, 4
    rng = np.random.default_rng(seed)
    theta = np.tile(theta0, (trials, 1))
    velocity = np.zeros_like(theta)
    average = theta.copy()
    expected = [average.copy()]
    for _ in range(steps):
        gradient = h * theta + rng.standard_normal((trials, 2)) * np.sqrt(c / batch_size)
        velocity = beta * velocity + gradient
        theta = theta - lr * velocity
        average = gamma * average + (1 - gamma) * theta
        expected.append(average.copy())
    trajectory = torch_sgd_trajectory(
        NQM(h, c, theta0),
        steps,
        lr=lr,
        momentum=beta,
        ema_decay=gamma,
        batch_size=batch_size,
        trials=trials,
        seed=seed,
    )
    np.testing.assert_allclose(trajectory, np.array(expected), rtol=RTOL, atol=1e-14)


def test_torch_nqm_gradient_is_the_nqm_minibatch_gradient():
    data_model = NQM.from_data_model([2.0, 1.0], [1.0, 2.0], theta0=[0.5, -1.0])
    model = TorchNQM(data_model, trials=3)
    batch = next(minibatch_stream(data_model, batch_size=5, trials=3, seed=1))  # (3, 5, 2)
    model(torch.from_numpy(batch)).backward()
    expected = data_model.h * (data_model.theta0 - batch.mean(axis=1))
    np.testing.assert_allclose(model.theta.grad.numpy(), expected, rtol=1e-13)

    noise_model = NQM([3.0, 1.0], [1.0, 1.0], theta0=[2.0, 1.0])
    model = TorchNQM(noise_model, trials=4)
    noise = next(minibatch_stream(noise_model, trials=4, seed=2))
    model(torch.from_numpy(noise)).backward()
    np.testing.assert_allclose(
        model.theta.grad.numpy(), noise_model.h * noise_model.theta0 + noise, rtol=1e-13
    )


def test_minibatch_stream_first_draw_gives_sample_minibatch_gradients():
    problem = NQM([3.0, 1.0], [2.0, 0.5], theta0=[1.0, 1.0])
    theta = np.array([0.3, -0.7])
    noise = next(minibatch_stream(problem, batch_size=4, trials=50, seed=9))
    expected = sample_minibatch_gradients(problem, theta, batch_size=4, samples=50, seed=9)
    np.testing.assert_allclose(problem.h * theta + noise, expected, rtol=1e-14)


# ---------------------------------------------------------------- weight decay = curvature shift


def test_with_weight_decay_adds_lambda_to_every_curvature_and_keeps_the_noise():
    problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 2.0], counts=[1, 3])
    shifted = problem.with_weight_decay(0.5)
    np.testing.assert_array_equal(shifted.h, [50.5, 1.5])
    np.testing.assert_array_equal(shifted.c, problem.c)
    np.testing.assert_array_equal(shifted.theta0, problem.theta0)
    np.testing.assert_array_equal(shifted.counts, problem.counts)


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_torch_weight_decay_equals_simulate_on_curvature_shifted_problem_draw_by_draw(momentum):
    problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
    lam, steps, trials, seed = 2.0, 150, 64, 5
    trajectory = torch_sgd_trajectory(
        problem, steps, lr=0.01, momentum=momentum, weight_decay=lam, trials=trials, seed=seed
    )
    shifted = problem.with_weight_decay(lam)
    reference = simulate(shifted, steps, lr=0.01, momentum=momentum, trials=trials, seed=seed)
    np.testing.assert_allclose(trajectory_risk(shifted, trajectory).risk, reference.risk, rtol=RTOL, atol=0)


def test_torch_weight_decay_monte_carlo_matches_exact_theory_of_shifted_curvatures():
    # E[θ_i(t)²] from exact theory on h + λ; the original loss weighs it with h_i
    problem = NQM([10.0, 0.5], [10.0, 0.5], theta0=[1.0, 1.0])
    lam, lr, steps, trials = 1.5, 0.05, 60, 40_000
    trajectory = torch_sgd_trajectory(problem, steps, lr=lr, weight_decay=lam, trials=trials, seed=2)
    shifted_h = problem.h + lam
    theory = risk_curve_per_coordinate(NQM(shifted_h, problem.c, problem.theta0), steps, lr=lr)
    second_moment = 2 * theory / shifted_h
    for t in (5, 20, 60):
        measured = (trajectory[t] ** 2).mean(axis=0)
        # θ_i(t) is Gaussian: Var[θ²] = 2 var² + 4 mean² var
        mean = (1 - lr * shifted_h) ** t * problem.theta0
        var = second_moment[t] - mean**2
        stderr = np.sqrt((2 * var**2 + 4 * mean**2 * var) / trials)
        assert np.all(N_SE * stderr < 0.03 * second_moment[t])
        assert np.all(np.abs(measured - second_moment[t]) <= N_SE * stderr)


def test_torch_sgd_weight_decay_is_an_l2_penalty_in_the_loss():
    torch.manual_seed(0)
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    lam = 0.3
    results = []
    for decay_in_optimizer in (True, False):
        w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        optimizer = torch.optim.SGD(
            [w], lr=0.05, momentum=0.9, weight_decay=lam if decay_in_optimizer else 0.0
        )
        for _ in range(30):
            optimizer.zero_grad()
            loss = 0.5 * ((x @ w - y) ** 2).mean()
            if not decay_in_optimizer:
                loss = loss + 0.5 * lam * (w**2).sum()
            loss.backward()
            optimizer.step()
        results.append(w.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- validation of the bridge


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": 0.01, "momentum": 1.0}, "momentum"),
        ({"lr": 0.01, "ema_decay": 1.0}, "ema_decay"),
        ({"lr": 0.01, "weight_decay": -1.0}, "weight_decay"),
        ({"lr": 0.01, "weight_decay": float("nan")}, "weight_decay"),
        ({"lr": 0.01, "weight_decay": True}, "weight_decay"),
        ({"lr": 0.01, "batch_size": 0}, "batch_size"),
        ({"lr": 0.01, "trials": 0}, "trials"),
    ],
)
def test_torch_sgd_trajectory_rejects_invalid_settings_naming_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        torch_sgd_trajectory(PROBLEMS["worked example h = c = (50, 1)"], 5, **kwargs)


def test_torch_sgd_trajectory_rejects_negative_steps_and_non_nqm_problems():
    with pytest.raises(ValueError, match="steps"):
        torch_sgd_trajectory(PROBLEMS["worked example h = c = (50, 1)"], -1, lr=0.01)
    with pytest.raises(TypeError, match="NQM"):
        torch_sgd_trajectory({"h": [1.0]}, 5, lr=0.01)


def test_weight_decay_that_pushes_lr_past_the_stability_limit_raises_instability_error():
    problem = NQM([50.0, 1.0], [50.0, 1.0])
    torch_sgd_trajectory(problem, 2, lr=0.039, trials=2)  # η h_1 = 1.95 < 2: stable
    with pytest.raises(InstabilityError, match="lr"):
        torch_sgd_trajectory(problem, 2, lr=0.039, weight_decay=2.0, trials=2)  # η (h_1 + λ) = 2.03


# ---------------------------------------------------------------- finite population, samplers


def test_finite_population_variance_formula_equals_exact_enumeration_of_all_minibatches():
    values = np.random.default_rng(0).standard_normal(10) ** 3  # skewed, to be safe
    n = values.size
    c = values.var()  # divisor N
    for b in (1, 2, 3, 4, 7, 10):
        without = np.array([values[list(s)].mean() for s in itertools.combinations(range(n), b)])
        exact_without = ((without - values.mean()) ** 2).mean()
        assert minibatch_noise_variance(c, b, n, replacement=False) == pytest.approx(exact_without, rel=1e-12)
    for b in (1, 2, 3):
        with_ = np.array([values[list(s)].mean() for s in itertools.product(range(n), repeat=b)])
        exact_with = ((with_ - values.mean()) ** 2).mean()
        assert minibatch_noise_variance(c, b, n, replacement=True) == pytest.approx(exact_with, rel=1e-12)


def test_finite_population_variance_formula_matches_measured_variance_of_shuffled_batches():
    # measured with torch.randperm, which RandomSampler (DataLoader(shuffle=True)) uses
    n, b, draws = 40, 16, 40_000
    generator = torch.Generator().manual_seed(3)
    values = torch.randn(n, generator=generator, dtype=torch.float64)
    index = torch.stack([torch.randperm(n, generator=generator)[:b] for _ in range(draws)])
    deviations = (values[index].mean(dim=1) - values.mean()).numpy()
    measured = np.mean(deviations**2)
    stderr = np.std(deviations**2, ddof=1) / np.sqrt(draws)
    expected = minibatch_noise_variance(values.var(unbiased=False).item(), b, n, replacement=False)
    assert N_SE * stderr < 0.03 * expected
    assert abs(measured - expected) <= N_SE * stderr
    # and the correction is not negligible here: with replacement would be 1/0.615 times larger
    assert expected == pytest.approx(values.var(unbiased=False).item() / b * (n - b) / (n - 1), rel=1e-12)
    assert abs(measured - values.var(unbiased=False).item() / b) > 10 * stderr


def test_minibatch_noise_variance_rejects_a_batch_larger_than_the_training_set():
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_noise_variance(1.0, 11, 10, replacement=False)
    assert minibatch_noise_variance(1.0, 11, 10, replacement=True) == pytest.approx(1 / 11)
    with pytest.raises(ValueError, match="n_examples"):
        minibatch_noise_variance(1.0, 1, 1, replacement=True)


def distinct_fractions(loader, n, epochs):
    return np.array([torch.cat([batch for (batch,) in loader]).unique().numel() / n for _ in range(epochs)])


def test_dataloader_shuffle_sees_every_example_once_per_epoch():
    n = 50
    dataset = TensorDataset(torch.arange(n))
    loader = DataLoader(dataset, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    for _ in range(20):
        seen = torch.cat([batch for (batch,) in loader])
        assert seen.numel() == n
        assert torch.equal(seen.sort().values, torch.arange(n))


def test_random_sampler_with_replacement_sees_one_minus_one_minus_one_over_n_to_the_n_of_the_examples():
    n, epochs = 50, 2000
    dataset = TensorDataset(torch.arange(n))
    sampler = RandomSampler(
        dataset, replacement=True, num_samples=n, generator=torch.Generator().manual_seed(1)
    )
    fractions = distinct_fractions(DataLoader(dataset, batch_size=10, sampler=sampler), n, epochs)
    expected = 1 - (1 - 1 / n) ** n  # 0.636 for N = 50; → 1 − 1/e as N grows
    stderr = fractions.std(ddof=1) / np.sqrt(epochs)
    assert N_SE * stderr < 0.03 * expected
    assert abs(fractions.mean() - expected) <= N_SE * stderr
    assert fractions.max() < 1.0


# ---------------------------------------------------------------- the chapter's widget


@pytest.mark.parametrize(
    "values", [{}, {"batch_size": 1}, {"batch_size": 64}, {"batch_size": 100, "n_examples": 128}]
)
def test_minibatch_noise_figure_draws_both_schemes(values):
    fig = minibatch_noise_figure(**values)
    assert isinstance(fig, Figure)
    left, right = fig.axes
    assert right.get_xscale() == "log" and right.get_yscale() == "log"
    labels = [text.get_text() for text in left.get_legend().get_texts()]
    assert labels[:2] == ["with replacement", "without replacement"]
    for line in right.lines:
        assert np.all(np.isfinite(line.get_xydata())) and np.all(line.get_xydata()[:, 1] > 0)
    plt.close(fig)


def test_minibatch_noise_figure_draws_only_with_replacement_for_a_batch_larger_than_the_training_set():
    left, right = minibatch_noise_figure(batch_size=65, n_examples=64).axes
    assert "cannot be drawn" in left.texts[0].get_text()
    dots = [line for line in right.lines if line.get_marker() == "o" and len(line.get_xdata())]
    measured = [line.get_xdata()[0] for line in dots]
    assert measured == [65]  # with replacement only
    plt.close("all")


# ---------------------------------------------------------------- the training loop


def _regression(n=40, d=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    noise = torch.randn(n, generator=generator, dtype=torch.float64)
    y = x @ torch.arange(1.0, d + 1, dtype=torch.float64) + 0.5 * noise
    return x, y


def _sgd_risks(x, y, *, zero_grad, momentum=0.0, weight_decay=0.0, steps=60, lr=0.05, batch_size=5):
    w = torch.nn.Parameter(torch.zeros(x.shape[1], dtype=torch.float64))
    optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum, weight_decay=weight_decay)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    trajectory = []
    for t in range(steps):
        index = order[(t * batch_size) % len(x) :][:batch_size]
        if zero_grad:
            optimizer.zero_grad()
        (0.5 * (x[index] @ w - y[index]) ** 2).mean().backward()
        optimizer.step()
        trajectory.append(w.detach().clone())
    return torch.stack(trajectory)


def test_forgotten_zero_grad_is_momentum_one_for_plain_sgd_only():
    x, y = _regression()
    forgotten = _sgd_risks(x, y, zero_grad=False)
    momentum_one = _sgd_risks(x, y, zero_grad=True, momentum=1.0)
    torch.testing.assert_close(forgotten, momentum_one, rtol=1e-12, atol=1e-14)
    # with weight decay or momentum the identity fails, and not by rounding
    for option in ({"weight_decay": 0.1}, {"momentum": 0.5}):
        forgotten = _sgd_risks(x, y, zero_grad=False, **option)
        beta_one = _sgd_risks(x, y, zero_grad=True, **{**option, "momentum": 1.0})
        assert (forgotten - beta_one).abs().max() > 1e-3 * beta_one.abs().max()


def test_dataloader_default_serves_the_same_order_every_epoch():
    n = 30
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=7)  # shuffle=False by default
    for _ in range(3):
        assert torch.equal(torch.cat([batch for (batch,) in loader]), torch.arange(n))


def test_regression_gradient_covariance_away_from_the_optimum_grows_with_the_excess_loss():
    # Cov[∇ℓ(θ)] = (σ_ε² + 2(L(θ) − L(θ*))) H + ∇L ∇Lᵀ for x ~ N(0, H), y = θ*ᵀx + ε
    rng = np.random.default_rng(5)
    sigma, noise_std = np.array([2.0, 1.0, 0.5]), 0.5
    h, theta_star, theta = sigma**2, np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.0, 1.0])
    n = 400_000
    x = rng.standard_normal((n, 3)) * sigma
    y = x @ theta_star + noise_std * rng.standard_normal(n)
    gradients = (x @ theta - y)[:, None] * x
    population_gradient = h * (theta - theta_star)
    excess = 0.5 * (h * (theta - theta_star) ** 2).sum()
    expected = (noise_std**2 + 2 * excess) * np.diag(h) + np.outer(population_gradient, population_gradient)
    centred = gradients - population_gradient
    products = centred[:, :, None] * centred[:, None, :]  # (n, 3, 3)
    measured, stderr = products.mean(axis=0), products.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(N_SE * stderr < 0.03 * np.sqrt(np.outer(np.diag(expected), np.diag(expected))))
    assert np.all(np.abs(measured - expected) <= N_SE * stderr)
    # the NQM's covariance, σ_ε² H, is far off here
    assert np.all(np.abs(np.diag(measured) - noise_std**2 * h) > 10 * np.diag(stderr))


# ---------------------------------------------------------------- autograd and the loss


def test_autograd_gradients_are_the_closed_forms_of_linear_and_logistic_regression():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    y_real = torch.randn(8, generator=generator, dtype=torch.float64)
    y_class = (torch.rand(8, generator=generator) < 0.5).double()
    theta = torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)
    (0.5 * (x @ theta - y_real) ** 2).mean().backward()
    residual = (x @ theta - y_real).detach().numpy()
    np.testing.assert_allclose(theta.grad.numpy(), (residual[:, None] * x.numpy()).mean(axis=0), rtol=1e-12)
    theta.grad = None
    F.binary_cross_entropy_with_logits(x @ theta, y_class).backward()
    p = 1 / (1 + np.exp(-(x @ theta).detach().numpy()))  # written out in NumPy
    expected = ((p - y_class.numpy())[:, None] * x.numpy()).mean(axis=0)
    np.testing.assert_allclose(theta.grad.numpy(), expected, rtol=1e-12)


def test_backward_on_a_mean_loss_gives_the_mean_of_per_example_gradients_accumulates_and_mse_has_no_half():
    x, y = _regression(n=12)
    theta = torch.nn.Parameter(torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64))
    per_example = ((x @ theta - y)[:, None] * x).detach()  # ∇ of ½(θᵀx − y)², one row per example
    (0.5 * (x[:7] @ theta - y[:7]) ** 2).mean().backward()
    torch.testing.assert_close(theta.grad, per_example[:7].mean(dim=0), rtol=1e-12, atol=0)
    theta.grad = None
    F.mse_loss(x @ theta, y).backward()  # mean of (ŷ − y)², no ½: twice the course's gradient
    torch.testing.assert_close(theta.grad, 2 * per_example.mean(dim=0), rtol=1e-12, atol=0)
    F.mse_loss(x @ theta, y).backward()  # a second backward() adds
    torch.testing.assert_close(theta.grad, 4 * per_example.mean(dim=0), rtol=1e-12, atol=0)


def test_micro_batch_accumulation_with_the_loss_divided_by_k_equals_one_large_batch():
    x, y = _regression(n=40)
    theta = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    for xb, yb in zip(x.split(10), y.split(10), strict=True):
        (0.5 * F.mse_loss(xb @ theta, yb) / 4).backward()
    accumulated = theta.grad.clone()
    theta.grad = None
    (0.5 * F.mse_loss(x @ theta, y)).backward()
    torch.testing.assert_close(accumulated, theta.grad, rtol=1e-12, atol=1e-15)


def test_optim_sgd_is_the_heavy_ball_on_the_decayed_gradient_and_leaves_grad_unchanged():
    x, y = _regression(n=40)
    lr, beta, lam = 0.05, 0.9, 0.1
    w = torch.nn.Parameter(torch.full((3,), 0.5, dtype=torch.float64))
    optimizer = torch.optim.SGD([w], lr=lr, momentum=beta, weight_decay=lam)
    theta, velocity = w.detach().numpy().copy(), np.zeros(3)
    xs, ys = x.numpy(), y.numpy()
    for index in np.arange(40).reshape(4, 10):
        optimizer.zero_grad()
        (0.5 * ((x[index] @ w - y[index]) ** 2).mean()).backward()
        before = w.grad.clone()
        optimizer.step()
        assert torch.equal(before, w.grad)  # the decay is added inside step(), not to .grad
        g = ((xs[index] @ theta - ys[index])[:, None] * xs[index]).mean(axis=0) + lam * theta
        velocity = beta * velocity + g
        theta = theta - lr * velocity
    np.testing.assert_allclose(w.detach().numpy(), theta, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- least squares and the finite sum


def test_least_squares_solves_the_normal_equations_batched_like_lstsq():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(4, 30, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(4, 30, generator=generator, dtype=torch.float64)
    expected = torch.linalg.lstsq(x, y.unsqueeze(-1)).solution.squeeze(-1)
    torch.testing.assert_close(least_squares(x, y), expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        least_squares(x, y[..., :-1])


def test_excess_empirical_risk_is_the_difference_of_the_training_losses():
    x, y = _regression(n=50)
    theta_hat = least_squares(x, y)
    theta = theta_hat + torch.tensor([[0.5, -0.2, 0.1], [1.0, 0.0, -1.0]], dtype=torch.float64)
    loss = 0.5 * ((theta @ x.T - y) ** 2).mean(dim=-1)
    loss_hat = 0.5 * ((x @ theta_hat - y) ** 2).mean()
    torch.testing.assert_close(
        excess_empirical_risk(theta, x, theta_hat), loss - loss_hat, rtol=1e-10, atol=0
    )


def test_least_squares_training_risk_is_optimistic_and_population_risk_pessimistic_as_the_proposition_says():
    # E L̂(θ̂) = (σ²/2)(N − d)/N and E L(θ̂) = (σ²/2)(1 + d/(N − d − 1)) for x ~ N(0, diag(σ_x²))
    n_sets, n, d, noise_std = 4000, 20, 5, 0.5
    sigma_x = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.25], dtype=torch.float64)
    theta_star = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(21)
    x = torch.randn(n_sets, n, d, generator=generator, dtype=torch.float64) * sigma_x
    y = x @ theta_star + noise_std * torch.randn(n_sets, n, generator=generator, dtype=torch.float64)
    theta_hat = least_squares(x, y)
    train = (0.5 * ((x @ theta_hat.unsqueeze(-1)).squeeze(-1) - y).pow(2).mean(dim=1)).numpy()
    test = (0.5 * (sigma_x**2 * (theta_hat - theta_star) ** 2).sum(dim=1) + 0.5 * noise_std**2).numpy()
    for values, expected in [
        (train, noise_std**2 / 2 * (n - d) / n),
        (test, noise_std**2 / 2 * (1 + d / (n - d - 1))),
    ]:
        stderr = values.std(ddof=1) / np.sqrt(n_sets)
        assert N_SE * stderr < 0.03 * expected
        assert abs(values.mean() - expected) <= N_SE * stderr
    assert train.mean() < noise_std**2 / 2 < test.mean()  # below even the risk of θ*


def _chapter_training_set(n=100, seed=3):
    sigma_x = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.25], dtype=torch.float64)
    theta_star = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=generator, dtype=torch.float64) * sigma_x
    y = x @ theta_star + 0.5 * torch.randn(n, generator=generator, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("replacement", [True, False])
def test_epoch_noise_floor_takes_plain_sgd_steps_on_the_minibatch_mean_loss(replacement):
    # the same index sets through torch.optim.SGD and autograd, for one run and two rates
    x, y = _chapter_training_set(n=30)
    lrs, batch_size, epochs = [0.02, 0.1], 5, 3
    floor = epoch_noise_floor(
        x, y, lrs, replacement=replacement, batch_size=batch_size, epochs=epochs, runs=1, seed=4
    )
    theta_hat = least_squares(x, y)
    generator = torch.Generator().manual_seed(4)
    orders = [
        torch.randint(30, (1, 30), generator=generator)
        if replacement
        else torch.rand(1, 30, generator=generator).argsort(dim=1)
        for _ in range(epochs)
    ]
    for column, lr in enumerate(lrs):
        theta = torch.nn.Parameter(theta_hat.clone())
        optimizer = torch.optim.SGD([theta], lr=lr)
        for epoch, order in enumerate(orders):
            for index in order[0].split(batch_size):
                optimizer.zero_grad()
                (0.5 * ((x[index] @ theta - y[index]) ** 2).mean()).backward()
                optimizer.step()
            expected = excess_empirical_risk(theta.detach(), x, theta_hat).item()
            assert floor[epoch, column] == pytest.approx(expected, rel=1e-10)


def test_training_set_nqm_has_the_hessian_eigenvalues_and_the_gradient_noise_at_the_fit():
    x, y = _chapter_training_set()
    nqm = training_set_nqm(x, y)
    hessian = (x.T @ x / len(x)).numpy()
    np.testing.assert_allclose(nqm.h, np.sort(np.linalg.eigvalsh(hessian))[::-1], rtol=1e-10)
    theta_hat = np.linalg.lstsq(x.numpy(), y.numpy(), rcond=None)[0]
    gradients = (x.numpy() @ theta_hat - y.numpy())[:, None] * x.numpy()
    np.testing.assert_allclose(gradients.mean(axis=0), 0.0, atol=1e-12)  # ∇L̂(θ̂) = 0
    assert nqm.c.sum() == pytest.approx(np.trace(np.cov(gradients.T, bias=True)), rel=1e-10)  # basis-free
    np.testing.assert_array_equal(nqm.theta0, 0.0)


def test_sampling_with_replacement_floor_is_the_training_set_nqm_and_shuffled_epochs_reach_a_lower_one():
    # the chapter's training set and rates; 400 runs, epochs 11-30, to beat the Monte Carlo noise
    x, y = _chapter_training_set()
    lrs = np.array([0.0125, 0.025, 0.05, 0.1, 0.2])
    nqm = training_set_nqm(x, y)
    ends = np.arange(110, 301, 10)
    predicted = np.array([risk_curve(nqm, 300, lr=lr, batch_size=10)[ends].mean() for lr in lrs])
    floor = {
        r: epoch_noise_floor(x, y, lrs, replacement=r, batch_size=10, epochs=30, runs=400, seed=16)[10:].mean(
            axis=0
        )
        for r in (True, False)
    }
    # the NQM keeps only the noise at θ̂: it predicts the floor at small η (stated tolerance 10%)
    np.testing.assert_allclose(floor[True][:3], predicted[:3], rtol=0.10)
    assert np.polyfit(np.log(lrs), np.log(floor[True]), 1)[0] == pytest.approx(1.2, abs=0.15)  # about linear
    # shuffled epochs cancel the noise within each epoch: far lower at small η, about equal at large η
    assert floor[True][0] / floor[False][0] > 20
    assert floor[True][-1] / floor[False][-1] < 2


def test_epoch_noise_floor_and_least_squares_reject_invalid_settings():
    x, y = _chapter_training_set(n=20)
    with pytest.raises(ValueError, match="lrs"):
        epoch_noise_floor(x, y, [0.1, -0.1], replacement=True)
    with pytest.raises(ValueError, match="batch_size"):
        epoch_noise_floor(x, y, [0.1], replacement=True, batch_size=21)
    with pytest.raises(ValueError, match="epochs"):
        epoch_noise_floor(x, y, [0.1], replacement=True, epochs=0)
    with pytest.raises(ValueError, match="one training set"):
        epoch_noise_floor(x.expand(2, 20, 5), y.expand(2, 20), [0.1], replacement=True)


def test_random_sampler_with_replacement_has_seen_1_minus_1_minus_1_over_n_to_the_kn_after_k_epochs():
    n, repeats, epochs = 1000, 50, 7
    fractions = np.empty((repeats, epochs))
    for r in range(repeats):
        sampler = RandomSampler(
            range(n), replacement=True, num_samples=n, generator=torch.Generator().manual_seed(100 + r)
        )
        seen = torch.zeros(n, dtype=torch.bool)
        for k in range(epochs):
            seen[list(sampler)] = True
            fractions[r, k] = seen.double().mean().item()
    expected = 1 - (1 - 1 / n) ** (n * np.arange(1, epochs + 1))
    stderr = fractions.std(axis=0, ddof=1) / np.sqrt(repeats)
    assert np.all(N_SE * stderr < 0.03 * expected)
    assert np.all(np.abs(fractions.mean(axis=0) - expected) <= N_SE * stderr + 1e-12)
    # 99% after 5 epochs, not after 4 (the exercise); shuffle=True needs one
    assert expected[3] < 0.99 <= expected[4]
    assert int(np.ceil(np.log(0.01) / (n * np.log1p(-1 / n)))) == 5


# ---------------------------------------------------------------- schedulers and the EMA


def test_scheduler_learning_rates_follow_the_formulas_of_the_table():
    e, lr = np.arange(100), 0.1
    cases = [
        (lambda o: StepLR(o, step_size=30, gamma=0.1), lr * 0.1 ** (e // 30)),
        (lambda o: ExponentialLR(o, gamma=0.95), lr * 0.95**e),
        (lambda o: LambdaLR(o, lambda k: 1 / (1 + k / 10)), lr / (1 + e / 10)),
        (
            lambda o: CosineAnnealingLR(o, T_max=100, eta_min=1e-3),
            1e-3 + 0.5 * (lr - 1e-3) * (1 + np.cos(np.pi * e / 100)),
        ),
    ]
    for make, expected in cases:
        rates, metrics = scheduler_learning_rates(make, 100, lr=lr)
        np.testing.assert_allclose(rates, expected, rtol=1e-10, atol=1e-15)
        assert metrics.size == 0


def test_scheduler_learning_rates_rejects_invalid_settings():
    with pytest.raises(ValueError, match="steps"):
        scheduler_learning_rates(lambda o: StepLR(o, 1), -1)
    with pytest.raises(ValueError, match="lr"):
        scheduler_learning_rates(lambda o: StepLR(o, 1), 5, lr=0.0)


def test_epochwise_sgd_risk_equals_the_exact_risk_curve_of_the_whole_schedule():
    from nqm_lib.schedules import schedule_risk_curve

    problem = NQM([4.0, 2.25, 1.0, 0.25], [1.0, 0.5625, 0.25, 0.0625], theta0=[-1.0, 2.0, -0.5, -3.0])
    metric = EpochwiseSGDRisk(problem, steps_per_epoch=10)
    rates = [0.1, 0.1, 0.05, 0.05, 0.2, 0.025]
    values = [metric(lr) for lr in rates]
    exact = schedule_risk_curve(problem, np.repeat(rates, 10))  # independent: per-step recursion
    np.testing.assert_allclose(values, exact[10::10], rtol=1e-10)
    constant = EpochwiseSGDRisk(problem, steps_per_epoch=7)
    np.testing.assert_allclose(
        [constant(0.1) for _ in range(3)], risk_curve(problem, 21, lr=0.1)[7::7], rtol=1e-10
    )


def test_epochwise_sgd_risk_rejects_unstable_rates_and_bad_arguments():
    problem = NQM([4.0, 1.0], [1.0, 1.0])
    with pytest.raises(InstabilityError, match="lr"):
        EpochwiseSGDRisk(problem, 10)(0.5)
    with pytest.raises(TypeError, match="NQM"):
        EpochwiseSGDRisk({"h": [1.0]}, 10)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        EpochwiseSGDRisk(problem, 0)


def test_reduce_lr_on_plateau_on_the_exact_risk_halves_the_rate_and_each_drop_lowers_the_risk():
    h = np.array([4.0, 2.25, 1.0, 0.25, 0.0625])
    problem = NQM(h, 0.25 * h, theta0=[-1.0, 2.0, -0.5, -3.0, 1.0])
    rates, metric = scheduler_learning_rates(
        lambda o: ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=0.02),
        100,
        lr=0.1,
        metric=EpochwiseSGDRisk(problem, 10),
    )
    drops = np.flatnonzero(np.diff(rates) < 0) + 1
    assert len(drops) >= 3
    np.testing.assert_allclose(rates[drops] / rates[drops - 1], 0.5)
    assert rates[-1] == pytest.approx(0.1 * 0.5 ** len(drops))
    # the floor is proportional to η: after the drops the risk is far below the floor of η = 0.1
    floor = (0.1 * problem.c / (2 * (2 - 0.1 * h))).sum()
    assert metric[-1] < floor / 4
    # the first drop comes after three epochs (more than patience = 2) without a 2% improvement
    first = drops[0]  # rates[first] is set by the metric of epoch first − 1
    best = metric[: first - 3].min()
    assert np.all(metric[first - 3 : first] >= 0.98 * best)


def test_step_lr_stepped_per_iteration_decays_once_per_iteration():
    for per_iteration, expected in [
        (False, [0.1, 0.1, 0.1, 0.01, 0.01]),
        (True, [0.1, 1e-4, 1e-7, 1e-11, 1e-14]),
    ]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = StepLR(optimizer, step_size=3, gamma=0.1)
        starts = []
        for _ in range(5):
            starts.append(optimizer.param_groups[0]["lr"])
            for _ in range(10):
                optimizer.step()
                if per_iteration:
                    scheduler.step()
            if not per_iteration:
                scheduler.step()
        np.testing.assert_allclose(starts, expected, rtol=1e-9)


def test_stepping_the_scheduler_before_the_optimizer_warns_and_skips_the_first_rate():
    for scheduler_first in (False, True):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = ExponentialLR(optimizer, gamma=0.5)
        used = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                if scheduler_first:
                    scheduler.step()
                used.append(optimizer.param_groups[0]["lr"])
                optimizer.step()
                if not scheduler_first:
                    scheduler.step()
        assert used == pytest.approx([0.05, 0.025, 0.0125] if scheduler_first else [0.1, 0.05, 0.025])
        assert any("before `optimizer.step()`" in str(w.message) for w in caught) == scheduler_first


def test_get_last_lr_is_the_rate_in_use_per_group_and_get_lr_applies_the_rule_again_with_a_warning():
    weight, bias = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [weight]}, {"params": [bias], "lr": 0.01}], lr=0.1)
    scheduler = ExponentialLR(optimizer, gamma=0.5)
    assert scheduler.get_last_lr() == pytest.approx([0.1, 0.01])
    for k in range(1, 4):
        optimizer.step()
        scheduler.step()
        assert scheduler.get_last_lr() == [g["lr"] for g in optimizer.param_groups]
        assert scheduler.get_last_lr() == pytest.approx([0.1 * 0.5**k, 0.01 * 0.5**k])
    with pytest.warns(UserWarning, match="get_last_lr"):
        assert scheduler.get_lr() == pytest.approx([0.1 * 0.5**4, 0.01 * 0.5**4])


def test_cosine_stepped_per_iteration_has_the_per_epoch_rate_at_every_epoch_start_and_ends_at_eta_min():
    per_epoch = len(DataLoader(range(800), batch_size=32))
    assert per_epoch == 25
    fine, _ = scheduler_learning_rates(
        lambda o: CosineAnnealingLR(o, T_max=25 * 20, eta_min=1e-3), 25 * 20, lr=0.05
    )
    coarse, _ = scheduler_learning_rates(lambda o: CosineAnnealingLR(o, T_max=20, eta_min=1e-3), 20, lr=0.05)
    np.testing.assert_allclose(fine[::25], coarse, rtol=1e-9)
    assert fine[-1] == pytest.approx(1e-3, rel=1e-3)


def test_primed_averaged_model_is_the_course_ema_and_an_unprimed_one_is_not():
    x, y = _regression(n=40)
    model = torch.nn.Linear(3, 1, bias=False).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    primed = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    primed.update_parameters(model)
    unprimed = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    by_hand = model.weight.detach().clone()
    for xb, yb in zip(x.split(4), y.split(4), strict=True):
        optimizer.zero_grad()
        (0.5 * F.mse_loss(model(xb).squeeze(-1), yb)).backward()
        optimizer.step()
        primed.update_parameters(model)
        unprimed.update_parameters(model)
        by_hand = 0.9 * by_hand + 0.1 * model.weight.detach()
    torch.testing.assert_close(primed.module.weight, by_hand, rtol=1e-12, atol=0)
    assert (unprimed.module.weight - by_hand).abs().max() > 1e-3
