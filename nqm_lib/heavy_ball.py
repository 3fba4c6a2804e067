"""Heavy-ball momentum's exact risk in closed form, for long runs and whole grids of η at once (chapter 3).

The proof of Theorem 1 in chapter 3 writes the exact expected risk of coordinate ``i`` of heavy-ball
momentum (PyTorch's convention ``v ← βv + g``, ``θ ← θ − ηv``, from rest) with the *impulse response*
``u_i(k)`` of its recurrence ``θ(t+1) = (1 − ηh_i + β) θ(t) − β θ(t−1) − η ε(t)``::

    E[ℓ_i(θ_i(t))] = b_i(t)² ℓ_i(θ_i(0)) + (h_i/2) (η² c_i/B) Σ_{k<t} u_i(k)²,
    b_i(t) = u_i(t) − β u_i(t−1),   u_i(−1) = 0.

With ``s = 1 − ηh_i + β`` the impulse response is ``u(k) = β^{k/2} U_k(s / (2√β))``, where ``U_k`` is the
Chebyshev polynomial of the second kind: ``sin((k+1)φ)/sin φ`` for a complex pair of roots
``√β e^{±iφ}`` (under-damped) and ``sinh((k+1)ψ)/sinh ψ`` for two real roots ``±√β e^{±ψ}``
(over-damped). :func:`impulse_response` evaluates these forms without subtracting the two roots, so it
stays accurate at and near critical damping, where the roots meet.

:func:`risk_curves` evaluates the exact risk for every step and every learning rate of a grid at once
(NumPy broadcasting, no loop over the steps): chapter 3's searches over η and its runs of 25,000 steps
cost milliseconds. It agrees with :func:`~nqm_lib.theory.risk_curve`, which iterates the second-moment
recursion instead, to rounding. :func:`window_tuning` picks from such a grid the η whose *worst* risk
over a window of steps is lowest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dynamics import Hyperparams, check_stable, max_stable_lr
from .problem import NQM
from .theory import first_minimum
from .validation import check_batch_size, check_fraction, check_positive_array, check_steps

__all__ = ["WindowTuning", "impulse_response", "risk_curves", "tuning_grid", "window_tuning"]


def impulse_response(k: np.ndarray | int, x: np.ndarray | float, momentum: float) -> np.ndarray:
    """Impulse response ``u(k)`` of ``θ(t+1) = (1 − x + β) θ(t) − β θ(t−1)`` with ``x = η h``.

    ``u(0) = 1``, ``u(1) = 1 − x + β``, …: the weight with which a unit kick enters the iterate ``k``
    steps later (chapter 3's Theorem 1). ``k`` (integers ≥ 0) and ``x`` broadcast against each other.
    Without momentum ``u(k) = (1 − x)^k``.

    Examples
    --------
    >>> impulse_response(range(4), 0.5, 0.25).round(6).tolist()  # s = 1 − x + β = 0.75
    [1.0, 0.75, 0.3125, 0.046875]

    """
    k = np.asarray(k)
    if not np.issubdtype(k.dtype, np.integer) or np.any(k < 0):
        raise ValueError(f"k must be integers >= 0, got {k!r}")
    beta = check_fraction("momentum", momentum)
    s = 1.0 - np.asarray(x, dtype=float) + beta
    if beta == 0.0:
        return s**k
    root = np.sqrt(beta)
    size = np.abs(s) / (2.0 * root)  # |cos φ| (complex roots) or cosh ψ (real roots)
    sign = np.where(s < 0.0, -1.0, 1.0) ** k  # negative roots flip the sign at every step
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.arccos(np.minimum(size, 1.0))
        oscillating = root**k * np.sin((k + 1) * phi) / np.sin(phi)
        psi = np.arccosh(np.maximum(size, 1.0))
        # sinh((k+1)ψ)/sinh ψ · β^{k/2} = |z₁|^k (1 − e^{−2(k+1)ψ})/(1 − e^{−2ψ}), which never overflows
        decaying = (root * np.exp(psi)) ** k * np.expm1(-2.0 * (k + 1) * psi) / np.expm1(-2.0 * psi)
    repeated = (k + 1) * root**k  # both limits at the repeated root (φ = ψ = 0)
    value = np.where(size < 1.0, oscillating, np.where(psi == 0.0, repeated, decaying))
    return sign * np.where((size < 1.0) & (phi == 0.0), repeated, value)


def risk_curves(problem: NQM, steps: int, lrs: object, *, momentum: float, batch_size: int = 1) -> np.ndarray:
    """Exact ``E[L(θ_t)]`` of heavy-ball momentum for every η of ``lrs``, shape ``(len(lrs), steps + 1)``.

    Row ``j`` equals ``risk_curve(problem, steps, lr=lrs[j], momentum=momentum, batch_size=batch_size)``
    (to rounding), computed from the closed form of the module docstring for all steps and learning
    rates at once. Raises ``ValueError`` for invalid arguments and
    :class:`~nqm_lib.validation.InstabilityError` if some η of the grid diverges.
    """
    steps = check_steps(steps)
    lrs = check_positive_array("lrs", lrs)
    batch_size = check_batch_size(batch_size)
    check_stable(problem, Hyperparams(float(lrs.max()), batch_size=batch_size, momentum=momentum))
    x = lrs[:, None] * problem.h  # (n, d)
    u = impulse_response(np.arange(steps + 1)[:, None, None], x, momentum)  # (T + 1, n, d)
    previous = np.concatenate([np.zeros_like(u[:1]), u[:-1]])
    bias = (u - momentum * previous) ** 2 * problem.theta0**2
    noise = np.concatenate([np.zeros_like(u[:1]), np.cumsum(u[:-1] ** 2, axis=0)])
    noise *= (lrs**2)[:, None] * problem.c / batch_size
    per_coordinate = 0.5 * problem.h * problem.counts * (bias + noise)
    return per_coordinate.sum(axis=2).T


def tuning_grid(problem: NQM, momentum: float, *, points: int = 60, smallest: float = 1e-4) -> np.ndarray:
    """``points`` log-spaced learning rates whose effective rate ``η/(1 − β)`` runs from ``smallest``.

    The grid ends at 0.999 of the largest stable η, ``2(1 + β)/h₁`` (so every run converges), and is
    the one chapter 3 tunes over for each β (``β = 0`` is plain SGD, the baseline).
    """
    beta = check_fraction("momentum", momentum)
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    top = 0.999 * max_stable_lr(problem, momentum=beta)
    low = check_positive_array("smallest", smallest)[0] * (1.0 - beta)
    if low >= top:
        raise ValueError(f"smallest must give η below {top:.4g}, got smallest = {smallest!r}")
    return np.geomspace(low, top, points)


@dataclass(frozen=True)
class WindowTuning:
    """Result of :func:`window_tuning` for one momentum ``β`` and one batch size.

    Attributes: ``lrs`` the grid, ``curves`` the exact risk ``(len(lrs), budget + 1)``, ``worst`` the
    largest risk over the window ``window_start ≤ t ≤ budget`` for each η, ``worst_step`` the step where
    it occurs, ``best`` the index of the smallest ``worst`` and ``best_at_budget`` the index of the
    smallest risk at ``t = budget`` alone (both tie-robust, :func:`~nqm_lib.theory.first_minimum`).
    """

    lrs: np.ndarray
    curves: np.ndarray
    worst: np.ndarray
    worst_step: np.ndarray
    best: int
    best_at_budget: int


def window_tuning(
    problem: NQM,
    lrs: object,
    *,
    momentum: float,
    batch_size: int = 1,
    budget: int = 100,
    window_start: int = 50,
) -> WindowTuning:
    """Tune η over the grid ``lrs`` by the worst exact risk over steps ``window_start … budget`` (chapter 3).

    A run is judged by ``max_{window_start ≤ t ≤ budget} E[L(θ_t)]``, the risk one can count on once the
    window has begun. For a curve that still falls through the window this is its risk at
    ``window_start``; for an oscillating one it depends on where the oscillation stands near the
    window's start. The risk at ``t = budget`` alone is recorded too, for comparison.
    """
    budget = check_steps(budget, "budget")
    window_start = check_steps(window_start, "window_start")
    if window_start > budget:
        raise ValueError(f"window_start must be at most budget = {budget}, got {window_start}")
    curves = risk_curves(problem, budget, lrs, momentum=momentum, batch_size=batch_size)
    window = curves[:, window_start:]
    worst = window.max(axis=1)
    return WindowTuning(
        lrs=check_positive_array("lrs", lrs),
        curves=curves,
        worst=worst,
        worst_step=window_start + window.argmax(axis=1),
        best=first_minimum(worst),
        best_at_budget=first_minimum(curves[:, budget]),
    )
