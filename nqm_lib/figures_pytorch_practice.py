"""The figures of the chapter "PyTorch in practice", as plain functions of their data or settings.

The chapter runs every optimiser, scheduler and training loop with PyTorch in view of the
reader; the static figures only draw what it recorded (each creates its figure with
:func:`~nqm_lib.plotting.new_figure` and returns it). The interactive
:func:`weight_decay_paths_figure` recomputes Adam's path with the NumPy Adam of
:mod:`nqm_lib.adaptive` (PyTorch's conventions) at every move. Nothing here imports PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .adaptive import Adam
from .figures_pytorch_loop import _as_array  # the same checks of the arrays a figure is given
from .plotting import coordinate_color, new_figure
from .validation import check_nonnegative, check_positive, check_steps

__all__ = ["training_history_figure", "warmup_schedule_figure", "weight_decay_paths_figure"]

#: Adam's ``eps`` (PyTorch's default), the scale λ|θ| must be far above for L2 to be λ-free.
_ADAM_EPS = 1e-8


def _adam_l2_path(weight_decay: float, lr: float, steps: int, theta0: float) -> np.ndarray:
    """``θ_0 … θ_steps`` of ``Adam(weight_decay=λ)`` on a loss with zero gradient (its gradient is ``λθ``)."""
    optimizer, theta, path = Adam(lr=lr), np.array([theta0]), [theta0]
    for _ in range(steps):
        theta = optimizer.step(theta, weight_decay * theta)
        path.append(theta[0])
    return np.array(path)


def weight_decay_paths_figure(weight_decay: float = 0.1, lr: float = 0.01, *, steps: int = 300) -> Figure:
    """A weight with zero loss gradient under ``Adam(weight_decay=λ)`` and under ``AdamW`` (interactive).

    From ``θ_0 = 2``: Adam with L2 regularisation (solid; NumPy's :class:`~nqm_lib.adaptive.Adam`,
    PyTorch's conventions, on the penalty's gradient ``λθ``), and the decoupled decay of
    ``AdamW``, ``θ_0 (1 − ηλ)^k`` (dashed). The thick grey line is Adam's path at ``λ = 1``,
    which is the path for every ``λ`` as long as ``λ|θ|`` is far above Adam's ``ε = 1e-8``.
    The axes are the same for every ``λ`` and ``η`` (steps 0 … ``steps``, weight −0.1 … 2.1).
    """
    weight_decay = check_nonnegative("weight_decay", weight_decay)
    lr = check_positive("lr", lr)
    steps = check_steps(steps)
    theta0 = 2.0
    k = np.arange(steps + 1)
    fig, (ax,) = new_figure(height=4.4)
    ax.plot(k, _adam_l2_path(1.0, lr, steps, theta0), color="0.75", lw=6, label="Adam(weight_decay=1)")
    ax.plot(
        k,
        _adam_l2_path(weight_decay, lr, steps, theta0),
        color=coordinate_color(0),
        lw=2,
        label=f"Adam(weight_decay={weight_decay:.3g})",
    )
    ax.plot(
        k,
        theta0 * (1 - lr * weight_decay) ** k,
        color=coordinate_color(1),
        lw=2,
        ls="--",
        label=f"AdamW(weight_decay={weight_decay:.3g}) = θ₀ (1 − ηλ)ᵏ",
    )
    ax.set_xlim(0, steps)
    ax.set_ylim(-0.05 * theta0, 1.05 * theta0)
    ax.set_xlabel("step k")
    ax.set_ylabel("weight θₖ (zero loss gradient)")
    ax.set_title(
        f"η = {lr:.3g}, λ = {weight_decay:.3g}: at the start λθ₀ = {weight_decay * theta0 / _ADAM_EPS:.3g} ε"
    )
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    return fig


def warmup_schedule_figure(warm: object, reference: object, beyond: object, *, t_max: int) -> Figure:
    """A linear warm-up then cosine, from PyTorch and from the library, and a cosine stepped past ``T_max``.

    ``warm`` is the learning rate per step of ``SequentialLR(LinearLR, CosineAnnealingLR)``
    (line), ``reference`` the same schedule from :func:`~nqm_lib.schedules.cosine_schedule`
    (dots, every 4th step), ``beyond`` the rates of a ``CosineAnnealingLR(T_max=t_max)``
    stepped past ``t_max`` (dashed), with ``T_max`` marked.
    """
    warm_rates, reference_rates = _as_array("warm", warm, 1), _as_array("reference", reference, 1)
    beyond_rates = _as_array("beyond", beyond, 1)
    if warm_rates.size != reference_rates.size:
        raise ValueError("warm and reference must have the same length")
    fig, (ax,) = new_figure(height=3.2)
    ax.plot(warm_rates, color=coordinate_color(0), lw=2, label="SequentialLR(LinearLR, CosineAnnealingLR)")
    k = np.arange(0, reference_rates.size, 4)
    ax.plot(
        k,
        reference_rates[k],
        "o",
        ms=3.5,
        color="black",
        label=f"cosine_schedule({reference_rates.size}, warmup=…) of nqm_lib.schedules",
    )
    ax.plot(
        beyond_rates, color=coordinate_color(1), lw=1.5, ls="--", label=f"CosineAnnealingLR(T_max={t_max})"
    )
    top = max(warm_rates.max(), beyond_rates.max())
    ax.axvline(t_max, color="0.5", ls=":", lw=1)
    ax.annotate("T_max", (t_max, 1.05 * top), ha="center", color="0.3")
    ax.set_ylim(0, 1.55 * top)
    ax.set_xlabel("step t (scheduler.step() calls)")
    ax.set_ylabel("learning rate ηₜ")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def training_history_figure(history: Mapping[str, Sequence[float]], *, floor: float) -> Figure:
    """The complete example's run, epoch by epoch: losses on top, distance to the truth below.

    ``history`` holds one value per epoch under ``"train"`` (mean training loss), ``"val"``
    and ``"val_ema"`` (validation loss of the model and of its EMA), and ``"excess"`` and
    ``"excess_ema"`` (their exact excess population loss); ``floor`` is the validation loss
    of the true parameters (dotted). Both panels have log-scale losses.
    """
    keys = ("train", "val", "val_ema", "excess", "excess_ema")
    series = {key: _as_array(f"history[{key!r}]", history[key], 1) for key in keys}
    if len({values.size for values in series.values()}) != 1:
        raise ValueError("every series of history must have one value per epoch")
    epochs = np.arange(1, series["train"].size + 1)
    fig, (losses, distance) = new_figure(nrows=2, height=6.0)
    losses.plot(
        epochs, series["train"], "o-", ms=3, color="0.4", label="training loss (epoch mean, augmented)"
    )
    losses.plot(epochs, series["val"], "o-", ms=3, color=coordinate_color(0), label="validation, model")
    losses.plot(epochs, series["val_ema"], "o-", ms=3, color=coordinate_color(1), label="validation, EMA")
    losses.axhline(floor, color="black", ls=":", lw=1, label="validation loss of the true parameters")
    losses.set_yscale("log")
    losses.set_ylabel("MSE")
    losses.set_title("Losses")
    losses.legend(fontsize=8, ncol=2)
    distance.plot(epochs, series["excess"], "o-", ms=3, color=coordinate_color(0), label="model")
    distance.plot(epochs, series["excess_ema"], "o-", ms=3, color=coordinate_color(1), label="EMA")
    distance.set_yscale("log")
    distance.set_ylabel("excess population MSE")
    distance.set_title("Distance to the truth")
    distance.legend(fontsize=8)
    for ax in (losses, distance):
        ax.set_xlabel("epoch")
    distance.minorticks_off()  # (the losses span one decade: they keep the minor ticks to be read)
    return fig
