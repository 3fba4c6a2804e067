"""The chapters' interactive figures, as plain functions of their slider values.

Each function builds a problem from its arguments, computes exact theory (and, where
useful, a seeded Monte Carlo estimate) with :mod:`nqm_lib`, and returns a Matplotlib figure.
:func:`nqm_lib.widgets.explore` binds them to sliders; the tests call them directly.
Invalid or unstable arguments raise ``ValueError`` with the library's message.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .plotting import covariance_ellipse, label_risk_axes, new_figure, plot_risk_by_coordinate
from .problem import NQM
from .simulation import sample_minibatch_gradients, simulate
from .theory import risk_curve_per_coordinate, steady_state_risk_per_coordinate

__all__ = ["gradient_noise_figure", "sgd_risk_figure"]


def gradient_noise_figure(
    batch_size: int = 1,
    theta1: float = 1.0,
    theta2: float = 1.0,
    *,
    h: tuple[float, float] = (2.0, 1.0),
    sigma: tuple[float, float] = (1.0, 2.0),
    samples: int = 300,
    seed: int = 0,
) -> Figure:
    """Chapter 1: minibatch gradients at ``θ = (theta1, theta2)`` in the 2-D data model.

    Dots are ``samples`` minibatch gradients; the cross is their mean, the star the true
    gradient ``Hθ``; the dashed ellipse is their sample covariance and the solid ellipse the
    theoretical ``C / B`` (both at two standard deviations). Axis limits do not depend on
    ``B``, so the cloud visibly shrinks as ``B`` grows. The legend sits to the right of the
    axes, clear of the cloud.
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
    reach = 2.5 * np.sqrt(problem.c)
    ax.set_xlim(true_gradient[0] - reach[0], true_gradient[0] + reach[0])
    ax.set_ylim(true_gradient[1] - reach[1], true_gradient[1] + reach[1])
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
) -> Figure:
    """Chapter 2: per-coordinate expected risk of SGD, exact theory against Monte Carlo.

    Solid lines: exact ``E[ℓ_i(θ_t)]`` per coordinate and their sum; dots: the average of
    ``trials`` simulated runs (±2 s.e. band); dotted lines: each coordinate's noise floor
    ``η c_i / (2B (2 − η h_i))``. Starts from ``θ(0) = (1, 1)``.
    """
    problem = NQM([h1, h2], [c1, c2], theta0=[1.0, 1.0])
    hyper = {"lr": lr, "batch_size": batch_size}
    theory = risk_curve_per_coordinate(problem, steps, **hyper)
    floors = steady_state_risk_per_coordinate(problem, **hyper)
    sim = simulate(problem, steps, trials=trials, seed=seed, **hyper)
    fig, (ax,) = new_figure()
    plot_risk_by_coordinate(ax, problem.h, theory, floors, sim)
    label_risk_axes(ax)
    ax.set_title(f"SGD: η = {lr:.3g}, B = {batch_size}, κ = {problem.kappa:.3g} (dotted: noise floors)")
    ax.legend(loc="upper right", fontsize=8)
    return fig
