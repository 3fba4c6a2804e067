"""Preconditioned SGD after a fixed budget of steps: exact risk, tuned learning rate, best power (chapter 5).

Chapter 5 compares preconditioners ``P = H^p`` — and the damped ``P = H^p + μI``, the role of
Adam's ``ε`` — by the smallest expected risk each reaches after ``T`` steps over *every*
stable learning rate. Every preconditioner of this family is diagonal, so in the rescaled
coordinates ``φ = P^{1/2} θ`` it is plain SGD on another NQM (:func:`damped_problem`) with the
same risk, and the exact ``E[L(θ_T)]`` is the closed form of chapter 2 (:func:`budget_risk`).

The searches are exact and fast:

- :func:`tuned_budget_risk` minimises over the learning rate: a grid over the whole stable
  range (or a bracket around a given rate), then golden-section search to a relative
  precision far below anything the chapter prints;
- :func:`best_precond_power` finds the best power on a grid of powers by walking downhill from
  a starting power, so that it tunes the learning rate of a few powers instead of all of them
  (the tests check it against the exhaustive search).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .dynamics import max_stable_lr
from .formulas import sgd_risk
from .problem import NQM
from .theory import first_minimum
from .validation import check_batch_size, check_nonnegative, check_positive, check_precond_power, check_steps

__all__ = [
    "POWERS",
    "BestPower",
    "TunedRisk",
    "best_precond_power",
    "budget_risk",
    "damped_problem",
    "tuned_budget_risk",
]

#: The grid of preconditioning powers of chapter 5, from 0 to 1 in steps of 0.02.
POWERS = np.linspace(0.0, 1.0, 51)

#: The stable learning rates are searched as ``η = limit / (1 + e^{−x})``: ``x`` from
#: ``log 1e-4`` to ``log 1e6`` covers ``1e-4`` to ``1 − 1e-6`` times the stability limit,
#: geometric at small rates and just as fine next to the limit.
_X_RANGE = (float(np.log(1e-4)), float(np.log(1e6)))
_GRID_POINTS = 80
_X_TOLERANCE = 1e-7  # golden-section search stops when the bracket is this narrow (in x)
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def damped_problem(problem: NQM, *, precond_power: float = 0.0, damping: float = 0.0) -> NQM:
    """The NQM that SGD with the preconditioner ``P = H^p + μI`` solves in ``φ = P^{1/2}θ`` (chapter 5).

    Coordinate ``i`` of ``θ ← θ − η P^{−1} g`` is ``θ_i ← (1 − η h_i/P_i) θ_i − η ε_i/P_i`` with
    ``P_i = h_i^p + μ``. Multiplied by ``P_i^{1/2}``, it is plain SGD with curvature ``h_i/P_i``,
    noise ``c_i/P_i`` and start ``P_i^{1/2} θ_i(0)``, and its loss ``½ (h_i/P_i) φ_i²`` equals
    ``½ h_i θ_i²``: the returned problem has exactly the same risk at every step. With
    ``damping = 0`` this is chapter 5's transformed problem ``(h^{1−p}, h^{−p} c)``; with
    ``precond_power = 0`` and ``damping = μ`` it is plain SGD with learning rate ``η/(1 + μ)``.
    """
    p = check_precond_power(precond_power)
    mu = check_nonnegative("damping", damping)
    scale = problem.h**p + mu
    return NQM(problem.h / scale, problem.c / scale, problem.theta0 * np.sqrt(scale), counts=problem.counts)


def budget_risk(
    problem: NQM,
    steps: int,
    lr: object,
    *,
    batch_size: int = 1,
    precond_power: float = 0.0,
    damping: float = 0.0,
) -> np.ndarray:
    """Exact ``E[L(θ_T)]`` after ``T = steps`` steps, for every learning rate in ``lr`` (chapter 5).

    ``lr`` may be a number or an array (the result has its shape): a whole sweep of learning
    rates costs one vectorised evaluation of the closed form
    ``Σ_i r_i^{2T} ℓ_i(0) + (1 − r_i^{2T}) · floor_i`` on :func:`damped_problem`. Every rate
    must be stable (``0 < η < 2 / max_i h_i/P_i``).
    """
    steps = check_steps(steps)
    batch_size = check_batch_size(batch_size)
    rescaled = damped_problem(problem, precond_power=precond_power, damping=damping)
    rates = np.asarray(lr, dtype=float)
    limit = max_stable_lr(rescaled)
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0) or np.any(rates >= limit):
        raise ValueError(f"lr must lie in (0, {limit:.6g}), the stable range, got {lr!r}")
    return _sgd_budget_risk(rescaled, steps, rates, batch_size)


def _sgd_budget_risk(problem: NQM, steps: int, rates: np.ndarray, batch_size: int) -> np.ndarray:
    """Plain SGD's exact ``E[L(θ_T)]`` for each (stable, unchecked) learning rate in ``rates``."""
    per_coordinate = sgd_risk(
        problem.h, problem.c, problem.theta0, steps, lr=rates[..., None], batch_size=batch_size
    )
    return per_coordinate @ problem.counts


class TunedRisk(NamedTuple):
    """The smallest ``E[L(θ_T)]`` over the stable learning rates, and the rate ``lr`` that reaches it."""

    risk: float
    lr: float


def _golden_section(objective, lo: float, hi: float) -> float:
    """Argument of the minimum of a unimodal ``objective`` on ``[lo, hi]`` (to ``_X_TOLERANCE``)."""
    a, b = lo + (1.0 - _GOLDEN) * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = objective(a), objective(b)
    while hi - lo > _X_TOLERANCE:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1.0 - _GOLDEN) * (hi - lo)
            fa = objective(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = objective(b)
    return a if fa <= fb else b


def tuned_budget_risk(
    problem: NQM,
    steps: int,
    *,
    batch_size: int = 1,
    precond_power: float = 0.0,
    damping: float = 0.0,
    near: float | None = None,
) -> TunedRisk:
    """Smallest exact ``E[L(θ_T)]`` over every stable learning rate, and that rate (chapter 5).

    The rates are ``η = limit/(1 + e^{−x})`` with ``limit`` the stability limit, so that an even
    step in ``x`` is geometric for small ``η`` and just as fine next to the limit. Without
    ``near``, 80 values of ``x`` span ``1e-4`` to ``1 − 1e-6`` times the limit and the best
    (:func:`~nqm_lib.theory.first_minimum`, tie-robust) brackets the minimum. With ``near``, a
    learning rate believed close to the best one (e.g. the best rate of a similar problem), the
    bracket starts at ``x(near) ± 0.25`` and moves downhill until it holds the minimum — far
    fewer evaluations on a large problem. Either way golden-section search then locates ``x`` to
    ``1e-7``, so the tuned risk is accurate to far more digits than the chapter prints.
    """
    steps = check_steps(steps)
    batch_size = check_batch_size(batch_size)
    rescaled = damped_problem(problem, precond_power=precond_power, damping=damping)
    limit = max_stable_lr(rescaled)
    lo_x, hi_x = _X_RANGE

    def risk(x: float | np.ndarray) -> np.ndarray:
        return _sgd_budget_risk(rescaled, steps, limit / (1.0 + np.exp(-np.asarray(x))), batch_size)

    if near is None:
        x = np.linspace(lo_x, hi_x, _GRID_POINTS)
        k = first_minimum(risk(x))
        lo, hi = x[max(k - 1, 0)], x[min(k + 1, x.size - 1)]
    else:
        near = check_positive("near", near)
        if near >= limit:
            raise ValueError(f"near must lie in (0, {limit:.6g}), the stable range, got {near!r}")
        centre = float(np.clip(np.log(near / (limit - near)), lo_x, hi_x))
        width = 0.25
        lo, mid, hi = max(centre - width, lo_x), centre, min(centre + width, hi_x)
        f_lo, f_mid, f_hi = (float(v) for v in risk(np.array([lo, mid, hi])))
        while f_lo < f_mid and lo > lo_x:  # the minimum lies further left: move the bracket
            hi, mid, f_hi, f_mid = mid, lo, f_mid, f_lo
            lo = max(lo - width, lo_x)
            f_lo = float(risk(lo))
        while f_hi < f_mid and hi < hi_x:  # ... or further right
            lo, mid, f_lo, f_mid = mid, hi, f_mid, f_hi
            hi = min(hi + width, hi_x)
            f_hi = float(risk(hi))
    best_x = _golden_section(lambda value: float(risk(value)), float(lo), float(hi))
    best_lr = float(limit / (1.0 + np.exp(-best_x)))
    return TunedRisk(float(risk(best_x)), best_lr)


class BestPower(NamedTuple):
    """Result of :func:`best_precond_power`: the best ``power`` and its tuned ``risk`` and ``lr``.

    ``tuned`` maps every power whose learning rate was tuned on the way to its :class:`TunedRisk`.
    """

    power: float
    risk: float
    lr: float
    tuned: dict[float, TunedRisk]


def best_precond_power(
    problem: NQM,
    steps: int,
    *,
    batch_size: int = 1,
    powers: Sequence[float] | np.ndarray = POWERS,
    damping: float = 0.0,
    start: float | None = None,
    near: float | None = None,
) -> BestPower:
    """The power ``p`` of the grid ``powers`` with the smallest tuned ``E[L(θ_T)]`` (chapter 5).

    Walks downhill on the grid from ``start`` (default: the first power): it tunes the learning
    rate (:func:`tuned_budget_risk`) of the neighbouring powers and moves to the better one until
    both neighbours are worse; a neighbour within a relative ``1e-9`` counts as equal, and ties
    keep the smaller power, as :func:`~nqm_lib.theory.first_minimum` does. Where the tuned
    risk has one minimum over the grid — the case in chapter 5, which the tests check against
    the exhaustive search — this is the grid's best power, after tuning a handful of powers.
    ``near`` is a learning rate to start the first search from (each next power starts from its
    neighbour's best rate).
    """
    grid = np.asarray(powers, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or np.any(np.diff(grid) <= 0):
        raise ValueError(f"powers must be a non-empty increasing 1-D grid, got {powers!r}")
    for value in grid:
        check_precond_power(float(value))
    index = 0 if start is None else int(np.argmin(np.abs(grid - start)))
    tuned: dict[float, TunedRisk] = {}

    def tune(k: int, hint: float | None) -> TunedRisk:
        power = float(grid[k])
        if power not in tuned:
            tuned[power] = tuned_budget_risk(
                problem, steps, batch_size=batch_size, precond_power=power, damping=damping, near=hint
            )
        return tuned[power]

    current = tune(index, near)
    while True:
        better = None
        for k in (index - 1, index + 1):
            if 0 <= k < grid.size:
                candidate = tune(k, current.lr)
                clearly_lower = candidate.risk < current.risk - 1e-9 * abs(current.risk)
                tie_below = k < index and candidate.risk <= current.risk + 1e-9 * abs(current.risk)
                if (clearly_lower or tie_below) and (better is None or candidate.risk < better[1].risk):
                    better = (k, candidate)
        if better is None:
            return BestPower(float(grid[index]), current.risk, current.lr, tuned)
        index, current = better
