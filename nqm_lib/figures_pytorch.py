"""Minibatch noise on a finite training set: with versus without replacement (chapter 7).

On a training set of ``N`` examples the minibatch gradient is the average of ``B``
per-example gradients. Drawn *with* replacement (``RandomSampler(replacement=True)`` in
PyTorch) its variance is ``c / B``; drawn *without* replacement (one batch of
``DataLoader(shuffle=True)``) it is ``(c / B)(N − B)/(N − 1)``, which vanishes at ``B = N``
(gradient descent). Here ``c`` is the variance of the per-example gradients over the
training set (divisor ``N``). This module does not import PyTorch: the sampling schemes are
reproduced with NumPy so that the widget redraws quickly.
"""

from __future__ import annotations

import numbers

import numpy as np
from matplotlib.figure import Figure

from .plotting import coordinate_color, new_figure
from .problem import NQM
from .validation import check_batch_size, check_positive

__all__ = ["minibatch_noise_figure", "minibatch_noise_variance"]


def _check_n_examples(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ValueError(f"n_examples must be an integer >= 2, got {value!r}")
    return int(value)


def _variance(c: np.ndarray, batch_size: np.ndarray | int, n_examples: int, replacement: bool) -> np.ndarray:
    if replacement:
        return c / batch_size
    return c / batch_size * (n_examples - batch_size) / (n_examples - 1)


def minibatch_noise_variance(
    per_example_variance: object, batch_size: int, n_examples: int, *, replacement: bool
) -> np.ndarray:
    """Variance of a minibatch-mean gradient on a training set of ``n_examples`` examples (chapter 7).

    With replacement: ``c / B``. Without replacement (a uniformly random subset of size
    ``B``): ``(c / B) · (N − B) / (N − 1)``, the finite-population correction. ``c`` is the
    per-example variance over the training set with divisor ``N`` (one value per coordinate,
    or an array). Raises ``ValueError`` if ``B > N`` without replacement.
    """
    c = np.asarray(per_example_variance, dtype=float)
    batch_size = check_batch_size(batch_size)
    n_examples = _check_n_examples(n_examples)
    if not replacement and batch_size > n_examples:
        raise ValueError(
            f"batch_size = {batch_size} exceeds n_examples = {n_examples}: "
            "a batch drawn without replacement cannot be larger than the training set"
        )
    return _variance(c, batch_size, n_examples, replacement)


def _minibatch_means(
    values: np.ndarray, batch_size: int, draws: int, rng: np.random.Generator, *, replacement: bool
) -> np.ndarray:
    n = values.size
    if replacement:
        index = rng.integers(n, size=(draws, batch_size))
    else:  # a uniformly random B-subset: the B smallest of n uniform keys (a shuffled epoch's batch)
        index = np.argpartition(rng.random((draws, n)), batch_size - 1, axis=1)[:, :batch_size]
    return values[index].mean(axis=1)


def minibatch_noise_figure(
    batch_size: int = 32,
    n_examples: int = 64,
    *,
    theta: float = 1.0,
    h: float = 2.0,
    sigma: float = 1.0,
    draws: int = 2000,
    seed: int = 0,
    max_batch: int = 128,
) -> Figure:
    """Chapter 7: minibatch gradients on a finite training set, with and without replacement.

    The training set is ``n_examples`` draws of the one-coordinate data model of chapter 1
    (per-example loss ``½ h (x − θ)²``, ``x ~ N(0, σ²)``), so the per-example gradients at
    ``θ`` are ``h (θ − x_n)``. Top: histograms of ``draws`` minibatch gradients for both
    sampling schemes, as the share of the minibatches in each bin, with the shares the normal
    laws of the exact variances of :func:`minibatch_noise_variance` give, and the full-batch
    gradient (dashed). Below: the exact variance against ``B`` for both schemes, and the
    measured variances at the chosen ``B``. The panels are stacked, so that the figure fits the
    text column (``FIGURE_WIDTH``). The axes do not depend on ``B`` and ``N`` (the bins span
    ``hθ ± 3.5 hσ``, the single-example spread; ``B`` runs to ``max_batch``), so the histograms
    narrow as ``B`` grows. A batch larger than the training set cannot be drawn without
    replacement: then only the scheme with replacement is drawn, and the figure says so.
    """
    batch_size = check_batch_size(batch_size)
    n_examples = _check_n_examples(n_examples)
    sigma = check_positive("sigma", sigma)
    problem = NQM.from_data_model([h], [sigma], theta0=[theta])
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(n_examples) * sigma
    gradients = problem.h[0] * (theta - data)
    full_gradient = gradients.mean()
    c = gradients.var()  # divisor N: the training set is the whole population

    fig, (left, right) = new_figure(nrows=2, height=6.6)
    schemes = [
        ("with replacement", True, coordinate_color(0)),
        ("without replacement", False, coordinate_color(1)),
    ]
    spread = 3.5 * problem.h[0] * sigma
    bins = np.linspace(problem.h[0] * theta - spread, problem.h[0] * theta + spread, 71)
    width = bins[1] - bins[0]
    grid = np.linspace(bins[0], bins[-1], 200)
    for label, replacement, color in schemes:
        possible = replacement or batch_size <= n_examples
        # with replacement any B works; without, B = N has variance 0 (off a log axis)
        sizes = np.arange(1, max(max_batch, batch_size) + 1 if replacement else n_examples)
        right.plot(
            sizes, _variance(c, sizes, n_examples, replacement), color=color, lw=2, label=f"exact, {label}"
        )
        right.plot([], [], "o", ms=7, color=color, label=f"measured, {label}")
        if not possible:
            left.stairs([], [bins[0]], color=color, lw=1.5, label=label)
            continue
        means = _minibatch_means(gradients, batch_size, draws, rng, replacement=replacement)
        shares = np.histogram(means, bins=bins)[0] / draws
        left.stairs(shares, bins, lw=1.5, color=color, label=label)
        variance = float(_variance(c, batch_size, n_examples, replacement))
        if variance > 0:
            density = np.exp(-0.5 * (grid - full_gradient) ** 2 / variance) / np.sqrt(2 * np.pi * variance)
            left.plot(grid, density * width, color=color, lw=1, alpha=0.8)
            right.plot(batch_size, means.var(), "o", ms=7, color=color)
    if batch_size > n_examples:
        left.text(
            0.98,
            0.95,
            f"without replacement, B ≤ N = {n_examples}:\nB = {batch_size} examples cannot be drawn",
            transform=left.transAxes,
            ha="right",
            va="top",
            color=coordinate_color(1),
        )
    left.set_xlim(bins[0], bins[-1])
    left.set_ylim(0.0, 1.05)
    left.axvline(
        full_gradient, color="black", ls="--", lw=1, label=r"full-batch gradient $\nabla\hat L(\theta)$"
    )
    left.set_xlabel(r"minibatch gradient $g_{\mathcal{B}}(\theta)$")
    left.set_ylabel("share of minibatches per bin")
    left.set_title(f"{draws} minibatches, B = {batch_size}, N = {n_examples}")
    left.legend(loc="upper left", fontsize=8)

    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlim(0.8, 1.25 * max_batch)
    single = (problem.h[0] * sigma) ** 2  # the variance of one example's gradient, about c
    right.set_ylim(single / max_batch**2, 3.0 * single)
    right.set_xlabel("batch size $B$ (without replacement, $B = N$ is GD)")
    right.set_ylabel(r"$\operatorname{Var}[g_{\mathcal{B}}(\theta)]$")
    ratio = (
        f"{(n_examples - batch_size) / (n_examples - 1):.3f}" if batch_size <= n_examples else "none (B > N)"
    )
    right.set_title(f"variance ratio without/with: (N − B)/(N − 1) = {ratio}")
    right.legend(loc="lower left", fontsize=8)
    return fig
