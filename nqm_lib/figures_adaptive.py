"""Chapter 9's figures: optimiser paths on loss contours and where noisy descent ends.

:func:`draw_loss_contours` draws the contours of a 2-D least-squares problem (used by the
chapter's static figures and by the widget). The two interactive figures are plain
functions of their slider values, in the style of :mod:`nqm_lib.figures`:

- :func:`optimiser_paths_figure` — an optimiser and its learning rate → paths on the
  contours of the small regression and the mean excess loss over many runs;
- :func:`landscape_figure` — gradient-noise level and learning rate → where many runs of
  noisy gradient descent on the 1-D landscape end, basin by basin.

Their axes do not depend on the slider values. SGD with a learning rate beyond its stability
limit is drawn: its paths leave the view with an arrow and its loss climbs out of the top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .adaptive import (
    SGD,
    AdaGrad,
    Adam,
    LeastSquares,
    Optimizer,
    RMSProp,
    basin_of,
    landscape_loss,
    landscape_minima,
    noisy_descent_1d,
    run_optimizer,
    small_regression,
)
from .plotting import (
    CEILING_FACTOR,
    coordinate_color,
    label_risk_axes,
    mark_divergence,
    mark_path_exit,
    new_figure,
    plain_log_ticks,
    plot_simulation,
    plot_theory,
    write_divergence,
)
from .validation import InstabilityError

__all__ = [
    "OPTIMISERS",
    "adaptive_steps_figure",
    "averaging_comparison_figure",
    "batch_size_figure",
    "coefficients_figure",
    "draw_loss_contours",
    "escape_figure",
    "landscape_figure",
    "optimiser_paths_figure",
    "power_schedules_figure",
    "regression_paths_figure",
    "tuned_optimizers_figure",
    "tuned_schedules_figure",
]


#: The chapter's optimisers by name, each built from its learning rate (PyTorch's other defaults).
OPTIMISERS = {"SGD": SGD, "AdaGrad": AdaGrad, "RMSProp": RMSProp, "Adam": Adam}


def draw_loss_contours(
    ax: Axes, problem: LeastSquares, xlim: tuple[float, float], ylim: tuple[float, float]
) -> None:
    """Chapter 9: log-spaced contours of the excess loss ``L(θ) − L(θ̂)`` of a 2-D problem, and ``θ̂``."""
    if problem.dim != 2:
        raise ValueError(f"contours need a problem with 2 parameters, got {problem.dim}")
    grid1, grid2 = np.meshgrid(np.linspace(*xlim, 120), np.linspace(*ylim, 120))
    excess = problem.excess_loss(np.stack([grid1, grid2], axis=-1))
    top = max(float(excess.max()), 1e-3)
    ax.contour(grid1, grid2, excess, levels=np.geomspace(top * 1e-4, top, 12), colors="0.6", linewidths=0.7)
    ax.plot(*problem.solution, "*", ms=14, color="black", label=r"minimiser $\hat\theta$", zorder=5)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel(r"$\theta_1$ (intercept)")
    ax.set_ylabel(r"$\theta_2$ (slope)")


class _Stopping(Optimizer):
    """An optimiser that holds each run at its first iterate whose excess loss exceeds ``ceiling``.

    Used for SGD beyond its stability limit, whose iterates grow geometrically: a held run
    stays far outside the view (its loss far above the axes), and nothing overflows.
    """

    def __init__(self, inner: Optimizer, problem: LeastSquares, ceiling: float) -> None:
        # The wrapped optimiser keeps the state and the step counter: nothing of the base class.
        self.inner, self.problem, self.ceiling = inner, problem, ceiling
        self.held: np.ndarray | None = None

    @property
    def lr(self) -> float | np.ndarray:
        """The wrapped optimiser's learning rate."""
        return self.inner.lr

    @lr.setter
    def lr(self, value: float | np.ndarray) -> None:
        self.inner.lr = value

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The wrapped optimiser's step, except for the runs already held."""
        new = self.inner.step(params, grad)
        if self.held is not None:
            new = np.where(self.held[..., None], params, new)
        passed = self.problem.excess_loss(new) > self.ceiling
        self.held = passed if self.held is None else self.held | passed
        return new


def optimiser_paths_figure(
    optimiser: str = "Adam",
    lr: float = 0.05,
    batch_size: int = 8,
    feature_mean: float = 2.0,
    *,
    steps: int = 150,
    runs: int = 100,
    seed: int = 0,
    feature_means: tuple[float, float] = (0.0, 3.0),
    loss_range: tuple[float, float] = (1e-5, 1e2),
) -> Figure:
    """Chapter 9: one optimiser on the small regression, paths and mean excess loss.

    The data are :func:`~nqm_lib.adaptive.small_regression` with ``feature_mean`` z̄ (a larger
    ``|z̄|`` makes intercept and slope compete and raises ``κ``). Left: contours of the excess
    loss with the paths of three runs from ``θ(0) = (−0.5, 2)``, in a view that holds the
    start and the minimiser for every z̄ in ``feature_means``. Right: the excess loss averaged
    over ``runs`` runs (solid) against plain SGD at ``η = 1/h_1`` (dashed), both with
    minibatches of ``batch_size``, on a log axis spanning ``loss_range``. SGD with
    ``η h_1 ≥ 2`` diverges: its paths leave the view with an arrow and its loss leaves the top
    of the axes, where the condition is written. Raises ``ValueError`` for an unknown optimiser.
    """
    if optimiser not in OPTIMISERS:
        raise ValueError(f"optimiser must be one of {sorted(OPTIMISERS)}, got {optimiser!r}")
    problem = small_regression(feature_mean=feature_mean)
    theta0 = np.array([-0.5, 2.0])
    h = np.linalg.eigvalsh(problem.hessian)  # ascending: h[-1] is h₁, the largest
    kwargs = {"batch_size": batch_size, "runs": runs, "seed": seed}
    chosen = OPTIMISERS[optimiser](lr)
    diverges = optimiser == "SGD" and lr * h[-1] >= 2.0  # the adaptive steps stay bounded
    if diverges:
        chosen = _Stopping(chosen, problem, CEILING_FACTOR * loss_range[1])
    path = run_optimizer(problem, chosen, theta0, steps, **kwargs)
    excess = problem.excess_loss(path)
    baseline = problem.excess_loss(run_optimizer(problem, SGD(1.0 / h[-1]), theta0, steps, **kwargs))

    fig, (left, right) = new_figure(2, height=3.7)
    ends = [small_regression(feature_mean=mu).solution for mu in feature_means]
    corners = np.array([theta0, *ends])
    reach = 0.6 * np.ptp(corners, axis=0).max()
    centre = (corners.min(axis=0) + corners.max(axis=0)) / 2
    draw_loss_contours(
        left, problem, (centre[0] - reach, centre[0] + reach), (centre[1] - reach, centre[1] + reach)
    )
    text = f"diverges: ηh₁ = {lr * h[-1]:.3g} ≥ 2"
    for run in range(3):
        color = coordinate_color(run)
        shown = len(path)
        if diverges:  # drawn until it leaves the view, with an arrow there
            shown = mark_path_exit(
                left, path[:, run, 0], path[:, run, 1], text if run == 0 else "", color=color
            )
        left.plot(path[:shown, run, 0], path[:shown, run, 1], ".-", ms=2, lw=0.8, color=color, alpha=0.8)
    if diverges and text not in [t.get_text() for t in left.texts]:  # too slow to leave the view
        write_divergence(left, text)
    left.plot(*theta0, "o", color="black", ms=6, label=r"start $\theta(0)$")
    left.set_title(f"{optimiser}, η = {lr:.3g}, B = {batch_size}, κ = {h[-1] / h[0]:.3g}")
    left.legend(loc="upper right")

    t = np.arange(steps + 1)
    mean = excess.mean(axis=1)
    right.plot(t, mean, color="black", lw=2, label="the optimiser on the left")
    right.plot(t, baseline.mean(axis=1), color="0.5", lw=1.5, ls="--", label="SGD, η = 1/h₁")
    right.set_yscale("log")
    right.set_xlim(-0.05 * steps, 1.05 * steps)
    right.set_ylim(*loss_range)
    if diverges:
        mark_divergence(right, t, mean, text)
    right.set_xlabel("step $t$")
    right.set_ylabel(r"$\mathbb{E}[L(\theta_t)] - L(\hat\theta)$")
    right.set_title(f"mean over {runs} runs")
    right.legend(loc="lower left")  # the top is where a diverging loss leaves
    return fig


def landscape_figure(
    noise_std: float = 10.0,
    lr: float = 0.03,
    *,
    theta0: float = -1.0,
    steps: int = 300,
    runs: int = 200,
    seed: int = 0,
) -> Figure:
    """Chapter 9: where ``runs`` runs of noisy gradient descent on the 1-D landscape end.

    Every run starts at ``theta0`` and takes ``steps`` steps ``θ ← θ − η (f'(θ) + ε)`` with
    ``ε ~ N(0, noise_std²)``. Top: the landscape ``f``, its local minima (triangles), where
    noise-free gradient descent ends (square) and a histogram of the runs' final iterates.
    Bottom: the share of runs that end in the basin of each local minimum.
    """
    minima = landscape_minima()
    with np.errstate(all="ignore"):
        final = noisy_descent_1d(theta0, steps, lr=lr, noise_std=noise_std, runs=runs, seed=seed)[-1]
        descent = noisy_descent_1d(theta0, steps, lr=lr, noise_std=0.0, runs=1)[-1, 0]
    if not (np.all(np.isfinite(final)) and np.isfinite(descent)):
        raise InstabilityError(f"unstable: noisy descent with η = {lr:.3g} diverges; lower η")
    shares = np.bincount(basin_of(final, minima), minlength=minima.size) / runs

    fig, (left, right) = new_figure(nrows=2, height=6.8)
    grid = np.linspace(-4.0, 10.0, 600)
    loss = landscape_loss(grid)
    bottom = loss.min() - 0.05 * np.ptp(loss)
    left.plot(grid, loss, color="black", lw=1.5, label=r"$f(\theta)$")
    left.plot(minima, landscape_loss(minima), "v", color="0.3", ms=6, label="local minima")
    left.plot(descent, landscape_loss(descent), "s", color="#1f77b4", ms=9, label="gradient descent ends")
    left.axvline(theta0, color="0.5", ls=":", lw=1, label=r"start $\theta(0)$")
    # The histogram of the final iterates stands on the bottom of the plot, its tallest bin
    # 40% as high as the landscape's range (the right panel gives the shares in numbers).
    heights, edges = np.histogram(np.clip(final, grid[0], grid[-1]), bins=70, range=(grid[0], grid[-1]))
    left.stairs(
        bottom + 0.4 * np.ptp(loss) * heights / heights.max(),
        edges,
        baseline=bottom,
        fill=True,
        color="#d62728",
        alpha=0.4,
        label=f"final θ of the {runs} noisy runs (histogram)",
    )
    left.set_xlim(grid[0], grid[-1])
    left.yaxis.set_major_locator(MaxNLocator(nbins=4))
    left.set_ylim(bottom, loss.max() + 0.05 * np.ptp(loss))
    left.set_xlabel(r"$\theta$")
    left.set_ylabel(r"$f(\theta)$")
    left.set_title(f"η = {lr:.3g}, gradient-noise std {noise_std:.3g}, {steps} steps")
    left.legend(loc="upper center")

    positions = np.arange(minima.size)
    right.bar(positions, shares, color="#d62728", alpha=0.6, label="noisy runs")
    gd_basin = int(basin_of(descent, minima))
    right.bar(gd_basin, 1.0, fill=False, edgecolor="#1f77b4", lw=2, label="gradient descent")
    right.set_xticks(positions, [f"{m:.2f}\nf = {landscape_loss(m):.2f}" for m in minima])
    right.set_xlabel("basin of the local minimum at θ")
    right.set_ylabel("share of runs ending there")
    right.set_ylim(0.0, 1.05)
    right.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])  # few ticks: each is text laid out on every redraw
    right.legend(loc="upper right")
    return fig


# ---------------------------------------------------------------------------------------------
# Chapter 9's static figures: plain functions of the numbers the chapter computes.
# ---------------------------------------------------------------------------------------------


def regression_paths_figure(
    problem: LeastSquares,
    theta0: object,
    settings: Sequence[tuple[str, int | None, float]],
    *,
    steps: int = 150,
    seed: int = 0,
) -> Figure:
    """Chapter 9: one SGD path per panel on the contours of a 2-D least-squares problem.

    ``settings`` holds ``(title, batch_size, lr)`` for each panel (``batch_size=None``: full
    batch); every path starts at ``theta0`` (black dot) and takes ``steps`` steps.
    """
    start = np.asarray(theta0, dtype=float)
    fig, axes = new_figure(len(settings), height=2.9)
    for index, (ax, (title, batch_size, lr)) in enumerate(zip(axes, settings, strict=True)):
        path = run_optimizer(problem, SGD(lr), start, steps, batch_size=batch_size, seed=seed)[:, 0]
        draw_loss_contours(ax, problem, (-1.0, 2.5), (-0.5, 2.5))
        ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=0.8, color=coordinate_color(1))
        ax.plot(*start, "o", color="black")
        ax.set_title(f"{title}, η = {lr:g}")
        if index:
            ax.set_ylabel("")
    return fig


def batch_size_figure(curves: Sequence[dict], *, target: float, runs_note: str = "") -> Figure:
    """Chapter 9: mean excess loss against steps (top) and against examples processed (bottom).

    Each entry of ``curves`` is a dict with ``label``, ``per_step`` (examples per step),
    ``theory`` (a curve over steps ``0..T``, drawn as a line) and optionally ``measured`` (the
    mean of the runs, drawn as dots every 10 steps). The dotted line is the ``target``.
    """
    fig, (top, bottom) = new_figure(nrows=2, height=7.0)
    for index, curve in enumerate(curves):
        color = coordinate_color(index)
        t = np.arange(len(curve["theory"]))
        for ax, x in ((top, t), (bottom, curve["per_step"] * t)):
            ax.plot(x, curve["theory"], color=color, lw=1.5, label=curve["label"])
            if curve.get("measured") is not None:
                ax.plot(x[::10], curve["measured"][::10], "o", ms=3, color=color, alpha=0.7)
    for ax in (top, bottom):
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 5)
        ax.axhline(target, color="black", ls=":", lw=1)
        ax.set_ylabel(r"$\mathbb{E}[L(\theta_t)] - L(\hat\theta)$")
    top.set_xlabel("step $t$")
    bottom.set_xlabel(r"examples processed $B\,t$")
    bottom.set_xscale("log")
    top.set_title(f"lines: local NQM (exact); dots: mean of the runs{runs_note}")
    bottom.set_title(f"the same against cost (dotted: target {target:g})")
    top.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def power_schedules_figure(
    lrs: np.ndarray,
    risks: np.ndarray,
    powers: Sequence[float],
    *,
    simulated: tuple[int, np.ndarray, np.ndarray] | None = None,
    floor: float | None = None,
    floor_label: str = "floor of the constant rate",
    title: str = "power schedules",
) -> Figure:
    """Chapter 9: power schedules ``η_t = η_0/(1 + t/τ)^a`` (top) and their exact risk (bottom).

    ``lrs`` has one schedule per row and ``risks`` the exact risk curve of each (one more
    column); both are drawn on log–log axes at about 400 log-spaced steps. ``simulated`` =
    ``(row, mean, stderr)`` adds a Monte Carlo estimate for one schedule; ``floor`` a dotted
    horizontal line (the floor of a constant rate) labelled ``floor_label``; ``title`` tops the
    schedules' panel.
    """
    horizon = lrs.shape[1]
    t = np.unique(np.geomspace(1, horizon, 400).astype(int))
    fig, (top, bottom) = new_figure(nrows=2, height=7.0)
    for index, power in enumerate(powers):
        color = coordinate_color(index)
        label = f"a = {power:g}" + (" (Robbins–Monro)" if 0.5 < power <= 1 else "")
        top.loglog(t, lrs[index, t - 1], color=color, lw=2, label=label)
        bottom.loglog(t, risks[index, t], color=color, lw=2)
    if simulated is not None:
        row, mean, stderr = simulated
        label = f"Monte Carlo, a = {powers[row]:g}"
        plot_simulation(bottom, mean, stderr, color=coordinate_color(row), label=label)
    if floor is not None:
        bottom.axhline(floor, color="black", ls=":", lw=1, label=floor_label)
    top.set_xlabel("step $t$")
    top.set_ylabel(r"$\eta_t = \eta_0 / (1 + t/\tau)^a$")
    top.set_title(title)
    top.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    label_risk_axes(bottom)
    bottom.set_xscale("log")
    bottom.set_title("exact risk on the worked example (colours as above)")
    bottom.legend(loc="lower left")
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def tuned_schedules_figure(
    schedules: Mapping[str, np.ndarray],
    risks: np.ndarray,
    budgets: np.ndarray,
    best_constant: np.ndarray,
    best_one_over_t: np.ndarray,
    *,
    ylim: tuple[float, float] = (1e-3, 30.0),
) -> Figure:
    """Chapter 9: tuned schedules (top), their exact risk (middle), best risk against the budget (bottom).

    ``schedules`` maps a name to its tuned learning rates and ``risks`` holds their exact risk
    curves, one row each. ``best_constant[T]`` and ``best_one_over_t[T]`` are the best risks after
    ``T`` steps over constant rates and over ``1/t`` schedules, drawn at the ``budgets``.
    """
    fig, (top, middle, bottom) = new_figure(nrows=3, height=9.0)
    for index, (name, lrs) in enumerate(schedules.items()):
        color = coordinate_color(index)
        top.plot(np.arange(lrs.size), lrs, color=color, lw=1.5, label=name)
        plot_theory(middle, risks[index], color=color)
    top.set_xlabel("step $t$")
    top.set_ylabel("ηₜ (tuned η₀)")
    top.set_title("the tuned schedules")
    top.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    label_risk_axes(middle)
    middle.set_ylim(*ylim)
    middle.set_title(f"exact risk, budget T = {risks.shape[1] - 1} (colours as above)")
    bottom.loglog(budgets, best_constant[budgets], color="black", lw=2, label="best constant η")
    label = "best 1/t schedule"
    bottom.loglog(budgets, best_one_over_t[budgets], color=coordinate_color(3), lw=2, label=label)
    bottom.set_xlabel("budget $T$ (steps)")
    bottom.set_ylabel(r"best $\mathbb{E}[L(\theta_T)]$")
    bottom.set_title("each budget tuned separately")
    bottom.legend()
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def averaging_comparison_figure(
    curves: Mapping[str, np.ndarray], *, marker: int | None = None, title: str = ""
) -> Figure:
    """Chapter 9: mean excess loss of the last iterate and of its averages, against the step, log–log.

    ``curves`` maps a name to the mean excess loss at steps ``1..T`` (the first entry is drawn in
    black); ``marker`` adds a dotted vertical line at that step.
    """
    fig, (ax,) = new_figure(height=4.4)
    for index, (name, mean) in enumerate(curves.items()):
        t = np.arange(1, mean.size + 1)
        ax.loglog(t, mean, color=coordinate_color(index) if index else "black", lw=2, label=name)
    if marker is not None:
        ax.axvline(marker, color="black", ls=":", lw=1)
    ax.set_xlabel("step $t$" + (f" (dotted: t = {marker})" if marker is not None else ""))
    ax.set_ylabel(r"mean of $L(\cdot) - L(\hat\theta)$ over runs")
    ax.set_title(title)
    ax.legend(loc="lower left")
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def adaptive_steps_figure(
    adam_lengths: Mapping[str, np.ndarray],
    effective_steps: Mapping[str, np.ndarray],
    *,
    shaded: tuple[int, int] | None = None,
) -> Figure:
    """Chapter 9: Adam's step length on a constant gradient (top), AdaGrad's and RMSProp's step (bottom).

    ``adam_lengths`` maps a label (e.g. bias correction on/off) to the step lengths divided by
    ``η``, drawn solid then dashed; ``effective_steps`` maps an optimiser's name to its effective
    step ``η/(√s_t + ε)``. ``shaded`` marks a range of steps in the bottom panel.
    """
    fig, (top, bottom) = new_figure(nrows=2, height=6.8)
    for style, (label, lengths) in zip(("-", "--", ":"), adam_lengths.items(), strict=False):
        top.plot(np.arange(1, lengths.size + 1), lengths, style, color="black", lw=2, label=label)
    top.set_xscale("log")
    top.set_xlabel("step $t$")
    top.set_ylabel("step length / η")
    top.set_title("Adam on a constant gradient, β = (0.9, 0.999)")
    top.legend()
    for index, (name, steps) in enumerate(effective_steps.items()):
        t = np.arange(1, steps.size + 1)
        bottom.semilogy(t, steps, color=coordinate_color(index), lw=1.5, label=name)
    if shaded is not None:
        bottom.axvspan(*shaded, color="0.9")
    bottom.set_xlabel("step $t$" + (" (shaded: gradients 10× smaller)" if shaded is not None else ""))
    bottom.set_ylabel(r"effective step $\eta / (\sqrt{s_t} + \epsilon)$")
    bottom.set_title("AdaGrad and RMSProp (α = 0.9), η = 1")
    bottom.legend()
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def tuned_optimizers_figure(
    constant: Mapping[str, tuple[float, np.ndarray]],
    decayed: Mapping[str, tuple[float, np.ndarray]],
    full_batch: np.ndarray,
    *,
    batch_size: int,
    n_examples: int,
    runs: int,
) -> Figure:
    """Chapter 9: mean excess loss of tuned optimisers against steps (top) and examples (bottom).

    ``constant`` and ``decayed`` map an optimiser's name to ``(lr, excess)`` with ``excess`` of
    shape ``(steps + 1, runs)``: constant rates are solid, cosine-decayed dotted (in the colour of
    the same optimiser in ``constant``). ``full_batch`` is gradient descent's excess loss per step,
    which costs ``n_examples`` examples a step (dashed).
    """
    fig, (top, bottom) = new_figure(nrows=2, height=7.4)
    colours = {name: coordinate_color(index) for index, name in enumerate(constant)}
    for style, results, suffix in (("-", constant, ""), (":", decayed, " + cosine")):
        for name, (lr, excess) in results.items():
            mean = excess.mean(axis=1)
            t = np.arange(mean.size)
            symbol = "η₀" if suffix else "η"
            colour, label = colours.get(name, "0.3"), f"{name}{suffix}, {symbol} = {lr:.3g}"
            top.semilogy(t, mean, style, color=colour, lw=2, label=label)
            bottom.loglog(batch_size * t[1:], mean[1:], style, color=colour, lw=2)
    steps = np.arange(full_batch.size)
    top.semilogy(steps, full_batch, "k--", lw=1.5, label="full batch, η = 1/h₁")
    bottom.loglog(n_examples * steps[1:], full_batch[1:], "k--", lw=1.5)
    for ax in (top, bottom):
        ax.set_ylabel(r"$\mathbb{E}[L(\theta_t)] - L(\hat\theta)$")
    top.set_xlabel("step $t$")
    bottom.set_xlabel("examples processed")
    top.set_title(f"tuned rates, B = {batch_size}, mean of {runs} fresh runs (dotted: cosine decay)")
    bottom.set_title("the same against cost")
    top.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    for ax in fig.axes:
        plain_log_ticks(ax)
    return fig


def coefficients_figure(
    theta_true: np.ndarray, solution: np.ndarray, finals: Mapping[str, np.ndarray]
) -> Figure:
    """Chapter 9: true coefficients (grey bars), the least-squares solution and each optimiser's end point.

    ``finals`` maps an optimiser's name to the coefficients one of its runs ends with, drawn as
    dots side by side.
    """
    fig, (ax,) = new_figure(height=4.4)
    genes = np.arange(theta_true.size)
    ax.bar(genes, theta_true, color="0.8", label=r"$\theta_{\mathrm{true}}$")
    ax.plot(genes, solution, "_", color="black", ms=12, mew=2, label=r"least squares $\hat\theta$")
    for index, (name, coefficients) in enumerate(finals.items()):
        offset = (index - (len(finals) - 1) / 2) * 0.15
        label = f"{name} (one run)"
        ax.plot(genes + offset, coefficients, "o", ms=3, color=coordinate_color(index), label=label)
    ax.set_xlabel("gene $j$")
    ax.set_ylabel(r"coefficient $\theta_j$")
    ax.set_title(f"recovered coefficients (grey: truth; {int(np.sum(theta_true != 0))} active genes)")
    ax.legend(ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    return fig


def escape_figure(
    noise_levels: Sequence[float],
    shares: Mapping[float, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    *,
    descent_loss: float,
    best_loss: float,
    runs: int,
    steps: int,
) -> Figure:
    """Chapter 9: where noisy descent on the 1-D landscape ends (top) and how low (bottom).

    ``shares[η] = (stay, best, mean_loss)``: for every noise level the share of ``runs`` runs that
    end in the starting basin (circles) and in the best basin (squares, dashed), and their mean
    final loss. ``descent_loss`` (dotted) and ``best_loss`` (dashed) are references.
    """
    fig, (top, bottom) = new_figure(nrows=2, height=7.4)
    for index, (lr, (stay, best, mean_loss)) in enumerate(shares.items()):
        color = coordinate_color(index)
        top.plot(noise_levels, stay, "o-", color=color, label=f"start basin, η = {lr:g}")
        top.plot(noise_levels, best, "s--", color=color, label=f"best basin, η = {lr:g}")
        bottom.plot(noise_levels, mean_loss, "o-", color=color, label=f"η = {lr:g}")
    bottom.axhline(descent_loss, color="black", ls=":", lw=1, label="gradient descent ends")
    bottom.axhline(best_loss, color="black", ls="--", lw=1, label="best minimum")
    top.set_xlabel("gradient-noise standard deviation")
    top.set_ylabel(f"share of {runs} runs")
    top.set_title(f"where the runs end after {steps} steps")
    top.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    bottom.set_xlabel("gradient-noise standard deviation")
    bottom.set_ylabel(r"mean final $f(\theta)$")
    bottom.set_title("how low they end")
    bottom.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig
