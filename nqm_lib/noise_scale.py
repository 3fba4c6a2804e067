"""The gradient noise scale of McCandlish et al. (2018): which batch size the noise allows (chapters 6, 9).

At parameters θ with true gradient G, Hessian H and per-example gradient covariance C, one SGD
step on a batch of B examples lowers the loss, to second order, by the most when η is tuned
for B; the best such improvement is the noise-free one divided by ``1 + B_noise / B`` with ::

    B_noise = tr(H C) / (Gᵀ H G),

the *critical* noise scale: below it a doubling of B nearly doubles the progress per step, above
it hardly helps. When H is a multiple of the identity (or its effect is ignored) this becomes
the *simple* noise scale ::

    B_simple = tr(C) / ‖G‖²,

the ratio of the noise's total variance to the squared gradient. Both grow as the gradient
shrinks and the noise does not. On the NQM at a fixed learning rate that lasts only until the stiff
coordinates reach their noise floor: from then on ``B_noise`` stays at
``(B/η) Σ h_i c_i / Σ h_i² c_i/(2 − ηh_i)`` while the loss goes on falling (chapter 6).

On the NQM the gradient is random along an SGD run, and what the expected-risk curves give are
the second moments ``m_i = E[θ_i²]``; :func:`nqm_noise_scales` uses ``E‖G‖² = Σ n_i h_i² m_i`` and
``E[GᵀHG] = Σ n_i h_i³ m_i`` in the denominators (the noise scale of the average squared gradient),
with ``n_i`` the multiplicity of coordinate ``i`` (``NQM.counts``) in these sums and in the traces.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .problem import NQM
from .validation import check_nonnegative_array

__all__ = ["NoiseScales", "gradient_noise_scales", "nqm_noise_scales"]


class NoiseScales(NamedTuple):
    """The two noise scales of McCandlish et al. (2018), in examples per batch."""

    simple: float | np.ndarray
    """``B_simple = tr C / ‖G‖²``."""
    critical: float | np.ndarray
    """``B_noise = tr(HC) / GᵀHG``."""


def _as_matrix(name: str, value: object, size: int) -> np.ndarray:
    """``value`` as a ``size × size`` float matrix; a 1-D array is taken as its diagonal."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 1:
        array = np.diag(array)
    if array.shape != (size, size):
        raise ValueError(
            f"{name} must be a vector of length {size} or a {size}×{size} matrix, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array}")
    return array


def gradient_noise_scales(hessian: object, covariance: object, gradient: object) -> NoiseScales:
    """``B_simple = tr C / ‖G‖²`` and ``B_noise = tr(HC) / GᵀHG`` at one point.

    Parameters
    ----------
    hessian
        H: a ``d × d`` matrix, or a vector of its diagonal.
    covariance
        C, the covariance of one example's gradient: a ``d × d`` matrix or its diagonal.
    gradient
        G, the true (full-batch, population) gradient, a vector of length ``d``.

    Raises
    ------
    ValueError
        If the shapes disagree, an entry is not finite, ``‖G‖ = 0`` (the noise scale is
        infinite at a stationary point), or ``GᵀHG ≤ 0`` (no descent direction along G).

    Examples
    --------
    >>> gradient_noise_scales([2.0, 1.0], [4.0, 1.0], [1.0, 1.0])
    NoiseScales(simple=2.5, critical=3.0)

    """
    gradient = np.asarray(gradient, dtype=float)
    if gradient.ndim != 1 or not np.all(np.isfinite(gradient)):
        raise ValueError(f"gradient must be a finite vector, got {gradient}")
    d = gradient.shape[0]
    h = _as_matrix("hessian", hessian, d)
    c = _as_matrix("covariance", covariance, d)
    squared_norm = float(gradient @ gradient)
    curvature = float(gradient @ h @ gradient)
    if squared_norm == 0:
        raise ValueError("gradient = 0: the noise scale is infinite at a stationary point")
    if curvature <= 0:
        raise ValueError(f"GᵀHG = {curvature:.3g} ≤ 0: B_noise needs positive curvature along the gradient")
    return NoiseScales(float(np.trace(c)) / squared_norm, float(np.trace(h @ c)) / curvature)


def nqm_noise_scales(problem: NQM, second_moment: object) -> NoiseScales:
    """The noise scales of an NQM, from the second moments ``E[θ_i²]`` of the iterates.

    ``second_moment`` holds ``E[θ_i²]`` of one coordinate of each bin, shape ``(..., d)`` — e.g.
    ``2 · risk_curve_per_coordinate / (h · counts)`` for a whole curve — and the result has shape
    ``(...)``: ``B_simple = Σ n_i c_i / Σ n_i h_i² m_i`` and ``B_noise = Σ n_i h_i c_i / Σ n_i h_i³ m_i``,
    with ``n_i = problem.counts[i]`` (so that a binned problem has the noise scales of the problem
    it represents).

    Raises
    ------
    ValueError
        If ``second_moment`` has a negative entry or its last axis is not ``d``, or a
        denominator is 0.

    Examples
    --------
    >>> from nqm_lib import NQM
    >>> nqm_noise_scales(NQM([2.0, 1.0], [4.0, 1.0]), [0.25, 1.0])
    NoiseScales(simple=2.5, critical=3.0)

    """
    moments = np.asarray(second_moment, dtype=float)
    if moments.ndim == 0 or moments.shape[-1] != problem.d:
        raise ValueError(
            f"second_moment must have last axis of length d = {problem.d}, got shape {moments.shape}"
        )
    check_nonnegative_array("second_moment", moments.ravel())
    squared_norm = moments @ (problem.counts * problem.h**2)
    curvature = moments @ (problem.counts * problem.h**3)
    if np.any(squared_norm == 0):
        raise ValueError("second_moment is 0 in every coordinate: the noise scale is infinite at the optimum")
    simple = (problem.counts * problem.c).sum() / squared_norm
    critical = (problem.counts * problem.h * problem.c).sum() / curvature
    if moments.ndim == 1:
        return NoiseScales(float(simple), float(critical))
    return NoiseScales(simple, critical)
