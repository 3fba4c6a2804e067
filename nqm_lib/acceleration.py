"""Acceleration and where it holds: tuned rates on quadratics, and a function where heavy ball fails (ch. 3).

On a quadratic whose curvatures lie in ``[h_d, h_1]`` (condition number ``κ = h_1/h_d``; the
optimisation literature writes ``m`` and ``L``), each method of this module contracts the error by
a per-step factor, the largest modulus of its characteristic roots over the curvatures
(:func:`quadratic_rate`). Tuned, the factors are

* gradient descent, ``η = 2/(h_1 + h_d)``: ``(κ − 1)/(κ + 1)``;
* heavy ball, ``η = 4/(√h_1 + √h_d)²``, ``β = ((√κ − 1)/(√κ + 1))²`` (:func:`tuned_heavy_ball`,
  Polyak 1964): ``(√κ − 1)/(√κ + 1)``, which is also the lower bound for any first-order method on
  the quadratics of this class in high dimension (Nesterov, 2004; :func:`first_order_lower_bound`);
* Nesterov momentum tuned for quadratics, ``η = 4/(3h_1 + h_d)``,
  ``β = (√(3κ+1) − 2)/(√(3κ+1) + 2)`` (:func:`tuned_nesterov`; Lessard, Recht & Packard, 2016):
  ``1 − 2/√(3κ + 1)``.

Heavy ball's square-root speed-up is a property of quadratics. :func:`lessard_function` is the
counterexample of Lessard, Recht & Packard (2016): a one-dimensional function whose curvature is 25,
1 and 25 on three pieces, so it is 1-strongly convex and 25-smooth (``κ = 25``) without being a
quadratic. Heavy ball with the tuning above does not converge on it from many starting points: its
iterates settle on a cycle of three points (:func:`momentum_iterates` runs it). Nesterov's method
with ``η = 1/h_1``, ``β = (√κ − 1)/(√κ + 1)`` is guaranteed to converge on every such function, with
the rate ``1 − 1/√κ`` (Nesterov, 2004).

All iterations use PyTorch's conventions from rest (``v(0) = 0``): heavy ball ``v ← βv + g``,
``θ ← θ − ηv``; Nesterov ``v ← βv + g``, ``θ ← θ − η(g + βv)``; no noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .validation import check_fraction, check_positive, check_steps

__all__ = [
    "LESSARD_CURVATURES",
    "first_order_lower_bound",
    "lessard_function",
    "lessard_gradient",
    "momentum_iterates",
    "quadratic_rate",
    "tuned_heavy_ball",
    "tuned_nesterov",
]

#: Smallest and largest curvature ``(h_d, h_1)`` of :func:`lessard_function`.
LESSARD_CURVATURES = (1.0, 25.0)


def _check_curvatures(h_min: float, h_max: float) -> tuple[float, float]:
    h_min, h_max = check_positive("h_min", h_min), check_positive("h_max", h_max)
    if h_max < h_min:
        raise ValueError(f"h_max must be at least h_min = {h_min!r}, got h_max = {h_max!r}")
    return h_min, h_max


def lessard_function(theta: np.ndarray | float) -> np.ndarray:
    """Lessard, Recht & Packard's (2016) piecewise quadratic, minimised at ``θ* = 0``.

    ``25θ²/2`` for ``θ < 1``; ``θ²/2 + 24θ − 12`` for ``1 ≤ θ < 2``; ``25θ²/2 − 24θ + 36`` for
    ``θ ≥ 2``. Its derivative is continuous and increasing with slope 25, 1 and 25 on the pieces, so
    the function is 1-strongly convex and 25-smooth (``κ = 25``), but not a quadratic.
    """
    theta = np.asarray(theta, dtype=float)
    middle, right = 0.5 * theta**2 + 24.0 * theta - 12.0, 12.5 * theta**2 - 24.0 * theta + 36.0
    return np.where(theta < 1.0, 12.5 * theta**2, np.where(theta < 2.0, middle, right))


def lessard_gradient(theta: np.ndarray | float) -> np.ndarray:
    """Derivative of :func:`lessard_function`: ``25θ``, ``θ + 24`` and ``25θ − 24`` on its three pieces."""
    theta = np.asarray(theta, dtype=float)
    return np.where(theta < 1.0, 25.0 * theta, np.where(theta < 2.0, theta + 24.0, 25.0 * theta - 24.0))


def tuned_heavy_ball(h_min: float, h_max: float) -> tuple[float, float]:
    """Polyak's tuning ``(η, β) = (4/(√h_1 + √h_d)², ((√κ − 1)/(√κ + 1))²)`` for curvatures in ``[h_d, h_1]``.

    Both ends of the spectrum are then critically damped, and every quadratic of the class
    contracts by ``(√κ − 1)/(√κ + 1)`` per step (chapter 3's tuning exercise).
    """
    h_min, h_max = _check_curvatures(h_min, h_max)
    ratio = (np.sqrt(h_max / h_min) - 1.0) / (np.sqrt(h_max / h_min) + 1.0)
    return float(4.0 / (np.sqrt(h_max) + np.sqrt(h_min)) ** 2), float(ratio**2)


def tuned_nesterov(h_min: float, h_max: float) -> tuple[float, float]:
    """Nesterov momentum tuned for quadratics: ``η = 4/(3h_1 + h_d)``, ``β = (√(3κ+1) − 2)/(√(3κ+1) + 2)``.

    The fastest Nesterov setting on the quadratics with curvatures in ``[h_d, h_1]`` (Lessard,
    Recht & Packard, 2016), with the per-step factor ``1 − 2/√(3κ + 1)``.
    """
    h_min, h_max = _check_curvatures(h_min, h_max)
    root = np.sqrt(3.0 * h_max / h_min + 1.0)
    return float(4.0 / (3.0 * h_max + h_min)), float((root - 2.0) / (root + 2.0))


def first_order_lower_bound(kappa: float) -> float:
    """``(√κ − 1)/(√κ + 1)``: no first-order method contracts faster on every quadratic of condition number κ.

    Nesterov's (2004) lower bound for the class of strongly convex, smooth functions with condition
    number κ, attained on quadratics in high dimension; heavy ball tuned by :func:`tuned_heavy_ball`
    meets it.
    """
    kappa = check_positive("kappa", kappa)
    if kappa < 1.0:
        raise ValueError(f"kappa must be >= 1, got {kappa!r}")
    return float((np.sqrt(kappa) - 1.0) / (np.sqrt(kappa) + 1.0))


def _largest_root(x: np.ndarray, momentum: float, nesterov: bool) -> np.ndarray:
    """Largest root modulus of the characteristic polynomial of one coordinate with ``x = η h``."""
    if nesterov:  # z² − (1 + β)(1 − x) z + β(1 − x)
        trace, product = (1.0 + momentum) * (1.0 - x), momentum * (1.0 - x)
    else:  # heavy ball: z² − (1 − x + β) z + β
        trace, product = 1.0 - x + momentum, momentum + 0.0 * x
    root = np.sqrt(np.asarray(trace**2 - 4.0 * product, dtype=complex))
    return np.maximum(np.abs(trace + root), np.abs(trace - root)) / 2.0


def quadratic_rate(
    h_min: float, h_max: float, *, lr: float, momentum: float = 0.0, nesterov: bool = False
) -> float:
    """Worst per-step factor ``max |z|`` of heavy ball (or Nesterov) over the curvatures ``h ∈ [h_d, h_1]``.

    For both methods the largest root modulus first decreases, then increases with ``η h``, so its
    maximum over the interval is at ``h = h_d`` or ``h = h_1``. A value ≥ 1 means that some quadratic
    of the class does not converge. ``momentum = 0`` is gradient descent. Where an end is critically
    damped (the tunings of this module), the two roots meet and the result is accurate to about
    ``1e-8`` relative: the square root of a discriminant that is zero up to rounding.
    """
    h_min, h_max = _check_curvatures(h_min, h_max)
    lr = check_positive("lr", lr)
    momentum = check_fraction("momentum", momentum)
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov=True needs momentum in (0, 1), got 0")
    return float(_largest_root(lr * np.array([h_min, h_max]), momentum, bool(nesterov)).max())


def momentum_iterates(
    gradient: Callable[[np.ndarray], np.ndarray],
    theta0: object,
    steps: int,
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> np.ndarray:
    """Iterates ``θ_0, …, θ_steps`` of heavy ball (or Nesterov) on a function with derivative ``gradient``.

    Noise-free, from rest; ``momentum = 0`` is gradient descent. ``theta0`` is one starting point
    (result of shape ``(steps + 1,)``) or an array of them, each run separately (shape
    ``(steps + 1, *theta0.shape)``); ``gradient`` is applied elementwise.
    """
    steps = check_steps(steps)
    lr = check_positive("lr", lr)
    momentum = check_fraction("momentum", momentum)
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov=True needs momentum in (0, 1), got 0")
    theta = np.array(theta0, dtype=float)
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"theta0 must be finite, got {theta0!r}")
    velocity = np.zeros_like(theta)
    iterates = np.empty((steps + 1, *theta.shape))
    iterates[0] = theta
    for t in range(steps):
        g = gradient(theta)
        velocity = momentum * velocity + g
        theta = theta - lr * (g + momentum * velocity if nesterov else velocity)
        iterates[t + 1] = theta
    return iterates
