"""Figures of chapter 10: real networks' steps to target against the NQM measured along training.

The data come from ``experiments/real_network.py`` (``make experiment``), read with
:func:`nqm_lib.network_results.load_results`. Every function here is a plain function of its
parameters that draws one figure with :func:`nqm_lib.plotting.new_figure` and returns it. This
module does not import PyTorch, so the chapter's interactive figure redraws quickly.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

from .network_results import OPTIMISERS, SETTINGS, load_results, sweep_table
from .plotting import coordinate_color, new_figure

__all__ = [
    "along_training_figure",
    "best_lr_figure",
    "digits_figure",
    "draw_steps",
    "network_curve_figure",
    "noise_scale_figure",
    "sensitivity_figure",
    "spectrum_figure",
    "steps_figure",
]

_BATCH_TICKS = [1, 4, 16, 64, 256, 1024]


def _batch_axes(ax: Axes, ylabel: str = "steps to target") -> None:
    """Log–log axes against ``B`` with plain-number tick labels."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(0.7, 1500)
    ax.set_xticks(_BATCH_TICKS, [str(b) for b in _BATCH_TICKS])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size B")
    ax.set_ylabel(ylabel)


def draw_steps(ax: Axes, results: dict, optimiser: str) -> None:
    """One optimiser's steps to target against ``B``: measured (bars: bootstrap 90 %) and the NQM's.

    For SGD, if the file holds it, also the piecewise NQM's prediction (dashed).
    """
    table = sweep_table(results, optimiser)
    b = table["batch_size"]
    measured = np.isfinite(table["steps"])
    color = coordinate_color(0)
    high = np.where(np.isfinite(table["high"]), table["high"], table["steps"])
    ax.vlines(b[measured], table["low"][measured], high[measured], color=color, lw=1.5)
    ax.plot(
        b[measured], table["steps"][measured], "o", ms=4, color=color, label="measured (bar: 90 % interval)"
    )
    ax.plot(b, table["predicted"], "-", color="black", lw=1.5, label="NQM measured at the target")
    if "piecewise" in table:
        ax.plot(b, table["piecewise"], "--", color=coordinate_color(1), lw=1.5, label="piecewise NQM")
    if measured[0]:
        ax.plot(b, table["steps"][0] * b[0] / b, ":", color=color, lw=1, label="perfect scaling")
    _batch_axes(ax)


def steps_figure(setting: str = "teacher_student") -> Figure:
    """Steps to target against ``B`` for each optimiser of a setting, measured and predicted."""
    results = load_results(setting)
    names = list(results["measured"])
    rows = (len(names) + 1) // 2
    fig, axes = new_figure(2, nrows=rows, height=3.2 * rows + 0.6)
    for ax, optimiser in zip(axes, names, strict=False):
        draw_steps(ax, results, optimiser)
        ax.set_title(OPTIMISERS[optimiser])
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    return fig


def digits_figure() -> Figure:
    """The digits: steps to target against ``B``, measured and predicted, per model (rows) and optimiser."""
    settings = ["digits_softmax", "digits_mlp"]
    results = [load_results(s) for s in settings]
    names = list(results[0]["measured"])
    fig, axes = new_figure(len(names), nrows=2, height=5.8)
    for row, (setting, data) in enumerate(zip(settings, results, strict=True)):
        for column, optimiser in enumerate(names):
            ax = axes[row * len(names) + column]
            draw_steps(ax, data, optimiser)
            ax.set_title(f"{SETTINGS[setting].split(', ')[1]}: {OPTIMISERS[optimiser]}")
            if column:
                ax.set_ylabel("")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    return fig


def _along(results: dict) -> dict[str, np.ndarray]:
    rows = results["nqm"]["along_training"]
    return {
        key: np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float) for key in rows[0]
    }


def along_training_figure(setting: str = "teacher_student") -> Figure:
    """``tr H⁺`` and ``tr C`` against the risk on SGD runs at several ``B``, and at the reference point."""
    results = load_results(setting)
    data = _along(results)
    fig, (left, right) = new_figure(2, height=3.4)
    for k, batch_size in enumerate(results["config"]["measurement"]["batch_sizes"]):
        mine = data["batch_size"] == batch_size
        color = coordinate_color(k)
        left.plot(
            data["risk"][mine],
            data["trace_h"][mine],
            "o",
            ms=2.5,
            color=color,
            label=f"SGD runs, B = {batch_size}",
        )
        right.plot(data["risk"][mine], data["trace_c"][mine], "o", ms=2.5, color=color)
    nqm = results["nqm"]
    reference = float(np.mean(nqm["reference_risk"]))
    left.plot([reference], [nqm["reference_trace_h"]], "s", color="black", ms=5, label="reference point")
    right.plot([reference], [nqm["reference_trace_c"]], "s", color="black", ms=5)
    target = results["config"]["target"]
    for ax, label in ((left, r"$\mathrm{tr}\,H^+$ (positive eigenvalues)"), (right, r"$\mathrm{tr}\,C$")):
        ax.axvline(target, color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("excess risk at the point")
        ax.set_ylabel(label)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    left.legend(loc="upper left", fontsize="small")
    right.set_title("dotted: the target", fontsize="small")
    return fig


def noise_scale_figure(setting: str = "teacher_student") -> Figure:
    """``B_simple`` and ``B_noise`` along training against the risk, and the measured critical ``B``."""
    results = load_results(setting)
    data = _along(results)
    fig, (ax,) = new_figure(height=3.6)
    for key, marker, name in (
        ("b_simple", "o", r"$B_{\mathrm{simple}}$"),
        ("b_noise", "^", r"$B_{\mathrm{noise}}$"),
    ):
        values = data[key]
        finite = np.isfinite(values) & (values > 0)
        color = coordinate_color(0 if key == "b_simple" else 1)
        label = f"{name} at a point of SGD"
        ax.plot(data["risk"][finite], values[finite], marker, ms=3, color=color, label=label)
    stats = results["statistics"]["sgd"]
    low, high = stats["critical_interval"]
    if low is not None and high is not None:
        ax.axhspan(low, high, color=coordinate_color(2), alpha=0.25, lw=0)
    if stats["critical"] is not None:
        ax.axhline(
            stats["critical"], color=coordinate_color(2), lw=1.5, label="critical B of SGD, measured (90 %)"
        )
    ax.axvline(results["config"]["target"], color="0.5", ls=":", lw=1, label="target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("excess risk at the point")
    ax.set_ylabel("batch size")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.legend(loc="upper right", fontsize="small")
    return fig


def sensitivity_figure(setting: str = "teacher_student") -> Figure:
    """Measured over predicted SGD steps against ``B``, for NQMs measured at each risk level and elsewhere."""
    results = load_results(setting)
    measured = sweep_table(results, "sgd")
    b = measured["batch_size"]
    variants = results["nqm"]["sensitivity"]
    fig, (ax,) = new_figure(height=3.8)
    levels = [name for name in variants if name.startswith("level")]
    for k, name in enumerate(levels):
        factor = float(name.split()[1])
        predicted = np.array([np.inf if v is None else v for v in variants[name]["steps"]])
        style = "-" if factor == 1.0 else "--"
        color = colormaps["viridis"](k / max(len(levels) - 1, 1))  # early levels dark, late ones light
        width = 2.5 if factor == 1.0 else 1
        label = f"at risk {factor:g} × target"
        ax.plot(b, measured["steps"] / predicted, style, marker="o", ms=3, lw=width, color=color, label=label)
    reference = np.array([np.inf if v is None else v for v in variants["at the reference point"]["steps"]])
    ax.plot(
        b, measured["steps"] / reference, ":", marker="s", ms=3, color="black", label="at the reference point"
    )
    ax.axhspan(1 / 1.5, 1.5, color="0.9", lw=0, zorder=0)
    ax.axhline(1.0, color="0.5", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(_BATCH_TICKS, [str(v) for v in _BATCH_TICKS])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("batch size B")
    ax.set_ylabel("measured / predicted steps (SGD)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig


def best_lr_figure(setting: str = "teacher_student") -> Figure:
    """The tuned (effective) learning rate against ``B``: measured and the NQM's (Adam left out)."""
    results = load_results(setting)
    fig, (ax,) = new_figure(height=3.6)
    for index, optimiser in enumerate(name for name in results["measured"] if name != "adam"):
        table = sweep_table(results, optimiser)
        color = coordinate_color(index)
        ax.plot(table["batch_size"], table["lr"], "o", color=color, ms=5, label=OPTIMISERS[optimiser])
        ax.plot(table["batch_size"], table["predicted_lr"], "-", color=color, lw=1.5)
    ax.plot([], [], "-", color="black", label="lines: the NQM's")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks(_BATCH_TICKS, [str(v) for v in _BATCH_TICKS])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
    ax.set_xlabel("batch size B")
    ax.set_ylabel(r"tuned $\eta$ (momentum: $\eta/(1-\beta)$)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig


def spectrum_figure(setting: str = "teacher_student") -> Figure:
    """The NQM at the target: Hessian eigenvalues per seed, and the noise ``c_i`` against ``h_i``.

    For the teacher–student network the second panel's line is ``c = σ_ε² h``, the noise of a
    network that fits its teacher exactly (chapter 10).
    """
    results = load_results(setting)
    nqm = results["nqm"]
    fig, (left, right) = new_figure(2, height=3.4)
    threshold = results["config"]["common"]["threshold"]
    for seed, values in enumerate(np.array(nqm["eigenvalues"], dtype=float)):
        index = np.arange(1, values.size + 1)
        positive = values > 0
        left.plot(index[positive], values[positive], ".", ms=2, color=coordinate_color(seed))
        left.plot(index[~positive], -values[~positive], "x", ms=2.5, color=coordinate_color(seed))
        left.axhline(threshold * values[0], color="black", ls=":", lw=0.5)
    left.plot([], [], "x", color="0.4", label="negative ($|h_i|$ shown)")
    left.plot([], [], ":", color="black", label="cut-off")
    left.set_yscale("log")
    left.set_xlabel("index $i$ (decreasing)")
    left.set_ylabel(r"$|h_i|$ (Hessian eigenvalue)")
    left.set_title("at the target, one colour per seed")
    left.legend(loc="lower left", fontsize="small")
    h, c = np.array(nqm["h"]), np.array(nqm["c"])
    positive = c > 0
    right.loglog(h[positive], c[positive], ".", ms=3, color=coordinate_color(0), label="kept directions")
    grid = np.array([h.min(), h.max()])
    noise_std = results["config"]["problem"].get("noise_std")
    if noise_std is not None:
        right.loglog(
            grid, noise_std**2 * grid, "-", color="black", lw=1, label=r"$c = \sigma_\varepsilon^2 h$"
        )
    else:
        ratio = float(np.sum(c) / np.sum(h))
        right.loglog(
            grid, ratio * grid, "-", color="black", lw=1, label=r"$c = (\mathrm{tr}\,C/\mathrm{tr}\,H)\,h$"
        )
    right.set_xlabel("$h_i$")
    right.set_ylabel("$c_i$")
    right.set_title("noise along the eigenvectors")
    right.legend(loc="upper left", fontsize="small")
    return fig


#: Fixed axes of :func:`network_curve_figure` (the same for every optimiser and batch size).
CURVE_STEPS = (0.8, 6e4)
CURVE_RISK = (2e-3, 1.0)


def network_curve_figure(optimiser: str = "sgd", batch_size: int = 16) -> Figure:
    """The interactive figure: one optimiser at one batch size, measured against predicted (chapter 10).

    The teacher–student network's seed-averaged held-out excess risk at the setting tuned on the
    tuning seeds (dots, on fresh seeds) and the NQM's expected risk at its own tuned setting
    (line), with the target and the two step counts in the title. The axes (log–log, steps
    ``CURVE_STEPS``, risk ``CURVE_RISK``) are the same for every choice, so moving a control moves
    the curves, not the axes.
    """
    results = load_results("teacher_student")
    if optimiser not in results["measured"]:
        raise ValueError(f"optimiser must be one of {sorted(results['measured'])}, got {optimiser!r}")
    batches = [row["batch_size"] for row in results["measured"][optimiser]]
    if batch_size not in batches:
        raise ValueError(f"batch_size must be one of {batches}, got {batch_size!r}")
    index = batches.index(batch_size)
    row = results["measured"][optimiser][index]
    table = sweep_table(results, optimiser)
    fig, (ax,) = new_figure(height=3.6)
    target = results["config"]["target"]
    ax.axhline(target, color=coordinate_color(1), ls=":", lw=1, label="target")
    steps = np.array(row["curve_steps"], dtype=float)
    shown = steps >= 1  # log axis: step 0 is the start, drawn at the left edge
    risk = np.array([np.inf if v is None else v for v in row["curve_risk"]], dtype=float)
    ax.plot(np.maximum(steps, CURVE_STEPS[0]), risk, "o", ms=2.5, color=coordinate_color(0), label="measured")
    curve = results["predicted"][optimiser]["curve_risk"][index]
    if curve is not None:
        predicted = np.array([np.inf if v is None else v for v in curve], dtype=float)
        ax.plot(steps[shown], predicted[shown], "-", color="black", lw=1.5, label="NQM at the target")
    setting = f"η = {row['lr']:.3g}"
    if optimiser == "momentum":
        setting = f"η/(1 − β) = {row['lr']:.3g}, β = {row['second']:g}"
    elif optimiser == "ema":
        setting += f", γ = {row['second']:g}"
    ax.set_title(
        f"{OPTIMISERS[optimiser]}, B = {batch_size}, tuned {setting}\nsteps to target: measured "
        f"{table['steps'][index]:.0f}, NQM {table['predicted'][index]:.0f} (each tuned on its own)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*CURVE_STEPS)
    ax.set_ylim(*CURVE_RISK)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("step t")
    ax.set_ylabel("excess risk")
    ax.legend(loc="lower left")
    return fig
