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
    "ema_bias_factor",
    "ema_variance_reduction_factor",
    "momentum_amplification",
    "momentum_bias_factor",
    "momentum_damping_boundary",
    "momentum_envelope_amplitude",
    "momentum_roots",
    "momentum_steady_state_risk",
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


# ---------------------------------------------------------------------------------------------
# Momentum (chapter 3): heavy ball in PyTorch's convention, v ← βv + g, θ ← θ − ηv.
# ---------------------------------------------------------------------------------------------


def momentum_roots(
    h: np.ndarray | float, *, lr: float, momentum: float, precond_power: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Roots ``z₁, z₂`` of ``z² − (1 − η h̃ + β) z + β = 0`` with ``|z₁| ≥ |z₂|`` (complex dtype).

    The mean obeys ``E[θ(t+1)] = (1 − η h̃ + β) E[θ(t)] − β E[θ(t−1)]``, so ``E[θ(t)]`` is a
    combination of ``z₁^t`` and ``z₂^t``; the roots are complex (under-damped, oscillating)
    exactly when ``β > (1 − √(η h̃))²`` (see :func:`momentum_damping_boundary`), and at that
    boundary they coincide at ``z = 1 − √(η h̃)`` (critically damped; negative if ``η h̃ > 1``).
    """
    h_eff = np.asarray(h, dtype=float) ** (1.0 - precond_power)
    trace = 1.0 - lr * h_eff + momentum
    root = np.sqrt(np.asarray(trace**2 - 4.0 * momentum, dtype=complex))
    first, second = (trace + root) / 2.0, (trace - root) / 2.0
    swap = np.abs(second) > np.abs(first)
    return np.where(swap, second, first), np.where(swap, first, second)


def momentum_damping_boundary(h: np.ndarray | float, *, lr: float, precond_power: float = 0.0) -> np.ndarray:
    """Critical momentum ``β* = (1 − √(η h̃))²`` where the two roots coincide.

    For ``0 ≤ β < 1``: ``β < β*`` gives two real roots (over-damped), ``β > β*`` a complex pair
    of modulus ``√β`` (under-damped); at ``β = β*`` the repeated root is ``z = 1 − √(η h̃)``, of
    modulus ``√β*``. The boundary is *not* ``(1 − η h)²``.
    """
    h_eff = np.asarray(h, dtype=float) ** (1.0 - precond_power)
    return (1.0 - np.sqrt(lr * h_eff)) ** 2


def momentum_bias_factor(
    t: np.ndarray | int, h: np.ndarray | float, *, lr: float, momentum: float, precond_power: float = 0.0
) -> np.ndarray:
    """``E[θ_i(t)] / θ_i(0)`` for momentum SGD from rest (``v(0) = 0``), Theorem 1's first factor.

    ``b_i(t) = ((z₁^{t+1} − z₂^{t+1}) − β (z₁^t − z₂^t)) / (z₁ − z₂)``, with the limit
    ``(t + 1) z^t − β t z^{t−1}`` at a repeated root ``z``. Its square times ``ℓ_i(θ(0))`` is
    the exact bias term of the risk.
    """
    z1, z2 = momentum_roots(h, lr=lr, momentum=momentum, precond_power=precond_power)
    t = np.asarray(t)[..., None] if np.ndim(h) else np.asarray(t)
    gap = z1 - z2
    repeated = np.abs(gap) < 1e-12
    safe_gap = np.where(repeated, 1.0, gap)
    distinct = ((z1 ** (t + 1) - z2 ** (t + 1)) - momentum * (z1**t - z2**t)) / safe_gap
    # repeated root z: (t+1) z^t − β t z^{t−1}
    limit = (t + 1) * z1**t - momentum * t * z1 ** np.maximum(t - 1, 0)
    return np.real(np.where(repeated, limit, distinct))


def momentum_envelope_amplitude(
    h: np.ndarray | float, *, lr: float, momentum: float, precond_power: float = 0.0
) -> np.ndarray:
    """Amplitude ``A`` of the envelope ``|b_i(t)| ≤ A β^{t/2}`` of an under-damped coordinate.

    With complex roots ``z = √β e^{±iφ}``, :func:`momentum_bias_factor` is
    ``b_i(t) = β^{t/2} (sin((t+1)φ) − √β sin(tφ)) / sin φ``, a sinusoid in ``t`` of amplitude
    ``A = |e^{iφ} − √β| / sin φ`` times ``β^{t/2}``. So the mean stays inside ``A β^{t/2}``
    and comes arbitrarily close to it; ``A`` exceeds 1 in general (1.14 at ``η h = 0.01``,
    ``β = 0.9``). Defined only where the roots are complex (``β > (1 − √(η h̃))²``); NaN elsewhere.
    """
    z1, _ = momentum_roots(h, lr=lr, momentum=momentum, precond_power=precond_power)
    angle = np.abs(np.angle(z1))
    complex_pair = np.abs(np.imag(z1)) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        amplitude = np.abs(np.exp(1j * angle) - np.sqrt(momentum)) / np.sin(angle)
    return np.where(complex_pair, amplitude, np.nan)


def momentum_steady_state_risk(
    h: np.ndarray | float,
    c: np.ndarray | float,
    *,
    lr: float,
    momentum: float,
    batch_size: int = 1,
    precond_power: float = 0.0,
) -> np.ndarray:
    """Theorem 1's second term: ``(1 + β) η c h^{−p} / (2B (2β + 2 − η h̃)(1 − β))``.

    It is the exact limit ``t → ∞`` of the risk of momentum SGD (the noise part of the risk
    rises monotonically to it, which is why Theorem 1 can state it as an upper bound).
    """
    h = np.asarray(h, dtype=float)
    h_eff = h ** (1.0 - precond_power)
    beta = momentum
    numerator = (1.0 + beta) * lr * np.asarray(c) * h ** (-precond_power)
    return numerator / (2.0 * batch_size * (2.0 * beta + 2.0 - lr * h_eff) * (1.0 - beta))


def momentum_amplification(h: np.ndarray | float, *, lr: float, momentum: float) -> np.ndarray:
    """Exact factor by which momentum multiplies SGD's noise floor at the same η.

    ``(1 + β)(2 − η h) / ((1 − β)(2 + 2β − η h))``; it tends to ``1 / (1 − β)`` as ``η h → 0``
    (not ``(1 + β)/(1 − β)``).
    """
    x = lr * np.asarray(h, dtype=float)
    beta = momentum
    return (1.0 + beta) * (2.0 - x) / ((1.0 - beta) * (2.0 + 2.0 * beta - x))


# ---------------------------------------------------------------------------------------------
# Exponential moving average of the iterates (chapter 4): θ̃ ← γ θ̃ + (1 − γ) θ.
# ---------------------------------------------------------------------------------------------


def ema_variance_reduction_factor(
    h: np.ndarray | float, *, lr: float, ema_decay: float, precond_power: float = 0.0
) -> np.ndarray:
    """Theorem 2's factor ``(1 − γ)(1 + r γ) / ((1 + γ)(1 − r γ))`` with ``r = 1 − η h̃``.

    The EMA's steady-state risk is SGD's floor times this factor (exactly). It is below 1 for
    every ``0 < γ < 1`` and ``|r| < 1``.
    """
    r = sgd_rate(h, lr=lr, precond_power=precond_power)
    gamma = ema_decay
    return (1.0 - gamma) * (1.0 + r * gamma) / ((1.0 + gamma) * (1.0 - r * gamma))


def ema_bias_factor(
    t: np.ndarray | int, h: np.ndarray | float, *, lr: float, ema_decay: float, precond_power: float = 0.0
) -> np.ndarray:
    """``E[θ̃_i(t)] / θ_i(0)`` for SGD with an EMA started at ``θ̃(0) = θ(0)`` (Theorem 2).

    ``((r^{t+1} − γ^{t+1}) − γ r (r^t − γ^t)) / (r − γ)`` with ``r = 1 − η h̃``; equal to
    ``γ^t + (1 − γ) r (r^t − γ^t)/(r − γ)``, with the limit ``γ^t (1 + (1 − γ) t)`` at ``r = γ``.
    """
    r = sgd_rate(h, lr=lr, precond_power=precond_power)
    t = np.asarray(t)[..., None] if np.ndim(h) else np.asarray(t)
    gamma = ema_decay
    gap = r - gamma
    repeated = np.abs(gap) < 1e-12
    safe_gap = np.where(repeated, 1.0, gap)
    distinct = gamma**t + (1.0 - gamma) * r * (r**t - gamma**t) / safe_gap
    limit = gamma**t * (1.0 + (1.0 - gamma) * t)
    return np.where(repeated, limit, distinct)
