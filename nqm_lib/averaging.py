"""Exact expected risk of averaged SGD iterates: uniform, tail and time-varying EMA (chapter 4).

An average of the iterates that is updated once per step,

    θ̄_t = γ_t θ̄_{t−1} + (1 − γ_t) θ_t,      θ̄_0 = θ_0,

covers every averaging scheme of chapter 4 through its *decay sequence* ``γ_1, γ_2, …``:

* constant ``γ_t = γ``: the exponential moving average (EMA) of :func:`~nqm_lib.theory.risk_curve`;
* ``γ_t = t / (t + 1)``: the uniform (Polyak–Ruppert) average ``(θ_0 + … + θ_t) / (t + 1)``;
* ``γ_t = 0`` for ``t ≤ s`` and ``γ_t = (t − s) / (t − s + 1)`` after: the *tail* average
  ``(θ_s + … + θ_t) / (t − s + 1)``, which reports the last iterate ``θ_t`` until step ``s``.

For plain SGD, ``θ' = r θ − η ε`` with ``r = 1 − η h`` and ``Var ε = c / B``, and each
coordinate's second moments ``E[θ²]``, ``E[θ θ̄]``, ``E[θ̄²]`` obey a closed, exact recursion
(the noise is fresh at every step and independent of the past)::

    E[θ'²]    = r² E[θ²] + η² c / B
    E[θ̄'²]   = γ² E[θ̄²] + 2 γ (1 − γ) r E[θ θ̄] + (1 − γ)² E[θ'²]
    E[θ' θ̄'] = γ r E[θ θ̄] + (1 − γ) E[θ'²]

Nothing here is an approximation; every coordinate is advanced at once.
"""

from __future__ import annotations

import numpy as np

from .dynamics import Hyperparams, check_stable
from .formulas import sgd_rate
from .problem import NQM
from .validation import check_steps

__all__ = [
    "averaged_risk_curve",
    "averaged_risk_curve_per_coordinate",
    "averaging_decays",
    "decaying_average_risk_per_coordinate",
]


def averaging_decays(steps: int, start: int = 0) -> np.ndarray:
    """Decays ``γ_1, …, γ_steps`` of the running average of ``θ_start, …, θ_t`` (chapter 4).

    ``γ_t = 0`` for ``t ≤ start`` (the average *is* the last iterate until ``start``) and
    ``γ_t = (t − start) / (t − start + 1)`` afterwards. ``start = 0`` gives the uniform
    (Polyak–Ruppert) average of all iterates including ``θ_0``.

    Examples
    --------
    >>> averaging_decays(4).tolist()
    [0.5, 0.6666666666666666, 0.75, 0.8]
    >>> averaging_decays(4, start=2).tolist()
    [0.0, 0.0, 0.5, 0.6666666666666666]

    """
    steps = check_steps(steps)
    start = check_steps(start, "start")
    if start > steps:
        raise ValueError(f"start must be an integer in [0, steps] = [0, {steps}], got {start!r}")
    since_start = np.maximum(np.arange(1, steps + 1) - start, 0)
    return since_start / (since_start + 1.0)


def _check_decays(decays: object) -> np.ndarray:
    try:
        array = np.asarray(decays, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"decays must be a 1-D array of numbers in [0, 1), got {decays!r}") from None
    if array.ndim != 1:
        raise ValueError(f"decays must be a 1-D array of numbers in [0, 1), got shape {array.shape}")
    bad = np.flatnonzero(~(np.isfinite(array) & (array >= 0.0) & (array < 1.0)))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"decays must be in [0, 1) at every step, got decays[{index}] = {float(array[index])!r}"
        )
    return array


def decaying_average_risk_per_coordinate(
    problem: NQM, decays: object, *, lr: float, batch_size: int = 1
) -> np.ndarray:
    """Exact ``counts_i · E[½ h_i θ̄_i(t)²]`` of an average with decays ``γ_t`` on SGD (chapter 4).

    Parameters
    ----------
    problem
        The NQM; the average starts at ``θ̄_0 = θ_0 = problem.theta0``.
    decays
        ``γ_1, …, γ_T`` (1-D, each in ``[0, 1)``); step ``t`` updates
        ``θ̄_t = γ_t θ̄_{t−1} + (1 − γ_t) θ_t``. See :func:`averaging_decays`.
    lr, batch_size
        Plain SGD's learning rate η and batch size B (the average never feeds back into θ).

    Returns
    -------
    numpy.ndarray
        Shape ``(T + 1, problem.d)``: the expected risk of each coordinate of ``θ̄_t``,
        t = 0..T. A constant decay ``γ`` reproduces ``risk_curve_per_coordinate(...,
        ema_decay=γ)``.

    Raises
    ------
    ValueError
        If a decay is outside ``[0, 1)`` (the message names its index and value) or η, B
        are invalid; :class:`~nqm_lib.validation.InstabilityError` if SGD diverges.

    """
    decays = _check_decays(decays)
    hp = Hyperparams(lr, batch_size)
    check_stable(problem, hp)
    r = sgd_rate(problem.h, lr=hp.lr)
    injected = hp.lr**2 * problem.c / hp.batch_size
    theta_sq = problem.theta0**2  # E[θ_t²]
    cross = theta_sq.copy()  # E[θ_t θ̄_t]
    average_sq = theta_sq.copy()  # E[θ̄_t²]
    moments = np.empty((decays.size + 1, problem.d))
    moments[0] = average_sq
    for t, gamma in enumerate(decays, start=1):
        theta_sq = r * r * theta_sq + injected
        average_sq = (
            gamma**2 * average_sq + 2.0 * gamma * (1.0 - gamma) * r * cross + (1.0 - gamma) ** 2 * theta_sq
        )
        cross = gamma * r * cross + (1.0 - gamma) * theta_sq
        moments[t] = average_sq
    return 0.5 * problem.h * problem.counts * moments


def averaged_risk_curve_per_coordinate(
    problem: NQM, steps: int, *, lr: float, batch_size: int = 1, start: int = 0
) -> np.ndarray:
    """Exact per-coordinate risk of the average of ``θ_start, …, θ_t`` under SGD (chapter 4).

    ``start = 0`` is the uniform (Polyak–Ruppert) average of all iterates; ``start = s > 0``
    the tail average, equal to the last iterate ``θ_t`` for ``t ≤ s``. Shape
    ``(steps + 1, problem.d)`` for t = 0..steps; raises like :func:`decaying_average_risk_per_coordinate` and
    ``ValueError`` unless ``0 ≤ start ≤ steps``.
    """
    return decaying_average_risk_per_coordinate(
        problem, averaging_decays(steps, start), lr=lr, batch_size=batch_size
    )


def averaged_risk_curve(
    problem: NQM, steps: int, *, lr: float, batch_size: int = 1, start: int = 0
) -> np.ndarray:
    """Exact expected risk ``E[L(θ̄_t)]`` of the average of ``θ_start, …, θ_t`` (chapter 4).

    Shape ``(steps + 1,)``, t = 0..steps. The uniform (Polyak–Ruppert) average is
    ``start = 0``; the tail average over the last half of a run of ``T`` steps is
    ``start = T // 2``.

    Examples
    --------
    >>> from nqm_lib import NQM
    >>> problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
    >>> curve = averaged_risk_curve(problem, 1000, lr=0.02)  # uniform average
    >>> round(float(curve[1]), 4), round(float(curve[1000]), 5)
    (6.8651, 0.00223)

    """
    return averaged_risk_curve_per_coordinate(problem, steps, lr=lr, batch_size=batch_size, start=start).sum(
        axis=1
    )
