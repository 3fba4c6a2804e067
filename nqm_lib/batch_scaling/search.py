"""Steps to a target risk, exactly, for one setting, a grid, or tuned per batch size (chapter 6).

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

**How it is exact and fast.** The risk of every grid point is known in closed form at any step
(:mod:`nqm_lib.batch_scaling.exact`). The search evaluates every grid point at
``t = 0, 1, 2, 4, 8, …`` at once (``M^t`` by repeated squaring), then refines by branch and bound
with the certified lower bound ``D_low(a, b) + N(a)/B`` of the risk on an interval of steps.
Intervals whose bound exceeds the target, or which start after the best crossing found so far,
are dropped; the rest are halved until single steps are decided by exact evaluation. Nothing is
approximated; the only tolerance is a relative 10⁻¹² on the bounds against rounding.

**Cost.** A tuned search over the paper's grids takes a fraction of a second, because every
setting that cannot beat the best crossing found so far is dropped early. A single setting whose
risk oscillates close to the target for a long time (strongly under-damped momentum, ``1 − β``
tiny) can take seconds: its per-coordinate bounds only become informative on intervals shorter
than the oscillation periods, so many steps must be examined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..dynamics import Hyperparams, check_stable
from ..problem import NQM
from ..validation import check_fraction, check_positive, check_precond_power
from .exact import _bias_lower_bound, _divided_difference, _state, _Systems, _systems, _totals
from .grids import (
    DEFAULT_MAX_STEPS,
    _check_batch_sizes,
    _check_grid,
    _check_max_steps,
    _check_target,
)

__all__ = ["TunedSteps", "steps_to_target", "steps_to_target_grid", "tuned_steps_to_target"]


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

    def group_index(configs: np.ndarray) -> np.ndarray:
        """The group of every (batch size, configuration) pair, shape (batch sizes, configs)."""
        rows = np.arange(n_batch)[:, None]
        return np.broadcast_to(rows, (n_batch, configs.size)) if tuned else rows * n_configs + configs

    def record(batch: np.ndarray, configs: np.ndarray, t: np.ndarray) -> None:
        group = batch if tuned else batch * n_configs + configs
        np.minimum.at(best_key, group, t.astype(np.int64) * n_configs + configs)

    # ---- phase 1: all configurations at t = 0, 1, 2, 4, ..., max_steps (powers A^t by squaring),
    # dropping a configuration once it can no longer cross for any batch size still open; every
    # test is done for all batch sizes at once, as arrays of shape (batch sizes, configurations)
    pieces = []
    # no configuration can improve on a known crossing: look ahead only up to the latest one
    horizon = float(min(max_steps, (best_key // n_configs).max()))
    b_end, _ = _state(sys, horizon)
    # working set: the configurations ``members`` (a superset of the active ones, compacted lazily)
    members, alive, sub = config_ids, np.ones(n_configs, dtype=bool), sys
    power = (np.ones_like(sys.a00), np.zeros_like(sys.a00), np.zeros_like(sys.a00), np.ones_like(sys.a00))
    prev_t, prev_b, prev_noise = None, None, None
    per_batch = inv_batch[:, None]
    t = 0.0
    while True:
        m00, m01 = power[0], power[1]
        b = m00 * sub.q + m01 * sub.start1
        v = np.maximum(sub.s00 - (m00 * m00 * sub.s00 + 2.0 * m00 * m01 * sub.s01 + m01 * m01 * sub.s11), 0.0)
        bias, noise = _totals(sub, b, v)
        batch, config = np.nonzero(alive & (bias + noise * per_batch <= target))  # crossings at t
        record(batch, members[config], np.full(batch.size, t))
        groups = group_index(members)
        bounds = (best_key // n_configs)[groups]
        if prev_t is not None and t - prev_t >= 2:  # intervals (prev_t, t] that may hold an earlier crossing
            low = _bias_lower_bound(sub, prev_t, t, prev_b, b, oscillating=False)
            maybe = np.any(alive & (low + prev_noise * per_batch <= target) & (prev_t < bounds), axis=0)
            where = np.flatnonzero(maybe)
            if where.size:  # refine the cheap bound with the oscillating coordinates
                low[where] = _bias_lower_bound(sub, prev_t, t, prev_b[where], b[where], rows=where)
            batch, config = np.nonzero(maybe & (low + prev_noise * per_batch <= target) & (prev_t < bounds))
            count = batch.size
            pieces.append(
                (
                    groups[batch, config],
                    members[config],
                    batch,
                    np.full(count, prev_t),
                    np.full(count, t),
                    prev_b[config],
                    b[config],
                    prev_noise[config],
                )
            )
        if t >= max_steps:
            break
        # can a configuration still cross after t (and by the horizon) for some batch size?
        ahead = _bias_lower_bound(sub, t, horizon, b, b_end[members], oscillating=False)
        still = np.any(alive & (bounds > t) & (ahead + noise * per_batch <= target), axis=0)
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
    when the risk curve is not monotone (see :mod:`nqm_lib.batch_scaling.search`), or
    ``math.inf`` if the risk stays above ``target`` for every ``t ≤ max_steps`` — always the case
    when the steady-state risk (:func:`~nqm_lib.theory.steady_state_risk`) is above the target and
    the curve never dips below it.

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
    settings (see *Cost* in :mod:`nqm_lib.batch_scaling.search`) can take a while.
    """
    target = _check_target(target)
    max_steps = _check_max_steps(max_steps)
    batches = _check_batch_sizes(batch_sizes)
    lrs = _check_grid("lrs", lrs, check_positive)
    momenta = _check_grid("momenta", momenta, check_fraction)
    ema_decays = _check_grid("ema_decays", ema_decays, check_fraction)
    precond_power = check_precond_power(precond_power)
    family, second = _family(momenta, ema_decays)
    systems, index = _systems(problem, lrs, second, family=family, precond_power=precond_power)
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
    systems, index = _systems(problem, lrs, second, family=family, precond_power=precond_power)
    steps = np.full(batches.size, float(max_steps + 1))
    best = np.zeros(batches.size, dtype=np.int64)
    if index.size:
        known = None
        zero = np.flatnonzero(second == 0.0)
        if second.size > 1 and zero.size:  # plain SGD first: a cheap upper bound that speeds things up
            sgd_systems, sgd_index = _systems(
                problem, lrs, second[zero[:1]], family=family, precond_power=precond_power
            )
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
