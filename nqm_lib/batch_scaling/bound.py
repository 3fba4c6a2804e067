"""The information-theoretic lower bound on the steps to a target, for any algorithm (chapter 6).

:func:`~nqm_lib.batch_scaling.information_bound_steps` is the fewest steps in which *any*
algorithm that sees ``B`` noisy examples per step can reach the target: the Bayes risk of the
posterior mean of ``θ*`` after ``tB`` examples (:func:`~nqm_lib.batch_scaling.information_bound_risk`).
"""

from __future__ import annotations

import numpy as np

from ..problem import NQM
from .grids import _check_batch_sizes, _check_target

__all__ = ["information_bound_risk", "information_bound_steps"]


def information_bound_risk(problem: NQM, samples: object) -> np.ndarray | float:
    """Smallest expected risk any algorithm can reach from ``samples`` per-example gradients (chapter 6).

    Put the start at random, ``θ(0) − θ* ~ N(0, diag(θ_i(0)²))``: the expected risk of every
    optimiser of the course is unchanged (it depends on ``θ_i(0)²`` only). A gradient query at a
    known point ``θ`` returns ``H(θ − θ*) + ε``, so each example tells ``θ*_i`` up to a Gaussian
    error of variance ``c_i / h_i²``, wherever it is queried. After ``n`` examples the posterior
    variance of ``θ*_i`` is ``1 / (1/θ_i(0)² + n h_i²/c_i)``, whatever the data, and no estimator
    of ``θ*`` built from them — no optimiser, schedule or preconditioner — has a smaller expected
    risk than

        ½ Σ_i h_i / (1/θ_i(0)² + n h_i² / c_i)

    (the posterior mean attains it). Coordinates with ``θ_i(0) = 0`` contribute nothing, and noise-free
    ones (``c_i = 0``) nothing once ``n ≥ 1``. ``samples`` is a number ``n ≥ 0`` or an array of them;
    the result has its shape. Raises ``ValueError`` for a negative or non-finite ``samples``.

    Examples
    --------
    >>> from nqm_lib import NQM
    >>> problem = NQM([1.0], [1.0], theta0=[1.0])
    >>> float(information_bound_risk(problem, 0)), float(information_bound_risk(problem, 1))
    (0.5, 0.25)

    """
    try:
        n = np.asarray(samples, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"samples must be a number >= 0 or an array of them, got {samples!r}") from None
    if not np.all(np.isfinite(n)) or np.any(n < 0):
        raise ValueError(f"samples must be finite numbers >= 0, got {samples!r}")
    per_coordinate = _bound_per_coordinate(problem, n[..., None])
    total = per_coordinate @ (0.5 * problem.h * problem.counts)
    return float(total) if total.ndim == 0 else total


def _bound_per_coordinate(problem: NQM, n: np.ndarray) -> np.ndarray:
    """Posterior variance of every ``θ*_i`` after ``n`` examples (``n`` broadcasts against (d,))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        prior_precision = 1.0 / problem.theta0**2  # inf where θ_i(0) = 0
        noisy = problem.c > 0.0
        information = np.where(noisy, problem.h**2 / np.where(noisy, problem.c, 1.0), np.inf)
        data = np.where(n > 0.0, n * information, 0.0)
        return 1.0 / (prior_precision + data)


def information_bound_steps(problem: NQM, target: float, batch_sizes: object) -> np.ndarray:
    """Fewest steps in which *any* algorithm can reach ``target`` with batches of ``B`` (chapter 6).

    A run of ``t`` steps sees ``n = tB`` examples, so by :func:`information_bound_risk` its
    expected risk is at least ``R(tB)``; the bound is the first ``t ≥ 0`` with
    ``R(tB) ≤ target``, for every batch size. As ``R`` depends on ``t`` and ``B`` only through
    ``tB``, the bound scales perfectly, ``⌈n*/B⌉`` with ``n*`` the examples needed, down to one
    step. Returns an integer array (``int64``) with one entry per batch size; raises
    ``ValueError`` for a target ``≤ 0`` or invalid batch sizes.
    """
    target = _check_target(target)
    batches = _check_batch_sizes(batch_sizes)
    if information_bound_risk(problem, 0.0) <= target:
        return np.zeros(batches.size, dtype=np.int64)
    # examples needed, n*: bracket by doubling, then bisect (R is continuous and decreasing in n)
    high = 1.0
    while information_bound_risk(problem, high) > target:
        high *= 2.0
    low = high / 2.0 if high > 1.0 else 0.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        low, high = (low, mid) if information_bound_risk(problem, mid) <= target else (mid, high)
    steps = np.maximum(np.ceil(high / batches), 1).astype(np.int64)
    # settle the integers by exact evaluation (the bisection only brackets n*)
    for k, batch in enumerate(batches):
        while information_bound_risk(problem, float(steps[k] * batch)) > target:
            steps[k] += 1
        while steps[k] > 1 and information_bound_risk(problem, float((steps[k] - 1) * batch)) <= target:
            steps[k] -= 1
    return steps
