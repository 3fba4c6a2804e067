"""Closed-form expressions that the chapters state, as functions (chapter 2 onward).

Each function evaluates one displayed formula of the book, per coordinate and with NumPy
broadcasting, so that prose, figures and tests use the same expression. The general engine
in :mod:`nqm_lib.theory` does not rely on these formulas; the tests check that the two agree.

Notation: ``h`` curvature, ``c`` per-example noise variance, ``lr`` η, ``batch_size`` B,
``precond_power`` p (``h̃ = h^{1−p}`` is the preconditioned curvature).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "sgd_rate",
    "sgd_risk",
    "sgd_steady_state_risk",
    "sgd_steady_state_variance",
]


def sgd_rate(h: np.ndarray | float, *, lr: float, precond_power: float = 0.0) -> np.ndarray:
    """Contraction factor ``r_i = 1 − η h_i^{1−p}`` of the mean: ``E[θ_i(t)] = r_i^t θ_i(0)``."""
    return 1.0 - lr * np.asarray(h, dtype=float) ** (1.0 - precond_power)


def sgd_steady_state_variance(
    h: np.ndarray | float,
    c: np.ndarray | float,
    *,
    lr: float,
    batch_size: int = 1,
    precond_power: float = 0.0,
) -> np.ndarray:
    """Limit of ``Var[θ_i(t)]``: ``η² σ̃² / (1 − r²) = η c h^{−2p} / (B h̃ (2 − η h̃))``.

    This is the spread of the iterate itself, in parameter units; the steady-state *risk*
    multiplies it by ``h_i / 2`` (see :func:`sgd_steady_state_risk`).
    """
    h = np.asarray(h, dtype=float)
    h_eff = h ** (1.0 - precond_power)
    return lr * np.asarray(c) * h ** (-2.0 * precond_power) / (batch_size * h_eff * (2.0 - lr * h_eff))


def sgd_steady_state_risk(
    h: np.ndarray | float,
    c: np.ndarray | float,
    *,
    lr: float,
    batch_size: int = 1,
    precond_power: float = 0.0,
) -> np.ndarray:
    """Limit of ``E[ℓ_i(θ_i(t))]``: ``η c h^{−p} / (2B (2 − η h^{1−p}))``.

    For plain SGD (``p = 0``) this is the noise floor ``η c_i / (2B (2 − η h_i))``.
    """
    h = np.asarray(h, dtype=float)
    h_eff = h ** (1.0 - precond_power)
    return lr * np.asarray(c) * h ** (-precond_power) / (2.0 * batch_size * (2.0 - lr * h_eff))


def sgd_risk(
    h: np.ndarray | float,
    c: np.ndarray | float,
    theta0: np.ndarray | float,
    t: np.ndarray | int,
    *,
    lr: float,
    batch_size: int = 1,
    precond_power: float = 0.0,
) -> np.ndarray:
    """Exact expected risk of SGD per coordinate at step(s) ``t``.

    ``E[ℓ_i(t)] = r_i^{2t} ℓ_i(0) + (1 − r_i^{2t}) · steady-state risk``, with
    ``ℓ_i(0) = ½ h_i θ_i(0)²`` and ``r_i = 1 − η h_i^{1−p}``. With an array ``t`` of shape
    (T,) and ``d`` coordinates the result has shape (T, d).
    """
    h = np.atleast_1d(np.asarray(h, dtype=float))
    t = np.asarray(t)
    decay = sgd_rate(h, lr=lr, precond_power=precond_power) ** (2 * t[..., None])
    initial = 0.5 * h * np.asarray(theta0, dtype=float) ** 2
    floor = sgd_steady_state_risk(h, c, lr=lr, batch_size=batch_size, precond_power=precond_power)
    return decay * initial + (1.0 - decay) * floor
