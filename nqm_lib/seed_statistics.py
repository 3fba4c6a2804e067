"""Results over seeds: bootstrap intervals, an unbiased steps-to-target crossing, the S(B) law (ch. 9, 10).

A measured risk curve is an average over a finite number of seeds, so it is noisy, and the
*first* step at which a noisy curve dips below a target comes too early: the noise, not the
trend, decides the crossing (the more so the flatter the curve near the target). Chapter 10
therefore counts steps with :func:`crossing_step`: the first crossing of the *monotone
envelope* of the seed-averaged curve, the non-increasing least-squares fit to it
(:func:`monotone_envelope`, pool-adjacent-violators), interpolated between evaluation steps on
a log scale. The envelope averages the noise of neighbouring evaluations instead of selecting
its lowest dip, and it is exact for a curve that is already non-increasing.

:func:`bootstrap_interval` gives percentile intervals over seeds (resampling whole seeds, so
each replicate keeps a seed's curve intact), :func:`bootstrap_mean_interval` the interval of a
mean of independent runs (chapter 9's comparisons of optimisers), and :func:`fit_steps_law` fits the law
``S(B) = S_min (1 + B_noise / B)`` of McCandlish et al. (2018) to steps at *all* batch sizes.

Everything here is NumPy; it does not import PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .validation import check_positive

__all__ = [
    "StepsLaw",
    "bootstrap_interval",
    "bootstrap_mean_interval",
    "bootstrap_replicates",
    "crossing_step",
    "fit_steps_law",
    "mean_curve_crossing",
    "monotone_envelope",
    "ratio_spread",
]


def _as_curve(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    return array


def _check_risks(name: str, values: object) -> np.ndarray:
    curve = _as_curve(name, values)
    if not np.all(np.isfinite(curve)) or np.any(curve < 0):
        raise ValueError(f"{name} must be finite numbers >= 0 (risks)")
    return curve


def monotone_envelope(values: object) -> np.ndarray:
    """The non-increasing sequence closest to ``values`` in least squares (pool-adjacent-violators).

    Every run of values that violates the order is replaced by its mean, so an already
    non-increasing sequence is returned unchanged. Values must be finite and ``>= 0``.

    Examples
    --------
    >>> monotone_envelope([3.0, 1.0, 2.0, 0.5])
    array([3. , 1.5, 1.5, 0.5])

    """
    curve = _check_risks("values", values)
    means: list[float] = []
    sizes: list[int] = []
    for value in curve:
        means.append(float(value))
        sizes.append(1)
        while len(means) > 1 and means[-2] < means[-1]:  # a rise: pool the two blocks
            total = means[-2] * sizes[-2] + means[-1] * sizes[-1]
            sizes[-2] += sizes[-1]
            means[-2] = total / sizes[-2]
            means.pop()
            sizes.pop()
    return np.repeat(means, sizes)


def crossing_step(steps: object, curve: object, target: float) -> float:
    """First step at which the monotone envelope of ``curve`` reaches ``target``, interpolated.

    ``curve[k]`` is the risk at evaluation step ``steps[k]`` (increasing); a non-finite entry (a
    diverged run) ends the curve there. The envelope is :func:`monotone_envelope`'s; its first
    entry ``≤ target`` is found in linear time (it is the first ``k`` at which the largest
    partial sum of ``curve − target`` from ``k`` on is at most the largest one before ``k``).
    Between that evaluation and the previous one the crossing is interpolated linearly in
    ``log(risk)`` against the step; a crossing at the first evaluation returns ``steps[0]``.
    Returns ``inf`` if the envelope stays above the target.

    Examples
    --------
    >>> crossing_step([0, 10, 20], [1.0, 0.1, 0.01], 0.1)
    10.0
    >>> round(crossing_step([0, 10, 20], [1.0, 0.1, 0.01], math.sqrt(0.1) * 0.1), 6)
    15.0
    >>> # the dip at 10 is noise: the envelope pools it with step 20 (0.125 at both), so the
    >>> # crossing falls between 20 and 30, not at 10
    >>> round(crossing_step([0, 10, 20, 30], [1.0, 0.05, 0.2, 0.05], 0.1), 1)
    22.4

    """
    grid = _as_curve("steps", steps)
    values = np.asarray(curve, dtype=float)
    if values.shape != grid.shape:
        raise ValueError(f"steps and curve must have the same length, got {grid.size} and {values.size}")
    if np.any(np.diff(grid) <= 0):
        raise ValueError("steps must be increasing")
    target = check_positive("target", target)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        grid, values = grid[: bad[0]], values[: bad[0]]
        if not values.size:
            return math.inf
    values = _check_risks("curve", values)
    partial = np.concatenate([[0.0], np.cumsum(values - target)])  # partial[m] = Σ_{i<m} (y_i − target)
    before = np.maximum.accumulate(partial[:-1])  # largest partial sum ending before k
    after = np.maximum.accumulate(partial[1:][::-1])[::-1]  # largest partial sum ending at k or later
    crossed = np.flatnonzero(after <= before)
    if not crossed.size:
        return math.inf
    k = int(crossed[0])
    if k == 0:
        return float(grid[0])
    envelope = monotone_envelope(values)
    high, low = envelope[k - 1], envelope[k]
    if low <= 0 or high <= low:
        return float(grid[k])
    fraction = min(max(math.log(high / target) / math.log(high / low), 0.0), 1.0)
    return float(grid[k - 1] + fraction * (grid[k] - grid[k - 1]))


def mean_curve_crossing(steps: object, risks: object, target: float) -> float:
    """:func:`crossing_step` of the seed-averaged curve; ``risks`` has shape ``(seeds, len(steps))``.

    A seed whose run diverged (an infinite or NaN risk) makes the mean infinite from there on.
    """
    array = np.asarray(risks, dtype=float)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"risks must have shape (seeds, steps), got {array.shape}")
    mean = np.where(np.isfinite(array), array, np.inf).mean(axis=0)
    return crossing_step(steps, mean, target)


def bootstrap_replicates(
    statistic: Callable[[np.ndarray], float | np.ndarray],
    n_seeds: int,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """``statistic(indices)`` for ``resamples`` bootstrap draws of ``n_seeds`` seed indices.

    Each draw picks ``n_seeds`` indices in ``0 … n_seeds − 1`` with replacement (a fixed NumPy
    generator seeded by ``seed``). Passing the same ``seed`` to several statistics resamples the
    same seeds for each, which keeps their correlation (e.g. the steps at every batch size, for a
    critical batch size computed from them). Returns an array of shape ``(resamples, ...)``.
    """
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int | np.integer) or n_seeds < 2:
        raise ValueError(f"n_seeds must be an integer >= 2, got {n_seeds!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 10:
        raise ValueError(f"resamples must be an integer >= 10, got {resamples!r}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(int(resamples), int(n_seeds)))
    return np.array([statistic(indices) for indices in draws], dtype=float)


def bootstrap_interval(replicates: object, level: float = 0.9) -> tuple[float, float]:
    """Percentile interval ``(low, high)`` holding the central ``level`` of the bootstrap replicates.

    Infinite replicates (the target not reached) count as larger than every finite one, so an
    upper end can be ``inf``. Raises ``ValueError`` if ``level`` is not in ``(0, 1)`` or a
    replicate is NaN.
    """
    values = np.asarray(replicates, dtype=float).ravel()
    if values.size < 2 or np.isnan(values).any():
        raise ValueError("replicates must hold at least two numbers and no NaN")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    tail = 100.0 * (1.0 - level) / 2.0
    finite = values[np.isfinite(values)]
    ceiling = (np.abs(finite).max() if finite.size else 0.0) + 1.0
    stand_in = np.where(np.isposinf(values), 2.0 * ceiling, values)  # inf sorts last, then maps back
    ends = np.percentile(stand_in, [tail, 100.0 - tail], method="linear")
    low, high = (math.inf if end > ceiling else float(end) for end in ends)
    return low, high


def bootstrap_mean_interval(
    values: object, *, level: float = 0.95, resamples: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval for the mean of ``values`` (one number per independent run).

    Resamples the runs with replacement ``resamples`` times (:func:`bootstrap_replicates`, seeded,
    so the interval is the same on every machine up to rounding) and returns the central ``level``
    of the resampled means (:func:`bootstrap_interval`). ``values`` must hold at least two finite
    numbers; a difference between two means smaller than their intervals is not a result.
    """
    data = np.asarray(values, dtype=float).ravel()
    if data.size < 2 or not np.all(np.isfinite(data)):
        raise ValueError(f"values must hold at least 2 finite numbers, got {data.size} values")
    means = bootstrap_replicates(
        lambda indices: data[indices].mean(), data.size, resamples=resamples, seed=seed
    )
    return bootstrap_interval(means, level)


class StepsLaw(NamedTuple):
    """The fitted law ``S(B) = S_min (1 + B_noise / B)``."""

    min_steps: float
    """``S_min``: the steps in the limit of infinite batch size."""
    noise_scale: float
    """``B_noise``: the batch size at which the steps are twice ``S_min``."""


def fit_steps_law(batch_sizes: object, steps: object) -> StepsLaw:
    """Least-squares fit of ``log S(B) = log S_min + log(1 + B_noise / B)`` to every batch size.

    Every batch size counts equally on the log scale (no anchoring on the smallest one). For a
    fixed ``B_noise`` the best ``S_min`` is explicit; ``B_noise`` is found by a log-spaced grid
    over ``[10⁻³ B_min, 10³ B_max]`` refined three times around its best point (to a relative
    ``10⁻⁷``), so the fit is deterministic. Raises ``ValueError`` unless there are at least two
    increasing batch sizes ``> 0`` with finite steps ``> 0``.

    Examples
    --------
    >>> law = fit_steps_law([1, 4, 16, 64], [100 * (1 + 8 / b) for b in (1, 4, 16, 64)])
    >>> round(law.min_steps, 6), round(law.noise_scale, 6)
    (100.0, 8.0)

    """
    batches = np.asarray(batch_sizes, dtype=float)
    counts = np.asarray(steps, dtype=float)
    if batches.ndim != 1 or batches.size < 2 or np.any(batches <= 0) or np.any(np.diff(batches) <= 0):
        raise ValueError(f"batch_sizes must be at least two increasing numbers > 0, got {batch_sizes!r}")
    if counts.shape != batches.shape or not np.all(np.isfinite(counts)) or np.any(counts <= 0):
        raise ValueError(f"steps must hold one finite number > 0 per batch size, got {steps!r}")
    log_steps = np.log(counts)

    def residuals(log_noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = log_steps - np.log1p(np.exp(log_noise)[:, None] / batches[None, :])
        offset = centred.mean(axis=1)
        return np.sum((centred - offset[:, None]) ** 2, axis=1), offset

    low, high = math.log(1e-3 * batches[0]), math.log(1e3 * batches[-1])
    for _ in range(4):  # a grid, then finer grids around its best point
        grid = np.linspace(low, high, 201)
        k = int(np.argmin(residuals(grid)[0]))
        low, high = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    best = np.array([0.5 * (low + high)])
    return StepsLaw(math.exp(float(residuals(best)[1][0])), math.exp(float(best[0])))


def ratio_spread(measured: object, predicted: object) -> float:
    """The worst factor between two positive arrays: ``max_i max(m_i/p_i, p_i/m_i)`` (``inf`` if any is inf).

    Examples
    --------
    >>> ratio_spread([10.0, 20.0], [12.0, 10.0])
    2.0

    """
    m = np.asarray(measured, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if m.shape != p.shape or m.size == 0 or np.any(m <= 0) or np.any(p <= 0):
        raise ValueError("measured and predicted must be non-empty arrays of the same shape with entries > 0")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(p))):
        return math.inf
    return float(np.max(np.maximum(m / p, p / m)))
