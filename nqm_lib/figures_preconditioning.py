"""Chapter 5's interactive figure: preconditioned SGD on two coordinates.

:func:`preconditioned_risk_figure` is a plain function of its slider values (``p``, ``B``,
``η``): it computes the exact per-coordinate risk with :mod:`nqm_lib`, a seeded Monte Carlo
estimate, and the transformed problem that preconditioned SGD is equivalent to. Its axes do
not depend on the slider values; an unstable setting is drawn (the risk climbs out of the top
of the axes, where the broken condition is written), and invalid settings raise
``ValueError`` with the library's message, which :func:`nqm_lib.widgets.explore` shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from .dynamics import Hyperparams, diverging_coordinates, instability_condition, max_stable_lr
from .plotting import (
    CEILING_FACTOR,
    coordinate_color,
    label_risk_axes,
    mark_divergence,
    new_figure,
    plot_risk_by_coordinate,
)
from .problem import NQM
from .simulation import simulate
from .theory import risk_curve_per_coordinate, steady_state_risk_per_coordinate

__all__ = ["preconditioned_risk_figure"]


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
