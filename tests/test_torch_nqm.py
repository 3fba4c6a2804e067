"""PyTorch on the NQM (``nqm_lib.torch_nqm``) and the sampling claims of chapter 7.

- ``torch.optim.SGD(momentum=β, dampening=0)`` fed the draws of ``nqm_lib.simulate`` reproduces
  its risk to 1e-12 relative (float64), and a hand-written NumPy heavy ball on draws made
  here from ``numpy.random.default_rng`` reproduces the whole trajectory;
- ``weight_decay=λ`` is the curvature shift ``h → h + λ`` (draw by draw, and against exact theory);
- the finite-population variance ``(c/B)(N − B)/(N − 1)`` (exact enumeration and ``randperm``);
- the fraction of distinct examples per epoch: 1 for ``DataLoader(shuffle=True)``,
  ``1 − (1 − 1/N)^N`` for ``RandomSampler(replacement=True)``; the default ``shuffle=False``
  serves the same order every epoch;
- the practice of chapter 7: a forgotten ``zero_grad()`` is momentum 1 for plain SGD only;
  ``Adam(weight_decay)`` is L2 in the loss, ``AdamW`` decoupled decay (from θ = 2 with zero
  loss gradient: ``2(1 − ηλ)`` against about ``2 − η``); ``SequentialLR(LinearLR,
  CosineAnnealingLR)`` is ``cosine_schedule(warmup=)``, and ``CosineAnnealingLR`` climbs back
  to ``η_0`` at ``2 T_max``; clipping, parameter groups, ``.grad = None`` skipping the update;
  a resumed run equals the uninterrupted one bit for bit with all five states (and not with
  four); seeded workers; the weight-decay exercise (cost per unit ``θ*²`` peaks at ``h = λ``,
  coordinate 4 pays 56% and 81%).

Monte Carlo comparisons allow 4 standard errors, with enough samples that 4 standard errors
are below 3% of the compared quantity.
"""

import io
import itertools
import multiprocessing

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, RandomSampler, TensorDataset, get_worker_info

from nqm_lib import (
    NQM,
    InstabilityError,
    risk_curve_per_coordinate,
    sample_minibatch_gradients,
    simulate,
    trajectory_risk,
)
from nqm_lib.figures_pytorch import minibatch_noise_figure, minibatch_noise_variance
from nqm_lib.schedules import cosine_schedule
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


def test_minibatch_noise_figure_draws_only_with_replacement_for_a_batch_larger_than_the_training_set():
    left, right = minibatch_noise_figure(batch_size=65, n_examples=64).axes
    assert "cannot be drawn" in left.texts[0].get_text()
    dots = [line for line in right.lines if line.get_marker() == "o" and len(line.get_xdata())]
    measured = [line.get_xdata()[0] for line in dots]
    assert measured == [65]  # with replacement only
    plt.close("all")


# ---------------------------------------------------------------- PyTorch practice (chapter 7)


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


@pytest.mark.parametrize("lam", [0.01, 0.1, 1.0])
def test_adamw_decays_to_2_1_minus_lr_lambda_while_adam_weight_decay_moves_about_lr_from_2(lam):
    lr = 0.01
    moved = {}
    for optimizer_class in (torch.optim.Adam, torch.optim.AdamW):
        theta = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
        optimizer = optimizer_class([theta], lr=lr, weight_decay=lam)
        theta.grad = torch.zeros(1, dtype=torch.float64)  # zero loss gradient
        optimizer.step()
        moved[optimizer_class] = theta.item()
    assert moved[torch.optim.AdamW] == pytest.approx(2 * (1 - lr * lam), rel=1e-14)
    # Adam's step on the penalty gradient 2λ is lr · 2λ/(2λ + ε) ≈ lr, whatever λ is
    assert moved[torch.optim.Adam] == pytest.approx(2 - lr * 2 * lam / (2 * lam + 1e-8), rel=1e-12)
    assert abs(moved[torch.optim.Adam] - (2 - lr)) < 1e-8


def test_adam_weight_decay_is_l2_in_the_loss_and_adamw_is_decoupled_decay():
    x, y = _regression()
    lam, lr = 0.3, 0.05

    def run(kind):
        w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
        optimizer_class = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        optimizer = optimizer_class([w], lr=lr, weight_decay=lam if kind in ("adam", "adamw") else 0.0)
        for xb, yb in zip(x.split(5), y.split(5), strict=True):
            optimizer.zero_grad()
            loss = 0.5 * ((xb @ w - yb) ** 2).mean()
            if kind == "l2":
                loss = loss + 0.5 * lam * (w**2).sum()
            loss.backward()
            if kind == "decoupled by hand":
                with torch.no_grad():
                    w.mul_(1 - lr * lam)
            optimizer.step()
        return w.detach()

    torch.testing.assert_close(run("adam"), run("l2"), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(run("adamw"), run("decoupled by hand"), rtol=1e-12, atol=1e-14)
    assert (run("adamw") - run("adam")).abs().max() > 1e-3


def _rates(make_scheduler, steps, lr=0.1):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(rates)


@pytest.mark.parametrize(("steps", "warmup", "final_lr"), [(100, 10, 1e-3), (37, 1, 0.0), (50, 2, 0.01)])
def test_sequential_lr_linear_warmup_then_cosine_equals_cosine_schedule_with_warmup(steps, warmup, final_lr):
    lr = 0.1
    rates = _rates(
        lambda o: SequentialLR(
            o,
            [
                LinearLR(o, start_factor=1 / warmup, total_iters=max(warmup - 1, 1)),
                CosineAnnealingLR(o, T_max=steps - warmup, eta_min=final_lr),
            ],
            milestones=[warmup],
        ),
        steps,
        lr,
    )
    # the formula written out independently: η0 (t + 1)/W, then the cosine over the rest
    t = np.arange(steps)
    expected = np.where(
        t < warmup,
        lr * (t + 1) / warmup,
        final_lr + 0.5 * (lr - final_lr) * (1 + np.cos(np.pi * (t - warmup) / (steps - warmup))),
    )
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=1e-15)
    library = cosine_schedule(steps, lr, warmup=warmup, final_lr=final_lr)
    np.testing.assert_allclose(library, expected, rtol=1e-12)


def test_cosine_annealing_lr_rises_again_past_t_max_back_to_lr_at_twice_t_max():
    t_max, lr, eta_min = 40, 0.1, 1e-3
    rates = _rates(lambda o: CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min), 3 * t_max + 1, lr)
    t = np.arange(rates.size)
    np.testing.assert_allclose(
        rates, eta_min + 0.5 * (lr - eta_min) * (1 + np.cos(np.pi * t / t_max)), rtol=1e-10, atol=1e-15
    )
    assert rates[t_max] == pytest.approx(eta_min, rel=1e-10)
    assert np.all(np.diff(rates[t_max : 2 * t_max + 1]) > 0)  # climbing after T_max
    assert rates[2 * t_max] == pytest.approx(lr, rel=1e-10)


def test_clip_grad_norm_between_backward_and_step_scales_the_step_to_max_norm():
    x, y = _regression()
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([w, b], lr=0.05)
    (0.5 * ((x @ w + b - y) ** 2).mean()).backward()
    gradient = torch.cat([w.grad, b.grad])
    norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm=1.0)
    assert norm.item() == pytest.approx(gradient.norm().item(), rel=1e-12) and norm.item() > 1
    clipped = torch.cat([w.grad, b.grad])
    assert clipped.norm().item() == pytest.approx(1.0, rel=1e-6)  # jointly, over all parameters
    torch.testing.assert_close(clipped, gradient / gradient.norm(), rtol=1e-6, atol=0)
    optimizer.step()
    torch.testing.assert_close(torch.cat([w, b]).detach(), -0.05 * clipped, rtol=1e-12, atol=0)
    # a gradient below max_norm is left alone
    w.grad = torch.full((3,), 0.1, dtype=torch.float64)
    b.grad = torch.zeros(1, dtype=torch.float64)
    torch.nn.utils.clip_grad_norm_([w, b], max_norm=1.0)
    assert torch.equal(w.grad, torch.full((3,), 0.1, dtype=torch.float64))


def test_parameter_groups_decay_the_weights_but_not_the_biases():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).double()
    lr, lam = 0.5, 0.1
    optimizer = torch.optim.SGD(
        [
            {"params": [p for p in net.parameters() if p.ndim > 1], "weight_decay": lam},
            {"params": [p for p in net.parameters() if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    weight, bias = net.weight.detach().clone(), net.bias.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(net.weight.detach(), (1 - lr * lam) * weight, rtol=1e-14, atol=0)
    assert torch.equal(net.bias.detach(), bias)


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.AdamW])
def test_a_parameter_whose_grad_is_none_skips_momentum_and_weight_decay(optimizer_class):
    kwargs = {"lr": 0.1, "weight_decay": 0.1}
    if optimizer_class is torch.optim.SGD:
        kwargs["momentum"] = 0.9
    moved = {}
    for set_to_none in (True, False):
        used = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
        unused = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
        optimizer = optimizer_class([used, unused], **kwargs)
        (used**2 + unused**2).sum().backward()
        optimizer.step()
        after_first = unused.item()
        for _ in range(5):
            optimizer.zero_grad(set_to_none=set_to_none)
            (used**2).sum().backward()
            optimizer.step()
        assert (unused.grad is None) == set_to_none
        moved[set_to_none] = abs(unused.item() - after_first)
    assert moved[True] == 0.0  # skipped: no momentum, no weight decay
    assert moved[False] > 0.01  # zeros are a gradient: momentum and decay still act


# ---------------------------------------------------------------- checkpoints and workers


def _build_run(train_set, seed, epochs):
    torch.manual_seed(seed)
    model = torch.nn.Linear(train_set.tensors[0].shape[1], 1).double()
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "weight_decay": 1e-3}, {"params": [model.bias], "weight_decay": 0.0}],
        lr=0.05,
        momentum=0.9,
    )
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-3)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    ema.update_parameters(model)
    loader = DataLoader(train_set, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return model, optimizer, scheduler, ema, loader


def _train(run, epochs):
    model, optimizer, scheduler, ema, loader = run
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(xb), yb).backward()
            optimizer.step()
            ema.update_parameters(model)
        scheduler.step()


STATES = ("model", "optimizer", "scheduler", "ema", "data order")


def _checkpoint(run):
    model, optimizer, scheduler, ema, loader = run
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ema": ema.state_dict(),
        "data order": loader.generator.get_state(),
    }


def _restore(state, run, skip=None):
    model, optimizer, scheduler, ema, loader = run
    loaders = {
        "model": model.load_state_dict,
        "optimizer": optimizer.load_state_dict,
        "scheduler": scheduler.load_state_dict,
        "ema": ema.load_state_dict,
        "data order": loader.generator.set_state,
    }
    for name, load in loaders.items():
        if name != skip:
            load(state[name])


@pytest.fixture(scope="module")
def uninterrupted_run():
    x, y = _regression(n=40)
    train_set = TensorDataset(x, y.unsqueeze(-1))
    run = _build_run(train_set, seed=3, epochs=6)
    _train(run, 6)
    return train_set, run


@pytest.mark.parametrize("skip", [None, *STATES])
def test_resumed_run_from_state_dicts_equals_the_uninterrupted_one_exactly_and_needs_all_five(
    uninterrupted_run, skip
):
    train_set, (model, _, _, ema, _) = uninterrupted_run
    first = _build_run(train_set, seed=3, epochs=6)
    _train(first, 3)
    file = io.BytesIO()
    torch.save(_checkpoint(first), file)
    file.seek(0)
    resumed = _build_run(train_set, seed=7, epochs=6)  # other weights, other data order
    _restore(torch.load(file), resumed, skip=skip)
    _train(resumed, 3)
    same = all(map(torch.equal, model.parameters(), resumed[0].parameters())) and all(
        map(torch.equal, ema.parameters(), resumed[3].parameters())
    )
    assert same == (skip is None)


class _NoisyIndices(Dataset):
    """Each read returns noise from a generator object the dataset holds (an augmentation)."""

    def __init__(self, n):
        self.n, self.rng = n, np.random.default_rng(0)

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return torch.from_numpy(self.rng.normal(size=2))


def _reseed(worker_id):
    info = get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed)


def _noise(worker_init_fn, epochs, seed=0):
    loader = DataLoader(
        _NoisyIndices(8),
        batch_size=2,
        shuffle=True,
        num_workers=2,
        multiprocessing_context="fork",
        worker_init_fn=worker_init_fn,
        generator=torch.Generator().manual_seed(seed),
    )
    return [list(loader) for _ in range(epochs)]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_dataloader_workers_duplicate_a_dataset_generator_unless_worker_init_fn_reseeds_it():
    (first, second), (again,) = _noise(None, 2), _noise(None, 1)
    assert torch.equal(first[0], first[1])  # workers 0 and 1 start from the same copy
    assert torch.equal(first[0], second[0])  # and again in every epoch
    (first, second), (again,) = _noise(_reseed, 2), _noise(_reseed, 1)
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], second[0])
    assert all(map(torch.equal, first, again))  # reproducible from the loader's generator
    (other,) = _noise(_reseed, 1, seed=1)
    assert not torch.equal(first[0], other[0])


# ---------------------------------------------------------------- the weight-decay exercise


def test_weight_decay_bias_cost_per_unit_theta_star_squared_peaks_at_h_equal_lambda():
    for lam in (0.01, 0.1, 1.0, 10.0):
        h = lam * np.geomspace(1e-3, 1e3, 6001)  # h = λ is the middle point
        cost = 0.5 * h * lam**2 / (h + lam) ** 2
        assert h[np.argmax(cost)] == pytest.approx(lam, rel=1e-12)
        assert cost.max() == pytest.approx(lam / 8, rel=1e-12)


@pytest.mark.parametrize(("lam", "share"), [(1.0, 0.56), (0.1, 0.81)])
def test_weight_decay_bias_coordinate_4_with_h_near_lambda_pays_56_and_81_percent(lam, share):
    # the chapter's regression: h = σ², θ* = (1, −2, 0.5, 3, −1); noise-free GD with weight decay
    h = torch.tensor([4.0, 2.25, 1.0, 0.25, 0.0625], dtype=torch.float64)
    theta_star = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    theta = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    optimizer = torch.optim.SGD([theta], lr=0.35, weight_decay=lam)
    for _ in range(800):  # (1 − η(h_5 + λ))^800 < 1e-20
        optimizer.zero_grad()
        (0.5 * (h * (theta - theta_star) ** 2).sum()).backward()
        optimizer.step()
    excess = (0.5 * h * (theta.detach() - theta_star) ** 2).numpy()
    shares = excess / excess.sum()
    assert np.argmax(shares) == 3  # coordinate 4
    assert shares[3] == pytest.approx(share, abs=0.005)


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
