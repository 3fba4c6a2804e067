"""Chapter 8's figures: optimiser paths on loss contours and where noisy descent ends.

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
    mark_divergence,
    mark_path_exit,
    new_figure,
    write_divergence,
)
from .validation import InstabilityError

__all__ = ["OPTIMISERS", "draw_loss_contours", "landscape_figure", "optimiser_paths_figure"]

#: The chapter's optimisers by name, each built from its learning rate (PyTorch's other defaults).
OPTIMISERS = {"SGD": SGD, "AdaGrad": AdaGrad, "RMSProp": RMSProp, "Adam": Adam}


def draw_loss_contours(
    ax: Axes, problem: LeastSquares, xlim: tuple[float, float], ylim: tuple[float, float]
) -> None:
    """Chapter 8: log-spaced contours of the excess loss ``L(θ) − L(θ̂)`` of a 2-D problem, and ``θ̂``."""
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


class _Stopping:
    """An optimiser that holds each run at its first iterate whose excess loss exceeds ``ceiling``.

    Used for SGD beyond its stability limit, whose iterates grow geometrically: a held run
    stays far outside the view (its loss far above the axes), and nothing overflows.
    """

    def __init__(self, inner: Optimizer, problem: LeastSquares, ceiling: float) -> None:
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
    """Chapter 8: one optimiser on the small regression, paths and mean excess loss.

    The data are :func:`~nqm_lib.adaptive.small_regression` with ``feature_mean`` μ (a larger
    ``|μ|`` makes intercept and slope compete and raises ``κ``). Left: contours of the excess
    loss with the paths of three runs from ``θ(0) = (−0.5, 2)``, in a view that holds the
    start and the minimiser for every μ in ``feature_means``. Right: the excess loss averaged
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
    """Chapter 8: where ``runs`` runs of noisy gradient descent on the 1-D landscape end.

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
