"""The noisy quadratic model (NQM) as a problem object (chapter 1).

A problem is a diagonal quadratic ``L(θ) = ½ Σ_i h_i θ_i²`` with optimum ``θ* = 0``, a
per-example gradient-noise variance ``c_i`` in every coordinate, and a starting point ``θ(0)``.
Coordinates may carry a multiplicity (``counts``) so that a spectrum with thousands of
coordinates can be represented by a few hundred distinct curvatures without changing any
expected risk.
"""

from __future__ import annotations

import numpy as np

from .validation import check_nonnegative, check_nonnegative_array, check_positive, check_positive_array

__all__ = ["NQM"]


def _broadcast(name: str, values: np.ndarray, size: int) -> np.ndarray:
    if values.size == size:
        return values
    if values.size == 1:
        return np.full(size, values[0])
    raise ValueError(
        f"{name} must have one entry per coordinate ({size}) or a single entry, got {values.size} entries"
    )


class NQM:
    """A noisy quadratic model with diagonal curvature ``H`` and noise covariance ``C``.

    Parameters
    ----------
    h
        Curvatures ``h_i`` (Hessian eigenvalues), one per coordinate, all ``> 0``.
    c
        Per-example gradient-noise variances ``c_i >= 0`` (one entry, or one per coordinate).
        A minibatch of size ``B`` has noise variance ``c_i / B``.
    theta0
        Starting point ``θ(0)`` (one entry, or one per coordinate); the expected risk depends on
        it only through ``θ_i(0)²``, so a random start with ``E[θ_i(0)²] = m_i`` is represented
        by ``theta0 = sqrt(m)``.
    counts
        Multiplicity of each coordinate (default: 1 each); the risk of a coordinate is counted
        ``counts[i]`` times.
    sigma
        Standard deviations ``σ_i`` of the data coordinates when the problem comes from the
        2-D data model of chapter 1 (then ``c = h² σ²`` and simulations draw real minibatches).
        Use :meth:`from_data_model` rather than passing it directly.

    Raises
    ------
    ValueError
        If any curvature is ``<= 0``, any noise variance ``< 0``, any count ``<= 0``, or the
        shapes do not match; the message names the parameter and the offending value.

    """

    def __init__(
        self,
        h: object,
        c: object,
        theta0: object = 1.0,
        *,
        counts: object | None = None,
        sigma: object | None = None,
    ) -> None:
        h_array = check_positive_array("h", h)
        d = h_array.size
        c_array = _broadcast("c", check_nonnegative_array("c", c), d)
        try:
            theta0_array = np.array(theta0, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"theta0 must be an array of numbers, got {theta0!r}") from None
        if theta0_array.size == 0 or not np.all(np.isfinite(theta0_array)):
            raise ValueError(f"theta0 must contain finite numbers, got {theta0!r}")
        theta0_array = _broadcast("theta0", theta0_array, d)
        counts_array = (
            np.ones(d) if counts is None else _broadcast("counts", check_positive_array("counts", counts), d)
        )
        sigma_array = None
        if sigma is not None:
            sigma_array = _broadcast("sigma", check_nonnegative_array("sigma", sigma), d)
            if not np.allclose(c_array, h_array**2 * sigma_array**2, rtol=1e-12, atol=0.0):
                raise ValueError("c must equal h**2 * sigma**2 for a problem built from the data model")
        for array in (h_array, c_array, theta0_array, counts_array):
            array.setflags(write=False)
        if sigma_array is not None:
            sigma_array.setflags(write=False)
        self.h = h_array
        self.c = c_array
        self.theta0 = theta0_array
        self.counts = counts_array
        self.sigma = sigma_array

    @classmethod
    def from_data_model(cls, h: object, sigma: object, theta0: object = 1.0) -> NQM:
        """Build the data-model NQM of chapter 1.

        The per-example loss is ``ℓ(θ; x) = ½ Σ_i h_i (x_i − θ_i)²`` with data coordinates
        ``x_i`` of mean 0 and standard deviation ``σ_i``; its gradient noise has variance
        ``c_i = h_i² σ_i²``. Simulations of this problem sample minibatches of data points.
        """
        h_array = check_positive_array("h", h)
        sigma_array = _broadcast("sigma", check_nonnegative_array("sigma", sigma), h_array.size)
        return cls(h_array, h_array**2 * sigma_array**2, theta0, sigma=sigma_array)

    @classmethod
    def paper_spectrum(cls, d: int = 10_000, bins: int | None = 100, *, noise_scale: float = 1.0) -> NQM:
        """Build the NQM of Zhang et al. (2019): ``h_i = 1/i``, ``C = H``, ``E[θ_i(0)²] = 1``.

        With ``bins`` set, every ``h_i = 1/i`` is rounded *down* to the nearest of the
        ``bins`` values ``geomspace(1, 1/d, bins)``, and each distinct value keeps the number of
        coordinates that fall on it as its count (as the paper's notebook does); empty bins are
        dropped. The two steps differ: rounding changes the problem (for ``d = 10⁴`` and 100
        bins the initial risk drops by 3.9%), while merging equal values is exact (and leaves 84
        coordinates instead of 10⁴). With ``bins=None`` all ``d`` coordinates are kept exactly.
        ``noise_scale`` multiplies the noise: ``c = noise_scale · h``.
        """
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1:
            raise ValueError(f"d must be an integer >= 1, got {d!r}")
        noise_scale = check_positive("noise_scale", noise_scale)
        h_exact = 1.0 / np.arange(1, d + 1)
        if bins is None:
            return cls(h_exact, noise_scale * h_exact, 1.0)
        if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2 or None, got {bins!r}")
        grid = np.geomspace(1.0, 1.0 / d, int(bins))  # descending
        # index of the largest grid value <= h (with a tolerance for rounding in geomspace)
        ascending = grid[::-1]
        position = np.searchsorted(ascending, h_exact * (1 + 1e-12), side="right") - 1
        counts = np.bincount(position, minlength=ascending.size)
        occupied = counts > 0
        h_binned = ascending[occupied][::-1]
        return cls(h_binned, noise_scale * h_binned, 1.0, counts=counts[occupied][::-1])

    @property
    def d(self) -> int:
        """Number of distinct coordinates stored (bins count once)."""
        return int(self.h.size)

    @property
    def dimension(self) -> int:
        """Total number of coordinates the problem represents (the sum of the counts)."""
        return int(round(self.counts.sum()))

    @property
    def kappa(self) -> float:
        """Condition number ``κ = h_1 / h_d`` (largest over smallest curvature)."""
        return float(self.h.max() / self.h.min())

    @property
    def initial_risk(self) -> float:
        """Expected excess risk at the start, ``L(θ(0)) = ½ Σ_i counts_i h_i θ_i(0)²``."""
        return float(np.sum(self.counts * 0.5 * self.h * self.theta0**2))

    def with_weight_decay(self, weight_decay: float) -> NQM:
        """The NQM that SGD with weight decay ``λ`` actually optimises (chapters 5 and 7).

        Weight decay adds ``λ θ`` to every minibatch gradient, i.e. ``½ λ ‖θ‖²`` to the loss, so
        every curvature becomes ``h_i + λ`` while the gradient noise ``c_i`` is unchanged (the
        optimum stays at ``θ* = 0``). The result is a plain NQM (its noise is the original
        ``c``, no longer ``(h + λ)² σ²``), and its ``loss`` includes the penalty.
        """
        weight_decay = check_nonnegative("weight_decay", weight_decay)
        return NQM(self.h + weight_decay, self.c, self.theta0, counts=self.counts)

    def loss(self, theta: object) -> np.ndarray:
        """Excess population loss ``L(θ) = ½ Σ_i h_i θ_i²`` (last axis = coordinates)."""
        theta = np.asarray(theta, dtype=float)
        return 0.5 * np.sum(self.counts * self.h * theta**2, axis=-1)

    def __repr__(self) -> str:
        kind = ", data model" if self.sigma is not None else ""
        return (
            f"NQM(d={self.d}, dimension={self.dimension}, h∈[{self.h.min():.3g}, "
            f"{self.h.max():.3g}], κ={self.kappa:.3g}{kind})"
        )
