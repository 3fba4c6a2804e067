"""Two ways to write heavy-ball momentum, and where they differ: a scheduled learning rate (chapter 3).

The course writes momentum as PyTorch does (``torch.optim.SGD``); Sutskever et al. (2013), and
TensorFlow/Keras (``tf.keras.optimizers.SGD``), put the learning rate inside the velocity::

    PyTorch:    v ← β v + g,       θ ← θ − η_t v
    Sutskever:  v ← β v − η_t g,   θ ← θ + v

Both start from ``v = 0``. With a constant ``η`` they are the same algorithm: by induction
``v_Sutskever = −η v_PyTorch`` at every step, so the iterates agree (to rounding). With a schedule
``η_t`` they differ. PyTorch multiplies the *whole* velocity, old gradients included, by the current
``η_t``; Sutskever's velocity keeps every past gradient with the learning rate of its own step. So
Sutskever's step is PyTorch's with a momentum that follows the schedule,
``β_t = β η_{t−1} / η_t``: after a drop of η by 10× it carries the old velocity over at its old size
(one step with ``β_t = 10β``), while PyTorch's step shrinks by 10× at once.

On the NQM both are linear in ``(θ, v)`` per coordinate, ``x' = A_t x + b_t ε`` with::

    PyTorch:    A_t = [[1 − η_t h, −η_t β], [h, β]],      b_t = (−η_t, 1)
    Sutskever:  A_t = [[1 − η_t h, β], [−η_t h, β]],      b_t = (−η_t, −η_t)

so :func:`scheduled_risk_curve` propagates the mean and covariance exactly through any schedule, and
:func:`scheduled_paths` draws seeded runs of either convention with the same noise.
"""

from __future__ import annotations

import numpy as np

from .dynamics import max_stable_lr
from .problem import NQM
from .validation import (
    InstabilityError,
    check_batch_size,
    check_fraction,
    check_positive_array,
    check_steps,
)

__all__ = ["CONVENTIONS", "scheduled_paths", "scheduled_risk_curve", "step_matrices"]

#: The two ways of writing heavy-ball momentum that this module covers.
CONVENTIONS = ("pytorch", "sutskever")


def _check_convention(convention: object) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return str(convention)


def _check_schedule(problem: NQM, lrs: object, momentum: float) -> np.ndarray:
    """The schedule as an array; every η_t must be stable on its own (as in :mod:`nqm_lib.schedules`)."""
    lrs = check_positive_array("lrs", lrs)
    limit = max_stable_lr(problem, momentum=momentum)
    if lrs.max() >= limit:
        raise InstabilityError(
            f"unstable: the schedule reaches lr = {lrs.max():.4g} ≥ 2(1 + β)/h₁ = {limit:.4g} "
            f"(β = {momentum:g}); keep every η_t below it"
        )
    return lrs


def step_matrices(
    h: np.ndarray | float, *, lr: float, momentum: float, convention: str = "pytorch"
) -> tuple[np.ndarray, np.ndarray]:
    """``A`` (d, 2, 2) and ``b`` (d, 2) of one step ``(θ, v)' = A (θ, v) + b ε`` at learning rate ``lr``.

    See the module docstring for both conventions; ``h`` holds the curvatures ``h_i``.
    """
    convention = _check_convention(convention)
    beta = check_fraction("momentum", momentum)
    h = np.atleast_1d(np.asarray(h, dtype=float))
    A = np.zeros((h.size, 2, 2))
    A[:, 0, 0] = 1.0 - lr * h
    A[:, 1, 1] = beta
    if convention == "pytorch":
        A[:, 0, 1] = -lr * beta
        A[:, 1, 0] = h
        b = np.tile([-lr, 1.0], (h.size, 1))
    else:
        A[:, 0, 1] = beta
        A[:, 1, 0] = -lr * h
        b = np.tile([-lr, -lr], (h.size, 1))
    return A, b


def scheduled_risk_curve(
    problem: NQM, lrs: object, *, momentum: float, convention: str = "pytorch", batch_size: int = 1
) -> np.ndarray:
    """Exact ``E[L(θ_t)]``, t = 0..T, of heavy-ball momentum with the schedule ``lrs`` (shape ``(T,)``).

    Step ``t`` uses ``η_t = lrs[t]`` in the given ``convention`` (``"pytorch"`` or ``"sutskever"``),
    starting from ``θ(0)`` at rest. The mean and covariance of ``(θ_i, v_i)`` are pushed through each
    step's matrices (:func:`step_matrices`), so the result is exact for every schedule. Raises
    ``ValueError`` for invalid input and :class:`~nqm_lib.validation.InstabilityError` if some
    ``η_t ≥ 2(1 + β)/h₁``.
    """
    beta = check_fraction("momentum", momentum)
    lrs = _check_schedule(problem, lrs, beta)
    noise_var = problem.c / check_batch_size(batch_size)
    mean = np.zeros((problem.d, 2))
    mean[:, 0] = problem.theta0
    covariance = np.zeros((problem.d, 2, 2))
    weights = 0.5 * problem.h * problem.counts
    risk = np.empty(lrs.size + 1)
    risk[0] = weights @ problem.theta0**2
    for t, lr in enumerate(lrs):
        A, b = step_matrices(problem.h, lr=lr, momentum=beta, convention=convention)
        mean = np.einsum("dij,dj->di", A, mean)
        covariance = np.einsum("dij,djk,dlk->dil", A, covariance, A) + noise_var[:, None, None] * (
            b[:, :, None] * b[:, None, :]
        )
        risk[t + 1] = weights @ (mean[:, 0] ** 2 + covariance[:, 0, 0])
    return risk


def scheduled_paths(
    problem: NQM,
    lrs: object,
    *,
    momentum: float,
    convention: str = "pytorch",
    batch_size: int = 1,
    trials: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Seeded runs of heavy-ball momentum with the schedule ``lrs``, shape ``(T + 1, trials, d)``.

    Each step draws the minibatch noise ``ε ~ N(0, diag(c)/B)`` for every trial from one
    :class:`numpy.random.Generator` seeded with ``seed``, in the same order for both conventions,
    so two calls that differ only in ``convention`` see the same noise.
    """
    beta = check_fraction("momentum", momentum)
    convention = _check_convention(convention)
    lrs = _check_schedule(problem, lrs, beta)
    trials = check_steps(trials, "trials")
    if trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials}")
    scale = np.sqrt(problem.c / check_batch_size(batch_size))
    rng = np.random.default_rng(seed)
    theta = np.broadcast_to(problem.theta0, (trials, problem.d)).copy()
    velocity = np.zeros_like(theta)
    path = np.empty((lrs.size + 1, trials, problem.d))
    path[0] = theta
    for t, lr in enumerate(lrs):
        gradient = problem.h * theta + rng.standard_normal(theta.shape) * scale
        if convention == "pytorch":
            velocity = beta * velocity + gradient
            theta = theta - lr * velocity
        else:
            velocity = beta * velocity - lr * gradient
            theta = theta + velocity
        path[t + 1] = theta
    return path
