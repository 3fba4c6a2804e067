"""The piecewise NQM of chapter 10: against the single NQM, a hand-off worked by hand, Monte Carlo."""

import math

import numpy as np
import pytest

from nqm_lib import NQM, batch_scaling, risk_curve
from nqm_lib.piecewise_nqm import (
    curvature_at_share,
    hand_off_moments,
    piecewise_risk_curve,
    piecewise_steps_to_target,
)
from nqm_lib.validation import InstabilityError

LRS = 2.0 ** np.arange(-14.0, 2.0, 0.5)
BATCHES = [1, 4, 16, 64, 256, 1024]


@pytest.fixture(scope="module")
def spread():
    """An ill-conditioned NQM with unequal counts, its coordinates in no particular order."""
    rng = np.random.default_rng(0)
    h = rng.lognormal(0.0, 2.0, 40)
    return NQM(h, h * rng.uniform(0.5, 2.0, 40), rng.normal(size=40), counts=rng.uniform(0.5, 2.0, 40))


# ------------------------------------------------------------------ (a) identical pieces


@pytest.mark.parametrize("bands", [1, 2, 5])
def test_identical_pieces_give_the_single_nqm_exact_steps_to_target(spread, bands):
    target = 0.01 * spread.initial_risk
    levels = np.geomspace(0.5 * spread.initial_risk, target, bands) if bands > 1 else [target]
    piecewise = piecewise_steps_to_target([spread] * bands, levels, BATCHES, lrs=LRS)
    single = batch_scaling.tuned_steps_to_target(spread, target, BATCHES, lrs=LRS)
    np.testing.assert_array_equal(piecewise.steps, single.steps)
    np.testing.assert_array_equal(piecewise.lr, single.lr)
    np.testing.assert_array_equal(LRS[piecewise.lr_index], single.lr)
    np.testing.assert_array_equal(piecewise.band_steps.sum(axis=1), piecewise.steps)
    np.testing.assert_array_equal(piecewise.hand_off_factors, np.ones((len(BATCHES), bands - 1)))
    if bands > 1:  # each band ends where the single NQM's risk first reaches its level
        for k, batch in enumerate(BATCHES):
            ends = np.cumsum(piecewise.band_steps[k])
            for level, end in zip(levels, ends, strict=True):
                steps = batch_scaling.steps_to_target(spread, level, lr=piecewise.lr[k], batch_size=batch)
                assert end == steps


def test_identical_pieces_give_the_single_nqm_risk_curve(spread):
    levels = np.geomspace(0.5 * spread.initial_risk, 0.01 * spread.initial_risk, 4)
    risk, band = piecewise_risk_curve([spread] * 4, levels, 400, lr=0.004, batch_size=8)
    exact = batch_scaling.risk_at_steps(spread, np.arange(401), lr=0.004, batch_size=8)
    np.testing.assert_allclose(risk, exact, rtol=1e-12)
    assert band[0] == 0 and np.all(np.diff(band) >= 0) and band[-1] == 3


# ------------------------------------------------------------------ (b) the hand-off by hand


def test_hand_off_maps_by_rank_of_curvature_and_keeps_the_risk():
    # source: h = (4, 1) with counts (1, 1): the flat half [0, ½] holds m = 2, the sharp half m = ½
    source = NQM([4.0, 1.0], [1.0, 1.0], counts=[1.0, 1.0])
    moments = np.array([0.5, 2.0])
    risk = 0.5 * (4.0 * 0.5 + 1.0 * 2.0)  # 2
    # destination: h = (5, 1) with counts (1, 2): the flat direction covers [0, ⅔], the sharp [⅔, 1]
    destination = NQM([5.0, 1.0], [1.0, 1.0], counts=[1.0, 2.0])
    flat = (0.5 * 2.0 + (2 / 3 - 0.5) * 0.5) / (2 / 3)  # 1.625: the average over [0, ⅔]
    sharp = 0.5
    unscaled = 0.5 * (5.0 * 1.0 * sharp + 1.0 * 2.0 * flat)  # 2.875
    expected = np.array([sharp, flat]) * risk / unscaled
    carried = hand_off_moments(source, moments, destination, risk)
    np.testing.assert_allclose(carried, expected, rtol=1e-14)
    assert 0.5 * np.sum(destination.h * destination.counts * carried) == pytest.approx(risk, rel=1e-14)
    # three destination directions whose shares fall inside the source's: no averaging
    finer = NQM([2.0, 8.0, 3.0], [1.0, 1.0, 1.0], counts=[1.0, 2.0, 1.0])  # shares ¼, ½ (sharpest), ¼
    carried = hand_off_moments(source, moments, finer, 1.0)
    unscaled = 0.5 * (2.0 * 2.0 + 8.0 * 2.0 * 0.5 + 3.0 * 2.0)  # 9
    np.testing.assert_allclose(carried, np.array([2.0, 0.5, 2.0]) / 9.0, rtol=1e-14)


def test_hand_off_restart_takes_the_destination_start_and_keeps_the_risk():
    source = NQM([4.0, 1.0], [1.0, 1.0])
    destination = NQM([5.0, 1.0], [1.0, 1.0], theta0=[1.0, 3.0])
    carried = hand_off_moments(source, [0.5, 2.0], destination, 2.0, hand_off="restart")
    np.testing.assert_allclose(carried, np.array([1.0, 9.0]) * 2.0 / (0.5 * (5.0 + 9.0)), rtol=1e-14)


def test_curvature_at_share_follows_the_weighted_flat_to_sharp_order():
    problem = NQM([5.0, 1.0, 3.0], [1.0], counts=[1.0, 2.0, 1.0])  # flat to sharp: 1 (½), 3 (¼), 5 (¼)
    shares = [0.0, 0.4, 0.5, 0.7, 0.9, 1.0]
    np.testing.assert_array_equal(curvature_at_share(problem, shares), [1, 1, 3, 3, 5, 5])


# -------------------------------------------------------------- (c) Monte Carlo on two bands


def recursion(pieces, levels, steps, lr, batch):
    """The piecewise model written out step by step (diagonal pieces in the same order of h)."""
    m = pieces[0].theta0**2
    band, risks, ends = 0, [], []
    for _ in range(steps + 1):
        h, c = pieces[band].h, pieces[band].c
        risk = 0.5 * np.sum(h * m)
        risks.append(risk)
        if band + 1 < len(pieces) and risk <= levels[band]:
            following = pieces[band + 1].h
            m = m * risk / (0.5 * np.sum(following * m))  # the same order: rank matching is the identity
            band += 1
            ends.append(len(risks) - 1)
            h, c = pieces[band].h, pieces[band].c
        m = (1 - lr * h) ** 2 * m + lr**2 * c / batch
    return np.array(risks), ends


def test_two_band_model_matches_the_recursion_and_monte_carlo_of_sgd():
    # band 1: a sharp quadratic with large noise; band 2: flatter, quieter, the same eigenvectors
    first = NQM([4.0, 1.0, 0.2], [3.0, 1.0, 0.3], theta0=[1.0, 1.5, 2.0])
    second = NQM([2.5, 0.6, 0.1], [1.0, 0.4, 0.1])
    levels, lr, batch, steps = [0.8, 0.25], 0.1, 2, 120
    risk, band = piecewise_risk_curve([first, second], levels, steps, lr=lr, batch_size=batch)
    exact, ends = recursion([first, second], levels, steps, lr, batch)
    np.testing.assert_allclose(risk, exact, rtol=1e-12)
    switch = int(np.flatnonzero(band == 0)[-1])
    assert switch == ends[0] and 0 < switch < steps
    found = piecewise_steps_to_target([first, second], levels, [batch], lrs=[lr])
    assert found.band_steps[0, 0] == switch and found.steps[0] == int(np.argmax(exact <= levels[1]))
    # Monte Carlo: 4000 seeded runs of SGD with Gaussian minibatch noise; at the switch (fixed by
    # the expected risk) θ is multiplied by the square root of the model's rescaling factor
    rng = np.random.default_rng(7)
    runs = 4000
    theta = np.broadcast_to(first.theta0, (runs, 3)).copy()
    m_switch = (first.theta0**2).copy()
    for _ in range(switch):
        m_switch = (1 - lr * first.h) ** 2 * m_switch + lr**2 * first.c / batch
    factor = np.sum(first.h * m_switch) / np.sum(second.h * m_switch)
    assert found.hand_off_factors[0, 0] == pytest.approx(factor, rel=1e-12)
    samples = np.empty((steps + 1, runs))
    for t in range(steps + 1):
        piece = first if t < switch else second
        if t == switch:
            samples[t] = 0.5 * theta**2 @ first.h
            theta = theta * math.sqrt(factor)
        else:
            samples[t] = 0.5 * theta**2 @ piece.h
        noise = rng.normal(size=(runs, 3)) * np.sqrt(piece.c / batch)
        theta = theta - lr * (piece.h * theta + noise)
    mean, error = samples.mean(axis=1), samples.std(axis=1) / math.sqrt(runs)
    assert np.all(np.abs(mean - risk)[1:] <= 4.0 * error[1:])  # within 4 standard errors at every step
    assert mean[0] == pytest.approx(risk[0], rel=1e-12)


# ---------------------------------------------------------------------- runs that never arrive


def test_a_level_below_every_noise_floor_is_never_reached():
    problem = NQM([1.0, 0.1], [10.0, 1.0])
    found = piecewise_steps_to_target([problem, problem], [0.4, 1e-6], [1, 2], lrs=[0.01, 0.1])
    assert np.all(np.isinf(found.steps)) and np.all(np.isnan(found.lr)) and np.all(found.lr_index == -1)
    few = piecewise_steps_to_target([problem], [0.3], [1], lrs=[0.1], max_steps=3)
    assert math.isinf(few.steps[0])


def test_a_band_left_on_entry_takes_no_step_and_cannot_diverge():
    sharp = NQM([100.0], [0.0], theta0=[0.01])  # would diverge at η = 0.1, but its band is already left
    mild = NQM([1.0], [0.0], theta0=[1.0])
    found = piecewise_steps_to_target([sharp, mild], [0.1, 0.001], [1], lrs=[0.1])
    assert found.band_steps[0, 0] == 0 and np.isfinite(found.steps[0])
    diverging = piecewise_steps_to_target([mild, sharp], [0.1, 0.001], [1], lrs=[0.1])
    assert math.isinf(diverging.steps[0])
    with pytest.raises(InstabilityError, match="band 1"):
        piecewise_risk_curve([mild, sharp], [0.1, 0.001], 50, lr=0.1)


# ----------------------------------------------------------------------- (d) validation


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"pieces": []}, "pieces"),
        ({"pieces": NQM([1.0], [1.0])}, "pieces"),
        ({"pieces": [NQM([1.0], [1.0]), "nqm"]}, r"pieces\[1\]"),
        ({"levels": [0.1]}, "one risk level per piece"),
        ({"levels": [0.1, 0.2]}, "strictly decreasing"),
        ({"levels": [0.1, -0.1]}, "strictly decreasing"),
        ({"levels": [0.1, math.nan]}, "finite"),
        ({"hand_off": "nearest"}, "hand_off"),
        ({"lrs": []}, "lrs"),
        ({"lrs": [0.1, -0.1]}, "lrs"),
        ({"batch_sizes": [0]}, "batch_size"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_piecewise_steps_to_target_validates(arguments, message):
    problem = NQM([1.0], [1.0])
    call = {"pieces": [problem, problem], "levels": [0.1, 0.01], "batch_sizes": [1], "lrs": [0.1]}
    call |= arguments
    with pytest.raises(ValueError, match=message):
        piecewise_steps_to_target(
            call.pop("pieces"), call.pop("levels"), call.pop("batch_sizes"), lrs=call.pop("lrs"), **call
        )


def test_risk_curve_hand_off_and_shares_validate():
    problem = NQM([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="steps"):
        piecewise_risk_curve([problem], [0.1], -1, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        piecewise_risk_curve([problem], [0.1], 10, lr=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        piecewise_risk_curve([problem], [0.1], 10, lr=0.1, batch_size=1.5)
    with pytest.raises(ValueError, match="moments"):
        hand_off_moments(problem, [1.0], problem, 1.0)
    with pytest.raises(ValueError, match="moments"):
        hand_off_moments(problem, [1.0, -1.0], problem, 1.0)
    with pytest.raises(ValueError, match="risk"):
        hand_off_moments(problem, [1.0, 1.0], problem, 0.0)
    with pytest.raises(ValueError, match="hand_off"):
        hand_off_moments(problem, [1.0, 1.0], problem, 1.0, hand_off="nearest")
    with pytest.raises(ValueError, match="NQM"):
        hand_off_moments(problem, [1.0, 1.0], "nqm", 1.0)
    with pytest.raises(ValueError, match="shares"):
        curvature_at_share(problem, [1.5])
    with pytest.raises(ValueError, match="NQM"):
        curvature_at_share("nqm", [0.5])


def test_risk_at_steps_is_the_iterated_risk_curve_at_every_step(spread):
    steps = np.array([[0, 1, 7], [30, 200, 599]])
    for hyper in ({"lr": 0.01}, {"lr": 0.002, "momentum": 0.9}, {"lr": 0.01, "ema_decay": 0.95}):
        many = batch_scaling.risk_at_steps(spread, steps, batch_size=4, **hyper)
        assert many.shape == steps.shape
        curve = risk_curve(spread, 600, batch_size=4, **hyper)  # the moment recursion, step by step
        np.testing.assert_allclose(many, curve[steps], rtol=1e-9)
        assert batch_scaling.risk_at_step(spread, 200, batch_size=4, **hyper) == many[1, 1]
    with pytest.raises(ValueError, match="steps"):
        batch_scaling.risk_at_steps(spread, [1, -2], lr=0.01)
