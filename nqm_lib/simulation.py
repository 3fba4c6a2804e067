"""Monte Carlo simulation of SGD and its variants on the NQM (chapters 1–5).

All trials run at once: the state is an array of shape ``(trials, d)`` and one Python step
of the loop advances every trial. Random numbers come from one seeded
:class:`numpy.random.Generator`, so a seed reproduces a run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dynamics import Hyperparams, check_stable
from .problem import NQM
from .validation import check_batch_size, check_positive, check_steps

__all__ = ["SimulationResult", "sample_minibatch_gradients", "simulate"]


@dataclass(frozen=True)
class SimulationResult:
    """Monte Carlo estimate of the expected risk over ``trials`` independent runs.

    Attributes
    ----------
    risk
        Mean over trials of ``L(θ̃_t)``, t = 0..steps, shape ``(steps + 1,)``.
    risk_per_coordinate
        Mean over trials of ``counts_i · ½ h_i θ̃_i(t)²``, shape ``(steps + 1, d)``.
    risk_stderr
        Standard error of ``risk`` (standard deviation over trials / √trials).
    trials
        Number of independent runs averaged.

    """

    risk: np.ndarray
    risk_per_coordinate: np.ndarray
    risk_stderr: np.ndarray
    trials: int


def _noisy_gradient(problem: NQM, theta: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Minibatch gradient at ``theta`` (shape (..., d)) for every row of ``theta``.

    For a data-model problem the minibatch is ``batch_size`` data points
    ``x ~ N(0, diag(σ²))`` and the gradient is ``h ⊙ (θ − mean(x))``; otherwise the gradient
    is ``h ⊙ θ + ε`` with Gaussian ``ε ~ N(0, diag(c) / B)``.
    """
    if problem.sigma is not None:
        data = rng.standard_normal((*theta.shape[:-1], batch_size, problem.d)) * problem.sigma
        return problem.h * (theta - data.mean(axis=-2))
    noise = rng.standard_normal(theta.shape) * np.sqrt(problem.c / batch_size)
    return problem.h * theta + noise


def sample_minibatch_gradients(
    problem: NQM, theta: object, *, batch_size: int = 1, samples: int = 1000, seed: int = 0
) -> np.ndarray:
    """Draw ``samples`` independent minibatch gradients at the point ``theta``.

    Returns an array of shape ``(samples, d)``. Their mean estimates ``∇L(θ) = H θ`` and
    their covariance estimates ``C / B``.
    """
    batch_size = check_batch_size(batch_size)
    samples = check_steps(samples, "samples")
    point = np.broadcast_to(np.asarray(theta, dtype=float), (samples, problem.d))
    rng = np.random.default_rng(seed)
    return _noisy_gradient(problem, point, batch_size, rng)


def _learning_rates(lr: float | np.ndarray, steps: int) -> np.ndarray:
    """The learning rate of every step: a constant, or a schedule of length ``steps``."""
    if np.ndim(lr) == 0:
        return np.full(steps, check_positive("lr", lr))
    schedule = np.array(lr, dtype=float)
    if schedule.shape != (steps,):
        raise ValueError(f"lr must be a number or a schedule of shape ({steps},), got shape {schedule.shape}")
    if not np.all(np.isfinite(schedule)) or np.any(schedule <= 0):
        bad = int(np.flatnonzero(~(np.isfinite(schedule) & (schedule > 0)))[0])
        raise ValueError(f"lr must be finite and > 0 at every step, got lr[{bad}] = {float(schedule[bad])!r}")
    return schedule


def simulate(
    problem: NQM,
    steps: int,
    *,
    lr: float | np.ndarray,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    trials: int = 1000,
    seed: int = 0,
) -> SimulationResult:
    """Run ``trials`` independent copies of the optimiser for ``steps`` steps.

    One step (PyTorch's heavy-ball convention; ``P = H^p``)::

        g  = P^{-1} · minibatch gradient at θ
        v  = β v + g
        θ  = θ − η v
        θ̃ = γ θ̃ + (1 − γ) θ

    The risk is recorded for the averaged iterate ``θ̃`` (equal to ``θ`` when ``γ = 0``),
    matching :func:`nqm_lib.risk_curve`. ``lr`` may also be a schedule: an array of shape
    ``(steps,)`` whose entry ``t`` is the learning rate of step ``t + 1`` (chapter 8); every
    entry must then be stable on its own. Raises ``ValueError`` for invalid settings and
    :class:`~nqm_lib.validation.InstabilityError` when the iteration would diverge.
    """
    steps = check_steps(steps)
    learning_rates = _learning_rates(lr, steps)
    if isinstance(trials, bool) or not isinstance(trials, int | np.integer) or trials < 2:
        raise ValueError(f"trials must be an integer >= 2, got {trials!r}")
    trials = int(trials)
    largest = float(learning_rates.max()) if steps else check_positive("lr", lr)
    hp = Hyperparams(largest, batch_size, momentum, ema_decay, precond_power)
    check_stable(problem, hp)
    rng = np.random.default_rng(seed)
    inverse_preconditioner = problem.h ** (-hp.precond_power)
    weights = 0.5 * problem.h * problem.counts

    theta = np.broadcast_to(problem.theta0, (trials, problem.d)).copy()
    velocity = np.zeros_like(theta)
    average = theta.copy()
    per_coordinate = np.empty((steps + 1, problem.d))
    risk = np.empty(steps + 1)
    risk_sq = np.empty(steps + 1)

    def record(t: int) -> None:
        losses = weights * average**2
        per_coordinate[t] = losses.mean(axis=0)
        total = losses.sum(axis=1)
        risk[t] = total.mean()
        risk_sq[t] = total.var(ddof=1)

    record(0)
    for t in range(1, steps + 1):
        gradient = inverse_preconditioner * _noisy_gradient(problem, theta, hp.batch_size, rng)
        velocity = hp.momentum * velocity + gradient
        theta = theta - learning_rates[t - 1] * velocity
        average = hp.ema_decay * average + (1.0 - hp.ema_decay) * theta
        record(t)
    return SimulationResult(
        risk=risk,
        risk_per_coordinate=per_coordinate,
        risk_stderr=np.sqrt(risk_sq / trials),
        trials=trials,
    )
