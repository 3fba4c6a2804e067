"""A piecewise NQM: plain SGD on a quadratic whose ``H`` and ``C`` change with the risk (chapter 10).

A network's NQM changes along training (chapter 10 measures it at several risk levels). The
piecewise NQM cuts the way from the start down to the target into *bands* at levels
``L_1 > L_2 > … > L_K`` (the last one the target) and runs plain SGD, at one learning rate ``η``
for the whole run, on the NQM of band ``k`` (``pieces[k]``) while the expected risk is above
``L_k``. Inside a band the expected second moments ``m_i(t) = E[θ_i(t)²]`` follow SGD's exact
recursion ``m_i(t+1) = (1 − ηh_i)² m_i(t) + η² c_i / B``, whose closed form gives the risk at any
step, so the first step at which it reaches ``L_k`` is found exactly (a certified search, no
loop over steps). There the state is handed to the next band's NQM (:func:`hand_off_moments`):
by **rank of curvature** — the fraction ``q`` of the flattest directions of one band (weighted
by ``counts``) maps to the fraction ``q`` of the flattest of the next — and then rescaled by one
factor so that the next NQM's expected risk equals the risk at the hand-off.
:func:`piecewise_steps_to_target` tunes ``η`` per batch size on a grid over the total steps;
:func:`piecewise_risk_curve` gives the expected risk of one run, step by step.

With one piece, or identical pieces, it is the single NQM of chapter 6
(:func:`~nqm_lib.batch_scaling.tuned_steps_to_target`), step for step. NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .batch_scaling.grids import (
    DEFAULT_MAX_STEPS,
    _check_batch_sizes,
    _check_grid,
    _check_max_steps,
)
from .batch_scaling.piecewise import _log_contraction
from .problem import NQM
from .theory import first_minimum
from .validation import InstabilityError, check_batch_size, check_positive, check_steps

__all__ = [
    "HAND_OFFS",
    "PiecewiseSteps",
    "curvature_at_share",
    "hand_off_moments",
    "piecewise_risk_curve",
    "piecewise_steps_to_target",
]

# A lower bound within this relative distance above a level may still hold a crossing (rounding).
_MARGIN = 1.0 + 1e-12

#: The hand-offs between bands. ``"rank"`` carries the second moments by rank of curvature
#: (the model of chapter 10), ``"restart"`` restarts every band from its own NQM's start
#: ``θ_i(0)²`` (a sensitivity check); both rescale to the risk at the hand-off.
HAND_OFFS = ("rank", "restart")


# --------------------------------------------------------------------------------- the pieces


@dataclass(frozen=True)
class _Piece:
    """One band's NQM with its directions sorted from the flattest to the sharpest."""

    h: np.ndarray
    c: np.ndarray
    start: np.ndarray  # θ_i(0)², the restart hand-off's shape
    weight: np.ndarray  # ½ h_i n_i: risk = weight · m
    edges: np.ndarray  # cumulative share of the counts, 0 … 1 (d + 1 entries)
    order: np.ndarray  # sorted position k holds the NQM's coordinate order[k]


def _piece(problem: NQM) -> _Piece:
    order = np.argsort(problem.h, kind="stable")
    counts = problem.counts[order]
    edges = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
    edges[-1] = 1.0
    return _Piece(
        h=problem.h[order],
        c=problem.c[order],
        start=problem.theta0[order] ** 2,
        weight=0.5 * problem.h[order] * counts,
        edges=edges,
        order=order,
    )


def _rank_transfer(source: _Piece, destination: _Piece, moments: np.ndarray) -> np.ndarray:
    """Second moments (rows, sorted source order) carried to the destination's sorted directions.

    The flattest-to-sharpest order of each piece, weighted by its counts, covers ``[0, 1]``; the
    destination's direction ``l`` (share ``[e_l, e_{l+1}]``) gets the average of the source's
    moments over the same share.
    """
    cuts = np.union1d(source.edges, destination.edges)
    low, length = cuts[:-1], np.diff(cuts)
    keep = length > 0
    low, length = low[keep], length[keep]
    src = np.minimum(np.searchsorted(source.edges, low, side="right") - 1, source.h.size - 1)
    dst = np.minimum(np.searchsorted(destination.edges, low, side="right") - 1, destination.h.size - 1)
    fraction = length / np.diff(destination.edges)[dst]  # exactly 1 where the shares coincide
    starts = np.flatnonzero(np.concatenate([[True], dst[1:] != dst[:-1]]))
    return np.add.reduceat(moments[:, src] * fraction, starts, axis=1)


def _hand_off(
    source: _Piece, destination: _Piece, moments: np.ndarray, risk: np.ndarray, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """The destination's second moments (rows × its sorted directions) at the risks ``risk``.

    Also returns the factor of the rescaling, per row.
    """
    if how == "rank":
        carried = _rank_transfer(source, destination, moments)
    else:
        carried = np.broadcast_to(destination.start, (moments.shape[0], destination.h.size))
    current = carried @ destination.weight
    scale = np.divide(risk, current, out=np.ones_like(risk), where=current > 0)
    return carried * scale[:, None], scale


def _check_pieces(pieces: object, levels: object) -> tuple[list[_Piece], np.ndarray]:
    if isinstance(pieces, NQM) or not isinstance(pieces, Sequence) or len(pieces) == 0:
        raise ValueError(f"pieces must be a non-empty sequence of NQM, got {pieces!r}")
    for k, problem in enumerate(pieces):
        if not isinstance(problem, NQM):
            raise ValueError(f"pieces[{k}] must be an NQM, got {type(problem).__name__}")
    try:
        grid = np.asarray(levels, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"levels must be a sequence of numbers, got {levels!r}") from None
    if grid.ndim != 1 or grid.size != len(pieces):
        raise ValueError(f"levels must hold one risk level per piece ({len(pieces)}), got {levels!r}")
    if not np.all(np.isfinite(grid)) or np.any(grid <= 0) or np.any(np.diff(grid) >= 0):
        raise ValueError(f"levels must be finite, > 0 and strictly decreasing, got {levels!r}")
    return [_piece(p) for p in pieces], grid


def _check_hand_off(hand_off: object) -> str:
    if hand_off not in HAND_OFFS:
        raise ValueError(f"hand_off must be one of {HAND_OFFS}, got {hand_off!r}")
    return str(hand_off)


def hand_off_moments(
    source: NQM, moments: object, destination: NQM, risk: float, *, hand_off: str = "rank"
) -> np.ndarray:
    """Second moments ``E[θ_i²]`` in ``source`` carried to ``destination``'s directions (chapter 10).

    With ``hand_off="rank"`` the directions of each NQM are ordered from the flattest to the
    sharpest and weighted by their ``counts`` (shares of ``[0, 1]``); the destination's direction
    whose share is ``[q₁, q₂]`` gets the average of ``moments`` over the source's directions in
    the same share. With ``"restart"`` the shape is the destination's own start ``θ_i(0)²``.
    Either way the result is then multiplied by one factor so that the destination's expected
    risk ``Σ_i n_i ½ h_i m_i`` equals ``risk``. ``moments`` and the result are in each NQM's own
    coordinate order. Raises ``ValueError`` for moments of the wrong shape or negative ones, a
    risk ``≤ 0`` or an unknown hand-off.
    """
    how = _check_hand_off(hand_off)
    if not isinstance(source, NQM) or not isinstance(destination, NQM):
        raise ValueError("source and destination must be NQM instances")
    values = np.asarray(moments, dtype=float)
    if values.shape != (source.d,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"moments must be {source.d} finite numbers >= 0, got shape {values.shape}")
    risk = check_positive("risk", risk)
    first, second = _piece(source), _piece(destination)
    carried = _hand_off(first, second, values[first.order][None, :], np.array([risk]), how)[0][0]
    result = np.empty_like(carried)
    result[second.order] = carried
    return result


def curvature_at_share(problem: NQM, shares: object) -> np.ndarray:
    """The curvature ``h`` of the direction at each share ``q`` of the flattest-to-sharpest order.

    The order that :func:`hand_off_moments` matches by: ``problem``'s directions sorted from the
    flattest to the sharpest cover ``[0, 1]`` in proportion to their ``counts``, and ``q`` falls
    in one of them (``q = 0.9``: the direction with 90 % of the weight flatter than it, or at the
    boundary, the next sharper one). Raises ``ValueError`` unless every share is in ``[0, 1]``.
    """
    if not isinstance(problem, NQM):
        raise ValueError(f"problem must be an NQM, got {type(problem).__name__}")
    values = np.asarray(shares, dtype=float)
    if not np.all((values >= 0.0) & (values <= 1.0)):
        raise ValueError(f"shares must lie in [0, 1], got {shares!r}")
    piece = _piece(problem)
    index = np.minimum(np.searchsorted(piece.edges, values, side="right") - 1, piece.h.size - 1)
    return piece.h[index]


# --------------------------------------------------------------------- one band, exactly


@dataclass(frozen=True)
class _Band:
    """Rows of SGD runs inside one band: ``risk(t) = floor + Σ_i a_i ρ_i^t`` (``ρ_i = (1 − ηh_i)²``)."""

    a: np.ndarray  # weight_i (m_i(0) − s_i), rows × d
    log_rho: np.ndarray  # log ρ_i, rows × d (−inf where ηh_i = 1)
    floor: np.ndarray  # Σ_i weight_i s_i, rows
    steady: np.ndarray  # s_i = η c_i / (B h_i (2 − ηh_i)), rows × d

    def parts(self, t: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The decaying sums ``P(t) = Σ_{a_i > 0} a_i ρ_i^t`` and ``N(t) = Σ_{a_i < 0} |a_i| ρ_i^t``."""
        a, log_rho = (self.a, self.log_rho) if rows is None else (self.a[rows], self.log_rho[rows])
        with np.errstate(invalid="ignore"):
            terms = a * np.where(t[:, None] == 0, 1.0, np.exp(t[:, None] * log_rho))
        return np.where(terms > 0, terms, 0.0).sum(axis=1), np.where(terms < 0, -terms, 0.0).sum(axis=1)


def _band(piece: _Piece, moments: np.ndarray, lr: np.ndarray, inv_batch: np.ndarray) -> _Band:
    x = lr[:, None] * piece.h
    steady = lr[:, None] * piece.c * inv_batch[:, None] / (piece.h * (2.0 - x))
    return _Band(
        a=piece.weight * (moments - steady),
        log_rho=_log_contraction(x),
        floor=steady @ piece.weight,
        steady=steady,
    )


def _first_crossings(band: _Band, level: float, entry: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Per row, the first step ``0 ≤ t ≤ budget`` with ``risk(t) ≤ level`` (``inf`` if none).

    ``risk = floor + P(t) − N(t)`` with ``P`` and ``N`` non-increasing, so on ``(lo, hi]`` the
    risk is at least ``floor + P(hi) − N(lo)``, and after ``t`` at least ``floor − N(t)``. Steps
    ``1, 2, 4, …`` (capped at the budget) are evaluated until every row has crossed or cannot
    cross any more; the intervals between them whose bound reaches the level are bisected, all
    rows at once, keeping the earliest crossing of each row.
    """
    rows = entry.size
    best = np.where(entry <= level, 0.0, np.inf)
    # intervals (row, lo, hi, P(hi), N(lo)) that may hold an earlier crossing
    pending = [(np.zeros(0, dtype=np.int64),) + (np.zeros(0),) * 4]
    active = np.flatnonzero(~(best == 0.0) & (budget >= 1))
    previous = np.zeros(rows)
    _, negative = band.parts(np.zeros(rows))
    previous_negative = negative
    power = 1.0
    while active.size:
        t = np.minimum(power, budget[active]).astype(float)
        positive, negative = band.parts(t, active)
        risk = band.floor[active] + positive - negative
        lo = previous[active]
        bound = band.floor[active] + positive - previous_negative[active]
        wide = (t - lo >= 2) & (bound <= level * _MARGIN)
        pending.append((active[wide], lo[wide], t[wide], positive[wide], previous_negative[active][wide]))
        hit = risk <= level
        best[active[hit]] = t[hit]
        previous[active], previous_negative[active] = t, negative
        hopeless = band.floor[active] - negative > level
        active = active[~hit & ~hopeless & (t < budget[active])]
        power *= 2.0
    row, lo, hi, p_hi, n_lo = (np.concatenate(column) for column in zip(*pending, strict=True))
    while row.size:
        keep = lo < best[row]
        row, lo, hi, p_hi, n_lo = row[keep], lo[keep], hi[keep], p_hi[keep], n_lo[keep]
        if not row.size:
            break
        mid = np.floor((lo + hi) / 2.0)
        p_mid, n_mid = band.parts(mid, row)
        hit = band.floor[row] + p_mid - n_mid <= level
        np.minimum.at(best, row[hit], mid[hit])
        left = (mid - lo >= 2) & (band.floor[row] + p_mid - n_lo <= level * _MARGIN)
        right = (hi - mid >= 2) & (band.floor[row] + p_hi - n_mid <= level * _MARGIN) & (mid < best[row])
        row = np.concatenate([row[left], row[right]])
        lo, hi = np.concatenate([lo[left], mid[right]]), np.concatenate([mid[left], hi[right]])
        p_hi = np.concatenate([p_mid[left], p_hi[right]])
        n_lo = np.concatenate([n_lo[left], n_mid[right]])
    return best


def _moments_at(band: _Band, moments: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``m_i(t) = ρ_i^t (m_i(0) − s_i) + s_i`` per row (``t`` finite, one per row)."""
    with np.errstate(invalid="ignore"):
        decay = np.exp(t[:, None] * band.log_rho)
    return np.where(t[:, None] == 0, moments, decay * (moments - band.steady) + band.steady)


def _run(
    pieces: list[_Piece], levels: np.ndarray, lr: np.ndarray, inv_batch: np.ndarray, max_steps: int, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """Steps spent in every band and the factor of every hand-off, per run.

    Returns arrays of shape rows × bands (``inf`` from the band a run does not leave) and
    rows × (bands − 1) (``nan`` where the run does not get there). A run whose risk is already
    at or below a band's level on entry spends no step there (and cannot diverge there); a run
    that must take a step in a band where ``η h_max ≥ 2`` diverges.
    """
    rows = lr.size
    spent = np.full((rows, len(pieces)), np.inf)
    factors = np.full((rows, len(pieces) - 1), np.nan)
    alive = np.arange(rows)
    moments = np.broadcast_to(pieces[0].start, (rows, pieces[0].h.size)).copy()
    risk = moments @ pieces[0].weight
    total = np.zeros(rows)
    for k, (piece, level) in enumerate(zip(pieces, levels, strict=True)):
        spent[alive[risk <= level], k] = 0.0
        run = np.flatnonzero(risk > level)
        diverge = lr[alive[run]] * piece.h[-1] >= 2.0
        run = run[~diverge]
        band = _band(piece, moments[run], lr[alive[run]], inv_batch[alive[run]])
        steps = _first_crossings(band, float(level), risk[run], max_steps - total[alive[run]])
        spent[alive[run], k] = steps
        moments[run] = _moments_at(band, moments[run], np.where(np.isfinite(steps), steps, 0.0))
        keep = np.isfinite(spent[alive, k])
        alive, moments = alive[keep], moments[keep]
        total[alive] += spent[alive, k]
        risk = moments @ piece.weight
        if k + 1 < len(pieces):
            moments, factors[alive, k] = _hand_off(piece, pieces[k + 1], moments, risk, how)
    return spent, factors


# ------------------------------------------------------------------------------ public searches


@dataclass(frozen=True)
class PiecewiseSteps:
    """Steps to the last level of a piecewise NQM, ``η`` tuned per batch size (chapter 10).

    Attributes
    ----------
    batch_sizes
        The batch sizes ``B``.
    steps
        The fewest total steps over the grid, per batch size (``np.inf``: not reached).
    lr, lr_index
        The tuned learning rate and its index in ``lrs`` (``nan`` and ``−1`` where not reached);
        ties go to the first grid point.
    band_steps
        Steps spent in each band at the tuned rate, shape ``(len(batch_sizes), len(levels))``.
    hand_off_factors
        At the tuned rate, the factor by which each hand-off rescales the second moments, shape
        ``(len(batch_sizes), len(levels) − 1)``: above 1 where the next band's NQM, with the
        carried shape, holds less risk than was reached (its directions at the same shares are
        flatter where the error sits).
    levels
        The bands' lower ends, the last one the target.

    """

    batch_sizes: np.ndarray
    steps: np.ndarray
    lr: np.ndarray
    lr_index: np.ndarray
    band_steps: np.ndarray
    hand_off_factors: np.ndarray
    levels: np.ndarray


def piecewise_steps_to_target(
    pieces: Sequence[NQM],
    levels: object,
    batch_sizes: object,
    *,
    lrs: object,
    hand_off: str = "rank",
    max_steps: int = DEFAULT_MAX_STEPS,
) -> PiecewiseSteps:
    """Plain SGD's steps to ``levels[-1]`` on a piecewise NQM, ``η`` tuned per ``B`` (chapter 10).

    Band ``k`` runs SGD on ``pieces[k]`` from the step the expected risk first reaches
    ``levels[k − 1]`` to the step it first reaches ``levels[k]``; the first band starts from
    ``pieces[0].theta0`` (the other pieces' starts are used only by ``hand_off="restart"``), and
    the hand-off between bands is :func:`hand_off_moments` at the risk reached. Every
    ``(η, B)`` of ``lrs`` × ``batch_sizes`` is run exactly, at once, and ``η`` is tuned on the
    total steps (:func:`~nqm_lib.theory.first_minimum`: ties go to the first grid point). A rate
    with ``η h_max ≥ 2`` in a band that takes a step diverges and is skipped; a run that does not
    reach a level within ``max_steps`` steps in all counts as not reaching the target. With
    identical pieces the result is :func:`~nqm_lib.batch_scaling.tuned_steps_to_target` of that
    NQM. Raises ``ValueError`` for invalid arguments.
    """
    prepared, grid = _check_pieces(pieces, levels)
    how = _check_hand_off(hand_off)
    batches = _check_batch_sizes(batch_sizes)
    rates = _check_grid("lrs", lrs, check_positive)
    max_steps = _check_max_steps(max_steps)
    lr = np.repeat(rates, batches.size)
    inv_batch = np.tile(1.0 / batches, rates.size)
    spent, factors = _run(prepared, grid, lr, inv_batch, max_steps, how)
    spent = spent.reshape(rates.size, batches.size, grid.size)
    factors = factors.reshape(rates.size, batches.size, grid.size - 1)
    total = np.where(np.isfinite(spent).all(axis=2), spent.sum(axis=2), np.inf)
    best = np.array([first_minimum(column) for column in total.T])
    columns = np.arange(batches.size)
    reached = np.isfinite(total[best, columns])
    return PiecewiseSteps(
        batch_sizes=batches,
        steps=np.where(reached, total[best, columns], np.inf),
        lr=np.where(reached, rates[best], np.nan),
        lr_index=np.where(reached, best, -1),
        band_steps=np.where(reached[:, None], spent[best, columns], np.inf),
        hand_off_factors=np.where(reached[:, None], factors[best, columns], np.nan),
        levels=grid,
    )


def piecewise_risk_curve(
    pieces: Sequence[NQM],
    levels: object,
    steps: int,
    *,
    lr: float,
    batch_size: int = 1,
    hand_off: str = "rank",
) -> tuple[np.ndarray, np.ndarray]:
    """Expected risk of plain SGD on a piecewise NQM at steps ``0 … steps``, and the band of each step.

    The run of :func:`piecewise_steps_to_target` at one ``(η, B)``: the risk at step ``t`` is that
    of the band the run is in at ``t`` (at a hand-off step, the risk reached, which the next band
    keeps); after the last level the run stays in the last piece. Returns ``(risk, band)``, both
    of length ``steps + 1``. Raises ``ValueError`` for invalid arguments and
    :class:`~nqm_lib.validation.InstabilityError` if a band that takes a step has ``η h_max ≥ 2``.
    """
    prepared, grid = _check_pieces(pieces, levels)
    how = _check_hand_off(hand_off)
    steps = check_steps(steps)
    lr = np.array([check_positive("lr", lr)])
    inv_batch = np.array([1.0 / check_batch_size(batch_size)])
    risk_curve, band_of = np.empty(steps + 1), np.zeros(steps + 1, dtype=np.int64)
    moments = prepared[0].start[None, :].copy()
    start, risk = 0, moments @ prepared[0].weight
    risk_curve[0] = risk[0]
    for k, (piece, level) in enumerate(zip(prepared, grid, strict=True)):
        last = k + 1 == len(prepared)
        if risk[0] > level or last:  # the run takes steps in this band (after the last level: to the end)
            if lr[0] * piece.h[-1] >= 2.0 and start < steps:
                raise InstabilityError(f"unstable in band {k}: η·h_max = {lr[0] * piece.h[-1]:.4g} ≥ 2")
            band = _band(piece, moments, lr, inv_batch)
            length = np.inf
            if risk[0] > level:
                length = _first_crossings(band, float(level), risk, np.array([float(steps - start)]))[0]
            end = steps if last or not np.isfinite(length) else start + int(length)
            t = np.arange(1, end - start + 1, dtype=float)
            risk_curve[start + 1 : end + 1] = band.floor[0] + np.exp(t[:, None] * band.log_rho) @ band.a[0]
            band_of[start + 1 : end + 1] = k
            if end == steps:
                break
            moments = _moments_at(band, moments, np.array([length]))
            risk = moments @ piece.weight
            start = end
        moments, _ = _hand_off(piece, prepared[k + 1], moments, risk, how)
    return risk_curve, band_of
