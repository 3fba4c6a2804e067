"""Intervals over seeds: a percentile bootstrap for the mean of independent runs (chapter 9).

Every comparison of optimisers in the book averages many independently seeded runs; a mean
is quoted with an interval from :func:`bootstrap_mean_interval`, so that a difference smaller
than the spread over seeds is not read as a result.
"""

from __future__ import annotations

import numpy as np

from .validation import check_steps

__all__ = ["bootstrap_mean_interval"]


def bootstrap_mean_interval(
    values: object, *, level: float = 0.95, resamples: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval for the mean of ``values`` (one number per independent run).

    Draws ``resamples`` resamples of the runs with replacement (seeded, so the interval is the
    same on every machine up to rounding) and returns the ``(1 − level)/2`` and ``(1 + level)/2``
    quantiles of their means. ``values`` must hold at least two finite numbers.
    """
    data = np.asarray(values, dtype=float).ravel()
    if data.size < 2 or not np.all(np.isfinite(data)):
        raise ValueError(f"values must hold at least 2 finite numbers, got {data.size} values")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    resamples = check_steps(resamples, "resamples")
    if resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100, got {resamples!r}")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, (resamples, data.size))].mean(axis=1)
    low, high = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)
