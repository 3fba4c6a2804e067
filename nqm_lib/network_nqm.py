"""The NQM of a network measured along training: Hessian, gradient noise and noise scales (chapter 10).

The NQM needs a curvature ``h_i``, a noise variance ``c_i`` and a starting distance
``θ_i(0)`` per coordinate. On a network all three change along training, so chapter 10 measures
them *where the steps are spent*, near the target, on real SGD runs:

- :func:`weights_at_risk_levels` runs plain SGD (``torch.optim.SGD``) and keeps each seed's
  weights at the first step its excess risk falls to each of several levels;
- :func:`measure_point` measures, at one such point, the exact Hessian ``H`` of the excess risk,
  the per-example gradient covariance ``C`` (exact over a finite training set, from fresh samples
  otherwise), the true gradient ``G``, the two noise scales of McCandlish et al. (2018), and the
  coordinates of ``θ(0) − θ_ref`` along the Hessian's eigenvectors;
- :func:`nqm_from_points` pools such points into one :class:`~nqm_lib.problem.NQM`;
- :func:`sample_noise_scales` estimates ``B_simple`` and ``B_noise`` from per-example gradients
  alone, without bias from the finite sample.

``import nqm_lib`` does not import this module (nor PyTorch); import it explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .networks import _check_count, _check_params, _check_seeds, hessian_eigen, per_example_gradients
from .noise_scale import NoiseScales, gradient_noise_scales
from .problem import NQM
from .validation import check_batch_size, check_positive, check_steps

__all__ = [
    "LevelWeights",
    "PointMeasurement",
    "gradient_moments",
    "measure_point",
    "nqm_from_points",
    "sample_noise_scales",
    "weights_at_risk_levels",
]


@dataclass(frozen=True)
class LevelWeights:
    """Weights of each seed at the first step its excess risk reached each level (chapter 10).

    Attributes
    ----------
    levels
        The risk levels, decreasing, shape ``(L,)``.
    steps
        ``steps[l, s]``: the first step at which seed ``s`` had risk ``≤ levels[l]`` (``inf`` if
        it did not within the run).
    weights
        ``weights[l, s]``: the weights at that step, shape ``(L, seeds, n_params)`` (NaN rows
        where the level was not reached).
    start
        The initial weights, shape ``(seeds, n_params)``.

    """

    levels: np.ndarray
    steps: np.ndarray
    weights: np.ndarray
    start: np.ndarray


def weights_at_risk_levels(
    problem: object,
    *,
    lr: float,
    batch_size: int,
    seeds: Sequence[int],
    levels: object,
    max_steps: int,
    data_seed: int = 0,
) -> LevelWeights:
    """Train plain SGD (``torch.optim.SGD``) and keep every seed's weights at each risk level.

    One replica per seed, initialised by ``problem.init(seeds)``; every step draws
    ``batch_size`` examples per seed with ``problem.sample``. The excess risk is evaluated at
    every step, and a seed's weights are stored the first time its risk is at most a level.
    Stops when every seed has reached every level, or after ``max_steps`` steps.
    """
    lr = check_positive("lr", lr)
    batch_size = check_batch_size(batch_size)
    seeds = _check_seeds(seeds)
    max_steps = _check_count("max_steps", max_steps)
    data_seed = check_steps(data_seed, "data_seed")
    grid = np.asarray(levels, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or np.any(grid <= 0) or np.any(np.diff(grid) >= 0):
        raise ValueError(f"levels must be a non-empty decreasing sequence of numbers > 0, got {levels!r}")
    start = problem.init(seeds)
    params = start.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([params], lr=lr, foreach=False)
    generator = torch.Generator().manual_seed(data_seed)
    steps = np.full((grid.size, len(seeds)), np.inf)
    weights = np.full((grid.size, len(seeds), problem.n_params), np.nan)
    for t in range(max_steps + 1):
        with torch.no_grad():
            risk = problem.excess_risk(params.detach()).numpy()
        newly = (risk[None, :] <= grid[:, None]) & ~np.isfinite(steps)
        if newly.any():
            level, seed = np.nonzero(newly)
            steps[level, seed] = t
            weights[level, seed] = params.detach().numpy()[seed]
        if np.isfinite(steps).all() or t == max_steps:
            break
        x, y = problem.sample((len(seeds), batch_size), generator)
        optimizer.zero_grad(set_to_none=True)
        problem.loss(params, x, y).sum().backward()
        optimizer.step()
    return LevelWeights(levels=grid, steps=steps, weights=weights, start=start.numpy())


def gradient_moments(
    problem: object, theta: object, *, samples: int = 20_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and covariance of one example's gradient at ``theta``, and the number of examples used.

    For a problem with a finite training set (a method ``examples()`` returning all of it, as
    the digits problems of :mod:`nqm_lib.digits` have) the moments are exact: the mean and the
    population covariance (``ddof = 0``) over every example, which is the noise of minibatches
    drawn *with replacement*. Otherwise ``samples`` fresh examples are drawn
    (:func:`~nqm_lib.networks.per_example_gradients`) and the covariance is the unbiased one.
    """
    if hasattr(problem, "examples"):
        x, y = problem.examples()
        point = torch.as_tensor(theta, dtype=torch.float64).reshape(1, -1)
        replicas = point.expand(x.shape[0], -1).clone().requires_grad_(True)
        problem.loss(replicas, x, y).sum().backward()
        gradients = replicas.grad.numpy()
        return gradients.mean(axis=0), np.cov(gradients.T, ddof=0), gradients.shape[0]
    gradients = per_example_gradients(problem, theta, samples=samples, seed=seed)
    return gradients.mean(axis=0), np.cov(gradients.T, ddof=1), gradients.shape[0]


def sample_noise_scales(gradients: object, hessian: object | None = None) -> NoiseScales:
    """``B_simple`` and ``B_noise`` estimated from ``n`` independent per-example gradients (rows).

    The plug-in ``|Ḡ|²`` of the sample mean ``Ḡ`` overestimates ``|G|²`` by ``tr C / n``, which
    matters where the gradient is small (near the target). The estimates here are unbiased in
    numerator and denominator: ``tr Ĉ`` (unbiased covariance), ``|Ḡ|² − tr Ĉ / n``, and with a
    Hessian ``tr(H Ĉ)`` and ``ḠᵀHḠ − tr(H Ĉ) / n``. Without ``hessian`` the critical scale is
    returned as ``nan``. Raises ``ValueError`` if a corrected denominator is not positive (the
    sample is too small to resolve the gradient).
    """
    g = np.asarray(gradients, dtype=float)
    if g.ndim != 2 or g.shape[0] < 2:
        raise ValueError(f"gradients must have shape (n >= 2, d), got {g.shape}")
    n = g.shape[0]
    mean = g.mean(axis=0)
    covariance = np.cov(g.T, ddof=1).reshape(g.shape[1], g.shape[1])
    squared = float(mean @ mean) - float(np.trace(covariance)) / n
    if squared <= 0:
        raise ValueError(f"|G|² estimate {squared:.3g} <= 0: too few samples to resolve the gradient")
    simple = float(np.trace(covariance)) / squared
    if hessian is None:
        return NoiseScales(simple, math.nan)
    h = np.asarray(hessian, dtype=float)
    if h.shape != covariance.shape:
        raise ValueError(f"hessian must have shape {covariance.shape}, got {h.shape}")
    hc = float(np.sum(h * covariance))
    curvature = float(mean @ h @ mean) - hc / n
    if curvature <= 0:
        raise ValueError(f"GᵀHG estimate {curvature:.3g} <= 0: too few samples to resolve it")
    return NoiseScales(simple, hc / curvature)


@dataclass(frozen=True)
class PointMeasurement:
    """The NQM of a network at one point of training (:func:`measure_point`).

    Attributes
    ----------
    risk
        The excess risk at the point.
    eigenvalues
        Every eigenvalue of the Hessian of the excess risk, decreasing.
    noise
        ``c_i = v_iᵀ C v_i``: the per-example gradient variance along each eigenvector.
    start
        ``v_iᵀ(θ(0) − θ_ref)``: the start's distance from the reference point along each eigenvector.
    trace_noise
        ``tr C``, over all directions.
    noise_scales
        ``B_simple = tr C / |G|²`` and ``B_noise = tr(HC) / GᵀHG`` with the full ``H``, ``C`` and
        the true gradient ``G`` (:func:`~nqm_lib.noise_scale.gradient_noise_scales`), or ``None``
        if they were not asked for.

    """

    risk: float
    eigenvalues: np.ndarray
    noise: np.ndarray
    start: np.ndarray
    trace_noise: float
    noise_scales: NoiseScales | None

    @property
    def trace_curvature(self) -> float:
        """``tr H⁺``: the sum of the positive Hessian eigenvalues."""
        return float(self.eigenvalues[self.eigenvalues > 0].sum())


def measure_point(
    problem: object,
    theta: object,
    *,
    start: object,
    reference: object,
    samples: int = 20_000,
    seed: int = 0,
    noise_scales: bool = True,
) -> PointMeasurement:
    """Measure the NQM of ``problem`` at weights ``theta`` (chapter 10).

    The Hessian of ``problem.excess_risk`` at ``theta`` is exact (:func:`~nqm_lib.networks.hessian_eigen`);
    the gradient covariance ``C`` and the true gradient ``G`` come from :func:`gradient_moments`
    (exact for a finite training set; ``samples`` fresh examples otherwise, with the gradient's
    squared norms corrected for the sampling noise as in :func:`sample_noise_scales`). ``start``
    and ``reference`` are the initial weights and the point that stands for the optimum; their
    difference is projected on the eigenvectors. With ``noise_scales=False`` the noise scales are
    not estimated (``None``): near a minimum the gradient can be too small to resolve.
    """
    point = torch.as_tensor(theta, dtype=torch.float64)
    _check_params(problem, point.reshape(1, -1))
    values, vectors = hessian_eigen(lambda p: problem.excess_risk(p.unsqueeze(0))[0], point)
    hessian = (vectors * values) @ vectors.T
    scales = None
    if hasattr(problem, "examples"):
        mean, covariance, _ = gradient_moments(problem, point)
        if noise_scales:
            scales = gradient_noise_scales(hessian, covariance, mean)
    else:
        gradients = per_example_gradients(problem, point, samples=samples, seed=seed)
        covariance = np.cov(gradients.T, ddof=1)
        if noise_scales:
            scales = sample_noise_scales(gradients, hessian)
    noise = np.sum(vectors * (covariance @ vectors), axis=0)
    offset = np.asarray(start, dtype=float) - np.asarray(reference, dtype=float)
    return PointMeasurement(
        risk=float(problem.excess_risk(point.reshape(1, -1))[0]),
        eigenvalues=values,
        noise=noise,
        start=vectors.T @ offset,
        trace_noise=float(np.trace(covariance)),
        noise_scales=scales,
    )


def nqm_from_points(
    points: Sequence[PointMeasurement], *, threshold: float = 1e-4, initial_risk: float | None = None
) -> NQM:
    """One NQM from several measured points: their kept directions pooled with counts ``1/len(points)``.

    At every point the eigen-directions with ``h_i`` above ``threshold`` times its largest
    eigenvalue are kept (flat and negative directions, which a quadratic with ``h > 0`` cannot
    hold, are dropped), with their ``c_i`` and starting coordinates. The pooled NQM's expected
    risk is the average of the points' NQM risks. With ``initial_risk``, the start is rescaled by
    one common factor so that the NQM's initial risk equals it (the measured initial risk).
    """
    if not points:
        raise ValueError("points must not be empty")
    threshold = check_positive("threshold", threshold)
    kept = [p.eigenvalues > threshold * p.eigenvalues[0] for p in points]
    h = np.concatenate([p.eigenvalues[k] for p, k in zip(points, kept, strict=True)])
    c = np.concatenate([p.noise[k] for p, k in zip(points, kept, strict=True)])
    start = np.concatenate([p.start[k] for p, k in zip(points, kept, strict=True)])
    counts = np.full(h.size, 1.0 / len(points))
    problem = NQM(h, np.maximum(c, 0.0), start, counts=counts)
    if initial_risk is None:
        return problem
    initial_risk = check_positive("initial_risk", initial_risk)
    return NQM(h, problem.c, start * math.sqrt(initial_risk / problem.initial_risk), counts=counts)
