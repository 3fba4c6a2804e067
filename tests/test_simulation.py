"""Monte Carlo (``nqm_lib.simulate``, ``nqm_lib.sample_minibatch_gradients``) against exact theory.

Tolerances: every Monte Carlo comparison allows 4 standard errors. The trial counts are
chosen so that 4 standard errors are below 3% of the compared quantity (so a real 3% error
fails): for a zero-mean Gaussian iterate the relative standard error of the mean of ``θ²`` is
``sqrt(2/n)``, i.e. 0.71% at n = 40 000 (4 s.e. = 2.8%), and smaller when the mean dominates.
With Gaussian noise (and Gaussian data in the data model) every iterate is Gaussian, which
the per-coordinate standard errors below use.
"""

import numpy as np
import pytest

from nqm_lib import (
    NQM,
    risk_curve,
    risk_curve_per_coordinate,
    sample_minibatch_gradients,
    simulate,
    simulation,
    steady_state_risk,
    trajectory_risk,
)
from nqm_lib.formulas import sgd_steady_state_risk, sgd_steady_state_variance

TRIALS = 40_000
N_SE = 4.0


def assert_within_standard_errors(estimate, expected, stderr, n_se=N_SE):
    estimate, expected, stderr = map(np.asarray, (estimate, expected, stderr))
    z = np.abs(estimate - expected) / stderr
    assert np.all(z <= n_se), f"|z| = {z} exceeds {n_se} standard errors"


# ---------------------------------------------------------------- the worked example (chapter 2)


def test_worked_example_simulation_matches_theory_per_coordinate():
    h, c, theta0, lr = np.array([50.0, 1.0]), np.array([50.0, 1.0]), np.array([1.0, 1.0]), 0.02
    problem = NQM(h, c, theta0)
    steps = 200
    sim = simulate(problem, steps, lr=lr, trials=TRIALS, seed=2019)
    theory = risk_curve_per_coordinate(problem, steps, lr=lr)
    for t in (1, 10, 50, 200):
        # hand-derived Gaussian law of θ_i(t): mean r^t θ0, variance η² c (1 − r^{2t}) / (1 − r²)
        r = 1.0 - lr * h
        mean = r**t * theta0
        var = lr**2 * c * (1.0 - r ** (2 * t)) / (1.0 - r**2)
        stderr = 0.5 * h * np.sqrt((2 * var**2 + 4 * mean**2 * var) / TRIALS)
        assert_within_standard_errors(sim.risk_per_coordinate[t], theory[t], stderr)
    # at t = 200 the coordinates sit at the hand values: E[θ_1²] = 0.02, risk_1 = 0.5
    assert theory[200, 0] == pytest.approx(0.5, rel=1e-13)
    assert_within_standard_errors(
        2 * sim.risk_per_coordinate[200, 0] / 50.0, 0.02, 0.02 * np.sqrt(2 / TRIALS)
    )


def test_simulation_starts_exactly_at_the_initial_risk():
    problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, -2.0], counts=[1, 2])
    sim = simulate(problem, 5, lr=0.02, momentum=0.3, ema_decay=0.5, trials=10)
    assert sim.risk[0] == pytest.approx(0.5 * 50 + 2 * 0.5 * 4, rel=1e-15)
    assert sim.risk_stderr[0] == 0.0


# ---------------------------------------------------------------- simulate vs risk_curve

SIMULATION_CASES = [
    pytest.param({"lr": 0.3, "batch_size": 4}, id="plain-B4"),
    pytest.param({"lr": 0.1, "momentum": 0.6}, id="momentum"),
    pytest.param({"lr": 0.3, "ema_decay": 0.8}, id="ema"),
    pytest.param({"lr": 0.4, "precond_power": 0.5, "batch_size": 2}, id="precond"),
    pytest.param(
        {"lr": 0.2, "momentum": 0.5, "ema_decay": 0.7, "precond_power": 0.3, "batch_size": 2},
        id="momentum+ema+precond",
    ),
]


@pytest.mark.parametrize("hyper", SIMULATION_CASES)
def test_simulate_agrees_with_risk_curve(hyper):
    problem = NQM([4.0, 1.0], [1.0, 2.0], theta0=[1.0, 1.0])
    steps = 100
    sim = simulate(problem, steps, trials=TRIALS, seed=7, **hyper)
    theory = risk_curve(problem, steps, **hyper)
    times = [1, 3, 10, 30, 100]
    assert_within_standard_errors(sim.risk[times], theory[times], sim.risk_stderr[times])
    # the comparison has teeth: 4 s.e. is below 3% of the risk at every compared step
    assert np.all(N_SE * sim.risk_stderr[times] < 0.03 * theory[times])


def test_simulate_data_model_agrees_with_risk_curve():
    problem = NQM.from_data_model([2.0, 1.0], [1.0, 2.0], theta0=[1.0, 1.0])
    steps = 40
    sim = simulate(problem, steps, lr=0.3, batch_size=4, trials=TRIALS, seed=3)
    theory = risk_curve(problem, steps, lr=0.3, batch_size=4)
    times = [1, 5, 20, 40]
    assert_within_standard_errors(sim.risk[times], theory[times], sim.risk_stderr[times])
    assert np.all(N_SE * sim.risk_stderr[times] < 0.03 * theory[times])


def test_risk_stderr_is_the_standard_error_of_the_mean_risk():
    # d = 1, θ(0) = 0, r = 0.5: after 60 steps θ ~ N(0, s²) with ½ s² = steady-state risk, so
    # the per-trial loss ½θ² has standard deviation √2 · risk. The sample standard deviation
    # of a scaled χ²₁ variable has relative standard error ≈ √56 / (4√n) = 0.94% at n = 40 000.
    problem = NQM([1.0], [1.0], theta0=0.0)
    sim = simulate(problem, 60, lr=0.5, trials=TRIALS, seed=11)
    risk = steady_state_risk(problem, lr=0.5)
    expected = np.sqrt(2.0) * risk / np.sqrt(TRIALS)
    relative_se = np.sqrt(56.0) / (4.0 * np.sqrt(TRIALS))
    assert abs(sim.risk_stderr[-1] / expected - 1.0) <= N_SE * relative_se


def test_simulated_total_risk_is_sum_of_coordinates():
    problem = NQM([4.0, 1.0, 0.5], [1.0, 2.0, 0.5], theta0=[1.0, 1.0, -1.0], counts=[1, 2, 5])
    sim = simulate(problem, 20, lr=0.2, momentum=0.4, trials=100)
    np.testing.assert_allclose(sim.risk, sim.risk_per_coordinate.sum(axis=1), rtol=1e-12)


def test_counts_only_reweight_the_simulated_coordinates():
    hyper = {"lr": 0.2, "momentum": 0.4, "ema_decay": 0.5, "trials": 50, "seed": 5}
    single = simulate(NQM([4.0, 1.0], [1.0, 2.0]), 20, **hyper)
    weighted = simulate(NQM([4.0, 1.0], [1.0, 2.0], counts=[1, 3]), 20, **hyper)
    np.testing.assert_allclose(
        weighted.risk_per_coordinate[:, 0], single.risk_per_coordinate[:, 0], rtol=1e-14
    )
    np.testing.assert_allclose(
        weighted.risk_per_coordinate[:, 1], 3 * single.risk_per_coordinate[:, 1], rtol=1e-14
    )


# ---------------------------------------------------------------- seeds


def test_same_seed_gives_identical_results():
    problem = NQM([4.0, 1.0], [1.0, 2.0])
    a = simulate(problem, 30, lr=0.2, momentum=0.5, trials=64, seed=123)
    b = simulate(problem, 30, lr=0.2, momentum=0.5, trials=64, seed=123)
    np.testing.assert_array_equal(a.risk, b.risk)
    np.testing.assert_array_equal(a.risk_per_coordinate, b.risk_per_coordinate)
    np.testing.assert_array_equal(a.risk_stderr, b.risk_stderr)


@pytest.mark.parametrize("steps_per_block", [1, 7, 10_000])
def test_results_do_not_depend_on_how_many_steps_are_summarised_at_once(monkeypatch, steps_per_block):
    # simulate() keeps the iterates of a block of steps and reduces them together; a block of
    # one step is the plain per-step summary, and 7 does not divide the 31 recorded steps.
    problem = NQM([4.0, 1.0, 0.5], [1.0, 2.0, 0.5], theta0=[1.0, 1.0, -1.0], counts=[1, 2, 5])
    hyper = {"lr": 0.1, "momentum": 0.5, "ema_decay": 0.3, "precond_power": 0.5, "trials": 64, "seed": 9}
    reference = simulate(problem, 30, **hyper)
    monkeypatch.setattr(simulation, "_BLOCK_ELEMENTS", steps_per_block * hyper["trials"] * problem.d)
    blocked = simulate(problem, 30, **hyper)
    np.testing.assert_array_equal(blocked.risk, reference.risk)
    np.testing.assert_array_equal(blocked.risk_per_coordinate, reference.risk_per_coordinate)
    np.testing.assert_array_equal(blocked.risk_stderr, reference.risk_stderr)


def test_trajectory_risk_of_simulated_iterates_is_what_simulate_reports():
    # trajectory_risk summarises iterates made elsewhere (chapter 7: PyTorch's); here they are
    # made by hand with plain SGD, from simulate's own noise draws, so both must agree.
    problem = NQM([4.0, 1.0], [1.0, 2.0], theta0=[1.0, -1.0], counts=[1, 3])
    lr, steps, trials, seed = 0.1, 12, 16, 4
    rng = np.random.default_rng(seed)
    theta = np.broadcast_to(problem.theta0, (trials, 2)).copy()
    trajectory = [theta]
    for _ in range(steps):
        theta = theta - lr * (problem.h * theta + rng.standard_normal((trials, 2)) * np.sqrt(problem.c))
        trajectory.append(theta)
    summary = trajectory_risk(problem, np.array(trajectory))
    reference = simulate(problem, steps, lr=lr, trials=trials, seed=seed)
    np.testing.assert_allclose(summary.risk, reference.risk, rtol=1e-12)
    np.testing.assert_allclose(summary.risk_per_coordinate, reference.risk_per_coordinate, rtol=1e-12)
    np.testing.assert_allclose(summary.risk_stderr, reference.risk_stderr, rtol=1e-12)


def test_trajectory_risk_rejects_wrong_shapes_and_problems():
    problem = NQM([50.0, 1.0], [50.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        trajectory_risk(problem, np.zeros((5, 4, 3)))
    with pytest.raises(ValueError, match="shape"):
        trajectory_risk(problem, np.zeros((5, 1, 2)))
    with pytest.raises(TypeError, match="NQM"):
        trajectory_risk({"h": [1.0]}, np.zeros((5, 4, 1)))


def test_different_seeds_give_different_results():
    problem = NQM([4.0, 1.0], [1.0, 2.0])
    a = simulate(problem, 30, lr=0.2, trials=64, seed=1)
    b = simulate(problem, 30, lr=0.2, trials=64, seed=2)
    assert a.risk[0] == b.risk[0]  # the deterministic start
    assert np.all(a.risk[1:] != b.risk[1:])


def test_sample_minibatch_gradients_is_reproducible_by_seed():
    problem = NQM.from_data_model([2.0, 1.0], [1.0, 2.0])
    a = sample_minibatch_gradients(problem, [1.0, 1.0], batch_size=4, samples=10, seed=9)
    b = sample_minibatch_gradients(problem, [1.0, 1.0], batch_size=4, samples=10, seed=9)
    c = sample_minibatch_gradients(problem, [1.0, 1.0], batch_size=4, samples=10, seed=10)
    assert a.shape == (10, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- minibatch gradients


@pytest.mark.parametrize("batch_size", [1, 4, 16])
@pytest.mark.parametrize("data_model", [True, False], ids=["data-model", "gaussian-noise"])
def test_minibatch_gradients_have_mean_h_theta_and_covariance_c_over_b(batch_size, data_model):
    h, sigma, theta = np.array([2.0, 0.5]), np.array([1.5, 3.0]), np.array([1.0, -2.0])
    c = h**2 * sigma**2
    problem = NQM.from_data_model(h, sigma) if data_model else NQM(h, c)
    n = TRIALS
    g = sample_minibatch_gradients(problem, theta, batch_size=batch_size, samples=n, seed=batch_size)
    assert g.shape == (n, 2)
    # mean: standard error sqrt(c / (B n)) per coordinate
    assert_within_standard_errors(g.mean(axis=0), h * theta, np.sqrt(c / (batch_size * n)))
    # variance: for Gaussian gradients the sample variance has relative s.e. sqrt(2/(n − 1))
    variance = g.var(axis=0, ddof=1)
    assert_within_standard_errors(variance / (c / batch_size), 1.0, np.sqrt(2.0 / (n - 1)))
    # independent coordinates: the sample correlation has standard error 1/sqrt(n)
    correlation = np.corrcoef(g.T)[0, 1]
    assert_within_standard_errors(correlation, 0.0, 1.0 / np.sqrt(n))


def test_data_model_gradient_is_exact_in_a_noiseless_coordinate():
    problem = NQM.from_data_model([2.0, 0.5], [0.0, 1.0])
    g = sample_minibatch_gradients(problem, [3.0, 1.0], batch_size=4, samples=100)
    np.testing.assert_array_equal(g[:, 0], 6.0)
    assert np.std(g[:, 1]) > 0


# ---------------------------------------------------------------- a claim the seeds get wrong


def test_claim_steady_state_variance_vs_steady_state_risk_of_sgd_monte_carlo():
    """The simulated Var[θ_i] at large t is η c/(B h(2 − ηh)), not the risk ηc/(2B(2 − ηh)).

    Independent Monte Carlo written here (θ ← θ − η(hθ + ε), ε ~ N(0, c/B)), θ(0) = 0 so the
    mean stays 0; after 150 steps (slowest r = 0.9) the variance has converged (0.9^300 ≈ 2e-14).
    The sample variance of n Gaussian values has relative standard error sqrt(2/(n−1)).
    """
    h, c, lr, batch_size, n = np.array([4.0, 0.5]), np.array([1.0, 1.0]), 0.2, 2, 50_000
    rng = np.random.default_rng(42)
    theta = np.zeros((n, 2))
    for _ in range(150):
        theta = theta - lr * (h * theta + rng.standard_normal((n, 2)) * np.sqrt(c / batch_size))
    simulated_variance = theta.var(axis=0, ddof=1)
    variance = sgd_steady_state_variance(h, c, lr=lr, batch_size=batch_size)
    risk = sgd_steady_state_risk(h, c, lr=lr, batch_size=batch_size)
    stderr = variance * np.sqrt(2.0 / (n - 1))
    assert_within_standard_errors(simulated_variance, variance, stderr)
    # the risk formula is h/2 = 2 and 1/4 times the variance: dozens of standard errors away
    assert np.all(np.abs(simulated_variance - risk) > 20 * stderr)
    # and nqm_lib's own simulation agrees: its risk is (h/2)·Var, not Var
    sim = simulate(NQM(h, c, theta0=0.0), 150, lr=lr, batch_size=batch_size, trials=n, seed=4)
    from_library = 2.0 * sim.risk_per_coordinate[-1] / h
    assert_within_standard_errors(from_library, variance, stderr)


# ---------------------------------------------------------------- one run's iterates (chapters 2–3)


def test_sample_path_without_noise_is_gradient_descent_by_hand():
    from nqm_lib import sample_path

    noise_free = NQM([50.0, 1.0], [0.0, 0.0], theta0=[1.0, 1.0])
    path = sample_path(noise_free, 30, lr=0.035)
    expected = (1 - 0.035 * noise_free.h) ** np.arange(31)[:, None] * noise_free.theta0
    np.testing.assert_allclose(path, expected, rtol=1e-12, atol=1e-15)
    # heavy ball from rest by hand: θ(t+1) = (1 − ηh + β) θ(t) − β θ(t−1), θ(−1) = θ(0)
    momentum_path = sample_path(noise_free, 30, lr=0.01, momentum=0.7)
    previous, current = noise_free.theta0.copy(), noise_free.theta0.copy()
    for t in range(31):
        np.testing.assert_allclose(momentum_path[t], current, rtol=1e-12, atol=1e-15)
        previous, current = current, (1 - 0.01 * noise_free.h + 0.7) * current - 0.7 * previous


def test_sample_path_is_seeded_and_its_iterates_have_the_exact_risk_on_average():
    from nqm_lib import sample_path

    problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
    first = sample_path(problem, 50, lr=0.02, batch_size=4, seed=7)
    np.testing.assert_array_equal(first, sample_path(problem, 50, lr=0.02, batch_size=4, seed=7))
    assert first.shape == (51, 2)
    assert not np.array_equal(first, sample_path(problem, 50, lr=0.02, batch_size=4, seed=8))
    # over many seeds the mean loss at step 50 is the exact risk (4 standard errors)
    finals = [sample_path(problem, 50, lr=0.02, batch_size=4, seed=s)[-1] for s in range(4000)]
    losses = problem.loss(np.array(finals))
    exact = risk_curve(problem, 50, lr=0.02, batch_size=4)[-1]
    assert_within_standard_errors(losses.mean(), exact, losses.std(ddof=1) / np.sqrt(losses.size))


def test_sample_path_rejects_unstable_and_invalid_settings():
    from nqm_lib import InstabilityError, sample_path

    problem = NQM([50.0, 1.0], [50.0, 1.0])
    with pytest.raises(InstabilityError, match="choose lr < 0.04"):
        sample_path(problem, 10, lr=0.05)
    with pytest.raises(ValueError, match="momentum"):
        sample_path(problem, 10, lr=0.01, momentum=1.2)
    with pytest.raises(ValueError, match="steps"):
        sample_path(problem, -1, lr=0.01)
