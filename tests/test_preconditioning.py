"""Chapter 5's claims about preconditioned SGD (``P = H^p``) and weight decay, and its figure.

The oracles are written here from the update rules alone, not taken from ``nqm_lib``:

* the second-moment recursion ``E[θ²_{t+1}] = r² E[θ²_t] + η² h^{−2p} c / B`` with
  ``r = 1 − η h^{1−p}``, iterated with a loop;
* seeded Monte Carlo of ``θ ← θ − η h^{−p}(hθ + ε)`` (and of SGD with the weight-decay gradient
  ``hθ + λθ + ε``), written in this file.

Exact comparisons use ``rtol ≤ 1e-10``. Monte Carlo estimates must lie within 4 standard
errors of the exact value, and every run uses enough trials that the standard error is below
0.75% of the value, so a 3% error in a formula would fail.
"""

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from nqm_lib import (
    NQM,
    InstabilityError,
    max_stable_lr,
    risk_curve,
    risk_curve_per_coordinate,
    steady_state_risk_per_coordinate,
)
from nqm_lib.figures_preconditioning import preconditioned_risk_figure
from nqm_lib.widgets import Explorer

plt.switch_backend("Agg")

MC_SIGMAS = 4.0


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- independent oracles


def floor_by_recursion(h, c, *, lr, batch_size, precond_power, steps=5000):
    """Steady-state risk ½ h E[θ²] by iterating the second-moment recursion from θ = 0."""
    r = 1.0 - lr * h ** (1.0 - precond_power)
    noise = h ** (-2.0 * precond_power) * c / batch_size
    second_moment = np.zeros_like(h)
    for _ in range(steps):
        second_moment = r * r * second_moment + lr * lr * noise
    return 0.5 * h * second_moment


def preconditioned_sgd_monte_carlo(h, c, *, lr, batch_size, precond_power, steps, trials, seed):
    """Mean and standard error of ½ h_i θ_i(steps)² over `trials` runs of the update from θ = 0."""
    rng = np.random.default_rng(seed)
    theta = np.zeros((trials, h.size))
    for _ in range(steps):
        gradient = h * theta + rng.standard_normal(theta.shape) * np.sqrt(c / batch_size)
        theta = theta - lr * h ** (-precond_power) * gradient
    losses = 0.5 * h * theta**2
    return losses.mean(axis=0), losses.std(axis=0, ddof=1) / np.sqrt(trials)


def exact_floor(h, c, *, lr, batch_size, precond_power):
    """The chapter's formula η c h^{−p} / (2B(2 − η h^{1−p}))."""
    h_eff = h ** (1.0 - precond_power)
    return lr * c * h ** (-precond_power) / (2.0 * batch_size * (2.0 - lr * h_eff))


# ---------------------------------------------------------------- the steady-state risk

H2, C2 = np.array([4.0, 0.25]), np.array([2.0, 0.5])  # C ≠ H on purpose


@pytest.mark.parametrize(
    ("precond_power", "lr", "batch_size"),
    [(0.0, 0.3, 1), (0.5, 0.2, 2), (0.5, 0.9, 1), (0.75, 0.5, 8), (1.0, 1.5, 3)],
)
def test_claim_preconditioned_steady_state_risk_formula_matches_the_exact_recursion(
    precond_power, lr, batch_size
):
    problem = NQM(H2, C2)
    settings = {"lr": lr, "batch_size": batch_size, "precond_power": precond_power}
    formula = exact_floor(H2, C2, **settings)
    np.testing.assert_allclose(steady_state_risk_per_coordinate(problem, **settings), formula, rtol=1e-12)
    np.testing.assert_allclose(floor_by_recursion(H2, C2, **settings), formula, rtol=1e-10)
    # the floor is the limit of the exact risk curve
    np.testing.assert_allclose(risk_curve_per_coordinate(problem, 3000, **settings)[-1], formula, rtol=1e-10)


def test_claim_preconditioned_steady_state_risk_formula_matches_monte_carlo_and_seed_variants_do_not():
    settings = {"lr": 0.2, "batch_size": 2, "precond_power": 0.5}
    # r = 1 − η h^{1−p} = (0.6, 0.9): after 150 steps r^{300} < 1e-13, so θ is stationary
    mean, stderr = preconditioned_sgd_monte_carlo(H2, C2, steps=150, trials=40_000, seed=11, **settings)
    formula = exact_floor(H2, C2, **settings)
    assert np.all(stderr < 0.0075 * formula)  # a 3% error in the formula would be > 4 s.e.
    assert np.all(np.abs(mean - formula) < MC_SIGMAS * stderr), (mean, formula, stderr)

    eta, b, p = settings["lr"], settings["batch_size"], settings["precond_power"]
    h_eff = H2 ** (1 - p)
    far = 10 * stderr
    # seed variant 1: (h_i)^{+p} in place of h_i^{−p}
    plus_p = eta * C2 * H2**p / (2 * b * (2 - eta * h_eff))
    assert np.all(np.abs(mean - plus_p) > far)
    # seed variant 2: "variance ≈ η c h^{−2p} / 2" (stated for B = 1; here with its 1/B restored).
    # The variance is 2/h times the risk, and its Monte Carlo standard error scales the same way.
    variance_mc, variance_se = 2 * mean / H2, 2 * stderr / H2
    seed_variance = eta * C2 * H2 ** (-2 * p) / (2 * b)
    assert np.all(np.abs(variance_mc - seed_variance) > 10 * variance_se)
    exact_variance = eta * C2 * H2 ** (-1 - p) / (b * (2 - eta * h_eff))
    assert np.all(np.abs(variance_mc - exact_variance) < MC_SIGMAS * variance_se)
    # seed variant 3: "a factor 2 h^{−2p}" relative to SGD's floor at the same η and B
    sgd_floor = eta * C2 / (2 * b * (2 - eta * H2))
    assert np.all(np.abs(mean - 2 * H2 ** (-2 * p) * sgd_floor) > far)
    # the right factor is h^{−p}(2 − ηh)/(2 − ηh̃)
    factor = H2**-p * (2 - eta * H2) / (2 - eta * h_eff)
    assert np.all(np.abs(mean - factor * sgd_floor) < MC_SIGMAS * stderr)


# ---------------------------------------------------------------- the small-η approximation


@pytest.mark.parametrize(
    ("h", "c", "precond_power", "batch_size"), [(4.0, 2.0, 0.5, 1), (0.01, 0.3, 0.75, 16)]
)
def test_claim_small_lr_approximation_accuracy(h, c, precond_power, batch_size):
    problem = NQM([h], [c])
    h_eff = h ** (1 - precond_power)
    x = np.geomspace(1e-4, 1.999, 60)  # η h̃ across the whole stable range
    exact = np.array(
        [
            steady_state_risk_per_coordinate(
                problem, lr=value / h_eff, batch_size=batch_size, precond_power=precond_power
            )[0]
            for value in x
        ]
    )
    approx = (x / h_eff) * c * h ** (-precond_power) / (4 * batch_size)
    assert np.all(approx < exact)  # it always underestimates
    relative_to_exact = (exact - approx) / exact
    np.testing.assert_allclose(relative_to_exact, x / 2, rtol=1e-10)
    np.testing.assert_allclose((exact - approx) / approx, x / (2 - x), rtol=1e-10)
    # within 1% exactly when η h̃ ≤ 0.02; half the floor is missed at η h̃ = 1; near the
    # stability limit the approximation misses almost all of it
    assert np.all(relative_to_exact[x < 0.02] < 0.01)
    assert np.all(relative_to_exact[x > 0.02] > 0.01)
    np.testing.assert_allclose(
        steady_state_risk_per_coordinate(
            problem, lr=1 / h_eff, batch_size=batch_size, precond_power=precond_power
        )[0],
        2 * (1 / h_eff) * c * h ** (-precond_power) / (4 * batch_size),
        rtol=1e-12,
    )
    assert relative_to_exact[-1] > 0.99


# ---------------------------------------------------------------- the paper's expression


def paper_expression(h, c, *, batch_size, precond_power, sign=-1):
    """c_i/(2Bh_1) · (h_i/h_1)^{∓p} / (1 − (h_i/h_1)^{1−p}) for the coordinates with h_i < h_1."""
    u = h[1:] / h[0]
    return c[1:] / (2 * batch_size * h[0]) * u ** (sign * precond_power) / (1 - u ** (1 - precond_power))


@pytest.mark.parametrize("precond_power", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("batch_size", [1, 64])
def test_claim_paper_ill_conditioned_expression_is_exact_at_the_stability_limit(precond_power, batch_size):
    problem = NQM.paper_spectrum()
    h, c = problem.h, problem.c
    expression = paper_expression(h, c, batch_size=batch_size, precond_power=precond_power)
    limit = 2 / h[0] ** (1 - precond_power)
    # independent: the geometric-sum floor ½ h η² σ̃² / (1 − r²) at η = 2/h̃_1, for h_i < h_1
    r = 1 - limit * h[1:] ** (1 - precond_power)
    noise = h[1:] ** (-2 * precond_power) * c[1:] / batch_size
    np.testing.assert_allclose(expression, 0.5 * h[1:] * limit**2 * noise / (1 - r**2), rtol=1e-10)
    # the library's exact floor just below the limit agrees too (coordinate 1 diverges there)
    just_below = steady_state_risk_per_coordinate(
        problem, lr=limit * (1 - 1e-11), batch_size=batch_size, precond_power=precond_power
    )
    np.testing.assert_allclose(expression, just_below[1:] / problem.counts[1:], rtol=1e-8)
    assert just_below[0] > 1e8 * expression.max()

    # at η = 1/h̃_1 it is not exact: too large by (2 − x)/(1 − x) ≥ 2, x = (h_i/h_1)^{1−p}
    half = (
        steady_state_risk_per_coordinate(
            problem, lr=limit / 2, batch_size=batch_size, precond_power=precond_power
        )[1:]
        / problem.counts[1:]
    )
    x = (h[1:] / h[0]) ** (1 - precond_power)
    np.testing.assert_allclose(expression / half, (2 - x) / (1 - x), rtol=1e-10)
    assert np.all(expression / half >= 2)

    # the seed's (h_i/h_1)^{+p} variant is off by the factor (h_i/h_1)^{2p} at the limit
    plus_p = paper_expression(h, c, batch_size=batch_size, precond_power=precond_power, sign=+1)
    np.testing.assert_allclose(plus_p / expression, (h[1:] / h[0]) ** (2 * precond_power), rtol=1e-10)
    if precond_power > 0:
        assert np.min(plus_p / expression) < 0.5


def test_claim_paper_ill_conditioned_expression_increases_with_p():
    problem = NQM.paper_spectrum()
    powers = np.linspace(0.0, 0.95, 20)
    values = np.array([paper_expression(problem.h, problem.c, batch_size=1, precond_power=p) for p in powers])
    assert np.all(np.diff(values, axis=0) > 0)
    # so does the exact floor of every coordinate with h_i < h_1 at a fixed fraction a of the limit
    for fraction in (0.5, 1.0, 1.9):
        floors = np.array(
            [
                steady_state_risk_per_coordinate(
                    problem, lr=fraction / problem.h[0] ** (1 - p), precond_power=p
                )[1:]
                for p in powers
            ]
        )
        assert np.all(np.diff(floors, axis=0) > 0)


# ---------------------------------------------------------------- the transformed problem


@pytest.mark.parametrize("precond_power", [0.25, 0.5, 1.0])
def test_claim_preconditioning_equals_sgd_on_transformed_problem(precond_power):
    p = precond_power
    h, c, theta0 = np.array([4.0, 0.5, 0.01]), np.array([1.0, 2.0, 0.05]), np.array([1.0, -3.0, 10.0])
    original = NQM(h, c, theta0=theta0)
    lr = 0.7 * max_stable_lr(original, precond_power=p)
    settings = {"lr": lr, "batch_size": 3}
    steps = 400

    # rescaled coordinates φ = H^{p/2} θ: Hessian H^{1−p}, noise H^{−p} C, the same risk
    rescaled = NQM(h ** (1 - p), h**-p * c, theta0=h ** (p / 2) * theta0)
    assert max_stable_lr(rescaled) == pytest.approx(max_stable_lr(original, precond_power=p), rel=1e-14)
    np.testing.assert_allclose(
        risk_curve(rescaled, steps, **settings),
        risk_curve(original, steps, precond_power=p, **settings),
        rtol=1e-12,
    )
    # parameter units: curvature h^{1−p}, noise h^{−2p} c; the risk is h^p times what it reports
    parameter_units = NQM(h ** (1 - p), h ** (-2 * p) * c, theta0=theta0)
    np.testing.assert_allclose(
        h**p * risk_curve_per_coordinate(parameter_units, steps, **settings),
        risk_curve_per_coordinate(original, steps, precond_power=p, **settings),
        rtol=1e-12,
    )

    # run by run: the same noise drives θ (preconditioned) and φ (plain SGD); φ = h^{p/2} θ
    rng = np.random.default_rng(4)
    theta = np.tile(theta0, (50, 1))
    phi = h ** (p / 2) * theta
    for _ in range(steps):
        z = rng.standard_normal(theta.shape)
        theta = theta - lr * h**-p * (h * theta + z * np.sqrt(c / 3))
        phi = phi - lr * (h ** (1 - p) * phi + z * np.sqrt(h**-p * c / 3))
        np.testing.assert_allclose(phi, h ** (p / 2) * theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(0.5 * h ** (1 - p) * phi**2, 0.5 * h * theta**2, rtol=1e-9, atol=1e-15)


# ---------------------------------------------------------------- weight decay


def test_claim_weight_decay_shifts_curvature():
    h, c, theta0 = np.array([1.0, 0.01, 0.3]), np.array([1.0, 0.01, 0.5]), np.array([1.0, 10.0, -2.0])
    lam, lr, batch_size, steps = 0.1, 0.5, 2, 200
    decayed = NQM(h + lam, c, theta0=theta0)

    # independent recursion of θ ← θ − η(hθ + λθ + ε): second moment and mean
    second_moment, mean = [theta0**2], [theta0]
    for _ in range(steps):
        r = 1 - lr * (h + lam)
        second_moment.append(r * r * second_moment[-1] + lr * lr * c / batch_size)
        mean.append(r * mean[-1])
    second_moment = np.array(second_moment)
    library = risk_curve_per_coordinate(decayed, steps, lr=lr, batch_size=batch_size)
    np.testing.assert_allclose(library, 0.5 * (h + lam) * second_moment, rtol=1e-12)  # regularised loss
    np.testing.assert_allclose(library * h / (h + lam), 0.5 * h * second_moment, rtol=1e-12)  # L itself
    assert np.all(np.abs(mean[-1]) < 1e-4 * np.abs(theta0))  # the optimum stays at θ* = 0

    # Monte Carlo with the weight-decay gradient written out
    rng = np.random.default_rng(8)
    trials = 40_000
    theta = np.tile(theta0, (trials, 1))
    for _ in range(steps):
        gradient = h * theta + lam * theta + rng.standard_normal(theta.shape) * np.sqrt(c / batch_size)
        theta = theta - lr * gradient
    losses = (0.5 * (h + lam) * theta**2).sum(axis=1)
    stderr = losses.std(ddof=1) / np.sqrt(trials)
    assert stderr < 0.0075 * library[-1].sum()
    assert abs(losses.mean() - library[-1].sum()) < MC_SIGMAS * stderr

    # condition number and stability of the shifted problem
    assert decayed.kappa == pytest.approx((h.max() + lam) / (h.min() + lam), rel=1e-14)
    assert max_stable_lr(decayed) == pytest.approx(2 / (h.max() + lam), rel=1e-14)
    with pytest.raises(InstabilityError):
        risk_curve(decayed, 10, lr=2.01 / (h.max() + lam))


def test_claim_weight_decay_moves_the_optimum_only_when_it_is_not_at_zero():
    h, lam, lr = np.array([1.0, 0.01]), 0.1, 0.5
    for theta_star in (np.zeros(2), np.array([1.0, 10.0])):
        theta = np.array([3.0, -2.0])
        for _ in range(2000):  # mean dynamics of θ ← θ − η(h(θ − θ*) + λθ + ε)
            theta = theta - lr * (h * (theta - theta_star) + lam * theta)
        np.testing.assert_allclose(theta, h * theta_star / (h + lam), atol=1e-12)


# ---------------------------------------------------------------- the chapter's figure

FAST = {"steps": 60, "trials": 40}
FIGURE_SETTINGS = [
    {},
    {"precond_power": 0.0, "batch_size": 4, "lr": 0.05},
    {"precond_power": 1.0, "batch_size": 64, "lr": 1.0},
    {"precond_power": 0.3, "batch_size": 1, "lr": 1.9},
]


def lines_with_style(ax, style):
    return [
        line
        for line in ax.lines
        if line.get_linestyle() == style and line.get_marker() in (None, "None") and len(line.get_xdata())
    ]


@pytest.mark.parametrize("values", FIGURE_SETTINGS)
def test_preconditioned_risk_figure_plots_exact_theory_floors_sgd_and_simulation(values):
    fig = preconditioned_risk_figure(**values, **FAST)
    assert isinstance(fig, Figure)
    ax, bars = fig.axes
    settings = {"precond_power": 0.5, "batch_size": 1, "lr": 0.1, **values}
    h, c = np.array([1.0, 0.01]), np.array([1.0, 0.01])
    problem = NQM(h, c, theta0=[1.0, 10.0])
    assert ax.get_yscale() == "log"

    theory = lines_with_style(ax, "-")
    assert len(theory) == 3  # coordinate 1, coordinate 2, total
    exact = risk_curve_per_coordinate(problem, FAST["steps"], **settings)
    np.testing.assert_allclose(theory[0].get_ydata(), exact[:, 0], rtol=1e-12)
    np.testing.assert_allclose(theory[1].get_ydata(), exact[:, 1], rtol=1e-12)
    np.testing.assert_allclose(theory[2].get_ydata(), exact.sum(axis=1), rtol=1e-12)

    floors = [line.get_ydata()[0] for line in lines_with_style(ax, ":")]
    np.testing.assert_allclose(floors, exact_floor(h, c, **settings), rtol=1e-12)

    sgd = lines_with_style(ax, "--")
    assert len(sgd) == 2  # plain SGD per coordinate (stable in every setting here)
    sgd_exact = risk_curve_per_coordinate(
        problem, FAST["steps"], lr=settings["lr"], batch_size=settings["batch_size"]
    )
    np.testing.assert_allclose(sgd[1].get_ydata(), sgd_exact[:, 1], rtol=1e-12)

    assert len([line for line in ax.lines if line.get_marker() == "o"]) == 3  # Monte Carlo
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[0].startswith("coordinate 1") and labels[1].startswith("coordinate 2")
    assert any("Monte Carlo" in label for label in labels) and any("SGD" in label for label in labels)
    for line in ax.lines:
        assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float)))

    # the transformed problem: h, h^{1−p}, c, h^{−p} c for each coordinate
    p = settings["precond_power"]
    assert bars.get_yscale() == "log"
    for i, container in enumerate(bars.containers):
        heights = [patch.get_height() for patch in container.patches]
        np.testing.assert_allclose(heights, [h[i], h[i] ** (1 - p), c[i], h[i] ** -p * c[i]], rtol=1e-12)


def test_preconditioned_risk_figure_omits_sgd_when_only_sgd_is_unstable():
    fig = preconditioned_risk_figure(precond_power=1.0, lr=1.0, h=(4.0, 0.01), c=(4.0, 0.01), **FAST)
    ax = fig.axes[0]
    assert lines_with_style(ax, "--") == []
    assert "SGD unstable" in ax.get_title()


def test_preconditioned_risk_figure_draws_unstable_and_rejects_invalid_settings():
    fig = preconditioned_risk_figure(lr=2.5, **FAST)  # η h̃_1 = 2.5 ≥ 2 for every p here
    assert [text.get_text() for text in fig.axes[0].texts] == ["diverges: ηh₁¹⁻ᵖ = 2.5 ≥ 2"]
    for line in fig.axes[0].lines:
        assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float)))
    with pytest.raises(ValueError, match="precond_power"):
        preconditioned_risk_figure(precond_power=1.5, **FAST)
    with pytest.raises(ValueError, match="batch_size"):
        preconditioned_risk_figure(batch_size=0, **FAST)


def test_preconditioned_risk_figure_in_explorer_draws_an_unstable_setting():
    controls = {"lr": ipywidgets.FloatLogSlider(value=2.5, base=10, min=-3, max=0.4)}
    explorer = Explorer(preconditioned_risk_figure, controls, fixed=FAST)
    fig = explorer.figure()
    assert len(fig.axes) == 2 and "diverges" in fig.axes[0].texts[0].get_text()
    assert len(explorer.figure(lr=0.1).axes) == 2


# ---------------------------------------------------------------- the best power and B


def risk_at_budget(problem, p, batch_size, eta, budget=1000):
    """E[L(θ_T)] for each learning rate of the 1-D array ``eta``, written out from the closed
    form of plain SGD on the transformed problem: factor r = 1 − η h^{1−p}, floor
    η c h^{−p} / (2B(2 − η h^{1−p})), initial risk ½ h θ(0)²."""
    h = problem.h
    eta = np.asarray(eta)[:, None]
    r2t = (1.0 - eta * h ** (1.0 - p)) ** (2 * budget)
    floor = eta * problem.c * h**-p / (2.0 * batch_size * (2.0 - eta * h ** (1.0 - p)))
    initial = 0.5 * h * problem.theta0**2
    return ((r2t * initial + (1.0 - r2t) * floor) * problem.counts).sum(axis=1)


def tuned_risk_at_budget(problem, p, batch_size):
    """min over every stable η of E[L(θ_T)]: η = limit/(1 + e^{−x}) on 400 values of x from
    1e-4 to 1 − 1e-6 of the stability limit, refined once on 400 values around the best."""
    limit = 2.0 / problem.h.max() ** (1.0 - p)
    x = np.linspace(np.log(1e-4), np.log(1e6), 400)
    for _ in range(2):
        risk = risk_at_budget(problem, p, batch_size, limit / (1.0 + np.exp(-x)))
        k = int(np.argmin(risk))
        value = risk[k]
        x = np.linspace(x[max(k - 1, 0)], x[min(k + 1, x.size - 1)], 400)
    return value


POWERS = np.linspace(0.0, 1.0, 51)
BATCH_SIZES = [int(b) for b in 2 ** np.arange(0, 17, 2)]


def test_claim_best_power_never_decreases_as_the_batch_size_grows():
    """Chapter 5: on the paper's problem with T = 1000 and η tuned exactly, best p rises with B."""
    paper = NQM.paper_spectrum()
    assert risk_at_budget(paper, 0.5, 16, [0.07])[0] == pytest.approx(
        risk_curve(paper, 1000, lr=0.07, batch_size=16, precond_power=0.5)[-1], rel=1e-10
    )  # the closed form written here is the exact risk
    best_power = []
    for b in BATCH_SIZES:
        risk = [tuned_risk_at_budget(paper, p, b) for p in POWERS]
        best_power.append(POWERS[int(np.argmin(risk))])
    assert np.all(np.diff(best_power) >= 0), best_power
    assert best_power[0] == pytest.approx(0.5)  # B = 1: Adam's power
    assert 0.85 <= best_power[-1] < 1.0  # B = 65536: close to, but below, Newton's method


def test_claim_a_30_point_learning_rate_grid_makes_the_best_power_go_up_and_down():
    """Chapter 5: with η only on 30 geometric points up to 0.99 of the limit, best p is not monotone."""
    paper = NQM.paper_spectrum()
    best_power = []
    for b in BATCH_SIZES:
        coarse = [
            risk_at_budget(paper, p, b, np.geomspace(1e-4, 0.99, 30) * 2.0 / paper.h.max() ** (1.0 - p)).min()
            for p in POWERS
        ]
        best_power.append(POWERS[int(np.argmin(coarse))])
    assert np.any(np.diff(best_power) < 0), best_power
