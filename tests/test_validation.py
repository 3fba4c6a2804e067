"""Parameter validation of every public entry point of nqm_lib.

Each invalid value must raise ``ValueError`` whose message names the parameter and shows the
offending value (``nqm_lib.validation`` promises this, and the widgets display these messages
to students). Valid edge values (integer-valued float batch sizes, β = γ = 0, p ∈ {0, 1}) must be
accepted.
"""

import re

import numpy as np
import pytest

from nqm_lib import (
    NQM,
    Hyperparams,
    InstabilityError,
    max_stable_lr,
    risk_curve,
    risk_curve_per_coordinate,
    sample_minibatch_gradients,
    simulate,
    steady_state_risk,
)

PROBLEM = NQM([2.0, 1.0], [1.0, 1.0], theta0=[1.0, 1.0])
NAN = float("nan")
INF = float("inf")


def _hyperparams(**kwargs):
    kwargs.setdefault("lr", 0.1)
    return Hyperparams(**kwargs)


def _risk_curve(**kwargs):
    kwargs.setdefault("lr", 0.1)
    return risk_curve(PROBLEM, 5, **kwargs)


def _steady_state_risk(**kwargs):
    kwargs.setdefault("lr", 0.1)
    return steady_state_risk(PROBLEM, **kwargs)


def _simulate(**kwargs):
    kwargs.setdefault("lr", 0.1)
    return simulate(PROBLEM, 3, trials=4, **kwargs)


ENTRY_POINTS = [_hyperparams, _risk_curve, _steady_state_risk, _simulate]
ENTRY_IDS = ["Hyperparams", "risk_curve", "steady_state_risk", "simulate"]


def _names_parameter_and_value(name, shown):
    """Regex: the message mentions ``name`` and, after it, the offending value as ``shown``."""
    return rf"\b{re.escape(name)}\b.*{re.escape(shown)}"


# (value, how the message shows it)
INVALID_LR = [(0.0, "0.0"), (-0.1, "-0.1"), (NAN, "nan"), (INF, "inf"), ("0.1", "'0.1'")]
INVALID_BATCH_SIZE = [(0, "0"), (-1, "-1"), (2.5, "2.5"), (True, "True"), ("4", "'4'")]
INVALID_FRACTION = [(-0.1, "-0.1"), (1.0, "1.0"), (1.5, "1.5")]
INVALID_PRECOND_POWER = [(-0.1, "-0.1"), (1.1, "1.1")]


@pytest.mark.parametrize("call", ENTRY_POINTS, ids=ENTRY_IDS)
@pytest.mark.parametrize(("value", "shown"), INVALID_LR)
def test_invalid_lr_raises_value_error_naming_lr_and_value(call, value, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("lr", shown)):
        call(lr=value)


@pytest.mark.parametrize("call", ENTRY_POINTS, ids=ENTRY_IDS)
@pytest.mark.parametrize(("value", "shown"), INVALID_BATCH_SIZE)
def test_invalid_batch_size_raises_value_error_naming_batch_size_and_value(call, value, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("batch_size", shown)):
        call(batch_size=value)


@pytest.mark.parametrize("call", ENTRY_POINTS, ids=ENTRY_IDS)
@pytest.mark.parametrize("name", ["momentum", "ema_decay"])
@pytest.mark.parametrize(("value", "shown"), INVALID_FRACTION)
def test_momentum_and_ema_decay_outside_unit_interval_raise(call, name, value, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value(name, shown)):
        call(**{name: value})


@pytest.mark.parametrize("call", ENTRY_POINTS, ids=ENTRY_IDS)
@pytest.mark.parametrize(("value", "shown"), INVALID_PRECOND_POWER)
def test_precond_power_outside_zero_one_raises(call, value, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("precond_power", shown)):
        call(precond_power=value)


@pytest.mark.parametrize(("value", "shown"), INVALID_FRACTION)
def test_max_stable_lr_rejects_invalid_momentum(value, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("momentum", shown)):
        max_stable_lr(PROBLEM, momentum=value)


@pytest.mark.parametrize(("value", "shown"), INVALID_PRECOND_POWER)
def test_max_stable_lr_rejects_invalid_precond_power(value, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("precond_power", shown)):
        max_stable_lr(PROBLEM, precond_power=value)


@pytest.mark.parametrize("value", [4.0, np.float64(4.0), np.int64(4), 4])
def test_integer_valued_batch_size_is_accepted_as_int(value):
    hp = Hyperparams(0.1, batch_size=value)
    assert hp.batch_size == 4
    assert type(hp.batch_size) is int


def test_integer_valued_float_batch_size_gives_same_risk_as_int():
    np.testing.assert_array_equal(
        risk_curve(PROBLEM, 10, lr=0.1, batch_size=4.0), risk_curve(PROBLEM, 10, lr=0.1, batch_size=4)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"momentum": 0.0},
        {"ema_decay": 0.0},
        {"momentum": 0.999},
        {"ema_decay": 0.999},
        {"precond_power": 0.0},
        {"precond_power": 1.0},
    ],
)
def test_boundary_values_inside_the_valid_range_are_accepted(kwargs):
    hp = Hyperparams(0.1, **kwargs)
    for name, value in kwargs.items():
        assert getattr(hp, name) == value


# ---------------------------------------------------------------- the problem (NQM)


@pytest.mark.parametrize(
    ("h", "index", "shown"),
    [([2.0, 0.0], 1, "0.0"), ([-1.5, 1.0], 0, "-1.5"), ([3.0, 2.0, -0.25], 2, "-0.25")],
)
def test_nonpositive_curvature_raises_naming_coordinate_index_and_value(h, index, shown):
    with pytest.raises(ValueError, match=rf"\bh\[{index}\].*{re.escape(shown)}"):
        NQM(h, 1.0)


@pytest.mark.parametrize(("c", "index", "shown"), [([1.0, -0.5], 1, "-0.5"), ([-2.0, 1.0], 0, "-2.0")])
def test_negative_noise_variance_raises_naming_coordinate_index_and_value(c, index, shown):
    with pytest.raises(ValueError, match=rf"\bc\[{index}\].*{re.escape(shown)}"):
        NQM([2.0, 1.0], c)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"c": [1.0, 1.0, 1.0]}, "c"),
        ({"c": 1.0, "theta0": [1.0, 1.0, 1.0]}, "theta0"),
        ({"c": 1.0, "counts": [1.0, 1.0, 1.0]}, "counts"),
    ],
)
def test_shape_mismatch_with_h_raises_naming_parameter_and_sizes(kwargs, name):
    # h has 2 entries, the other array 3: the message names the parameter and both sizes.
    with pytest.raises(ValueError, match=rf"^{name}\b.*\b2\b.*\b3\b"):
        NQM([2.0, 1.0], **kwargs)


@pytest.mark.parametrize(("counts", "shown"), [([1.0, 0.0], "0.0"), ([-3.0, 1.0], "-3.0")])
def test_nonpositive_counts_raise(counts, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("counts", shown)):
        NQM([2.0, 1.0], 1.0, counts=counts)


@pytest.mark.parametrize("name", ["h", "c"])
@pytest.mark.parametrize("bad", [NAN, INF])
def test_non_finite_curvature_or_noise_raises(name, bad):
    arrays = {"h": [2.0, 1.0], "c": [1.0, 1.0]}
    arrays[name] = [1.0, bad]
    with pytest.raises(ValueError, match=rf"^{name}\b.*finite"):
        NQM(arrays["h"], arrays["c"])


@pytest.mark.parametrize("theta0", [[1.0, NAN], [INF, 1.0], "start"])
def test_invalid_theta0_raises_naming_theta0(theta0):
    with pytest.raises(ValueError, match=r"^theta0\b"):
        NQM([2.0, 1.0], 1.0, theta0)


def test_empty_curvature_array_raises():
    with pytest.raises(ValueError, match=r"^h\b"):
        NQM([], [])


def test_data_model_noise_must_equal_h_squared_sigma_squared():
    with pytest.raises(ValueError, match=r"h\*\*2 \* sigma\*\*2"):
        NQM([2.0, 1.0], [1.0, 1.0], sigma=[1.0, 2.0])


@pytest.mark.parametrize(("kwargs", "name"), [({"d": 0}, "d"), ({"d": 2.5}, "d"), ({"bins": 1}, "bins")])
def test_paper_spectrum_rejects_invalid_sizes(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        NQM.paper_spectrum(**kwargs)


# ---------------------------------------------------------------- steps, trials, samples


@pytest.mark.parametrize(
    "call",
    [
        lambda steps: risk_curve(PROBLEM, steps, lr=0.1),
        lambda steps: risk_curve_per_coordinate(PROBLEM, steps, lr=0.1, momentum=0.5),
        lambda steps: simulate(PROBLEM, steps, lr=0.1, trials=4),
    ],
    ids=["risk_curve", "risk_curve_per_coordinate", "simulate"],
)
@pytest.mark.parametrize(("steps", "shown"), [(-1, "-1"), (2.5, "2.5"), (True, "True"), ("3", "'3'")])
def test_invalid_steps_raise_naming_steps_and_value(call, steps, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("steps", shown)):
        call(steps)


@pytest.mark.parametrize(("trials", "shown"), [(1, "1"), (0, "0"), (-1, "-1"), (2.5, "2.5")])
def test_simulate_with_fewer_than_two_trials_raises_naming_trials(trials, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("trials", shown)):
        simulate(PROBLEM, 3, lr=0.1, trials=trials)


@pytest.mark.parametrize("trials", [1, 0, -1])
def test_invalid_trials_message_states_the_accepted_range(trials):
    # validation.py promises messages that state "the range it accepts": trials >= 2.
    with pytest.raises(ValueError, match=r"trials must be an integer >= 2"):
        simulate(PROBLEM, 3, lr=0.1, trials=trials)


def test_simulate_accepts_two_trials():
    result = simulate(PROBLEM, 3, lr=0.1, trials=2)
    assert result.trials == 2
    assert result.risk.shape == (4,)


@pytest.mark.parametrize(("value", "shown"), [(0, "0"), (1.5, "1.5")])
def test_sample_minibatch_gradients_rejects_invalid_batch_size(value, shown):
    with pytest.raises(ValueError, match=_names_parameter_and_value("batch_size", shown)):
        sample_minibatch_gradients(PROBLEM, [0.0, 0.0], batch_size=value)


def test_sample_minibatch_gradients_rejects_negative_samples():
    with pytest.raises(ValueError, match=_names_parameter_and_value("samples", "-5")):
        sample_minibatch_gradients(PROBLEM, [0.0, 0.0], samples=-5)


def test_instability_error_is_a_value_error():
    assert issubclass(InstabilityError, ValueError)
