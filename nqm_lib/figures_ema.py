"""Chapter 4's interactive figures: the EMA of the iterates, and iterate averaging compared.

Each function builds the two-coordinate problem of the worked example (``h = c = (50, 1)``,
``θ(0) = (1, 1)`` by default) from its slider values, computes exact theory with
:mod:`nqm_lib` and returns a Matplotlib figure. :func:`nqm_lib.widgets.explore` binds them
to sliders; the tests call them directly. Their axes do not depend on the slider values; an
unstable setting is drawn (the risk climbs out of the top of the axes, where the broken
condition is written), and invalid arguments raise ``ValueError`` with the library's message.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .averaging import averaged_risk_curve
from .dynamics import Hyperparams, diverging_coordinates, instability_condition
from .formulas import ema_bias_factor, ema_variance_reduction_factor, sgd_rate, sgd_steady_state_risk
from .plotting import (
    CEILING_FACTOR,
    coordinate_color,
    label_risk_axes,
    mark_divergence,
    new_figure,
    plot_simulation,
    plot_theory,
)
from .problem import NQM
from .simulation import simulate
from .theory import risk_curve, steady_state_risk_per_coordinate

__all__ = [
    "SCHEME_COLORS",
    "averaging_figure",
    "ema_batch_size_figure",
    "ema_lag_figure",
    "ema_risk_figure",
    "theorem2_bound",
    "theorem2_figure",
]

#: Colours of the reported iterates in chapter 4's figures.
SCHEME_COLORS = {
    "sgd": "black",
    "ema": coordinate_color(2),
    "uniform": coordinate_color(3),
    "tail": coordinate_color(4),
}


def theorem2_bound(
    problem: NQM, steps: int, *, lr: float, batch_size: int = 1, ema_decay: float
) -> np.ndarray:
    """Chapter 4: right-hand side of Theorem 2 of Zhang et al. (2019), summed over coordinates.

    Shape ``(steps + 1,)``, t = 0..steps:
    ``Σ_i counts_i [bias_i(t)² ℓ_i(θ(0)) + η c_i / (2B(2 − η h_i)) · factor_i]`` with the bias
    factor :func:`~nqm_lib.formulas.ema_bias_factor` and the variance-reduction factor
    :func:`~nqm_lib.formulas.ema_variance_reduction_factor`. Chapter 4 shows that the first
    term is exact and the second is the exact limit ``t → ∞`` of the noise part.
    """
    t = np.arange(steps + 1)
    bias = (
        ema_bias_factor(t, problem.h, lr=lr, ema_decay=ema_decay) ** 2 * 0.5 * problem.h * problem.theta0**2
    )
    floor = sgd_steady_state_risk(problem.h, problem.c, lr=lr, batch_size=batch_size)
    noise = floor * ema_variance_reduction_factor(problem.h, lr=lr, ema_decay=ema_decay)
    return ((bias + noise) * problem.counts).sum(axis=1)


def ema_risk_figure(
    ema_decay: float = 0.9,
    batch_size: int = 1,
    lr: float = 0.02,
    *,
    h: tuple[float, float] = (50.0, 1.0),
    c: tuple[float, float] = (50.0, 1.0),
    steps: int = 400,
    trials: int = 200,
    seed: int = 0,
    risk_range: tuple[float, float] = (1e-6, 1e2),
) -> Figure:
    """Chapter 4: expected risk of the last SGD iterate and of its EMA, theory against Monte Carlo.

    Solid lines: exact ``E[L(θ_t)]`` (SGD) and ``E[L(θ̃_t)]`` (EMA ``γ``); dashed: the right-hand
    side of Theorem 2; dots: the average of ``trials`` simulated runs (±2 s.e. band); dotted
    horizontal lines: the two noise floors (legend below the axes). The title compares ``γ``
    with SGD's slowest factor ``max_i |r_i|``, ``r_i = 1 − η h_i`` (``r_d`` unless η is close
    to the stability limit): below it the EMA keeps SGD's rate with a constant lag, at
    equality the lag grows like ``t²``, above it the bias decays like ``γ^t``. The risk axis
    always spans ``risk_range``; when ``η h_1 ≥ 2`` SGD and its EMA diverge and climb out of
    its top (Theorem 2 has nothing to say there and is not drawn).
    """
    problem = NQM(h, c, theta0=[1.0, 1.0])
    hyper = {"lr": lr, "batch_size": batch_size, "ceiling": CEILING_FACTOR * risk_range[1]}
    unstable = bool(np.any(diverging_coordinates(problem, Hyperparams(lr, batch_size))))
    sgd = risk_curve(problem, steps, **hyper)
    ema = risk_curve(problem, steps, ema_decay=ema_decay, **hyper)
    sgd_sim = simulate(problem, steps, trials=trials, seed=seed, **hyper)
    ema_sim = simulate(problem, steps, ema_decay=ema_decay, trials=trials, seed=seed + 1, **hyper)

    fig, (ax,) = new_figure(height=4.6)
    for name, exact, sim, gamma in (("sgd", sgd, sgd_sim, 0.0), ("ema", ema, ema_sim, ema_decay)):
        color = SCHEME_COLORS[name]
        label = "SGD, last iterate θₜ" if name == "sgd" else "EMA of the iterates, θ̃ₜ"
        plot_theory(ax, exact, color=color, label=label)
        plot_simulation(ax, sim.risk, sim.risk_stderr, color=color)
        floor = steady_state_risk_per_coordinate(problem, ema_decay=gamma, **hyper).sum()
        ax.axhline(floor, color=color, ls=":", lw=1.2)
    bound = (
        [] if unstable else theorem2_bound(problem, steps, ema_decay=ema_decay, lr=lr, batch_size=batch_size)
    )
    ax.plot(
        np.arange(len(bound)), bound, color=SCHEME_COLORS["ema"], ls="--", lw=1.2, label="Theorem 2 (bound)"
    )
    ax.plot([], [], "o", ms=3.5, color="0.4", label=f"Monte Carlo ({trials} runs)")
    ax.plot([], [], ls=":", lw=1.2, color="0.4", label="noise floors")
    label_risk_axes(ax)
    ax.set_xlim(-0.05 * steps, 1.05 * steps)
    ax.set_ylim(*risk_range)
    slowest = float(np.max(np.abs(sgd_rate(problem.h, lr=lr))))
    if unstable:
        condition = instability_condition(problem, Hyperparams(lr, batch_size))
        mark_divergence(ax, np.arange(steps + 1), sgd, f"SGD and its EMA diverge: {condition}")
        verdict, effect = "<", "SGD diverges, and so does any average of its iterates"
    elif np.isclose(ema_decay, slowest, rtol=1e-9, atol=0.0):
        verdict, effect = "=", "SGD's slowest rate, but a lag that grows like t²"
    elif ema_decay < slowest:
        verdict, effect = "<", "keeps SGD's slowest rate, with a constant lag"
    else:
        verdict, effect = ">", "bias decays like γᵗ, slower than SGD"
    ax.set_title(
        f"η = {lr:.3g}, B = {batch_size}: γ = {ema_decay:.3g} {verdict} "
        f"maxᵢ |1 − ηhᵢ| = {slowest:.3g}\n({effect})"
    )
    # below the axes: with a large η the curves fill the whole plot area
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    return fig


def averaging_figure(
    batch_size: int = 64,
    ema_decay: float = 0.98,
    tail_fraction: float = 0.5,
    lr: float = 0.02,
    *,
    h: tuple[float, float] = (50.0, 1.0),
    c: tuple[float, float] = (50.0, 1.0),
    steps: int = 1000,
    risk_range: tuple[float, float] = (1e-6, 1e2),
) -> Figure:
    """Chapter 4: last iterate, uniform average, tail average and EMA on one problem (exact).

    The uniform (Polyak–Ruppert) average covers ``θ_0, …, θ_t``; the tail average covers the
    last ``tail_fraction`` of the run, ``θ_s, …, θ_t`` with ``s = round((1 − tail_fraction) ·
    steps)`` (before ``s`` it is the last iterate). The shaded stretch is where the uniform
    average is *worse* than the last iterate. The risk axis always spans ``risk_range``; ``s``
    and ``γ`` are in the title, so that the legend does not change.
    """
    if not 0.0 < tail_fraction <= 1.0:
        raise ValueError(f"tail_fraction must be in (0, 1], got {tail_fraction!r}")
    problem = NQM(h, c, theta0=[1.0, 1.0])
    hyper = {"lr": lr, "batch_size": batch_size}
    start = int(round((1.0 - tail_fraction) * steps))
    curves = {
        "sgd": (risk_curve(problem, steps, **hyper), "SGD, last iterate θₜ"),
        "uniform": (averaged_risk_curve(problem, steps, **hyper), "uniform average of θ₀..θₜ"),
        "tail": (averaged_risk_curve(problem, steps, start=start, **hyper), "tail average of θₛ..θₜ"),
        "ema": (risk_curve(problem, steps, ema_decay=ema_decay, **hyper), "EMA θ̃ₜ"),
    }
    fig, (ax,) = new_figure()
    for name, (curve, label) in curves.items():
        plot_theory(ax, curve, color=SCHEME_COLORS[name], label=label)
    worse = curves["uniform"][0] > curves["sgd"][0]
    ax.fill_between(
        np.arange(steps + 1),
        0,
        1,
        where=worse,
        transform=ax.get_xaxis_transform(),
        color=SCHEME_COLORS["uniform"],
        alpha=0.12,
        lw=0,
    )
    worse_steps = np.flatnonzero(worse)
    if worse_steps.size == 0:
        stretch = "never"
    elif worse_steps.size == worse_steps[-1]:  # exactly the steps 1, 2, …, last
        stretch = f"for t = 1..{worse_steps[-1]}"
    else:
        stretch = f"at {worse_steps.size} of {steps} steps"
    label_risk_axes(ax)
    ax.set_xlim(-0.05 * steps, 1.05 * steps)
    ax.set_ylim(*risk_range)
    ax.set_title(
        f"η = {lr:.3g}, B = {batch_size}, tail from s = {start}, γ = {ema_decay:.3g}\n"
        f"uniform average worse than last iterate {stretch} (shaded)"
    )
    ax.legend(loc="upper right")  # above every curve once the start has decayed
    return fig


# ---------------------------------------------------------------------- chapter 4's static figures


def theorem2_figure(
    lr: float = 0.02,
    ema_decay: float = 0.9,
    batch_size: int = 1,
    *,
    h: tuple[float, float] = (50.0, 1.0),
    c: tuple[float, float] = (50.0, 1.0),
    steps: int = 300,
) -> Figure:
    """Chapter 4: Theorem 2's two terms against the exact risk of the EMA (``θ(0) = (1, 1)``).

    Solid: the exact ``E[L(θ̃_t)]``; dashed: Theorem 2's right side; dash-dotted: its first term,
    which is the exact risk with the noise switched off (``c = 0``); dotted: the noise part of the
    exact risk (exact risk minus that), which rises to the grey line, Theorem 2's second term.
    """
    problem = NQM(h, c, theta0=[1.0, 1.0])
    noise_free = NQM(h, [0.0, 0.0], theta0=[1.0, 1.0])
    hyper = {"lr": lr, "batch_size": batch_size, "ema_decay": ema_decay}
    exact = risk_curve(problem, steps, **hyper)
    bias = risk_curve(noise_free, steps, **hyper)
    bound = theorem2_bound(problem, steps, **hyper)
    t = np.arange(steps + 1)
    fig, (ax,) = new_figure()
    plot_theory(ax, exact, color=SCHEME_COLORS["ema"], label="exact E[L(θ̃ₜ)]")
    ax.plot(t, bound, color="black", ls="--", lw=1.2, label="Theorem 2, right side")
    ax.plot(t, bias, color="0.5", ls="-.", lw=1.2, label="first term (= exact risk with c = 0)")
    ax.plot(
        t[1:],
        (exact - bias)[1:],
        color=SCHEME_COLORS["ema"],
        ls=":",
        lw=2,
        label="noise part of the exact risk",
    )
    ax.axhline(bound[-1] - bias[-1], color="0.5", lw=1, label="second term (its limit)")
    label_risk_axes(ax, ylabel=r"$\mathbb{E}[L(\tilde\theta_t)]$")
    ax.set_ylim(1e-4, 40)
    ax.set_title(f"η = {lr:.3g}, B = {batch_size}, γ = {ema_decay:.3g}: bias + noise = exact")
    ax.legend(loc="upper right")
    return fig


def ema_lag_figure(
    ema_decays: tuple[float, ...] = (0.9, 0.97, 0.98, 0.99, 0.995),
    lr: float = 0.02,
    *,
    h: tuple[float, float] = (50.0, 1.0),
    steps: int = 1500,
) -> Figure:
    """Chapter 4: the noise-free risk of the EMA for decays around SGD's slowest factor ``r_d``.

    Without noise (``c = 0``, ``θ(0) = (1, 1)``) the curves show only the bias: solid for
    ``γ < r_d = 1 − η h_d`` (SGD's rate, constant lag), dash-dotted at ``γ = r_d`` (lag ∝ t²),
    dashed above (decays like ``γ^t``); SGD's own curve in black.
    """
    noise_free = NQM(h, [0.0] * len(h), theta0=[1.0] * len(h))
    r_slowest = 1.0 - lr * min(h)
    fig, (ax,) = new_figure()
    plot_theory(ax, risk_curve(noise_free, steps, lr=lr), label="SGD (last iterate)")
    for index, gamma in enumerate(ema_decays):
        style = "-." if np.isclose(gamma, r_slowest, rtol=1e-9) else ("-" if gamma < r_slowest else "--")
        curve = risk_curve(noise_free, steps, lr=lr, ema_decay=gamma)
        plot_theory(ax, curve, color=coordinate_color(index), ls=style, label=f"EMA γ = {gamma:g}")
    label_risk_axes(ax)
    ax.set_ylim(1e-16, 50)
    ax.set_title(f"Noise-free (c = 0): γ < r_d = {r_slowest:.3g} solid, = r_d dash-dot, > r_d dashed")
    ax.legend(loc="lower left")
    return fig


def ema_batch_size_figure(
    lr: float = 0.02,
    ema_decay: float = 0.9,
    *,
    h: tuple[float, float] = (50.0, 1.0),
    c: tuple[float, float] = (50.0, 1.0),
    budget: int = 200,
    largest_batch: int = 16384,
) -> Figure:
    """Chapter 4: when the EMA helps, at a fixed ``η`` (``θ(0) = (1, 1)``).

    Top: SGD and its EMA at ``B = 1`` (solid) and ``B = largest_batch`` (dashed) over ``budget``
    steps. Bottom: the risk after ``budget`` steps against ``B`` (powers of two) for SGD, the EMA
    ``γ = ema_decay`` and the EMA ``γ = 0.98``, with the noise-free SGD risk dotted.
    """
    problem = NQM(h, c, theta0=[1.0, 1.0])
    noise_free = NQM(h, [0.0, 0.0], theta0=[1.0, 1.0])
    batch_sizes = 2 ** np.arange(int(np.log2(largest_batch)) + 1)
    fig, (top, bottom) = new_figure(nrows=2, height=7.5)
    for b, style in [(1, "-"), (largest_batch, "--")]:
        plot_theory(top, risk_curve(problem, budget, lr=lr, batch_size=b), ls=style, label=f"SGD, B = {b}")
        ema = risk_curve(problem, budget, lr=lr, batch_size=b, ema_decay=ema_decay)
        plot_theory(top, ema, color=SCHEME_COLORS["ema"], ls=style, label=f"EMA γ = {ema_decay:g}, B = {b}")
    label_risk_axes(top)
    top.set_title(f"η = {lr:g}")
    top.legend()
    for index, gamma in enumerate([0.0, ema_decay, 0.98]):
        final = [risk_curve(problem, budget, lr=lr, batch_size=b, ema_decay=gamma)[-1] for b in batch_sizes]
        label = "SGD (last iterate)" if gamma == 0 else f"EMA γ = {gamma:g}"
        color = "black" if gamma == 0 else coordinate_color(index + 1)
        bottom.loglog(batch_sizes, final, "o-", color=color, ms=3, label=label)
    bottom.axhline(risk_curve(noise_free, budget, lr=lr)[-1], color="0.5", ls=":", label="SGD, c = 0")
    bottom.set_xscale("log", base=2)
    bottom.set_xlabel("batch size $B$")
    bottom.set_ylabel(f"E[L] after T = {budget} steps")
    bottom.set_title(f"Same η = {lr:g} for every B")
    bottom.legend()
    return fig
