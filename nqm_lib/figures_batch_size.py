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
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from .batch_scaling import (
    PAPER_DECAYS,
    PAPER_LRS,
    ScheduledSteps,
    TunedSteps,
    critical_batch_size,
    information_bound_steps,
    steps_to_target,
    tuned_steps_to_target,
)
from .formulas import sgd_risk
from .noise_scale import NoiseScales
from .plotting import coordinate_color, label_risk_axes, new_figure, plot_simulation, plot_theory
from .problem import NQM
from .simulation import SimulationResult
from .theory import first_minimum, risk_curve

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
    "examples_vs_steps_figure",
    "first_crossing_figure",
    "noise_scale_figure",
    "paper_bound",
    "paper_sweep",
    "schedules_figure",
    "sgd_scaling_figure",
    "six_methods_figure",
    "steps_vs_batch_figure",
    "steps_vs_lr_figure",
    "tuned_lr_figure",
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
    "SGD": "plain SGD (η tuned)",
    "momentum": "momentum (η, β tuned)",
    "EMA": "EMA (η, γ tuned)",
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
            draw_steps_vs_batch(ax, sweep[method, p], label=f"p = {p:g}", **style)
        grey = {"color": "0.55", "lw": 2.5, "alpha": 0.6, "zorder": 0}
        ax.loglog(reference.batch_sizes, reference.steps, label="SGD, p = 0", **grey)
        draw_information_bound(ax, target)
        ax.set_title(TITLES[method])
        ax.set_ylabel("tuned steps")
        ax.set_xlabel("batch size B" if method == METHODS[-1] else "")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    top = max(np.nanmax(sweep[key].steps) for key in sweep)
    for ax in axes:
        ax.set_ylim(0.5, 2.0 * top)
        _decades_only(ax)
    return fig


# ------------------------------------------------------------------ chapter 6's static figures
# Plain functions of their data: the chapter computes what its text explains and passes it here.


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _decade_label(value: float, _position: int) -> str:
    """``10ⁿ`` in plain text (Unicode superscripts) for a power of ten, else nothing."""
    exponent = math.log10(value) if value > 0 else math.nan
    if not math.isfinite(exponent) or abs(exponent - round(exponent)) > 1e-9:
        return ""
    return "1" if round(exponent) == 0 else "10" + str(round(exponent)).translate(_SUPERSCRIPTS)


def _decades_only(ax: Axes) -> None:
    """Log axes of ``ax`` with decade ticks labelled ``10ⁿ`` in plain text and no minor ticks.

    A decade per label is enough to read these figures, and plain-text labels draw several times
    faster than Matplotlib's default mathtext ``$10^{n}$`` (which dominates drawing a log–log plot).
    """
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_minor_locator(NullLocator())
            axis.set_major_formatter(FuncFormatter(_decade_label))


def _steps_at(result: TunedSteps, batch_size: float) -> float:
    """The tuned steps at ``batch_size``, interpolated on log–log axes (as the critical batch size is)."""
    return float(np.exp(np.interp(np.log(batch_size), np.log(result.batch_sizes), np.log(result.steps))))


def first_crossing_figure(
    problem: NQM,
    target: float,
    *,
    sgd: Mapping[str, float],
    momentum: Mapping[str, float],
    window: tuple[int, int],
    bisection_step: int,
) -> Figure:
    """Chapter 6: the steps to target as a first crossing, on a monotone and an oscillating curve.

    Top: the exact risk of plain SGD with the settings ``sgd`` (``lr``, ``batch_size``) on log–log
    axes up to four times its first crossing, which a dotted line marks. Bottom: the exact risk of
    momentum with the settings ``momentum`` (``lr``, ``batch_size``, ``momentum``) over the steps
    ``window``, with its first crossing (star) and ``bisection_step`` (square), where a bisection
    for the last step above the target lands.
    """
    fig, (top, bottom) = new_figure(nrows=2, height=6.4)
    first = steps_to_target(problem, target, **sgd)
    t = np.unique(np.geomspace(1, 4 * first, 400).astype(int))
    per_coordinate = sgd_risk(problem.h, problem.c, problem.theta0, t, **sgd)
    top.loglog(t, per_coordinate @ problem.counts, color="black", lw=2,
               label=f"SGD, B = {sgd['batch_size']:g}, η = {sgd['lr']:.4f}")  # fmt: skip
    top.axhline(target, color="#d62728", ls="--", lw=1, label=f"target {target:g}")
    top.axvline(first, color="0.5", ls=":", lw=1, label=f"first crossing: {first:,}")
    label_risk_axes(top)
    top.set_title("A monotone curve: one crossing")
    top.legend()
    curve = risk_curve(problem, window[1], **momentum)
    crossing = steps_to_target(problem, target, **momentum)
    steps = np.arange(window[0], window[1] + 1)
    bottom.plot(steps, curve[steps], "o-", ms=3, color="black", lw=1, label="exact risk")
    bottom.axhline(target, color="#d62728", ls="--", lw=1, label=f"target {target:g}")
    bottom.plot(crossing, curve[crossing], "*", ms=14, color="#2ca02c", label=f"first crossing: {crossing}")
    bottom.plot(bisection_step, curve[bisection_step], "s", ms=8, mfc="none", color="#9467bd",
                label=f"bisection lands here: {bisection_step}")  # fmt: skip
    label_risk_axes(bottom)
    bottom.set_title(
        f"Momentum, B = {momentum['batch_size']:g}, η = {momentum['lr']:.3g}, β = {momentum['momentum']:.4f}"
    )
    bottom.legend()
    for ax in (top, bottom):
        _decades_only(ax)
    return fig


def steps_vs_lr_figure(
    lrs: np.ndarray, steps: np.ndarray, batch_sizes: Sequence[int], *, stability_limit: float
) -> Figure:
    """Chapter 6: plain SGD's steps to target against η, one curve per batch size.

    ``steps[k]`` holds the steps to target of ``batch_sizes[k]`` at every rate of ``lrs``
    (``inf``/``nan`` where the target is not reached); a dot marks each curve's best η (ties: the
    first) and a dotted line the stability limit ``2/h_1``.
    """
    fig, (ax,) = new_figure(height=4.2)
    for index, (batch, row) in enumerate(zip(batch_sizes, steps, strict=True)):
        color = coordinate_color(index)
        ax.loglog(lrs, row, color=color, lw=1.8, label=f"B = {batch:,}")
        best = first_minimum(np.nan_to_num(row, nan=np.inf))
        ax.plot(lrs[best], row[best], "o", color=color)
    ax.axvline(stability_limit, color="black", ls=":", lw=1)
    ax.set_xlim(3e-3, 3)
    ax.set_ylim(4e3, 1e7)
    ax.set_xlabel("learning rate η (dotted: stability limit 2/h₁)")
    ax.set_ylabel("steps to target T")
    ax.set_title("Plain SGD: steps to the target against η (dots: best η per B)")
    ax.legend()
    _decades_only(ax)
    return fig


def sgd_scaling_figure(result: TunedSteps, *, noise_free_steps: int, b_noise: float) -> Figure:
    """Chapter 6: tuned SGD steps against ``B`` with perfect scaling, its double, and three floors.

    Draws ``result`` (tuned steps per batch size), the perfect-scaling line through the smallest
    batch size and twice it, the tuned steps of noise-free gradient descent
    (``noise_free_steps``), the information-theoretic lower bound (:func:`paper_bound`),
    McCandlish's model ``S_min(1 + B_noise/B)`` with ``S_min = noise_free_steps`` and ``b_noise``,
    and a star at the critical batch size.
    """
    batches, steps = result.batch_sizes, result.steps
    fig, (ax,) = new_figure(height=4.6)
    ax.loglog(batches, steps, "o-", color="black", lw=2, ms=4, label="tuned SGD (exact)")
    perfect = steps[0] * batches[0] / batches
    ax.loglog(batches, perfect, color="0.6", lw=1, label=f"perfect scaling from B = {batches[0]}")
    ax.loglog(batches, 2 * perfect, color="0.6", lw=1, ls="--", label="twice that")
    ax.axhline(noise_free_steps, color="#1f77b4", ls=":", label=f"noise-free GD: {noise_free_steps:,} steps")
    draw_information_bound(ax, result.target)
    model = noise_free_steps * (1 + b_noise / batches)
    ax.loglog(batches, model, color="#ff7f0e", lw=1.2, label="Sₘᵢₙ (1 + Bₙₒᵢₛₑ / B)")
    critical = _critical(result)
    ax.plot(critical, _steps_at(result, critical), "*", ms=15, color="#d62728",
            label=f"critical B = {critical:,.0f}")  # fmt: skip
    ax.set_xlabel("batch size B")
    ax.set_ylabel("steps to target S(B) (tuned)")
    ax.set_ylim(0.5, 2 * steps[0])
    ax.legend(loc="upper right")
    _decades_only(ax)
    return fig


def noise_scale_figure(
    runs: Mapping[float, tuple[np.ndarray, NoiseScales]],
    *,
    fitted: Mapping[float, float],
    critical: Mapping[float, float],
) -> Figure:
    """Chapter 6: McCandlish's noise scale along runs against the batch sizes the sweeps find.

    ``runs[target] = (risk, scales)``: the expected risk and the noise scales along the run tuned
    for ``target``, up to its first crossing. Each run's ``B_noise`` is a line (training goes from
    left to right), ending in a dot where it reaches its target; squares mark ``fitted[target]``
    (``B_noise`` of the model ``S_min(1 + B_noise/B)`` through the tuned steps) and stars
    ``critical[target]`` (the critical batch size of the tuned steps).
    """
    fig, (ax,) = new_figure(height=4.2)
    targets = sorted(runs, reverse=True)
    along = "Bₙₒᵢₛₑ = tr(HC) / GᵀHG along each tuned run"
    for index, target in enumerate(targets):
        risk, scales = runs[target]
        ax.loglog(risk, scales.critical, color=coordinate_color(0), lw=1.4, label=None if index else along)
    ax.plot(targets, [runs[x][1].critical[-1] for x in targets], "o", ms=7, color=coordinate_color(0),
            label="Bₙₒᵢₛₑ where the run reaches its target")  # fmt: skip
    ax.plot(targets, [fitted[x] for x in targets], "s", ms=7, mfc="none", color=coordinate_color(4), mew=1.5,
            label="Bₙₒᵢₛₑ fitted to the tuned steps S(B)")  # fmt: skip
    ax.plot(targets, [critical[x] for x in targets], "*", ms=12, color=coordinate_color(1),
            label="critical batch size")  # fmt: skip
    ax.invert_xaxis()
    ax.set_xlabel(r"expected risk $\mathbb{E}[L(\theta_t)]$ (training goes to the right)")
    ax.set_ylabel("batch size")
    ax.set_title("Gradient noise scale along the tuned runs at B = 4, and the critical batch size")
    ax.legend(loc="lower right")
    _decades_only(ax)
    return fig


def examples_vs_steps_figure(
    sweep: Mapping[tuple[str, float], TunedSteps],
    keys: Sequence[tuple[str, float]],
    *,
    noise_free_steps: int,
    b_noise: float,
) -> Figure:
    """Chapter 6: steps against examples ``E = B·S`` for the tuned methods ``keys`` of ``sweep``.

    Each curve runs from the smallest batch size (top left: most steps, fewest examples) to the
    largest (bottom right); a star marks the critical batch size, where ``E`` is twice its value
    at the smallest batch size. Also drawn: the information-theoretic lower bound (any algorithm)
    and, for plain SGD, McCandlish's trade-off ``(S/S_min − 1)(E/E_min − 1) = 1`` with
    ``S_min = noise_free_steps`` and ``E_min = S_min · b_noise``.
    """
    fig, (ax,) = new_figure(height=4.4)
    for index, key in enumerate(keys):
        result = sweep[key]
        examples = result.batch_sizes * result.steps
        color = coordinate_color(index)
        method, p = key
        ax.loglog(examples, result.steps, "o-", ms=3.5, lw=1.6, color=color, label=f"{method}, p = {p:g}")
        critical = _critical(result)
        if np.isfinite(critical):
            there = _steps_at(result, critical)
            ax.plot(critical * there, there, "*", ms=13, color=color, mec="black", mew=0.6, zorder=5)
    bound = paper_bound(sweep[keys[0]].target)
    ax.loglog(SWEEP_BATCH_SIZES * bound, bound, color="black", ls=(0, (4, 2)), lw=1.2,
              label="lower bound (any algorithm)")  # fmt: skip
    highest = 4 * noise_free_steps * (1 + b_noise / SWEEP_BATCH_SIZES[0])
    steps = np.geomspace(noise_free_steps * 1.001, highest, 200)
    examples = noise_free_steps * b_noise * (1 + 1 / (steps / noise_free_steps - 1))
    ax.loglog(examples, steps, color="0.45", lw=1, ls=":",
              label="SGD, McCandlish: (S/Sₘᵢₙ − 1)(E/Eₘᵢₙ − 1) = 1")  # fmt: skip
    ax.set_xlabel("examples processed E = B·S")
    ax.set_ylabel("steps S (tuned)")
    ax.set_title("Steps against examples: the batch size moves along each curve (stars: critical B)")
    ax.legend(loc="upper right")
    _decades_only(ax)
    return fig


def tuned_lr_figure(
    sweep: Mapping[tuple[str, float], TunedSteps], *, rule: np.ndarray, stability_limit: float
) -> Figure:
    """Chapter 6: the tuned (effective) learning rate of every method at ``p = 0`` against ``B``.

    Draws :func:`effective_lr` of SGD, momentum and EMA from ``sweep``, the linear rule ``rule``
    (one value per batch size of the sweep) and the stability limit of plain SGD.
    """
    fig, (ax,) = new_figure(height=4.4)
    styles = {"SGD": "--", "momentum": "-", "EMA": ":"}
    for index, method in enumerate(METHODS):
        result = sweep[method, 0.0]
        label = method + (": η/(1 − β)" if method == "momentum" else ": η")
        ax.loglog(result.batch_sizes, effective_lr(result), marker=MARKERS[method], ls=styles[method], ms=4,
                  color=coordinate_color(index), label=label)  # fmt: skip
    ax.loglog(SWEEP_BATCH_SIZES, rule, color="0.5", lw=1, label="4B · target / Σᵢ cᵢ")
    ax.axhline(stability_limit, color="black", ls=":", lw=1, label="SGD limit 2/h₁")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("tuned (effective) learning rate")
    ax.set_title("Tuned learning rates, p = 0")
    ax.legend()
    _decades_only(ax)
    return fig


def schedules_figure(
    scheduled: ScheduledSteps,
    *,
    per_step: np.ndarray,
    shown: Sequence[int],
    stability_limit: float,
    per_step_cap: int | None = None,
) -> Figure:
    """Chapter 6: plain SGD with a constant rate, ten optimised pieces, and a rate per step.

    Top: steps to target against ``B`` for the best constant rate, the optimised piecewise schedule
    and the Chebyshev steps (``per_step``, one count per batch size of ``scheduled``), with the
    information-theoretic lower bound. A count of ``inf`` (no horizon up to the search's
    ``max_steps`` reaches the target) is not drawn as a count; given ``per_step_cap``, that
    ``max_steps``, it is marked by a hollow triangle at the cap. Bottom: the optimised rates of the
    batch sizes at the indices ``shown`` (steps on a common axis ``t/T``), with each best constant
    rate dotted and the stability limit ``2/h_1`` as a black line.
    """
    fig, (top, bottom) = new_figure(nrows=2, height=7.0)
    batches = scheduled.batch_sizes
    top.loglog(batches, scheduled.constant_steps, "o-", color="black", ms=4, label="best constant η")
    top.loglog(batches, scheduled.steps, "s-", color=coordinate_color(4), ms=4,
               label=f"optimised schedule, {scheduled.lrs.shape[1]} equal pieces")  # fmt: skip
    reached = np.isfinite(per_step)
    top.loglog(batches[reached], per_step[reached], "D-", color=coordinate_color(2), ms=4,
               label="Chebyshev steps (a rate per step)")  # fmt: skip
    if per_step_cap is not None and not reached.all():
        at_cap = np.full(np.count_nonzero(~reached), float(per_step_cap))
        top.loglog(batches[~reached], at_cap, "^", mfc="none", color=coordinate_color(2), ms=6,
                   label=f"Chebyshev: none within {per_step_cap:,} steps")  # fmt: skip
    draw_information_bound(top, scheduled.target)
    top.set_xlabel("batch size B")
    top.set_ylabel("steps to target")
    top.set_title(rf"Plain SGD ($p = 0$): steps to $\mathbb{{E}}[L(\theta_t)] \leq {scheduled.target:g}$")
    top.legend(loc="lower left")
    for index, k in enumerate(shown):
        parts = np.array_split(np.arange(int(scheduled.steps[k])), scheduled.lrs.shape[1])
        edges = np.cumsum([0] + [part.size for part in parts]) / scheduled.steps[k]
        color = coordinate_color(index)
        bottom.stairs(scheduled.lrs[k], edges, baseline=None, color=color, lw=1.8,
                      label=f"B = {batches[k]:,}")  # fmt: skip
        bottom.axhline(scheduled.constant_lr[k], color=color, ls=":", lw=1.2)
    bottom.axhline(stability_limit, color="black", lw=0.8, ls="--", zorder=0)
    bottom.set_yscale("log")
    bottom.set_xlabel("fraction of the run t/T")
    bottom.set_ylabel("learning rate η")
    bottom.set_title("Optimised schedules (dotted: best constant η; dashed black: 2/h₁)")
    bottom.legend(loc="lower left", ncols=2)
    for ax in (top, bottom):
        _decades_only(ax)
    return fig


def six_methods_figure(
    problem: NQM,
    budget: int,
    methods: Mapping[str, Mapping[str, float]],
    tuned_lrs: Mapping[tuple[str, int], float],
    batch_sizes: Sequence[int],
    *,
    simulation: tuple[str, int, SimulationResult] | None = None,
) -> Figure:
    """Chapter 6: the six methods' exact risk curves, one panel per batch size, η tuned for each.

    ``methods`` maps a name to its settings (``momentum``, ``ema_decay``, ``precond_power``);
    ``tuned_lrs[name, B]`` is its learning rate at batch size ``B``. Momentum variants are dashed.
    ``simulation = (name, B, result)`` adds a Monte Carlo estimate of that method in the panel of
    ``B``. One legend, to the right of the top panel, serves all panels.
    """
    fig, axes = new_figure(nrows=len(batch_sizes), height=2.8 * len(batch_sizes))
    for ax, batch in zip(axes, batch_sizes, strict=True):
        for index, (name, extra) in enumerate(methods.items()):
            curve = risk_curve(problem, budget, lr=tuned_lrs[name, batch], batch_size=batch, **extra)
            style = "--" if "momentum" in extra else "-"
            plot_theory(ax, curve, color=coordinate_color(index), ls=style, label=name)
        if simulation is not None and simulation[1] == batch:
            name, _, result = simulation
            label = f"{name}: {result.trials} runs"
            plot_simulation(ax, result.risk, result.risk_stderr, color="black", label=label)
        label_risk_axes(ax)
        ax.set_title(f"B = {batch}, η tuned for t = {budget}")
        _decades_only(ax)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig
