"""Chapter 5's interactive figure: preconditioned SGD on two coordinates.

:func:`preconditioned_risk_figure` is a plain function of its slider values (``p``, ``B``,
``η``): it computes the exact per-coordinate risk with :mod:`nqm_lib`, a seeded Monte Carlo
estimate, and the transformed problem that preconditioned SGD is equivalent to. Its axes do
not depend on the slider values; an unstable setting is drawn (the risk climbs out of the top
of the axes, where the broken condition is written), and invalid settings raise
``ValueError`` with the library's message, which :func:`nqm_lib.widgets.explore` shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .dynamics import Hyperparams, diverging_coordinates, instability_condition, max_stable_lr
from .plotting import (
    CEILING_FACTOR,
    coordinate_color,
    label_risk_axes,
    mark_divergence,
    new_figure,
    plain_log_ticks,
    plot_risk_by_coordinate,
    plot_simulation,
    plot_theory,
)
from .problem import NQM
from .simulation import simulate
from .theory import risk_curve_per_coordinate, steady_state_risk_per_coordinate

__all__ = [
    "best_power_figure",
    "damping_figure",
    "floors_by_curvature_figure",
    "gradient_rms_figure",
    "preconditioned_risk_figure",
    "weight_decay_figure",
]


def preconditioned_risk_figure(
    precond_power: float = 0.5,
    batch_size: int = 1,
    lr: float = 0.1,
    *,
    h: Sequence[float] = (1.0, 0.01),
    c: Sequence[float] = (1.0, 0.01),
    theta0: Sequence[float] = (1.0, 10.0),
    steps: int = 400,
    trials: int = 200,
    seed: int = 0,
    risk_range: tuple[float, float] = (1e-6, 1e2),
    value_range: tuple[float, float] = (4e-3, 4.0),
) -> Figure:
    """Chapter 5: per-coordinate risk of SGD with the preconditioner ``P = H^p``.

    Top panel: exact ``E[ℓ_i(θ_t)]`` per coordinate and in total (solid), the mean of
    ``trials`` seeded Monte Carlo runs (dots; ±2 s.e. band for the total), each coordinate's
    exact noise floor ``η c_i h_i^{−p} / (2B(2 − η h_i^{1−p}))`` (dotted), and plain SGD
    (``p = 0``) at the same ``η`` and ``B`` for comparison (dashed, when it is stable); the
    risk axis always spans ``risk_range``, and when ``η h̃_1 ≥ 2`` the risk climbs out of its
    top. Bottom panel: the transformed problem that plain SGD solves with the same risk,
    curvatures ``h̃_i = h_i^{1−p}`` and noise ``c̃_i = h_i^{−p} c_i`` (rescaled coordinates
    ``φ = P^{1/2} θ``), next to the original ``h_i`` and ``c_i``, in each coordinate's colour,
    on a log axis spanning ``value_range``.

    The defaults (``h = c = (1, 0.01)``, ``θ(0) = (1, 10)``, so both coordinates start with
    risk ½) leave the stiff coordinate unchanged for every ``p`` (``h_1 = 1``) and make the
    stability limit ``η < 2/h̃_1 = 2`` independent of ``p``.
    """
    problem = NQM(h, c, theta0=theta0)
    ceiling = CEILING_FACTOR * risk_range[1]
    hyper = {"lr": lr, "batch_size": batch_size, "precond_power": precond_power, "ceiling": ceiling}
    theory = risk_curve_per_coordinate(problem, steps, **hyper)
    floors = steady_state_risk_per_coordinate(problem, **hyper)
    sim = simulate(problem, steps, trials=trials, seed=seed, **hyper)
    sgd_is_stable = lr < max_stable_lr(problem)
    sgd = risk_curve_per_coordinate(problem, steps, lr=lr, batch_size=batch_size) if sgd_is_stable else None

    fig, (ax, bars) = new_figure(nrows=2, height=7.4)
    plot_risk_by_coordinate(ax, problem.h, theory, floors, sim)
    ax.plot([], [], color="0.3", ls="--", lw=1, label="SGD (p = 0), same η, B")
    if sgd is not None:
        for i in range(problem.d):
            ax.plot(np.arange(steps + 1), sgd[:, i], color=coordinate_color(i), ls="--", lw=1)
    label_risk_axes(ax)
    ax.set_xlim(-0.05 * steps, 1.05 * steps)
    ax.set_ylim(*risk_range)
    hp = Hyperparams(lr, batch_size, precond_power=precond_power)
    if np.any(diverging_coordinates(problem, hp)):
        mark_divergence(
            ax, np.arange(steps + 1), theory.sum(axis=1), f"diverges: {instability_condition(problem, hp)}"
        )
    note = "" if sgd is not None else " (SGD unstable at this η)"
    ax.set_title(f"p = {precond_power:g}, η = {lr:.3g}, B = {batch_size}; dotted: floors{note}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)

    h_eff = problem.h ** (1.0 - precond_power)
    c_eff = problem.h ** (-precond_power) * problem.c
    groups = [
        (r"$h_i$", problem.h),
        (r"$\tilde h_i = h_i^{1-p}$", h_eff),
        (r"$c_i$", problem.c),
        (r"$\tilde c_i = h_i^{-p} c_i$", c_eff),
    ]
    precond_limit = max_stable_lr(problem, precond_power=precond_power)
    width = 0.8 / problem.d
    for i in range(problem.d):
        offsets = np.arange(len(groups)) + (i - (problem.d - 1) / 2) * width
        heights = [values[i] for _, values in groups]
        drawn = bars.bar(offsets, heights, width=width, color=coordinate_color(i))
        bars.bar_label(drawn, labels=[f"{value:.3g}" for value in heights])
    bars.set_xticks(np.arange(len(groups)), [label for label, _ in groups])
    bars.set_yscale("log")
    bars.set_ylabel("value (log scale)")
    bars.set_ylim(*value_range)
    bars.set_title(
        f"Transformed problem in φ = P¹ᐟ²θ: κ¹⁻ᵖ = {h_eff.max() / h_eff.min():.3g} "
        f"(κ = {problem.kappa:.3g})\n"
        f"plain SGD on it has the same risk; stable iff η < {precond_limit:.3g}"
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Chapter 5's static figures: plain functions of the numbers the chapter computes.
# ---------------------------------------------------------------------------------------------


def floors_by_curvature_figure(
    problem: NQM,
    powers: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    batch_size: int = 1,
    fraction: float = 1.0,
) -> Figure:
    """Chapter 5: each coordinate's steady-state risk against its curvature, one line per power ``p``.

    The learning rate of power ``p`` is ``η = fraction / h_1^{1−p}`` (``fraction`` = ``a`` in the
    chapter; ``a = 1`` is half the stability limit), so the powers are compared at the same
    distance from their stability limits. The dashed line is the risk ``½ h_i θ_i(0)²`` each
    coordinate starts with: where a floor lies above it, optimising that coordinate makes it worse.
    """
    fig, (ax,) = new_figure()
    for index, power in enumerate(powers):
        lr = fraction / problem.h.max() ** (1.0 - power)
        floors = steady_state_risk_per_coordinate(problem, lr=lr, batch_size=batch_size, precond_power=power)
        label = f"p = {power:g}"
        ax.loglog(problem.h, floors / problem.counts, color=coordinate_color(index), lw=2, label=label)
    ax.loglog(
        problem.h,
        0.5 * problem.h * problem.theta0**2,
        color="0.4",
        ls="--",
        lw=1.5,
        label=r"initial risk $\frac{1}{2} h_i \theta_i(0)^2$",
    )
    ax.set_xlabel(r"curvature $h_i$")
    ax.set_ylabel("steady-state risk of one coordinate")
    ax.set_title(rf"$B = {batch_size}$, $\eta = {fraction:g}/h_1^{{1-p}}$")
    ax.legend()
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def best_power_figure(
    powers: Sequence[float],
    tuned_risk: Mapping[int, Sequence[float]],
    best_power: Mapping[int, float],
    *,
    steps: int,
    exact_best_power: Mapping[int, float] | None = None,
) -> Figure:
    """Chapter 5: the tuned risk after ``steps`` steps against ``p`` (top) and the best ``p`` against ``B``.

    ``tuned_risk[B]`` holds the smallest ``E[L(θ_T)]`` over the learning rate for each power of
    ``powers``; ``best_power[B]`` is the best power on a fine grid for each batch size of the
    bottom panel, and ``exact_best_power`` (optional) the same on another spectrum, drawn as
    open squares.
    """
    fig, (top, bottom) = new_figure(nrows=2, height=6.8)
    for index, (batch_size, risks) in enumerate(tuned_risk.items()):
        top.semilogy(powers, risks, "o-", color=coordinate_color(index), lw=2, label=f"B = {batch_size}")
    top.set_xlabel("preconditioning power $p$")
    top.set_ylabel(rf"$\mathbb{{E}}[L(\theta_{{{steps}}})]$, $\eta$ tuned")
    top.set_title(f"risk after T = {steps} steps")
    top.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))

    sizes = list(best_power)
    bottom.semilogx(sizes, [best_power[b] for b in sizes], "o-", color="black", lw=2, label="binned spectrum")
    if exact_best_power is not None:
        bottom.semilogx(
            sizes,
            [exact_best_power[b] for b in sizes],
            "s",
            ms=9,
            mfc="none",
            color=coordinate_color(1),
            label="all 10⁴ coordinates",
        )
        bottom.legend(loc="lower right")
    bottom.set_xlabel("batch size $B$")
    bottom.set_ylabel("best power $p$")
    bottom.set_ylim(0, 1.05)
    bottom.set_title(f"best p (steps of 0.02) for T = {steps}, η tuned per p and B")
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def gradient_rms_figure(
    h: np.ndarray,
    rms_by_step: Mapping[int, np.ndarray],
    stationary: np.ndarray,
    noise_only: np.ndarray,
    *,
    title: str = "",
) -> Figure:
    """Chapter 5: ``√E[g_i²]`` against the curvature ``h_i`` at several steps, on log axes.

    ``rms_by_step[t]`` is ``√E[g_i(t)²]`` per coordinate, ``stationary`` its limit as ``t → ∞``
    (dashed) and ``noise_only`` the noise part ``√(c_i/B)`` (dotted): Adam's idealised
    ``√v̂_i``, whose slope against ``h_i`` is the preconditioning power it implements.
    """
    fig, (ax,) = new_figure()
    for index, (t, rms) in enumerate(rms_by_step.items()):
        ax.loglog(h, rms, color=coordinate_color(index), lw=2, label=f"t = {t}")
    ax.loglog(h, stationary, color="black", ls="--", lw=1.5, label=r"$t \to \infty$ (proposition)")
    ax.loglog(h, noise_only, color="0.5", ls=":", lw=1.5, label=r"noise only: $\sqrt{c_i/B}$")
    ax.set_xlabel(r"curvature $h_i$")
    ax.set_ylabel(r"$\sqrt{\mathbb{E}[g_i^2]}$  (Adam's $\sqrt{\hat v_i}$, idealised)")
    ax.set_title(title)
    ax.legend()
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def weight_decay_figure(
    excess_by_decay: Mapping[float, np.ndarray],
    monte_carlo: np.ndarray,
    *,
    decay: float,
    trials: int,
    kappas: Mapping[float, float] | None = None,
    title: str = "",
) -> Figure:
    """Chapter 5: exact ``E[L(θ_t)]`` of SGD with weight decay ``λ`` (lines) and Monte Carlo at one ``λ``.

    ``excess_by_decay[λ]`` is the exact excess risk (without the penalty) for each ``λ``;
    ``monte_carlo`` the mean over ``trials`` runs at ``λ = decay``, drawn as dots in that
    ``λ``'s colour. ``kappas[λ]``, if given, is the condition number shown in the legend.
    """
    fig, (ax,) = new_figure()
    decays = list(excess_by_decay)
    for index, lam in enumerate(decays):
        label = f"λ = {lam:g}" + (f": κ = {kappas[lam]:.3g}" if kappas else "")
        plot_theory(ax, excess_by_decay[lam], color=coordinate_color(index), label=label)
    colour = coordinate_color(decays.index(decay)) if decay in decays else "black"
    label = f"Monte Carlo, λ = {decay:g} ({trials} runs)"
    plot_simulation(ax, monte_carlo, color=colour, label=label)
    label_risk_axes(ax, ylabel=r"$\mathbb{E}[L(\theta_t)]$ (without the penalty)")
    ax.set_title(title)
    ax.legend()
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def damping_figure(
    dampings: Sequence[float],
    relative_risk: Mapping[int, Mapping[str, Sequence[float]]],
    *,
    steps: int,
) -> Figure:
    """Chapter 5: tuned risk after ``steps`` steps against the damping ``μ`` of ``P = H^p + μI``.

    One panel per batch size ``B`` (the keys of ``relative_risk``); in each, one line per label
    (e.g. ``"p = 1"``, ``"best p"``) through its tuned risk at each damping of ``dampings``,
    divided by the best undamped tuned risk at that ``B`` (so 1 is the best of the previous
    section). The dampings, ``μ = 0`` included, are equally spaced and labelled with their values.
    """
    positions = np.arange(len(dampings))
    fig, axes = new_figure(nrows=len(relative_risk), height=3.2 * len(relative_risk))
    for ax, (batch_size, lines) in zip(axes, relative_risk.items(), strict=True):
        for index, (label, values) in enumerate(lines.items()):
            ax.plot(positions, values, "o-", color=coordinate_color(index), lw=2, label=label)
        ax.axhline(1.0, color="0.4", ls=":", lw=1)
        ax.set_xticks(positions, [f"{mu:g}" for mu in dampings])
        ax.set_xlabel(r"damping $\mu$")
        ax.set_ylabel("tuned risk / best undamped")
        ax.set_title(f"B = {batch_size}, T = {steps}, P = Hᵖ + μI")
        ax.legend(loc="best")
    return fig
