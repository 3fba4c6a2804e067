"""The exact risk of a tuned optimiser at any step, without iterating (chapter 6).

Every optimiser whose steps to target :mod:`nqm_lib.batch_scaling` searches (plain SGD,
heavy-ball momentum, an EMA of the iterates, each with the preconditioner ``P = H^p``) moves each
coordinate as a 2×2 linear system ``y' = M y + η ε̃ × (a fixed vector)`` (state ``(θ, ηv)`` for
momentum, ``(θ̃, θ)`` for an EMA; plain SGD is either with ``β = 0`` or ``γ = 0``). With
``x = η h^{1−p}`` the matrix ``M`` depends only on ``x`` and ``β`` (or ``γ``). By Cayley–Hamilton
``M^t = G(t) M − det(M) G(t−1) I`` with the divided difference ``G(t) = (λ₁^t − λ₂^t)/(λ₁ − λ₂)``
of the eigenvalues, evaluated here in a form that stays accurate at and near repeated eigenvalues
(critical damping). So the reported coordinate's deterministic factor ``b(t)`` and its noise part
``V(t) = S₀₀ − w_t S w_tᵀ`` (``S`` the stationary covariance, ``w_t`` the first row of ``M^t``)
cost a few elementary functions at *any* ``t``, and

    E[L(θ_t)] = D(t) + N(t) / B,   D(t) = Σ_i n_i ½ h_i θ_i(0)² b_i(t)²,
                                   N(t) = Σ_i n_i ½ h_i η² h_i^{−2p} c_i V_i(t),

with ``D`` and ``N`` independent of ``B``. For these time-invariant systems ``N`` is
non-decreasing (a partial sum of squares of the impulse response). On an interval ``[a, b]`` of
steps the risk is at least ``D_low(a, b) + N(a)/B``, where ``D_low`` sums certified lower bounds of
the ``b_i(t)²`` (two real eigenvalues of one sign: at most one sign change and no interior minimum
of ``|b_i|``; complex eigenvalues ``b_i(t) = A ρ^t sin(ωt + φ)``, whose phase range is known; real
ones of opposite signs, term by term); :mod:`nqm_lib.batch_scaling.search` prunes with it.

:func:`~nqm_lib.batch_scaling.risk_at_step` computes the same risk for any combination
(momentum and EMA together included) with matrix powers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..dynamics import AVERAGE, Hyperparams, check_stable, linear_system
from ..formulas import sgd_risk
from ..problem import NQM
from ..theory import _stationary_covariance
from ..validation import check_steps

__all__ = ["risk_at_step", "risk_at_steps"]

# Relative safety margin of the certified lower bounds (against rounding in the exact values).
_BOUND_MARGIN = 1e-12


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
    """2×2 systems for the stable ``(η, β)`` (``family='momentum'``) or ``(η, γ)`` (``'ema'``) pairs.

    The grid's configurations are ordered row-major (``lrs`` outer); returns the systems of the
    stable ones and their indices in that order (an unstable configuration diverges, and its
    entries would be inf or nan).
    """
    eta = np.repeat(lrs, second.size)
    coef = np.tile(second, lrs.size)
    # the stiffest coordinate decides: η h_i < limit for every i iff η max(h) < limit (rounding is monotone)
    x_max = eta * float(np.max(problem.h ** (1.0 - precond_power)))
    index = np.flatnonzero(x_max < (2.0 * (1.0 + coef) if family == "momentum" else 2.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        systems = _systems_unchecked(
            problem, eta[index], coef[index], family=family, precond_power=precond_power
        )
    return systems, index


def _systems_unchecked(
    problem: NQM, eta: np.ndarray, coef: np.ndarray, *, family: str, precond_power: float
) -> _Systems:
    """The systems of the configurations ``(eta[k], coef[k])`` (β or γ), stable or not."""
    h_eff = problem.h ** (1.0 - precond_power)
    eta = eta[:, None]
    coef = coef[:, None] * np.ones((1, problem.d))
    x = eta * h_eff[None, :]
    if family == "momentum":  # state (θ, ηv): θ' = (1 − x)θ − βu − ηε̃, u' = xθ + βu + ηε̃
        a00, a01, a10, a11 = 1.0 - x, -coef, x, coef
        root = np.sqrt(coef)
        disc = ((1.0 - root) ** 2 - x) * ((1.0 + root) ** 2 - x) / 4.0  # factored: accurate near 0
        start = (1.0, 0.0)
        # stationary covariance per unit noise input (−1, 1) (S = A S Aᵀ + g gᵀ, solved symbolically)
        scale = 1.0 / ((1.0 - coef) * (2.0 + 2.0 * coef - x))
        s00, s01, s11 = (1.0 + coef) * scale / x, -scale, 2.0 * scale
    else:  # state (θ̃, θ): θ' = (1 − x)θ − ηε̃, θ̃' = γθ̃ + (1 − γ)θ'
        a00, a01, a10, a11 = coef, (1.0 - coef) * (1.0 - x), np.zeros_like(x), 1.0 - x
        disc = ((coef - 1.0 + x) / 2.0) ** 2
        start = (1.0, 1.0)
        # stationary covariance per unit noise input (−(1 − γ), −1), solved symbolically
        s11 = 1.0 / (x * (2.0 - x))
        s01 = (1.0 - coef) * s11 / (1.0 - coef + coef * x)
        s00 = s01 * (1.0 + coef - coef * x) / (1.0 + coef)
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
    return systems


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
    hp = {"momentum": momentum, "ema_decay": ema_decay, "precond_power": precond_power}
    return float(risk_at_steps(problem, [t], lr=lr, batch_size=batch_size, **hp)[0])


def risk_at_steps(
    problem: NQM,
    steps: object,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    ema_decay: float = 0.0,
    precond_power: float = 0.0,
) -> np.ndarray:
    """:func:`risk_at_step` at each step of ``steps`` (integers ``≥ 0``), the linear system set up once.

    Returns a float array of the shape of ``steps``. Raises ``ValueError`` for invalid arguments
    and :class:`~nqm_lib.validation.InstabilityError` if the iteration diverges.
    """
    try:
        requested = np.asarray(steps)
    except (TypeError, ValueError):
        raise ValueError(f"steps must be an array of integers >= 0, got {steps!r}") from None
    times = [check_steps(value.item(), "steps") for value in requested.ravel()]
    hp = Hyperparams(lr, batch_size, momentum, ema_decay, precond_power)
    check_stable(problem, hp)
    risks = np.empty(len(times))
    if hp.is_plain_sgd:
        for k, t in enumerate(times):
            per_coordinate = sgd_risk(
                problem.h,
                problem.c,
                problem.theta0,
                t,
                lr=hp.lr,
                batch_size=hp.batch_size,
                precond_power=hp.precond_power,
            )
            risks[k] = np.sum(per_coordinate * problem.counts)
        return risks.reshape(requested.shape)
    system = linear_system(problem, hp)
    covariance = _stationary_covariance(system)
    transposed = np.swapaxes(system.A, 1, 2)
    for k, t in enumerate(times):
        read_out = np.linalg.matrix_power(transposed, t)[:, :, AVERAGE]  # (Aᵀ)^t e
        bias = read_out @ system.start
        noise = covariance[:, AVERAGE, AVERAGE] - np.einsum("di,dij,dj->d", read_out, covariance, read_out)
        per_coordinate = 0.5 * problem.h * (bias**2 * problem.theta0**2 + system.noise_var * noise)
        risks[k] = np.sum(per_coordinate * problem.counts)
    return risks.reshape(requested.shape)
