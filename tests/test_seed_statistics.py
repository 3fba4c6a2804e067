"""Chapter 10's statistics over seeds: the envelope crossing, bootstrap intervals and the S(B) fit."""

import math

import numpy as np
import pytest

from nqm_lib import seed_statistics as ss


def test_monotone_envelope_is_the_least_squares_non_increasing_fit():
    rng = np.random.default_rng(0)
    for _ in range(200):
        y = np.abs(rng.normal(1.0, 1.0, rng.integers(1, 25)))
        envelope = ss.monotone_envelope(y)
        assert np.all(np.diff(envelope) <= 1e-12)
        assert math.isclose(envelope.sum(), y.sum(), rel_tol=1e-12)  # blocks keep their means
        # no non-increasing sequence is closer: compare with random non-increasing perturbations
        for _ in range(20):
            other = np.sort(envelope + rng.normal(0, 0.05, y.size))[::-1]
            assert np.sum((other - y) ** 2) >= np.sum((envelope - y) ** 2) - 1e-12


def test_monotone_envelope_leaves_a_non_increasing_curve_unchanged():
    y = np.array([3.0, 2.0, 2.0, 0.5, 0.1])
    np.testing.assert_array_equal(ss.monotone_envelope(y), y)


def test_crossing_step_matches_the_envelope_and_interpolates_within_its_bracket():
    rng = np.random.default_rng(1)
    for _ in range(500):
        n = int(rng.integers(1, 40))
        y = np.abs(rng.normal(1.0, 1.0, n)) * np.exp(-np.arange(n) / 6)
        target = float(rng.uniform(0.05, 1.5))
        steps = np.cumsum(rng.integers(1, 5, n)).astype(float)
        crossing = ss.crossing_step(steps, y, target)
        below = np.flatnonzero(ss.monotone_envelope(y) <= target)
        if not below.size:
            assert crossing == math.inf
        else:
            k = below[0]
            assert steps[max(k - 1, 0)] <= crossing <= steps[k]


def test_crossing_step_of_an_exponential_is_exact():
    steps = np.arange(0, 100, 7, dtype=float)
    curve = np.exp(-steps / 10)
    assert math.isclose(ss.crossing_step(steps, curve, math.exp(-4.2)), 42.0, rel_tol=1e-12)


def test_envelope_crossing_is_not_biased_early_by_noise_like_the_first_dip():
    # A flat approach to the target plus seed noise: the first dip of a noisy 8-seed mean comes
    # early; the envelope of the mean crosses close to the true crossing.
    rng = np.random.default_rng(2)
    steps = np.arange(0, 2000, 10, dtype=float)
    expected = 0.01 + 0.04 * np.exp(-steps / 300)  # true crossing of 0.012: 300 log(20) ≈ 899
    truth = 300 * math.log(0.04 / 0.002)
    first_dip, envelope = [], []
    for _ in range(200):
        risks = expected * rng.lognormal(0.0, 0.3, (8, steps.size)) / math.exp(0.045)
        mean = risks.mean(axis=0)
        first_dip.append(steps[np.argmax(mean <= 0.012)])
        envelope.append(ss.mean_curve_crossing(steps, risks, 0.012))
    assert np.median(first_dip) < 0.85 * truth
    assert abs(np.median(envelope) / truth - 1) < 0.1


def test_a_diverged_seed_ends_the_curve():
    steps = np.arange(5, dtype=float)
    risks = np.array([[1.0, 0.5, 0.2, 0.1, 0.05], [1.0, 0.5, np.inf, np.inf, np.inf]])
    assert ss.mean_curve_crossing(steps, risks, 0.1) == math.inf
    assert ss.mean_curve_crossing(steps, risks, 0.6) == pytest.approx(
        1 - math.log(0.6 / 0.5) / math.log(1.0 / 0.5), rel=1e-12
    )


def test_bootstrap_interval_of_a_mean_covers_at_the_nominal_rate():
    # Normal data of known mean: the 90 % percentile interval of the mean covers it in close to
    # 90 % of 300 independent experiments (binomial sd 1.7 %; tolerance ±6 %).
    rng = np.random.default_rng(3)
    covered = 0
    for experiment in range(300):
        data = rng.normal(5.0, 2.0, 24)
        replicates = ss.bootstrap_replicates(
            lambda i, data=data: data[i].mean(), 24, resamples=400, seed=experiment
        )
        low, high = ss.bootstrap_interval(replicates)
        covered += low <= 5.0 <= high
    assert abs(covered / 300 - 0.9) < 0.06


def test_bootstrap_replicates_with_one_seed_resample_the_same_seeds():
    data = np.arange(10.0)
    a = ss.bootstrap_replicates(lambda i: data[i].sum(), 10, resamples=50, seed=7)
    b = ss.bootstrap_replicates(lambda i: (2 * data[i]).sum(), 10, resamples=50, seed=7)
    np.testing.assert_allclose(b, 2 * a)


def test_bootstrap_interval_keeps_infinite_replicates_on_top():
    low, high = ss.bootstrap_interval([1.0] * 50 + [math.inf] * 50, level=0.9)
    assert low == 1.0 and high == math.inf


def test_fit_steps_law_recovers_the_law_from_every_batch_size():
    batches = 2.0 ** np.arange(11)
    law = ss.fit_steps_law(batches, 20.0 * (1 + 300.0 / batches))
    assert math.isclose(law.min_steps, 20.0, rel_tol=1e-6)
    assert math.isclose(law.noise_scale, 300.0, rel_tol=1e-6)


def test_fit_steps_law_is_not_anchored_on_the_smallest_batch():
    # Double the count at B = 1 only: an anchored fit would move B_noise twofold, a fit to all
    # eleven batch sizes much less.
    batches = 2.0 ** np.arange(11)
    steps = 20.0 * (1 + 300.0 / batches)
    steps[0] *= 2
    assert 300.0 < ss.fit_steps_law(batches, steps).noise_scale < 1.3 * 300.0


def test_ratio_spread():
    assert ss.ratio_spread([10.0, 20.0], [12.0, 10.0]) == 2.0
    assert ss.ratio_spread([1.0], [math.inf]) == math.inf


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ss.monotone_envelope([1.0, np.nan]), "values"),
        (lambda: ss.crossing_step([0, 1], [1.0], 0.1), "same length"),
        (lambda: ss.crossing_step([1, 0], [1.0, 0.5], 0.1), "increasing"),
        (lambda: ss.crossing_step([0, 1], [1.0, 0.5], 0.0), "target"),
        (lambda: ss.bootstrap_interval([1.0, 2.0], level=1.0), "level"),
        (lambda: ss.bootstrap_replicates(np.mean, 1), "n_seeds"),
        (lambda: ss.fit_steps_law([1], [3.0]), "batch_sizes"),
        (lambda: ss.fit_steps_law([1, 2], [3.0, 0.0]), "steps"),
        (lambda: ss.ratio_spread([1.0], [0.0]), "measured and predicted"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
