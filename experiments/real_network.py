"""Chapter 9's sweep: a real network's steps to target across batch sizes, and its empirical NQM's prediction.

Run it with ``make experiment`` (or ``python experiments/real_network.py``). It trains the
teacher–student network of :class:`nqm_lib.networks.TeacherStudent` with SGD, heavy-ball
momentum (two β), Adam and SGD with an EMA of the weights, for batch sizes 1, 2, 4, …, 1024,
tuning the learning rate per batch size on a fixed grid, with several seeds; then measures the
network's Hessian and gradient noise near the end of training, builds the empirical NQM and
predicts the same curves with :mod:`nqm_lib.batch_scaling`. Everything is written, with its
provenance, to ``nqm_lib/data/real_network.json`` (read by chapter 9 through
:func:`nqm_lib.figures_network.load_results`).

The experiment lives here rather than under ``benchmarks/``: it produces the book's scientific
data, not timings. One thread, float64 and fixed seeds: reruns on one machine give the same file
up to the date and wall time (on other CPUs the last digits of the risks may differ).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from nqm_lib import NQM, batch_scaling, networks
from nqm_lib.figures_network import DATA_PATH
from nqm_lib.validation import InstabilityError

ROOT = Path(__file__).resolve().parent.parent

#: The SGD learning-rate grid: 2^k for k = −10, −9.5, …, 1 (23 values).
SGD_LRS = 2.0 ** np.arange(-10.0, 1.25, 0.5)
#: Momentum's grid, in the *effective* learning rate η/(1 − β): 2^k for k = −10, …, 3 (27 values).
EFFECTIVE_LRS = 2.0 ** np.arange(-10.0, 3.25, 0.5)
#: Adam's grid: 2^k for k = −13, …, −2 (23 values).
ADAM_LRS = 2.0 ** np.arange(-13.0, -1.75, 0.5)
#: The EMA decays tuned together with the learning rate.
EMA_DECAYS = (0.9, 0.99, 0.999)

CONFIG = {
    "problem": {
        "input_dim": 8,
        "hidden": 16,
        "teacher_hidden": 4,
        "noise_std": 0.5,
        "test_size": 1024,
        "seed": 0,
    },
    "seeds": list(range(8)),
    "target": 0.01,
    "batch_sizes": [2**k for k in range(11)],
    "max_steps": 30_000,
    "growth": 1.03,
    "patience": 4.0,
    "data_seed": 0,
    "reference": {"lr": 0.02, "batch_size": 256, "steps": 3000, "data_seed": 1},
    "nqm": {"threshold": 1e-4, "samples": 20_000, "seed": 2},
    "methods": {
        "sgd": {"method": "sgd", "lrs": SGD_LRS.tolist(), "second": [0.0]},
        "momentum 0.9": {"method": "momentum", "lrs": (EFFECTIVE_LRS * 0.1).tolist(), "second": [0.9]},
        "momentum 0.99": {"method": "momentum", "lrs": (EFFECTIVE_LRS * 0.01).tolist(), "second": [0.99]},
        "adam": {"method": "adam", "lrs": ADAM_LRS.tolist(), "second": [0.0]},
        "ema": {"method": "ema", "lrs": SGD_LRS.tolist(), "second": list(EMA_DECAYS)},
    },
}


def _round(values: object, digits: int = 6) -> list:
    """Numbers at ``digits`` significant digits, with ``None`` for inf and NaN (JSON has neither)."""
    return [float(f"{v:.{digits}g}") if np.isfinite(v) else None for v in np.asarray(values, float).ravel()]


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")


class Progress:
    """A plain-text progress bar on stderr: one line per finished (optimiser, batch size) run."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def step(self, label: str, note: str) -> None:
        """Report one finished run."""
        self.done += 1
        elapsed = time.perf_counter() - self.start
        width = 30
        filled = round(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        print(
            f"[{bar}] {self.done:3d}/{self.total} {elapsed:6.0f} s  {label:<14} {note}",
            file=sys.stderr,
            flush=True,
        )


def measure(config: dict, progress: Progress) -> dict:
    """Train every optimiser at every batch size; return the JSON-ready measurements."""
    problem = networks.TeacherStudent(**config["problem"])
    out = {}
    for label, setting in config["methods"].items():
        rows = []
        for batch_size in config["batch_sizes"]:
            started = time.perf_counter()
            result = networks.train(
                problem,
                method=setting["method"],
                lrs=setting["lrs"],
                second=setting["second"],
                batch_size=batch_size,
                seeds=config["seeds"],
                target=config["target"],
                max_steps=config["max_steps"],
                data_seed=config["data_seed"],
                growth=config["growth"],
                patience=config["patience"],
            )
            steps, best = networks.tuned(result)
            lr_index, second_index = divmod(best, len(result.second)) if best >= 0 else (-1, -1)
            row = {
                "batch_size": batch_size,
                "steps": steps if np.isfinite(steps) else None,
                "lr": float(result.lrs[lr_index]) if best >= 0 else None,
                "second": float(result.second[second_index]) if best >= 0 else None,
                "seconds": round(time.perf_counter() - started, 2),
            }
            if best >= 0:
                per_seed = networks._first_crossing(result.risk[best], result.steps, result.target)
                row["seed_steps"] = _round(per_seed)
                row["curve_steps"] = result.steps.tolist()
                row["curve_risk"] = _round(result.mean_risk[best], 5)
            rows.append(row)
            progress.step(label, f"B = {batch_size:4d}: {steps:g} steps ({row['seconds']:.0f} s)")
        out[label] = rows
    return out


def nqm_predictions(nqm: NQM, config: dict, measured: dict) -> dict:
    """Tuned steps to target of the NQM on the same grids, and its risk curves at the measured settings."""
    batches = np.array(config["batch_sizes"])
    out = {}
    for label, setting in config["methods"].items():
        kind = setting["method"]
        if kind == "adam":  # Adam as momentum 0.9 with the preconditioner P = H^(1/2) (see chapter 9)
            grid = {"lrs": batch_scaling.PAPER_LRS, "momenta": [0.9], "precond_power": 0.5}
        elif kind == "momentum":
            grid = {"lrs": setting["lrs"], "momenta": setting["second"]}
        elif kind == "ema":
            grid = {"lrs": setting["lrs"], "ema_decays": setting["second"]}
        else:
            grid = {"lrs": setting["lrs"]}
        tuned = batch_scaling.tuned_steps_to_target(nqm, config["target"], batches, **grid)
        curves = []
        for row, lr, momentum in zip(
            measured[label], tuned.lr, tuned.momentum, strict=True
        ):
            if row.get("curve_steps") is None:
                curves.append(None)
                continue
            if kind == "adam":  # the NQM's own tuned setting: Adam's learning rate has no NQM counterpart
                settings = {"lr": lr, "momentum": momentum, "precond_power": 0.5}
            else:
                settings = {"lr": row["lr"], "momentum": row["second"] if kind == "momentum" else 0.0}
                settings["ema_decay"] = row["second"] if kind == "ema" else 0.0
            try:
                risk = [batch_scaling.risk_at_step(nqm, t, batch_size=row["batch_size"], **settings)
                        for t in row["curve_steps"]]  # fmt: skip
            except InstabilityError:
                risk = None  # the measured best setting diverges on the NQM
            curves.append(None if risk is None else _round(risk, 5))
        out[label] = {
            "steps": _round(tuned.steps),
            "lr": _round(tuned.lr),
            "second": _round(tuned.momentum if kind in ("momentum", "adam") else tuned.ema_decay),
            "curve_risk": curves,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the sweep and write the data file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DATA_PATH, help="where to write the JSON file")
    parser.add_argument("--batch-sizes", type=int, nargs="*", help="override the batch sizes (a quick check)")
    parser.add_argument("--methods", nargs="*", help="only these optimisers (labels of CONFIG['methods'])")
    args = parser.parse_args(argv)
    config = json.loads(json.dumps(CONFIG))
    if args.batch_sizes:
        config["batch_sizes"] = args.batch_sizes
    if args.methods:
        config["methods"] = {k: v for k, v in config["methods"].items() if k in args.methods}

    torch.set_num_threads(1)
    torch.manual_seed(0)
    started = time.perf_counter()
    progress = Progress(len(config["methods"]) * len(config["batch_sizes"]) + 1)
    measured = measure(config, progress)

    problem = networks.TeacherStudent(**config["problem"])
    start = problem.init(config["seeds"])
    end = networks.train_to_convergence(problem, config["seeds"], **config["reference"])
    empirical = networks.empirical_nqm(problem, start, end, **config["nqm"])
    initial = float(problem.excess_risk(start).mean())
    nqm = empirical.problem
    rescaled = NQM(nqm.h, nqm.c, nqm.theta0 * np.sqrt(initial / nqm.initial_risk), counts=nqm.counts)
    progress.step("empirical NQM", f"{nqm.d} curvatures kept of {empirical.eigenvalues.size}")

    data = {
        "description": "Chapter 9: steps to target of a teacher-student tanh network vs batch size, "
        "measured with torch.optim and predicted by the network's empirical NQM.",
        "config": config,
        "measured": measured,
        "initial_risk": _round(problem.excess_risk(start).numpy()),
        "final_risk": _round(problem.excess_risk(end).numpy()),
        "nqm": {
            "h": _round(nqm.h, 8),
            "c": _round(nqm.c, 8),
            "theta0": _round(nqm.theta0, 8),
            "counts": _round(nqm.counts, 8),
            "eigenvalues": [_round(row, 5) for row in empirical.eigenvalues],
            "noise": [_round(row, 5) for row in empirical.noise],
        },
        "predicted": nqm_predictions(nqm, config, measured),
        "predicted_rescaled": nqm_predictions(rescaled, config, measured),
        "provenance": {
            "git_revision": _git_revision(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_time_seconds": round(time.perf_counter() - started, 1),
            "command": "python experiments/real_network.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "packages": {name: metadata.version(name) for name in ("torch", "numpy", "nqm_lib")},
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    size = args.output.stat().st_size
    print(
        f"wrote {args.output} ({size / 1e3:.0f} kB) in {data['provenance']['wall_time_seconds']:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
