"""Chapter 3 (momentum): every claim the chapter makes, and its interactive figure.

Each claim test computes its expected values independently (quadratic formula, hand-written
formulas of Theorem 1, partial sums from its proof) and checks them against the exact risk of
``nqm_lib.theory`` (the second-moment recursion, which uses none of these formulas) or against
seeded Monte Carlo. Notation: ``x = η h`` for one coordinate.
"""

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from nqm_lib import (
    NQM,
    InstabilityError,
    formulas,
    max_stable_lr,
    risk_curve,
    risk_curve_per_coordinate,
    simulate,
    steady_state_risk,
)
from nqm_lib.figures_momentum import momentum_risk_figure, theorem1_bound
from nqm_lib.widgets import Explorer

plt.switch_backend("Agg")

WORKED = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
FAST = {"steps": 60, "trials": 40}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def roots_by_hand(x, beta):
    """Roots of z² − (1 − x + β) z + β by the quadratic formula, larger modulus first."""
    a = 1.0 - x + beta
    root = np.sqrt(complex(a * a - 4.0 * beta))
    return tuple(sorted([(a + root) / 2.0, (a - root) / 2.0], key=abs, reverse=True))


def one_coordinate(c=1.0, h=1.0, theta0=1.0):
    return NQM([h], [c], theta0=[theta0])


def floor_ratio(x, beta):
    """Exact steady-state risk with momentum over that of SGD at the same η (h = 1, so η = x)."""
    problem = one_coordinate()
    return steady_state_risk(problem, lr=x, momentum=beta) / steady_state_risk(problem, lr=x)


# ------------------------------------------------------------ amplification of the noise floor


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_claim_momentum_steady_state_amplification_is_one_over_one_minus_beta_for_small_lr(beta):
    ratio = floor_ratio(1e-4, beta)
    assert ratio == pytest.approx(1.0 / (1.0 - beta), rel=1e-4)
    # the seeds' (1 + β)/(1 − β) (19 at β = 0.9) is too large by the factor 1 + β
    seeds = (1.0 + beta) / (1.0 - beta)
    assert seeds / ratio == pytest.approx(1.0 + beta, rel=1e-4)
    assert ratio < seeds / 1.4


def test_claim_exact_amplification_factor_matches_steady_state_risk_ratios_on_a_grid():
    for beta in np.linspace(0.0, 0.99, 10):
        for x in np.geomspace(1e-4, 1.99, 12):
            expected = (1 + beta) * (2 - x) / ((1 - beta) * (2 + 2 * beta - x))
            assert floor_ratio(x, beta) == pytest.approx(expected, rel=1e-9)
            assert formulas.momentum_amplification(1.0, lr=x, momentum=beta) == pytest.approx(
                expected, rel=1e-12
            )


def test_claim_one_over_one_minus_beta_is_within_one_percent_for_lr_h_up_to_0_039_and_not_near_the_limits():
    # relative error of 1/(1 − β) against the exact factor: β x / ((1 + β)(2 − x)) ≤ x / (2(2 − x))
    worst = max(
        abs(1.0 / (1.0 - beta) / floor_ratio(x, beta) - 1.0)
        for beta in np.linspace(0.0, 0.999, 15)
        for x in np.linspace(1e-4, 0.039, 8)
    )
    assert worst < 0.01
    assert abs(10.0 / floor_ratio(0.042, 0.9) - 1.0) > 0.01  # β = 0.9: the 1% bound is 0.041
    assert abs(10.0 / floor_ratio(0.04, 0.9) - 1.0) < 0.01
    # near SGD's limit ηh → 2 the exact factor collapses (SGD's own floor blows up)
    assert floor_ratio(1.99, 0.9) < 0.2
    # momentum's floor against its small-η form η c / (4B(1 − β)) diverges as ηh → 2(1 + β)
    beta = 0.9
    for fraction, at_least in [(0.5, 1.9), (0.9, 9.0), (0.99, 90.0)]:
        x = fraction * 2 * (1 + beta)
        exact = steady_state_risk(one_coordinate(), lr=x, momentum=beta)
        assert exact / (x / (4 * (1 - beta))) > at_least


# ------------------------------------------------------------ roots, damping, stability


@pytest.mark.parametrize("x", [1e-3, 0.01, 0.1, 0.5, 1.5, 3.0])
def test_claim_damping_boundary_is_one_minus_sqrt_lr_h_squared(x):
    boundary = (1.0 - np.sqrt(x)) ** 2
    assert formulas.momentum_damping_boundary(1.0, lr=x) == pytest.approx(boundary, rel=1e-12)
    below, above = boundary - 1e-6, boundary + 1e-6
    a_below, a_above = 1 - x + below, 1 - x + above
    assert a_below**2 - 4 * below > 0  # discriminant: real roots just below
    assert a_above**2 - 4 * above < 0  # complex roots just above
    assert all(abs(r.imag) == 0 for r in roots_by_hand(x, below))
    assert all(abs(r.imag) > 0 for r in roots_by_hand(x, above))


def test_claim_damping_boundary_is_not_one_minus_lr_h_squared():
    x, beta = 0.01, 0.9  # (1 − √x)² = 0.81 < β < (1 − x)² = 0.9801
    assert (1 - np.sqrt(x)) ** 2 < beta < (1 - x) ** 2
    r1, r2 = roots_by_hand(x, beta)
    assert abs(r1.imag) > 0.05  # the seed's rule says real; the roots are complex
    # exact risk of a noise-free coordinate (= h/2 E[θ_t]²): under-damped, the mean crosses
    # zero and the risk rises again; below both boundaries it falls monotonically
    noise_free = one_coordinate(c=0.0)
    assert np.any(np.diff(risk_curve(noise_free, 200, lr=x, momentum=beta)) > 0)
    assert np.all(np.diff(risk_curve(noise_free, 200, lr=x, momentum=0.8)) < 0)
    # the seed's rule errs in the same direction for every 0 < ηh < 4 (ηh ≠ 1)
    grid = np.concatenate([np.linspace(1e-3, 0.99, 50), np.linspace(1.01, 3.99, 50)])
    assert np.all((1 - grid) ** 2 > (1 - np.sqrt(grid)) ** 2)
    # and the library's roots agree with the quadratic formula
    lib = formulas.momentum_roots(1.0, lr=x, momentum=beta)
    np.testing.assert_allclose(sorted(np.array(lib), key=np.imag), sorted([r1, r2], key=np.imag), rtol=1e-12)


@pytest.mark.parametrize(("x", "beta"), [(0.25, 0.8), (0.01, 0.9), (1.5, 0.6), (3.0, 0.7)])
def test_claim_complex_roots_have_modulus_sqrt_beta(x, beta):
    r1, r2 = roots_by_hand(x, beta)
    assert abs(r1.imag) > 0
    assert abs(r1) == pytest.approx(np.sqrt(beta), rel=1e-12)
    assert abs(r2) == pytest.approx(np.sqrt(beta), rel=1e-12)
    # exact risk of the noise-free coordinate decays with envelope β^t = |r|^{2t}
    curve = risk_curve(one_coordinate(c=0.0), 400, lr=x, momentum=beta)
    envelope = curve[0] * beta ** np.arange(401)
    assert np.all(curve <= envelope * 50)
    assert curve[380:].max() > envelope[380:].max() / 50


def test_claim_momentum_is_stable_iff_lr_h_below_two_times_one_plus_beta():
    for beta in [0.0, 0.3, 0.9]:
        for x in np.linspace(0.01, 4.5, 60):
            inside = max(abs(r) for r in roots_by_hand(x, beta)) < 1
            assert inside == (x < 2 * (1 + beta)), (x, beta)
        limit = 2 * (1 + beta)
        assert max_stable_lr(one_coordinate(), momentum=beta) == pytest.approx(limit)
        with pytest.raises(InstabilityError, match="unstable"):
            risk_curve(one_coordinate(), 10, lr=limit * 1.001, momentum=beta)
        curve = risk_curve(one_coordinate(), 4000, lr=limit * 0.99, momentum=beta)
        assert curve[-1] == pytest.approx(steady_state_risk(one_coordinate(), lr=limit * 0.99, momentum=beta))


def test_claim_momentum_allows_learning_rates_where_sgd_diverges():
    lr, beta = 0.05, 0.9  # η h_1 = 2.5: beyond SGD's 2, below momentum's 3.8
    with pytest.raises(InstabilityError, match="SGD diverges"):
        risk_curve(WORKED, 10, lr=lr)
    curve = risk_curve(WORKED, 1500, lr=lr, momentum=beta)
    assert curve[-1] == pytest.approx(steady_state_risk(WORKED, lr=lr, momentum=beta), rel=1e-9)


# ------------------------------------------------------------ Theorem 1


@pytest.mark.parametrize(
    ("x", "beta"), [(0.25, 0.8), (0.005, 0.8), (0.01, 0.9), (0.01, 0.5), (1.5, 0.6), (1.5, 0.02)]
)
def test_claim_theorem1_bias_term_is_exact_and_noise_term_is_the_limit(x, beta):
    h, c, batch_size, theta0, steps = 2.0, 3.0, 4, 1.5, 600
    lr = x / h
    problem = one_coordinate(c=c, h=h, theta0=theta0)
    noise_free = one_coordinate(c=0.0, h=h, theta0=theta0)
    hyper = {"lr": lr, "momentum": beta, "batch_size": batch_size}
    r1, r2 = roots_by_hand(x, beta)
    t = np.arange(steps + 1)
    bias_factor = np.real(((r1 ** (t + 1) - r2 ** (t + 1)) - beta * (r1**t - r2**t)) / (r1 - r2))
    initial = 0.5 * h * theta0**2
    bias = bias_factor**2 * initial
    second_term = (1 + beta) * lr * c / (2 * batch_size * (2 * beta + 2 - x) * (1 - beta))

    # first term: exactly the risk with c = 0 (up to rounding relative to the envelope |r|^{2t})
    envelope = initial * max(abs(r1), abs(r2)) ** (2 * t)
    np.testing.assert_array_less(
        np.abs(risk_curve(noise_free, steps, **hyper) - bias), 1e-9 * envelope + 1e-300
    )

    # noise part: the partial sum of the proof, non-decreasing, rising to the second term
    exact = risk_curve(problem, steps, **hyper)
    noise = exact - bias
    impulse = np.real((r1 ** (t + 1) - r2 ** (t + 1)) / (r1 - r2))
    partial_sums = 0.5 * h * lr**2 * c / batch_size * np.concatenate([[0.0], np.cumsum(impulse[:-1] ** 2)])
    np.testing.assert_allclose(noise, partial_sums, rtol=1e-8, atol=1e-12 * second_term)
    assert np.all(np.diff(noise) >= -1e-12 * second_term)
    assert noise[-1] == pytest.approx(second_term, rel=1e-6)
    assert steady_state_risk(problem, **hyper) == pytest.approx(second_term, rel=1e-10)

    # so Theorem 1's right-hand side is at or above the exact risk at every t, tight as t → ∞
    right_side = bias + second_term
    assert np.all(right_side >= exact - 1e-12 * second_term)
    assert right_side[0] - exact[0] == pytest.approx(second_term, rel=1e-12)
    assert right_side[-1] - exact[-1] < 1e-6 * second_term
    np.testing.assert_allclose(theorem1_bound(problem, steps, **hyper), right_side, rtol=1e-9, atol=1e-15)


# ------------------------------------------------------------ effective learning rate and Monte Carlo


@pytest.mark.parametrize(("x", "beta"), [(1e-4, 0.5), (1e-3, 0.5), (1e-4, 0.9), (1e-5, 0.99)])
def test_claim_slow_root_is_one_minus_lr_h_over_one_minus_beta_for_small_lr(x, beta):
    q = beta * x / (1 - beta) ** 2  # predicted relative error of the rate
    r1, _ = roots_by_hand(x, beta)
    assert r1.imag == 0  # over-damped
    rate_error = (1 - r1.real) / (x / (1 - beta)) - 1
    assert 0.8 * q < rate_error < 1.3 * q
    # the exact noise-free risk decays by r1² per step once the fast root has died out
    steps = int(60 / (1 - beta))
    curve = risk_curve(one_coordinate(c=0.0), steps, lr=x, momentum=beta)
    assert curve[-1] / curve[-2] == pytest.approx(r1.real**2, rel=1e-10)


def test_momentum_matches_monte_carlo():
    # worked example, η = 0.005, β = 0.8, B = 1. With 40 000 runs the standard error is below
    # 0.75% of the risk, so a 3% error in the theory would be more than 4 standard errors off.
    lr, beta, steps = 0.005, 0.8, 150
    exact = risk_curve_per_coordinate(WORKED, steps, lr=lr, momentum=beta)
    sim = simulate(WORKED, steps, lr=lr, momentum=beta, trials=40_000, seed=11)
    total = exact.sum(axis=1)
    for t in [5, 20, 50, 100, 150]:
        assert sim.risk_stderr[t] < 0.0075 * total[t]
        assert abs(sim.risk[t] - total[t]) < 4 * sim.risk_stderr[t], t
    np.testing.assert_allclose(sim.risk_per_coordinate[[20, 150]], exact[[20, 150]], rtol=0.02)
    # negative control: the seeds' floor, SGD's floor times (1 + β)/(1 − β), is rejected
    seeds_floor = (1 + beta) / (1 - beta) * formulas.sgd_steady_state_risk(WORKED.h, WORKED.c, lr=lr).sum()
    assert abs(sim.risk[steps] - seeds_floor) > 20 * sim.risk_stderr[steps]


# ------------------------------------------------------------ small-η equivalence with SGD at η/(1 − β)


def largest_gap(beta, q):
    """Largest relative gap over five time scales of the flat coordinate of the worked example."""
    lr = q * (1 - beta) ** 2 / (beta * WORKED.h[0])  # q_1 = β η h_1 / (1 − β)²
    horizon = int(5 * (1 - beta) / (lr * WORKED.h[1]))
    with_momentum = risk_curve(WORKED, horizon, lr=lr, momentum=beta)
    rescaled_sgd = risk_curve(WORKED, horizon, lr=lr / (1 - beta))
    return np.max(np.abs(with_momentum / rescaled_sgd - 1))


@pytest.mark.parametrize(("beta", "q"), [(0.3, 0.01), (0.5, 0.01), (0.5, 0.03), (0.5, 0.1), (0.9, 0.1)])
def test_claim_small_lr_momentum_risk_equals_sgd_at_lr_over_one_minus_beta_within_2q(beta, q):
    # stated tolerance: relative gap ≤ 2 q_1 with q_1 = β η h_1 / (1 − β)², for q_1 ≤ 0.1
    gap = largest_gap(beta, q)
    assert gap <= 2 * q
    assert gap >= q  # and the tolerance is not loose


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_claim_large_lr_momentum_risk_differs_from_sgd_at_lr_over_one_minus_beta(beta):
    assert largest_gap(beta, 1.0) > 1.0


# ------------------------------------------------------------ the chapter's interactive figure


def lines(ax, linestyle=None, marker=None):
    found = ax.lines
    if linestyle is not None:
        found = [line for line in found if line.get_linestyle() == linestyle]
    if marker is not None:
        found = [line for line in found if line.get_marker() == marker]
    return found


def assert_all_plotted_data_finite(fig):
    for ax in fig.axes:
        for line in ax.lines:
            assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float))), line.get_label()


SLIDER_VALUES = [
    {},
    {"lr": 0.001, "momentum": 0.9, "batch_size": 16},
    {"lr": 0.02, "momentum": 0.3, "batch_size": 256},
    {"lr": 0.0003, "momentum": 0.0, "batch_size": 1},
]


@pytest.mark.parametrize("values", SLIDER_VALUES)
def test_momentum_risk_figure_plots_exact_risk_monte_carlo_and_sgd_comparisons(values):
    settings = {"lr": 0.005, "momentum": 0.8, "batch_size": 1, **values}
    fig = momentum_risk_figure(**values, **FAST)
    assert isinstance(fig, Figure)
    risk_ax, roots_ax = fig.axes[:2]
    assert risk_ax.get_yscale() == "log"
    steps = FAST["steps"]
    hyper = {"lr": settings["lr"], "batch_size": settings["batch_size"]}
    exact = risk_curve_per_coordinate(WORKED, steps, momentum=settings["momentum"], **hyper)
    solid = [line for line in lines(risk_ax, "-") if line.get_marker() in (None, "None")]
    assert len(solid) == 3  # coordinate 1, coordinate 2, total
    for line, expected in zip(solid, [exact[:, 0], exact[:, 1], exact.sum(axis=1)], strict=True):
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
    assert len(lines(risk_ax, marker="o")) == 1  # Monte Carlo dots
    (same_lr,) = lines(risk_ax, "--")
    np.testing.assert_allclose(same_lr.get_ydata(), risk_curve(WORKED, steps, **hyper), rtol=1e-12)
    (effective,) = lines(risk_ax, ":")
    effective_lr = settings["lr"] / (1 - settings["momentum"])
    np.testing.assert_allclose(
        effective.get_ydata(),
        risk_curve(WORKED, steps, lr=effective_lr, batch_size=settings["batch_size"]),
        rtol=1e-12,
    )
    labels = [text.get_text() for text in risk_ax.get_legend().get_texts()]
    assert any("Monte Carlo" in label for label in labels)
    assert_all_plotted_data_finite(fig)


@pytest.mark.parametrize(("lr", "momentum"), [(0.005, 0.8), (0.05, 0.9), (0.001, 0.2)])
def test_momentum_risk_figure_shows_both_roots_of_each_coordinate_and_the_circle_sqrt_beta(lr, momentum):
    fig = momentum_risk_figure(lr=lr, momentum=momentum, **FAST)
    roots_ax = fig.axes[1]
    root_markers = [line for line in lines(roots_ax, marker="o") if len(line.get_xdata())]
    assert len(root_markers) == 2
    for line, h in zip(root_markers, WORKED.h, strict=True):
        expected = sorted(roots_by_hand(lr * h, momentum), key=lambda r: (r.real, r.imag))
        plotted = sorted(
            (complex(a, b) for a, b in zip(line.get_xdata(), line.get_ydata(), strict=True)),
            key=lambda r: (r.real, r.imag),
        )
        np.testing.assert_allclose(plotted, expected, rtol=1e-12, atol=1e-14)
    (circle,) = lines(roots_ax, "--")
    radii = np.hypot(circle.get_xdata(), circle.get_ydata())
    np.testing.assert_allclose(radii, np.sqrt(momentum), rtol=1e-12)
    sgd_crosses = [line for line in lines(roots_ax, marker="x") if len(line.get_xdata())]
    np.testing.assert_allclose([line.get_xdata()[0] for line in sgd_crosses], 1 - lr * WORKED.h, rtol=1e-12)


def test_momentum_risk_figure_says_when_sgd_diverges_but_momentum_does_not():
    fig = momentum_risk_figure(lr=0.05, momentum=0.9, **FAST)  # η h_1 = 2.5 < 2(1 + β) = 3.8
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert texts == ["SGD diverges: ηh₁ = 2.5 ≥ 2"]  # written where SGD at η leaves the axes
    assert_all_plotted_data_finite(fig)


def test_momentum_risk_figure_draws_momentum_diverging_out_of_its_axes():
    fig = momentum_risk_figure(lr=0.08, momentum=0.9, **FAST)  # limit 2(1 + 0.9)/50 = 0.076
    texts = [text.get_text() for text in fig.axes[0].texts]
    assert texts == ["diverges: ηh₁ = 4 ≥ 2(1 + β) = 3.8"]
    assert_all_plotted_data_finite(fig)


def test_momentum_risk_figure_rejects_invalid_momentum():
    with pytest.raises(ValueError, match="momentum"):
        momentum_risk_figure(momentum=1.0, **FAST)


def test_explorer_draws_momentum_diverging_instead_of_a_message():
    controls = {
        "lr": ipywidgets.FloatLogSlider(value=0.005, min=-4, max=-1, description="η"),
        "momentum": ipywidgets.FloatSlider(value=0.8, min=0.0, max=0.99, description="β"),
    }
    explorer = Explorer(momentum_risk_figure, controls, fixed=FAST)
    fig = explorer.figure(lr=0.08, momentum=0.9)
    assert len(fig.axes) == 2  # both panels, as at the default settings
    assert any("diverges" in text.get_text() for text in fig.axes[0].texts)
    assert_all_plotted_data_finite(fig)


# ---------------------------------------------------------------- critical damping and the envelope


@pytest.mark.parametrize("x", [0.01, 0.3, 1.0, 3.07])
def test_claim_critically_damped_repeated_root_is_one_minus_sqrt_lr_h_and_can_be_negative(x):
    beta_star = (1 - np.sqrt(x)) ** 2
    z1, z2 = roots_by_hand(x, beta_star)
    expected = 1 - np.sqrt(x)  # (1 − x + β*)/2 = 1 − √x
    assert z1 == pytest.approx(expected, abs=1e-7)
    assert z2 == pytest.approx(expected, abs=1e-7)
    assert abs(expected) == pytest.approx(np.sqrt(beta_star), rel=1e-12)
    assert (expected < 0) == (x > 1)  # the tuning exercise's η h_1 = 3.07 gives z ≈ −0.75
    # the noise-free mean alternates in sign when the repeated root is negative
    mean = formulas.momentum_bias_factor(np.arange(1, 40), 1.0, lr=x, momentum=beta_star)
    assert np.all(np.diff(np.sign(mean[5:])) != 0) == (x > 1)


@pytest.mark.parametrize(("x", "beta"), [(0.01, 0.9), (0.25, 0.8), (1.5, 0.6), (3.0, 0.7)])
def test_claim_under_damped_mean_stays_inside_amplitude_times_beta_to_the_t_over_2(x, beta):
    t = np.arange(int(min(6000, 1000 / -np.log(beta))))  # β^{t/2} stays far from underflow
    # mean by iterating the noise-free recurrence from rest (θ(−1) = θ(0) = 1)
    mean = np.empty(t.size)
    previous = current = 1.0
    for k in t:
        mean[k] = current
        previous, current = current, (1 - x + beta) * current - beta * previous
    ratio = np.abs(mean) / beta ** (t / 2)
    amplitude = formulas.momentum_envelope_amplitude(1.0, lr=x, momentum=beta)
    assert np.all(ratio <= amplitude * (1 + 1e-9))
    assert ratio.max() == pytest.approx(amplitude, rel=2e-3)  # the envelope is reached, not loose


def test_claim_envelope_amplitude_is_1_14_at_lr_h_0_01_beta_0_9_so_beta_to_t_over_2_alone_is_exceeded():
    amplitude = formulas.momentum_envelope_amplitude(1.0, lr=0.01, momentum=0.9)
    assert amplitude == pytest.approx(1.14, abs=0.005)
    mean = formulas.momentum_bias_factor(np.arange(200), 1.0, lr=0.01, momentum=0.9)
    assert np.any(np.abs(mean) > 0.9 ** (np.arange(200) / 2))
    assert np.isnan(formulas.momentum_envelope_amplitude(1.0, lr=0.01, momentum=0.5))  # over-damped


# ---------------------------------------------------------------- Nesterov and dampening, against PyTorch

VARIANTS = [
    {"momentum": 0.8},
    {"momentum": 0.8, "nesterov": True},
    {"momentum": 0.8, "dampening": 0.8},
    {"momentum": 0.5, "dampening": 0.3},
    {"momentum": 0.9, "nesterov": True, "ema_decay": 0.5},
]


def torch_path(problem, steps, lr, seed, batch_size=1, **options):
    """torch.optim.SGD (float64) on the NQM, fed nqm_lib's Gaussian draws in sample_path's order."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    param = torch.tensor(problem.theta0.copy(), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=lr, **options)
    path = [problem.theta0.copy()]
    for _ in range(steps):
        noise = rng.standard_normal((1, problem.d))[0] * np.sqrt(problem.c / batch_size)
        param.grad = torch.from_numpy(problem.h * param.detach().numpy() + noise)
        optimizer.step()
        path.append(param.detach().numpy().copy())
    return np.array(path)


def linear_system_path(problem, steps, noise, **settings):
    """Iterate x' = A x + b ε with nqm_lib's matrices (the first step's own, if any)."""
    from nqm_lib.dynamics import Hyperparams, linear_system

    system = linear_system(problem, Hyperparams(**settings))
    x = system.start[None, :] * problem.theta0[:, None]
    path = [x[:, 0].copy()]
    for t in range(steps):
        first = t == 0 and system.first_A is not None
        A, b = (system.first_A, system.first_b) if first else (system.A, system.b)
        x = np.einsum("dij,dj->di", A, x) + b * noise[t][:, None]
        path.append(x[:, 0].copy())
    return np.array(path)


@pytest.mark.parametrize("options", [v for v in VARIANTS if "ema_decay" not in v])
def test_claim_nesterov_and_dampened_momentum_match_torch_sgd_step_for_step(options):
    from nqm_lib import sample_path

    lr, steps, seed = 0.005, 60, 3
    reference = torch_path(WORKED, steps, lr, seed, **options)
    ours = sample_path(WORKED, steps, lr=lr, seed=seed, **options)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)
    # the same run through the linear system x' = A x + b ε (same noise, PyTorch's first step)
    rng = np.random.default_rng(seed)
    noise = [rng.standard_normal((1, 2))[0] * np.sqrt(WORKED.c) for _ in range(steps)]
    by_system = linear_system_path(WORKED, steps, noise, lr=lr, **options)
    np.testing.assert_allclose(by_system, reference, atol=1e-12)


def test_claim_torch_applies_dampening_from_the_second_step_on():
    # the first step of dampened momentum is a plain SGD step θ − η g(0) (velocity = g(0))
    path = torch_path(NQM([1.0], [0.0], theta0=[1.0]), 2, 0.1, 0, momentum=0.9, dampening=0.9)
    assert path[1, 0] == pytest.approx(0.9, rel=1e-14)  # 1 − 0.1 · 1
    # second step: v = 0.9 · 1 + 0.1 · 0.9 = 0.99
    assert path[2, 0] == pytest.approx(0.9 - 0.1 * 0.99, rel=1e-14)


def exact_risk_by_hand(problem, steps, lr, momentum, dampening=0.0, nesterov=False, batch_size=1):
    """Mean and covariance of (θ, v) pushed through torch.optim.SGD's step by hand, per coordinate."""
    risk = []
    for h, c, theta0 in zip(problem.h, problem.c, problem.theta0, strict=True):
        mean = np.array([theta0, 0.0])
        cov = np.zeros((2, 2))
        curve = [0.5 * h * theta0**2]
        for t in range(steps):
            kept = 1.0 if t == 0 else 1.0 - dampening  # PyTorch: v(1) = g(0), undamped
            # v' = β v + kept (h θ + ε); θ' = θ − η (g + β v') if Nesterov else θ − η v'
            v_row = np.array([kept * h, momentum])
            v_noise = kept
            if nesterov:
                theta_row = np.array([1.0, 0.0]) - lr * (np.array([h, 0.0]) + momentum * v_row)
                theta_noise = -lr * (1.0 + momentum * v_noise)
            else:
                theta_row = np.array([1.0, 0.0]) - lr * v_row
                theta_noise = -lr * v_noise
            A = np.array([theta_row, v_row])
            b = np.array([theta_noise, v_noise])
            mean = A @ mean
            cov = A @ cov @ A.T + (c / batch_size) * np.outer(b, b)
            curve.append(0.5 * h * (mean[0] ** 2 + cov[0, 0]))
        risk.append(curve)
    return np.sum(risk, axis=0)


@pytest.mark.parametrize("options", [v for v in VARIANTS if "ema_decay" not in v])
def test_claim_exact_risk_of_nesterov_and_dampened_momentum(options):
    steps, lr = 300, 0.005
    expected = exact_risk_by_hand(WORKED, steps, lr, **options)
    np.testing.assert_allclose(risk_curve(WORKED, steps, lr=lr, **options), expected, rtol=1e-9)
    sim = simulate(WORKED, steps, lr=lr, trials=20_000, seed=5, **options)
    z = (sim.risk - expected)[1:] / sim.risk_stderr[1:]
    assert np.max(np.abs(z)) < 4.5  # 300 correlated comparisons at 4.5 s.e.


def test_claim_variants_with_an_ema_match_monte_carlo():
    options = VARIANTS[-1]
    exact = risk_curve(WORKED, 200, lr=0.004, **options)
    sim = simulate(WORKED, 200, lr=0.004, trials=20_000, seed=6, **options)
    assert np.max(np.abs((sim.risk - exact)[1:] / sim.risk_stderr[1:])) < 4.5


def spectral_radius(x, momentum, dampening=0.0, nesterov=False):
    """Largest |eigenvalue| of the (θ, v) transition matrix of one coordinate with η h = x."""
    kept = 1.0 - dampening
    if nesterov:
        A = [[1 - x * (1 + momentum), -x * momentum**2], [1.0, momentum]]  # h = 1, η = x
    else:
        A = [[1 - x * kept, -x * momentum], [kept, momentum]]
    return np.max(np.abs(np.linalg.eigvals(np.array(A))))


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9, 0.99])
@pytest.mark.parametrize(
    ("options", "limit"),
    [
        ({}, lambda b: 2 * (1 + b)),
        ({"nesterov": True}, lambda b: 2 * (1 + b) / (1 + 2 * b)),
        ({"dampening": "beta"}, lambda b: 2 * (1 + b) / (1 - b)),
    ],
)
def test_claim_stability_limits_of_heavy_ball_nesterov_and_dampened_momentum(beta, options, limit):
    from nqm_lib.dynamics import stability_limit

    options = {k: (beta if v == "beta" else v) for k, v in options.items()}
    bound = limit(beta)
    assert stability_limit(beta, **options) == pytest.approx(bound, rel=1e-12)
    assert spectral_radius(bound * 0.999, beta, **options) < 1
    assert spectral_radius(bound * 1.001, beta, **options) > 1
    one = one_coordinate()
    assert max_stable_lr(one, momentum=beta, **options) == pytest.approx(bound, rel=1e-12)
    with pytest.raises(InstabilityError, match="unstable"):
        risk_curve(one, 10, lr=bound * 1.001, momentum=beta, **options)
    assert np.isfinite(steady_state_risk(one, lr=bound * 0.99, momentum=beta, **options))


def test_claim_dampened_momentum_has_effective_learning_rate_lr_not_lr_over_one_minus_beta():
    # dampening = β: the slow root is 1 − ηh to first order, so it runs like SGD at η itself
    beta, lr = 0.9, 2e-5  # q = β η h_1 / (1 − β)² · (1 − β) is small
    damped = risk_curve(WORKED, 20_000, lr=lr, momentum=beta, dampening=beta)
    sgd_same = risk_curve(WORKED, 20_000, lr=lr)
    sgd_scaled = risk_curve(WORKED, 20_000, lr=lr / (1 - beta))
    assert np.max(np.abs(damped / sgd_same - 1)) < 0.05
    assert np.max(np.abs(damped / sgd_scaled - 1)) > 1.0
    (z1,) = formulas.momentum_roots(1.0, lr=lr * (1 - beta), momentum=beta)[:1]
    assert 1 - abs(z1) == pytest.approx(lr, rel=0.01)  # rate of the flat coordinate ≈ η h_2


def test_nesterov_requires_momentum_and_no_dampening_as_torch_does():
    with pytest.raises(ValueError, match="nesterov"):
        risk_curve(WORKED, 10, lr=0.001, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        risk_curve(WORKED, 10, lr=0.001, momentum=0.5, dampening=0.5, nesterov=True)
    with pytest.raises(ValueError, match="dampening"):
        risk_curve(WORKED, 10, lr=0.001, momentum=0.5, dampening=1.0)


# ------------------------------------------------------------ momentum helps only at large B (robust metric)


def worst_risk_over_window(batch_size, beta, points, start=50, budget=100):
    """For each η of a grid up to the stability limit: max over start ≤ t ≤ budget of the exact risk."""
    from nqm_lib.theory import first_minimum

    grid = np.geomspace(1e-4 * (1 - beta), 0.999 * max_stable_lr(WORKED, momentum=beta), points)
    curves = np.array(
        [risk_curve(WORKED, budget, lr=eta, momentum=beta, batch_size=batch_size) for eta in grid]
    )
    worst = curves[:, start:].max(axis=1)
    best = first_minimum(worst)
    return grid, curves, worst, best


def test_claim_momentum_helps_little_at_batch_1_and_much_at_batch_10000_by_worst_risk_over_steps_50_to_100():
    # four times the chapter's grid of 60 learning rates: the conclusion must not depend on it
    gains = {}
    for batch_size in (1, 10_000):
        tuned = {beta: worst_risk_over_window(batch_size, beta, 240) for beta in (0.0, 0.5, 0.9)}
        best = {beta: result[2][result[3]] for beta, result in tuned.items()}
        gains[batch_size] = best[0.0] / min(best[0.5], best[0.9])
    assert 1.0 <= gains[1] < 1.25
    assert gains[10_000] > 10.0


def test_claim_risk_at_a_single_step_rewards_the_phase_of_an_under_damped_oscillation():
    # at B = 10⁴ the best β = 0.9 run by the risk at t = 100 sits on a dip: far below its own
    # worst risk over steps 50..100 and below the value a few steps earlier or later
    from nqm_lib.theory import first_minimum

    grid, curves, _, _ = worst_risk_over_window(10_000, 0.9, 60)
    j = first_minimum(curves[:, 100])
    curve = risk_curve(WORKED, 110, lr=grid[j], momentum=0.9, batch_size=10_000)
    assert curve[100] < curve[50:101].max() / 5
    assert curve[100] < min(curve[95:100].max(), curve[101:106].max())


def test_claim_dampening_is_heavy_ball_at_lr_times_one_minus_dampening_after_the_first_step():
    from nqm_lib import sample_path
    from nqm_lib.dynamics import Hyperparams, linear_system

    lr, beta, delta = 0.02, 0.9, 0.6
    damped = linear_system(WORKED, Hyperparams(lr, momentum=beta, dampening=delta))
    heavy = linear_system(WORKED, Hyperparams(lr * (1 - delta), momentum=beta))
    # same θ rows; the velocity is rescaled by 1 − δ, which leaves θ's path unchanged
    scale = np.diag([1.0, 1.0 - delta, 1.0])
    np.testing.assert_allclose(damped.A, scale @ heavy.A @ np.linalg.inv(scale), rtol=1e-13, atol=1e-15)
    # PyTorch's undamped first step: the paths differ by η δ g(0) after one step, then the gap decays
    a = sample_path(WORKED, 400, lr=lr, momentum=beta, dampening=delta, batch_size=64, seed=2)
    b = sample_path(WORKED, 400, lr=lr * (1 - delta), momentum=beta, batch_size=64, seed=2)
    first_gradient = (WORKED.theta0 - b[1]) / (lr * (1 - delta))  # heavy ball's first step is η(1 − δ) g(0)
    np.testing.assert_allclose(a[1] - b[1], -lr * delta * first_gradient, rtol=1e-10)
    assert np.abs(a[400] - b[400]).max() < 1e-3 * np.abs(a[1] - b[1]).max()


# ------------------------------------------------------------ the review's corrections (issue 21, items 2–4)


def test_claim_at_batch_1_the_run_picked_by_the_risk_at_step_100_falls_smoothly_through_step_100():
    # the risk at t = 100 alone picks β = 0.9 at B = 1 (as at B = 10⁴), but not on a dip: the chosen
    # run has stopped oscillating well before t = 100 and falls monotonically through it
    from nqm_lib.theory import first_minimum

    best_at_100 = {}
    for beta in (0.5, 0.9):
        grid, curves, _, _ = worst_risk_over_window(1, beta, 60)
        j = first_minimum(curves[:, 100])
        best_at_100[beta] = (grid[j], curves[j, 100])
    assert best_at_100[0.9][1] < best_at_100[0.5][1]
    curve = risk_curve(WORKED, 130, lr=best_at_100[0.9][0], momentum=0.9)
    assert np.all(np.diff(curve[70:]) < 0)
    rises = np.flatnonzero(np.diff(curve) > 0)
    assert rises.size and rises.max() < 70  # it did oscillate early on


def test_claim_at_batch_1_the_worst_risk_over_the_window_of_falling_runs_is_their_risk_at_step_50():
    # SGD's and β = 0.5's best runs by the window still fall through it, so the criterion measures
    # their risk at t = 50: a different horizon from t = 100, at which β = 0.9 would be ahead
    for beta in (0.0, 0.5):
        grid, curves, worst, best = worst_risk_over_window(1, beta, 60)
        assert np.all(np.diff(curves[best, 50:]) < 0)
        assert worst[best] == curves[best, 50]
    window_best = {beta: worst_risk_over_window(1, beta, 60) for beta in (0.5, 0.9)}
    scores = {beta: result[2][result[3]] for beta, result in window_best.items()}
    assert scores[0.5] < scores[0.9]


def test_claim_the_worst_risk_over_the_window_jumps_across_neighbouring_learning_rates():
    # β = 0.9, B = 1: the window maximum still depends on the phase near the window's start
    grid, curves, worst, best = worst_risk_over_window(1, 0.9, 60)
    nearby = worst[best - 4 : best + 1]
    np.testing.assert_allclose(nearby, [0.462, 0.365, 0.406, 0.451, 0.356], atol=5e-4)
    steps = 50 + curves[best - 4 : best + 1, 50:].argmax(axis=1)
    assert set(steps) - {50}  # some maxima sit on an oscillation peak after t = 50, not at its start
    assert np.all(np.abs(np.diff(nearby)) > 0.03)  # up and down by more than 3% between neighbours
    assert grid[1] / grid[0] == pytest.approx(1.163, abs=1e-3)


def test_claim_by_either_criterion_momentum_gains_little_at_batch_1():
    from nqm_lib.theory import first_minimum

    at_100 = {}
    for beta in (0.0, 0.5, 0.9):
        _, curves, _, _ = worst_risk_over_window(1, beta, 60)
        at_100[beta] = curves[first_minimum(curves[:, 100]), 100]
    gain = at_100[0.0] / min(at_100[0.5], at_100[0.9])
    assert 1.0 < gain < 1.25
    assert gain == pytest.approx(1.16, abs=0.005)


def iterate_mean(x, beta, steps):
    """E[θ(t)]/θ(0) of noise-free heavy ball from rest, by its recurrence (θ(−1) = θ(0))."""
    mean = np.empty(steps)
    previous = current = 1.0
    for k in range(steps):
        mean[k] = current
        previous, current = current, (1 - x + beta) * current - beta * previous
    return mean


def test_claim_over_damped_roots_are_positive_below_lr_h_1_and_negative_above_so_the_mean_keeps_or_flips():
    for x in np.concatenate([np.geomspace(1e-3, 0.99, 25), np.linspace(1.01, 3.99, 25)]):
        boundary = (1 - np.sqrt(x)) ** 2
        for beta in np.linspace(0.0, boundary, 8)[:-1]:
            r1, r2 = roots_by_hand(x, beta)
            assert abs(r1.imag) == abs(r2.imag) == 0  # over-damped: real roots
            mean = iterate_mean(x, beta, 200)
            mean = mean[np.abs(mean) > 1e-250]
            if x < 1:
                assert r1.real > 0 and r2.real >= 0
                assert np.all(mean > 0)  # creeps to the optimum without crossing it
            else:
                assert r1.real < 0 and r2.real <= 0
                assert x > 1 + beta  # over-damping at ηh > 1 forces ηh > 1 + β: a negative root sum
                assert np.all(np.sign(mean[1:]) != np.sign(mean[:-1]))  # flips sign at every step


def test_claim_an_over_damped_stiff_spring_lands_nearer_each_step_only_up_to_lr_h_2():
    # 1 < ηh ≤ 2, over-damped: the mean flips sign at every step and never moves further out
    for x in np.linspace(1.01, 2.0, 30):
        for beta in np.linspace(0.0, (1 - np.sqrt(x)) ** 2, 8)[:-1]:
            mean = iterate_mean(x, beta, 300)
            mean = mean[np.abs(mean) > 1e-250]
            assert np.all(np.abs(mean[1:]) <= np.abs(mean[:-1]) * (1 + 1e-12))
    # ηh = 2.1, β = 0.15: over-damped and stable, but the first step lands further out (1 → −1.1)
    x, beta = 2.1, 0.15
    assert beta < (1 - np.sqrt(x)) ** 2 and x < 2 * (1 + beta)
    assert all(abs(root.imag) == 0 and abs(root) < 1 for root in roots_by_hand(x, beta))
    mean = iterate_mean(x, beta, 60)
    assert mean[1] == pytest.approx(1 - x, abs=1e-15) and abs(mean[1]) > 1
    assert np.all(np.abs(mean[2:]) < np.abs(mean[1:-1]))  # and only then shrinks


def test_claim_steps_to_target_moves_less_than_one_percent_when_the_first_crossing_lands_on_a_dip():
    """Chapter 6's tuned momentum run (B = 16384, target 0.01) first reaches the target at step 348
    on a dip, is above it again at steps 349 and 351, and below it for good from step 352 on."""
    from nqm_lib.batch_scaling import PAPER_DECAYS, PAPER_LRS, tuned_steps_to_target

    paper = NQM.paper_spectrum()
    run = tuned_steps_to_target(paper, 0.01, [16384], lrs=PAPER_LRS, momenta=PAPER_DECAYS)
    assert (run.lr[0], run.momentum[0]) == pytest.approx((1.5199, 0.97363), rel=1e-4)
    curve = risk_curve(paper, 600, lr=run.lr[0], momentum=run.momentum[0], batch_size=16384)
    above = np.flatnonzero(curve > 0.01)
    first = int(np.flatnonzero(curve <= 0.01)[0])
    assert first == run.steps[0] == 348
    assert above[above > first].tolist() == [349, 351]
    assert (351 - first) / first < 0.01


def test_claim_the_wrong_rule_errs_strictly_except_at_lr_h_1_where_both_sides_are_0():
    x = np.linspace(1e-3, 3.999, 4000)
    x = x[np.abs(x - 1) > 1e-9]
    assert np.all(np.abs(1 - x) > np.abs(1 - np.sqrt(x)))
    assert abs(1 - 1.0) == abs(1 - np.sqrt(1.0)) == 0.0


VARIANT_SETTINGS = {  # β = 0.9, effective learning rate 0.03 for each
    "heavy ball": {"lr": 0.003},
    "Nesterov": {"lr": 0.003, "nesterov": True},
    "dampening": {"lr": 0.03, "dampening": 0.9},
}


def test_claim_the_damped_form_crosses_the_optimum_at_once_and_its_risk_peaks_at_step_4():
    from nqm_lib import sample_path

    noise_free = NQM(WORKED.h, [0.0, 0.0], theta0=WORKED.theta0)
    stiff = sample_path(noise_free, 8, momentum=0.9, **VARIANT_SETTINGS["dampening"])[:, 0]
    assert stiff[1] == pytest.approx(1 - 0.03 * 50)  # a full SGD step: η h₁ = 1.5 crosses the optimum
    assert stiff[1] == pytest.approx(-0.5)
    assert np.all(np.diff(stiff[:5]) < 0) and np.all(np.diff(stiff[4:]) > 0)  # turned round at step 4
    assert stiff[4] == pytest.approx(-3.051, abs=5e-4)
    curve = exact_risk_by_hand(WORKED, 300, momentum=0.9, batch_size=10_000, **VARIANT_SETTINGS["dampening"])
    assert 1 + np.argmax(curve[1:]) == 4
    assert curve[4] == pytest.approx(233.1, abs=0.05)
    # the damped recursion from rest would take a first step ten times smaller: η (1 − β) g(0)
    from_rest = 1 - 0.03 * (1 - 0.9) * 50
    assert (1 - stiff[1]) / (1 - from_rest) == pytest.approx(10.0)


def test_claim_heavy_balls_largest_risk_after_the_start_is_its_value_at_step_1_although_it_swings():
    from nqm_lib import sample_path

    curve = exact_risk_by_hand(WORKED, 300, momentum=0.9, batch_size=10_000, **VARIANT_SETTINGS["heavy ball"])
    assert np.argmax(curve[1:]) == 0
    assert curve[1] == pytest.approx(18.56, abs=0.01)
    assert np.any(np.diff(curve[1:]) > 0)  # it does rise again, just never as high
    noise_free = NQM(WORKED.h, [0.0, 0.0], theta0=WORKED.theta0)
    stiff = sample_path(noise_free, 20, momentum=0.9, lr=0.003)[:, 0]
    assert np.any(stiff < 0) and np.any(stiff[1:] > 0)  # the stiff coordinate swings about the optimum
    nesterov = exact_risk_by_hand(WORKED, 300, momentum=0.9, batch_size=10**4, **VARIANT_SETTINGS["Nesterov"])
    assert nesterov[-1] < curve[-1]  # and Nesterov ends on a lower floor
