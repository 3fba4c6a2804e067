"""Steps to target and batch-size scaling (``nqm_lib.batch_scaling``, chapter 6).

Expected values come from independent computations written here — the closed form of plain
SGD's risk searched by bisection, the library's step-by-step moment recursion (``risk_curve``),
matrix powers (``risk_at_step``) — and from the reference points of the paper's public notebook
(gd-zhang/noisy-quadratic-model, an independent implementation). The notebook counts steps
differently (the last ``t`` with risk ≥ target, found by bisection, with a regulariser 10⁻⁸ in
SGD's steady state); the tests say where that shows.
"""

import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from nqm_lib import NQM, InstabilityError, risk_curve, steady_state_risk
from nqm_lib.batch_scaling import (
    PAPER_DECAYS,
    PAPER_LRS,
    PAPER_SGD_LRS,
    SCHEDULE_PIECES,
    critical_batch_size,
    information_bound_risk,
    information_bound_steps,
    optimal_piecewise_schedule,
    piecewise_schedule_risk,
    risk_at_step,
    scheduled_steps_to_target,
    steps_to_target,
    steps_to_target_grid,
    tuned_steps_to_target,
)
from nqm_lib.figures_batch_size import METHODS, paper_sweep, steps_vs_batch_figure
from nqm_lib.schedules import schedule_risk_curve

matplotlib.use("Agg")

PAPER = NQM.paper_spectrum()
TARGET = 0.01

# ---------------------------------------------------------------- independent oracles


def sgd_closed_form_risk(problem, t, *, lr, batch_size, regulariser=0.0):
    """E[L(θ_t)] of plain SGD from E[θ²_t] = s* + r^{2t}(θ(0)² − s*), s* = η²σ²/(1 − r²) (float t ok)."""
    r2 = (1.0 - lr * problem.h) ** 2
    s_star = lr**2 * (problem.c / batch_size) / (1.0 - r2 + regulariser)
    second_moment = s_star + r2**t * (problem.theta0**2 - s_star)
    return float(np.sum(0.5 * problem.h * problem.counts * second_moment))


def first_crossing_by_bisection(risk, target, high=2**40):
    """Smallest t with risk(t) <= target, assuming the risk is non-increasing (doubling + bisection)."""
    if risk(0) <= target:
        return 0
    low, up = 0, 1
    while risk(up) > target:
        low, up = up, 2 * up
        if up > high:
            return math.inf
    while up - low > 1:
        mid = (low + up) // 2
        low, up = (low, mid) if risk(mid) <= target else (mid, up)
    return up


def notebook_time_to_loss(risk, target, high):
    """The notebook's count: bisection for the last t with risk(t) >= target (strict '<' test)."""
    low = 0
    while low < high - 1:
        mid = (low + high) // 2
        if risk(mid) < target:
            high = mid
        else:
            low = mid
    return low


def first_crossing_of_curve(curve, target):
    below = np.flatnonzero(curve <= target)
    return int(below[0]) if below.size else math.inf


# ---------------------------------------------------------------- the notebook's reference points


def test_sgd_reference_point_b4_matches_closed_form_and_notebook():
    """Plain SGD, p = 0, B = 4, target 0.01: the notebook reports 1,507,367 steps at η ≈ 0.0147."""
    tuned = tuned_steps_to_target(PAPER, TARGET, [4], lrs=PAPER_SGD_LRS)
    by_lr = [
        first_crossing_by_bisection(
            lambda t, lr=lr: sgd_closed_form_risk(PAPER, t, lr=lr, batch_size=4), TARGET
        )
        for lr in PAPER_SGD_LRS[PAPER_SGD_LRS < 0.1]  # larger rates never reach 0.01 at B = 4
    ]
    assert tuned.steps[0] == min(by_lr)
    assert tuned.lr[0] == pytest.approx(0.0147, rel=0.01)
    assert abs(tuned.steps[0] - 1_507_367) / 1_507_367 < 1e-3


def test_notebook_sgd_count_differs_only_by_its_regulariser_and_convention():
    """The notebook's 1,507,367 is its 10⁻⁸ regulariser; without it, its count is ours − 1."""
    lr = float(PAPER_SGD_LRS[np.argmin(np.abs(PAPER_SGD_LRS - 0.0147))])

    def notebook(regulariser):
        risk = lambda t: sgd_closed_form_risk(PAPER, t, lr=lr, batch_size=4, regulariser=regulariser)  # noqa: E731
        return max(notebook_time_to_loss(risk, TARGET, 10**9), 1)

    assert notebook(1e-8) == 1_507_367
    assert notebook(0.0) == steps_to_target(PAPER, TARGET, lr=lr, batch_size=4) - 1


def test_sgd_reference_point_target_01_b1024():
    """Plain SGD, p = 0, B = 1024, target 0.1: the notebook reports 3,073 steps (its count is ours − 1)."""
    tuned = tuned_steps_to_target(PAPER, 0.1, [1024], lrs=PAPER_SGD_LRS)
    risk = lambda t: sgd_closed_form_risk(PAPER, t, lr=tuned.lr[0], batch_size=1024)  # noqa: E731
    assert tuned.steps[0] == first_crossing_by_bisection(risk, 0.1)
    assert abs(tuned.steps[0] - 3_073) <= 1


def test_momentum_reference_point_b16384_is_an_oscillating_first_crossing():
    """Momentum, β searched, p = 0, B = 16384: the notebook reports 349 steps (η ≈ 1.52, β ≈ 0.9736)."""
    tuned = tuned_steps_to_target(PAPER, TARGET, [16384], lrs=PAPER_LRS, momenta=PAPER_DECAYS)
    assert abs(tuned.steps[0] - 349) <= 1
    assert (tuned.lr[0], tuned.momentum[0]) == pytest.approx((1.5199, 0.97363), rel=1e-4)
    # the step-by-step recursion: the risk first dips below the target there and crosses it again
    curve = risk_curve(PAPER, 400, lr=tuned.lr[0], batch_size=16384, momentum=tuned.momentum[0])
    assert first_crossing_of_curve(curve, TARGET) == tuned.steps[0]
    below = curve <= TARGET
    assert np.count_nonzero(below[1:] != below[:-1]) >= 3
    # the notebook's bisection on [0, 10⁷] reproduces its 349 from this curve: it lands on a later
    # crossing (its count is the step before), not on the first one
    assert notebook_time_to_loss(lambda t: curve[min(t, 400)], TARGET, 10**7) == 349
    # no other grid point near the optimum crosses earlier (brute force with the recursion)
    for lr in PAPER_LRS[(PAPER_LRS > 0.4) & (PAPER_LRS < 3.6)]:
        for beta in PAPER_DECAYS[(PAPER_DECAYS > 0.9) & (PAPER_DECAYS < 0.999)]:
            other = risk_curve(PAPER, int(tuned.steps[0]), lr=lr, batch_size=16384, momentum=beta)
            assert first_crossing_of_curve(other, TARGET) >= tuned.steps[0]


# ---------------------------------------------------------------- exactness of the search

TWO = NQM([1.0, 0.02], [1.0, 0.02], theta0=[1.0, 1.0])
CASES = {  # name: (problem, target, settings, whether the risk curve is non-monotone)
    "sgd": (TWO, 0.05, {"lr": 0.5, "batch_size": 8}, False),
    "sgd near the stability limit": (TWO, 0.2, {"lr": 1.9, "batch_size": 64}, False),
    "momentum, under-damped": (TWO, 0.008, {"lr": 0.6, "batch_size": 256, "momentum": 0.9}, True),
    "momentum, over-damped": (TWO, 0.05, {"lr": 0.05, "batch_size": 16, "momentum": 0.5}, False),
    "ema with eta h > 1": (TWO, 0.03, {"lr": 1.6, "batch_size": 32, "ema_decay": 0.7}, False),
    "ema": (TWO, 0.02, {"lr": 0.3, "batch_size": 8, "ema_decay": 0.95}, False),
    "preconditioned, dips below the target, then rises above": (
        NQM([1.0, 0.001], [1.0, 0.001], theta0=[1.0, 1.0]),
        0.195,
        {"lr": 0.5, "batch_size": 1, "precond_power": 0.8},
        True,
    ),
    "preconditioned momentum": (
        TWO,
        0.01,
        {"lr": 0.3, "batch_size": 64, "momentum": 0.8, "precond_power": 0.5},
        True,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_steps_to_target_is_the_first_crossing_of_risk_curve(name):
    problem, target, settings, non_monotone = CASES[name]
    curve = risk_curve(problem, 3000, **settings)
    expected = first_crossing_of_curve(curve, target)
    assert expected < 3000
    assert steps_to_target(problem, target, **settings) == expected
    assert np.any(np.diff(curve) > 0) == non_monotone  # the case tests what its name says


def test_search_is_exact_on_random_settings_against_the_recursion():
    rng = np.random.default_rng(7)
    for _ in range(40):
        d = int(rng.integers(1, 4))
        h = np.sort(10 ** rng.uniform(-2.0, 0.0, d))[::-1]
        problem = NQM(h, h * 10 ** rng.uniform(-1, 1, d), 10 ** rng.uniform(-0.5, 0.5, d))
        p = float(rng.choice([0.0, 0.5]))
        lr = float(10 ** rng.uniform(-1.5, np.log10(1.9 / h[0] ** (1 - p))))
        extra = (
            {"momentum": float(rng.uniform(0, 0.98))}
            if rng.random() < 0.5
            else {"ema_decay": float(rng.uniform(0, 0.99))}
        )
        batch = int(rng.integers(1, 200))
        target = problem.initial_risk * float(10 ** rng.uniform(-2, -0.3))
        curve = risk_curve(problem, 2000, lr=lr, batch_size=batch, precond_power=p, **extra)
        found = steps_to_target(
            problem, target, lr=lr, batch_size=batch, precond_power=p, max_steps=2000, **extra
        )
        assert found == first_crossing_of_curve(curve, target)


def test_long_horizon_crossings_agree_with_matrix_powers():
    """At ~10⁶ steps no recursion is feasible: check T against risk_at_step at T and T − 1."""
    for settings in ({}, {"momenta": PAPER_DECAYS[-8:-4]}, {"ema_decays": PAPER_DECAYS[:3]}):
        tuned = tuned_steps_to_target(PAPER, TARGET, [4], lrs=PAPER_LRS[55:65], **settings)
        steps = int(tuned.steps[0])
        hyper = {
            "lr": tuned.lr[0],
            "batch_size": 4,
            "momentum": tuned.momentum[0],
            "ema_decay": tuned.ema_decay[0],
        }
        assert steps > 10**5
        assert risk_at_step(PAPER, steps, **hyper) <= TARGET < risk_at_step(PAPER, steps - 1, **hyper)


@pytest.mark.parametrize(
    "settings",
    [
        {"lr": 0.3},
        {"lr": 0.3, "momentum": 0.9},
        {"lr": 0.3, "ema_decay": 0.9},
        {"lr": 0.2, "momentum": 0.8, "ema_decay": 0.9},
    ],
)
def test_risk_at_step_equals_the_recursion(settings):
    problem = NQM([1.0, 0.1, 0.01], [2.0, 0.1, 0.03], theta0=[1.0, -2.0, 3.0])
    curve = risk_curve(problem, 300, batch_size=4, precond_power=0.3, **settings)
    for t in (0, 1, 2, 17, 300):
        assert risk_at_step(problem, t, batch_size=4, precond_power=0.3, **settings) == pytest.approx(
            curve[t], rel=1e-10
        )


def test_grid_entries_equal_single_searches_and_nan_marks_divergence():
    lrs, momenta = [0.05, 0.4, 1.0, 3.0, 4.5], [0.0, 0.5, 0.9]
    grid = steps_to_target_grid(TWO, 0.01, [4, 64], lrs=lrs, momenta=momenta)
    assert grid.shape == (2, 5, 3)
    for b, batch in enumerate([4, 64]):
        for i, lr in enumerate(lrs):
            for j, beta in enumerate(momenta):
                if lr * TWO.h[0] >= 2 * (1 + beta):
                    assert np.isnan(grid[b, i, j])
                    with pytest.raises(InstabilityError):
                        steps_to_target(TWO, 0.01, lr=lr, batch_size=batch, momentum=beta)
                else:
                    assert grid[b, i, j] == steps_to_target(TWO, 0.01, lr=lr, batch_size=batch, momentum=beta)


def test_tuned_result_is_the_grid_minimum_with_ties_to_the_first_grid_point():
    lrs, decays = np.geomspace(0.01, 1.9, 25), [0.0, 0.3, 0.6, 0.9, 0.97]
    for key in ("momenta", "ema_decays"):
        grid = steps_to_target_grid(TWO, 0.01, [1, 16, 1024], lrs=lrs, **{key: decays})
        tuned = tuned_steps_to_target(TWO, 0.01, [1, 16, 1024], lrs=lrs, **{key: decays})
        for b in range(3):
            flat = np.where(np.isnan(grid[b]), np.inf, grid[b]).ravel()
            first = int(np.argmin(flat))
            chosen = tuned.momentum[b] if key == "momenta" else tuned.ema_decay[b]
            assert tuned.steps[b] == flat[first]
            assert (tuned.lr[b], chosen) == (lrs[first // len(decays)], decays[first % len(decays)])


# ---------------------------------------------------------------- scaling properties (claims of chapter 6)


def test_doubling_the_batch_halves_sgd_steps_below_the_critical_batch_size_only():
    lrs = np.geomspace(1e-3, 1.99, 400)
    batches = [4, 8, 16, 32, 2**16, 2**17]
    steps = tuned_steps_to_target(PAPER, TARGET, batches, lrs=lrs).steps
    for small, large in zip(steps[:3], steps[1:4], strict=True):
        assert small / large == pytest.approx(2.0, rel=0.05)
    assert steps[4] / steps[5] < 1.01  # far above the critical batch size: no gain at all


@pytest.mark.parametrize("method", ["SGD", "momentum", "EMA"])
def test_tuned_steps_never_increase_with_the_batch_size(method):
    steps = paper_sweep()[method, 0.0].steps
    assert np.all(np.diff(steps) <= 0)


def test_momentum_and_ema_never_lose_to_sgd_when_zero_is_in_their_grid():
    sweep = paper_sweep()
    for p in (0.0, 0.25, 0.5, 0.75):
        assert np.all(sweep["momentum", p].steps <= sweep["SGD", p].steps)
        assert np.all(sweep["EMA", p].steps <= sweep["SGD", p].steps)


def test_large_batch_limit_is_noise_free_gradient_descent():
    noise_free = NQM(PAPER.h, 0.0 * PAPER.c, PAPER.theta0, counts=PAPER.counts)
    deterministic = tuned_steps_to_target(noise_free, TARGET, [1], lrs=PAPER_LRS).steps[0]
    huge = tuned_steps_to_target(PAPER, TARGET, [2**40], lrs=PAPER_LRS).steps[0]
    assert deterministic == huge
    assert 1.0 <= paper_sweep()["SGD", 0.0].steps[-1] / deterministic < 1.001  # B = 2²⁰ is nearly there


SAME_OPTIMISER_CASES = [(method, p) for method in METHODS for p in (0.0, 0.5)]


@pytest.mark.parametrize(("method", "p"), SAME_OPTIMISER_CASES)
def test_tuned_steps_approach_the_same_optimisers_noise_free_steps_from_above(method, p):
    """prop-bs-monotone: S(B) ≥ the same optimiser's tuned steps with exact gradients (same grid)."""
    noise_free = NQM(PAPER.h, 0.0 * PAPER.c, PAPER.theta0, counts=PAPER.counts)
    grid = {"SGD": {}, "momentum": {"momenta": PAPER_DECAYS}, "EMA": {"ema_decays": PAPER_DECAYS}}[method]
    exact = tuned_steps_to_target(noise_free, TARGET, [1], lrs=PAPER_LRS, precond_power=p, **grid).steps[0]
    huge = tuned_steps_to_target(PAPER, TARGET, [2**40], lrs=PAPER_LRS, precond_power=p, **grid).steps[0]
    steps = paper_sweep()[method, p].steps
    assert huge == exact  # the limit B → ∞
    assert np.all(steps >= exact)  # from above, at every batch size of the sweep
    assert steps[-1] / exact < 1.01  # and B = 2²⁰ is within 1% of it


def test_the_large_batch_floor_belongs_to_each_optimiser_not_to_gradient_descent():
    """Momentum and preconditioning go far below noise-free GD's tuned steps at B = 2²⁰."""
    noise_free = NQM(PAPER.h, 0.0 * PAPER.c, PAPER.theta0, counts=PAPER.counts)
    gd = tuned_steps_to_target(noise_free, TARGET, [1], lrs=PAPER_LRS).steps[0]
    sweep = paper_sweep()
    assert np.all(sweep["SGD", 0.0].steps >= gd)  # plain SGD on the chapter's grid never beats GD
    assert sweep["momentum", 0.0].steps[-1] < gd / 10
    assert sweep["SGD", 0.5].steps[-1] < gd / 10


def test_momentum_and_preconditioning_raise_the_critical_batch_size_and_ema_lowers_it():
    sweep = paper_sweep()
    critical = {key: critical_batch_size(result.batch_sizes, result.steps) for key, result in sweep.items()}
    for p in (0.0, 0.25, 0.5, 0.75):
        assert critical["momentum", p] > (2 if p < 0.6 else 1) * critical["SGD", p]
        assert critical["EMA", p] < critical["SGD", p]
    for method in METHODS:
        values = [critical[method, p] for p in (0.0, 0.25, 0.5, 0.75)]
        assert np.all(np.diff(values) > 0)


def test_critical_batch_size_of_the_mccandlish_model():
    """S(B) = S_min (1 + B_noise/B): the ratio to perfect scaling from B₀ is (B + B_noise)/(B₀ + B_noise)."""
    batches = 2.0 ** np.arange(0, 16)
    b_noise = 1024.0 - 2.0  # then the ratio is exactly 2 at B = B_noise + 2 B₀ = 1024
    steps = 1000.0 * (1.0 + b_noise / batches)
    assert critical_batch_size(batches, steps) == pytest.approx(1024.0, rel=1e-12)
    assert critical_batch_size(batches, 1000.0 / batches) == math.inf  # perfect scaling throughout


@pytest.mark.parametrize(("b0", "b_noise", "factor"), [(4, 1000, 2.0), (500, 1000, 2.0), (16, 300, 3.0)])
def test_critical_batch_size_is_b_noise_plus_twice_b0_in_the_mccandlish_model(b0, b_noise, factor):
    """The docstring's relation (factor − 1) B_noise + factor B₀, i.e. B_noise + 2B₀ for factor 2."""
    batches = np.geomspace(b0, 1e7, 4000)
    steps = 1000.0 * (1.0 + b_noise / batches)
    expected = (factor - 1.0) * b_noise + factor * b0
    assert critical_batch_size(batches, steps, factor=factor) == pytest.approx(expected, rel=1e-5)
    if b0 == 500:  # B₀ not small against B_noise: the critical batch size is far from B_noise
        assert critical_batch_size(batches, steps) > 1.9 * b_noise


# ---------------------------------------------------------------- results that say "not reached"


def test_target_below_the_steady_state_risk_is_never_reached():
    settings = {"lr": 0.5, "batch_size": 2}
    floor = steady_state_risk(TWO, **settings)
    assert steps_to_target(TWO, 0.9 * floor, **settings) == math.inf
    assert steps_to_target(TWO, 1.1 * floor, **settings) < math.inf
    assert steps_to_target(TWO, 1.1 * floor, max_steps=3, **settings) == math.inf
    assert steps_to_target(TWO, 1.0, **settings) == 0  # the initial risk 0.51 is already below
    tuned = tuned_steps_to_target(TWO, 1e-9, [1, 2], lrs=[0.1, 0.5])
    assert np.all(np.isinf(tuned.steps)) and np.all(np.isnan(tuned.lr))


# ---------------------------------------------------------------- validation

GOOD = {"lrs": [0.1], "momenta": [0.0], "ema_decays": [0.0]}


@pytest.mark.parametrize(
    ("target", "kwargs", "message"),
    [
        (0.0, {}, "target must be a finite number > 0"),
        (-1.0, {}, "target must be a finite number > 0"),
        (math.nan, {}, "target must be a finite number > 0"),
        (0.01, {"lrs": []}, "lrs must be a non-empty"),
        (0.01, {"lrs": [0.1, -0.1]}, "lrs must be a finite number > 0, got -0.1"),
        (0.01, {"momenta": [0.5, 1.0]}, r"momenta must be in \[0, 1\), got 1.0"),
        (0.01, {"ema_decays": [-0.1]}, r"ema_decays must be in \[0, 1\), got -0.1"),
        (0.01, {"batch_sizes": [4, 0]}, "batch_size must be an integer >= 1, got 0"),
        (0.01, {"batch_sizes": [2.5]}, "batch_size must be an integer >= 1, got 2.5"),
        (0.01, {"batch_sizes": []}, "batch_sizes must be a non-empty"),
        (0.01, {"precond_power": 1.5}, r"precond_power must be in \[0, 1\], got 1.5"),
        (0.01, {"max_steps": 0}, "max_steps must be an integer >= 1, got 0"),
        (0.01, {"momenta": [0.9], "ema_decays": [0.9]}, "momentum and ema_decay cannot both be non-zero"),
    ],
)
def test_tuned_search_rejects_bad_arguments_with_a_clear_message(target, kwargs, message):
    arguments = {"batch_sizes": [4], **GOOD, **kwargs}
    with pytest.raises(ValueError, match=message):
        tuned_steps_to_target(TWO, target, **arguments)


def test_single_search_rejects_bad_arguments_and_diverging_settings():
    with pytest.raises(ValueError, match="target must be a finite number > 0"):
        steps_to_target(TWO, -0.5, lr=0.1)
    with pytest.raises(ValueError, match="momentum and ema_decay cannot both be non-zero"):
        steps_to_target(TWO, 0.1, lr=0.1, momentum=0.5, ema_decay=0.5)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        steps_to_target(TWO, 0.1, lr=0.0)
    with pytest.raises(InstabilityError, match="choose lr <"):
        steps_to_target(TWO, 0.1, lr=2.5)


@pytest.mark.parametrize(
    ("batches", "steps", "factor", "message"),
    [
        ([4], [10.0], 2.0, "at least two increasing"),
        ([4, 2], [10.0, 5.0], 2.0, "at least two increasing"),
        ([4, 8], [10.0, math.inf], 2.0, "one finite number > 0 per batch size"),
        ([4, 8], [10.0], 2.0, "one finite number > 0 per batch size"),
        ([4, 8], [10.0, 5.0], 1.0, "factor must be > 1"),
    ],
)
def test_critical_batch_size_rejects_bad_arguments(batches, steps, factor, message):
    with pytest.raises(ValueError, match=message):
        critical_batch_size(batches, steps, factor=factor)


# ---------------------------------------------------------------- the information-theoretic lower bound


def kalman_second_moments(problem, batch_size, steps):
    """E[θ_i(t)²] of SGD with the per-coordinate rates of the posterior mean (a Kalman filter).

    Written from scratch: the posterior variance P of θ*_i after n examples obeys
    1/P' = 1/P + B h_i²/c_i per step, the gain is k = P/(P + c_i/(B h_i²)) and the step
    θ ← θ − (k/h_i) g is SGD with rate η_i = k/h_i; the recursion of chapter 2 then gives E[θ_i²].
    """
    variance = problem.theta0**2 * 1.0
    moment = problem.theta0**2 * 1.0
    moments = [moment.copy()]
    for _ in range(steps):
        observation_noise = problem.c / (batch_size * problem.h**2)
        gain = variance / (variance + observation_noise)
        rate = gain / problem.h
        moment = (1.0 - rate * problem.h) ** 2 * moment + rate**2 * problem.c / batch_size
        variance = 1.0 / (1.0 / variance + 1.0 / observation_noise)
        moments.append(moment.copy())
    return np.array(moments)


def test_information_bound_is_attained_by_the_posterior_mean_in_every_coordinate():
    problem = NQM([2.0, 0.5, 0.01], [0.3, 2.0, 0.05], theta0=[1.0, -2.0, 0.5], counts=[1, 3, 10])
    batch = 3
    moments = kalman_second_moments(problem, batch, 40)
    risk = moments @ (0.5 * problem.h * problem.counts)
    bound = information_bound_risk(problem, batch * np.arange(41))
    np.testing.assert_allclose(bound, risk, rtol=1e-12)
    # with C = H and θ(0)² = 1 the bound is ½ Σ h_i / (1 + n h_i), written out
    n = 4 * 1000
    explicit = 0.5 * np.sum(PAPER.counts * PAPER.h / (1.0 + n * PAPER.h))
    assert information_bound_risk(PAPER, n) == pytest.approx(explicit, rel=1e-12)


def test_information_bound_steps_are_the_first_step_whose_bound_reaches_the_target():
    batches = 2 ** np.arange(0, 22, 3)
    steps = information_bound_steps(PAPER, TARGET, batches)
    for batch, t in zip(batches, steps, strict=True):
        assert information_bound_risk(PAPER, t * batch) <= TARGET
        assert t == 1 or information_bound_risk(PAPER, (t - 1) * batch) > TARGET
    # the bound depends on t B only: perfect scaling, t = ceil(n*/B), down to one step
    needed = steps[0] * batches[0]
    assert np.all(steps == np.maximum(1, np.ceil(needed / batches)))
    assert information_bound_steps(PAPER, 10.0, [4])[0] == 0  # the initial risk 4.7 is below 10


def test_every_tuned_optimiser_needs_at_least_the_information_bound():
    sweep = paper_sweep()
    bound = information_bound_steps(PAPER, TARGET, sweep["SGD", 0.0].batch_sizes)
    for result in sweep.values():
        assert np.all(result.steps >= bound)


# ---------------------------------------------------------------- optimised piecewise-constant schedules


def test_piecewise_schedule_risk_equals_the_step_by_step_recursion():
    rates = [1.5, 0.9, 0.3, 0.05, 0.01]  # η h_1 > 1 in the first piece
    for steps in (0, 3, 23, 100):
        lengths = [len(part) for part in np.array_split(np.arange(steps), len(rates))]
        schedule = np.repeat(rates, lengths)
        curve = schedule_risk_curve(TWO, schedule, batch_size=8) if steps else [TWO.initial_risk]
        assert piecewise_schedule_risk(TWO, rates, steps, batch_size=8) == pytest.approx(curve[-1], rel=1e-11)


def test_one_piece_schedule_is_the_best_constant_rate():
    steps, batch = 50, 2
    lrs = np.geomspace(1e-4, 1.9999, 20_000)
    brute = min(piecewise_schedule_risk(TWO, [lr], steps, batch_size=batch) for lr in lrs)
    found = optimal_piecewise_schedule(TWO, steps, batch_size=batch, pieces=1)
    assert found.risk == pytest.approx(brute, rel=1e-6)


def test_two_piece_schedule_on_one_coordinate_matches_brute_force():
    one = NQM([1.0], [0.5], theta0=[1.0])
    steps, batch = 30, 4
    grid = np.geomspace(1e-3, 1.999, 400)
    lengths = [15, 15]
    # brute force over all pairs, vectorised with the closed form of one piece (written here)
    def piece(moment, lr, length):
        r2 = (1.0 - lr) ** 2
        floor = lr * 0.5 / (batch * (2.0 - lr))
        return floor + r2**length * (moment - floor)

    moments = piece(piece(1.0, grid[:, None], lengths[0]), grid[None, :], lengths[1])
    brute = 0.5 * moments.min()
    found = optimal_piecewise_schedule(one, steps, batch_size=batch, pieces=2)
    assert found.risk <= brute * (1 + 1e-9)
    assert found.risk == pytest.approx(brute, rel=1e-3)


def test_one_piece_per_step_on_one_coordinate_reaches_the_information_bound():
    one = NQM([1.0], [0.5], theta0=[1.0])
    found = optimal_piecewise_schedule(one, 20, batch_size=1, pieces=20)
    assert found.risk == pytest.approx(information_bound_risk(one, 20), rel=1e-6)


@pytest.fixture(scope="module")
def scheduled():
    return scheduled_steps_to_target(PAPER, TARGET, [4, 64, 4096, 2**20])


def test_schedule_is_never_worse_than_the_best_constant_rate_nor_better_than_the_bound(scheduled):
    assert np.all(scheduled.steps <= scheduled.constant_steps)
    assert np.all(scheduled.constant_steps <= scheduled.grid_steps)
    assert np.all(scheduled.steps >= scheduled.bound_steps)
    grid = tuned_steps_to_target(PAPER, TARGET, scheduled.batch_sizes, lrs=PAPER_LRS)
    np.testing.assert_array_equal(scheduled.grid_steps, grid.steps)


def test_one_piece_search_finds_the_best_constant_rate_of_a_fine_grid(scheduled):
    for k, (low, high) in ((0, (0.012, 0.02)), (3, (1.5, 1.99999))):
        fine = np.geomspace(low, high, 3000)
        brute = tuned_steps_to_target(PAPER, TARGET, [scheduled.batch_sizes[k]], lrs=fine).steps[0]
        assert brute * (1 - 1e-3) <= scheduled.constant_steps[k] <= brute


def test_optimised_schedule_reaches_the_target_in_the_step_by_step_recursion(scheduled):
    for k in (2, 3):  # the batch sizes whose step counts are short enough to iterate
        steps = int(scheduled.steps[k])
        lengths = [len(part) for part in np.array_split(np.arange(steps), SCHEDULE_PIECES)]
        schedule = np.repeat(scheduled.lrs[k], lengths)
        curve = schedule_risk_curve(PAPER, schedule, batch_size=int(scheduled.batch_sizes[k]))
        assert curve[-1] <= TARGET


def test_schedule_gains_much_at_small_batch_sizes_and_little_at_large_ones(scheduled):
    gain = scheduled.constant_steps / scheduled.steps
    assert gain[0] > 5  # B = 4: more than five times fewer steps than the best constant rate
    assert gain[-1] < 1.02  # B = 2²⁰: less than 2% fewer
    assert scheduled.steps[0] / scheduled.bound_steps[0] < 2  # within a factor 2 of the bound at B = 4


def test_schedule_search_cannot_go_one_step_lower_with_a_longer_search(scheduled, monkeypatch):
    import nqm_lib.batch_scaling.piecewise as piecewise

    monkeypatch.setattr(piecewise, "_SWEEPS", 40)
    monkeypatch.setattr(piecewise, "_CANDIDATES", 33)
    for k in (0, 3):
        shorter = int(scheduled.steps[k]) - 1
        for start in (scheduled.lrs[k], np.full(SCHEDULE_PIECES, scheduled.constant_lr[k])):
            found = optimal_piecewise_schedule(
                PAPER, shorter, batch_size=int(scheduled.batch_sizes[k]), start=start
            )
            assert found.risk > TARGET


def test_schedule_functions_reject_bad_arguments():
    with pytest.raises(ValueError, match="pieces must be an integer >= 1, got 0"):
        optimal_piecewise_schedule(TWO, 10, pieces=0)
    with pytest.raises(ValueError, match=r"start must hold one rate per piece \(3\), got 2"):
        optimal_piecewise_schedule(TWO, 10, pieces=3, start=[0.1, 0.2])
    with pytest.raises(InstabilityError, match="keep every rate <"):
        piecewise_schedule_risk(TWO, [0.5, 2.5], 10)
    with pytest.raises(ValueError, match="lrs must be a finite number > 0"):
        piecewise_schedule_risk(TWO, [0.5, -0.1], 10)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        piecewise_schedule_risk(TWO, [0.5], -1)
    with pytest.raises(ValueError, match="target must be a finite number > 0"):
        scheduled_steps_to_target(TWO, 0.0, [4])
    with pytest.raises(ValueError, match="samples must be finite numbers >= 0"):
        information_bound_risk(TWO, -1.0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        information_bound_steps(TWO, 0.01, [0])


# ---------------------------------------------------------------- the chapter's interactive figure


def test_interactive_figure_draws_every_selection_and_rejects_an_empty_one():
    fig = steps_vs_batch_figure(("SGD", "EMA"), (0.0, 0.5), show_critical=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[1].get_lines()) == 4  # one tuned-learning-rate curve per method × p
    with pytest.raises(ValueError, match="select at least one entry of methods"):
        steps_vs_batch_figure((), (0.0,))
    with pytest.raises(ValueError, match="precond_powers must contain only values"):
        steps_vs_batch_figure(("SGD",), (0.3,))
