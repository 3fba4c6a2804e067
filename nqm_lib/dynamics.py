"""Each coordinate of every optimiser in the course as a small linear system (chapters 2–5).

On the NQM, SGD with heavy-ball momentum ``β``, an EMA ``γ`` of the iterates and the
preconditioner ``P = H^p`` moves every coordinate independently. With ``h̃ = h^{1−p}`` (the
preconditioned curvature) and minibatch noise ``ε̃`` of variance ``σ̃² = h^{−2p} c / B``, one
step is (PyTorch's convention, ``torch.optim.SGD(momentum=β, dampening=0)``)::

    v'  = β v + h̃ θ + ε̃
    θ'  = θ − η v'
    θ̃' = γ θ̃ + (1 − γ) θ'

so the state ``x = (θ, v, θ̃)`` obeys ``x' = A x + b ε̃`` with a 3×3 matrix ``A``. Without
momentum the ``v`` row never feeds back, and without EMA ``θ̃ = θ``; the same system covers
every combination. The reported iterate is ``θ̃`` (``= θ`` when ``γ = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import NQM
from .validation import (
    InstabilityError,
    check_batch_size,
    check_fraction,
    check_positive,
    check_precond_power,
)

__all__ = ["Hyperparams", "LinearSystem", "linear_system", "max_stable_lr", "check_stable"]

STATE_SIZE = 3
THETA, VELOCITY, AVERAGE = 0, 1, 2


@dataclass(frozen=True)
class Hyperparams:
    """Validated optimiser settings.

    Fields: ``lr`` η, ``batch_size`` B, ``momentum`` β, ``ema_decay`` γ, ``precond_power`` p.
    Construction raises ``ValueError`` naming the parameter, its value and its valid range.
    """

    lr: float
    batch_size: int = 1
    momentum: float = 0.0
    ema_decay: float = 0.0
    precond_power: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", check_positive("lr", self.lr))
        object.__setattr__(self, "batch_size", check_batch_size(self.batch_size))
        object.__setattr__(self, "momentum", check_fraction("momentum", self.momentum))
        object.__setattr__(self, "ema_decay", check_fraction("ema_decay", self.ema_decay))
        object.__setattr__(self, "precond_power", check_precond_power(self.precond_power))

    @property
    def is_plain_sgd(self) -> bool:
        """True without momentum and without EMA (preconditioning allowed)."""
        return self.momentum == 0.0 and self.ema_decay == 0.0


@dataclass(frozen=True)
class LinearSystem:
    """Per-coordinate linear dynamics ``x' = A x + b ε̃`` of the state ``x = (θ, v, θ̃)``.

    Attributes: ``A`` (d, 3, 3) transition matrices, ``b`` (d, 3) noise inputs, ``start``
    (3,) the initial state per unit ``θ(0)`` (``v(0) = 0``, ``θ̃(0) = θ(0)``),
    ``noise_var`` (d,) the minibatch noise variance ``σ̃²`` of the preconditioned gradient,
    ``h_eff`` (d,) the preconditioned curvature ``h^{1−p}``.
    """

    A: np.ndarray
    b: np.ndarray
    start: np.ndarray
    noise_var: np.ndarray
    h_eff: np.ndarray


def linear_system(problem: NQM, hp: Hyperparams) -> LinearSystem:
    """Return the per-coordinate linear system of ``problem`` under the settings ``hp``."""
    p, eta, beta, gamma = hp.precond_power, hp.lr, hp.momentum, hp.ema_decay
    h_eff = problem.h ** (1.0 - p)
    noise_var = problem.h ** (-2.0 * p) * problem.c / hp.batch_size
    d = problem.d
    A = np.zeros((d, STATE_SIZE, STATE_SIZE))
    A[:, THETA, THETA] = 1.0 - eta * h_eff
    A[:, THETA, VELOCITY] = -eta * beta
    A[:, VELOCITY, THETA] = h_eff
    A[:, VELOCITY, VELOCITY] = beta
    A[:, AVERAGE, THETA] = (1.0 - gamma) * (1.0 - eta * h_eff)
    A[:, AVERAGE, VELOCITY] = -(1.0 - gamma) * eta * beta
    A[:, AVERAGE, AVERAGE] = gamma
    b = np.zeros((d, STATE_SIZE))
    b[:, THETA] = -eta
    b[:, VELOCITY] = 1.0
    b[:, AVERAGE] = -(1.0 - gamma) * eta
    start = np.array([1.0, 0.0, 1.0])
    return LinearSystem(A=A, b=b, start=start, noise_var=noise_var, h_eff=h_eff)


def max_stable_lr(problem: NQM, *, momentum: float = 0.0, precond_power: float = 0.0) -> float:
    """Supremum of the stable learning rates: ``η < 2(1 + β) / max_i h_i^{1−p}``.

    Plain SGD (β = 0) needs ``η h_1 < 2``; heavy-ball momentum relaxes this to
    ``η h_1 < 2(1 + β)``. An EMA never affects stability. The bound itself is unstable.
    """
    beta = check_fraction("momentum", momentum)
    p = check_precond_power(precond_power)
    return float(2.0 * (1.0 + beta) / np.max(problem.h ** (1.0 - p)))


def check_stable(problem: NQM, hp: Hyperparams) -> None:
    """Raise :class:`~nqm_lib.validation.InstabilityError` if the iteration diverges on some coordinate.

    The iteration converges in mean square iff ``0 < η h_i^{1−p} < 2(1 + β)`` for every
    coordinate (the roots of ``r² − (1 − η h̃ + β) r + β`` then lie inside the unit circle).
    """
    limit = max_stable_lr(problem, momentum=hp.momentum, precond_power=hp.precond_power)
    if hp.lr < limit:
        return
    h_eff = problem.h ** (1.0 - hp.precond_power)
    worst = int(np.argmax(h_eff))
    method = "SGD" if hp.momentum == 0 else f"momentum SGD (β = {hp.momentum:g})"
    bound = "2" if hp.momentum == 0 else f"2(1 + β) = {2 * (1 + hp.momentum):g}"
    curvature = "h" if hp.precond_power == 0 else f"h^(1−p) (p = {hp.precond_power:g})"
    raise InstabilityError(
        f"unstable: {method} diverges because lr·{curvature} = "
        f"{hp.lr * h_eff[worst]:.4g} ≥ {bound} in coordinate {worst + 1} "
        f"(h = {problem.h[worst]:.4g}); choose lr < {limit:.4g}"
    )
