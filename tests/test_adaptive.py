"""Chapter 9: adaptive optimisers against torch.optim, schedules, least squares, seed-003 claims.

The NumPy optimisers of ``nqm_lib.adaptive`` must reproduce ``torch.optim`` to float64
rounding when fed the same gradients; the exact risk under a schedule must match Monte
Carlo; and the two claims of seed 003 are checked by the averaged experiments the chapter
reports (the numbers asserted are computed here, not pasted).
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from nqm_lib import NQM, InstabilityError, risk_curve, simulate, steady_state_risk
from nqm_lib.adaptive import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    LeastSquares,
    RMSProp,
    basin_of,
    landscape_gradient,
    landscape_loss,
    landscape_minima,
    noisy_descent_1d,
    run_optimizer,
    small_regression,
)
from nqm_lib.figures_adaptive import landscape_figure, optimiser_paths_figure
from nqm_lib.schedules import (
    cosine_schedule,
    exponential_schedule,
    power_schedule,
    schedule_risk_curve,
    step_schedule,
)

plt.switch_backend("Agg")

SEED_THETA0 = np.array([-0.5, 2.0])  # seed 003's start on its 2-D regression


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------ equality with torch.optim


def max_relative_gap_to_torch(ours, torch_class, torch_kwargs, *, steps=400, shape=(6, 4), seed=0):
    """Feed both optimisers the same random gradients; return max_t ‖θ_ours − θ_torch‖∞ / ‖θ‖∞."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(shape)
    # gradients whose scale jumps by orders of magnitude between steps and coordinates
    grads = rng.standard_normal((steps, *shape)) * rng.lognormal(0.0, 1.5, (steps, 1, shape[1]))
    param = torch.tensor(start.copy(), dtype=torch.float64, requires_grad=True)
    optimizer = torch_class([param], **torch_kwargs)
    theta = start.copy()
    worst = 0.0
    for grad in grads:
        optimizer.zero_grad()
        param.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
        theta = ours.step(theta, grad)
        reference = param.detach().numpy()
        worst = max(worst, float(np.abs(theta - reference).max() / np.abs(reference).max()))
    return worst


TORCH_CASES = [
    # (ours, torch class, torch kwargs)
    (lambda: SGD(0.01), torch.optim.SGD, {"lr": 0.01}),
    (lambda: SGD(0.03, weight_decay=0.1), torch.optim.SGD, {"lr": 0.03, "weight_decay": 0.1}),
    (lambda: AdaGrad(), torch.optim.Adagrad, {}),
    (
        lambda: AdaGrad(0.5, eps=1e-3, weight_decay=0.01),
        torch.optim.Adagrad,
        {"lr": 0.5, "eps": 1e-3, "weight_decay": 0.01},
    ),
    (lambda: AdaGrad(0.1, eps=0.0), torch.optim.Adagrad, {"lr": 0.1, "eps": 0.0}),
    (lambda: RMSProp(), torch.optim.RMSprop, {}),
    (
        lambda: RMSProp(0.003, alpha=0.9, eps=1e-4, weight_decay=0.05),
        torch.optim.RMSprop,
        {"lr": 0.003, "alpha": 0.9, "eps": 1e-4, "weight_decay": 0.05},
    ),
    (lambda: Adam(), torch.optim.Adam, {}),
    (
        lambda: Adam(0.05, betas=(0.8, 0.99), eps=1e-3),
        torch.optim.Adam,
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-3},
    ),
    (
        lambda: Adam(0.01, betas=(0.5, 0.9), eps=1e-12, weight_decay=0.1),
        torch.optim.Adam,
        {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-12, "weight_decay": 0.1},
    ),
    (lambda: Adam(0.02, amsgrad=True), torch.optim.Adam, {"lr": 0.02, "amsgrad": True}),
    (
        lambda: Adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
        torch.optim.Adam,
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
    ),
    (lambda: AdamW(), torch.optim.AdamW, {}),
    (
        lambda: AdamW(0.05, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.3, amsgrad=True),
        torch.optim.AdamW,
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-4, "weight_decay": 0.3, "amsgrad": True},
    ),
]


TORCH_IDS = [f"{cls.__name__}-{kwargs}" for _, cls, kwargs in TORCH_CASES]


@pytest.mark.parametrize(("make_ours", "torch_class", "torch_kwargs"), TORCH_CASES, ids=TORCH_IDS)
def test_numpy_optimizer_equals_torch_optim_on_identical_gradients(make_ours, torch_class, torch_kwargs):
    assert max_relative_gap_to_torch(make_ours(), torch_class, torch_kwargs) < 1e-12


def test_defaults_are_pytorchs_defaults():
    assert (AdaGrad().lr, AdaGrad().eps) == (0.01, 1e-10)
    adamw = AdamW()
    assert (adamw.lr, adamw.weight_decay, adamw.amsgrad) == (1e-3, 1e-2, False)
    assert adamw.decoupled_weight_decay
    assert (RMSProp().lr, RMSProp().alpha, RMSProp().eps) == (0.01, 0.99, 1e-8)
    adam = Adam()
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (1e-3, 0.9, 0.999, 1e-8)


def test_an_array_learning_rate_runs_a_sweep_equal_to_separate_runs():
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((50, 3, 5))
    lrs = np.array([0.001, 0.01, 0.1])
    swept = Adam(lrs[:, None])  # lr per row
    theta = np.zeros((3, 5))
    for grad in grads:
        theta = swept.step(theta, grad)
    for row, lr in enumerate(lrs):
        single, alone = Adam(lr), np.zeros(5)
        for grad in grads:
            alone = single.step(alone, grad[row])
        np.testing.assert_allclose(theta[row], alone, rtol=1e-14, atol=0)


# ------------------------------------------------------------ bias correction, AdaGrad's decay


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_adam_first_steps_have_magnitude_lr_for_a_constant_gradient(scale):
    lr = 0.01
    grad = scale * np.array([1.0, -2.0, 0.5])
    adam, theta = Adam(lr), np.zeros(3)
    for _ in range(5):
        new = adam.step(theta, grad)
        # m̂ = g and v̂ = g² exactly, so each step is η g / (|g| + ε) ≈ η sign(g)
        np.testing.assert_allclose(np.abs(new - theta), lr, rtol=1e-4)
        theta = new


def test_adam_without_bias_correction_first_step_is_lr_times_one_minus_beta1_over_root_one_minus_beta2():
    lr, beta1, beta2 = 0.01, 0.9, 0.999
    adam = Adam(lr, betas=(beta1, beta2), eps=0.0, bias_correction=False)
    step = adam.step(np.zeros(2), np.array([3.0, -0.2]))
    np.testing.assert_allclose(np.abs(step), lr * (1 - beta1) / np.sqrt(1 - beta2), rtol=1e-12)


def test_adagrad_step_shrinks_like_one_over_sqrt_t_for_a_constant_gradient():
    lr, grad = 0.1, np.array([2.0, -0.3])
    adagrad, theta = AdaGrad(lr, eps=0.0), np.zeros(2)
    for t in range(1, 101):
        new = adagrad.step(theta, grad)
        np.testing.assert_allclose(np.abs(new - theta), lr / np.sqrt(t), rtol=1e-12)
        theta = new


# ------------------------------------------------------------ schedules


def test_schedule_builders_equal_torch_lr_schedulers():
    steps, lr = 60, 0.1

    def torch_lrs(make_scheduler):
        param = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([param], lr=lr)
        scheduler = make_scheduler(optimizer)
        values = []
        for _ in range(steps):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return np.array(values)

    sched = torch.optim.lr_scheduler
    np.testing.assert_allclose(
        cosine_schedule(steps, lr),
        torch_lrs(lambda o: sched.CosineAnnealingLR(o, T_max=steps)),
        rtol=1e-12,
        atol=1e-15,
    )
    np.testing.assert_allclose(
        exponential_schedule(steps, lr, decay=0.95),
        torch_lrs(lambda o: sched.ExponentialLR(o, gamma=0.95)),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        step_schedule(steps, lr, milestones=(20, 45), factor=0.5),
        torch_lrs(lambda o: sched.MultiStepLR(o, milestones=[20, 45], gamma=0.5)),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        power_schedule(steps, lr, tau=7.0, power=0.75),
        torch_lrs(lambda o: sched.LambdaLR(o, lambda t: (1 + t / 7.0) ** -0.75)),
        rtol=1e-12,
    )


def test_cosine_schedule_with_warmup_ramps_linearly_then_decays_to_final_lr():
    lrs = cosine_schedule(100, 0.2, warmup=10, final_lr=0.01)
    np.testing.assert_allclose(lrs[:10], 0.2 * np.arange(1, 11) / 10)
    assert lrs[10] == pytest.approx(0.2)
    assert np.all(np.diff(lrs[10:]) < 0) and lrs[-1] > 0.01


def test_schedule_risk_with_a_constant_rate_equals_the_closed_form_of_chapter_2():
    problem = NQM([50.0, 1.0], [50.0, 1.0], [1.0, 1.0])
    lr, t = 0.02, np.arange(301)
    r = 1 - lr * problem.h
    floor = lr * problem.c / (2 * (2 - lr * problem.h))
    closed = (r[None] ** (2 * t[:, None]) * 0.5 * problem.h + (1 - r[None] ** (2 * t[:, None])) * floor).sum(
        axis=1
    )
    np.testing.assert_allclose(schedule_risk_curve(problem, np.full(300, lr)), closed, rtol=1e-10)


def test_schedule_risk_equals_a_literal_per_coordinate_loop_and_stacks_schedules():
    problem = NQM([10.0, 2.0, 0.1], [3.0, 1.0, 0.5], [1.0, -2.0, 0.5])
    lrs = np.stack([power_schedule(200, 0.15, tau=10.0), cosine_schedule(200, 0.1, warmup=20)])
    stacked = schedule_risk_curve(problem, lrs, batch_size=4)
    for row, schedule in enumerate(lrs):
        expected = []
        for i in range(problem.d):
            m, values = problem.theta0[i] ** 2, [0.5 * problem.h[i] * problem.theta0[i] ** 2]
            for eta in schedule:
                m = (1 - eta * problem.h[i]) ** 2 * m + eta**2 * problem.c[i] / 4
                values.append(0.5 * problem.h[i] * m)
            expected.append(values)
        np.testing.assert_allclose(stacked[row], np.sum(expected, axis=0), rtol=1e-12)


def test_schedule_risk_matches_monte_carlo_for_a_one_over_t_schedule():
    problem = NQM([50.0, 1.0], [50.0, 1.0], [1.0, 1.0])
    lrs = power_schedule(300, 0.02, tau=40.0)
    exact = schedule_risk_curve(problem, lrs)
    mc = simulate(problem, lrs.size, lr=lrs, trials=20_000, seed=3)
    z = (mc.risk[1:] - exact[1:]) / mc.risk_stderr[1:]
    assert np.max(np.abs(z)) < 4.5  # 300 correlated comparisons
    # standard error at the end is ~1%, so a 3% error in the recursion would fail here
    assert mc.risk[-1] == pytest.approx(exact[-1], rel=0.03)


def test_claim_a_decaying_schedule_beats_every_constant_rate_for_a_long_budget():
    problem = NQM([50.0, 1.0], [50.0, 1.0], [1.0, 1.0])
    budget = 5000
    rates = np.geomspace(1e-4, 0.0399, 60)
    best_constant = schedule_risk_curve(problem, np.repeat(rates[:, None], budget, axis=1))[:, -1].min()
    one_over_t = schedule_risk_curve(problem, power_schedule(budget, 0.02, tau=40.0))[-1]
    assert one_over_t < 0.5 * best_constant


# ------------------------------------------------------------ least squares and its local NQM


def test_least_squares_gradients_are_the_finite_sum_averages():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((30, 3)), rng.standard_normal(30)
    problem = LeastSquares(X, y)
    theta = rng.standard_normal((4, 3))  # 4 runs
    batch = rng.integers(0, 30, (4, 5))
    minibatch = problem.gradient(theta, batch)
    for run in range(4):
        rows = batch[run]
        expected = np.mean([(X[n] @ theta[run] - y[n]) * X[n] for n in rows], axis=0)
        np.testing.assert_allclose(minibatch[run], expected, rtol=1e-12)
    np.testing.assert_allclose(problem.gradient(theta), (theta @ X.T - y) @ X / 30, rtol=1e-10, atol=1e-12)
    # a stack of parameter vectors per run (optimisers, learning rates): each row its own gradient
    stacked = rng.standard_normal((2, 3, 4, 3))
    for index in np.ndindex(2, 3):
        np.testing.assert_allclose(
            problem.gradient(stacked, batch)[index], problem.gradient(stacked[index], batch), rtol=1e-12
        )
    np.testing.assert_allclose(problem.loss(theta), 0.5 * np.mean((theta @ X.T - y) ** 2, axis=1), rtol=1e-12)


def test_local_nqm_predicts_the_sgd_noise_floor_on_least_squares_within_3_percent():
    problem = small_regression()
    nqm = problem.local_nqm(SEED_THETA0)
    path = run_optimizer(problem, SGD(0.05), problem.solution, 400, batch_size=8, runs=2000, seed=7)
    per_run = problem.excess_loss(path[100:]).mean(axis=0)
    stderr = per_run.std() / np.sqrt(per_run.size)
    predicted = steady_state_risk(nqm, lr=0.05, batch_size=8)
    assert stderr < 0.008 * predicted  # so that a 3% error is several standard errors
    assert per_run.mean() == pytest.approx(predicted, rel=0.03)


def test_claim_the_mean_of_100_runs_misses_the_local_nqm_floor_by_several_percent_at_batch_size_1():
    """Chapter 9: at B = 1 (η = 0.01) one set of 100 runs is a noisy estimate of the floor (its gap
    to the exact local-NQM risk over t = 400..500 has a standard deviation of several percent),
    while the mean of 1000 runs agrees to 3%. Ten disjoint groups of 100 runs, seeded apart
    from the chapter."""
    problem = small_regression()
    nqm = problem.local_nqm(SEED_THETA0)
    exact = risk_curve(nqm, 500, lr=0.01, batch_size=1)[400:].mean()
    path = run_optimizer(problem, SGD(0.01), SEED_THETA0, 500, batch_size=1, runs=1000, seed=21)
    late = problem.excess_loss(path[400:])  # (101, 1000)
    groups = late.reshape(101, 10, 100).mean(axis=(0, 2)) / exact - 1
    assert late.mean() == pytest.approx(exact, rel=0.03)
    assert 0.03 < groups.std(ddof=1) < 0.15
    assert np.abs(groups).max() > 0.03  # a single set of 100 runs can miss by more than 3%


def test_claim_the_notes_regression_comes_from_the_legacy_seed_and_ours_differs():
    """Chapter 9: the notes' printed θ̂ = (1.4950, 0.9804) is their recipe with np.random.seed(42);
    ``small_regression`` (default_rng(42)) gives another θ̂."""
    rng = np.random.RandomState(42)
    X = np.column_stack([np.ones(200), rng.randn(200)])
    y = X @ np.array([1.45, 0.93]) + 0.5 * rng.randn(200)
    notes = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(notes, [1.4950, 0.9804], atol=5e-5)
    assert np.abs(small_regression().solution - notes).max() > 0.03


def test_claim_adagrad_has_no_constant_noise_floor_but_sgd_and_adam_do():
    """Chapter 9: with η fixed, AdaGrad's loss keeps falling (its steps shrink like 1/√t),
    SGD's stays flat and Adam's settles. Small regression, B = 8, 100 runs, 8000 steps."""
    problem = small_regression()

    def window_means(optimizer):
        path = run_optimizer(problem, optimizer, SEED_THETA0, 8000, batch_size=8, runs=100, seed=5)
        mean = problem.excess_loss(path).mean(axis=1)
        return np.array([mean[a + 1 : 2 * a + 1].mean() for a in (1000, 2000, 4000)])

    sgd, adagrad, adam = (window_means(o) for o in (SGD(0.05), AdaGrad(0.1), Adam(0.01)))
    assert np.all(np.diff(adagrad) < 0) and adagrad[-1] < 0.85 * adagrad[0]  # keeps falling
    assert np.all(np.abs(sgd / sgd[0] - 1) < 0.1)  # a floor
    assert abs(adam[-1] / adam[-2] - 1) < 0.2  # a floor, reached late (v forgets slowly)
    assert adagrad[-1] < 0.5 * sgd[-1]  # below SGD's floor at the same budget


# ------------------------------------------------------------ seed 003's claims


def seed_averaging_experiment(steps, runs=300):
    """Seed 003's averaging setting: B = 8, η = 0.05 from θ(0) = (−0.5, 2); excess losses per run."""
    problem = small_regression()
    path = run_optimizer(problem, SGD(0.05), SEED_THETA0, steps, batch_size=8, runs=runs, seed=11)
    uniform = path[1:].mean(axis=0)  # θ̄_T = (θ_1 + … + θ_T)/T, as the seed computes it
    tail = path[steps // 2 + 1 :].mean(axis=0)  # the last half
    return problem.excess_loss(path[-1]), problem.excess_loss(uniform), problem.excess_loss(tail)


def test_claim_uniform_averaging_is_not_closer_to_the_optimum_at_the_seeds_budget_but_tail_averaging_is():
    last, uniform, tail = seed_averaging_experiment(300)
    # measured: the uniform average is about 15x worse, in every one of 300 runs
    assert uniform.mean() > 5 * last.mean()
    assert np.mean(uniform > last) > 0.99
    assert tail.mean() < 0.5 * last.mean()


def test_claim_uniform_averaging_overtakes_the_last_iterate_only_after_many_more_steps():
    last, uniform, _ = seed_averaging_experiment(3000, runs=200)
    assert uniform.mean() < 0.5 * last.mean()


def test_claim_sgd_noise_escape_does_not_happen_at_the_seeds_setting():
    minima = landscape_minima()
    descent_end = noisy_descent_1d(-1.0, 300, lr=0.03, noise_std=0.0, runs=1)[-1, 0]
    noisy_end = noisy_descent_1d(-1.0, 300, lr=0.03, noise_std=3.0, runs=2000, seed=5)[-1]
    # gradient descent stops in the local minimum next to the start, θ ≈ −0.28
    assert descent_end == pytest.approx(-0.2774, abs=1e-3)
    # with the seed's noise (std 3) not one of 2000 runs leaves that basin ...
    assert np.all(basin_of(noisy_end, minima) == basin_of(descent_end, minima))
    # ... and the noisy runs end *higher* on average: they jitter around the same minimum
    assert landscape_loss(noisy_end).mean() > landscape_loss(descent_end)


def test_claim_sgd_noise_escape_happens_when_the_noise_std_is_raised_from_3_to_10():
    minima = landscape_minima()
    start_basin = basin_of(-0.2774, minima)
    global_basin = int(np.argmin(landscape_loss(minima)))
    noisy_end = noisy_descent_1d(-1.0, 300, lr=0.03, noise_std=10.0, runs=2000, seed=6)[-1]
    basins = basin_of(noisy_end, minima)
    assert np.mean(basins != start_basin) > 0.95
    assert 0.4 < np.mean(basins == global_basin) < 0.65
    assert landscape_loss(noisy_end).mean() < landscape_loss(-0.2774) - 3.0


def test_landscape_minima_are_strict_local_minima_and_basins_route_gradient_flow_to_them():
    minima = landscape_minima()
    assert minima.size == 7
    np.testing.assert_allclose(landscape_gradient(minima), 0.0, atol=1e-8)
    assert np.all(landscape_loss(minima - 1e-3) > landscape_loss(minima))
    assert np.all(landscape_loss(minima + 1e-3) > landscape_loss(minima))
    np.testing.assert_array_equal(basin_of(minima, minima), np.arange(7))
    starts = np.linspace(-5.0, 11.0, 41)
    flow = starts.copy()
    for _ in range(20_000):  # small steps: a faithful gradient flow
        flow = flow - 0.002 * landscape_gradient(flow)
    np.testing.assert_allclose(flow, minima[basin_of(starts, minima)], atol=1e-6)


# ------------------------------------------------------------ figures


def test_optimiser_paths_figure_shows_contours_paths_and_log_loss_curves():
    fig = optimiser_paths_figure(steps=40, runs=20)
    assert isinstance(fig, Figure)
    contours, curves = fig.axes
    assert len(contours.collections) >= 1
    assert curves.get_yscale() == "log"
    assert len(curves.get_lines()) == 2
    for line in curves.get_lines() + contours.get_lines():
        assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float)))


@pytest.mark.parametrize("name", ["SGD", "AdaGrad", "RMSProp", "Adam"])
def test_optimiser_paths_figure_draws_every_optimiser(name):
    lr = {"SGD": 0.05, "AdaGrad": 0.5, "RMSProp": 0.01, "Adam": 0.05}[name]
    assert isinstance(optimiser_paths_figure(name, lr, steps=30, runs=10), Figure)


def test_landscape_figure_shares_sum_to_one():
    fig = landscape_figure(steps=100, runs=50)
    bars = [patch.get_height() for patch in fig.axes[1].patches if patch.get_fill()]
    assert len(bars) == 7
    assert sum(bars) == pytest.approx(1.0)


# ------------------------------------------------------------ validation


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), "fast", True, np.array([0.1, -1.0])])
def test_invalid_learning_rates_are_rejected(lr):
    with pytest.raises(ValueError, match="lr"):
        Adam(lr)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Adam(betas=(0.9, 1.0)), "beta2"),
        (lambda: Adam(betas=(-0.1, 0.9)), "beta1"),
        (lambda: Adam(betas=(0.9,)), "betas"),
        (lambda: RMSProp(alpha=1.5), "alpha"),
        (lambda: AdaGrad(eps=-1e-8), "eps"),
        (lambda: SGD(weight_decay=-0.1), "weight_decay"),
    ],
)
def test_invalid_hyperparameters_are_rejected_with_their_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_shape_errors_are_rejected():
    adam = Adam()
    with pytest.raises(ValueError, match="shape"):
        adam.step(np.zeros(3), np.zeros(2))
    adam.step(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="changed shape"):
        adam.step(np.zeros(4), np.ones(4))


def test_invalid_problems_and_runs_are_rejected():
    with pytest.raises(ValueError, match="column rank"):
        LeastSquares(np.ones((10, 2)), np.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        LeastSquares(np.ones((10, 2)), np.zeros(9))
    problem = small_regression()
    with pytest.raises(ValueError, match="lr_factors"):
        run_optimizer(problem, SGD(0.1), SEED_THETA0, 5, lr_factors=np.ones(4))
    with pytest.raises(ValueError, match="batch_size"):
        run_optimizer(problem, SGD(0.1), SEED_THETA0, 5, batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        noisy_descent_1d(0.0, 10, lr=np.ones(3), noise_std=1.0)
    with pytest.raises(ValueError, match="noise_std"):
        noisy_descent_1d(0.0, 10, lr=0.1, noise_std=-1.0)


def test_invalid_and_unstable_schedules_are_rejected():
    problem = NQM([50.0, 1.0], [50.0, 1.0])
    with pytest.raises(InstabilityError, match="η_t·h_1"):
        schedule_risk_curve(problem, np.full(10, 0.05))
    with pytest.raises(ValueError, match="finite and > 0"):
        schedule_risk_curve(problem, np.array([0.01, 0.0]))
    with pytest.raises(ValueError, match="warmup"):
        cosine_schedule(10, 0.1, warmup=10)
    with pytest.raises(ValueError, match="power"):
        power_schedule(10, 0.1, tau=1.0, power=-1.0)
    with pytest.raises(ValueError, match="decay"):
        exponential_schedule(10, 0.1, decay=1.5)
    with pytest.raises(ValueError, match=r"schedule of shape \(10,\)"):
        simulate(problem, 10, lr=np.full((2, 10), 0.01))
    with pytest.raises(ValueError, match=r"lr\[1\] = 0.0"):
        simulate(problem, 2, lr=np.array([0.01, 0.0]))
    with pytest.raises(InstabilityError):
        simulate(problem, 2, lr=np.array([0.01, 0.05]))


def test_figures_reject_unknown_optimisers_and_draw_divergence():
    with pytest.raises(ValueError, match="optimiser must be one of"):
        optimiser_paths_figure("Lion")
    contours, curves = optimiser_paths_figure("SGD", 2.0, steps=60, runs=5).axes  # η h₁ ≈ 11 ≥ 2
    assert any(text.get_text().startswith("diverges: ηh₁ =") for text in curves.texts)
    for line in curves.get_lines() + contours.get_lines():
        assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float)))
