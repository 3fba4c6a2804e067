"""The static figures of chapter 7, "PyTorch: the training loop", as plain functions of their data.

The chapter computes every quantity with PyTorch in view of the reader; these functions only
draw what it computed (each creates its figure with :func:`~nqm_lib.plotting.new_figure` and
returns it). They take NumPy arrays and do not import PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .plotting import coordinate_color, label_risk_axes, new_figure, plot_simulation, plot_theory

__all__ = [
    "epoch_noise_floor_figure",
    "learning_rate_schedules_figure",
    "least_squares_risk_figure",
    "weight_decay_risk_figure",
    "zero_grad_figure",
]


def _as_array(name: str, values: object, ndim: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != ndim or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} must be a non-empty {ndim}-D array of finite numbers, got shape {array.shape}"
        )
    return array


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"these arrays must have the same length: {lengths}")


def least_squares_risk_figure(
    sizes: Sequence[int], train_risk: object, test_risk: object, *, d: int, noise_std: float
) -> Figure:
    """Training and population risk of the least-squares fit against the training-set size ``N``.

    ``train_risk`` and ``test_risk`` have shape ``(len(sizes), training sets)``: the measured
    ``L̂(θ̂)`` and ``L(θ̂)`` of each fitted training set, drawn as means with ±2 standard
    errors. The exact expectations ``(σ_ε²/2)(N − d)/N`` and ``(σ_ε²/2)(1 + d/(N − d − 1))``
    are the black lines, and ``L(θ*) = σ_ε²/2`` the dotted one.
    """
    sizes_array = _as_array("sizes", sizes, 1)
    train, test = _as_array("train_risk", train_risk, 2), _as_array("test_risk", test_risk, 2)
    _same_length(sizes=sizes_array, train_risk=train, test_risk=test)
    if np.any(sizes_array <= d + 1):
        raise ValueError(f"every training-set size must exceed d + 1 = {d + 1}, got sizes {sizes_array}")
    s2 = noise_std**2
    n_grid = np.geomspace(d + 1.5, 1.1 * sizes_array.max(), 200)
    fig, (ax,) = new_figure(height=3.8)
    ax.plot(
        n_grid,
        s2 / 2 * (1 + d / (n_grid - d - 1)),
        color="black",
        lw=2,
        label=r"theory: $\mathbb{E}\,L(\hat\theta)$",
    )
    ax.plot(
        n_grid,
        s2 / 2 * (n_grid - d) / n_grid,
        color="black",
        lw=2,
        ls="--",
        label=r"theory: $\mathbb{E}\,\hat L(\hat\theta)$",
    )
    n_sets = train.shape[1]
    for values, color, label in [(test, 1, "population risk"), (train, 0, "training risk")]:
        stderr = values.std(axis=1) / np.sqrt(n_sets)
        ax.errorbar(
            sizes_array,
            values.mean(axis=1),
            2 * stderr,
            fmt="o",
            color=coordinate_color(color),
            label=f"measured {label} ({n_sets} training sets)",
        )
    ax.axhline(s2 / 2, color="0.5", lw=1, ls=":", label=r"$\sigma_\varepsilon^2/2 = L(\theta^\star)$")
    ax.set_xscale("log")
    ax.minorticks_off()  # decades are enough to read N off, and minor ticks cost a third of the drawing
    ax.set_ylim(0, 1.4 * s2)
    ax.set_xlabel("training-set size N")
    ax.set_ylabel("risk of the least-squares fit")
    ax.set_title(f"Least squares, d = {d}: training risk is optimistic by about σ²_ε d/N")
    ax.legend(fontsize=8)
    return fig


def epoch_noise_floor_figure(
    lrs: Sequence[float],
    floor_with: object,
    floor_without: object,
    nqm_floor: object,
    *,
    n_examples: int,
    batch_size: int,
    runs: int,
) -> Figure:
    """End-of-epoch excess training risk of SGD against ``η``: with replacement, shuffled, and the NQM.

    ``floor_with`` and ``floor_without`` are the measured floors for
    ``RandomSampler(replacement=True)`` and ``DataLoader(shuffle=True)`` (dots), ``nqm_floor``
    the prediction of the training set's NQM for sampling with replacement (line); one value
    per learning rate in ``lrs``. Log–log axes, the learning rates as ticks.
    """
    rates = _as_array("lrs", lrs, 1)
    floors = {
        True: _as_array("floor_with", floor_with, 1),
        False: _as_array("floor_without", floor_without, 1),
    }
    nqm = _as_array("nqm_floor", nqm_floor, 1)
    _same_length(lrs=rates, floor_with=floors[True], floor_without=floors[False], nqm_floor=nqm)
    fig, (ax,) = new_figure(height=3.8)
    ax.plot(rates, nqm, color=coordinate_color(0), lw=2, label="NQM of the training set (with replacement)")
    for replacement, color, label in [
        (True, 0, "RandomSampler(replacement=True)"),
        (False, 1, "DataLoader(shuffle=True)"),
    ]:
        ax.plot(
            rates, floors[replacement], "o", ms=7, color=coordinate_color(color), label=f"measured, {label}"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rates, [f"{lr:g}" for lr in rates])
    ax.minorticks_off()
    ax.set_xlabel("learning rate η")
    ax.set_ylabel(r"end-of-epoch $\mathbb{E}[\hat L(\theta) - \hat L(\hat\theta)]$")
    ax.set_title(f"Noise floor of SGD, N = {n_examples}, B = {batch_size}, {runs} runs")
    ax.legend(fontsize=8)
    return fig


def zero_grad_figure(
    correct: object, forgotten: object, momentum_one: object, *, floor: float, lr: float, batch_size: int
) -> Figure:
    """Training risk per step with ``zero_grad()``, without it, and of ``SGD(momentum=1)``.

    The three arrays hold ``L̂(θ_t)`` after every step; ``momentum_one`` is drawn as crosses
    at every 6th step over the line of ``forgotten`` (they coincide when the identity holds),
    and ``floor`` = ``L̂(θ̂)`` as a dotted line.
    """
    runs = {
        "correct": _as_array("correct", correct, 1),
        "forgotten": _as_array("forgotten", forgotten, 1),
        "momentum_one": _as_array("momentum_one", momentum_one, 1),
    }
    _same_length(**runs)
    steps = np.arange(1, runs["correct"].size + 1)
    fig, (ax,) = new_figure(height=4.2)
    ax.plot(steps, runs["correct"], color=coordinate_color(0), lw=2, label="with optimizer.zero_grad()")
    ax.plot(steps, runs["forgotten"], color=coordinate_color(1), lw=1.5, label="without zero_grad()")
    ax.plot(
        steps[::6],
        runs["momentum_one"][::6],
        "x",
        ms=4,
        color="black",
        label="SGD with momentum β = 1 (every 6th step)",
    )
    ax.axhline(floor, color="0.5", ls=":", lw=1, label=r"$\hat L(\hat\theta)$")
    label_risk_axes(ax, ylabel=r"training risk $\hat L(\theta_t)$")
    ax.minorticks_off()
    ax.set_title(f"Forgetting zero_grad(): gradients accumulate, η = {lr:g}, B = {batch_size}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return fig


def learning_rate_schedules_figure(
    schedules: Mapping[str, object], plateau_rates: object, plateau_metric: object
) -> Figure:
    """Learning rate per epoch of each scheduler (top) and ``ReduceLROnPlateau`` at work (bottom).

    ``schedules`` maps a label to the rates a scheduler produced, one per epoch (drawn in the
    coordinate colours); ``plateau_rates`` are the rates of ``ReduceLROnPlateau`` (dashed,
    black), and ``plateau_metric`` the metric it was given after each epoch, drawn below on a
    log scale with a dotted line at every epoch where the rate dropped.
    """
    plateau_lr = _as_array("plateau_rates", plateau_rates, 1)
    metric = _as_array("plateau_metric", plateau_metric, 1)
    _same_length(plateau_rates=plateau_lr, plateau_metric=metric)
    fig, (top, bottom) = new_figure(nrows=2, height=7.0)
    for index, (name, rates) in enumerate(schedules.items()):
        values = _as_array(f"schedules[{name!r}]", rates, 1)
        top.plot(np.arange(values.size), values, color=coordinate_color(index), lw=2, label=name)
    epochs = np.arange(plateau_lr.size)
    top.plot(
        epochs, plateau_lr, color="black", lw=2, ls="--", label="ReduceLROnPlateau(factor=0.5, patience=2)"
    )
    top.set_yscale("log")
    top.set_xlabel("epoch e")
    top.set_ylabel("learning rate η")
    top.set_title("Schedules drawn by torch.optim.lr_scheduler")
    top.legend(loc="lower left", fontsize=8)

    bottom.plot(
        epochs, metric, color="black", lw=2, label=r"metric: exact $\mathbb{E}[L(\theta)]$ after the epoch"
    )
    drops = np.flatnonzero(np.diff(plateau_lr) < 0) + 1
    for k, epoch in enumerate(drops):
        bottom.axvline(epoch, color="0.5", ls=":", lw=1, label="learning rate halved" if k == 0 else None)
    label_risk_axes(bottom)
    bottom.set_xlabel("epoch e")
    bottom.set_title("ReduceLROnPlateau halves η when the risk stalls")
    for ax in (top, bottom):
        ax.minorticks_off()
    bottom.legend(fontsize=8)
    return fig


def weight_decay_risk_figure(
    weight_decays: Sequence[float],
    theory: object,
    floors: object,
    simulated: object,
    simulated_stderr: object,
    *,
    h: Sequence[float],
    lr: float,
    momentum: float,
) -> Figure:
    """Exact risk of SGD with weight decay against PyTorch's Monte Carlo, in total and for coordinate 2.

    For each ``λ`` in ``weight_decays`` (one colour each): ``theory`` and ``simulated`` have
    shape ``(len(λ), steps + 1, d)`` and hold the per-coordinate share of the original loss
    ``½ h_i θ_i²``; ``floors`` has shape ``(len(λ), d)``; ``simulated_stderr`` has shape
    ``(len(λ), steps + 1)`` (of the total). Top: the total risk, theory as lines and Monte
    Carlo as dots with ±2 standard errors; bottom: the flat coordinate 2 with its noise floor
    (dotted).
    """
    lams = _as_array("weight_decays", weight_decays, 1)
    theory_array, simulated_array = _as_array("theory", theory, 3), _as_array("simulated", simulated, 3)
    floors_array, stderr = _as_array("floors", floors, 2), _as_array("simulated_stderr", simulated_stderr, 2)
    _same_length(
        weight_decays=lams, theory=theory_array, floors=floors_array, simulated=simulated_array, stderr=stderr
    )
    if theory_array.shape != simulated_array.shape or theory_array.shape[2] < 2:
        raise ValueError("theory and simulated must have the same shape (len(λ), steps + 1, d) with d >= 2")
    curvatures = np.asarray(h, dtype=float)
    fig, (total, flat) = new_figure(nrows=2, height=7.4)
    for index, lam in enumerate(lams):
        color = coordinate_color(index)
        plot_theory(total, theory_array[index].sum(axis=1), color=color, label=f"theory, λ = {lam:g}")
        plot_simulation(
            total,
            simulated_array[index].sum(axis=1),
            stderr[index],
            color=color,
            label=f"torch, weight_decay={lam:g}",
        )
        plot_theory(flat, theory_array[index, :, 1], color=color, label=f"h₂ + λ = {curvatures[1] + lam:g}")
        plot_simulation(flat, simulated_array[index, :, 1], color=color)
        flat.axhline(floors_array[index, 1], color=color, ls=":", lw=1)
    label_risk_axes(total)
    spectrum = ", ".join(f"{value:g}" for value in curvatures)
    total.set_title(f"Expected risk, h = ({spectrum}), η = {lr:g}, β = {momentum:g}")
    total.legend(loc="upper right", fontsize=8, ncol=2)
    label_risk_axes(flat, ylabel=r"$\mathbb{E}[\frac{1}{2} h_2 \theta_2(t)^2]$")
    flat.set_title("The flat coordinate (dotted: noise floors)")
    for ax in (total, flat):
        ax.minorticks_off()
    flat.legend(fontsize=8)
    return fig
