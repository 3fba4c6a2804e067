"""The chapters' interactive figures, as plain functions of their slider values.

Each function builds a problem from its arguments, computes exact theory (and, where
useful, a seeded Monte Carlo estimate) with :mod:`nqm_lib`, and returns a Matplotlib figure.
:func:`nqm_lib.widgets.explore` binds them to sliders; the tests call them directly.
Their axes do not depend on the slider values (so what a slider changes is what moves), and
an unstable setting is drawn, not refused: the risk climbs out of the top of the axes, the
path leaves the view, with the broken stability condition written where it leaves. Invalid
arguments raise ``ValueError`` with the library's message.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .dynamics import Hyperparams, diverging_coordinates, instability_condition
from .plotting import (
    CEILING_FACTOR,
    coordinate_color,
    covariance_ellipse,
    label_risk_axes,
    mark_divergence,
    mark_path_exit,
    new_figure,
    plot_risk_by_coordinate,
    write_divergence,
)
from .problem import NQM
from .simulation import sample_minibatch_gradients, sample_path, simulate
from .theory import risk_curve_per_coordinate, steady_state_risk_per_coordinate

__all__ = ["gradient_noise_figure", "paper_spectrum_figure", "path_figure", "sgd_risk_figure"]


def gradient_noise_figure(
    batch_size: int = 1,
    theta1: float = 1.0,
    theta2: float = 1.0,
    *,
    h: tuple[float, float] = (2.0, 1.0),
    sigma: tuple[float, float] = (1.0, 2.0),
    samples: int = 300,
    seed: int = 0,
    view: float = 2.0,
) -> Figure:
    """Chapter 1: minibatch gradients at ``θ = (theta1, theta2)`` in the 2-D data model.

    Dots are ``samples`` minibatch gradients; the cross is their mean, the star the true
    gradient ``Hθ``; the dashed ellipse is their sample covariance and the solid ellipse the
    theoretical ``C / B`` (both at two standard deviations). The axes do not depend on the
    arguments: they hold the ``B = 1`` cloud (``Hθ ± 2.5 √c``) at every ``θ`` with
    ``|θ_i| ≤ view``, so the cloud visibly shrinks as ``B`` grows and moves as ``θ`` moves.
    The legend sits to the right of the axes, clear of the cloud.
    """
    problem = NQM.from_data_model(h, sigma)
    theta = np.array([theta1, theta2], dtype=float)
    gradients = sample_minibatch_gradients(problem, theta, batch_size=batch_size, samples=samples, seed=seed)
    true_gradient = problem.h * theta
    fig, (ax,) = new_figure(height=4.4)
    ax.scatter(
        gradients[:, 0], gradients[:, 1], s=6, alpha=0.35, color="0.4", label=f"{samples} minibatch gradients"
    )
    covariance_ellipse(
        ax,
        true_gradient,
        np.diag(problem.c / batch_size),
        color="black",
        lw=2,
        label=r"theory: $C/B$ (2 s.d.)",
    )
    covariance_ellipse(
        ax,
        gradients.mean(axis=0),
        np.cov(gradients.T),
        color="#d62728",
        lw=1.5,
        ls="--",
        label="sample covariance (2 s.d.)",
    )
    ax.plot(*true_gradient, "*", ms=14, color="black", label=r"$\nabla L(\theta) = H\theta$")
    ax.plot(*gradients.mean(axis=0), "x", ms=10, mew=2, color="#d62728", label="sample mean")
    reach = view * problem.h + 2.5 * np.sqrt(problem.c)
    ax.set_xlim(-reach[0], reach[0])
    ax.set_ylim(-reach[1], reach[1])
    ax.set_xlabel(r"gradient coordinate $g_1$")
    ax.set_ylabel(r"gradient coordinate $g_2$")
    # Values in titles and labels are plain Unicode, not mathtext: a widget redraw would
    # otherwise re-parse every value-dependent $...$ string (a quarter of its time).
    ax.set_title(f"Minibatch gradients at θ = ({theta1:g}, {theta2:g}), B = {batch_size}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def sgd_risk_figure(
    lr: float = 0.02,
    batch_size: int = 1,
    h1: float = 50.0,
    h2: float = 1.0,
    c1: float = 50.0,
    c2: float = 1.0,
    *,
    steps: int = 300,
    trials: int = 200,
    seed: int = 0,
    risk_range: tuple[float, float] = (1e-5, 1e2),
) -> Figure:
    """Chapter 2: per-coordinate expected risk of SGD, exact theory against Monte Carlo.

    Solid lines: exact ``E[ℓ_i(θ_t)]`` per coordinate and their sum; dots: the average of
    ``trials`` simulated runs (±2 s.e. band); dotted lines: each coordinate's noise floor
    ``η c_i / (2B (2 − η h_i))``. Starts from ``θ(0) = (1, 1)``. The risk axis always spans
    ``risk_range``; when ``η h_1 ≥ 2`` the risk climbs out of its top, where the broken
    condition is written.
    """
    problem = NQM([h1, h2], [c1, c2], theta0=[1.0, 1.0])
    hyper = {"lr": lr, "batch_size": batch_size, "ceiling": CEILING_FACTOR * risk_range[1]}
    theory = risk_curve_per_coordinate(problem, steps, **hyper)
    floors = steady_state_risk_per_coordinate(problem, **hyper)
    sim = simulate(problem, steps, trials=trials, seed=seed, **hyper)
    fig, (ax,) = new_figure()
    plot_risk_by_coordinate(ax, problem.h, theory, floors, sim)
    label_risk_axes(ax)
    ax.set_xlim(-0.05 * steps, 1.05 * steps)
    ax.set_ylim(*risk_range)
    hp = Hyperparams(lr, batch_size)
    if np.any(diverging_coordinates(problem, hp)):
        condition = instability_condition(problem, hp)
        mark_divergence(ax, np.arange(steps + 1), theory.sum(axis=1), f"diverges: {condition}")
    ax.set_title(f"SGD: η = {lr:.3g}, B = {batch_size}, κ = {problem.kappa:.3g} (dotted: noise floors)")
    ax.legend(loc="lower left")
    return fig


#: Colours of the paths of :func:`path_figure`: noise-free GD, SGD, momentum SGD.
PATH_COLORS = ("black", coordinate_color(0), coordinate_color(1))


def path_figure(
    lr: float = 0.035,
    batch_size: int = 64,
    momentum: float = 0.0,
    *,
    h: tuple[float, float] = (50.0, 1.0),
    c: tuple[float, float] = (50.0, 1.0),
    theta0: tuple[float, float] = (0.5, 1.0),
    steps: int = 40,
    seed: int = 0,
    view: tuple[float, float, float] = (1.5, -0.7, 1.2),
) -> Figure:
    """Chapters 2–3: paths of GD, SGD and momentum SGD in the ``(θ₁, θ₂)`` plane.

    Over the contours of ``L(θ) = ½ (h₁ θ₁² + h₂ θ₂²)`` it draws ``steps`` iterates of
    noise-free gradient descent at ``lr`` (black), of one seeded SGD run at ``lr`` and
    ``batch_size`` (blue) and, if ``momentum > 0``, of one heavy-ball run at ``lr``,
    ``momentum`` and ``batch_size`` with the same seed (red). The flat coordinate θ₂ runs along
    the horizontal axis, so the narrow valley lies across the page. The iterates come from
    :func:`~nqm_lib.simulation.sample_path`. The view is fixed, ``view = (a, b₀, b₁)`` in
    units of ``|θ(0)|``: ``θ₁ ∈ ±a |θ₁(0)|`` and ``θ₂ ∈ [b₀, b₁] |θ₂(0)|``. A path that diverges
    leaves it with an arrow, and the broken stability condition is written there.
    """
    problem = NQM(h, c, theta0=theta0)
    noise_free = NQM(h, [0.0] * problem.d, theta0=theta0)
    scale = np.abs(problem.theta0)
    half_height, left, right = view[0] * scale[0], view[1] * scale[1], view[2] * scale[1]
    # a diverging path is followed until its loss is far beyond anything in view
    corner = float(problem.loss([half_height, max(-left, right)]))
    hyper = {"lr": lr, "batch_size": batch_size, "seed": seed, "ceiling": CEILING_FACTOR * corner}
    runs = [
        ("GD", "GD (no noise)", sample_path(noise_free, steps, **hyper), 0.0),
        ("SGD", f"SGD, B = {batch_size}", sample_path(problem, steps, **hyper), 0.0),
    ]
    if momentum:
        path = sample_path(problem, steps, momentum=momentum, **hyper)
        runs.append(("momentum", f"momentum β = {momentum:.3g}, B = {batch_size}", path, momentum))

    fig, (ax,) = new_figure(height=3.9)
    ax.set_xlim(left, right)
    ax.set_ylim(-half_height, half_height)
    grid2, grid1 = np.meshgrid(np.linspace(left, right, 81), np.linspace(-half_height, half_height, 61))
    loss = 0.5 * (problem.h[0] * grid1**2 + problem.h[1] * grid2**2)
    initial = float(problem.loss(problem.theta0))
    ax.contour(grid2, grid1, loss, levels=initial * 0.4 ** np.arange(9)[::-1], colors="0.75", linewidths=0.8)
    # a diverging path is drawn until it leaves the view, with an arrow there; one text for all
    # of them (momentum's condition implies SGD's)
    diverging = [
        np.any(diverging_coordinates(problem, Hyperparams(lr, batch_size, beta))) for *_, beta in runs
    ]
    names = ", ".join(name for (name, *_), flag in zip(runs, diverging, strict=True) if flag)
    text = ""
    if names:
        beta = max(beta for (*_, beta), flag in zip(runs, diverging, strict=True) if flag)
        condition = instability_condition(problem, Hyperparams(lr, batch_size, beta))
        text = f"{names} diverge{'s' if sum(diverging) == 1 else ''}: {condition}"
    for (_, label, path, _), color, flag in zip(runs, PATH_COLORS, diverging, strict=False):
        shown = len(path)
        if flag:
            shown = mark_path_exit(ax, path[:, 1], path[:, 0], text, color=color)
            text = text if shown == len(path) else ""  # written at the first exit
        ax.plot(path[:shown, 1], path[:shown, 0], ".-", color=color, ms=4, lw=1, alpha=0.85, label=label)
    if text:  # diverging too slowly to leave the view within the steps drawn
        write_divergence(ax, text)
    ax.plot(problem.theta0[1], problem.theta0[0], "o", color="black", ms=7, mfc="white", label="start θ(0)")
    ax.plot(0.0, 0.0, "*", color="black", ms=11, label="optimum θ* = 0")
    ax.set_xlabel(f"θ₂ (flat coordinate, h₂ = {problem.h[1]:g})")
    ax.set_ylabel(f"θ₁ (stiff coordinate, h₁ = {problem.h[0]:g})")
    ax.set_title(f"{steps} steps at η = {lr:.3g} over the contours of L (grey)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    return fig


# ---------------------------------------------------------------------- chapter 1's static figure


def paper_spectrum_figure(d: int = 10_000, bins: int = 100) -> Figure:
    """Chapter 1: the paper's spectrum ``h_i = 1/i`` and the library's rounded-down version of it.

    Grey: the exact curvatures ``h_i = 1/i``, ``i = 1..d``, on log–log axes; blue steps: each
    ``h_i`` rounded down to the nearest of ``bins`` geometrically spaced values, as
    :meth:`~nqm_lib.problem.NQM.paper_spectrum` stores them (``c_i = h_i``).
    """
    exact = NQM.paper_spectrum(d=d, bins=None)
    rounded = NQM.paper_spectrum(d=d, bins=bins)
    fig, (ax,) = new_figure(height=3.5)
    ax.loglog(np.arange(1, exact.d + 1), exact.h, color="0.6", lw=3, label=r"exact, $h_i = 1/i$")
    last_index = np.cumsum(rounded.counts)  # the last coordinate i that falls in each bin
    ax.step(last_index, rounded.h, where="pre", color=coordinate_color(0), label="rounded down (then merged)")
    ax.set_xlabel("coordinate $i$")
    ax.set_ylabel("curvature $h_i$ (= noise $c_i$)")
    ax.set_title(f"The paper's spectrum: d = {d:,}, κ = {exact.kappa:,.0f}, C = H")
    ax.legend()
    return fig
