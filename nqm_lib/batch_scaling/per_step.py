"""Learning rates that change at every step: Chebyshev step sizes for plain SGD (chapter 6).

A schedule of ``T`` rates that are all different can do what no constant rate, and no schedule of
a few equal stable pieces, can: with the rates ``η_k = 1/r_k``, ``r_k`` the roots of the degree-``T``
Chebyshev polynomial on the curvature range ``[h_d, h_1]`` (Young, 1953; the *Chebyshev learning
rate schedule* of Agarwal, Goel and Zhang, 2021), gradient descent multiplies every coordinate by
the rescaled Chebyshev polynomial, and the error falls like ``exp(−2T/√κ)`` instead of
``exp(−2T/κ)``: momentum's speed (chapter 3), with plain SGD steps. Most of these rates are far
above ``2/h_1``: each such step amplifies the stiff coordinates, which the smaller steps then
remove, so only the schedule as a whole converges.

With noise the order of the steps matters: a step's noise is multiplied by the factors of all
later steps. :func:`~nqm_lib.batch_scaling.chebyshev_lrs` returns the rates largest first, so the
noise of the large steps is removed by the small ones that follow. The risk after any schedule is
exact (:func:`~nqm_lib.batch_scaling.per_step_schedule_risk`): coordinate ``i`` ends with the second
moment ``E[θ_i(T)²] = θ_i(0)² Π_k f_k + (c_i/B) Σ_k η_k² Π_{j>k} f_j`` with ``f_k = (1 − η_k h_i)²``,
computed from sums of ``log f_k`` so that the huge intermediate factors of unstable steps cannot
overflow.
"""

from __future__ import annotations

import math

import numpy as np

from ..problem import NQM
from ..validation import check_batch_size, check_positive, check_steps
from .grids import _check_batch_sizes, _check_grid, _check_max_steps, _check_target

__all__ = ["chebyshev_lrs", "chebyshev_steps_to_target", "per_step_schedule_risk"]

# The lower bound of the search keeps the coordinates that carry this share of the risk ...
_BOUND_SHARE = 0.9
# ... and skips a horizon only if it exceeds the target by more than rounding could explain.
_ROUNDING = 1e-9


def chebyshev_lrs(steps: int, low: float, high: float) -> np.ndarray:
    """The ``steps`` Chebyshev step sizes for curvatures in ``[low, high]``, largest first (chapter 6).

    ``η_k = 1/r_k`` with ``r_k = (high + low)/2 + (high − low)/2 · cos((2k − 1)π/(2T))``,
    ``k = 1, …, T``: the reciprocals of the roots of the degree-``T`` Chebyshev polynomial mapped
    to ``[low, high]``. After these ``T`` steps of gradient descent, in any order, a coordinate of
    curvature ``h`` is multiplied by ``Π_k (1 − η_k h) = T_T((high + low − 2h)/(high − low)) /
    T_T((high + low)/(high − low))``, at most ``1/T_T((κ + 1)/(κ − 1))`` in absolute value on
    ``[low, high]`` (``κ = high/low``). Raises ``ValueError`` unless ``steps ≥ 1`` and
    ``0 < low < high``.

    Examples
    --------
    >>> chebyshev_lrs(2, 1.0, 3.0).round(4).tolist()
    [0.7735, 0.3694]

    """
    steps = check_steps(steps)
    if steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    low, high = check_positive("low", low), check_positive("high", high)
    if not low < high:
        raise ValueError(f"low must be smaller than high, got low={low!r}, high={high!r}")
    k = np.arange(steps, 0, -1)  # k = T, ..., 1: the smallest root (largest rate) first
    roots = (high + low) / 2.0 + (high - low) / 2.0 * np.cos((2 * k - 1) * np.pi / (2 * steps))
    return 1.0 / roots


def _final_moments(
    h: np.ndarray, start: np.ndarray, c: np.ndarray, lrs: np.ndarray, work: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per coordinate, the deterministic and the per-unit-``1/B`` noise parts of ``E[θ_i(T)²]``.

    ``h``, ``start = θ_i(0)²`` and ``c`` hold the coordinates to evaluate (any subset: each
    coordinate's moments depend on its own ``h_i`` only); ``work``, if given, is a flat float
    array of at least ``len(lrs) · len(h)`` entries that is overwritten (the search reuses it).
    Works with logarithms, last step first: row ``m`` of the work array becomes the sum of
    ``log|1 − η h_i|`` over the last ``m + 1`` steps, so that the factor of every step's noise
    (the product of the later steps' ``f_j``) is one ``exp``, and the huge intermediate products of
    unstable steps never appear. A rate exactly ``1/h_i`` zeroes coordinate ``i`` (``log 0 = −inf``);
    overflows become ``inf``, which the callers reject.
    """
    rates = lrs[::-1]
    size = rates.size * h.size
    logs = (np.empty(size) if work is None else work[:size]).reshape(rates.size, h.size)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        np.multiply(rates[:, None], h, out=logs)
        np.subtract(1.0, logs, out=logs)
        np.abs(logs, out=logs)
        np.log(logs, out=logs)
        np.cumsum(logs, axis=0, out=logs)
        deterministic = start * np.exp(2.0 * logs[-1])
        later = logs[:-1]  # row m − 1: the steps after the m-th last one
        np.exp(later, out=later)
        np.square(later, out=later)
        noise = c * (rates[0] ** 2 + rates[1:] ** 2 @ later)
    return deterministic, noise


def _risk_parts(problem: NQM, lrs: np.ndarray) -> tuple[float, float]:
    """``D`` and ``N`` with ``E[L(θ_T)] = D + N/B`` after the schedule ``lrs``."""
    deterministic, noise = _final_moments(problem.h, problem.theta0**2, problem.c, lrs)
    weight = 0.5 * problem.h * problem.counts
    with np.errstate(over="ignore", invalid="ignore"):
        parts = float(deterministic @ weight), float(noise @ weight)
    if not all(math.isfinite(part) for part in parts):
        raise ValueError(
            "the schedule's risk overflows: its steps amplify the noise beyond floating-point range"
        )
    return parts


def per_step_schedule_risk(problem: NQM, lrs: object, *, batch_size: int = 1) -> float:
    """Exact ``E[L(θ_T)]`` of SGD after the steps ``lrs`` (any positive rates, chapter 6).

    Step ``k`` uses ``η_k = lrs[k]``; unlike :func:`~nqm_lib.schedules.schedule_risk_curve`, rates
    with ``η_k h_1 ≥ 2`` are allowed (each such step amplifies the stiff coordinates; later steps may
    remove them). Uses the product form of the module docstring, so that intermediate factors far
    beyond floating-point range do not matter. Raises ``ValueError`` for invalid arguments or a
    risk that overflows.
    """
    rates = _check_grid("lrs", lrs, check_positive)
    batch = check_batch_size(batch_size)
    deterministic, noise = _risk_parts(problem, rates)
    return deterministic + noise / batch


def chebyshev_steps_to_target(
    problem: NQM, target: float, batch_sizes: object, *, max_steps: int = 1000
) -> np.ndarray:
    """Fewest steps ``T`` whose Chebyshev schedule reaches ``target``, per batch size (chapter 6).

    For a horizon ``T`` the schedule is :func:`chebyshev_lrs` on the problem's curvature range
    ``[h_d, h_1]`` (largest step first), and its final risk is ``D(T) + N(T)/B``
    (:func:`per_step_schedule_risk`). Every horizon has its own schedule, and the final risk need
    not fall with ``T`` (the Chebyshev polynomials of neighbouring degrees weigh the coordinates
    differently), so the count is the first ``T`` whose final risk is at most the target, found
    by trying ``T = 1, 2, …`` in turn until every batch size is done or ``T = max_steps``. That is
    exact, and cheaper than its ``T² d`` look: the risk is a sum of non-negative terms, one per
    coordinate, so the few coordinates that carried most of it at the last full evaluation give a
    lower bound, and only a horizon whose bound does not already exceed the target (for the
    largest batch size still searching) is evaluated in full. Returns a float array with one entry
    per batch size: the count, or ``inf`` where no ``T ≤ max_steps`` reaches the target (a
    horizon whose risk overflows does not). Raises ``ValueError`` for invalid arguments.
    """
    target = _check_target(target)
    batches = _check_batch_sizes(batch_sizes).astype(float)
    max_steps = _check_max_steps(max_steps)
    low, high = float(problem.h.min()), float(problem.h.max())
    if not low < high:
        raise ValueError("the problem needs at least two different curvatures for Chebyshev steps")
    h, start, c = problem.h, problem.theta0**2, problem.c
    weight = 0.5 * problem.h * problem.counts
    work = np.empty(max_steps * problem.d)
    counts = np.full(batches.size, np.inf)
    few = np.arange(problem.d)  # the coordinates of the lower bound (all until the first evaluation)
    for steps in range(1, max_steps + 1):
        lrs = chebyshev_lrs(steps, low, high)
        largest = batches[np.isinf(counts)].max()  # the batch size closest to reaching the target
        if few.size < problem.d:
            deterministic, noise = _final_moments(h[few], start[few], c[few], lrs, work)
            with np.errstate(over="ignore", invalid="ignore"):
                bound = (deterministic + noise / largest) @ weight[few]
            if not bound <= target * (1.0 + _ROUNDING):  # also when it overflows (inf or nan)
                continue
        deterministic, noise = _final_moments(h, start, c, lrs, work)
        with np.errstate(over="ignore", invalid="ignore"):
            parts = deterministic @ weight, noise @ weight
            terms = (deterministic + noise / largest) * weight
        if not all(math.isfinite(part) for part in parts):
            continue
        counts[np.isinf(counts) & (parts[0] + parts[1] / batches <= target)] = steps
        if np.all(np.isfinite(counts)):
            break
        # the next bounds: the fewest coordinates that carry _BOUND_SHARE of the risk here
        order = np.argsort(terms)[::-1]
        share = np.cumsum(terms[order])
        few = np.sort(order[: int(np.searchsorted(share, _BOUND_SHARE * share[-1])) + 1])
    return counts
