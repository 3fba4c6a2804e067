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

from .dynamics import AVERAGE, Hyperparams, LinearSystem, check_stable, linear_system
from .formulas import sgd_risk, sgd_steady_state_risk
from .problem import NQM
from .validation import check_steps

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
) -> np.ndarray:
    """Exact expected risk of each coordinate, ``counts_i · E[½ h_i θ̃_i(t)²]``, t = 0..steps.

    Returns an array of shape ``(steps + 1, problem.d)`` whose rows sum to
    :func:`risk_curve`. With ``ema_decay > 0`` it is the risk of the averaged iterate ``θ̃``.
    Raises ``ValueError`` for invalid settings and
    :class:`~nqm_lib.validation.InstabilityError` if the iteration diverges.
    """
    steps = check_steps(steps)
    hp = Hyperparams(lr, batch_size, momentum, ema_decay, precond_power, dampening, nesterov)
    check_stable(problem, hp)
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
) -> np.ndarray:
    """Exact expected excess risk ``E[L(θ_t)]`` for t = 0..steps (shape ``(steps + 1,)``).

    Covers plain SGD (closed form), heavy-ball momentum ``β`` (PyTorch convention; also with
    ``dampening`` δ or ``nesterov=True``, exactly as ``torch.optim.SGD`` steps them),
    an EMA ``γ`` of the iterates (then the risk of the average ``θ̃``), the preconditioner
    ``P = H^p`` and every combination (exact second-moment recursion).

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
) -> np.ndarray:
    """Limit ``t → ∞`` of :func:`risk_curve_per_coordinate` (shape ``(problem.d,)``)."""
    hp = Hyperparams(lr, batch_size, momentum, ema_decay, precond_power, dampening, nesterov)
    check_stable(problem, hp)
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
