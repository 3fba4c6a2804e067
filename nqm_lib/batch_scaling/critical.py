"""The critical batch size: where the tuned steps leave perfect scaling (chapter 6)."""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_positive

__all__ = ["critical_batch_size"]


def critical_batch_size(batch_sizes: object, steps: object, *, factor: float = 2.0) -> float:
    """Batch size at which tuned steps are ``factor`` times the perfect-scaling line (chapter 6).

    The perfect-scaling line is extrapolated from the smallest batch size ``B₀``:
    ``S(B₀) B₀ / B`` (doubling ``B`` halves the steps). The critical batch size is where
    ``S(B) B / (S(B₀) B₀)`` first reaches ``factor``, interpolated linearly in
    ``log B``–``log`` ratio between the two batch sizes that bracket it. Returns ``math.inf``
    if the ratio stays below ``factor``.

    In the model ``S(B) = S_min (1 + B_noise / B)`` of McCandlish et al. (2018) the ratio is
    ``(B + B_noise) / (B₀ + B_noise)``, so the critical batch size is
    ``(factor − 1) B_noise + factor · B₀``: with the default ``factor = 2`` it is
    ``B_noise + 2 B₀``, which is close to ``B_noise`` only when ``B₀ ≪ B_noise``.

    Raises ``ValueError`` unless ``batch_sizes`` are at least two increasing numbers ``> 0``,
    ``steps`` are as many finite numbers ``> 0`` and ``factor > 1``.
    """
    factor = check_positive("factor", factor)
    if factor <= 1.0:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    batches = np.asarray(batch_sizes, dtype=float)
    counts = np.asarray(steps, dtype=float)
    if batches.ndim != 1 or batches.size < 2 or np.any(batches <= 0) or np.any(np.diff(batches) <= 0):
        raise ValueError(f"batch_sizes must be at least two increasing numbers > 0, got {batch_sizes!r}")
    if counts.shape != batches.shape or not np.all(np.isfinite(counts)) or np.any(counts <= 0):
        raise ValueError(
            f"steps must hold one finite number > 0 per batch size ({batches.size}), got {steps!r}"
        )
    ratio = counts * batches / (counts[0] * batches[0])
    above = np.flatnonzero(ratio >= factor)
    if not above.size:
        return math.inf
    k = int(above[0])
    x0, x1 = np.log(batches[k - 1]), np.log(batches[k])
    y0, y1 = np.log(ratio[k - 1]), np.log(ratio[k])
    return float(np.exp(x0 + (np.log(factor) - y0) * (x1 - x0) / (y1 - y0)))
