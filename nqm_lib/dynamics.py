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

Two further momentum conventions of ``torch.optim.SGD`` are linear systems of the same shape
(chapter 3), with ``g = h̃ θ + ε̃`` the (preconditioned) minibatch gradient:

* **Nesterov** (``nesterov=True``): ``v' = β v + g``, ``θ' = θ − η (g + β v')``;
* **dampening** ``δ`` (``dampening=δ``): ``v' = β v + (1 − δ) g``, ``θ' = θ − η v'``. With
  ``δ = β`` the velocity is an exponential moving average of the gradients, the form of Adam's
  first moment; the effective learning rate ``η (1 − δ)/(1 − β)`` is then ``η`` itself.
  PyTorch starts the velocity at the first gradient itself (``v(1) = g(0)``, undamped), so the
  first step of a damped run is a plain SGD step: :class:`LinearSystem` carries it separately.
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

__all__ = [
    "Hyperparams",
    "LinearSystem",
    "check_stable",
    "diverging_coordinates",
    "instability_condition",
    "linear_system",
    "max_stable_lr",
    "stability_limit",
]

STATE_SIZE = 3
THETA, VELOCITY, AVERAGE = 0, 1, 2


@dataclass(frozen=True)
class Hyperparams:
    """Validated optimiser settings.

    Fields: ``lr`` η, ``batch_size`` B, ``momentum`` β, ``ema_decay`` γ, ``precond_power`` p,
    and PyTorch's two further momentum options ``dampening`` δ (``v ← βv + (1 − δ) g``) and
    ``nesterov`` (step along ``g + βv`` instead of ``v``). Construction raises ``ValueError``
    naming the parameter, its value and its valid range; as in ``torch.optim.SGD``, Nesterov
    momentum needs ``momentum > 0`` and ``dampening = 0``.
    """

    lr: float
    batch_size: int = 1
    momentum: float = 0.0
    ema_decay: float = 0.0
    precond_power: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", check_positive("lr", self.lr))
        object.__setattr__(self, "batch_size", check_batch_size(self.batch_size))
        object.__setattr__(self, "momentum", check_fraction("momentum", self.momentum))
        object.__setattr__(self, "ema_decay", check_fraction("ema_decay", self.ema_decay))
        object.__setattr__(self, "precond_power", check_precond_power(self.precond_power))
        object.__setattr__(self, "dampening", check_fraction("dampening", self.dampening))
        if not isinstance(self.nesterov, bool | np.bool_):
            raise ValueError(f"nesterov must be True or False, got {self.nesterov!r}")
        object.__setattr__(self, "nesterov", bool(self.nesterov))
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(
                "nesterov=True needs momentum in (0, 1) and dampening = 0 (as torch.optim.SGD), "
                f"got momentum = {self.momentum!r}, dampening = {self.dampening!r}"
            )

    @property
    def is_plain_sgd(self) -> bool:
        """True without momentum and without EMA (preconditioning allowed)."""
        return self.momentum == 0.0 and self.ema_decay == 0.0

    @property
    def undamped_first_step(self) -> bool:
        """True if PyTorch's first step differs from the later ones (momentum with dampening)."""
        return self.momentum > 0.0 and self.dampening > 0.0


@dataclass(frozen=True)
class LinearSystem:
    """Per-coordinate linear dynamics ``x' = A x + b ε̃`` of the state ``x = (θ, v, θ̃)``.

    Attributes: ``A`` (d, 3, 3) transition matrices, ``b`` (d, 3) noise inputs, ``start``
    (3,) the initial state per unit ``θ(0)`` (``v(0) = 0``, ``θ̃(0) = θ(0)``),
    ``noise_var`` (d,) the minibatch noise variance ``σ̃²`` of the preconditioned gradient,
    ``h_eff`` (d,) the preconditioned curvature ``h^{1−p}``; ``first_A``, ``first_b`` the
    first step's matrices when it differs from the later ones (dampening: PyTorch's first step
    is undamped), else ``None``.
    """

    A: np.ndarray
    b: np.ndarray
    start: np.ndarray
    noise_var: np.ndarray
    h_eff: np.ndarray
    first_A: np.ndarray | None = None  # noqa: N815 (the matrix is A, as in the papers)
    first_b: np.ndarray | None = None


def _matrices(h_eff: np.ndarray, hp: Hyperparams, dampening: float) -> tuple[np.ndarray, np.ndarray]:
    """``A`` (d, 3, 3) and ``b`` (d, 3) of one step with the given dampening."""
    eta, beta, gamma = hp.lr, hp.momentum, hp.ema_decay
    kept = 1.0 - dampening  # share of the new gradient that enters the velocity
    # θ' = θ − η (a_g g + a_v v) with the gradient's and the old velocity's weights:
    # heavy ball (and dampening): θ − η v' = θ − η (kept g + β v);
    # Nesterov: θ − η (g + β v') = θ − η ((1 + β) g + β² v).
    weight_g, weight_v = (1.0 + beta, beta**2) if hp.nesterov else (kept, beta)
    d = h_eff.shape[0]
    A = np.zeros((d, STATE_SIZE, STATE_SIZE))
    A[:, THETA, THETA] = 1.0 - eta * weight_g * h_eff
    A[:, THETA, VELOCITY] = -eta * weight_v
    A[:, VELOCITY, THETA] = kept * h_eff
    A[:, VELOCITY, VELOCITY] = beta
    A[:, AVERAGE, THETA] = (1.0 - gamma) * (1.0 - eta * weight_g * h_eff)
    A[:, AVERAGE, VELOCITY] = -(1.0 - gamma) * eta * weight_v
    A[:, AVERAGE, AVERAGE] = gamma
    b = np.zeros((d, STATE_SIZE))
    b[:, THETA] = -eta * weight_g
    b[:, VELOCITY] = kept
    b[:, AVERAGE] = -(1.0 - gamma) * eta * weight_g
    return A, b


def linear_system(problem: NQM, hp: Hyperparams) -> LinearSystem:
    """Return the per-coordinate linear system of ``problem`` under the settings ``hp``.

    Covers heavy ball, Nesterov momentum and dampening exactly as ``torch.optim.SGD`` steps
    them (see the module docstring); with dampening, ``first_A`` and ``first_b`` hold PyTorch's
    undamped first step.
    """
    p = hp.precond_power
    h_eff = problem.h ** (1.0 - p)
    noise_var = problem.h ** (-2.0 * p) * problem.c / hp.batch_size
    # without momentum PyTorch keeps no velocity, so dampening has no effect
    A, b = _matrices(h_eff, hp, hp.dampening if hp.momentum > 0.0 else 0.0)
    first_A, first_b = _matrices(h_eff, hp, 0.0) if hp.undamped_first_step else (None, None)
    start = np.array([1.0, 0.0, 1.0])
    return LinearSystem(
        A=A, b=b, start=start, noise_var=noise_var, h_eff=h_eff, first_A=first_A, first_b=first_b
    )


def stability_limit(momentum: float = 0.0, *, dampening: float = 0.0, nesterov: bool = False) -> float:
    """Supremum of the stable values of ``η h̃`` for one coordinate (chapters 2–3).

    Plain SGD: 2. Heavy ball: ``2(1 + β)``. Dampening ``δ`` scales the gradient by ``1 − δ``, so
    ``2(1 + β)/(1 − δ)`` (``2(1 + β)/(1 − β)`` for ``δ = β``). Nesterov: ``2(1 + β)/(1 + 2β)``.
    At and beyond the limit a root of the coordinate's characteristic polynomial lies on or
    outside the unit circle.

    Examples
    --------
    >>> stability_limit(0.9), stability_limit(0.9, nesterov=True)
    (3.8, 1.3571428571428572)

    """
    hp = Hyperparams(1.0, momentum=momentum, dampening=dampening, nesterov=nesterov)
    beta = hp.momentum
    if hp.nesterov:
        return 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    if beta == 0.0:
        return 2.0
    return 2.0 * (1.0 + beta) / (1.0 - hp.dampening)


def max_stable_lr(
    problem: NQM,
    *,
    momentum: float = 0.0,
    precond_power: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
) -> float:
    """Supremum of the stable learning rates: ``η < 2(1 + β) / max_i h_i^{1−p}`` (heavy ball).

    Plain SGD (β = 0) needs ``η h_1 < 2``; heavy-ball momentum relaxes this to
    ``η h_1 < 2(1 + β)``; dampening and Nesterov momentum change the numerator to
    :func:`stability_limit`. An EMA never affects stability. The bound itself is unstable.
    """
    beta = check_fraction("momentum", momentum)
    p = check_precond_power(precond_power)
    limit = stability_limit(beta, dampening=dampening, nesterov=nesterov)
    return float(limit / np.max(problem.h ** (1.0 - p)))


def check_stable(problem: NQM, hp: Hyperparams) -> None:
    """Raise :class:`~nqm_lib.validation.InstabilityError` if the iteration diverges on some coordinate.

    The iteration converges in mean square iff ``0 < η h_i^{1−p}`` is below
    :func:`stability_limit` for every coordinate (``2(1 + β)`` for heavy ball: the roots of
    ``z² − (1 − η h̃ + β) z + β`` then lie inside the unit circle).
    """
    limit = max_stable_lr(
        problem,
        momentum=hp.momentum,
        precond_power=hp.precond_power,
        dampening=hp.dampening,
        nesterov=hp.nesterov,
    )
    if hp.lr < limit:
        return
    h_eff = problem.h ** (1.0 - hp.precond_power)
    worst = int(np.argmax(h_eff))
    if hp.momentum == 0:
        method, bound = "SGD", "2"
    elif hp.nesterov:
        method = f"Nesterov momentum (β = {hp.momentum:g})"
        bound = f"2(1 + β)/(1 + 2β) = {stability_limit(hp.momentum, nesterov=True):.4g}"
    elif hp.dampening:
        method = f"momentum SGD (β = {hp.momentum:g}, dampening {hp.dampening:g})"
        bound = f"2(1 + β)/(1 − dampening) = {stability_limit(hp.momentum, dampening=hp.dampening):.4g}"
    else:
        method = f"momentum SGD (β = {hp.momentum:g})"
        bound = f"2(1 + β) = {2 * (1 + hp.momentum):g}"
    curvature = "h" if hp.precond_power == 0 else f"h^(1−p) (p = {hp.precond_power:g})"
    raise InstabilityError(
        f"unstable: {method} diverges because lr·{curvature} = "
        f"{hp.lr * h_eff[worst]:.4g} ≥ {bound} in coordinate {worst + 1} "
        f"(h = {problem.h[worst]:.4g}); choose lr < {limit:.4g}"
    )


def diverging_coordinates(problem: NQM, hp: Hyperparams) -> np.ndarray:
    """Which coordinates diverge under ``hp``: a boolean array of shape ``(problem.d,)`` (chapters 2–5).

    Coordinate ``i`` diverges in mean square iff ``η h_i^{1−p}`` is at least
    :func:`stability_limit` (``2`` for SGD, ``2(1 + β)`` for heavy ball); the others converge
    whatever the rest do, because the coordinates of the NQM move independently.
    """
    limit = stability_limit(hp.momentum, dampening=hp.dampening, nesterov=hp.nesterov)
    return hp.lr * problem.h ** (1.0 - hp.precond_power) >= limit


def instability_condition(problem: NQM, hp: Hyperparams) -> str:
    """The broken stability condition in the course's symbols, e.g. ``"ηh₁ = 2.5 ≥ 2"`` (chapters 2–5).

    Names the stiffest coordinate ``i`` (largest ``h_i^{1−p}``) and compares ``η h_i^{1−p}``
    with :func:`stability_limit`: ``"ηh₁ = 5 ≥ 2(1 + β) = 3.6"`` for heavy-ball momentum,
    ``"ηh₁¹⁻ᵖ = 2.5 ≥ 2"`` with a preconditioner. Figures label a diverging curve with it.

    Raises
    ------
    ValueError
        If no coordinate diverges under ``hp``.

    """
    if not np.any(diverging_coordinates(problem, hp)):
        raise ValueError(f"lr = {hp.lr:g}: no coordinate diverges, so there is no broken condition to name")
    h_eff = problem.h ** (1.0 - hp.precond_power)
    worst = int(np.argmax(h_eff))
    index = str(worst + 1).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
    power = "" if hp.precond_power == 0 else "¹⁻ᵖ"
    limit = stability_limit(hp.momentum, dampening=hp.dampening, nesterov=hp.nesterov)
    if hp.momentum == 0:
        bound = "2"
    elif hp.nesterov:
        bound = f"2(1 + β)/(1 + 2β) = {limit:.3g}"
    elif hp.dampening:
        bound = f"2(1 + β)/(1 − δ) = {limit:.3g}"
    else:
        bound = f"2(1 + β) = {limit:.3g}"
    return f"ηh{index}{power} = {hp.lr * h_eff[worst]:.3g} ≥ {bound}"
