"""Exact expected risk ``E[L(θ_t)]`` of SGD and its variants on the NQM (chapters 2–6).

The second moments of a linear system driven by zero-mean noise split into a deterministic
part and a noise part. With ``w_t = (Aᵀ)^t e`` (``e`` reads out the reported iterate)::

    E[θ̃_t²] = (w_tᵀ x₀)² θ(0)²  +  σ̃² · e_ᵀ (S − A^t S (A^t)ᵀ) e
            =  (bias response)²  +  σ̃² · Σ_{k<t} (impulse response at lag k)²,

where ``S = Σ_k A^k b bᵀ (A^k)ᵀ`` solves the discrete Lyapunov equation ``S = A S Aᵀ + b bᵀ``.
The noise part is a partial sum of squares: it grows monotonically to its limit, the
steady-state risk. Plain SGD uses its closed form; every other combination runs this exact
recursion, vectorised over coordinates. Nothing here is an approximation.

When the first step has its own matrices ``(A₀, b₀)`` (PyTorch's undamped first step of
momentum with dampening, chapter 3), ``x_t = A^{t−1}(A₀ x₀ + b₀ ε₀) + …`` and the same
formula holds with ``w_{t−1}`` read against ``A₀ x₀`` and an extra ``(w_{t−1}ᵀ b₀)²``.
"""

from __future__ import annotations

import numpy as np

from .dynamics import AVERAGE, Hyperparams, LinearSystem, check_stable, diverging_coordinates, linear_system
from .formulas import sgd_risk, sgd_steady_state_risk
from .problem import NQM
from .validation import check_positive, check_steps

__all__ = [
    "first_minimum",
    "risk_curve",
    "risk_curve_per_coordinate",
    "steady_state_risk",
    "steady_state_risk_per_coordinate",
]


def _stationary_covariance(system: LinearSystem) -> np.ndarray:
    """Solve ``S = A S Aᵀ + b bᵀ`` for every coordinate (per unit noise variance)."""
    A, b = system.A, system.b
    d, n, _ = A.shape
    kron = np.einsum("dij,dkl->dikjl", A, A).reshape(d, n * n, n * n)
    rhs = np.einsum("di,dj->dij", b, b).reshape(d, n * n, 1)
    S = np.linalg.solve(np.eye(n * n) - kron, rhs).reshape(d, n, n)
    return 0.5 * (S + np.swapaxes(S, 1, 2))


def _risk_by_moment_recursion(problem: NQM, hp: Hyperparams, steps: int) -> np.ndarray:
    """Per-coordinate risk (without counts) for t = 0..steps from the exact recursion."""
    system = linear_system(problem, hp)
    S = _stationary_covariance(system)
    transposed = np.swapaxes(system.A, 1, 2)
    w = np.zeros((problem.d, system.A.shape[1]))
    w[:, AVERAGE] = 1.0
    second_moment = np.empty((steps + 1, problem.d))
    start_sq = problem.theta0**2
    limit = S[:, AVERAGE, AVERAGE]
    if system.first_A is not None:
        # x_t = A^{t-1} x_1 with x_1 = A₀ x₀ + b₀ ε₀: read w_{t-1} = (Aᵀ)^{t-1} e against x_1
        second_moment[0] = start_sq
        after_first = system.first_A @ system.start  # (d, 3): E[x_1] per unit θ(0)
        for t in range(1, steps + 1):
            bias = np.einsum("di,di->d", w, after_first)
            first_noise = np.einsum("di,di->d", w, system.first_b) ** 2
            noise = first_noise + limit - np.einsum("di,dij,dj->d", w, S, w)
            second_moment[t] = bias**2 * start_sq + system.noise_var * noise
            w = np.einsum("dij,dj->di", transposed, w)
        return 0.5 * problem.h * second_moment
    for t in range(steps + 1):
        bias = w @ system.start
        noise = limit - np.einsum("di,dij,dj->d", w, S, w)
        second_moment[t] = bias**2 * start_sq + system.noise_var * noise
        w = np.einsum("dij,dj->di", transposed, w)
    return 0.5 * problem.h * second_moment


def risk_curve_per_coordinate(
    problem: NQM,
    steps: int,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    ceiling: float | None = None,
) -> np.ndarray:
    """Exact expected risk of each coordinate, ``counts_i · E[½ h_i θ̃_i(t)²]``, t = 0..steps.

    Returns an array of shape ``(steps + 1, problem.d)`` whose rows sum to
    :func:`risk_curve`. With ``ema_decay > 0`` it is the risk of the averaged iterate ``θ̃``.
    Raises ``ValueError`` for invalid settings and
    :class:`~nqm_lib.validation.InstabilityError` if the iteration diverges.

    ``ceiling`` is the opt-in of figures that draw divergence: with it, an unstable setting
    does not raise. Each diverging coordinate (:func:`~nqm_lib.dynamics.diverging_coordinates`)
    is computed exactly until its risk first exceeds ``ceiling`` and reported as ``ceiling``
    from that step on, so the result stays finite (a figure whose axes end below ``ceiling``
    shows the curve leaving through the top); the other coordinates are unaffected.
    """
    steps = check_steps(steps)
    hp = Hyperparams(lr, batch_size, momentum, ema_decay, precond_power, dampening, nesterov)
    if ceiling is not None:
        return _risk_with_ceiling(problem, hp, steps, check_positive("ceiling", ceiling))
    check_stable(problem, hp)
    return _stable_risk_per_coordinate(problem, hp, steps)


def _stable_risk_per_coordinate(problem: NQM, hp: Hyperparams, steps: int) -> np.ndarray:
    """:func:`risk_curve_per_coordinate` of a stable setting (closed form or moment recursion)."""
    if hp.is_plain_sgd:
        per_coordinate = sgd_risk(
            problem.h,
            problem.c,
            problem.theta0,
            np.arange(steps + 1),
            lr=hp.lr,
            batch_size=hp.batch_size,
            precond_power=hp.precond_power,
        )
    else:
        per_coordinate = _risk_by_moment_recursion(problem, hp, steps)
    return per_coordinate * problem.counts


def risk_curve(
    problem: NQM,
    steps: int,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    ceiling: float | None = None,
) -> np.ndarray:
    """Exact expected excess risk ``E[L(θ_t)]`` for t = 0..steps (shape ``(steps + 1,)``).

    Covers plain SGD (closed form), heavy-ball momentum ``β`` (PyTorch convention; also with
    ``dampening`` δ or ``nesterov=True``, exactly as ``torch.optim.SGD`` steps them),
    an EMA ``γ`` of the iterates (then the risk of the average ``θ̃``), the preconditioner
    ``P = H^p`` and every combination (exact second-moment recursion). ``ceiling`` opts in to
    unstable settings, as in :func:`risk_curve_per_coordinate`.

    Examples
    --------
    >>> from nqm_lib import NQM, risk_curve
    >>> problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
    >>> curve = risk_curve(problem, 200, lr=0.02)
    >>> round(float(curve[0]), 3), round(float(curve[-1]), 4)
    (25.5, 0.5052)

    """
    per_coordinate = risk_curve_per_coordinate(
        problem,
        steps,
        lr=lr,
        batch_size=batch_size,
        momentum=momentum,
        ema_decay=ema_decay,
        precond_power=precond_power,
        dampening=dampening,
        nesterov=nesterov,
        ceiling=ceiling,
    )
    return per_coordinate.sum(axis=1)


def steady_state_risk_per_coordinate(
    problem: NQM,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    ceiling: float | None = None,
) -> np.ndarray:
    """Limit ``t → ∞`` of :func:`risk_curve_per_coordinate` (shape ``(problem.d,)``).

    With ``ceiling`` (the opt-in of :func:`risk_curve_per_coordinate`), a diverging coordinate,
    whose risk grows without bound, is reported as ``ceiling`` instead of raising.
    """
    hp = Hyperparams(lr, batch_size, momentum, ema_decay, precond_power, dampening, nesterov)
    if ceiling is not None:
        ceiling = check_positive("ceiling", ceiling)
        diverging = diverging_coordinates(problem, hp)
        floors = np.full(problem.d, ceiling)
        if not np.all(diverging):
            floors[~diverging] = _stable_floor(_coordinates(problem, ~diverging), hp)
        return floors
    check_stable(problem, hp)
    return _stable_floor(problem, hp)


def _stable_floor(problem: NQM, hp: Hyperparams) -> np.ndarray:
    """:func:`steady_state_risk_per_coordinate` of a stable setting."""
    if hp.is_plain_sgd:
        floor = sgd_steady_state_risk(
            problem.h, problem.c, lr=hp.lr, batch_size=hp.batch_size, precond_power=hp.precond_power
        )
    else:
        system = linear_system(problem, hp)
        S = _stationary_covariance(system)
        floor = 0.5 * problem.h * system.noise_var * S[:, AVERAGE, AVERAGE]
    return floor * problem.counts


def steady_state_risk(
    problem: NQM,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
) -> float:
    """Steady-state expected risk ``lim_{t→∞} E[L(θ_t)]`` (the noise floor), exactly."""
    return float(
        steady_state_risk_per_coordinate(
            problem,
            lr=lr,
            batch_size=batch_size,
            momentum=momentum,
            ema_decay=ema_decay,
            precond_power=precond_power,
            dampening=dampening,
            nesterov=nesterov,
        ).sum()
    )


def _coordinates(problem: NQM, keep: np.ndarray) -> NQM:
    """The NQM made of the coordinates ``keep`` of ``problem`` (they move independently)."""
    sigma = None if problem.sigma is None else problem.sigma[keep]
    return NQM(
        problem.h[keep], problem.c[keep], problem.theta0[keep], counts=problem.counts[keep], sigma=sigma
    )


def _risk_with_ceiling(problem: NQM, hp: Hyperparams, steps: int, ceiling: float) -> np.ndarray:
    """:func:`risk_curve_per_coordinate` with its ``ceiling``: diverging coordinates held at ``ceiling``.

    The stable coordinates take the usual exact path. The diverging ones run the moment
    recursion forward, ``E[x'] = A E[x]`` and ``Cov[x'] = A Cov[x] Aᵀ + σ̃² b bᵀ`` (PyTorch's
    first step with its own ``A₀, b₀``), and each stops growing once its risk passes ``ceiling``.
    """
    diverging = diverging_coordinates(problem, hp)
    risk = np.empty((steps + 1, problem.d))
    if not np.all(diverging):
        risk[:, ~diverging] = _stable_risk_per_coordinate(_coordinates(problem, ~diverging), hp, steps)
    if not np.any(diverging):
        return risk
    part = _coordinates(problem, diverging)
    system = linear_system(part, hp)
    weight = 0.5 * part.h * part.counts * part.theta0**2  # risk per unit second moment of θ̃/θ(0)
    noise_weight = 0.5 * part.h * part.counts * system.noise_var
    mean = np.broadcast_to(system.start, (part.d, system.A.shape[1])).copy()  # E[x] / θ(0)
    covariance = np.zeros((part.d, *system.A.shape[1:]))  # Cov[x] / σ̃²
    held = np.zeros(part.d, dtype=bool)
    values = np.empty((steps + 1, part.d))
    for t in range(steps + 1):
        values[t] = weight * mean[:, AVERAGE] ** 2 + noise_weight * covariance[:, AVERAGE, AVERAGE]
        held |= values[t] > ceiling
        values[t, held] = ceiling
        mean[held], covariance[held] = 0.0, 0.0  # a held coordinate is no longer computed
        A, b = (
            (system.first_A, system.first_b)
            if t == 0 and system.first_A is not None
            else (system.A, system.b)
        )
        mean = np.einsum("dij,dj->di", A, mean)
        covariance = np.einsum("dij,djk,dlk->dil", A, covariance, A) + np.einsum("di,dj->dij", b, b)
    risk[:, diverging] = values
    return risk


def first_minimum(values: object, *, rtol: float = 1e-9) -> int:
    """Index of the smallest entry of ``values``, the same on every machine (chapters 2, 3, 5, 8).

    Entries within a relative ``rtol`` of the minimum count as equal and the first of them is
    returned, so a tuned search over a grid (the best η for a budget, say) does not change its
    answer when another CPU rounds the last digits differently. ``inf`` entries (settings that
    never reach a target) are allowed; all-``inf`` returns 0.

    Examples
    --------
    >>> first_minimum([3.0, 1.0 + 1e-12, 1.0, 2.0])
    1

    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0 or np.any(np.isnan(values)):
        raise ValueError(f"values must be a non-empty 1-D array without NaN, got shape {values.shape}")
    smallest = values.min()
    return int(np.flatnonzero(values <= smallest + rtol * abs(smallest))[0]) if np.isfinite(smallest) else 0
