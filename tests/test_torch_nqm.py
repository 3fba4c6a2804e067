"""PyTorch on the NQM (``nqm_lib.torch_nqm``) and the sampling claims of chapter 7.

- ``torch.optim.SGD(momentum=β, dampening=0)`` fed the draws of ``nqm_lib.simulate`` reproduces
  its risk to 1e-12 relative (float64), and a hand-written NumPy heavy ball on draws made
  here from ``numpy.random.default_rng`` reproduces the whole trajectory;
- ``weight_decay=λ`` is the curvature shift ``h → h + λ`` (draw by draw, and against exact theory);
- the finite-population variance ``(c/B)(N − B)/(N − 1)`` (exact enumeration and ``randperm``);
- the fraction of distinct examples per epoch: 1 for ``DataLoader(shuffle=True)``,
  ``1 − (1 − 1/N)^N`` for ``RandomSampler(replacement=True)``.

Monte Carlo comparisons allow 4 standard errors, with enough samples that 4 standard errors
are below 3% of the compared quantity.
"""

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from nqm_lib import (
    NQM,
    InstabilityError,
    risk_curve_per_coordinate,
    sample_minibatch_gradients,
    simulate,
    trajectory_risk,
)
from nqm_lib.figures_pytorch import minibatch_noise_figure, minibatch_noise_variance
from nqm_lib.torch_nqm import (
    TorchNQM,
    minibatch_stream,
    torch_sgd_trajectory,
)

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


def test_minibatch_noise_figure_rejects_a_batch_larger_than_the_training_set():
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_noise_figure(batch_size=65, n_examples=64)
