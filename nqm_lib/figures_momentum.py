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
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MultipleLocator, NullLocator

from . import acceleration, heavy_ball, momentum_conventions
from .dynamics import Hyperparams, diverging_coordinates, instability_condition, max_stable_lr
from .formulas import (
    momentum_amplification,
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
from .simulation import simulate, trajectory_risk
from .theory import first_minimum, risk_curve, risk_curve_per_coordinate, steady_state_risk

__all__ = [
    "WORKED_EXAMPLE",
    "acceleration_figure",
    "amplification_figure",
    "conventions_figure",
    "effective_rate_figure",
    "equivalence_figure",
    "equivalence_lr",
    "momentum_risk_figure",
    "momentum_variants",
    "noise_free_risk_figure",
    "root_regimes_figure",
    "step_decay",
    "theorem1_bound",
    "theorem1_gap_figure",
    "tuned_runs_figure",
    "variants_figure",
    "window_tuning_figure",
]

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


# ---------------------------------------------------------------------------------------------
# Chapter 3's static figures: each a plain function of its parameters (tested in
# tests/test_momentum_figures.py), so that a figure cell of the chapter is one call.
# ---------------------------------------------------------------------------------------------

#: The worked example of chapter 2, h = c = (50, 1) and θ(0) = (1, 1), which chapter 3 keeps using.
WORKED_EXAMPLE = NQM([50.0, 1.0], [50.0, 1.0], theta0=[1.0, 1.0])


def _finished(fig: Figure) -> Figure:
    """Return ``fig`` without minor ticks on log axes that span three decades or more.

    There the major ticks alone are dense enough to read, and the minor ones cost a third of the
    drawing time; a shorter log axis keeps them (and their labels), or it would show one label.
    """
    for ax in fig.axes:
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(limits)
            if axis.get_scale() == "log" and low > 0 and high / low >= 1e3:
                axis.set_minor_locator(NullLocator())
    return fig


def noise_free_risk_figure(
    lr_h: float = 0.01, momenta: tuple[float, ...] = (0.8, 0.9), steps: int = 150
) -> Figure:
    """Exact risk of one noise-free coordinate (``h = 1``, ``η = lr_h``) for each ``β`` of ``momenta``.

    With no noise the risk is ``½ h E[θ_t]²``, so an under-damped mean shows up as dips where the
    mean crosses zero; an over-damped one falls monotonically.
    """
    single = NQM(h=[1.0], c=[0.0], theta0=[1.0])
    fig, (ax,) = new_figure()
    for index, beta in enumerate(momenta):
        plot_theory(
            ax,
            risk_curve(single, steps, lr=lr_h, momentum=beta),
            color=coordinate_color(index),
            label=rf"$\beta = {beta:g}$",
        )
    label_risk_axes(ax)
    ax.set_title(rf"Noise-free coordinate, $\eta h = {lr_h:g}$: which $\beta$ oscillates?")
    ax.legend()
    return _finished(fig)


def root_regimes_figure(lr_h: float = 0.3) -> Figure:
    """Top: the roots of one coordinate with ``ηh = lr_h`` as β grows from 0 (root locus).

    Bottom: the per-step rate ``1 − max|z|`` over the ``(ηh, β)`` plane (log colour scale, blank where
    unstable), with the damping boundary ``(1 − √(ηh))²``, the wrong rule ``(1 − ηh)²`` and the
    stability limit ``ηh = 2(1 + β)``.
    """
    fig, (locus, regimes) = new_figure(nrows=2, height=7.6)
    betas = np.linspace(0.0, 0.99, 199)
    angle = np.linspace(0, 2 * np.pi, 241)
    locus.plot(np.cos(angle), np.sin(angle), color="black", lw=1, label="unit circle")
    for root in momentum_roots(lr_h, lr=1.0, momentum=betas):  # the roots depend on ηh only
        points = locus.scatter(root.real, root.imag, c=betas, cmap="viridis", s=12, norm=Normalize(0, 1))
    meet = 1 - np.sqrt(lr_h)
    locus.plot([meet], [0], "k*", ms=12, label=rf"collision at $\beta^\star = {meet**2:.3f}$")
    locus.plot([1 - lr_h], [0], "kx", ms=9, mew=2, label=r"SGD's factor $r = 1 - \eta h$ ($\beta = 0$)")
    locus.set_aspect("equal", adjustable="box")
    locus.set_xlim(-1.1, 3.1)  # room on the right for the legend
    locus.set_xticks([-1.0, -0.5, 0.0, 0.5, 1.0])
    locus.set_ylim(-1.1, 1.1)
    locus.set_xlabel(r"$\mathrm{Re}\, z$")
    locus.set_ylabel(r"$\mathrm{Im}\, z$")
    locus.set_title(rf"Root locus for $\eta h = {lr_h:g}$ as $\beta$ grows")
    locus.legend(loc="center right")
    fig.colorbar(points, ax=locus, label=r"momentum $\beta$", shrink=0.8)

    x_grid = np.geomspace(1e-3, 4.0, 200)
    beta_grid = np.linspace(0.0, 0.995, 160)
    largest = np.abs(momentum_roots(x_grid[None, :], lr=1.0, momentum=beta_grid[:, None])[0])
    rate = np.ma.masked_where(largest >= 1.0, 1.0 - largest)  # unstable: left blank
    mesh = regimes.pcolormesh(x_grid, beta_grid, rate, norm=LogNorm(1e-3, 1.0), cmap="magma", shading="auto")
    regimes.plot(
        x_grid,
        momentum_damping_boundary(x_grid, lr=1.0),
        color="white",
        lw=2,
        label=r"$\beta^\star = (1 - \sqrt{\eta h})^2$",
    )
    regimes.plot(x_grid, (1 - x_grid) ** 2, color="#2ca02c", ls="--", lw=2, label=r"$(1 - \eta h)^2$ (wrong)")
    regimes.plot(
        2 * (1 + beta_grid), beta_grid, color="#1f77b4", lw=2, label=r"stability: $\eta h = 2(1 + \beta)$"
    )
    regimes.set_xscale("log")
    regimes.set_xlim(x_grid[0], x_grid[-1])
    regimes.set_ylim(0, 1)
    regimes.set_xlabel(r"$\eta h$")
    regimes.set_ylabel(r"momentum $\beta$")
    regimes.set_title("under-damped above the white curve, over-damped below")
    regimes.legend(loc="lower left", frameon=True, framealpha=0.85)
    fig.colorbar(mesh, ax=regimes, label=r"rate $1 - \max|z|$ per step")
    return _finished(fig)


def theorem1_gap_figure(
    lr: float = 0.005, momentum: float = 0.8, batch_size: int = 1, *, steps: int = 300
) -> Figure:
    """Theorem 1's right-hand side minus the exact risk on the worked example, on a log scale.

    The gap starts at the whole noise floor (nothing has accumulated at ``t = 0``) and decays like
    ``max_i |z_1|^{2t}``, drawn dashed for comparison; the floor itself is dotted.
    """
    hyper = {"lr": lr, "momentum": momentum, "batch_size": batch_size}
    exact = risk_curve(WORKED_EXAMPLE, steps, **hyper)
    gap = theorem1_bound(WORKED_EXAMPLE, steps, **hyper) - exact
    floor = momentum_steady_state_risk(WORKED_EXAMPLE.h, WORKED_EXAMPLE.c, **hyper).sum()
    slowest = float(np.abs(momentum_roots(WORKED_EXAMPLE.h, lr=lr, momentum=momentum)[0]).max())
    t = np.arange(steps + 1)
    fig, (ax,) = new_figure()
    ax.semilogy(t, gap, color="black", lw=2, label="Theorem 1 minus exact risk")
    ax.semilogy(
        t,
        gap[0] * slowest ** (2 * t),
        color="0.5",
        ls="--",
        label=rf"$\propto \max_i |z_1|^{{2t}}$, $|z_1| = {slowest:.4f}$",
    )
    ax.axhline(floor, color="0.5", ls=":", lw=1, label="second term (noise floor)")
    ax.set_xlabel("step $t$")
    ax.set_ylabel("bound minus exact risk")
    ax.set_title(
        rf"Worked example, $\eta = {lr:g}$, $\beta = {momentum:g}$, $B = {batch_size}$: loose only early on"
    )
    ax.legend()
    return _finished(fig)


def effective_rate_figure(momenta: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99)) -> Figure:
    """Per-step rate ``1 − max|z|`` against ``ηh`` for each β (solid), and ``ηh/(1 − β)`` (dashed).

    Dots mark the damping boundary ``ηh = (1 − √β)²``, right of which the rate is flat at ``1 − √β``.
    """
    x_grid = np.geomspace(1e-5, 1.0, 400)
    fig, (ax,) = new_figure()
    for index, beta in enumerate(momenta):
        color = coordinate_color(index)
        exact_rate = 1 - np.abs(momentum_roots(x_grid, lr=1.0, momentum=beta)[0])
        ax.loglog(x_grid, exact_rate, color=color, lw=2, label=rf"$\beta = {beta:g}$: exact $1 - \max|z|$")
        ax.loglog(x_grid, x_grid / (1 - beta), color=color, ls="--", lw=1)
        if beta > 0:  # β = (1 − √(ηh))²  ⇔  ηh = (1 − √β)²
            ax.plot([(1 - np.sqrt(beta)) ** 2], [1 - np.sqrt(beta)], "o", color=color, ms=6)
    ax.plot([], [], "k--", lw=1, label=r"effective-rate approximation $\eta h/(1-\beta)$")
    ax.plot([], [], "ko", ms=6, label=r"damping boundary ($\eta h$ where $\beta = \beta^\star$)")
    ax.set_ylim(1e-5, 1.2)
    ax.set_xlabel(r"$\eta h$")
    ax.set_ylabel(r"per-step rate $1 - \max|z|$")
    ax.set_title("Momentum acts like SGD with learning rate $\\eta/(1-\\beta)$ — while over-damped")
    ax.legend(fontsize=8, loc="lower right")
    return _finished(fig)


def amplification_figure(momenta: tuple[float, ...] = (0.5, 0.9, 0.99)) -> Figure:
    """Momentum's noise floor over SGD's at the same η against ``ηh``: exact, 1/(1 − β), wrong rule.

    Dots are ratios of :func:`~nqm_lib.theory.steady_state_risk` (the second-moment equations, not the
    formula) for a coordinate with ``h = c = 1``.
    """
    one = NQM(h=[1.0], c=[1.0])  # ηh = η here
    x_grid = np.geomspace(1e-3, 1.99, 300)
    x_dots = np.geomspace(1e-3, 1.9, 9)
    fig, (ax,) = new_figure()
    for index, beta in enumerate(momenta):
        color = coordinate_color(index)
        ax.semilogx(
            x_grid,
            momentum_amplification(1.0, lr=x_grid, momentum=beta),
            color=color,
            lw=2,
            label=rf"$\beta = {beta:g}$: exact",
        )
        ax.axhline(1 / (1 - beta), color=color, ls="--", lw=1)
        ax.axhline((1 + beta) / (1 - beta), color=color, ls=":", lw=1)
        ratios = [steady_state_risk(one, lr=x, momentum=beta) / steady_state_risk(one, lr=x) for x in x_dots]
        ax.plot(x_dots, ratios, "o", color=color, ms=5)
    ax.plot([], [], "k--", lw=1, label=r"$1/(1-\beta)$")
    ax.plot([], [], "k:", lw=1, label=r"$(1+\beta)/(1-\beta)$ (wrong)")
    ax.plot([], [], "ko", ms=5, label="ratio of steady_state_risk")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\eta h$ (SGD is stable for $\eta h < 2$)")
    ax.set_ylabel(r"momentum floor / SGD floor, same $\eta$")
    ax.set_title("Amplification of the noise floor by momentum")
    ax.legend(fontsize=8, loc="lower left")
    return _finished(fig)


def equivalence_lr(momentum: float, q: float, *, problem: NQM | None = None) -> float:
    """The η at which ``q₁ = β η h₁/(1 − β)²`` takes the value ``q`` (chapter 3's small-η equivalence)."""
    problem = WORKED_EXAMPLE if problem is None else problem
    return float(q * (1 - momentum) ** 2 / (momentum * problem.h.max()))


def equivalence_figure(momentum: float = 0.5, qs: tuple[float, float] = (0.01, 1.0)) -> Figure:
    """Momentum ``(η, β)`` against SGD at ``η/(1 − β)`` on the worked example, one panel per ``q₁``.

    ``η`` is set by ``q₁ = β η h₁/(1 − β)²`` (:func:`equivalence_lr`); each run lasts five time
    scales ``(1 − β)/(η h_d)`` of the flat coordinate; log-log axes.
    """
    fig, axes = new_figure(nrows=len(qs), height=3.2 * len(qs))
    for ax, q in zip(axes, qs, strict=True):
        eta = equivalence_lr(momentum, q)
        horizon = int(5 * (1 - momentum) / (eta * WORKED_EXAMPLE.h.min()))
        with_momentum = heavy_ball.risk_curves(WORKED_EXAMPLE, horizon, [eta], momentum=momentum)[0]
        rescaled_sgd = risk_curve(WORKED_EXAMPLE, horizon, lr=eta / (1 - momentum))
        gap = np.max(np.abs(with_momentum / rescaled_sgd - 1))
        t = np.unique(np.geomspace(1, horizon, 400).astype(int))
        ax.loglog(
            t,
            with_momentum[t],
            color="black",
            lw=2,
            label=rf"momentum: $\eta = {eta:g}$, $\beta = {momentum:g}$",
        )
        ax.loglog(
            t,
            rescaled_sgd[t],
            color=coordinate_color(1),
            ls="--",
            lw=2,
            label=rf"SGD: $\eta/(1-\beta) = {eta / (1 - momentum):g}$",
        )
        ax.set_xlabel("step $t$ (log scale)")
        ax.set_ylabel(r"$\mathbb{E}[L(\theta_t)]$")
        ax.set_title(rf"$q_1 = {q:g}$: largest relative gap {gap:.1%}")
        ax.legend(loc="lower left")
    return _finished(fig)


def _tunings(batch_size: int, momenta: tuple[float, ...], budget: int, window_start: int) -> dict:
    """:func:`~nqm_lib.heavy_ball.window_tuning` on the worked example for each β of ``momenta``."""
    return {
        beta: heavy_ball.window_tuning(
            WORKED_EXAMPLE,
            heavy_ball.tuning_grid(WORKED_EXAMPLE, beta),
            momentum=beta,
            batch_size=batch_size,
            budget=budget,
            window_start=window_start,
        )
        for beta in momenta
    }


def window_tuning_figure(
    batch_sizes: tuple[int, ...] = (1, 10_000),
    momenta: tuple[float, ...] = (0.0, 0.5, 0.9),
    *,
    budget: int = 100,
    window_start: int = 50,
) -> Figure:
    """Worst exact risk over steps ``window_start … budget`` against the effective rate ``η/(1 − β)``.

    One panel per batch size; one solid curve per β (black: SGD) with its best η marked, and the
    risk at ``t = budget`` alone dotted; the dashed vertical line is SGD's cap ``2/h₁``.
    """
    fig, axes = new_figure(nrows=len(batch_sizes), height=3.5 * len(batch_sizes))
    for ax, batch_size in zip(axes, batch_sizes, strict=True):
        for index, (beta, tuned) in enumerate(_tunings(batch_size, momenta, budget, window_start).items()):
            color = "black" if beta == 0 else coordinate_color(index)
            effective = tuned.lrs / (1 - beta)
            ax.loglog(
                effective,
                tuned.worst,
                color=color,
                lw=2,
                label="SGD" if beta == 0 else rf"momentum $\beta = {beta:g}$",
            )
            ax.loglog(effective, tuned.curves[:, budget], color=color, lw=1, ls=":")
            ax.plot(effective[tuned.best], tuned.worst[tuned.best], "o", color=color)
        ax.axvline(max_stable_lr(WORKED_EXAMPLE), color="black", ls="--", lw=1)
        ax.set_xlabel(r"effective learning rate $\eta / (1-\beta)$ (dashed: SGD's cap $2/h_1$)")
        ax.set_ylabel(rf"$\max_{{{window_start} \leq t \leq {budget}}}\, \mathbb{{E}}[L(\theta_t)]$")
        ax.set_title(
            f"$B = {batch_size}$: worst risk over steps {window_start}–{budget} "
            f"(dotted: at $t = {budget}$ only)"
        )
        ax.legend(loc="upper left")
    return _finished(fig)


def tuned_runs_figure(
    batch_sizes: tuple[int, ...] = (1, 10_000),
    momenta: tuple[float, ...] = (0.0, 0.5, 0.9),
    *,
    budget: int = 100,
    window_start: int = 50,
) -> Figure:
    """The runs each criterion picks, as exact risk curves to ``1.2 × budget`` steps (one panel per B).

    Dashed: SGD tuned by the worst risk over the shaded window; solid: the best momentum run by that
    criterion; dotted: the best momentum run by the risk at ``t = budget`` alone (vertical line).
    """
    fig, axes = new_figure(nrows=len(batch_sizes), height=3.2 * len(batch_sizes))
    steps = int(1.2 * budget)
    with_momentum = tuple(beta for beta in momenta if beta > 0)
    for ax, batch_size in zip(axes, batch_sizes, strict=True):
        tuned = _tunings(batch_size, momenta, budget, window_start)
        window_beta = with_momentum[first_minimum([tuned[b].worst[tuned[b].best] for b in with_momentum])]
        point_beta = with_momentum[
            first_minimum([tuned[b].curves[tuned[b].best_at_budget, budget] for b in with_momentum])
        ]
        runs = [
            (0.0, tuned[0.0].lrs[tuned[0.0].best], "black", "--", "SGD, by the window"),
            (
                window_beta,
                tuned[window_beta].lrs[tuned[window_beta].best],
                coordinate_color(0),
                "-",
                "by the window",
            ),
            (
                point_beta,
                tuned[point_beta].lrs[tuned[point_beta].best_at_budget],
                coordinate_color(1),
                ":",
                f"by $t = {budget}$ alone",
            ),
        ]
        for beta, lr, color, style, how in runs:
            curve = risk_curve(WORKED_EXAMPLE, steps, lr=lr, momentum=beta, batch_size=batch_size)
            name = how if beta == 0 else rf"$\beta = {beta:g}$ {how}"
            plot_theory(ax, curve, color=color, ls=style, label=rf"{name}, $\eta = {lr:.3g}$")
        ax.axvspan(window_start, budget, color="0.9", zorder=0)
        ax.axvline(budget, color="0.5", lw=1)
        label_risk_axes(ax)
        ax.set_title(f"$B = {batch_size}$: the runs each criterion picks (shaded: the window)")
        ax.legend(loc="upper right")
    return _finished(fig)


def variants_figure(
    momentum: float = 0.9, effective_lr: float = 0.03, batch_size: int = 10_000, *, steps: int = 300
) -> Figure:
    """Heavy ball, Nesterov and ``dampening = β`` at the same effective learning rate, beside SGD (dashed).

    Heavy ball and Nesterov run at ``η = effective_lr · (1 − β)``, the damped form at
    ``η = effective_lr`` (its effective rate is η itself), SGD at ``effective_lr``; all exact.
    """
    fig, (ax,) = new_figure()
    for index, (name, options) in enumerate(momentum_variants(momentum, effective_lr).items()):
        curve = risk_curve(WORKED_EXAMPLE, steps, momentum=momentum, batch_size=batch_size, **options)
        plot_theory(ax, curve, color=coordinate_color(index), label=f"{name}, η = {options['lr']:g}")
    sgd = risk_curve(WORKED_EXAMPLE, steps, lr=effective_lr, batch_size=batch_size)
    plot_theory(ax, sgd, color=SGD_COLOR, ls="--", label=f"SGD, η = {effective_lr:g}")
    label_risk_axes(ax)
    ax.set_title(
        rf"$\beta = {momentum:g}$, $B = {batch_size:g}$, effective learning rate {effective_lr:g} for each"
    )
    ax.legend(loc="upper right")
    return _finished(fig)


def momentum_variants(momentum: float, effective_lr: float) -> dict[str, dict[str, object]]:
    """Settings of heavy ball, Nesterov and ``dampening = β`` with the same effective rate (chapter 3).

    Heavy ball and Nesterov: ``η = effective_lr · (1 − β)``; dampening ``δ = β``: ``η = effective_lr``.
    """
    return {
        "heavy ball": {"lr": effective_lr * (1 - momentum)},
        "Nesterov": {"lr": effective_lr * (1 - momentum), "nesterov": True},
        "dampening = β": {"lr": effective_lr, "dampening": momentum},
    }


def step_decay(steps: int, lr: float, *, drop_step: int, factor: float) -> np.ndarray:
    """``η_t = lr`` for ``t < drop_step`` and ``lr · factor`` after (one milestone of ``MultiStepLR``)."""
    return np.where(np.arange(steps) < drop_step, lr, lr * factor)


def conventions_figure(
    lr: float = 0.01,
    momentum: float = 0.9,
    batch_size: int = 1,
    *,
    drop_step: int = 150,
    factor: float = 0.1,
    steps: int = 400,
    trials: int = 1000,
    seed: int = 0,
) -> Figure:
    """Exact risk of PyTorch's and Sutskever's momentum through a step decay of η, with Monte Carlo dots.

    The worked example with ``η = lr`` up to ``drop_step`` and ``lr · factor`` after; lines are exact
    (:func:`~nqm_lib.momentum_conventions.scheduled_risk_curve`), dots average ``trials`` runs of each
    convention on the same noise (±2 s.e. band).
    """
    lrs = step_decay(steps, lr, drop_step=drop_step, factor=factor)
    fig, (ax,) = new_figure()
    for index, (convention, name) in enumerate(
        [("pytorch", "PyTorch: θ ← θ − ηₜ v"), ("sutskever", "Sutskever/Keras: θ ← θ + v")]
    ):
        color = coordinate_color(index)
        exact = momentum_conventions.scheduled_risk_curve(
            WORKED_EXAMPLE, lrs, momentum=momentum, convention=convention, batch_size=batch_size
        )
        plot_theory(ax, exact, color=color, label=f"{name} (exact)")
        runs = momentum_conventions.scheduled_paths(
            WORKED_EXAMPLE,
            lrs,
            momentum=momentum,
            convention=convention,
            batch_size=batch_size,
            trials=trials,
            seed=seed,
        )
        mc = trajectory_risk(WORKED_EXAMPLE, runs)
        plot_simulation(ax, mc.risk, mc.risk_stderr, color=color)
    ax.plot([], [], "o", ms=3.5, color="0.3", label=f"Monte Carlo ({trials} runs each)")
    ax.axvline(drop_step, color="0.5", lw=1, ls=":")
    label_risk_axes(ax)
    ax.set_title(
        f"β = {momentum:g}, B = {batch_size}: η drops from {lr:g} to {lr * factor:g} at step {drop_step}"
    )
    ax.legend(loc="upper right")
    return _finished(fig)


def acceleration_figure(theta0: float = 3.3, steps: int = 60) -> Figure:
    """Lessard, Recht & Packard's function: heavy ball cycles where Nesterov and gradient descent converge.

    Top: the function (its three quadratic pieces in colour) with the three points heavy ball ends up
    cycling through from ``theta0``. Bottom: the distance ``|θ_t − θ*|`` of heavy ball and Nesterov
    (each tuned for the quadratics with curvatures in ``[1, 25]``) and of gradient descent
    (``η = 2/(h_1 + h_d)``), with ``|θ_0| ρ^t`` dashed for each method's rate ``ρ`` on those quadratics.
    """
    h_min, h_max = acceleration.LESSARD_CURVATURES
    hb_lr, hb_beta = acceleration.tuned_heavy_ball(h_min, h_max)
    nag_lr, nag_beta = acceleration.tuned_nesterov(h_min, h_max)
    methods = {
        "heavy ball": {"lr": hb_lr, "momentum": hb_beta},
        "Nesterov": {"lr": nag_lr, "momentum": nag_beta, "nesterov": True},
        "gradient descent": {"lr": 2 / (h_min + h_max)},
    }
    fig, (shape, distance) = new_figure(nrows=2, height=6.6)
    pieces = [((-3.0, 1.0), 25, "#1f77b4", (-1.6, 75)), ((1.0, 2.0), 1, "#ff7f0e", (1.5, 60)),
              ((2.0, 4.0), 25, "#1f77b4", (3.45, 40))]  # fmt: skip
    for (low, high), curvature, color, (x_text, y_text) in pieces:
        theta = np.linspace(low, high, 100)
        shape.plot(theta, acceleration.lessard_function(theta), color=color, lw=2.5)
        shape.text(x_text, y_text, f"$f'' = {curvature}$", ha="center", color=color)
    gradient = acceleration.lessard_gradient
    cycle = acceleration.momentum_iterates(gradient, theta0, 600, **methods["heavy ball"])[-3:]
    shape.plot(
        cycle,
        acceleration.lessard_function(cycle),
        "o",
        color=coordinate_color(1),
        ms=9,
        label=f"heavy ball's cycle from θ₀ = {theta0:g}: " + ", ".join(f"{x:.3f}" for x in cycle),
    )
    shape.set_xlabel(r"$\theta$")
    shape.set_ylabel(r"$f(\theta)$")
    shape.set_title("Strongly convex and smooth ($1 \\leq f'' \\leq 25$), but not a quadratic")
    shape.legend(loc="upper center")
    t = np.arange(steps + 1)
    for index, (name, settings) in enumerate(methods.items()):
        color = coordinate_color(index + 1) if name != "gradient descent" else SGD_COLOR
        path = acceleration.momentum_iterates(gradient, theta0, steps, **settings)
        rate = acceleration.quadratic_rate(h_min, h_max, **settings)
        distance.semilogy(t, np.abs(path), color=color, lw=2, label=f"{name} (rate on quadratics {rate:.3f})")
        distance.semilogy(t, abs(theta0) * rate**t, color=color, lw=1, ls="--")
    distance.set_ylim(1e-12, 1e2)
    distance.set_xlabel("step $t$")
    distance.set_ylabel(r"$|\theta_t - \theta^\star|$")
    distance.set_title(
        rf"From $\theta_0 = {theta0:g}$; dashed: $|\theta_0|\,\rho^t$, each method's rate on quadratics"
    )
    distance.legend(loc="lower left")
    return _finished(fig)
