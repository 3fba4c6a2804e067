"""Monte Carlo simulation of SGD and its variants on the NQM (chapters 1–5).

All trials run at once: the state is an array of shape ``(trials, d)`` and one Python step
of the loop advances every trial. Random numbers come from one seeded
:class:`numpy.random.Generator`, so a seed reproduces a run exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .dynamics import Hyperparams, check_stable, diverging_coordinates
from .problem import NQM
from .validation import check_batch_size, check_positive, check_steps

__all__ = ["SimulationResult", "sample_minibatch_gradients", "sample_path", "simulate", "trajectory_risk"]

#: Most numbers :func:`simulate` keeps between summaries (256 kB, so they stay in the CPU cache).
_BLOCK_ELEMENTS = 1 << 15


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


def _iterates(
    problem: NQM,
    hp: Hyperparams,
    learning_rates: np.ndarray,
    trials: int,
    rng: np.random.Generator,
    stopped: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Yield the reported iterate ``θ̃_t`` (shape ``(trials, d)``) for t = 0..len(learning_rates).

    One step is ``torch.optim.SGD``'s: the velocity starts as the first gradient itself, then
    ``v ← βv + (1 − δ) g``; the step is along ``v`` (or ``g + βv`` with Nesterov momentum).
    Coordinates the caller marks in ``stopped`` (a boolean array it may change between steps)
    are set to 0 before each further step, so that a diverging coordinate stops growing; the
    random numbers drawn do not change.
    """
    inverse_preconditioner = problem.h ** (-hp.precond_power)
    kept = 1.0 - hp.dampening
    theta = np.broadcast_to(problem.theta0, (trials, problem.d)).copy()
    velocity = np.zeros_like(theta)
    average = theta
    yield average
    for t, lr in enumerate(learning_rates):
        if stopped is not None and stopped.any():
            theta, velocity, average = theta.copy(), velocity.copy(), average.copy()
            for state in (theta, velocity, average):
                state[:, stopped] = 0.0
        gradient = _noisy_gradient(problem, theta, hp.batch_size, rng)
        if hp.precond_power:
            gradient *= inverse_preconditioner
        if not hp.momentum:
            velocity = gradient
        elif hp.dampening and t > 0:
            velocity = hp.momentum * velocity + kept * gradient
        else:
            velocity = hp.momentum * velocity + gradient
        step = gradient + hp.momentum * velocity if hp.nesterov else velocity
        theta = theta - lr * step
        average = hp.ema_decay * average + (1.0 - hp.ema_decay) * theta if hp.ema_decay else theta
        yield average


def _settings(
    problem: NQM, steps: int, lr: float | np.ndarray, ceiling: float | None, **kwargs: object
) -> tuple[int, np.ndarray, Hyperparams]:
    """Validate the arguments shared by :func:`simulate` and :func:`sample_path`.

    Without a ``ceiling``, an unstable setting raises
    :class:`~nqm_lib.validation.InstabilityError`; with one, it is allowed.
    """
    steps = check_steps(steps)
    learning_rates = _learning_rates(lr, steps)
    largest = float(learning_rates.max()) if steps else check_positive("lr", lr)
    hp = Hyperparams(largest, **kwargs)
    if ceiling is None:
        check_stable(problem, hp)
    else:
        check_positive("ceiling", ceiling)
    return steps, learning_rates, hp


def simulate(
    problem: NQM,
    steps: int,
    *,
    lr: float | np.ndarray,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    trials: int = 1000,
    seed: int = 0,
    ceiling: float | None = None,
) -> SimulationResult:
    """Run ``trials`` independent copies of the optimiser for ``steps`` steps.

    One step (PyTorch's heavy-ball convention; ``P = H^p``)::

        g  = P^{-1} · minibatch gradient at θ
        v  = β v + g
        θ  = θ − η v
        θ̃ = γ θ̃ + (1 − γ) θ

    With ``dampening`` δ the velocity update is ``v = β v + (1 − δ) g`` after the first step
    (PyTorch starts with ``v = g``); with ``nesterov=True`` the step is ``θ = θ − η (g + β v)``.
    The risk is recorded for the averaged iterate ``θ̃`` (equal to ``θ`` when ``γ = 0``),
    matching :func:`~nqm_lib.theory.risk_curve`. ``lr`` may also be a schedule: an array of shape
    ``(steps,)`` whose entry ``t`` is the learning rate of step ``t + 1`` (chapter 9); every
    entry must then be stable on its own. Raises ``ValueError`` for invalid settings and
    :class:`~nqm_lib.validation.InstabilityError` when the iteration would diverge.

    ``ceiling`` opts in to unstable settings (figures that draw divergence), as in
    :func:`~nqm_lib.theory.risk_curve_per_coordinate`: a diverging coordinate is simulated until
    its mean risk first exceeds ``ceiling`` and reported as ``ceiling`` from that step on (a
    constant: it adds nothing to ``risk_stderr``); the other coordinates and the random numbers
    are those of the same run without a ceiling.
    """
    if isinstance(trials, bool) or not isinstance(trials, int | np.integer) or trials < 2:
        raise ValueError(f"trials must be an integer >= 2, got {trials!r}")
    trials = int(trials)
    steps, learning_rates, hp = _settings(
        problem,
        steps,
        lr,
        ceiling,
        batch_size=batch_size,
        momentum=momentum,
        ema_decay=ema_decay,
        precond_power=precond_power,
        dampening=dampening,
        nesterov=nesterov,
    )
    rng = np.random.default_rng(seed)
    weights = 0.5 * problem.h * problem.counts
    watched = np.zeros(problem.d, dtype=bool) if ceiling is None else diverging_coordinates(problem, hp)
    stopped = np.zeros(problem.d, dtype=bool)  # diverging coordinates past the ceiling
    held_from = np.full(problem.d, steps + 1)  # the step from which each one is held
    iterates = _iterates(problem, hp, learning_rates, trials, rng, stopped if watched.any() else None)
    per_coordinate = np.empty((steps + 1, problem.d))
    risk = np.empty(steps + 1)
    risk_stderr = np.empty(steps + 1)
    # The averaged iterates of a block of steps are kept and summarised together: one
    # vectorised reduction per block costs far less than small ones after every step.
    block = np.empty((min(steps + 1, max(1, _BLOCK_ELEMENTS // (trials * problem.d))), trials, problem.d))
    for start in range(0, steps + 1, block.shape[0]):
        stop = min(start + block.shape[0], steps + 1)
        for t in range(start, stop):
            block[t - start] = next(iterates)
            if watched.any():  # stop a diverging coordinate before it can overflow
                mean = weights[watched] * np.mean(block[t - start][:, watched] ** 2, axis=0)
                passed = np.zeros_like(stopped)
                passed[watched] = (mean > ceiling) & ~stopped[watched]
                held_from[passed] = t
                stopped |= passed
                block[t - start][:, stopped] = 0.0  # held: a constant, added below
        per_coordinate[start:stop], risk[start:stop], risk_stderr[start:stop] = _risk_moments(
            weights, block[: stop - start]
        )
    for i in np.flatnonzero(stopped):
        per_coordinate[held_from[i] :, i] = ceiling
        risk[held_from[i] :] += ceiling
    return SimulationResult(
        risk=risk, risk_per_coordinate=per_coordinate, risk_stderr=risk_stderr, trials=trials
    )


def sample_path(
    problem: NQM,
    steps: int,
    *,
    lr: float | np.ndarray,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    seed: int = 0,
    ceiling: float | None = None,
) -> np.ndarray:
    """The iterates ``θ̃_0, …, θ̃_steps`` of one seeded run, shape ``(steps + 1, d)`` (chapters 2–3).

    The same optimiser as :func:`simulate` (same arguments, same validation); the path of a
    problem with ``c = 0`` is that of noise-free gradient descent (or heavy ball). Chapters 2
    and 3 draw such paths over the loss contours of the ``(θ₁, θ₂)`` plane. ``ceiling`` opts
    in to unstable settings: the path of a diverging setting ends at its first iterate whose
    loss ``L(θ̃)`` exceeds ``ceiling`` (it has fewer rows), before it can overflow; a stable
    setting's path is unaffected.

    Examples
    --------
    >>> from nqm_lib import NQM, sample_path
    >>> noise_free = NQM([50.0, 1.0], [0.0, 0.0], theta0=[1.0, 1.0])
    >>> sample_path(noise_free, 2, lr=0.03).round(4).tolist()  # θ ← (1 − ηh) θ
    [[1.0, 1.0], [-0.5, 0.97], [0.25, 0.9409]]

    """
    steps, learning_rates, hp = _settings(
        problem,
        steps,
        lr,
        ceiling,
        batch_size=batch_size,
        momentum=momentum,
        ema_decay=ema_decay,
        precond_power=precond_power,
        dampening=dampening,
        nesterov=nesterov,
    )
    stops = ceiling is not None and bool(np.any(diverging_coordinates(problem, hp)))
    path = []
    for theta in _iterates(problem, hp, learning_rates, 1, np.random.default_rng(seed)):
        path.append(theta[0])
        if stops and problem.loss(theta[0]) > ceiling:
            break
    return np.array(path)


def trajectory_risk(problem: NQM, trajectory: object) -> SimulationResult:
    """Monte Carlo risk of iterates ``trajectory[t, trial, i]``, shape ``(steps + 1, trials, d)``.

    Returns what :func:`simulate` returns for its own runs: the mean over trials of
    ``L(θ_t)`` and of each coordinate's ``counts_i · ½ h_i θ_i(t)²``, and the standard error
    of the mean (needs at least two trials). Chapter 7 applies it to PyTorch's iterates.
    """
    if not isinstance(problem, NQM):
        raise TypeError(f"problem must be an nqm_lib.NQM, got {type(problem).__name__}")
    trajectory = np.asarray(trajectory, dtype=float)
    if trajectory.ndim != 3 or trajectory.shape[2] != problem.d or trajectory.shape[1] < 2:
        raise ValueError(
            f"trajectory must have shape (steps + 1, trials >= 2, d = {problem.d}), got {trajectory.shape}"
        )
    per_coordinate, risk, risk_stderr = _risk_moments(0.5 * problem.h * problem.counts, trajectory)
    return SimulationResult(
        risk=risk, risk_per_coordinate=per_coordinate, risk_stderr=risk_stderr, trials=trajectory.shape[1]
    )


def _risk_moments(weights: np.ndarray, trajectory: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean loss per coordinate, mean total loss and its standard error, over axis 1 (the trials)."""
    losses = weights * trajectory**2
    total = losses.sum(axis=2)
    trials = trajectory.shape[1]
    return losses.mean(axis=1), total.mean(axis=1), total.std(axis=1, ddof=1) / np.sqrt(trials)
