"""Chapter 3's interactive figure: heavy-ball momentum on two coordinates, risk and roots.

:func:`momentum_risk_figure` builds the two-coordinate problem of the worked example
(``h = c = (50, 1)``, ``θ(0) = (1, 1)`` by default) from its slider values η, β and B, and
draws the exact expected risk of momentum SGD beside Monte Carlo and plain SGD (top), and
the two characteristic roots ``z₁, z₂`` of every coordinate in the complex plane (bottom).
:func:`theorem1_bound` evaluates the right-hand side of Theorem 1 of Zhang et al. (2019),
which the chapter compares with the exact risk. Invalid or unstable arguments raise
``ValueError`` (or :class:`~nqm_lib.validation.InstabilityError`) with the library's message.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MultipleLocator

from .formulas import (
    momentum_bias_factor,
    momentum_damping_boundary,
    momentum_roots,
    momentum_steady_state_risk,
)
from .plotting import SUBSCRIPTS, coordinate_color, label_risk_axes, new_figure, plot_simulation, plot_theory
from .problem import NQM
from .simulation import simulate
from .theory import risk_curve, risk_curve_per_coordinate
from .validation import InstabilityError

__all__ = ["momentum_risk_figure", "theorem1_bound"]

#: Colour of the plain-SGD comparison curves.
SGD_COLOR = "0.45"


def theorem1_bound(
    problem: NQM, steps: int, *, lr: float, batch_size: int = 1, momentum: float
) -> np.ndarray:
    """Right-hand side of Theorem 1 of Zhang et al. (2019), summed over coordinates, t = 0..steps.

    ``Σ_i counts_i [b_i(t)² ℓ_i(θ(0)) + (1 + β) η c_i / (2B (2β + 2 − η h_i)(1 − β))]`` with the
    bias factor ``b_i(t)`` of :func:`~nqm_lib.formulas.momentum_bias_factor`. Chapter 3 shows
    that the first term is exact and the second is the exact limit ``t → ∞`` of the noise part.
    """
    t = np.arange(steps + 1)
    initial = 0.5 * problem.h * problem.theta0**2
    bias = momentum_bias_factor(t, problem.h, lr=lr, momentum=momentum) ** 2 * initial
    noise = momentum_steady_state_risk(problem.h, problem.c, lr=lr, momentum=momentum, batch_size=batch_size)
    return ((bias + noise) * problem.counts).sum(axis=1)


def _regime(h: float, *, lr: float, momentum: float) -> str:
    """'over-damped', 'critically damped' or 'under-damped' for one coordinate."""
    boundary = float(momentum_damping_boundary(h, lr=lr))
    if np.isclose(momentum, boundary, rtol=0.0, atol=1e-12):
        return "critically damped"
    return "under-damped" if momentum > boundary else "over-damped"


def _sgd_comparison(
    ax: Axes, problem: NQM, steps: int, *, lr: float, batch_size: int, label: str, **style: object
) -> None:
    """Plot plain SGD's exact risk at ``lr``, or only a legend entry saying that it diverges."""
    try:
        curve = risk_curve(problem, steps, lr=lr, batch_size=batch_size)
    except InstabilityError:
        ax.plot([], [], color=SGD_COLOR, label=f"{label}:\ndiverges (ηh₁ ≥ 2)", **style)
        return
    ax.plot(np.arange(steps + 1), curve, color=SGD_COLOR, label=label, **style)


def _draw_roots(ax: Axes, h: np.ndarray, *, lr: float, momentum: float) -> None:
    """Unit circle, the circle ``|z| = √β``, both roots per coordinate and SGD's factor ``r_i = 1 − ηh_i``."""
    angle = np.linspace(0.0, 2.0 * np.pi, 241)
    ax.plot(np.cos(angle), np.sin(angle), color="black", lw=1, label="unit circle (stability)")
    radius = np.sqrt(momentum)
    ax.plot(
        radius * np.cos(angle),
        radius * np.sin(angle),
        color="0.5",
        ls="--",
        lw=1,
        label=f"|z| = √β = {radius:.3g}",
    )
    reach = 1.15
    for i, curvature in enumerate(h):
        color = coordinate_color(i)
        roots = np.array(momentum_roots(curvature, lr=lr, momentum=momentum))
        rate = float(np.max(np.abs(roots)))
        regime = _regime(curvature, lr=lr, momentum=momentum)
        ax.plot(
            roots.real,
            roots.imag,
            "o",
            ms=8,
            color=color,
            alpha=0.85,
            label=f"z (h{str(i + 1).translate(SUBSCRIPTS)} = {curvature:g}): {regime},\nmax |z| = {rate:.3f}",
        )
        sgd_root = 1.0 - lr * curvature
        ax.plot([sgd_root], [0.0], "x", ms=9, mew=2, color=color)
        reach = max(reach, abs(sgd_root) + 0.1)
    ax.plot([], [], "x", ms=9, mew=2, color="0.3", label="SGD's factor rᵢ = 1 − ηhᵢ")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.axvline(0.0, color="0.7", lw=0.8)
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-1.15, 1.15)
    ax.set_aspect("equal", adjustable="box")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MultipleLocator(1.0))  # the unit circle is the scale that matters
    ax.set_xlabel(r"$\mathrm{Re}\, z$")
    ax.set_ylabel(r"$\mathrm{Im}\, z$")
    ax.set_title(r"Roots of $z^2 - (1 - \eta h_i + \beta)\, z + \beta$")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))


def momentum_risk_figure(
    lr: float = 0.005,
    momentum: float = 0.8,
    batch_size: int = 1,
    *,
    h: tuple[float, float] = (50.0, 1.0),
    c: tuple[float, float] = (50.0, 1.0),
    steps: int = 300,
    trials: int = 200,
    seed: int = 0,
) -> Figure:
    """Chapter 3: momentum SGD on two coordinates, exact risk against Monte Carlo, and its roots.

    Top: exact ``E[L(θ_t)]`` of momentum SGD (solid black) and of each coordinate (in the
    coordinate's colour), the average of ``trials`` simulated runs (dots, ±2 s.e. band), plain
    SGD at the same η (dashed) and at the effective learning rate ``η/(1 − β)`` (dotted); when
    SGD diverges at such a rate the legend says so instead. Bottom: the two roots of
    ``z² − (1 − η h_i + β) z + β`` per coordinate with the unit circle, the circle ``|z| = √β``
    and SGD's factor ``r_i = 1 − η h_i`` (crosses). The panels are stacked so that the figure
    fits the text column (7 in) at a readable size. Starts from ``θ(0) = (1, 1)`` and ``v(0) = 0``.
    """
    problem = NQM(h, c, theta0=[1.0, 1.0])
    hyper = {"lr": lr, "batch_size": batch_size}
    per_coordinate = risk_curve_per_coordinate(problem, steps, momentum=momentum, **hyper)
    sim = simulate(problem, steps, momentum=momentum, trials=trials, seed=seed, **hyper)

    fig, (risk_ax, roots_ax) = new_figure(nrows=2, height=7.6)
    for i in range(problem.d):
        plot_theory(
            risk_ax,
            per_coordinate[:, i],
            color=coordinate_color(i),
            alpha=0.7,
            label=f"coordinate {i + 1}, h{str(i + 1).translate(SUBSCRIPTS)} = {problem.h[i]:g}",
        )
    plot_theory(risk_ax, per_coordinate.sum(axis=1), label="momentum: total (exact)")
    plot_simulation(risk_ax, sim.risk, sim.risk_stderr, label=f"Monte Carlo ({trials} runs)")
    _sgd_comparison(risk_ax, problem, steps, ls="--", lw=1.5, label="SGD, same η", **hyper)
    _sgd_comparison(
        risk_ax,
        problem,
        steps,
        lr=lr / (1.0 - momentum),
        batch_size=batch_size,
        ls=":",
        lw=2,
        label="SGD at η/(1 − β)",
    )
    label_risk_axes(risk_ax)
    risk_ax.set_title(
        f"η = {lr:.3g}, β = {momentum:.3g}, B = {batch_size} (η/(1 − β) = {lr / (1.0 - momentum):.3g})"
    )
    risk_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    _draw_roots(roots_ax, problem.h, lr=lr, momentum=momentum)
    return fig
