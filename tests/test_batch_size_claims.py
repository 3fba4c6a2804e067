"""Chapter 6's claims about schedules, momentum, the noise scale and the linear rule, checked numerically.

Each test is named after the claim the chapter makes. Expected values come from computations
written here — long-double recursions of the second moments, closed forms of SGD's and heavy
ball's risk, the Chebyshev polynomials of ``numpy.polynomial`` — not from the code under test.
"""

import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from numpy.polynomial import chebyshev

from nqm_lib import NQM, risk_curve, simulate
from nqm_lib.batch_scaling import (
    PAPER_LRS,
    chebyshev_lrs,
    chebyshev_steps_to_target,
    critical_batch_size,
    per_step_schedule_risk,
    scheduled_steps_to_target,
    tuned_steps_to_target,
)
from nqm_lib.figures_batch_size import (
    SWEEP_BATCH_SIZES,
    _decade_label,
    examples_vs_steps_figure,
    first_crossing_figure,
    noise_scale_figure,
    paper_sweep,
    schedules_figure,
    sgd_scaling_figure,
    six_methods_figure,
    steps_vs_lr_figure,
    tuned_lr_figure,
)
from nqm_lib.noise_scale import nqm_noise_scales

matplotlib.use("Agg")

PAPER = NQM.paper_spectrum()
NOISE_FREE = NQM(PAPER.h, 0.0 * PAPER.c, PAPER.theta0, counts=PAPER.counts)
TARGET = 0.01
WEIGHT = 0.5 * PAPER.h * PAPER.counts

# ---------------------------------------------------------------- independent oracles


def long_double_risk(problem, lrs, batch_size):
    """E[L(θ_T)] after the steps ``lrs`` by the plain recursion E[θ²] ← (1 − ηh)² E[θ²] + η²c/B.

    In long double (exponent range ±4932), so that the huge intermediate values of unstable steps
    (factors up to 10⁸ per step) do not overflow, and without the library's logarithms.
    """
    h, c = problem.h.astype(np.longdouble), problem.c.astype(np.longdouble)
    moment = (problem.theta0**2).astype(np.longdouble)
    for lr in np.asarray(lrs, dtype=np.longdouble):
        moment = (1 - lr * h) ** 2 * moment + lr**2 * c / batch_size
    return float(moment @ (0.5 * problem.h * problem.counts).astype(np.longdouble))


def chebyshev_factor(h, steps, low, high):
    """T_T((high + low − 2h)/(high − low)) / T_T((high + low)/(high − low)), with numpy's Chebyshev series."""
    coefficients = np.zeros(steps + 1)
    coefficients[-1] = 1.0
    return chebyshev.chebval((high + low - 2 * h) / (high - low), coefficients) / chebyshev.chebval(
        (high + low) / (high - low), coefficients
    )


def sgd_second_moments(problem, t, *, lr, batch_size):
    """E[θ_i(t)²] of plain SGD: s + r^{2t}(θ_i(0)² − s) with s = η²c/B / (1 − r²), written out."""
    r2 = (1.0 - lr * problem.h) ** 2
    floor = lr**2 * problem.c / batch_size / (1.0 - r2)
    return floor + r2**t * (problem.theta0**2 - floor)


def sgd_floor(problem, lr, batch_size):
    """Σ_i n_i η c_i / (2B(2 − η h_i)), chapter 2's steady-state risk."""
    return float(np.sum(problem.counts * lr * problem.c / (2 * batch_size * (2 - lr * problem.h))))


# ---------------------------------------------------------------- Chebyshev (per-step) steps


def test_chebyshev_steps_multiply_every_coordinate_by_the_scaled_chebyshev_polynomial():
    h = np.geomspace(1e-3, 1.0, 50)
    for steps in (1, 2, 7, 30):
        lrs = chebyshev_lrs(steps, 1e-3, 1.0)
        product = np.prod(1.0 - np.outer(lrs, h), axis=0)
        np.testing.assert_allclose(product, chebyshev_factor(h, steps, 1e-3, 1.0), rtol=1e-8, atol=1e-14)
        assert np.all(np.diff(lrs) < 0)  # largest step first


def test_per_step_schedule_risk_equals_the_long_double_recursion_also_for_unstable_steps():
    problem = NQM([1.0, 0.3, 0.01], [0.5, 0.3, 0.02], theta0=[1.0, -2.0, 0.5], counts=[1, 2, 5])
    rates = [40.0, 3.0, 0.2, 1.5, 0.9, 0.05]  # η h_1 up to 40: far beyond 2
    for batch in (1, 16):
        expected = long_double_risk(problem, rates, batch)
        assert per_step_schedule_risk(problem, rates, batch_size=batch) == pytest.approx(expected, rel=1e-10)


def test_chebyshev_steps_reach_the_noise_free_target_in_174_steps_against_6891_for_a_constant_rate():
    """Chapter 6: per-step rates are not bound by κ, as constant ones are (best constant: 6,891 steps)."""
    low, high = PAPER.h.min(), PAPER.h.max()
    risks = [
        float(np.sum(WEIGHT * PAPER.theta0**2 * chebyshev_factor(PAPER.h, steps, low, high) ** 2))
        for steps in range(1, 201)
    ]
    first = 1 + int(np.argmax(np.array(risks) <= TARGET))
    assert first == 174
    assert chebyshev_steps_to_target(NOISE_FREE, TARGET, [1])[0] == first
    constant = tuned_steps_to_target(NOISE_FREE, TARGET, [1], lrs=np.geomspace(1.98, 1.99999, 400)).steps[0]
    assert constant == 6891
    assert first < constant / 30


def test_half_of_the_chebyshev_steps_are_unstable_and_the_largest_is_thousands_of_times_the_limit():
    lrs = chebyshev_lrs(174, PAPER.h.min(), PAPER.h.max())
    assert np.sum(lrs * PAPER.h.max() > 2) == 87
    assert lrs.max() / (2 / PAPER.h.max()) > 4000


@pytest.mark.parametrize(
    ("batch", "steps"), [(1024, 1461), (4096, 646), (2**14, 312), (2**16, 195), (2**18, 177), (2**20, 176)]
)
def test_chebyshev_steps_from_b1024_on_are_first_crossings_of_the_exact_risk(batch, steps):
    """Every shorter horizon stays above the target (long-double recursion); this one reaches it."""
    low, high = PAPER.h.min(), PAPER.h.max()
    assert long_double_risk(PAPER, chebyshev_lrs(steps, low, high), batch) <= TARGET
    for shorter in range(steps - 30, steps):
        assert long_double_risk(PAPER, chebyshev_lrs(shorter, low, high), batch) > TARGET
    assert chebyshev_steps_to_target(PAPER, TARGET, [batch], max_steps=steps)[0] == steps


def test_chebyshev_steps_do_not_reach_the_target_at_b256_and_below_within_1500_steps():
    """Chapter 6: no horizon up to 1500 steps; at B = 256 the risk after 1500 is still 0.038."""
    found = chebyshev_steps_to_target(PAPER, TARGET, [4, 16, 64, 256, 1024], max_steps=1500)
    assert np.all(np.isinf(found[:4])) and found[4] == 1461
    after_1500 = long_double_risk(PAPER, chebyshev_lrs(1500, PAPER.h.min(), PAPER.h.max()), 256)
    assert after_1500 == pytest.approx(0.0385, abs=5e-4)  # 3.8 times the target


def test_chebyshev_steps_beat_ten_pieces_5_fold_at_b1024_and_11_fold_at_b4096():
    pieces = scheduled_steps_to_target(PAPER, TARGET, [1024, 4096]).steps
    np.testing.assert_array_equal(pieces, [7912, 7333])
    gains = pieces / np.array([1461, 646])  # the first crossings checked above
    np.testing.assert_allclose(gains, [5.42, 11.35], atol=0.01)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chebyshev_search_skipping_horizons_by_its_lower_bound_finds_every_first_crossing(seed):
    """The search skips a horizon when a few coordinates' risk already exceeds the target; trying
    every horizon with the long-double recursion must give the same counts."""
    rng = np.random.default_rng(seed)
    h = np.sort(rng.uniform(1e-3, 1.0, 12))[::-1]
    noise, start, counts = rng.uniform(0.01, 1.0, 12) * h, rng.normal(size=12), rng.integers(1, 9, 12)
    problem = NQM(h, noise, theta0=start, counts=counts)
    target, batches, horizon = 0.002 * problem.initial_risk, [1, 8, 64, 512, 4096], 150
    found = chebyshev_steps_to_target(problem, target, batches, max_steps=horizon)
    low, high = problem.h.min(), problem.h.max()
    for batch, count in zip(batches, found, strict=True):
        lrs = [chebyshev_lrs(steps, low, high) for steps in range(1, horizon + 1)]
        risks = [long_double_risk(problem, rates, batch) for rates in lrs]
        reached = np.flatnonzero(np.array(risks) <= target)
        assert count == (reached[0] + 1 if reached.size else np.inf)
    assert np.isfinite(found).any() and np.isinf(found).any()  # both outcomes are exercised


def test_the_order_of_the_chebyshev_steps_matters_with_noise_largest_first():
    lrs = chebyshev_lrs(176, PAPER.h.min(), PAPER.h.max())
    assert long_double_risk(PAPER, lrs, 2**20) <= TARGET
    assert long_double_risk(PAPER, lrs[::-1], 2**20) > 1e100  # smallest first: noise amplified


def test_per_step_functions_reject_bad_arguments():
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        chebyshev_lrs(0, 0.1, 1.0)
    with pytest.raises(ValueError, match="low must be smaller than high"):
        chebyshev_lrs(3, 1.0, 1.0)
    with pytest.raises(ValueError, match="low must be a finite number > 0"):
        chebyshev_lrs(3, -1.0, 1.0)
    with pytest.raises(ValueError, match="lrs must be a finite number > 0"):
        per_step_schedule_risk(PAPER, [0.5, -1.0])
    with pytest.raises(ValueError, match="overflows"):
        per_step_schedule_risk(PAPER, [1e200, 1e200])
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1"):
        chebyshev_steps_to_target(PAPER, TARGET, [4], max_steps=0)
    with pytest.raises(ValueError, match="at least two different curvatures"):
        chebyshev_steps_to_target(NQM([1.0], [1.0]), 0.1, [1])


# ---------------------------------------------------------------- how the ten-piece schedules work


@pytest.fixture(scope="module")
def scheduled():
    return scheduled_steps_to_target(PAPER, TARGET, [4, 16, 64, 256, 1024, 2**20])


def test_optimised_pieces_sit_at_the_stability_cap_from_b16_on_and_the_last_piece_is_lower(scheduled):
    cap = (1 - 1e-6) * 2 / PAPER.h.max()
    at_cap = np.sum(np.isclose(scheduled.lrs, cap, rtol=1e-9, atol=0), axis=1)
    np.testing.assert_array_equal(at_cap, [0, 1, 4, 8, 9, 9])
    assert np.all(scheduled.lrs[:, -1] < cap)
    assert scheduled.lrs[4, -1] == pytest.approx(0.5435, abs=5e-4)  # B = 1024
    assert scheduled.lrs[5, -1] == pytest.approx(1.9762, abs=5e-4)  # B = 2²⁰


def test_the_stability_cap_binds_raising_it_lowers_the_optimised_risk(scheduled):
    """At B = 1024 and the schedule's own horizon, rates allowed above 2/h_1 reach a lower risk."""
    import nqm_lib.batch_scaling.piecewise as piecewise

    steps = int(scheduled.steps[4])
    search = piecewise._schedule_search(PAPER, np.array([1024]))
    lengths = piecewise._piece_lengths(np.array([steps]), 10)
    capped = search.risk(np.log(scheduled.lrs[4])[None, :], lengths)[0]
    raised = piecewise._ScheduleSearch(
        search.h, search.noise, search.start, search.weight, search.log_low, math.log(2.05)
    )
    with np.errstate(over="ignore", invalid="ignore"):  # candidates far above 2/h_1 overflow: rejected
        log_lrs, risk = raised.improve(np.log(scheduled.lrs[4])[None, :], lengths)
    assert risk[0] < capped * 0.97
    assert np.exp(log_lrs).max() * PAPER.h.max() > 2  # by pieces that are unstable on their own
    assert capped <= TARGET


# ---------------------------------------------------- momentum at small batch sizes (issue 21, item 5)


def test_tuned_momentum_at_b4_has_sgds_effective_rate_but_fails_chapter_3s_equivalence_criterion():
    momentum, sgd = paper_sweep()["momentum", 0.0], paper_sweep()["SGD", 0.0]
    lr, beta = float(momentum.lr[0]), float(momentum.momentum[0])
    assert lr / (1 - beta) == pytest.approx(sgd.lr[0], rel=1e-9)
    q = beta * lr * PAPER.h / (1 - beta) ** 2
    assert q[0] == pytest.approx(1520, rel=1e-3)  # q_1 ≫ 1
    assert q[-1] == pytest.approx(0.152, rel=1e-2)
    under = beta > (1 - np.sqrt(lr * PAPER.h)) ** 2
    assert under.sum() == 78 and not under[-1]  # the flattest bins are over-damped


def test_momentum_floor_equals_sgds_at_the_effective_rate_and_the_flat_coordinates_explain_its_gain():
    momentum, sgd = paper_sweep()["momentum", 0.0], paper_sweep()["SGD", 0.0]
    lr, beta = float(momentum.lr[0]), float(momentum.momentum[0])
    # Theorem 1's steady state, written out: η c (1 + β) / (2B (1 − β)(2 + 2β − η h))
    denominator = 8 * (1 - beta) * (2 + 2 * beta - lr * PAPER.h)  # 2B(1 − β)(2 + 2β − ηh), B = 4
    floor = np.sum(PAPER.counts * lr * PAPER.c * (1 + beta) / denominator)
    assert floor / sgd_floor(PAPER, lr / (1 - beta), 4) == pytest.approx(1.0, abs=2e-3)
    roots = np.roots([1.0, -(1 - lr * PAPER.h[-1] + beta), beta])
    rate_ratio = (1 - np.abs(roots).max()) / (lr * PAPER.h[-1] / (1 - beta))
    gain = sgd.steps[0] / momentum.steps[0]
    assert rate_ratio == pytest.approx(1.23, abs=0.01)
    assert 1.1 < gain < rate_ratio


# ---------------------------------------------------- prop-bs-monotone, narrowed (issue 21, item 6)


def dampened_noise_part(lr, momentum, dampening, steps):
    """N(t) of one coordinate (h = c = B = 1, θ(0) = 0) under PyTorch's dampened momentum.

    v₁ = g₀ (the first step is undamped), then v ← βv + (1 − δ)g; θ ← θ − ηv. State (θ, v),
    covariance recursion written out; returns E[½ θ_t²], t = 0..steps.
    """
    cov = np.zeros((2, 2))
    out = [0.0]
    for t in range(steps):
        scale = 1.0 if t == 0 else 1.0 - dampening
        keep = 0.0 if t == 0 else momentum
        # v' = keep v + scale (θ + ε); θ' = θ − η v'
        a = np.array([[1 - lr * scale, -lr * keep], [scale, keep]])
        u = np.array([-lr * scale, scale])
        cov = a @ cov @ a.T + np.outer(u, u)
        out.append(0.5 * cov[0, 0])
    return np.array(out)


def test_with_dampening_the_noise_part_falls_from_step_4_to_step_10():
    noise = dampened_noise_part(1.0, 0.9, 0.9, 16)
    noise_only = NQM([1.0], [1.0], theta0=[0.0])
    library = risk_curve(noise_only, 16, lr=1.0, batch_size=1, momentum=0.9, dampening=0.9)
    np.testing.assert_allclose(library, noise, rtol=1e-12, atol=1e-15)
    falling = np.flatnonzero(np.diff(noise) < 0)
    assert falling[0] == 4 and np.all(np.diff(noise)[4:10] < 0) and np.diff(noise)[10] >= 0


@pytest.mark.parametrize(
    "settings",
    [
        {"lr": 0.5, "momentum": 0.9, "dampening": 0.9},
        {"lr": 0.3, "momentum": 0.8, "ema_decay": 0.9},  # a 3×3 state
        {"lr": 0.3, "momentum": 0.5, "nesterov": True},
    ],
)
def test_the_risk_is_d_plus_n_over_b_for_time_varying_and_three_state_optimisers(settings):
    problem = NQM([1.0, 0.1], [1.0, 0.3], theta0=[1.0, -1.0])
    curves = [risk_curve(problem, 60, batch_size=b, **settings) for b in (1, 2, 4)]
    # linear in 1/B: risk(1) − risk(2) = 2 (risk(2) − risk(4)), with N ≥ 0
    np.testing.assert_allclose(curves[0] - curves[1], 2 * (curves[1] - curves[2]), rtol=1e-9, atol=1e-15)
    assert np.all(curves[0] - curves[1] >= -1e-15)


# ---------------------------------------------------------------- the linear rule (issue 21, item 7)


def test_the_linear_rule_holds_only_approximately_0_83_to_0_79_for_b4_to_b128():
    sum_c = float(np.sum(PAPER.counts * PAPER.c))
    assert (0.88 / 0.75) ** (1 / 59) - 1 == pytest.approx(0.0027, abs=5e-5)  # the fine grid's steps
    ratios = []
    for batch in (4, 8, 16, 32, 64, 128):
        rule = 4 * batch * TARGET / sum_c
        best = tuned_steps_to_target(PAPER, TARGET, [batch], lrs=rule * np.geomspace(0.75, 0.88, 60))
        ratios.append(float(best.lr[0] / rule))
    assert round(ratios[0], 2) == 0.83 and round(ratios[-1], 2) == 0.79
    assert ratios[0] == pytest.approx(0.829, abs=2e-3) and ratios[-1] == pytest.approx(0.787, abs=2e-3)
    assert np.all(np.diff(ratios) <= 0) and ratios[0] - ratios[-1] > 0.03  # it drifts as η h_1 grows
    # at B = 4 the floor of the best rate is a little below the target
    assert 0.8 * TARGET < sgd_floor(PAPER, ratios[0] * 4 * 4 * TARGET / sum_c, 4) < TARGET


# ---------------------------------------------------------------- the gradient noise scale


def test_noise_scales_of_a_binned_problem_are_those_of_the_problem_it_represents():
    small = NQM.paper_spectrum(200, bins=20)
    expanded = NQM(np.repeat(small.h, small.counts.astype(int)), np.repeat(small.c, small.counts.astype(int)))
    moments = np.linspace(0.2, 1.0, small.d)
    binned = nqm_noise_scales(small, moments)
    full = nqm_noise_scales(expanded, np.repeat(moments, small.counts.astype(int)))
    assert binned.simple == pytest.approx(full.simple, rel=1e-12)
    assert binned.critical == pytest.approx(full.critical, rel=1e-12)


@pytest.fixture(scope="module")
def noise_scale_rows():
    """Per target: critical batch size, fitted B_noise, measured B_noise and B_simple at the crossing."""
    rows = {}
    for target in (0.1, 0.01, 0.001):
        tuned = tuned_steps_to_target(PAPER, target, SWEEP_BATCH_SIZES, lrs=PAPER_LRS)
        s_min = tuned_steps_to_target(NOISE_FREE, target, [1], lrs=PAPER_LRS).steps[0]
        moments = sgd_second_moments(PAPER, tuned.steps[0], lr=tuned.lr[0], batch_size=4)
        measured = np.sum(PAPER.counts * PAPER.h * PAPER.c) / np.sum(PAPER.counts * PAPER.h**3 * moments)
        simple = np.sum(PAPER.counts * PAPER.c) / np.sum(PAPER.counts * PAPER.h**2 * moments)
        rows[target] = (
            critical_batch_size(tuned.batch_sizes, tuned.steps),
            4 * (tuned.steps[0] / s_min - 1),
            measured,
            simple,
        )
    return rows


def test_measured_noise_scale_tracks_the_fitted_one_and_both_grow_like_one_over_the_target(noise_scale_rows):
    for critical, fitted, measured, _ in noise_scale_rows.values():
        assert 0.7 < measured / fitted < 1.1
        assert measured < fitted * 1.1 < critical * 1.1
    measured = [row[2] for row in noise_scale_rows.values()]
    assert 7 < measured[1] / measured[0] < 13 and 7 < measured[2] / measured[1] < 13  # ~ 10× per decade


def test_simple_noise_scale_overestimates_the_critical_one_about_fourfold(noise_scale_rows):
    _, _, measured, simple = noise_scale_rows[0.01]
    assert simple / measured == pytest.approx(4.36, abs=0.05)


def critical_noise_scale(problem, moments):
    """B_noise = Σ n h c / Σ n h³ E[θ²], written out."""
    return np.sum(problem.counts * problem.h * problem.c) / np.sum(problem.counts * problem.h**3 * moments)


@pytest.mark.parametrize(("target", "plateau"), [(0.1, 82.9), (0.01, 707.6), (0.001, 7120.4)])
def test_noise_scale_levels_off_within_half_a_percent_of_the_run_at_b_over_eta_times_sums(target, plateau):
    """Chapter 6: the plateau is (B/η) Σ h c / Σ h² c/(2 − ηh), reached while the risk is still 1.4–2.6."""
    tuned = tuned_steps_to_target(PAPER, target, [4], lrs=PAPER_LRS)
    lr, steps = float(tuned.lr[0]), int(tuned.steps[0])
    h, c, n = PAPER.h, PAPER.c, PAPER.counts
    formula = 4 / lr * np.sum(n * h * c) / np.sum(n * h**2 * c / (2 - lr * h))
    assert formula == pytest.approx(plateau, abs=0.05)

    def scale(t):
        return critical_noise_scale(PAPER, sgd_second_moments(PAPER, t, lr=lr, batch_size=4))

    assert scale(steps) == pytest.approx(formula, rel=1e-6)  # where the run reaches the target
    t = np.unique(np.geomspace(1, steps, 400).astype(int))
    along = np.array([scale(k) for k in t])
    assert np.all(np.diff(along) >= 0)  # it only grows, and not beyond the plateau
    low, high = 0, steps  # the first step at 95% of the plateau, by bisection (it is monotone)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if scale(middle) >= 0.95 * formula else (middle, high)
    assert 0.001 < high / steps < 0.005
    moments = sgd_second_moments(PAPER, high, lr=lr, batch_size=4)
    assert 1.4 < float(np.sum(0.5 * n * h * moments)) < 2.6  # the risk there: far above the target


def test_noise_scale_grows_across_targets_because_the_tuned_rate_shrinks():
    """B_noise at the plateau times η is almost the same for every target: B_noise ∝ 1/η."""
    h, c, n = PAPER.h, PAPER.c, PAPER.counts
    products = []
    for target in (0.1, 0.01, 0.001):
        lr = float(tuned_steps_to_target(PAPER, target, [4], lrs=PAPER_LRS).lr[0])
        plateau = critical_noise_scale(PAPER, lr * c / (4 * h * (2 - lr * h)))  # every E[θ²] at its floor
        products.append(lr * plateau)
        assert products[-1] == pytest.approx(2 * 4 * np.sum(n * h * c) / np.sum(n * h**2 * c), rel=0.07)
    assert max(products) / min(products) < 1.07


# ---------------------------------------------------------------- steps against examples


def test_at_the_critical_batch_size_the_examples_have_doubled_and_beyond_it_fewer_steps_cost_many_examples():
    sgd = paper_sweep()["SGD", 0.0]
    examples = sgd.batch_sizes * sgd.steps
    critical = critical_batch_size(sgd.batch_sizes, sgd.steps)
    at_critical = np.exp(np.interp(np.log(critical), np.log(sgd.batch_sizes), np.log(examples)))
    assert at_critical == pytest.approx(2 * examples[0], rel=1e-9)
    steps_factor, examples_factor = sgd.steps[0] / sgd.steps[-1], examples[-1] / examples[0]
    assert steps_factor == pytest.approx(208.0, abs=0.1) and examples_factor > 1000


# ---------------------------------------------------------------- the chapter's figure functions


def test_decade_labels_are_plain_text_powers_of_ten():
    assert [_decade_label(v, 0) for v in (1.0, 10.0, 1e6, 1e-3, 3.0)] == ["1", "10¹", "10⁶", "10⁻³", ""]


def test_static_figure_functions_draw_what_they_say():
    sweep = paper_sweep()
    sgd = sweep["SGD", 0.0]
    figures = [
        first_crossing_figure(
            PAPER, TARGET, sgd={"lr": float(sgd.lr[0]), "batch_size": 4},
            momentum={"lr": 1.5199110829529332, "momentum": 0.9736334910126965, "batch_size": 16384},
            window=(300, 380), bisection_step=350,
        ),
        steps_vs_lr_figure(PAPER_LRS, np.ones((2, PAPER_LRS.size)), [4, 64], stability_limit=2.0),
        sgd_scaling_figure(sgd, noise_free_steps=7352, b_noise=828.0),
        tuned_lr_figure(sweep, rule=SWEEP_BATCH_SIZES * 0.004, stability_limit=2.0),
        examples_vs_steps_figure(
            sweep, [("SGD", 0.0), ("momentum", 0.0)], noise_free_steps=7352, b_noise=828.0
        ),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
    assert len(figures[0].axes) == 2
    scales = nqm_noise_scales(PAPER, np.ones((3, PAPER.d)))
    run = {0.1: (np.array([4.0, 1.0, 0.1]), scales)}
    fig = noise_scale_figure(run, fitted={0.1: 1.0}, critical={0.1: 2.0})
    assert len(fig.axes[0].get_lines()) == 4  # the run, then measured, fitted and critical markers
    two = NQM([1.0, 0.1], [1.0, 0.1])
    six = six_methods_figure(two, 20, {"SGD": {}, "SGD + momentum": {"momentum": 0.5}}, {("SGD", 1): 0.1,
                             ("SGD + momentum", 1): 0.05}, [1])  # fmt: skip
    assert [line.get_linestyle() for line in six.axes[0].get_lines()] == ["-", "--"]


def test_schedules_figure_draws_per_step_counts_only_where_they_are_finite(scheduled):
    per_step = np.array([np.inf, np.inf, np.inf, np.inf, np.inf, 176.0])
    fig = schedules_figure(scheduled, per_step=per_step, shown=[0, 5], stability_limit=2.0)
    top, bottom = fig.axes
    chebyshev_line = [line for line in top.get_lines() if "Chebyshev" in str(line.get_label())][0]
    assert len(chebyshev_line.get_xdata()) == 1
    assert len(bottom.patches) == 2  # one staircase per shown batch size
    capped = schedules_figure(scheduled, per_step=per_step, shown=[0], stability_limit=2.0, per_step_cap=1500)
    marks = [line for line in capped.axes[0].get_lines() if "none within 1,500" in str(line.get_label())][0]
    np.testing.assert_array_equal(marks.get_xdata(), scheduled.batch_sizes[:5])
    np.testing.assert_array_equal(marks.get_ydata(), np.full(5, 1500.0))


# ---------------------------------------------------------------- the tuned learning rates (review, item 6)


def test_momentums_effective_rate_grows_far_past_sgds_limit_and_levels_off_at_about_73_from_b32768():
    momentum = paper_sweep()["momentum", 0.0]
    effective = momentum.lr / (1 - momentum.momentum)
    assert effective[-1] == pytest.approx(72.65, abs=0.01) and effective[-1] > 30 * 2 / PAPER.h.max()
    flat = effective >= 0.97 * effective[-1]
    assert momentum.batch_sizes[np.argmax(flat)] == 32768 and np.all(flat[np.argmax(flat) :])
    assert np.all(np.diff(effective) >= 0)


# ---------------------------------------------------------------- six methods: Monte Carlo (review, item 7)


def test_the_largest_deviation_of_1000_correlated_steps_is_typically_2_to_3_standard_errors():
    """The six-method comparison's Monte Carlo check (SGD + EMA, γ = 0.99, B = 1, 1000 runs): its seed
    6 deviates by 1.5 standard errors at most, on the lucky side; other seeds reach up to about 3."""
    problem = NQM.from_data_model([1.0, 0.1], [1.0, 1.0], theta0=[1.0, 1.0])
    lrs = np.geomspace(1e-4, 0.999 * 2 / problem.h.max(), 80)  # the chapter's grid for SGD + EMA
    finals = [risk_curve(problem, 1000, lr=lr, batch_size=1, ema_decay=0.99)[-1] for lr in lrs]
    lr = lrs[int(np.argmin(finals))]
    exact = risk_curve(problem, 1000, lr=lr, batch_size=1, ema_decay=0.99)

    def largest_z(seed):
        run = simulate(problem, 1000, lr=lr, batch_size=1, trials=1000, seed=seed, ema_decay=0.99)
        return float(np.max(np.abs(run.risk - exact)[1:] / run.risk_stderr[1:]))

    assert largest_z(6) == pytest.approx(1.50, abs=0.01)
    others = np.array([largest_z(seed) for seed in range(100, 124)])
    assert 1.8 < np.median(others) < 2.5 and others.max() < 3.6
    assert np.mean(others > largest_z(6)) > 0.8
