"""Learning-rate schedules and the exact risk of SGD under a schedule on the NQM (chapter 9).

A schedule is an array ``lrs`` of length ``T``: step ``t = 0, …, T − 1`` uses ``η_t = lrs[t]``.
The builders below return such arrays; :func:`schedule_risk_curve` turns one (or a stack
of them) into the exact expected risk, and :func:`~nqm_lib.simulation.simulate` (``lr=schedule``)
estimates the same quantity by Monte Carlo. With a time-varying ``η_t`` each coordinate still obeys its own
recursion (chapter 2 with ``η`` replaced by ``η_t``)::

    E[θ_i(t+1)²] = (1 − η_t h_i)² E[θ_i(t)²] + η_t² c_i / B,

so the risk ``E[L(θ_t)] = ½ Σ_i h_i E[θ_i(t)²]`` is exact for every schedule.
"""

from __future__ import annotations

import numpy as np

from .problem import NQM
from .validation import InstabilityError, check_batch_size, check_fraction, check_positive, check_steps

__all__ = [
    "cosine_schedule",
    "exponential_schedule",
    "power_schedule",
    "schedule_risk_curve",
    "step_schedule",
]


def power_schedule(steps: int, lr: float, *, tau: float, power: float = 1.0) -> np.ndarray:
    """Robbins–Monro power schedule ``η_t = η_0 / (1 + t/τ)^a``, t = 0..steps−1 (chapter 9).

    It satisfies ``Σ η_t = ∞`` iff ``a ≤ 1`` and ``Σ η_t² < ∞`` iff ``a > ½``.
    ``power = 1`` is the ``1/t`` schedule; ``power = 0`` a constant rate.
    """
    steps = check_steps(steps)
    lr, tau = check_positive("lr", lr), check_positive("tau", tau)
    if isinstance(power, bool) or not isinstance(power, int | float) or not 0 <= power < np.inf:
        raise ValueError(f"power must be a finite number >= 0, got {power!r}")
    return lr / (1.0 + np.arange(steps) / tau) ** power


def exponential_schedule(steps: int, lr: float, *, decay: float) -> np.ndarray:
    """``η_t = η_0 · decay^t`` (``lr_scheduler.ExponentialLR`` with ``gamma=decay``); chapter 9."""
    steps = check_steps(steps)
    lr = check_positive("lr", lr)
    decay = check_positive("decay", decay)
    if decay > 1:
        raise ValueError(f"decay must be in (0, 1], got {decay!r}")
    return lr * decay ** np.arange(steps)


def step_schedule(steps: int, lr: float, *, milestones: tuple[int, ...], factor: float = 0.1) -> np.ndarray:
    """Piecewise constant: ``η_t = η_0 · factor^k`` after the k-th milestone (``MultiStepLR``); chapter 9."""
    steps = check_steps(steps)
    lr = check_positive("lr", lr)
    factor = check_fraction("factor", factor)
    if factor == 0.0:  # a zero learning rate after the first milestone is not a schedule
        raise ValueError("factor must be in (0, 1), got 0.0")
    milestones = np.asarray(sorted(milestones), dtype=int)
    return lr * factor ** np.searchsorted(milestones, np.arange(steps), side="right")


def cosine_schedule(steps: int, lr: float, *, warmup: int = 0, final_lr: float = 0.0) -> np.ndarray:
    """Linear warm-up over ``warmup`` steps, then cosine decay from ``η_0`` to ``final_lr`` (chapter 9).

    Warm-up: ``η_t = η_0 (t + 1)/warmup`` for ``t < warmup``; then with ``s = t − warmup``
    and ``S = steps − warmup``: ``η_t = final_lr + ½(η_0 − final_lr)(1 + cos(π s/S))``
    (``CosineAnnealingLR`` with ``T_max = S`` when ``warmup = 0``).
    """
    steps = check_steps(steps)
    lr = check_positive("lr", lr)
    warmup = check_steps(warmup, "warmup")
    if warmup >= steps:
        raise ValueError(f"warmup must be smaller than steps ({steps}), got {warmup!r}")
    if not 0 <= final_lr < lr:
        raise ValueError(f"final_lr must be in [0, lr), got {final_lr!r}")
    t = np.arange(steps)
    ramp = lr * (t + 1) / max(warmup, 1)
    s = (t - warmup) / (steps - warmup)
    cosine = final_lr + 0.5 * (lr - final_lr) * (1.0 + np.cos(np.pi * s))
    return np.where(t < warmup, ramp, cosine)


def _check_schedule(problem: NQM, lrs: object) -> np.ndarray:
    lrs = np.asarray(lrs, dtype=float)
    if lrs.ndim not in (1, 2) or lrs.shape[-1] == 0:
        raise ValueError(f"lrs must be a 1-D schedule or a 2-D stack of schedules, got shape {lrs.shape}")
    if not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        raise ValueError("every learning rate of the schedule must be finite and > 0")
    peak = float(lrs.max() * problem.h.max())
    if peak >= 2.0:
        raise InstabilityError(
            f"unstable: the schedule reaches η_t·h_1 = {peak:.4g} ≥ 2; "
            f"keep every η_t < {2 / problem.h.max():.4g}"
        )
    return lrs


def schedule_risk_curve(problem: NQM, lrs: object, *, batch_size: int = 1) -> np.ndarray:
    """Exact ``E[L(θ_t)]`` of SGD with the schedule ``lrs`` on ``problem``, t = 0..T (chapter 9).

    ``lrs`` has shape ``(T,)`` (one schedule; result ``(T + 1,)``) or ``(S, T)`` (a stack of
    ``S`` schedules run together; result ``(S, T + 1)``). Raises ``ValueError`` for invalid
    input and :class:`~nqm_lib.validation.InstabilityError` if some ``η_t h_1 ≥ 2`` (a
    conservative check: every step must contract every coordinate's mean).
    """
    lrs = _check_schedule(problem, lrs)
    batch_size = check_batch_size(batch_size)
    stacked = np.atleast_2d(lrs)[:, :, None]  # (S, T, 1) against coordinates (d,)
    second_moment = np.broadcast_to(problem.theta0**2, (stacked.shape[0], problem.d)).copy()
    weights = 0.5 * problem.h * problem.counts
    risk = np.empty((stacked.shape[0], stacked.shape[1] + 1))
    risk[:, 0] = second_moment @ weights
    noise = problem.c / batch_size
    for t in range(stacked.shape[1]):
        eta = stacked[:, t]
        second_moment = (1.0 - eta * problem.h) ** 2 * second_moment + eta**2 * noise
        risk[:, t + 1] = second_moment @ weights
    return risk if lrs.ndim == 2 else risk[0]
