"""The static figures of the chapter "PyTorch in practice", as plain functions of their data.

The chapter runs every optimiser, scheduler and training loop with PyTorch in view of the
reader; these functions only draw what it recorded (each creates its figure with
:func:`~nqm_lib.plotting.new_figure` and returns it). They take NumPy arrays and do not
import PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .plotting import coordinate_color, new_figure

__all__ = ["decay_paths_figure", "training_history_figure", "warmup_schedule_figure"]


def _as_array(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty 1-D array of finite numbers, got shape {array.shape}")
    return array


def decay_paths_figure(
    adam_paths: Mapping[float, object], adamw_paths: Mapping[float, object], *, lr: float, theta0: float
) -> Figure:
    """A weight with zero loss gradient under ``Adam(weight_decay=λ)`` and under ``AdamW``.

    ``adam_paths`` and ``adamw_paths`` map each weight decay ``λ`` to the weight after steps
    1, 2, …, k (the start ``theta0`` is prepended). Adam's paths are solid, AdamW's dashed,
    one colour per ``λ``; the decay ``theta0 (1 − ηλ)^k`` that AdamW follows is drawn as
    dots on its path. The weight axis is linear from 0 to ``theta0``.
    """
    if set(adam_paths) != set(adamw_paths) or not adam_paths:
        raise ValueError("adam_paths and adamw_paths must have the same, non-empty set of weight decays")
    fig, (ax,) = new_figure(height=3.8)
    for index, lam in enumerate(sorted(adam_paths)):
        color = coordinate_color(index)
        adam = np.concatenate([[theta0], _as_array(f"adam_paths[{lam}]", adam_paths[lam])])
        adamw = np.concatenate([[theta0], _as_array(f"adamw_paths[{lam}]", adamw_paths[lam])])
        steps = np.arange(adam.size)
        ax.plot(steps, adam, color=color, lw=2, label=f"Adam(weight_decay={lam:g})")
        ax.plot(
            np.arange(adamw.size), adamw, color=color, lw=2, ls="--", label=f"AdamW(weight_decay={lam:g})"
        )
        every = max(1, adamw.size // 12)
        k = np.arange(0, adamw.size, every)
        ax.plot(k, theta0 * (1 - lr * lam) ** k, "o", ms=4, color=color)
    ax.plot([], [], "o", ms=4, color="0.4", label="θ₀ (1 − ηλ)ᵏ")
    ax.set_ylim(0, 1.05 * theta0)
    ax.set_xlabel("step k")
    ax.set_ylabel("weight θₖ (zero loss gradient)")
    ax.set_title(f"From θ₀ = {theta0:g} with η = {lr:g}: Adam's L2 ignores λ, AdamW decays")
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    return fig


def warmup_schedule_figure(warm: object, reference: object, beyond: object, *, t_max: int) -> Figure:
    """A linear warm-up then cosine, from PyTorch and from the library, and a cosine stepped past ``T_max``.

    ``warm`` is the learning rate per step of ``SequentialLR(LinearLR, CosineAnnealingLR)``
    (line), ``reference`` the same schedule from :func:`~nqm_lib.schedules.cosine_schedule`
    (dots, every 4th step), ``beyond`` the rates of a ``CosineAnnealingLR(T_max=t_max)``
    stepped past ``t_max`` (dashed), with ``T_max`` marked.
    """
    warm_rates, reference_rates = _as_array("warm", warm), _as_array("reference", reference)
    beyond_rates = _as_array("beyond", beyond)
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
    series = {key: _as_array(f"history[{key!r}]", history[key]) for key in ("train", "val", "val_ema")}
    series.update({key: _as_array(f"history[{key!r}]", history[key]) for key in ("excess", "excess_ema")})
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
    return fig
