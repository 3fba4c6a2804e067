"""Figures of chapter 9: a real network's steps to target against its empirical NQM's prediction.

The data come from ``experiments/real_network.py`` (``make experiment``), which writes
``nqm_lib/data/real_network.json``; :func:`load_results` reads it. This module does not import
PyTorch, so the chapter's interactive figure redraws quickly.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from .plotting import coordinate_color, new_figure

__all__ = [
    "DATA_PATH",
    "OPTIMISERS",
    "best_lr_figure",
    "draw_steps",
    "load_results",
    "network_curve_figure",
    "spectrum_figure",
    "steps_figure",
    "sweep_table",
]

#: The committed results of the sweep (written by ``make experiment``).
DATA_PATH = Path(__file__).resolve().parent / "data" / "real_network.json"


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_results(path: str | Path | None = None) -> dict:
    """The sweep's results as a dictionary (``config``, ``measured``, ``nqm``, ``predicted``, …).

    Reads ``path`` (default :data:`DATA_PATH`) once per session; raises ``FileNotFoundError``
    with the command that makes the file if it is missing.
    """
    target = Path(DATA_PATH if path is None else path)
    if not target.is_file():
        raise FileNotFoundError(f"{target} not found: run `make experiment` to measure it")
    return _load(str(target))


#: Display names of the sweep's optimisers (the keys of ``measured`` in the data file), in plotting order.
OPTIMISERS = {
    "sgd": "SGD",
    "momentum 0.9": "momentum β = 0.9",
    "momentum 0.99": "momentum β = 0.99",
    "adam": "Adam",
    "ema": "SGD + EMA",
}


def _check_optimiser(results: dict, optimiser: object) -> str:
    if optimiser not in results["measured"]:
        raise ValueError(f"optimiser must be one of {sorted(results['measured'])}, got {optimiser!r}")
    return str(optimiser)


def _array(values: list) -> np.ndarray:
    """JSON list (``None`` for inf/NaN) as a float array (``None`` → inf)."""
    return np.array([np.inf if v is None else v for v in values], dtype=float)


def sweep_table(results: dict, optimiser: str) -> dict[str, np.ndarray]:
    """One optimiser's measured and predicted columns, as float arrays over the batch sizes.

    Keys: ``batch_size``, ``steps`` (measured, seed-averaged risk), ``seed_low`` and
    ``seed_high`` (fastest and slowest seed; inf if a seed did not reach the target), ``lr`` and
    ``second`` (the tuned setting), ``predicted`` and ``predicted_rescaled`` (the empirical NQM's
    tuned steps), ``predicted_lr``.
    """
    optimiser = _check_optimiser(results, optimiser)
    rows = results["measured"][optimiser]
    seeds = [_array(row.get("seed_steps", [None])) for row in rows]
    return {
        "batch_size": np.array([row["batch_size"] for row in rows], dtype=float),
        "steps": _array([row["steps"] for row in rows]),
        "seed_low": np.array([s.min() for s in seeds]),
        "seed_high": np.array([s.max() for s in seeds]),
        "lr": _array([row["lr"] for row in rows]),
        "second": _array([row["second"] for row in rows]),
        "predicted": _array(results["predicted"][optimiser]["steps"]),
        "predicted_rescaled": _array(results["predicted_rescaled"][optimiser]["steps"]),
        "predicted_lr": _array(results["predicted"][optimiser]["lr"]),
    }


def draw_steps(ax: Axes, results: dict, optimiser: str, *, highlight: float | None = None) -> None:
    """Draw one optimiser's steps to target against ``B``: measured (seed range as bars) and predicted."""
    table = sweep_table(results, optimiser)
    b = table["batch_size"]
    measured = np.isfinite(table["steps"])
    color = coordinate_color(0)
    top = np.where(np.isfinite(table["seed_high"]), table["seed_high"], table["steps"])
    ax.vlines(b[measured], table["seed_low"][measured], top[measured], color=color, lw=1)
    ax.plot(b[measured], table["steps"][measured], "o", ms=4, color=color, label="measured (bar: seed range)")
    ax.plot(b, table["predicted"], "-", color="black", lw=1.5, label="empirical NQM")
    ax.plot(b, table["predicted_rescaled"], "--", color="0.45", lw=1.5, label="NQM, start rescaled")
    if measured[0]:
        ax.plot(
            b, table["steps"][0] * b[0] / b, ":", color=coordinate_color(0), lw=1, label="perfect scaling"
        )
    if highlight is not None:
        ax.axvline(highlight, color=coordinate_color(1), lw=1, alpha=0.6)
    _batch_axes(ax)


def _batch_axes(ax: Axes) -> None:
    """Log–log axes of steps against ``B`` with plain-number tick labels."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(0.7, 1500)
    ax.set_xticks([1, 4, 16, 64, 256, 1024], ["1", "4", "16", "64", "256", "1024"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())  # fewer ticks: the widget redraws faster
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size B")
    ax.set_ylabel("steps to target")


def steps_figure(results: dict | None = None) -> Figure:
    """Chapter 9's main figure: steps to target against ``B``, measured and predicted, per optimiser.

    The sixth panel puts the measured curves of all optimisers together.
    """
    results = load_results() if results is None else results
    fig, axes = new_figure(2, nrows=3, height=9.6)
    names = list(OPTIMISERS)
    for ax, optimiser in zip(axes, names, strict=False):
        draw_steps(ax, results, optimiser)
        ax.set_title(OPTIMISERS[optimiser])
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    last = axes[len(names)]
    for index, optimiser in enumerate(names):
        table = sweep_table(results, optimiser)
        last.plot(table["batch_size"], table["steps"], "o-", ms=3, color=coordinate_color(index),
                  label=OPTIMISERS[optimiser])  # fmt: skip
    _batch_axes(last)
    last.set_title("measured, all optimisers")
    last.legend(loc="upper right")
    return fig


def best_lr_figure(results: dict | None = None) -> Figure:
    """The tuned (effective) learning rate against ``B``: measured and predicted by the empirical NQM.

    Momentum's learning rate is shown as the effective ``η/(1 − β)``. Adam is left out: its
    learning rate has no counterpart in the NQM.
    """
    results = load_results() if results is None else results
    fig, (ax,) = new_figure(height=3.8)
    for index, optimiser in enumerate(name for name in OPTIMISERS if name != "adam"):
        table = sweep_table(results, optimiser)
        scale = 1.0 / (1.0 - table["second"]) if optimiser.startswith("momentum") else 1.0
        predicted_scale = 1.0 / (1.0 - np.array(results["config"]["methods"][optimiser]["second"][0]))
        predicted_scale = predicted_scale if optimiser.startswith("momentum") else 1.0
        color = coordinate_color(index)
        ax.plot(
            table["batch_size"], table["lr"] * scale, "o", color=color, ms=5, label=f"{OPTIMISERS[optimiser]}"
        )
        ax.plot(table["batch_size"], table["predicted_lr"] * predicted_scale, "-", color=color, lw=1.5)
    ax.plot([], [], "-", color="black", label="lines: empirical NQM")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks([1, 4, 16, 64, 256, 1024], ["1", "4", "16", "64", "256", "1024"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
    ax.set_xlabel("batch size B")
    ax.set_ylabel(r"tuned $\eta$ (momentum: $\eta/(1-\beta)$)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def spectrum_figure(results: dict | None = None) -> Figure:
    """The empirical NQM: Hessian eigenvalues of every seed, and the noise ``c_i`` against ``h_i``.

    The second panel's line is ``c = σ² h`` with the label-noise variance ``σ²``, the noise of a
    network that fits its teacher exactly (see chapter 9).
    """
    results = load_results() if results is None else results
    fig, (left, right) = new_figure(2, height=3.4)
    eigenvalues = np.array(results["nqm"]["eigenvalues"], dtype=float)
    threshold = results["config"]["nqm"]["threshold"]
    for seed, values in enumerate(eigenvalues):
        index = np.arange(1, values.size + 1)
        positive = values > 0
        left.plot(index[positive], values[positive], ".", ms=2, color=coordinate_color(seed))
        left.plot(index[~positive], -values[~positive], "x", ms=2.5, color=coordinate_color(seed))
    left.plot([], [], "x", color="0.4", label="negative ($|h_i|$ shown)")
    left.axhline(threshold * eigenvalues[:, 0].max(), color="black", ls=":", lw=1, label="cut-off")
    left.set_yscale("log")
    left.set_xlabel("index $i$ (decreasing)")
    left.set_ylabel(r"$|h_i|$ (Hessian eigenvalue)")
    left.set_title("spectrum, one colour per seed")
    left.legend(loc="lower left")
    h, c = np.array(results["nqm"]["h"]), np.array(results["nqm"]["c"])
    right.loglog(h, c, ".", ms=3, color=coordinate_color(0), label="kept directions")
    sigma2 = results["config"]["problem"]["noise_std"] ** 2
    grid = np.array([h.min(), h.max()])
    right.loglog(grid, sigma2 * grid, "-", color="black", lw=1, label=r"$c = \sigma_\varepsilon^2 h$")
    right.set_xlabel("$h_i$")
    right.set_ylabel("$c_i$")
    right.set_title("noise along the eigenvectors")
    right.legend(loc="upper left")
    return fig


def network_curve_figure(optimiser: str = "sgd", batch_size: int = 16, results: dict | None = None) -> Figure:
    """The interactive figure: one optimiser at one batch size, measured against predicted (chapter 9).

    The seed-averaged held-out excess risk of the tuned setting (dots) and the empirical NQM's
    expected risk at the same setting (for Adam, at the NQM's own tuned preconditioned
    setting), with the start projected (solid) or rescaled (dashed), the target, and the
    measured and predicted steps to target in the title.
    """
    results = load_results() if results is None else results
    optimiser = _check_optimiser(results, optimiser)
    batches = [row["batch_size"] for row in results["measured"][optimiser]]
    if batch_size not in batches:
        raise ValueError(f"batch_size must be one of {batches}, got {batch_size!r}")
    index = batches.index(batch_size)
    row = results["measured"][optimiser][index]
    table = sweep_table(results, optimiser)
    fig, (ax,) = new_figure(height=3.6)
    target = results["config"]["target"]
    ax.axhline(target, color=coordinate_color(1), ls=":", lw=1, label="target")
    if row.get("curve_steps"):
        steps = np.array(row["curve_steps"], dtype=float)
        ax.plot(steps, _array(row["curve_risk"]), "o", ms=2.5, color=coordinate_color(0), label="measured")
        for key, style, color, label in (
            ("predicted", "-", "black", "empirical NQM"),
            ("predicted_rescaled", "--", "0.45", "NQM, start rescaled"),
        ):
            curve = results[key][optimiser]["curve_risk"][index]
            if curve is not None:
                ax.plot(steps, _array(curve), style, color=color, lw=1.5, label=label)
        setting = f"η = {row['lr']:.3g}"
        if optimiser.startswith("momentum"):
            setting += f", β = {row['second']:g}"
        elif optimiser == "ema":
            setting += f", γ = {row['second']:g}"
        ax.set_title(
            f"{OPTIMISERS[optimiser]}, B = {batch_size}, tuned {setting}\nsteps to target: measured "
            f"{table['steps'][index]:.0f}, NQM {table['predicted'][index]:.0f} "
            f"(start rescaled {table['predicted_rescaled'][index]:.0f}), each tuned on its own"
        )
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())
    # fixed axes for every optimiser and batch size (runs last 30 to 11 000 steps: symlog)
    (last, low, high) = _curve_limits(results)
    ax.set_xscale("symlog", linthresh=10.0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(0.0, 1.2 * last)
    ax.set_ylim(low / 1.5, high * 1.5)
    ax.set_xlabel("step t")
    ax.set_ylabel("excess risk")
    ax.legend(loc="upper right")
    return fig


def _curve_limits(results: dict) -> tuple[float, float, float]:
    """The last step and the smallest and largest finite risk of every curve of the sweep."""
    last, values = 0.0, [results["config"]["target"]]
    for optimiser, rows in results["measured"].items():
        for index, row in enumerate(rows):
            if row.get("curve_steps"):
                last = max(last, float(max(row["curve_steps"])))
                curves = [row["curve_risk"]]
                curves += [
                    results[key][optimiser]["curve_risk"][index]
                    for key in ("predicted", "predicted_rescaled")
                ]
                values += [v for curve in curves if curve is not None for v in curve if v is not None]
    finite = np.array(values, dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    return last, float(finite.min()), float(finite.max())
