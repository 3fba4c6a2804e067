"""Steps to a target risk and their scaling with the batch size, exactly and fast (chapter 6).

Chapter 6 asks how many steps ``t`` an optimiser needs before its expected risk reaches a target,
``E[L(θ_t)] ≤ target``, and how that count falls as the batch size ``B`` grows when the learning
rate (and the momentum ``β`` or EMA decay ``γ``) is tuned for every ``B`` (Zhang et al., 2019).

**Counting convention.** The steps to target are the *first crossing*
``T = min{t ≥ 0 : E[L(θ_t)] ≤ target}``; ``math.inf`` (``np.inf`` in arrays) means that the risk
stays above the target at every ``t ≤ max_steps``, as it does forever when the steady-state risk
is above the target and the curve never dips below it. ``T`` is exact, also for curves that are
not monotone: under-damped momentum makes the risk oscillate, and with preconditioning the flat
coordinates can rise towards their noise floors while the others fall, so a curve may touch the
target, rise above it and cross again later (the paper's notebook, which bisects, can land on a
later crossing; see chapter 6).

**How it is exact and fast.** Every optimiser covered here (plain SGD, heavy-ball momentum, an EMA
of the iterates, each with the preconditioner ``P = H^p``) moves each coordinate as a 2×2 linear
system ``y' = M y + η ε̃ × (a fixed vector)`` (state ``(θ, ηv)`` for momentum, ``(θ̃, θ)`` for an
EMA; plain SGD is either with ``β = 0`` or ``γ = 0``). With ``x = η h^{1−p}`` the matrix ``M``
depends only on ``x`` and ``β`` (or ``γ``). By Cayley–Hamilton ``M^t = G(t) M − det(M) G(t−1) I``
with the divided difference ``G(t) = (λ₁^t − λ₂^t)/(λ₁ − λ₂)`` of the eigenvalues, evaluated here in
a form that stays accurate at and near repeated eigenvalues (critical damping). So the reported
coordinate's deterministic factor ``b(t)`` and its noise part ``V(t) = S₀₀ − w_t S w_tᵀ`` (``S`` the
stationary covariance, ``w_t`` the first row of ``M^t``) cost a few elementary functions at *any*
``t``, and

    E[L(θ_t)] = D(t) + N(t) / B,   D(t) = Σ_i n_i ½ h_i θ_i(0)² b_i(t)²,
                                   N(t) = Σ_i n_i ½ h_i η² h_i^{−2p} c_i V_i(t),

with ``N`` non-decreasing (a partial sum of squares) and ``D`` independent of ``B``. The search
evaluates every grid point at ``t = 0, 1, 2, 4, 8, …`` at once (``M^t`` by repeated squaring), then
refines by branch and bound: on an interval ``[a, b]`` the risk is at least ``D_low(a, b) + N(a)/B``,
where ``D_low`` sums certified lower bounds of the ``b_i(t)²`` (two real eigenvalues of one sign: at
most one sign change and no interior minimum of ``|b_i|``; complex eigenvalues
``b_i(t) = A ρ^t sin(ωt + φ)``, whose phase range is known; real ones of opposite signs, term by
term). Intervals whose bound exceeds the target, or which start after the best crossing found so
far, are dropped; the rest are halved until single steps are decided by exact evaluation. Nothing
is approximated; the only tolerance is a relative 10⁻¹² on the bounds against rounding.

**Cost.** A tuned search over the paper's grids takes a fraction of a second, because every
setting that cannot beat the best crossing found so far is dropped early. A single setting whose
risk oscillates close to the target for a long time (strongly under-damped momentum, ``1 − β``
tiny) can take seconds: its per-coordinate bounds only become informative on intervals shorter
than the oscillation periods, so many steps must be examined.

**Lower bound and schedules.** :func:`information_bound_steps` is the fewest steps in which *any*
algorithm that sees ``B`` noisy examples per step can reach the target (the Bayes risk of the
posterior mean of ``θ*``, :func:`information_bound_risk`). :func:`scheduled_steps_to_target`
replaces SGD's constant rate by a piecewise-constant schedule of :data:`SCHEDULE_PIECES` pieces
optimised for every horizon (:func:`optimal_piecewise_schedule`); under a schedule the risk stays
exact, each piece being one affine map of every coordinate's second moment
(:func:`piecewise_schedule_risk`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .dynamics import AVERAGE, Hyperparams, check_stable, linear_system
from .formulas import sgd_risk
from .problem import NQM
from .theory import _stationary_covariance
from .validation import (
    InstabilityError,
    check_batch_size,
    check_fraction,
    check_positive,
    check_precond_power,
    check_steps,
)

__all__ = [
    "DEFAULT_MAX_STEPS",
    "PAPER_DECAYS",
    "PAPER_LRS",
    "PAPER_SGD_LRS",
    "SCHEDULE_PIECES",
    "PiecewiseSchedule",
    "ScheduledSteps",
    "TunedSteps",
    "critical_batch_size",
    "information_bound_risk",
    "information_bound_steps",
    "optimal_piecewise_schedule",
    "piecewise_schedule_risk",
    "risk_at_step",
    "scheduled_steps_to_target",
    "steps_to_target",
    "steps_to_target_grid",
    "tuned_steps_to_target",
]

#: Default search horizon (the paper's notebook also stops its SGD search at 10⁹ steps).
DEFAULT_MAX_STEPS = 10**9


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


#: The grids of the paper's public notebook, first η for plain SGD (100 values in [10⁻⁵, 10^0.5]) ...
PAPER_SGD_LRS = _read_only(np.logspace(-5.0, 0.5, 100))
#: ... η for the momentum and EMA searches (100 values in [10⁻⁸, 10]) ...
PAPER_LRS = _read_only(np.logspace(-8.0, 1.0, 100))
#: ... and β or γ ∈ 1 − logspace(−5, 0, 20) (from 0.99999 down to 0, which is plain SGD).
PAPER_DECAYS = _read_only(1.0 - np.logspace(-5.0, 0.0, 20))

# Relative safety margin of the certified lower bounds (against rounding in the exact values).
_BOUND_MARGIN = 1e-12


# ----------------------------------------------------------------------------------- validation


def _check_target(target: object) -> float:
    try:
        return check_positive("target", target)
    except ValueError:
        raise ValueError(f"target must be a finite number > 0 (a risk level), got {target!r}") from None


def _check_max_steps(max_steps: object) -> int:
    value = check_steps(max_steps, "max_steps")
    if value < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    return value


def _check_grid(name: str, values: object, check: Callable[[str, object], float]) -> np.ndarray:
    """A non-empty 1-D grid whose every entry passes ``check(name, value)``."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {values!r}") from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    for value in array:
        check(name, float(value))  # raises with the parameter, the value and the valid range
    return array


def _check_batch_sizes(batch_sizes: object) -> np.ndarray:
    try:
        array = np.asarray(batch_sizes)
    except (TypeError, ValueError):
        raise ValueError(
            f"batch_sizes must be a non-empty 1-D sequence of integers >= 1, got {batch_sizes!r}"
        ) from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"batch_sizes must be a non-empty 1-D sequence of integers >= 1, got shape {array.shape}"
        )
    try:
        return np.array([check_batch_size(value.item()) for value in array], dtype=np.int64)
    except ValueError as error:
        raise ValueError(f"batch_sizes: {error}") from None


# ------------------------------------------------------------------- the 2×2 systems of a grid


@dataclass(frozen=True)
class _Systems:
    """Per-coordinate 2×2 systems for a grid of configurations (arrays of shape (configs, d)).

    ``A = [[a00, a01], [a10, a11]]`` acts on a state whose component 0 is the reported
    coordinate. The deterministic factor is ``b(t) = p G(t) − det q G(t−1)`` (``p = e A y₀``,
    ``q = e y₀``, ``y₀`` the start per unit ``θ(0)``), the first row of ``A^t`` is
    ``w_t = (a00 G(t) − det G(t−1), a01 G(t))`` and ``(s00, s01, s11)`` is the stationary
    covariance per unit noise. The other fields are the eigenvalue constants that
    :func:`_divided_difference` and :func:`_bias_lower_bound` need (harmless dummies where a
    field does not apply).
    """

    a00: np.ndarray
    a01: np.ndarray
    a10: np.ndarray
    a11: np.ndarray
    start1: np.ndarray  # second component of y₀ (the first is q)
    det: np.ndarray
    p: np.ndarray
    q: np.ndarray
    s00: np.ndarray
    s01: np.ndarray
    s11: np.ndarray
    is_complex: np.ndarray  # eigenvalues ρ e^{±iω}
    log_rho: np.ndarray
    omega: np.ndarray
    inv_sin: np.ndarray
    phase: np.ndarray  # b(t) = A ρ^t sin(tω + phase), A > 0
    lam1_zero: np.ndarray  # real eigenvalues λ₁ (larger modulus), λ₂ = (1 − u) λ₁
    lam1_negative: np.ndarray
    log_abs_lam1: np.ndarray
    u_zero: np.ndarray
    u_small: np.ndarray
    log1p_minus_u: np.ndarray
    inv_u: np.ndarray
    ratio: np.ndarray
    mixed: np.ndarray  # real eigenvalues of opposite signs: b = α₁λ₁^t + α₂λ₂^t
    alpha1: np.ndarray
    alpha2: np.ndarray
    log_m1: np.ndarray
    log_m2: np.ndarray
    bias_weight: np.ndarray  # shape (d,)
    noise_weight: np.ndarray

    def take(self, index: np.ndarray) -> _Systems:
        """The systems of the configurations ``index`` (a gather along the first axis)."""
        return _Systems(
            **{
                name: (value if name == "bias_weight" else value[index])
                for name, value in ((name, getattr(self, name)) for name in self.__dataclass_fields__)
            }
        )


class _BoundFields(NamedTuple):
    """The fields of :class:`_Systems` that :func:`_bias_lower_bound` reads."""

    lam1_negative: np.ndarray
    is_complex: np.ndarray
    omega: np.ndarray
    phase: np.ndarray
    log_rho: np.ndarray
    mixed: np.ndarray
    alpha1: np.ndarray
    alpha2: np.ndarray
    log_m1: np.ndarray
    log_m2: np.ndarray
    bias_weight: np.ndarray


def _systems(
    problem: NQM, lrs: np.ndarray, second: np.ndarray, *, family: str, precond_power: float
) -> tuple[_Systems, np.ndarray]:
    """2×2 systems for every ``(η, β)`` (``family='momentum'``) or ``(η, γ)`` (``'ema'``) pair.

    Configurations are ordered row-major (``lrs`` outer). Also returns a boolean array that marks
    the stable configurations; the others must not be evaluated (their entries may be inf or nan).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _systems_unchecked(problem, lrs, second, family=family, precond_power=precond_power)


def _systems_unchecked(
    problem: NQM, lrs: np.ndarray, second: np.ndarray, *, family: str, precond_power: float
) -> tuple[_Systems, np.ndarray]:
    h_eff = problem.h ** (1.0 - precond_power)
    eta = np.repeat(lrs, second.size)[:, None]
    coef = np.tile(second, lrs.size)[:, None] * np.ones((1, problem.d))
    x = eta * h_eff[None, :]
    if family == "momentum":  # state (θ, ηv): θ' = (1 − x)θ − βu − ηε̃, u' = xθ + βu + ηε̃
        a00, a01, a10, a11 = 1.0 - x, -coef, x, coef
        root = np.sqrt(coef)
        disc = ((1.0 - root) ** 2 - x) * ((1.0 + root) ** 2 - x) / 4.0  # factored: accurate near 0
        start = (1.0, 0.0)
        # stationary covariance per unit noise input (−1, 1) (S = A S Aᵀ + g gᵀ, solved symbolically)
        scale = 1.0 / ((1.0 - coef) * (2.0 + 2.0 * coef - x))
        s00, s01, s11 = (1.0 + coef) * scale / x, -scale, 2.0 * scale
        stable = np.all(x < 2.0 * (1.0 + coef), axis=1)
    else:  # state (θ̃, θ): θ' = (1 − x)θ − ηε̃, θ̃' = γθ̃ + (1 − γ)θ'
        a00, a01, a10, a11 = coef, (1.0 - coef) * (1.0 - x), np.zeros_like(x), 1.0 - x
        disc = ((coef - 1.0 + x) / 2.0) ** 2
        start = (1.0, 1.0)
        # stationary covariance per unit noise input (−(1 − γ), −1), solved symbolically
        s11 = 1.0 / (x * (2.0 - x))
        s01 = (1.0 - coef) * s11 / (1.0 - coef + coef * x)
        s00 = s01 * (1.0 + coef - coef * x) / (1.0 + coef)
        stable = np.all(x < 2.0, axis=1)
    tau = a00 + a11
    det = a00 * a11 - a01 * a10
    p = a00 * start[0] + a01 * start[1]
    q = np.full_like(x, start[0])
    is_complex = disc < 0.0
    # complex pair ρ e^{±iω}; b(t) = Im(e^{itω} z) ρ^{t−1}/sin ω with z = p − ρ q e^{−iω}
    rho = np.sqrt(np.where(is_complex, det, 1.0))
    omega = np.where(is_complex, np.arctan2(np.sqrt(np.where(is_complex, -disc, 1.0)), tau / 2.0), 1.0)
    phase = np.arctan2(rho * q * np.sin(omega), p - rho * q * np.cos(omega))
    # real eigenvalues: λ₁ = τ/2 ± √disc with the larger modulus, λ₂ = det/λ₁
    lam1 = np.where(is_complex, 1.0, tau / 2.0 + np.copysign(np.sqrt(np.where(is_complex, 0.0, disc)), tau))
    lam1_zero = lam1 == 0.0
    safe_lam1 = np.where(lam1_zero, 1.0, lam1)
    lam2 = np.where(lam1_zero, 0.0, det / safe_lam1)
    u = np.where(lam1_zero | is_complex, 1.0, (lam1 - lam2) / safe_lam1)
    u_small = (u > 0.0) & (u < 0.5)
    mixed = ~is_complex & (det < 0.0)
    gap = np.where(mixed, lam1 - lam2, 1.0)
    log_m2 = np.where(mixed, np.log(np.abs(np.where(mixed, lam2, 1.0))), 0.0)
    weight = problem.counts * 0.5 * problem.h
    systems = _Systems(
        a00=a00, a01=a01, a10=a10, a11=a11, start1=np.full_like(x, start[1]), det=det, p=p, q=q,
        s00=s00, s01=s01, s11=s11,
        is_complex=is_complex, log_rho=np.log(rho), omega=omega, inv_sin=1.0 / np.sin(omega), phase=phase,
        lam1_zero=lam1_zero, lam1_negative=lam1 < 0.0, log_abs_lam1=np.log(np.abs(safe_lam1)),
        u_zero=u == 0.0, u_small=u_small, log1p_minus_u=np.log1p(-np.where(u_small, u, 0.25)),
        inv_u=1.0 / np.where(u > 0.0, u, 1.0), ratio=np.where(u_small | lam1_zero | is_complex, 0.0, 1.0 - u),
        mixed=mixed, alpha1=np.abs((p - lam2 * q) / gap), alpha2=np.abs((lam1 * q - p) / gap),
        log_m1=np.where(mixed, np.log(np.abs(safe_lam1)), 0.0), log_m2=log_m2,
        bias_weight=weight * problem.theta0**2,
        noise_weight=weight * problem.h ** (-2.0 * precond_power) * problem.c * eta**2,
    )  # fmt: skip
    return systems, stable


# ------------------------------------------------------------------------ exact values at any t


def _divided_difference(sys: _Systems, t: np.ndarray | float) -> np.ndarray:
    """``G(t) = (λ₁^t − λ₂^t)/(λ₁ − λ₂)`` for every coordinate, accurate at repeated eigenvalues.

    ``t`` is a float or an array of shape (configs, 1) with integer values ``≥ 0``.
    """
    any_complex = bool(sys.is_complex.any())
    if any_complex:  # ρ^{t−1} sin(tω)/sin ω, which tends to t ρ^{t−1} as ω → 0
        g_complex = np.exp((t - 1.0) * sys.log_rho) * np.sin(t * sys.omega) * sys.inv_sin
        if sys.is_complex.all():
            return g_complex
    # real: λ₁^{t−1} (1 − q^t)/(1 − q) with q = λ₂/λ₁ = 1 − u; the series form avoids cancellation
    series = -np.expm1(t * sys.log1p_minus_u) * sys.inv_u
    direct = (1.0 - np.power(sys.ratio, t)) * sys.inv_u
    factor = np.where(sys.u_zero, t, np.where(sys.u_small, series, direct))
    odd = np.mod(t - 1.0, 2.0) == 1.0
    sign = np.where(sys.lam1_negative & odd, -1.0, 1.0)
    g_real = np.where(
        sys.lam1_zero, np.where(t == 1.0, 1.0, 0.0), sign * np.exp((t - 1.0) * sys.log_abs_lam1) * factor
    )
    return np.where(sys.is_complex, g_complex, g_real) if any_complex else g_real


def _state(sys: _Systems, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic factor ``b(t)`` and noise part ``V(t)`` of every coordinate at step ``t``."""
    g_now = _divided_difference(sys, t)
    g_before = _divided_difference(sys, np.maximum(t - 1.0, 0.0))
    at_start = t == 0.0
    w0 = np.where(at_start, 1.0, sys.a00 * g_now - sys.det * g_before)
    w1 = np.where(at_start, 0.0, sys.a01 * g_now)
    b = np.where(at_start, sys.q, sys.p * g_now - sys.det * sys.q * g_before)
    v = sys.s00 - (w0 * w0 * sys.s00 + 2.0 * w0 * w1 * sys.s01 + w1 * w1 * sys.s11)
    return b, np.maximum(v, 0.0)


def _totals(sys: _Systems, b: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per configuration, ``D = Σ_i n_i ½h_i θ_i(0)² b_i²`` and ``N = Σ_i n_i ½h_i η² h_i^{−2p} c_i V_i``."""
    return (b * b) @ sys.bias_weight, (sys.noise_weight * v).sum(axis=1)


def _bias_lower_bound(
    sys: _Systems,
    lo: np.ndarray | float,
    hi: np.ndarray | float,
    b_lo: np.ndarray,
    b_hi: np.ndarray,
    *,
    oscillating: bool = True,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Certified lower bound of ``D(t)`` over ``lo ≤ t ≤ hi``, per configuration.

    With ``oscillating=False`` the coordinates with complex or opposite-sign eigenvalues count
    as 0 (still a valid, cheaper bound, meant for long intervals). ``rows`` restricts the
    computation to those configurations of ``sys`` (``b_lo``, ``b_hi`` are then already restricted).
    """
    if rows is not None:
        sys = _BoundFields(
            *(
                getattr(sys, name) if name == "bias_weight" else getattr(sys, name)[rows]
                for name in _BoundFields._fields
            )
        )
    sq_lo, sq_hi = b_lo * b_lo, b_hi * b_hi
    # real eigenvalues of one sign: (sign λ₁)^t b(t) changes sign at most once, |b| has no interior minimum
    product = b_lo * b_hi
    flip = sys.lam1_negative & (np.mod(hi - lo, 2.0) == 1.0)
    bound = np.where(np.where(flip, -product, product) > 0.0, np.minimum(sq_lo, sq_hi), 0.0)
    if sys.is_complex.any():
        if oscillating:  # b(t) = A ρ^t sin(tω + φ): no zero of the sine inside -> an end (with decay)
            same = np.floor((lo * sys.omega + sys.phase) / np.pi) == np.floor(
                (hi * sys.omega + sys.phase) / np.pi
            )
            decay = np.exp(2.0 * (hi - lo) * sys.log_rho)
            bound = np.where(sys.is_complex, np.where(same, np.minimum(sq_lo * decay, sq_hi), 0.0), bound)
        else:
            bound = np.where(sys.is_complex, 0.0, bound)
    if sys.mixed.any():
        if oscillating:  # opposite signs: |b| ≥ |α₁||λ₁|^t − |α₂||λ₂|^t and vice versa
            first = sys.alpha1 * np.exp(hi * sys.log_m1) - sys.alpha2 * np.exp(lo * sys.log_m2)
            second = sys.alpha2 * np.exp(hi * sys.log_m2) - sys.alpha1 * np.exp(lo * sys.log_m1)
            bound = np.where(sys.mixed, np.maximum(np.maximum(first, second), 0.0) ** 2, bound)
        else:
            bound = np.where(sys.mixed, 0.0, bound)
    return (bound @ sys.bias_weight) * (1.0 - _BOUND_MARGIN)


# --------------------------------------------------------------------- the certified search


def _first_crossings(
    sys: _Systems,
    batch_sizes: np.ndarray,
    target: float,
    max_steps: int,
    *,
    tuned: bool,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """First crossings of ``D(t) + N(t)/B ≤ target`` for the configurations of ``sys``.

    With ``tuned`` the result is, per batch size,
    the smallest first crossing over all configurations and the index of the configuration that
    attains it (ties: the smallest index); otherwise the first crossing of every (batch size,
    configuration) pair, shape (batch sizes, configurations). Crossings beyond ``max_steps``
    are reported as ``max_steps + 1``. ``known`` (tuned only) gives, per batch size, a crossing
    step and the configuration that attains it (from a search over part of the grid); it only
    speeds the search up.
    """
    n_configs = sys.a00.shape[0]
    n_batch = batch_sizes.size
    inv_batch = 1.0 / batch_sizes.astype(float)
    never = max_steps + 1
    n_groups = n_batch if tuned else n_batch * n_configs
    # best (step, configuration) per group, packed into one integer so that ties go to the smaller index
    best_key = np.full(n_groups, never * n_configs + n_configs - 1, dtype=np.int64)
    if known is not None:
        best_key = np.minimum(best_key, known[0].astype(np.int64) * n_configs + known[1])
    config_ids = np.arange(n_configs)

    def groups(batch: int, configs: np.ndarray) -> np.ndarray:
        return np.full(configs.size, batch) if tuned else batch * n_configs + configs

    def record(batch: np.ndarray, configs: np.ndarray, t: np.ndarray) -> None:
        group = batch if tuned else batch * n_configs + configs
        np.minimum.at(best_key, group, t.astype(np.int64) * n_configs + configs)

    # ---- phase 1: all configurations at t = 0, 1, 2, 4, ..., max_steps (powers A^t by squaring),
    # dropping a configuration once it can no longer cross for any batch size still open
    pieces = []
    # no configuration can improve on a known crossing: look ahead only up to the latest one
    horizon = float(min(max_steps, (best_key // n_configs).max()))
    b_end, _ = _state(sys, horizon)
    # working set: the configurations ``members`` (a superset of the active ones, compacted lazily)
    members, alive, sub = config_ids, np.ones(n_configs, dtype=bool), sys
    power = (np.ones_like(sys.a00), np.zeros_like(sys.a00), np.zeros_like(sys.a00), np.ones_like(sys.a00))
    prev_t, prev_b, prev_noise = None, None, None
    t = 0.0
    while True:
        m00, m01 = power[0], power[1]
        b = m00 * sub.q + m01 * sub.start1
        v = np.maximum(sub.s00 - (m00 * m00 * sub.s00 + 2.0 * m00 * m01 * sub.s01 + m01 * m01 * sub.s11), 0.0)
        bias, noise = _totals(sub, b, v)
        for i in range(n_batch):  # crossings at the grid point t
            reached = alive & (bias + noise * inv_batch[i] <= target)
            count = int(reached.sum())
            record(np.full(count, i), members[reached], np.full(count, t))
        bounds = [(best_key // n_configs)[groups(i, members)] for i in range(n_batch)]
        if prev_t is not None and t - prev_t >= 2:  # intervals (prev_t, t] that may hold an earlier crossing
            low = _bias_lower_bound(sub, prev_t, t, prev_b, b, oscillating=False)
            maybe = np.zeros(members.size, dtype=bool)
            for i in range(n_batch):
                maybe |= alive & (low + prev_noise * inv_batch[i] <= target) & (prev_t < bounds[i])
            where = np.flatnonzero(maybe)
            if where.size:  # refine the cheap bound with the oscillating coordinates
                low[where] = _bias_lower_bound(sub, prev_t, t, prev_b[where], b[where], rows=where)
            for i in range(n_batch):
                open_ = maybe & (low + prev_noise * inv_batch[i] <= target) & (prev_t < bounds[i])
                count = int(open_.sum())
                pieces.append(
                    (
                        groups(i, members[open_]),
                        members[open_],
                        np.full(count, i),
                        np.full(count, prev_t),
                        np.full(count, t),
                        prev_b[open_],
                        b[open_],
                        prev_noise[open_],
                    )
                )
        if t >= max_steps:
            break
        # can a configuration still cross after t (and by the horizon) for some batch size?
        ahead = _bias_lower_bound(sub, t, horizon, b, b_end[members], oscillating=False)
        still = np.zeros(members.size, dtype=bool)
        for i in range(n_batch):
            still |= alive & (bounds[i] > t) & (ahead + noise * inv_batch[i] <= target)
        if not still.any():
            break
        alive, prev_b, prev_noise, prev_t = still, b, noise, t
        if still.sum() < 0.7 * members.size:  # compact the working set
            members, alive, prev_b, prev_noise = (
                members[still],
                alive[still],
                prev_b[still],
                prev_noise[still],
            )
            power = tuple(entry[still] for entry in power)
            sub = sys.take(members)
        next_t = float(min(max(1.0, 2.0 * t), max_steps))
        if next_t == 1.0:
            power = (sub.a00, sub.a01, sub.a10, sub.a11)
        elif next_t == 2.0 * t:
            m00, m01, m10, m11 = power
            power = (
                m00 * m00 + m01 * m10,
                m00 * m01 + m01 * m11,
                m10 * m00 + m11 * m10,
                m10 * m01 + m11 * m11,
            )
        else:  # the last, partial level: evaluate in closed form
            g_now = _divided_difference(sub, next_t)
            g_before = _divided_difference(sub, next_t - 1.0)
            power = (
                sub.a00 * g_now - sub.det * g_before,
                sub.a01 * g_now,
                sub.a10 * g_now,
                sub.a11 * g_now - sub.det * g_before,
            )
        t = next_t
    # ---- phase 2: branch and bound on the candidate intervals, all at once; every interval
    # carries its configuration, batch size, ends, the b_i at both ends and N at its start
    if pieces:
        group, cfg, batch, lo, hi, b_lo, b_hi, noise_lo = (
            np.concatenate(part) for part in zip(*pieces, strict=True)
        )
    else:
        d = sys.a00.shape[1]
        group = cfg = batch = np.zeros(0, dtype=np.int64)
        lo = hi = noise_lo = np.zeros(0)
        b_lo = b_hi = np.zeros((0, d))
    while group.size:
        keep = lo < (best_key // n_configs)[group]
        if not keep.all():
            group, cfg, batch, lo, hi = group[keep], cfg[keep], batch[keep], lo[keep], hi[keep]
            b_lo, b_hi, noise_lo = b_lo[keep], b_hi[keep], noise_lo[keep]
        if not group.size:
            break
        mid = np.floor((lo + hi) / 2.0)
        sub = sys.take(cfg)
        b_mid, v_mid = _state(sub, mid[:, None])
        bias_mid, noise_mid = _totals(sub, b_mid, v_mid)
        hit = bias_mid + noise_mid * inv_batch[batch] <= target
        record(batch[hit], cfg[hit], mid[hit])
        bound = (best_key // n_configs)[group]
        low_left = (
            _bias_lower_bound(sub, lo[:, None], mid[:, None], b_lo, b_mid) + noise_lo * inv_batch[batch]
        )
        low_right = (
            _bias_lower_bound(sub, mid[:, None], hi[:, None], b_mid, b_hi) + noise_mid * inv_batch[batch]
        )
        left = (mid - lo >= 2) & (low_left <= target) & (lo < bound)
        right = (hi - mid >= 2) & (low_right <= target) & (mid < bound)
        group = np.concatenate([group[left], group[right]])
        cfg = np.concatenate([cfg[left], cfg[right]])
        batch = np.concatenate([batch[left], batch[right]])
        lo, hi = np.concatenate([lo[left], mid[right]]), np.concatenate([mid[left], hi[right]])
        b_lo, b_hi = np.concatenate([b_lo[left], b_mid[right]]), np.concatenate([b_mid[left], b_hi[right]])
        noise_lo = np.concatenate([noise_lo[left], noise_mid[right]])
    steps, index = best_key // n_configs, best_key % n_configs
    if tuned:
        return steps, index
    return steps.reshape(n_batch, n_configs), index.reshape(n_batch, n_configs)


# ----------------------------------------------------------------------------------- public API


def _family(momenta: np.ndarray, ema_decays: np.ndarray) -> tuple[str, np.ndarray]:
    """Which 2×2 family a grid belongs to: momentum (β grid) or EMA (γ grid); plain SGD is either."""
    if np.any(momenta > 0.0) and np.any(ema_decays > 0.0):
        raise ValueError(
            "momentum and ema_decay cannot both be non-zero here: steps to target are computed for "
            "SGD, momentum SGD or SGD with an EMA (each with preconditioning); for momentum and an EMA "
            "together use risk_at_step or risk_curve"
        )
    if np.any(ema_decays > 0.0):
        return "ema", ema_decays
    return "momentum", momenta


def _stable_systems(
    problem: NQM, lrs: np.ndarray, second: np.ndarray, family: str, precond_power: float
) -> tuple[_Systems, np.ndarray]:
    systems, stable = _systems(problem, lrs, second, family=family, precond_power=precond_power)
    index = np.flatnonzero(stable)
    return systems.take(index), index


def steps_to_target(
    problem: NQM,
    target: float,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> int | float:
    """Steps until the exact expected risk first reaches ``target`` (chapter 6).

    Returns the first crossing ``min{t ≥ 0 : E[L(θ_t)] ≤ target}`` as an ``int``, exact also
    when the risk curve is not monotone (see the module docstring), or ``math.inf`` if the risk
    stays above ``target`` for every ``t ≤ max_steps`` — always the case when the steady-state
    risk (:func:`~nqm_lib.theory.steady_state_risk`) is above the target and the curve never dips below it.

    Covers plain SGD, heavy-ball momentum ``β`` or an EMA ``γ`` of the iterates, each with the
    preconditioner ``P = H^p``. Raises ``ValueError`` for invalid arguments (a target ``≤ 0``,
    ``max_steps < 1``, momentum and EMA together) and
    :class:`~nqm_lib.validation.InstabilityError` if the iteration diverges.

    Examples
    --------
    >>> from nqm_lib import NQM
    >>> problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])
    >>> steps_to_target(problem, 0.3, lr=0.01)
    67
    >>> steps_to_target(problem, 0.1, lr=0.01)  # below the steady-state risk 0.169
    inf

    """
    target = _check_target(target)
    max_steps = _check_max_steps(max_steps)
    hp = Hyperparams(lr, batch_size, momentum, ema_decay, precond_power)
    check_stable(problem, hp)
    family, second = _family(np.array([hp.momentum]), np.array([hp.ema_decay]))
    systems, _ = _systems(problem, np.array([hp.lr]), second, family=family, precond_power=hp.precond_power)
    steps, _ = _first_crossings(systems, np.array([hp.batch_size]), target, max_steps, tuned=False)
    value = int(steps[0, 0])
    return math.inf if value > max_steps else value


def steps_to_target_grid(
    problem: NQM,
    target: float,
    batch_sizes: object,
    *,
    lrs: object,
    momenta: object = (0.0,),
    ema_decays: object = (0.0,),
    precond_power: float = 0.0,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> np.ndarray:
    """Steps to target for every batch size and grid point, in one vectorised search (chapter 6).

    Returns a float array of shape ``(len(batch_sizes), len(lrs), len(second))`` where ``second``
    is ``momenta`` or ``ema_decays`` (whichever has non-zero entries; plain SGD if neither). Each
    entry is :func:`steps_to_target` of that setting: an integer value, ``np.inf`` if the target
    is not reached within ``max_steps``, and ``np.nan`` where the setting diverges. Unlike the
    tuned search, every setting is resolved exactly, so grids with many strongly oscillating
    settings (see *Cost* in the module docstring) can take a while.
    """
    target = _check_target(target)
    max_steps = _check_max_steps(max_steps)
    batches = _check_batch_sizes(batch_sizes)
    lrs = _check_grid("lrs", lrs, check_positive)
    momenta = _check_grid("momenta", momenta, check_fraction)
    ema_decays = _check_grid("ema_decays", ema_decays, check_fraction)
    precond_power = check_precond_power(precond_power)
    family, second = _family(momenta, ema_decays)
    systems, index = _stable_systems(problem, lrs, second, family, precond_power)
    result = np.full((batches.size, lrs.size * second.size), np.nan)
    if index.size:
        steps, _ = _first_crossings(systems, batches, target, max_steps, tuned=False)
        result[:, index] = np.where(steps > max_steps, np.inf, steps)
    return result.reshape(batches.size, lrs.size, second.size)


@dataclass(frozen=True)
class TunedSteps:
    """Steps to target with the hyperparameters tuned per batch size (chapter 6).

    Attributes
    ----------
    batch_sizes
        The batch sizes ``B``, as given.
    steps
        The fewest steps to target over the grid, per batch size (``np.inf``: not reached).
    lr, momentum, ema_decay
        The grid point that achieves them (``np.nan`` where the target is not reached); ties go
        to the first grid point in the order ``lrs`` (outer) × ``momenta``/``ema_decays`` (inner),
        as in the paper's notebook.
    precond_power, target
        The preconditioning power ``p`` and the target risk of the search.

    """

    batch_sizes: np.ndarray
    steps: np.ndarray
    lr: np.ndarray
    momentum: np.ndarray
    ema_decay: np.ndarray
    precond_power: float
    target: float


def tuned_steps_to_target(
    problem: NQM,
    target: float,
    batch_sizes: object,
    *,
    lrs: object,
    momenta: object = (0.0,),
    ema_decays: object = (0.0,),
    precond_power: float = 0.0,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> TunedSteps:
    """For every batch size, the fewest steps to target over a grid of hyperparameters (chapter 6).

    Searches ``η ∈ lrs`` and, where given, ``β ∈ momenta`` or ``γ ∈ ema_decays`` (not both),
    with the preconditioning power ``p`` fixed; diverging settings are skipped. The result is
    exactly the minimum of :func:`steps_to_target` over the grid (same counting convention),
    computed for all batch sizes and grid points at once by a certified branch-and-bound search
    rather than one search per setting — the whole grid of the paper's notebook (100 η × 20 β)
    takes a fraction of a second.

    Raises ``ValueError`` for invalid arguments: a target ``≤ 0``, an empty grid or one with an
    invalid value (``lrs`` must be ``> 0``, ``momenta``/``ema_decays`` in ``[0, 1)``), batch sizes
    that are not integers ``≥ 1``, ``p`` outside ``[0, 1]``, ``max_steps < 1``.
    """
    target = _check_target(target)
    max_steps = _check_max_steps(max_steps)
    batches = _check_batch_sizes(batch_sizes)
    lrs = _check_grid("lrs", lrs, check_positive)
    momenta = _check_grid("momenta", momenta, check_fraction)
    ema_decays = _check_grid("ema_decays", ema_decays, check_fraction)
    precond_power = check_precond_power(precond_power)
    family, second = _family(momenta, ema_decays)
    systems, index = _stable_systems(problem, lrs, second, family, precond_power)
    steps = np.full(batches.size, float(max_steps + 1))
    best = np.zeros(batches.size, dtype=np.int64)
    if index.size:
        known = None
        zero = np.flatnonzero(second == 0.0)
        if second.size > 1 and zero.size:  # plain SGD first: a cheap upper bound that speeds things up
            sgd_systems, sgd_index = _stable_systems(problem, lrs, second[zero[:1]], family, precond_power)
            if sgd_index.size:
                sgd_steps, sgd_best = _first_crossings(sgd_systems, batches, target, max_steps, tuned=True)
                position = np.searchsorted(index, sgd_index[sgd_best] * second.size + zero[0])
                known = (sgd_steps, position)
        found, position = _first_crossings(systems, batches, target, max_steps, tuned=True, known=known)
        steps, best = found.astype(float), index[position]
    reached = steps <= max_steps
    grid_lr = np.repeat(lrs, second.size)[best]
    grid_second = np.tile(second, lrs.size)[best]
    zeros = np.zeros(batches.size)
    return TunedSteps(
        batch_sizes=batches,
        steps=np.where(reached, steps, np.inf),
        lr=np.where(reached, grid_lr, np.nan),
        momentum=np.where(reached, grid_second if family == "momentum" else zeros, np.nan),
        ema_decay=np.where(reached, grid_second if family == "ema" else zeros, np.nan),
        precond_power=precond_power,
        target=target,
    )


def critical_batch_size(batch_sizes: object, steps: object, *, factor: float = 2.0) -> float:
    """Batch size at which tuned steps are ``factor`` times the perfect-scaling line (chapter 6).

    The perfect-scaling line is extrapolated from the smallest batch size ``B₀``:
    ``S(B₀) B₀ / B`` (doubling ``B`` halves the steps). The critical batch size is where
    ``S(B) B / (S(B₀) B₀)`` first reaches ``factor``, interpolated linearly in
    ``log B``–``log`` ratio between the two batch sizes that bracket it. Returns ``math.inf``
    if the ratio stays below ``factor``.

    In the model ``S(B) = S_min (1 + B_noise / B)`` of McCandlish et al. (2018) the ratio is
    ``(B + B_noise) / (B₀ + B_noise)``, so the critical batch size is
    ``(factor − 1) B_noise + factor · B₀``: with the default ``factor = 2`` it is
    ``B_noise + 2 B₀``, which is close to ``B_noise`` only when ``B₀ ≪ B_noise``.

    Raises ``ValueError`` unless ``batch_sizes`` are at least two increasing numbers ``> 0``,
    ``steps`` are as many finite numbers ``> 0`` and ``factor > 1``.
    """
    factor = check_positive("factor", factor)
    if factor <= 1.0:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    batches = np.asarray(batch_sizes, dtype=float)
    counts = np.asarray(steps, dtype=float)
    if batches.ndim != 1 or batches.size < 2 or np.any(batches <= 0) or np.any(np.diff(batches) <= 0):
        raise ValueError(f"batch_sizes must be at least two increasing numbers > 0, got {batch_sizes!r}")
    if counts.shape != batches.shape or not np.all(np.isfinite(counts)) or np.any(counts <= 0):
        raise ValueError(
            f"steps must hold one finite number > 0 per batch size ({batches.size}), got {steps!r}"
        )
    ratio = counts * batches / (counts[0] * batches[0])
    above = np.flatnonzero(ratio >= factor)
    if not above.size:
        return math.inf
    k = int(above[0])
    x0, x1 = np.log(batches[k - 1]), np.log(batches[k])
    y0, y1 = np.log(ratio[k - 1]), np.log(ratio[k])
    return float(np.exp(x0 + (np.log(factor) - y0) * (x1 - x0) / (y1 - y0)))


def risk_at_step(
    problem: NQM,
    t: int,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
) -> float:
    """Exact expected risk ``E[L(θ̃_t)]`` at one step ``t``, without iterating (chapter 6).

    Uses ``E[θ̃_t²] = (w_t · x₀)² θ(0)² + σ̃² (S₂₂ − w_tᵀ S w_t)`` with ``w_t = (Aᵀ)^t e`` computed
    by ``numpy.linalg.matrix_power`` (repeated squaring), so it costs ``O(log t)`` and covers every
    combination, momentum and EMA together included. Equal to ``risk_curve(problem, t, ...)[t]``.
    """
    t = check_steps(t, "t")
    hp = Hyperparams(lr, batch_size, momentum, ema_decay, precond_power)
    check_stable(problem, hp)
    if hp.is_plain_sgd:
        per_coordinate = sgd_risk(
            problem.h,
            problem.c,
            problem.theta0,
            t,
            lr=hp.lr,
            batch_size=hp.batch_size,
            precond_power=hp.precond_power,
        )
    else:
        system = linear_system(problem, hp)
        covariance = _stationary_covariance(system)
        read_out = np.linalg.matrix_power(np.swapaxes(system.A, 1, 2), t)[:, :, AVERAGE]  # (Aᵀ)^t e
        bias = read_out @ system.start
        noise = covariance[:, AVERAGE, AVERAGE] - np.einsum("di,dij,dj->d", read_out, covariance, read_out)
        per_coordinate = 0.5 * problem.h * (bias**2 * problem.theta0**2 + system.noise_var * noise)
    return float(np.sum(per_coordinate * problem.counts))


# ------------------------------------------------- the information-theoretic lower bound


def information_bound_risk(problem: NQM, samples: object) -> np.ndarray | float:
    """Smallest expected risk any algorithm can reach from ``samples`` per-example gradients (chapter 6).

    Put the start at random, ``θ(0) − θ* ~ N(0, diag(θ_i(0)²))``: the expected risk of every
    optimiser of the course is unchanged (it depends on ``θ_i(0)²`` only). A gradient query at a
    known point ``θ`` returns ``H(θ − θ*) + ε``, so each example tells ``θ*_i`` up to a Gaussian
    error of variance ``c_i / h_i²``, wherever it is queried. After ``n`` examples the posterior
    variance of ``θ*_i`` is ``1 / (1/θ_i(0)² + n h_i²/c_i)``, whatever the data, and no estimator
    of ``θ*`` built from them — no optimiser, schedule or preconditioner — has a smaller expected
    risk than

        ½ Σ_i h_i / (1/θ_i(0)² + n h_i² / c_i)

    (the posterior mean attains it). Coordinates with ``θ_i(0) = 0`` contribute nothing, and noise-free
    ones (``c_i = 0``) nothing once ``n ≥ 1``. ``samples`` is a number ``n ≥ 0`` or an array of them;
    the result has its shape. Raises ``ValueError`` for a negative or non-finite ``samples``.

    Examples
    --------
    >>> from nqm_lib import NQM
    >>> problem = NQM([1.0], [1.0], theta0=[1.0])
    >>> float(information_bound_risk(problem, 0)), float(information_bound_risk(problem, 1))
    (0.5, 0.25)

    """
    try:
        n = np.asarray(samples, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"samples must be a number >= 0 or an array of them, got {samples!r}") from None
    if not np.all(np.isfinite(n)) or np.any(n < 0):
        raise ValueError(f"samples must be finite numbers >= 0, got {samples!r}")
    per_coordinate = _bound_per_coordinate(problem, n[..., None])
    total = per_coordinate @ (0.5 * problem.h * problem.counts)
    return float(total) if total.ndim == 0 else total


def _bound_per_coordinate(problem: NQM, n: np.ndarray) -> np.ndarray:
    """Posterior variance of every ``θ*_i`` after ``n`` examples (``n`` broadcasts against (d,))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        prior_precision = 1.0 / problem.theta0**2  # inf where θ_i(0) = 0
        noisy = problem.c > 0.0
        information = np.where(noisy, problem.h**2 / np.where(noisy, problem.c, 1.0), np.inf)
        data = np.where(n > 0.0, n * information, 0.0)
        return 1.0 / (prior_precision + data)


def information_bound_steps(problem: NQM, target: float, batch_sizes: object) -> np.ndarray:
    """Fewest steps in which *any* algorithm can reach ``target`` with batches of ``B`` (chapter 6).

    A run of ``t`` steps sees ``n = tB`` examples, so by :func:`information_bound_risk` its
    expected risk is at least ``R(tB)``; the bound is the first ``t ≥ 0`` with
    ``R(tB) ≤ target``, for every batch size. As ``R`` depends on ``t`` and ``B`` only through
    ``tB``, the bound scales perfectly, ``⌈n*/B⌉`` with ``n*`` the examples needed, down to one
    step. Returns an integer array (``int64``) with one entry per batch size; raises
    ``ValueError`` for a target ``≤ 0`` or invalid batch sizes.
    """
    target = _check_target(target)
    batches = _check_batch_sizes(batch_sizes)
    if information_bound_risk(problem, 0.0) <= target:
        return np.zeros(batches.size, dtype=np.int64)
    # examples needed, n*: bracket by doubling, then bisect (R is continuous and decreasing in n)
    high = 1.0
    while information_bound_risk(problem, high) > target:
        high *= 2.0
    low = high / 2.0 if high > 1.0 else 0.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        low, high = (low, mid) if information_bound_risk(problem, mid) <= target else (mid, high)
    steps = np.maximum(np.ceil(high / batches), 1).astype(np.int64)
    # settle the integers by exact evaluation (the bisection only brackets n*)
    for k, batch in enumerate(batches):
        while information_bound_risk(problem, float(steps[k] * batch)) > target:
            steps[k] += 1
        while steps[k] > 1 and information_bound_risk(problem, float((steps[k] - 1) * batch)) <= target:
            steps[k] -= 1
    return steps


# ------------------------------------------------- optimised piecewise-constant schedules

#: Number of pieces of the optimised schedules (as in Zhang et al., 2019).
SCHEDULE_PIECES = 10

# Coordinate search: candidates per piece, sweeps, first half-width (in ln η) and its shrink factor.
_CANDIDATES = 17
_SWEEPS = 14
_FIRST_SPAN = 2.0
_SHRINK = 0.6
# Values within this relative distance count as equal (the search must not follow rounding).
_TIE = 1e-12


def _piece_lengths(steps: np.ndarray, pieces: int) -> np.ndarray:
    """Lengths of ``pieces`` equal pieces of ``steps`` steps (the first ``steps mod pieces`` one longer)."""
    steps = np.asarray(steps, dtype=np.int64)
    extra = (np.arange(pieces) < (steps % pieces)[..., None]).astype(np.int64)
    return (steps // pieces)[..., None] + extra


def _piece_maps(
    h: np.ndarray, noise: np.ndarray, eta: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One piece at a constant rate, ``E[θ_i²] ↦ r_i^{2L} E[θ_i²] + (1 − r_i^{2L}) s``.

    Returns ``(r_i^{2L}, s)`` with ``r_i = 1 − ηh_i`` (computed as ``exp(2L log|r_i|)``) and
    ``s = η c_i / (B h_i (2 − ηh_i))`` (chapter 2's steady state); ``eta`` and ``length``
    broadcast against the coordinates (last axis), ``noise = c/B``.
    """
    x = eta * h
    with np.errstate(divide="ignore", invalid="ignore"):
        log_factor = np.where(x < 0.5, np.log1p(-np.minimum(x, 0.5)), np.log(np.abs(1.0 - x)))
        rho = np.where(length > 0, np.exp(2.0 * length * log_factor), 1.0)
    return rho, eta * noise / (h * (2.0 - x))


@dataclass(frozen=True)
class _ScheduleSearch:
    """One schedule search per row: ``noise = c/B`` per row (rows, d), the rest shared."""

    h: np.ndarray
    noise: np.ndarray
    start: np.ndarray  # θ_i(0)²
    weight: np.ndarray  # ½ h_i n_i
    log_low: float
    log_high: float

    def risk(self, log_lrs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Final risk of schedules ``log_lrs`` (rows, ..., K) with ``lengths`` (rows, K)."""
        extra = log_lrs.ndim - 2
        shape = (self.noise.shape[0],) + (1,) * extra + (self.h.size,)
        moment = np.broadcast_to(self.start, log_lrs.shape[:-1] + (self.h.size,))
        noise = self.noise.reshape(shape)
        for k in range(log_lrs.shape[-1]):
            length = lengths[:, k].reshape((-1,) + (1,) * (extra + 1))
            rho, floor = _piece_maps(self.h, noise, np.exp(log_lrs[..., k, None]), length)
            moment = rho * (moment - floor) + floor
        return moment @ self.weight

    def improve(self, log_lrs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinate search over the pieces from ``log_lrs`` (rows, K); never increases the risk."""
        log_lrs = log_lrs.copy()
        rows, pieces = log_lrs.shape
        grid = np.linspace(-1.0, 1.0, _CANDIDATES)
        centre = _CANDIDATES // 2
        index = np.arange(rows)
        span = _FIRST_SPAN
        for _ in range(_SWEEPS):
            rho, floor = _piece_maps(
                self.h, self.noise[:, None, :], np.exp(log_lrs)[..., None], lengths[..., None]
            )
            later = np.empty_like(rho)  # weight × product of the later pieces' ρ
            acc = np.broadcast_to(self.weight, (rows, self.h.size))
            for k in range(pieces - 1, -1, -1):
                later[:, k] = acc
                acc = acc * rho[:, k]
            moment = np.broadcast_to(self.start, (rows, self.h.size))
            for k in range(pieces):
                candidates = np.clip(log_lrs[:, k, None] + span * grid, self.log_low, self.log_high)
                candidates[:, centre] = log_lrs[:, k]
                rho_k, floor_k = _piece_maps(
                    self.h, self.noise[:, None, :], np.exp(candidates)[..., None], lengths[:, k, None, None]
                )
                after = rho_k * (moment[:, None, :] - floor_k) + floor_k
                value = np.einsum("rgd,rd->rg", after, later[:, k])
                best = _first_minimum(value, centre)
                log_lrs[:, k] = candidates[index, best]
                moment = after[index, best]
            # a joint move of all pieces (the pieces are coupled; one at a time moves slowly)
            shifted = np.clip(log_lrs[:, None, :] + span * grid[None, :, None], self.log_low, self.log_high)
            shifted[:, centre] = log_lrs
            best = _first_minimum(self.risk(shifted, lengths), centre)
            log_lrs = shifted[index, best]
            span *= _SHRINK
        return log_lrs, self.risk(log_lrs, lengths)


def _first_minimum(values: np.ndarray, centre: int) -> np.ndarray:
    """Per row, the index of the best candidate, robust to rounding.

    The current candidate (``centre``) stays unless another is lower by more than the relative
    tolerance ``_TIE``; otherwise the first candidate within that tolerance of the minimum wins.
    """
    low = values.min(axis=1, keepdims=True)
    near = values <= low + _TIE * np.abs(low)
    first = np.argmax(near, axis=1)
    return np.where(near[:, centre], centre, first)


def _schedule_search(problem: NQM, batches: np.ndarray) -> _ScheduleSearch:
    high = 2.0 / float(problem.h.max())
    return _ScheduleSearch(
        h=problem.h,
        noise=problem.c[None, :] / batches[:, None].astype(float),
        start=problem.theta0**2,
        weight=0.5 * problem.h * problem.counts,
        log_low=math.log(high * 1e-9),
        log_high=math.log(high * (1.0 - 1e-6)),
    )


def _check_pieces(pieces: object) -> int:
    value = check_steps(pieces, "pieces")
    if value < 1:
        raise ValueError(f"pieces must be an integer >= 1, got {pieces!r}")
    return value


def _check_piece_lrs(problem: NQM, lrs: object) -> np.ndarray:
    rates = _check_grid("lrs", lrs, check_positive)
    peak = float(rates.max() * problem.h.max())
    if peak >= 2.0:
        raise InstabilityError(
            f"unstable: a piece has η·h_1 = {peak:.4g} ≥ 2; keep every rate < {2 / problem.h.max():.4g}"
        )
    return rates


def piecewise_schedule_risk(problem: NQM, lrs: object, steps: int, *, batch_size: int = 1) -> float:
    """Exact ``E[L(θ_T)]`` of SGD after ``T = steps`` steps of a piecewise-constant schedule (chapter 6).

    The ``K = len(lrs)`` pieces split the ``T`` steps as equally as possible (the first
    ``T mod K`` pieces are one step longer); piece ``k`` uses the rate ``lrs[k]``. Each piece maps
    ``E[θ_i²] ↦ r_i^{2L} E[θ_i²] + (1 − r_i^{2L}) s_i`` with ``r_i = 1 − η h_i`` and ``s_i`` the
    steady state of chapter 2, so the cost does not depend on ``T``. Equal to
    ``schedule_risk_curve(problem, np.repeat(lrs, lengths), batch_size=B)[-1]``. Raises
    ``ValueError`` for invalid arguments and :class:`~nqm_lib.validation.InstabilityError` if
    a rate has ``η h_1 ≥ 2``.
    """
    rates = _check_piece_lrs(problem, lrs)
    steps = check_steps(steps)
    batch = np.array([check_batch_size(batch_size)])
    lengths = _piece_lengths(np.array([steps]), rates.size)
    return float(_schedule_search(problem, batch).risk(np.log(rates)[None, :], lengths)[0])


class PiecewiseSchedule(NamedTuple):
    """An optimised piecewise-constant schedule: its rates, piece lengths and final risk."""

    lrs: np.ndarray
    lengths: np.ndarray
    risk: float


def optimal_piecewise_schedule(
    problem: NQM,
    steps: int,
    *,
    batch_size: int = 1,
    pieces: int = SCHEDULE_PIECES,
    start: object = None,
) -> PiecewiseSchedule:
    """The ``pieces`` rates that minimise SGD's exact risk after ``steps`` steps (chapter 6).

    The pieces have equal lengths (see :func:`piecewise_schedule_risk`) and the rates range over
    ``[10⁻⁹, 1 − 10⁻⁶] × 2/h_1``. The search starts from ``start`` (default: the best constant
    rate of a 50-point log grid) and moves one piece at a time over 17 candidate rates around
    its current value, plus a joint move of all pieces, in 14 sweeps of shrinking width; it never
    accepts a higher risk, so it is never worse than its start (in particular than the best
    constant rate of the grid). It is a local search: the result is an upper bound on the best
    risk ``pieces`` pieces can reach, which the tests compare with brute force.
    Raises ``ValueError`` for invalid arguments.
    """
    steps = check_steps(steps)
    pieces = _check_pieces(pieces)
    batch = np.array([check_batch_size(batch_size)])
    search = _schedule_search(problem, batch)
    lengths = _piece_lengths(np.array([steps]), pieces)
    if start is None:
        grid = np.linspace(search.log_low, search.log_high, 50)
        constant = np.repeat(grid[None, :, None], pieces, axis=2)
        first = int(_first_minimum(search.risk(constant, lengths), 0)[0])
        log_start = constant[:, first]
    else:
        log_start = np.log(_check_piece_lrs(problem, start))[None, :]
        if log_start.shape[1] != pieces:
            raise ValueError(f"start must hold one rate per piece ({pieces}), got {log_start.shape[1]}")
        log_start = np.clip(log_start, search.log_low, search.log_high)
    log_lrs, risk = search.improve(log_start, lengths)
    return PiecewiseSchedule(np.exp(log_lrs[0]), lengths[0], float(risk[0]))


@dataclass(frozen=True)
class ScheduledSteps:
    """Steps to target with an optimised piecewise-constant schedule, per batch size (chapter 6).

    Attributes
    ----------
    batch_sizes
        The batch sizes ``B``.
    steps, lrs
        Steps to target with the optimised schedule of ``pieces`` pieces, and its rates (shape
        ``(len(batch_sizes), pieces)``); ``np.inf`` and ``nan`` where the target is not reached.
    constant_steps, constant_lr
        The same search with one piece: the best constant rate, not restricted to a grid.
    grid_steps, grid_lr
        The best constant rate on the grid ``lrs`` (:func:`tuned_steps_to_target`), where the
        searches start.
    bound_steps
        The information-theoretic lower bound (:func:`information_bound_steps`).
    target
        The target risk.

    """

    batch_sizes: np.ndarray
    steps: np.ndarray
    lrs: np.ndarray
    constant_steps: np.ndarray
    constant_lr: np.ndarray
    grid_steps: np.ndarray
    grid_lr: np.ndarray
    bound_steps: np.ndarray
    target: float


def _bisect_horizon(
    search: _ScheduleSearch,
    target: float,
    log_start: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    pieces: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest horizon in ``(low, high]`` at which the optimised schedule reaches ``target``, per row.

    ``log_start`` (rows, 1) or (rows, pieces) must reach the target at ``high`` (it is checked,
    and ``high`` moved up until it does); every optimisation is warm-started from the last schedule
    that reached the target. Returns the horizons and their schedules (log rates).
    """
    log_best = np.repeat(log_start, pieces, axis=1) if log_start.shape[1] == 1 else log_start.copy()
    while True:  # the start reaches the target at `high` (the same exact risk, another formula)
        late = search.risk(log_best, _piece_lengths(high, pieces)) > target
        if not late.any():
            break
        high = high + late
    low = np.minimum(low, high - 1)
    while True:
        active = high - low > 1
        if not active.any():
            break
        middle = np.where(active, (low + high) // 2, high)
        log_lrs, risk = search.improve(log_best, _piece_lengths(middle, pieces))
        success = active & (risk <= target)
        high = np.where(success, middle, high)
        low = np.where(active & ~success, middle, low)
        log_best = np.where(success[:, None], log_lrs, log_best)
    return high, log_best


def scheduled_steps_to_target(
    problem: NQM,
    target: float,
    batch_sizes: object,
    *,
    pieces: int = SCHEDULE_PIECES,
    lrs: object = PAPER_LRS,
) -> ScheduledSteps:
    """Steps to ``target`` of plain SGD with an optimised piecewise-constant schedule (chapter 6).

    For every batch size, three counts: the best constant rate on the grid ``lrs``
    (:func:`tuned_steps_to_target`); the best constant rate found by the search below with one
    piece, which refines it off the grid; and the schedule of ``pieces`` equal pieces, searched
    from that constant rate. Each search bisects on the horizon ``T`` between its start's count
    and :func:`information_bound_steps` (a count no algorithm can beat), asking whether the rates
    optimised for the risk at ``T`` (:func:`optimal_piecewise_schedule`'s search, warm-started from
    the last schedule that reached the target) reach it. Every reported schedule reaches the target
    exactly at its count, so the schedule never needs more steps than the constant rates, and no
    count undercuts the bound. The search is local and assumes that the optimised risk falls with
    ``T``; all batch sizes are searched at once, in a second or two.
    Raises ``ValueError`` for invalid arguments.
    """
    target = _check_target(target)
    batches = _check_batch_sizes(batch_sizes)
    pieces = _check_pieces(pieces)
    grid = tuned_steps_to_target(problem, target, batches, lrs=lrs)
    bound = information_bound_steps(problem, target, batches)
    reached = np.isfinite(grid.steps)
    nan = np.full(batches.size, np.nan)
    steps = constant_steps = np.full(batches.size, np.inf)
    lrs_found = np.full((batches.size, pieces), np.nan)
    constant_lr = nan
    rows = np.flatnonzero(reached)
    if rows.size:
        search = _schedule_search(problem, batches[rows])
        log_grid = np.clip(np.log(grid.lr[rows])[:, None], search.log_low, search.log_high)
        high = grid.steps[rows].astype(np.int64)
        low = bound[rows] - 1
        high_one, log_one = _bisect_horizon(search, target, log_grid, high, low, 1)
        high_many, log_many = _bisect_horizon(search, target, log_one, high_one, low, pieces)
        constant_steps, steps = constant_steps.copy(), steps.copy()
        constant_steps[rows], steps[rows] = high_one, high_many
        constant_lr = nan.copy()
        constant_lr[rows] = np.exp(log_one[:, 0])
        lrs_found[rows] = np.exp(log_many)
    return ScheduledSteps(
        batch_sizes=batches,
        steps=steps,
        lrs=lrs_found,
        constant_steps=constant_steps,
        constant_lr=constant_lr,
        grid_steps=grid.steps,
        grid_lr=grid.lr,
        bound_steps=bound,
        target=target,
    )
