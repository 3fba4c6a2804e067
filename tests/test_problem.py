"""The problem object ``nqm_lib.NQM``: construction, derived quantities, the data model and
the paper's spectrum ``h_i = 1/i`` (binned by rounding down onto a geometric grid).
"""

import math

import numpy as np
import pytest

from nqm_lib import NQM, risk_curve, steady_state_risk

D = 10_000
BINS = 100


@pytest.fixture(scope="module")
def paper():
    return NQM.paper_spectrum(d=D, bins=BINS)


@pytest.fixture(scope="module")
def grid():
    return np.geomspace(1.0, 1.0 / D, BINS)  # descending: grid[k - 1] is the next value up


# ---------------------------------------------------------------- paper spectrum


def test_paper_spectrum_counts_sum_to_d(paper):
    assert paper.counts.sum() == D
    assert paper.dimension == D
    assert np.all(paper.counts >= 1)


def test_paper_spectrum_binned_curvatures_are_grid_values(paper, grid):
    grid_values = set(grid.tolist())
    assert all(value in grid_values for value in paper.h.tolist())
    assert np.all(np.diff(paper.h) < 0), "distinct bins, sorted h_1 > h_2 > ..."


def test_paper_spectrum_rounds_each_curvature_down_to_the_grid(paper, grid):
    # h is sorted descending and rounding down is monotone, so bin j holds the coordinates
    # i = start_j + 1, ..., start_j + counts_j (1-based) in order.
    ends = np.cumsum(paper.counts).astype(int)
    starts = ends - paper.counts.astype(int)
    for value, start, end in zip(paper.h, starts, ends, strict=True):
        exact = 1.0 / np.arange(start + 1, end + 1)
        assert np.all(value <= exact), f"bin {value} holds a 1/i below it"
        k = int(np.flatnonzero(grid == value)[0])
        if k > 0:
            assert np.all(grid[k - 1] > exact), f"bin {value}: a 1/i reaches the next grid value"


def test_paper_spectrum_matches_brute_force_binning(paper, grid):
    exact = 1.0 / np.arange(1, D + 1)
    # for every i, the largest grid value that is <= 1/i (plain comparison, no searchsorted)
    below = grid[None, :] <= exact[:, None]
    chosen = np.where(below, grid[None, :], -np.inf).max(axis=1)
    values, counts = np.unique(chosen, return_counts=True)
    np.testing.assert_array_equal(paper.h, values[::-1])
    np.testing.assert_array_equal(paper.counts, counts[::-1])


def test_paper_spectrum_has_noise_equal_to_curvature_and_unit_start(paper):
    np.testing.assert_array_equal(paper.c, paper.h)
    np.testing.assert_array_equal(paper.theta0**2, np.ones(paper.d))


def test_paper_spectrum_noise_scale_multiplies_c():
    problem = NQM.paper_spectrum(d=500, bins=20, noise_scale=3.0)
    np.testing.assert_allclose(problem.c, 3.0 * problem.h, rtol=1e-15)


def test_paper_spectrum_without_bins_is_exactly_one_over_i():
    problem = NQM.paper_spectrum(d=D, bins=None)
    np.testing.assert_array_equal(problem.h, 1.0 / np.arange(1, D + 1))
    np.testing.assert_array_equal(problem.c, problem.h)
    np.testing.assert_array_equal(problem.counts, np.ones(D))
    assert problem.d == D and problem.kappa == pytest.approx(D, rel=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.5, "ema_decay": 0.3, "precond_power": 0.5}])
def test_counts_give_the_same_risk_as_repeating_the_coordinates(kwargs):
    binned = NQM.paper_spectrum(d=300, bins=12)
    expanded = NQM(
        np.repeat(binned.h, binned.counts.astype(int)), np.repeat(binned.c, binned.counts.astype(int))
    )
    assert expanded.d == 300
    np.testing.assert_allclose(
        risk_curve(binned, 50, lr=0.5, **kwargs), risk_curve(expanded, 50, lr=0.5, **kwargs), rtol=1e-12
    )
    assert steady_state_risk(binned, lr=0.5, **kwargs) == pytest.approx(
        steady_state_risk(expanded, lr=0.5, **kwargs), rel=1e-12
    )


# ---------------------------------------------------------------- construction and properties


def test_scalar_noise_and_start_broadcast_to_every_coordinate():
    problem = NQM([3.0, 2.0, 1.0], 0.5, theta0=2.0)
    np.testing.assert_array_equal(problem.c, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(problem.theta0, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(problem.counts, [1.0, 1.0, 1.0])


def test_derived_quantities_by_hand():
    problem = NQM([50.0, 2.0, 0.5], [1.0, 1.0, 1.0], theta0=[1.0, -2.0, 4.0], counts=[1, 2, 3])
    assert problem.d == 3
    assert problem.dimension == 6
    assert problem.kappa == 100.0
    # ½ Σ counts h θ0² = ½ (1·50·1 + 2·2·4 + 3·0.5·16) = ½ (50 + 16 + 24)
    assert problem.initial_risk == pytest.approx(45.0, rel=1e-15)


def test_loss_is_half_weighted_sum_of_squares_over_last_axis():
    problem = NQM([4.0, 1.0], 1.0, counts=[1, 3])
    thetas = np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]])
    # ½(4·1 + 3·1·4) = 8; ½(4·0.25 + 3·1) = 2; 0
    np.testing.assert_allclose(problem.loss(thetas), [8.0, 2.0, 0.0], rtol=1e-15)


def test_problem_arrays_are_read_only():
    problem = NQM([2.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        problem.h[0] = 5.0


def test_constructor_does_not_freeze_or_alias_the_callers_arrays():
    # A student builds a problem from an array and then edits the array for a second problem.
    h = np.array([50.0, 1.0])
    c = np.array([50.0, 1.0])
    counts = np.array([1.0, 2.0])
    problem = NQM(h, c, counts=counts)
    for array in (h, c, counts):
        assert array.flags.writeable, "NQM made the caller's array read-only"
    h[0] = 10.0
    assert problem.h[0] == 50.0


def test_from_data_model_does_not_freeze_the_callers_curvature_array():
    h = np.array([2.0, 1.0])
    NQM.from_data_model(h, [1.0, 2.0])
    assert h.flags.writeable


def test_from_data_model_sets_c_to_h_squared_sigma_squared():
    problem = NQM.from_data_model([2.0, 0.5], [1.5, 3.0], theta0=[1.0, -1.0])
    np.testing.assert_allclose(problem.c, [4.0 * 2.25, 0.25 * 9.0], rtol=1e-15)
    np.testing.assert_array_equal(problem.sigma, [1.5, 3.0])
    np.testing.assert_array_equal(problem.theta0, [1.0, -1.0])


def test_from_data_model_broadcasts_a_single_sigma():
    problem = NQM.from_data_model([2.0, 1.0], 0.5)
    np.testing.assert_array_equal(problem.sigma, [0.5, 0.5])
    np.testing.assert_allclose(problem.c, [1.0, 0.25], rtol=1e-15)


def test_plain_problem_has_no_sigma():
    assert NQM([1.0], [1.0]).sigma is None


def test_repr_mentions_dimension_and_condition_number():
    text = repr(NQM.paper_spectrum(d=100, bins=10))
    assert "dimension=100" in text and "κ=100" in text


# ---------------------------------------------------------------- chapter 1's claims about the paper spectrum


def test_claim_rounding_the_paper_spectrum_down_lowers_the_initial_risk_by_3_9_percent(paper, grid):
    # exact: L(θ(0)) = ½ Σ_i 1/i = ½ H_D, the harmonic number (≈ ½ (ln D + Euler's γ + 1/(2D)))
    exact = 0.5 * math.fsum(1.0 / i for i in range(1, D + 1))
    assert exact == pytest.approx(0.5 * (math.log(D) + 0.5772156649 + 1 / (2 * D)), rel=1e-8)
    assert NQM.paper_spectrum(d=D, bins=None).initial_risk == pytest.approx(exact, rel=1e-12)
    # rounded: every 1/i replaced by the largest grid value below it (brute force, no searchsorted)
    one_over_i = 1.0 / np.arange(1, D + 1)
    rounded = np.where(grid[None, :] <= one_over_i[:, None], grid[None, :], -np.inf).max(axis=1)
    assert paper.initial_risk == pytest.approx(0.5 * math.fsum(rounded), rel=1e-12)
    drop = 1.0 - paper.initial_risk / exact
    assert drop == pytest.approx(0.039, abs=0.0005)  # chapter 1: "by 3.9%"


def test_claim_merging_equal_curvatures_is_lossless_and_119_times_cheaper(paper):
    assert paper.d == 84 and D / paper.d == pytest.approx(119, abs=0.5)
    repeats = paper.counts.astype(int)
    unmerged = NQM(np.repeat(paper.h, repeats), np.repeat(paper.c, repeats))
    exact = NQM.paper_spectrum(d=D, bins=None)
    settings = [{"lr": 1.0}, {"lr": 0.5, "batch_size": 100, "momentum": 0.9}, {"lr": 1.0, "ema_decay": 0.99}]
    for hyper in settings:
        merged_risk = risk_curve(paper, 100, **hyper)
        np.testing.assert_allclose(merged_risk, risk_curve(unmerged, 100, **hyper), rtol=1e-12)
        # rounding, by contrast, changes the risk by a few per cent (3.6% at t = 100 for SGD, η = 1)
        assert np.all(risk_curve(exact, 100, **hyper)[1:] > 1.02 * merged_risk[1:])


def _full_matrix_risk(H, C, theta0, steps, *, lr, momentum=0.0, batch_size=1):
    """E[L(θ_t)] of heavy-ball SGD on ½ θᵀHθ with noise covariance C/B, for full matrices H and C.

    State x = (θ, v): v ← βv + Hθ + ε, θ ← θ − ηv, so x ← A x + b ε with A and b below, and
    S = E[x xᵀ] follows S ← A S Aᵀ + b (C/B) bᵀ exactly. Independent of nqm_lib's diagonal theory.
    """
    d = H.shape[0]
    eye = np.eye(d)
    A = np.block([[eye - lr * H, -lr * momentum * eye], [H, momentum * eye]])
    b = np.vstack([-lr * eye, eye])
    x0 = np.concatenate([theta0, np.zeros(d)])
    S = np.outer(x0, x0)
    noise = b @ (C / batch_size) @ b.T
    risks = [0.5 * np.trace(H @ S[:d, :d])]
    for _ in range(steps):
        S = A @ S @ A.T + noise
        risks.append(0.5 * np.trace(H @ S[:d, :d]))
    return np.array(risks), S[:d, :d]


@pytest.mark.parametrize(("lr", "momentum", "batch_size"), [(0.3, 0.0, 1), (0.1, 0.9, 4), (0.05, 0.5, 1)])
def test_claim_risk_depends_on_noise_covariance_only_through_its_diagonal_in_the_eigenbasis(
    lr, momentum, batch_size
):
    # chapter 1, exercise ex-nqm-rotation: sharing eigenvectors is more than the risk results need
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    h = np.array([3.0, 1.0, 0.5, 0.2])
    c = np.array([2.0, 1.0, 0.8, 0.5])
    theta0 = np.array([1.0, -1.0, 0.5, 2.0])
    H = Q @ np.diag(h) @ Q.T
    coupling = 0.25 * np.array([[0, 1, -1, 1], [1, 0, 1, 0.5], [-1, 1, 0, 1], [1, 0.5, 1, 0]])
    shared = Q @ np.diag(c) @ Q.T
    coupled = Q @ (np.diag(c) + coupling) @ Q.T
    assert np.linalg.eigvalsh(coupled).min() > 0.0, "a valid covariance"
    np.testing.assert_allclose(np.diag(Q.T @ coupled @ Q), c, rtol=1e-12)
    hyper = {"lr": lr, "momentum": momentum, "batch_size": batch_size}
    risk_shared, M_shared = _full_matrix_risk(H, shared, theta0, 300, **hyper)
    risk_coupled, M_coupled = _full_matrix_risk(H, coupled, theta0, 300, **hyper)
    np.testing.assert_allclose(risk_coupled, risk_shared, rtol=1e-10)
    diagonal = risk_curve(NQM(h, c, theta0=Q.T @ theta0), 300, **hyper)
    np.testing.assert_allclose(risk_shared, diagonal, rtol=1e-10)
    # the second moments themselves differ: the coupled noise correlates the rotated coordinates
    off_diagonal = lambda M: (Q.T @ M @ Q)[~np.eye(4, dtype=bool)]  # noqa: E731
    assert np.max(np.abs(off_diagonal(M_coupled))) > 1e-3
    assert np.max(np.abs(off_diagonal(M_coupled) - off_diagonal(M_shared))) > 1e-3
    # and a C whose rotated diagonal differs changes the risk
    other = Q @ (np.diag(c * [1.0, 1.0, 1.0, 1.2]) + coupling) @ Q.T
    assert _full_matrix_risk(H, other, theta0, 300, **hyper)[0][-1] > 1.01 * risk_shared[-1]


def test_paper_spectrum_figure_draws_the_exact_and_the_rounded_spectrum():
    import matplotlib.pyplot as plt

    from nqm_lib.figures import paper_spectrum_figure

    fig = paper_spectrum_figure(d=500, bins=20)
    (ax,) = fig.axes
    exact, rounded = ax.lines
    np.testing.assert_allclose(exact.get_ydata(), 1.0 / np.arange(1, 501))
    binned = NQM.paper_spectrum(d=500, bins=20)
    np.testing.assert_allclose(rounded.get_ydata(), binned.h)
    assert rounded.get_xdata()[-1] == 500
    assert ax.get_xscale() == ax.get_yscale() == "log"
    plt.close(fig)
