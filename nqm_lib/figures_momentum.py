"""Chapter 3's interactive figure: heavy-ball momentum on two coordinates, risk and roots.

:func:`momentum_risk_figure` builds the two-coordinate problem of the worked example
(``h = c = (50, 1)``, ``θ(0) = (1, 1)`` by default) from its slider values η, β and B, and
draws the exact expected risk of momentum SGD beside Monte Carlo and plain SGD (top), and
the two characteristic roots ``z₁, z₂`` of every coordinate in the complex plane (bottom).
:func:`theorem1_bound` evaluates the right-hand side of Theorem 1 of Zhang et al. (2019),
which the chapter compares with the exact risk. The axes do not depend on η, β and B; an
unstable setting is drawn (the risk leaves the top of the axes, a root lies outside the unit
circle), and invalid arguments raise ``ValueError`` with the library's message.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MultipleLocator

from .dynamics import Hyperparams, diverging_coordinates, instability_condition
from .formulas import (
    momentum_bias_factor,
    momentum_damping_boundary,
    momentum_roots,
    momentum_steady_state_risk,
)
from .plotting import (
    CEILING_FACTOR,
    SUBSCRIPTS,
    coordinate_color,
    label_risk_axes,
    mark_divergence,
    new_figure,
    plot_simulation,
    plot_theory,
)
from .problem import NQM
from .simulation import simulate
from .theory import risk_curve, risk_curve_per_coordinate

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
    ax: Axes, problem: NQM, steps: int, *, lr: float, batch_size: int, ceiling: float, **style: object
) -> np.ndarray:
    """Plot plain SGD's exact risk at ``lr`` and return it (it leaves the top of the axes if it diverges)."""
    curve = risk_curve(problem, steps, lr=lr, batch_size=batch_size, ceiling=ceiling)
    ax.plot(np.arange(steps + 1), curve, color=SGD_COLOR, **style)
    return curve


#: The fixed view of the roots panel: Re z from ROOTS_VIEW[0] to ROOTS_VIEW[1], Im z within ±ROOTS_VIEW[2].
ROOTS_VIEW = (-2.6, 1.3, 1.15)


def _in_view(ax: Axes, points: np.ndarray, marker: str, **style: object) -> None:
    """Plot complex ``points``; those left or right of the view sit on its edge as ◀ or ▶."""
    low, high = ROOTS_VIEW[:2]
    inside = (points.real >= low) & (points.real <= high)
    ax.plot(points.real[inside], points.imag[inside], marker, ls="none", **style)
    for edge, beyond, arrow in ((low, points.real < low, "<"), (high, points.real > high, ">")):
        if np.any(beyond):
            outside = {**style, "label": None}
            ax.plot(
                np.full(beyond.sum(), edge), points.imag[beyond], arrow, ls="none", clip_on=False, **outside
            )


def _draw_roots(ax: Axes, h: np.ndarray, *, lr: float, momentum: float) -> None:
    """Unit circle, the circle ``|z| = √β``, both roots per coordinate and SGD's factor ``r_i = 1 − ηh_i``.

    The view is fixed (:data:`ROOTS_VIEW`); a root or factor beyond its left or right edge is
    drawn on that edge as an arrowhead pointing its way.
    """
    angle = np.linspace(0.0, 2.0 * np.pi, 241)
    ax.plot(np.cos(angle), np.sin(angle), color="black", lw=1, label="unit circle (stability)")
    radius = np.sqrt(momentum)
    ax.plot(
        radius * np.cos(angle),
        radius * np.sin(angle),
        color="0.5",
        ls="--",
        lw=1,
        label="|z| = √β",
    )
    for i, curvature in enumerate(h):
        color = coordinate_color(i)
        index = str(i + 1).translate(SUBSCRIPTS)
        roots = np.array(momentum_roots(curvature, lr=lr, momentum=momentum))
        _in_view(ax, roots, "o", ms=8, color=color, alpha=0.85, label=f"roots z, h{index} = {curvature:g}")
        _in_view(ax, np.array([1.0 - lr * curvature + 0j]), "x", ms=9, mew=2, color=color)
        # what changes with η and β is written inside the view (its empty upper left), so the
        # legend keeps its size
        regime = _regime(curvature, lr=lr, momentum=momentum)
        ax.text(
            0.02,
            0.97 - 0.16 * i,
            f"h{index}: {regime}\nmax |z| = {np.max(np.abs(roots)):.3f}",
            transform=ax.transAxes,
            color=color,
            va="top",
            fontsize=9,
        )
    ax.plot([], [], "x", ms=9, mew=2, color="0.3", label="SGD's factor rᵢ = 1 − ηhᵢ")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.axvline(0.0, color="0.7", lw=0.8)
    ax.set_xlim(*ROOTS_VIEW[:2])
    ax.set_ylim(-ROOTS_VIEW[2], ROOTS_VIEW[2])
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
    risk_range: tuple[float, float] = (1e-6, 1e2),
) -> Figure:
    """Chapter 3: momentum SGD on two coordinates, exact risk against Monte Carlo, and its roots.

    Top: exact ``E[L(θ_t)]`` of momentum SGD (solid black) and of each coordinate (in the
    coordinate's colour), the average of ``trials`` simulated runs (dots, ±2 s.e. band), plain
    SGD at the same η (dashed) and at the effective learning rate ``η/(1 − β)`` (dotted). The
    risk axis always spans ``risk_range``: a curve that diverges leaves through its top (for
    momentum, where ``η h_1 ≥ 2(1 + β)`` is written). Bottom: the two roots of
    ``z² − (1 − η h_i + β) z + β`` per coordinate with the unit circle, the circle ``|z| = √β``
    and SGD's factor ``r_i = 1 − η h_i`` (crosses), in a fixed view. The panels are stacked so
    that the figure fits the text column (7 in) at a readable size. Starts from
    ``θ(0) = (1, 1)`` and ``v(0) = 0``.
    """
    problem = NQM(h, c, theta0=[1.0, 1.0])
    ceiling = CEILING_FACTOR * risk_range[1]
    hyper = {"lr": lr, "batch_size": batch_size}
    per_coordinate = risk_curve_per_coordinate(problem, steps, momentum=momentum, ceiling=ceiling, **hyper)
    sim = simulate(problem, steps, momentum=momentum, trials=trials, seed=seed, ceiling=ceiling, **hyper)

    fig, (risk_ax, roots_ax) = new_figure(nrows=2, height=7.6)
    for i in range(problem.d):
        plot_theory(
            risk_ax,
            per_coordinate[:, i],
            color=coordinate_color(i),
            alpha=0.7,
            label=f"coordinate {i + 1}, h{str(i + 1).translate(SUBSCRIPTS)} = {problem.h[i]:g}",
        )
    total = per_coordinate.sum(axis=1)
    plot_theory(risk_ax, total, label="momentum: total (exact)")
    plot_simulation(risk_ax, sim.risk, sim.risk_stderr, label=f"Monte Carlo ({trials} runs)")
    effective = lr / (1.0 - momentum)
    sgd_style = {"ceiling": ceiling, "batch_size": batch_size}
    comparisons = [
        (
            lr,
            _sgd_comparison(
                risk_ax, problem, steps, lr=lr, ls="--", lw=1.5, label="SGD, same η", **sgd_style
            ),
        ),
        (
            effective,
            _sgd_comparison(
                risk_ax, problem, steps, lr=effective, ls=":", lw=2, label="SGD at η/(1 − β)", **sgd_style
            ),
        ),
    ]
    label_risk_axes(risk_ax)
    risk_ax.set_xlim(-0.05 * steps, 1.05 * steps)
    risk_ax.set_ylim(*risk_range)
    risk_ax.yaxis.set_major_locator(LogLocator(numticks=6))  # every other decade: fewer labels to lay out
    t = np.arange(steps + 1)
    hp = Hyperparams(lr, batch_size, momentum)
    if np.any(diverging_coordinates(problem, hp)):  # then SGD diverges at η and η/(1 − β) as well
        mark_divergence(risk_ax, t, total, f"diverges: {instability_condition(problem, hp)}")
    else:  # one label for SGD, on its first curve that leaves (at η if it diverges there)
        for (rate, curve), name, factor in zip(
            comparisons, ("SGD", "SGD at η/(1 − β)"), ("", "/(1 − β)"), strict=True
        ):
            if rate * problem.h.max() >= 2.0:
                text = f"{name} diverges: ηh₁{factor} = {rate * problem.h.max():.3g} ≥ 2"
                mark_divergence(risk_ax, t, curve, text, color=SGD_COLOR)
                break
    risk_ax.set_title(
        f"η = {lr:.3g}, β = {momentum:.3g}, B = {batch_size} (η/(1 − β) = {lr / (1.0 - momentum):.3g})"
    )
    risk_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    _draw_roots(roots_ax, problem.h, lr=lr, momentum=momentum)
    return fig
