"""PyTorch's and Sutskever's (TensorFlow's) momentum: equal at a constant η, different under a schedule.

Checks ``nqm_lib.momentum_conventions`` against hand-written loops of each convention, against
``torch.optim.SGD`` with a learning-rate scheduler, against ``nqm_lib``'s own constant-η exact risk
and scheduled Monte Carlo, and the numbers chapter 3 quotes for a tenfold drop of η.
"""

import numpy as np
import pytest

from nqm_lib import NQM, InstabilityError, risk_curve, simulate, steady_state_risk
from nqm_lib.momentum_conventions import (
    CONVENTIONS,
    scheduled_paths,
    scheduled_risk_curve,
    step_matrices,
)

WORKED = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])


def step_decay(steps=400, lr=0.01, drop=150, factor=0.1):
    return np.where(np.arange(steps) < drop, lr, lr * factor)


def noise(steps, seed=0, problem=WORKED, batch_size=1):
    """The draws scheduled_paths makes for one trial, in its order."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, problem.d))[0] * np.sqrt(problem.c / batch_size) for _ in range(steps)]


def loop(problem, lrs, beta, convention, seed=0, pytorch_momenta=None):
    """One run by hand; ``pytorch_momenta`` replaces β step by step in PyTorch's form."""
    theta, velocity = problem.theta0.copy(), np.zeros(problem.d)
    path = [theta.copy()]
    for t, (lr, eps) in enumerate(zip(lrs, noise(len(lrs), seed, problem), strict=True)):
        g = problem.h * theta + eps
        if convention == "sutskever":  # Keras: velocity = momentum * velocity - lr * g; w = w + velocity
            velocity = beta * velocity - lr * g
            theta = theta + velocity
        else:
            momentum = beta if pytorch_momenta is None else pytorch_momenta[t]
            velocity = momentum * velocity + g
            theta = theta - lr * velocity
        path.append(theta.copy())
    return np.array(path)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_paths_follow_each_convention_step_for_step(convention):
    lrs = step_decay(120, drop=60)
    ours = scheduled_paths(WORKED, lrs, momentum=0.9, convention=convention, seed=4)[:, 0]
    np.testing.assert_array_equal(ours, loop(WORKED, lrs, 0.9, convention, seed=4))


def test_claim_at_a_constant_lr_the_conventions_are_one_algorithm_with_velocity_minus_lr_times_pytorchs():
    lr, beta = 0.01, 0.9
    lrs = np.full(300, lr)
    pytorch = scheduled_paths(WORKED, lrs, momentum=beta, convention="pytorch", seed=1)
    sutskever = scheduled_paths(WORKED, lrs, momentum=beta, convention="sutskever", seed=1)
    assert np.abs(sutskever - pytorch).max() < 1e-12
    # velocities: Sutskever's v = θ_{t+1} − θ_t, PyTorch's v = (θ_t − θ_{t+1}) / η
    v_sutskever = np.diff(sutskever[:, 0], axis=0)
    v_pytorch = -np.diff(pytorch[:, 0], axis=0) / lr
    np.testing.assert_allclose(v_sutskever, -lr * v_pytorch, rtol=1e-9, atol=1e-14)
    for convention in CONVENTIONS:
        exact = scheduled_risk_curve(WORKED, lrs, momentum=beta, convention=convention, batch_size=4)
        np.testing.assert_allclose(
            exact, risk_curve(WORKED, 300, lr=lr, momentum=beta, batch_size=4), rtol=1e-10
        )


def test_claim_under_a_schedule_sutskever_is_pytorch_with_momentum_beta_times_lr_before_over_lr_now():
    lrs = step_decay(200, drop=80)
    beta = 0.9
    momenta = beta * np.concatenate([[1.0], lrs[:-1] / lrs[1:]])  # β_t = β η_{t−1}/η_t
    assert momenta[80] == pytest.approx(9.0)  # the step after the drop
    by_pytorch_form = loop(WORKED, lrs, beta, "pytorch", seed=3, pytorch_momenta=momenta)
    sutskever = scheduled_paths(WORKED, lrs, momentum=beta, convention="sutskever", seed=3)[:, 0]
    np.testing.assert_allclose(sutskever, by_pytorch_form, rtol=1e-9, atol=1e-12)
    pytorch = scheduled_paths(WORKED, lrs, momentum=beta, convention="pytorch", seed=3)[:, 0]
    assert np.abs(sutskever - pytorch)[81:].max() > 0.1  # and the two conventions part after the drop


def test_pytorch_convention_matches_torch_sgd_with_a_multistep_scheduler():
    torch = pytest.importorskip("torch")
    lrs = step_decay(100, drop=40)
    param = torch.tensor(WORKED.theta0.copy(), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[40], gamma=0.1)
    path = [WORKED.theta0.copy()]
    for eps in noise(100, seed=2):
        param.grad = torch.from_numpy(WORKED.h * param.detach().numpy() + eps)
        optimizer.step()
        scheduler.step()
        path.append(param.detach().numpy().copy())
    ours = scheduled_paths(WORKED, lrs, momentum=0.9, convention="pytorch", seed=2)[:, 0]
    np.testing.assert_allclose(ours, np.array(path), rtol=0, atol=1e-12)


def test_exact_scheduled_risk_of_pytorchs_convention_matches_nqm_libs_monte_carlo():
    lrs = step_decay(250, drop=100)
    exact = scheduled_risk_curve(WORKED, lrs, momentum=0.9, batch_size=2)
    sim = simulate(WORKED, 250, lr=lrs, momentum=0.9, batch_size=2, trials=20_000, seed=7)
    z = (sim.risk - exact)[1:] / sim.risk_stderr[1:]
    assert np.max(np.abs(z)) < 4.5  # 250 correlated comparisons at 4.5 s.e.


def test_exact_scheduled_risk_of_sutskevers_convention_matches_monte_carlo():
    from nqm_lib import trajectory_risk

    lrs = step_decay(250, drop=100)
    exact = scheduled_risk_curve(WORKED, lrs, momentum=0.9, convention="sutskever")
    runs = scheduled_paths(WORKED, lrs, momentum=0.9, convention="sutskever", trials=20_000, seed=8)
    sim = trajectory_risk(WORKED, runs)
    z = (sim.risk - exact)[1:] / sim.risk_stderr[1:]
    assert np.max(np.abs(z)) < 4.5
    # negative control: PyTorch's exact risk is many standard errors away right after the drop
    other = scheduled_risk_curve(WORKED, lrs, momentum=0.9, convention="pytorch")
    assert np.max(np.abs((sim.risk - other)[100:130] / sim.risk_stderr[100:130])) > 20


def test_claim_after_a_tenfold_drop_sutskevers_risk_climbs_to_37_times_pytorchs_then_both_settle():
    # chapter 3: worked example, β = 0.9, B = 1, η = 0.01 then 0.001 from step 150, 400 steps
    lrs = step_decay()
    pytorch = scheduled_risk_curve(WORKED, lrs, momentum=0.9)
    sutskever = scheduled_risk_curve(WORKED, lrs, momentum=0.9, convention="sutskever")
    np.testing.assert_allclose(pytorch[:151], sutskever[:151], rtol=1e-12)  # identical up to the drop
    assert pytorch[150] == pytest.approx(1.46, abs=0.005)
    assert np.all(pytorch[151:156] < pytorch[150])  # PyTorch falls at once
    peak = 150 + int(np.argmax(sutskever[150:]))
    assert peak == 155 and sutskever[peak] == pytest.approx(7.86, abs=0.005)
    assert sutskever[peak] > 5 * pytorch[150]  # Sutskever climbs far above its level before the drop
    ratio = sutskever / pytorch
    assert int(np.argmax(ratio)) == 158 and ratio.max() == pytest.approx(37.5, abs=0.05)
    assert int(np.flatnonzero(np.abs(ratio - 1) > 0.01).max()) + 1 == 300
    assert sutskever[-1] == pytest.approx(pytorch[-1], rel=2e-3)
    # and both tend to the floor of the new constant rate
    longer = step_decay(steps=1500)
    floor = steady_state_risk(WORKED, lr=0.001, momentum=0.9)
    for convention in CONVENTIONS:
        end = scheduled_risk_curve(WORKED, longer, momentum=0.9, convention=convention)[-1]
        assert end == pytest.approx(floor, rel=1e-6)


def test_step_matrices_are_each_conventions_step():
    lr, beta, h = 0.02, 0.7, np.array([3.0, 0.5])
    A, b = step_matrices(h, lr=lr, momentum=beta, convention="pytorch")
    np.testing.assert_allclose(A[0], [[1 - lr * 3.0, -lr * beta], [3.0, beta]])
    np.testing.assert_allclose(b[1], [-lr, 1.0])
    A, b = step_matrices(h, lr=lr, momentum=beta, convention="sutskever")
    np.testing.assert_allclose(A[1], [[1 - lr * 0.5, beta], [-lr * 0.5, beta]])
    np.testing.assert_allclose(b[0], [-lr, -lr])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"convention": "keras"}, "convention"),
        ({"momentum": 1.0}, "momentum"),
        ({"batch_size": 0}, "batch_size"),
        ({"lrs": [0.01, -0.01]}, "lrs"),
        ({"lrs": [0.01, np.nan]}, "lrs"),
    ],
)
def test_invalid_arguments_are_rejected_with_the_parameters_name(kwargs, match):
    arguments = {"lrs": np.full(5, 0.01), "momentum": 0.9, **kwargs}
    lrs = arguments.pop("lrs")
    with pytest.raises(ValueError, match=match):
        scheduled_risk_curve(WORKED, lrs, **arguments)
    with pytest.raises(ValueError, match=match):
        scheduled_paths(WORKED, lrs, **arguments)


def test_an_unstable_learning_rate_in_the_schedule_raises_instability_error():
    lrs = np.array([0.01, 0.08, 0.01])  # 0.08 ≥ 2(1 + 0.9)/50 = 0.076
    with pytest.raises(InstabilityError, match="0.076"):
        scheduled_risk_curve(WORKED, lrs, momentum=0.9)
    with pytest.raises(ValueError, match="trials"):
        scheduled_paths(WORKED, np.full(3, 0.01), momentum=0.9, trials=0)
