"""Optimised piecewise-constant learning-rate schedules of plain SGD and their steps to target (chapter 6).

:func:`~nqm_lib.batch_scaling.scheduled_steps_to_target` replaces SGD's constant rate by a
piecewise-constant schedule of :data:`~nqm_lib.batch_scaling.SCHEDULE_PIECES` equal pieces
optimised for every horizon (:func:`~nqm_lib.batch_scaling.optimal_piecewise_schedule`, as in
Zhang et al., 2019); under a schedule the risk stays exact, each piece being one affine map of every
coordinate's second moment (:func:`~nqm_lib.batch_scaling.piecewise_schedule_risk`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..problem import NQM
from ..validation import InstabilityError, check_batch_size, check_positive, check_steps
from .bound import information_bound_steps
from .grids import PAPER_LRS, _check_batch_sizes, _check_grid, _check_target
from .search import tuned_steps_to_target

__all__ = [
    "SCHEDULE_PIECES",
    "PiecewiseSchedule",
    "ScheduledSteps",
    "optimal_piecewise_schedule",
    "piecewise_schedule_risk",
    "scheduled_steps_to_target",
]

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


def _log_contraction(x: np.ndarray) -> np.ndarray:
    """``log (1 − x)²`` for ``x = ηh``, accurate for small ``x`` (``−inf`` at ``x = 1``).

    One SGD step multiplies a coordinate's second moment (without noise) by ``(1 − x)²``.
    """
    small = x < 0.5  # log1p is accurate there; elsewhere 1 − x is exact and log|1 − x| as good
    log_factor = np.empty_like(x)
    with np.errstate(divide="ignore"):
        np.log1p(-x, out=log_factor, where=small)
        np.log(np.abs(1.0 - x), out=log_factor, where=~small)
    return 2.0 * log_factor


def _piece_maps(
    h: np.ndarray, noise: np.ndarray, eta: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One piece at a constant rate, ``E[θ_i²] ↦ r_i^{2L} E[θ_i²] + (1 − r_i^{2L}) s``.

    Returns ``(r_i^{2L}, s)`` with ``r_i = 1 − ηh_i`` (computed as ``exp(2L log|r_i|)``) and
    ``s = η c_i / (B h_i (2 − ηh_i))`` (chapter 2's steady state); ``eta`` and ``length``
    broadcast against the coordinates (last axis), ``noise = c/B``.
    """
    x = eta * h
    with np.errstate(invalid="ignore"):
        rho = np.exp(length * _log_contraction(x))
    if not np.all(length > 0):
        rho = np.where(length > 0, rho, 1.0)
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

    def rows(self, index: np.ndarray) -> _ScheduleSearch:
        """The same search for the rows ``index`` only."""
        return dataclasses.replace(self, noise=self.noise[index])

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
    high = high.copy()
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
        rows = np.flatnonzero(active)  # only the rows still searching (each row is independent)
        middle = (low[rows] + high[rows]) // 2
        log_lrs, risk = search.rows(rows).improve(log_best[rows], _piece_lengths(middle, pieces))
        success = risk <= target
        high[rows[success]] = middle[success]
        low[rows[~success]] = middle[~success]
        log_best[rows[success]] = log_lrs[success]
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
