"""Chapter 4: the EMA of SGD iterates (Theorem 2), and uniform / tail averaging (``nqm_lib.averaging``).

Independent oracles written here:

* a vectorised Monte Carlo of SGD that carries, in the same runs, the uniform average
  ``(θ_0 + … + θ_t)/(t + 1)``, the tail average from step ``s`` and an EMA ``γ``
  (``numpy.random.default_rng``, seeded);
* the *pairwise-covariance* oracle for averages: for plain SGD and ``j ≤ k``,
  ``E[θ_j θ_k] = r^{k−j} E[θ_j²]`` with ``E[θ_j²] = r^{2j} θ_0² + η² c/B · (1 − r^{2j})/(1 − r²)``,
  so ``E[(Σ_{j=s}^t θ_j)²]`` is a block sum of an explicit Gram matrix (2-D cumulative sums);
* the EMA's mean from its own recursion, ``m ← r m`` and ``m̃ ← γ m̃ + (1 − γ) m``;
* Theorem 2's factor and the seed's variant, typed here from their formulas.

The exact engines checked against them are ``nqm_lib.theory`` (stationary Lyapunov solve,
moment recursion) and ``nqm_lib.averaging`` (time-varying second-moment recursion).
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from nqm_lib import NQM, InstabilityError, risk_curve, steady_state_risk, steady_state_risk_per_coordinate
from nqm_lib.averaging import (
    averaged_risk_curve,
    averaged_risk_curve_per_coordinate,
    averaging_decays,
    decaying_average_risk_per_coordinate,
)
from nqm_lib.figures_ema import averaging_figure, ema_risk_figure, theorem2_bound
from nqm_lib.formulas import ema_bias_factor, ema_variance_reduction_factor

plt.switch_backend("Agg")

WORKED = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
NOISE_FREE = NQM([50.0, 1.0], 0.0, theta0=[1.0, 1.0])
LR = 0.02  # η h_1 = 1, η h_2 = 0.02: r = (0, 0.98)
RTOL = 1e-10


# ---------------------------------------------------------------- independent oracles


def theorem2_factor(x, gamma):
    """Theorem 2's variance-reduction factor, with ``x = η h``."""
    r = 1.0 - x
    return (1.0 - gamma) * (1.0 + r * gamma) / ((1.0 + gamma) * (1.0 - r * gamma))


def seed_variant_factor(x, gamma):
    """The factor as one seed prints it: ``(1−γ)(1 + (1−ηh)) / ((1+γ)(1 − (1−ηh)))``."""
    r = 1.0 - x
    return (1.0 - gamma) * (1.0 + r) / ((1.0 + gamma) * (1.0 - r))


def ema_mean_by_recursion(h, steps, *, lr, gamma):
    """``E[θ̃_t] / θ(0)`` for t = 0..steps, iterating the two means literally."""
    mean = average = 1.0
    out = [average]
    for _ in range(steps):
        mean = (1.0 - lr * h) * mean
        average = gamma * average + (1.0 - gamma) * mean
        out.append(average)
    return np.array(out)


def average_risk_by_gram_matrix(problem, steps, *, lr, batch_size=1, start=0):
    """Risk of the average of θ_start..θ_t (θ_t before start) from explicit pairwise covariances."""
    t = np.arange(steps + 1)[:, None]
    r = 1.0 - lr * problem.h
    noise = lr**2 * problem.c / batch_size
    second = r ** (2 * t) * problem.theta0**2 + noise * (1 - r ** (2 * t)) / (1 - r**2)  # (T+1, d)
    j, k = np.meshgrid(np.arange(steps + 1), np.arange(steps + 1), indexing="ij")
    gram = r[:, None, None] ** np.abs(k - j) * second.T[:, np.minimum(j, k)]  # (d, T+1, T+1)
    cumulative = np.zeros((problem.d, steps + 2, steps + 2))
    cumulative[:, 1:, 1:] = gram.cumsum(axis=1).cumsum(axis=2)
    ends = np.arange(steps + 1)
    begin = np.where(ends >= start, start, ends)  # the window is [start, t] once t >= start, else [t, t]
    block = (
        cumulative[:, ends + 1, ends + 1]
        - cumulative[:, begin, ends + 1]
        - cumulative[:, ends + 1, begin]
        + cumulative[:, begin, begin]
    )
    count = ends - begin + 1
    return (0.5 * problem.h[:, None] * block / count**2).T


def simulate_averages(problem, steps, *, lr, batch_size, ema_decay, tail_start, trials, seed):
    """Monte Carlo of SGD with the last iterate, uniform, tail and EMA averages in the same runs.

    Returns ``{scheme: (mean risk per coordinate (T+1, d), mean total risk, its stderr)}``, filled
    at the steps in ``RECORDED`` (NaN elsewhere).
    """
    rng = np.random.default_rng(seed)
    weights = 0.5 * problem.h
    theta = np.tile(problem.theta0, (trials, 1))
    iterates = {"last": theta, "uniform": theta.copy(), "tail": theta.copy(), "ema": theta.copy()}
    per_coordinate = {name: np.full((steps + 1, problem.d), np.nan) for name in iterates}
    total = {name: np.full(steps + 1, np.nan) for name in iterates}
    stderr = {name: np.full(steps + 1, np.nan) for name in iterates}

    def record(t):
        if t not in RECORDED:
            return
        for name, value in iterates.items():
            losses = weights * value**2
            per_coordinate[name][t] = losses.mean(axis=0)
            summed = losses.sum(axis=1)
            total[name][t] = summed.mean()
            stderr[name][t] = summed.std(ddof=1) / np.sqrt(trials)

    record(0)
    for t in range(1, steps + 1):
        noise = rng.standard_normal(theta.shape) * np.sqrt(problem.c / batch_size)
        theta = theta - lr * (problem.h * theta + noise)
        iterates["last"] = theta
        iterates["uniform"] = iterates["uniform"] + (theta - iterates["uniform"]) / (t + 1)
        if t <= tail_start:
            iterates["tail"] = theta
        else:
            iterates["tail"] = iterates["tail"] + (theta - iterates["tail"]) / (t - tail_start + 1)
        iterates["ema"] = ema_decay * iterates["ema"] + (1 - ema_decay) * theta
        record(t)
    return {name: (per_coordinate[name], total[name], stderr[name]) for name in iterates}


MC_STEPS, MC_TAIL_START, MC_GAMMA, MC_TRIALS = 400, 200, 0.9, 40_000
SNAPSHOTS = [1, 5, 20, 100, 201, 250, 300, 400]
STATIONARY = list(range(250, MC_STEPS + 1, 10))  # 0.98^500 < 5e-5: the bias is gone
RECORDED = set(SNAPSHOTS) | set(STATIONARY)


@pytest.fixture(scope="module")
def monte_carlo():
    """40 000 runs of the worked example (B = 1): relative standard errors below 0.75%."""
    return simulate_averages(
        WORKED,
        MC_STEPS,
        lr=LR,
        batch_size=1,
        ema_decay=MC_GAMMA,
        tail_start=MC_TAIL_START,
        trials=MC_TRIALS,
        seed=2024,
    )


def assert_agrees_with_monte_carlo(exact, mean, stderr):
    """|z| < 4 at every snapshot, with enough trials that a 3% error would give |z| > 4."""
    assert np.all(stderr[SNAPSHOTS] < 0.0075 * mean[SNAPSHOTS])
    z = (mean[SNAPSHOTS] - exact[SNAPSHOTS]) / stderr[SNAPSHOTS]
    assert np.max(np.abs(z)) < 4.0, z


# ---------------------------------------------------------------- claims of chapter 4


def test_claim_ema_variance_reduction_factor_is_theorem2_not_the_seed_variant(monte_carlo):
    # 1. Exact steady state (theory's Lyapunov solve) over a grid of η h and γ.
    for x in [0.02, 0.1, 0.5, 1.0, 1.5, 1.9]:
        problem = NQM([x], [1.0])
        sgd_floor = steady_state_risk(problem, lr=1.0)
        for gamma in [0.1, 0.5, 0.9, 0.99]:
            exact = steady_state_risk(problem, lr=1.0, ema_decay=gamma) / sgd_floor
            assert exact == pytest.approx(theorem2_factor(x, gamma), rel=1e-9)
            assert exact == pytest.approx(
                float(ema_variance_reduction_factor(x, lr=1.0, ema_decay=gamma)), rel=1e-9
            )
            assert exact < 1.0
            if x != 1.0:  # the two formulas agree only at r = 1 − η h = 0
                assert abs(seed_variant_factor(x, gamma) / exact - 1) > 1e-3
    # 2. The seed's variant is not even below 1: flat coordinate of the worked example, γ = 0.9.
    assert seed_variant_factor(0.02, 0.9) > 5.0
    # 3. Monte Carlo of the worked example, averaged over t = 250, 260, …, 400.
    per_coordinate, _, _ = monte_carlo["ema"]
    floors = steady_state_risk_per_coordinate(WORKED, lr=LR)
    measured = per_coordinate[STATIONARY].mean(axis=0) / floors
    theorem2 = theorem2_factor(LR * WORKED.h, MC_GAMMA)
    np.testing.assert_allclose(measured, theorem2, rtol=0.015)  # pooled standard error ≈ 0.4%
    assert measured[1] < 1.0 < seed_variant_factor(LR * WORKED.h[1], MC_GAMMA)


@pytest.mark.parametrize(
    ("lr", "gamma"), [(0.02, 0.9), (0.02, 0.98), (0.02, 0.995), (0.035, 0.5), (0.01, 0.99)]
)
def test_claim_theorem2_bias_term_is_exact_and_noise_term_is_the_limit(lr, gamma):
    steps = 3000
    t = np.arange(steps + 1)
    initial = 0.5 * WORKED.h * WORKED.theta0**2
    # the noise-free curve is exactly Theorem 2's first term (also at γ = r_2 = 0.98)
    bias_only = risk_curve(NOISE_FREE, steps, lr=lr, ema_decay=gamma)
    bias_by_recursion = sum(
        ema_mean_by_recursion(h, steps, lr=lr, gamma=gamma) ** 2 * ell0
        for h, ell0 in zip(WORKED.h, initial, strict=True)
    )
    bias_formula = (ema_bias_factor(t, WORKED.h, lr=lr, ema_decay=gamma) ** 2 * initial).sum(axis=1)
    np.testing.assert_allclose(bias_only, bias_by_recursion, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(bias_formula, bias_by_recursion, rtol=1e-9, atol=1e-300)
    # the noise part rises monotonically to Theorem 2's second term, its exact limit
    exact = risk_curve(WORKED, steps, lr=lr, ema_decay=gamma)
    noise = exact - bias_only
    limit = (lr * WORKED.c / (2 * (2 - lr * WORKED.h)) * theorem2_factor(lr * WORKED.h, gamma)).sum()
    assert noise[0] == 0.0
    assert np.all(np.diff(noise) >= -1e-14 * limit)
    assert np.all(noise <= limit * (1 + 1e-12))
    assert noise[-1] == pytest.approx(limit, rel=1e-6)
    # hence Theorem 2's right side is an upper bound at every t, tight as t → ∞
    bound = theorem2_bound(WORKED, steps, lr=lr, ema_decay=gamma)
    assert np.all(bound >= exact * (1 - 1e-12))
    assert bound[-1] == pytest.approx(exact[-1], rel=1e-6)


def test_claim_gamma_below_one_minus_lr_h_min_keeps_the_sgd_rate():
    r_slow = 1.0 - LR * WORKED.h[1]  # 0.98, SGD's slowest contraction factor
    steps, t1, t2 = 4000, 2000, 4000
    sgd = risk_curve(NOISE_FREE, steps, lr=LR)

    def late_rate(curve):
        """Per-step contraction of the risk between t1 and t2 (the square of the mean's rate)."""
        return (curve[t2] / curve[t1]) ** (1.0 / (t2 - t1))

    assert late_rate(sgd) == pytest.approx(r_slow**2, rel=1e-9)
    for gamma in [0.5, 0.9, 0.97]:  # γ < 1 − η h_d: same rate, EMA lags by a constant factor
        ema = risk_curve(NOISE_FREE, steps, lr=LR, ema_decay=gamma)
        assert late_rate(ema) == pytest.approx(r_slow**2, rel=1e-9)
        lag = (
            (1 - gamma) * r_slow / (r_slow - gamma)
        ) ** 2  # from the mean γ^t + (1−γ) r (r^t − γ^t)/(r − γ)
        assert ema[t2] / sgd[t2] == pytest.approx(lag, rel=1e-6)
        assert lag > 1.0
    # γ = 1 − η h_d: the same exponential rate, times a factor growing like t² (the mean of the flat
    # coordinate is γ^t (1 + (1−γ) t); the stiff one's, γ^t, now decays at the same rate: ℓ_1(0) = 25)
    ema = risk_curve(NOISE_FREE, steps, lr=LR, ema_decay=r_slow)
    assert late_rate(ema) == pytest.approx(r_slow**2, rel=1e-3)
    initial = 0.5 * WORKED.h * WORKED.theta0**2
    growth = ((1 + (1 - r_slow) * t2) ** 2 * initial[1] + initial[0]) / initial[1]
    assert ema[t2] / sgd[t2] == pytest.approx(growth, rel=1e-6)
    for gamma in [0.985, 0.99, 0.995]:  # γ > 1 − η h_d: the bias decays like γ^t, slower
        ema = risk_curve(NOISE_FREE, steps, lr=LR, ema_decay=gamma)
        assert late_rate(ema) == pytest.approx(gamma**2, rel=1e-6)
        assert ema[t2] / sgd[t2] > 100 * ema[t1] / sgd[t1]


def test_claim_constant_lag_needs_gamma_strictly_below_r_d():
    """Chapter 4: γ < r_d = 1 − η h_d keeps SGD's rate with a bounded lag; at γ = r_d it grows ∝ t²."""
    r_d = 1.0 - LR * WORKED.h[1]  # 0.98 (in floating point exactly the literal 0.98)
    assert r_d == 0.98
    steps = 6000
    t = np.arange(steps + 1)
    sgd = risk_curve(NOISE_FREE, steps, lr=LR)
    initial = 0.5 * WORKED.h * WORKED.theta0**2
    stiff_over_flat = initial[0] / initial[1]  # 50; the stiff coordinate's r_1 = 0
    # γ < r_d: ratio EMA / SGD = (m_d(t)/r_d^t)² + (γ/r_d)^{2t} ℓ_1/ℓ_d with m_d(t)/r_d^t moving
    # monotonically from 1 to A = (1−γ) r_d / (r_d − γ): bounded by A² + ℓ_1/ℓ_d, tending to A²
    for gamma in [0.5, 0.9, 0.97, 0.979]:
        ratio = risk_curve(NOISE_FREE, steps, lr=LR, ema_decay=gamma)[1:] / sgd[1:]
        limit = ((1 - gamma) * r_d / (r_d - gamma)) ** 2
        assert np.all(ratio <= (limit + stiff_over_flat) * (1 + 1e-9))
        assert ratio[-1] == pytest.approx(limit, rel=1e-2)
    # near the boundary the bounded lag is large: A² ≈ 424 at γ = 0.979
    assert ((1 - 0.979) * r_d / (r_d - 0.979)) ** 2 > 400
    # γ = r_d: mean r_d^t (1 + (1−γ) t), so the ratio is (1 + (1−γ) t)² + ℓ_1/ℓ_d, growing like t²
    ratio = risk_curve(NOISE_FREE, steps, lr=LR, ema_decay=r_d) / sgd
    # (from t = 1: at t = 0 the stiff coordinate, removed by SGD in one step, is still in both)
    np.testing.assert_allclose(ratio[1:], (1 + (1 - r_d) * t[1:]) ** 2 + stiff_over_flat, rtol=1e-9)
    assert ratio[1500] == pytest.approx(1011.0, rel=1e-9)  # chapter 4 quotes "1,011 at t = 1500"
    assert ratio[6000] / ratio[3000] == pytest.approx(4.0, rel=0.03)
    assert ratio[6000] / 6000**2 == pytest.approx((1 - r_d) ** 2, rel=0.03)


def test_claim_uniform_averaging_from_start_keeps_bias_longer():
    steps = 1200
    # 1. Without noise the uniform average is worse than the last iterate at every t >= 1:
    #    its mean is the average of r^0..r^t >= r^t, and its risk decays only like 1/t².
    uniform_bias = averaged_risk_curve(NOISE_FREE, steps, lr=LR)
    sgd_bias = risk_curve(NOISE_FREE, steps, lr=LR)
    assert np.all(uniform_bias[1:] > sgd_bias[1:])
    hand = 0.5 * WORKED.h * (WORKED.theta0 / (LR * WORKED.h)) ** 2  # ½ h (θ0 / (η h))²: 25 + 1250
    assert (steps + 1) ** 2 * uniform_bias[-1] == pytest.approx(hand.sum(), rel=1e-9)
    # 2. With noise it loses exactly on an initial stretch 1..t*, located by the Gram oracle.
    for batch_size in [1, 64, 256]:
        exact = averaged_risk_curve(WORKED, steps, lr=LR, batch_size=batch_size)
        oracle = average_risk_by_gram_matrix(WORKED, steps, lr=LR, batch_size=batch_size).sum(axis=1)
        np.testing.assert_allclose(exact, oracle, rtol=1e-9)
        sgd = risk_curve(WORKED, steps, lr=LR, batch_size=batch_size)
        worse = np.flatnonzero(oracle > sgd)
        last_worse = worse[-1]
        np.testing.assert_array_equal(worse, np.arange(1, last_worse + 1))
        floor = steady_state_risk(WORKED, lr=LR, batch_size=batch_size)
        if batch_size == 1:  # noise-dominated: the average wins within the flat time scale 1/(η h_d)
            assert last_worse < 1 / (LR * WORKED.h[1]) / 5
        else:  # bias-dominated: it loses until its bias ~1275/(t+1)² falls to the SGD floor
            assert last_worse + 1 == pytest.approx(np.sqrt(hand.sum() / floor), rel=0.02)
            assert last_worse > 400
        # 3. In the noise-dominated phase (SGD's bias below 10% of its noise part), the tail average
        #    (second half) beats the last iterate at every step after its start, and the EMA does once
        #    it has also forgotten θ(0), t >= 5/(1 − γ).
        noise_dominated = int(np.argmax(sgd_bias <= 0.1 * (sgd - sgd_bias)))
        assert steps // 2 >= noise_dominated
        tail = averaged_risk_curve(WORKED, steps, lr=LR, batch_size=batch_size, start=steps // 2)
        np.testing.assert_allclose(tail[: steps // 2 + 1], sgd[: steps // 2 + 1], rtol=1e-12)
        assert np.all(tail[steps // 2 + 1 :] < sgd[steps // 2 + 1 :])
        for gamma in [0.5, 0.9, 0.98]:
            ema = risk_curve(WORKED, steps, lr=LR, batch_size=batch_size, ema_decay=gamma)
            forgotten = max(int(5 / (1 - gamma)), noise_dominated)
            assert np.all(ema[forgotten:] < sgd[forgotten:])
        # 4. At the end of a long run all three averages beat the last iterate (at B = 1 tenfold), but
        #    at B = 64 and 256 the uniform one still carries its 1/t² bias, so the tail average and
        #    the EMA γ = 0.98 are better there.
        ema = risk_curve(WORKED, steps, lr=LR, batch_size=batch_size, ema_decay=0.98)
        assert max(exact[-1], tail[-1], ema[-1]) < sgd[-1] / (10 if batch_size == 1 else 1)
        if batch_size > 1:
            assert exact[-1] > uniform_bias[-1] > max(tail[-1], ema[-1])


# ---------------------------------------------------------------- nqm_lib.averaging is exact


def test_uniform_tail_and_ema_risk_match_monte_carlo(monte_carlo):
    uniform = averaged_risk_curve(WORKED, MC_STEPS, lr=LR)
    tail = averaged_risk_curve(WORKED, MC_STEPS, lr=LR, start=MC_TAIL_START)
    ema = decaying_average_risk_per_coordinate(WORKED, np.full(MC_STEPS, MC_GAMMA), lr=LR).sum(axis=1)
    for name, exact in [
        ("uniform", uniform),
        ("tail", tail),
        ("ema", ema),
        ("last", risk_curve(WORKED, MC_STEPS, lr=LR)),
    ]:
        _, mean, stderr = monte_carlo[name]
        assert_agrees_with_monte_carlo(exact, mean, stderr)


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("lr", [0.005, 0.02, 0.035])
@pytest.mark.parametrize("start", [0, 1, 37, 150])
def test_averaged_risk_matches_the_pairwise_covariance_oracle(lr, batch_size, start):
    exact = averaged_risk_curve_per_coordinate(WORKED, 150, lr=lr, batch_size=batch_size, start=start)
    oracle = average_risk_by_gram_matrix(WORKED, 150, lr=lr, batch_size=batch_size, start=start)
    np.testing.assert_allclose(exact, oracle, rtol=1e-9)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.9, 0.98, 0.999])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_constant_decay_reproduces_the_ema_risk_of_theory(gamma, batch_size):
    problem = NQM([50.0, 3.0, 0.2], [10.0, 1.0, 0.5], theta0=[1.0, -2.0, 0.5], counts=[1, 2, 5])
    exact = decaying_average_risk_per_coordinate(problem, np.full(500, gamma), lr=0.03, batch_size=batch_size)
    theory = risk_curve(problem, 500, lr=0.03, batch_size=batch_size, ema_decay=gamma)
    np.testing.assert_allclose(exact.sum(axis=1), theory, rtol=RTOL)


def test_averaging_decays_are_running_mean_weights():
    np.testing.assert_allclose(averaging_decays(5), [1 / 2, 2 / 3, 3 / 4, 4 / 5, 5 / 6])
    np.testing.assert_allclose(averaging_decays(5, start=3), [0, 0, 0, 1 / 2, 2 / 3])
    np.testing.assert_array_equal(averaging_decays(4, start=4), np.zeros(4))
    assert averaging_decays(0).shape == (0,)


def test_tail_average_equals_last_iterate_until_it_starts_and_steps_zero_is_the_start():
    tail = averaged_risk_curve(WORKED, 60, lr=LR, batch_size=4, start=30)
    np.testing.assert_allclose(tail[:31], risk_curve(WORKED, 30, lr=LR, batch_size=4), rtol=1e-12)
    np.testing.assert_allclose(averaged_risk_curve(WORKED, 0, lr=LR), [WORKED.initial_risk])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("decays", "match"),
    [
        ([0.5, 1.0], r"decays\[1\] = 1\.0"),
        ([-0.1], r"decays\[0\] = -0\.1"),
        ([0.5, np.nan], r"decays\[1\] = nan"),
        ([[0.5]], r"decays must be a 1-D array.*shape \(1, 1\)"),
        ("abc", r"decays must be a 1-D array"),
    ],
)
def test_decaying_average_rejects_bad_decays_naming_index_and_value(decays, match):
    with pytest.raises(ValueError, match=match):
        decaying_average_risk_per_coordinate(WORKED, decays, lr=LR)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 10, "lr": 0.0}, r"lr must be a finite number > 0, got 0\.0"),
        ({"steps": 10, "lr": LR, "batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        (
            {"steps": 10, "lr": LR, "start": 11},
            r"start must be an integer in \[0, steps\] = \[0, 10\], got 11",
        ),
        ({"steps": 10, "lr": LR, "start": -1}, r"start must be an integer >= 0, got -1"),
        ({"steps": 2.5, "lr": LR}, r"steps must be an integer >= 0, got 2\.5"),
    ],
)
def test_averaged_risk_curve_rejects_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        averaged_risk_curve(WORKED, **kwargs)


def test_averaged_risk_curve_refuses_unstable_learning_rate():
    with pytest.raises(InstabilityError, match=r"lr·h = 2\.5 ≥ 2 in coordinate 1.*choose lr < 0\.04"):
        averaged_risk_curve(WORKED, 10, lr=0.05)


# ---------------------------------------------------------------- chapter 4's figures


def solid_lines(ax):
    return [line for line in ax.lines if line.get_linestyle() == "-" and line.get_marker() in (None, "None")]


def lines_with_style(ax, style):
    return [line for line in ax.lines if line.get_linestyle() == style and len(line.get_xdata()) > 0]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"ema_decay": 0.98},
        {"ema_decay": 0.995, "batch_size": 16},
        {"ema_decay": 0.5, "lr": 0.035, "batch_size": 4},
    ],
)
def test_ema_risk_figure_plots_exact_sgd_ema_bound_floors_and_monte_carlo(values):
    settings = {"ema_decay": 0.9, "batch_size": 1, "lr": 0.02, **values}
    fig = ema_risk_figure(**settings, steps=80, trials=40)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    gamma, batch_size, lr = settings["ema_decay"], settings["batch_size"], settings["lr"]
    sgd_line, ema_line = solid_lines(ax)
    np.testing.assert_allclose(
        sgd_line.get_ydata(), risk_curve(WORKED, 80, lr=lr, batch_size=batch_size), rtol=1e-12
    )
    exact_ema = risk_curve(WORKED, 80, lr=lr, batch_size=batch_size, ema_decay=gamma)
    np.testing.assert_allclose(ema_line.get_ydata(), exact_ema, rtol=1e-12)
    (bound,) = lines_with_style(ax, "--")
    assert np.all(bound.get_ydata() >= exact_ema * (1 - 1e-12))
    floors = [line.get_ydata()[0] for line in lines_with_style(ax, ":")]
    x = lr * WORKED.h
    sgd_floor = lr * WORKED.c / (2 * batch_size * (2 - x))
    np.testing.assert_allclose(
        floors, [sgd_floor.sum(), (sgd_floor * theorem2_factor(x, gamma)).sum()], rtol=1e-9
    )
    dots = [line for line in ax.lines if line.get_marker() == "o" and len(line.get_xdata()) > 0]
    assert len(dots) == 2
    slowest = max(abs(1 - x))
    title = ax.get_title()
    assert ("with a constant lag" in title) == (gamma < slowest - 1e-12)
    assert ("a lag that grows like t²" in title) == (abs(gamma - slowest) < 1e-12)  # γ = r_2 = 0.98
    assert ("slower than SGD" in title) == (gamma > slowest + 1e-12)
    assert len(ax.get_legend().get_texts()) == 5


def test_ema_risk_figure_draws_unstable_and_rejects_invalid_settings():
    (ax,) = ema_risk_figure(lr=0.05, steps=10, trials=4).axes  # η h_1 = 2.5 ≥ 2
    assert [text.get_text() for text in ax.texts] == ["SGD and its EMA diverge: ηh₁ = 2.5 ≥ 2"]
    assert "SGD diverges" in ax.get_title()
    for line in ax.lines:
        assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float)))
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\), got 1\.0"):
        ema_risk_figure(ema_decay=1.0, steps=10, trials=4)


@pytest.mark.parametrize(("batch_size", "tail_fraction"), [(64, 0.5), (1, 0.5), (256, 0.2), (4, 1.0)])
def test_averaging_figure_plots_the_four_exact_curves_and_shades_where_uniform_loses(
    batch_size, tail_fraction
):
    fig = averaging_figure(batch_size=batch_size, ema_decay=0.98, tail_fraction=tail_fraction, steps=600)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    start = int(round((1 - tail_fraction) * 600))
    expected = [
        risk_curve(WORKED, 600, lr=LR, batch_size=batch_size),
        average_risk_by_gram_matrix(WORKED, 600, lr=LR, batch_size=batch_size).sum(axis=1),
        average_risk_by_gram_matrix(WORKED, 600, lr=LR, batch_size=batch_size, start=start).sum(axis=1),
        risk_curve(WORKED, 600, lr=LR, batch_size=batch_size, ema_decay=0.98),
    ]
    lines = solid_lines(ax)
    assert len(lines) == 4
    for line, curve in zip(lines, expected, strict=True):
        np.testing.assert_allclose(line.get_ydata(), curve, rtol=1e-9)
    worse = np.flatnonzero(expected[1] > expected[0])
    assert f"t = 1..{worse[-1]}" in ax.get_title()
    (shade,) = ax.collections
    assert len(shade.get_paths()) == 1  # one shaded stretch: the initial one


def test_averaging_figure_rejects_invalid_tail_fraction():
    with pytest.raises(ValueError, match=r"tail_fraction must be in \(0, 1\], got 0\.0"):
        averaging_figure(tail_fraction=0.0, steps=10)
