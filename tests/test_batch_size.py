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
    critical_batch_size,
    risk_at_step,
    steps_to_target,
    steps_to_target_grid,
    tuned_steps_to_target,
)
from nqm_lib.figures_batch_size import METHODS, paper_sweep, steps_vs_batch_figure

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


# ---------------------------------------------------------------- the chapter's interactive figure


def test_interactive_figure_draws_every_selection_and_rejects_an_empty_one():
    fig = steps_vs_batch_figure(("SGD", "EMA"), (0.0, 0.5), show_critical=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[1].get_lines()) == 4  # one tuned-learning-rate curve per method × p
    with pytest.raises(ValueError, match="select at least one entry of methods"):
        steps_vs_batch_figure((), (0.0,))
    with pytest.raises(ValueError, match="precond_powers must contain only values"):
        steps_vs_batch_figure(("SGD",), (0.3,))
