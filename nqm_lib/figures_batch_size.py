"""Chapter 6's figures: steps to target against the batch size, hyperparameters tuned per batch size.

:func:`paper_sweep` runs the tuned search of :mod:`nqm_lib.batch_scaling` once for every method
(plain SGD, momentum with β searched, an EMA with γ searched) and preconditioning power on the
problem of Zhang et al. (2019) — ``d = 10⁴``, ``h_i = 1/i`` in 100 bins, ``C = H``,
``E[θ_i(0)²] = 1``, target 0.01 — with the grids of the paper's notebook, and caches it, so that
the interactive :func:`steps_vs_batch_figure` only draws. :func:`batch_size_panels_figure` is the
chapter's static overview. Invalid arguments raise ``ValueError``, which
:func:`nqm_lib.widgets.explore` shows in the plot area.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator

from .batch_scaling import (
    PAPER_DECAYS,
    PAPER_LRS,
    TunedSteps,
    critical_batch_size,
    information_bound_steps,
    tuned_steps_to_target,
)
from .plotting import coordinate_color, new_figure
from .problem import NQM

__all__ = [
    "LINESTYLES",
    "MARKERS",
    "METHODS",
    "PRECOND_POWERS",
    "SWEEP_BATCH_SIZES",
    "TARGET",
    "batch_size_panels_figure",
    "draw_information_bound",
    "draw_steps_vs_batch",
    "effective_lr",
    "paper_bound",
    "paper_sweep",
    "steps_vs_batch_figure",
]

#: Batch sizes of the chapter's sweep, B = 4, 8, ..., 2²⁰. They start at 4, as in the paper's notebook;
#: below that, the best β and γ lie beyond the largest grid value 0.99999.
SWEEP_BATCH_SIZES = 2 ** np.arange(2, 21)
SWEEP_BATCH_SIZES.setflags(write=False)
#: Preconditioning powers p of the sweep (P = H^p), as in the paper's figures.
PRECOND_POWERS = (0.0, 0.25, 0.5, 0.75)
#: The three searches (η only; η and β; η and γ).
METHODS = ("SGD", "momentum", "EMA")
#: The paper's target risk.
TARGET = 0.01

#: Panel titles of :func:`batch_size_panels_figure`.
TITLES = {
    "SGD": r"plain SGD ($\eta$ tuned)",
    "momentum": r"momentum ($\eta$, $\beta$ tuned)",
    "EMA": r"EMA ($\eta$, $\gamma$ tuned)",
}

#: Marker of each method, shared by both figures.
MARKERS = {"SGD": "o", "momentum": "s", "EMA": "^"}
#: Line style of each preconditioning power p, shared by both figures.
LINESTYLES = {0.0: "-", 0.25: "--", 0.5: "-.", 0.75: ":"}


def paper_sweep(target: float = TARGET) -> Mapping[tuple[str, float], TunedSteps]:
    """Tuned steps to ``target`` for every method and power ``p``, on the paper's problem (cached).

    Keys are ``(method, p)`` with ``method`` in :data:`METHODS` and ``p`` in :data:`PRECOND_POWERS`;
    values are :class:`~nqm_lib.batch_scaling.TunedSteps` over :data:`SWEEP_BATCH_SIZES`. Every
    method searches the same η grid (:data:`~nqm_lib.batch_scaling.PAPER_LRS`, the notebook's
    grid for momentum), so that momentum and EMA, whose β and γ grids contain 0, can never do
    worse than plain SGD; β and γ range over :data:`~nqm_lib.batch_scaling.PAPER_DECAYS`.
    """
    return _cached_sweep(float(target))


@lru_cache(maxsize=4)
def _cached_sweep(target: float) -> Mapping[tuple[str, float], TunedSteps]:
    problem = NQM.paper_spectrum()
    grids = {"SGD": {}, "momentum": {"momenta": PAPER_DECAYS}, "EMA": {"ema_decays": PAPER_DECAYS}}
    sweep = {
        (method, p): tuned_steps_to_target(
            problem, target, SWEEP_BATCH_SIZES, lrs=PAPER_LRS, precond_power=p, **grids[method]
        )
        for p in PRECOND_POWERS
        for method in METHODS
    }
    return MappingProxyType(sweep)


def paper_bound(target: float = TARGET) -> np.ndarray:
    """The information-theoretic lower bound on the steps to ``target`` at every sweep batch size.

    :func:`~nqm_lib.batch_scaling.information_bound_steps` on the paper's problem, over
    :data:`SWEEP_BATCH_SIZES` (cached, read-only): no algorithm that sees ``B`` noisy examples per
    step can reach the target in fewer steps.
    """
    return _cached_bound(float(target))


@lru_cache(maxsize=4)
def _cached_bound(target: float) -> np.ndarray:
    bound = information_bound_steps(NQM.paper_spectrum(), target, SWEEP_BATCH_SIZES)
    bound.setflags(write=False)
    return bound


def draw_information_bound(
    ax: Axes, target: float = TARGET, *, label: str | None = "lower bound (any algorithm)"
) -> None:
    """Draw :func:`paper_bound` as a black dashed line against the batch size (log–log)."""
    ax.loglog(SWEEP_BATCH_SIZES, paper_bound(target), color="black", ls=(0, (4, 2)), lw=1.2, label=label)


def effective_lr(result: TunedSteps) -> np.ndarray:
    """The tuned effective learning rate ``η / (1 − β)`` per batch size (``η`` without momentum)."""
    return result.lr / (1.0 - np.nan_to_num(result.momentum))


def draw_steps_vs_batch(
    ax: Axes,
    result: TunedSteps,
    *,
    color: str = "black",
    ls: str = "-",
    marker: str = "o",
    label: str | None = None,
    show_critical: bool = True,
) -> float:
    """Draw tuned steps against ``B`` on log–log axes; mark and return the critical batch size.

    With ``show_critical`` a star marks the batch size where the steps are twice the perfect-scaling
    line through the smallest batch size (:func:`~nqm_lib.batch_scaling.critical_batch_size`).
    """
    reached = np.isfinite(result.steps)
    batches, steps = result.batch_sizes[reached], result.steps[reached]
    ax.loglog(batches, steps, color=color, ls=ls, marker=marker, ms=3.5, lw=1.6, label=label)
    critical = _critical(result)
    if show_critical and np.isfinite(critical):
        steps_there = np.exp(np.interp(np.log(critical), np.log(batches), np.log(steps)))
        ax.plot(critical, steps_there, "*", ms=13, color=color, mec="black", mew=0.6, zorder=5)
    ax.set_xlabel("batch size $B$")
    ax.set_ylabel("steps to target (tuned)")
    return critical


def _critical(result: TunedSteps) -> float:
    """Critical batch size over the batch sizes where the target is reached (``nan`` if < 2)."""
    reached = np.isfinite(result.steps)
    if reached.sum() < 2:
        return math.nan
    return critical_batch_size(result.batch_sizes[reached], result.steps[reached])


def _check_selection(name: str, values: Sequence[object], allowed: Sequence[object]) -> tuple:
    chosen = tuple(values)
    if not chosen:
        raise ValueError(f"select at least one entry of {name} (from {', '.join(map(str, allowed))})")
    for value in chosen:
        if value not in allowed:
            raise ValueError(f"{name} must contain only values from {tuple(allowed)}, got {value!r}")
    return chosen


def steps_vs_batch_figure(
    methods: Sequence[str] = ("SGD", "momentum", "EMA"),
    precond_powers: Sequence[float] = (0.0,),
    show_critical: bool = True,
    *,
    target: float = TARGET,
) -> Figure:
    """Chapter 6 (interactive): tuned steps to target and tuned learning rates against ``B``.

    Top: the fewest steps to ``target`` over the grid, per batch size, for every selected
    method (colour and marker) × preconditioning power (line style), with a grey slope −1 line
    (perfect scaling) through the smallest batch size of the first curve, the information-theoretic
    lower bound (black dashes, :func:`paper_bound`) and, with ``show_critical``, a star at each
    critical batch size. Bottom: the tuned effective learning rate ``η/(1 − β)`` (``η`` for SGD
    and EMA). The legend, to the right of the top panel, has one entry per selected method and
    one per power. The axes hold every curve of the sweep, whatever is selected. The sweep is
    computed once (:func:`paper_sweep`), so redrawing is instant.
    """
    methods = _check_selection("methods", methods, METHODS)
    powers = _check_selection("precond_powers", precond_powers, PRECOND_POWERS)
    sweep = paper_sweep(target)
    fig, (ax, lower) = new_figure(nrows=2, height=6.4)
    first = sweep[methods[0], powers[0]]
    line = first.steps[0] * first.batch_sizes[0] / first.batch_sizes.astype(float)
    ax.loglog(first.batch_sizes, line, color="0.6", lw=1, label="perfect scaling")
    draw_information_bound(ax, target, label="lower bound")
    for method in methods:
        color = coordinate_color(METHODS.index(method))
        for p in powers:
            result = sweep[method, p]
            style = {"color": color, "ls": LINESTYLES[p], "marker": MARKERS[method]}
            draw_steps_vs_batch(ax, result, show_critical=show_critical, **style)
            lower.loglog(result.batch_sizes, effective_lr(result), ms=3.5, lw=1.4, **style)
    # one legend entry per method (colour, marker) and per power (line style), not per curve
    for method in methods:
        color = coordinate_color(METHODS.index(method))
        ax.plot([], [], color=color, marker=MARKERS[method], ms=3.5, lw=1.6, label=method)
    for p in powers:
        ax.plot([], [], color="0.3", ls=LINESTYLES[p], lw=1.6, label=f"p = {p:g}")
    # fixed axes: what every selection could show, so that toggling a curve moves nothing else
    everything = [sweep[key] for key in sweep]
    top = max(float(np.nanmax(np.where(np.isfinite(r.steps), r.steps, np.nan))) for r in everything)
    rates = np.concatenate([effective_lr(r) for r in everything])
    margin = 2.0 ** 0.5
    for axis in (ax, lower):
        axis.set_xlim(SWEEP_BATCH_SIZES[0] / margin, SWEEP_BATCH_SIZES[-1] * margin)
    ax.set_ylim(0.5, 2.0 * top)
    lower.set_ylim(np.nanmin(rates) / margin, np.nanmax(rates) * margin)
    ax.set_xlabel("")
    title = "stars: critical $B$" if show_critical else "tuned per batch size"
    ax.set_title(f"Steps to $\\mathbb{{E}}[L(\\theta_t)] \\leq {target:g}$ ({title})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    for axis in (ax.yaxis, lower.yaxis):
        axis.set_major_locator(LogLocator(numticks=5))  # every other decade: fewer labels to lay out
    lower.set_xlabel("batch size $B$")
    lower.set_ylabel("tuned $\\eta/(1-\\beta)$")
    lower.set_title("Tuned (effective) learning rate")
    return fig


def batch_size_panels_figure(*, target: float = TARGET) -> Figure:
    """Chapter 6: one panel per method (stacked), one curve per power ``p`` (colour).

    Plain SGD at ``p = 0`` is drawn as a wide grey line in every panel (for reference in the momentum
    and EMA panels; under the ``p = 0`` curve in the first), the information-theoretic
    lower bound (:func:`paper_bound`) as black dashes in all three, and stars mark the critical
    batch sizes. One legend, to the right of the top panel, serves all three.
    """
    sweep = paper_sweep(target)
    fig, axes = new_figure(nrows=3, height=8.4)
    reference = sweep["SGD", 0.0]
    for ax, method in zip(axes, METHODS, strict=True):
        for index, p in enumerate(PRECOND_POWERS):
            style = {"color": coordinate_color(index), "ls": LINESTYLES[p], "marker": "o"}
            draw_steps_vs_batch(ax, sweep[method, p], label=f"$p = {p:g}$", **style)
        grey = {"color": "0.55", "lw": 2.5, "alpha": 0.6, "zorder": 0}
        ax.loglog(reference.batch_sizes, reference.steps, label="SGD, $p = 0$", **grey)
        draw_information_bound(ax, target)
        ax.set_title(TITLES[method])
        ax.set_ylabel("tuned steps")
        if method != METHODS[-1]:
            ax.set_xlabel("")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    top = max(np.nanmax(sweep[key].steps) for key in sweep)
    for ax in axes:
        ax.set_ylim(0.5, 2.0 * top)
    return fig
