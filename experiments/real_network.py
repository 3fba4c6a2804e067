"""Chapter 10's sweep: real networks' steps to target across batch sizes, and the NQM measured along training.

Run it with ``make experiment`` (or ``python experiments/real_network.py``). For each of three
settings — the teacher–student tanh network of :class:`nqm_lib.networks.TeacherStudent` on fresh
data, softmax regression and a small MLP on scikit-learn's handwritten digits
(:mod:`nqm_lib.digits`) — it

1. **tunes** every optimiser (SGD, heavy-ball momentum with ``β`` tuned, Adam, SGD with an EMA
   with ``γ`` tuned) at every batch size on a fixed grid, on the *tuning* seeds;
2. **measures** the tuned setting again on *fresh* seeds: the steps to target (first crossing of
   the monotone envelope of the seed-averaged risk, :mod:`nqm_lib.seed_statistics`) with a
   bootstrap 90 % interval over seeds, the critical batch size and the fitted
   ``S(B) = S_min (1 + B_noise / B)``, each with its interval;
3. **measures the NQM along training**: plain-SGD runs on other seeds keep their weights at
   several risk levels; at each point the exact Hessian, the gradient-noise covariance, the
   gradient and the noise scales (:mod:`nqm_lib.network_nqm`);
4. **predicts** the same steps from the NQM measured at the target (the rule stated in the
   chapter), on the same grids, and records how the prediction depends on that choice;
5. **predicts** plain SGD's steps from the piecewise NQM (:mod:`nqm_lib.piecewise_nqm`): one
   band per measured level from the start down to the target, each band with the NQM measured
   where the runs leave it.

It writes one JSON file per setting into ``nqm_lib/data/`` (read by chapter 10 through
:func:`nqm_lib.figures_network.load_results`), each with its provenance (revision, date,
packages, wall and CPU time). Work is spread over two processes (``--workers``); every unit of
work has its own seeds, so the files do not depend on the scheduling. A setting's data are
assembled in the pool as soon as its last unit is done, while the other settings' units run.
float64 on the CPU, one thread per process.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import pickle
import platform
import resource
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from nqm_lib import NQM, batch_scaling, digits, network_nqm, networks, piecewise_nqm, seed_statistics
from nqm_lib.batch_scaling import critical_batch_size
from nqm_lib.network_results import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent

#: The momenta and EMA decays tuned with the learning rate; 0 (plain SGD) is on both grids.
MOMENTA = [0.0, 0.5, 0.9, 0.99, 0.995, 0.999, 0.9995]
EMA_DECAYS = [0.0, 0.5, 0.9, 0.95, 0.99, 0.995, 0.999]
#: Risk levels (multiples of the target) at which the NQM is measured along training.
LEVEL_FACTORS = [16.0, 8.0, 4.0, 2.0, 1.5, 1.0, 0.7]
#: The bands of the piecewise NQM end at these levels (multiples of the target): every measured
#: level from the start down to the target, each band's NQM measured where the runs leave it.
BAND_FACTORS = [factor for factor in LEVEL_FACTORS if factor >= 1.0]
#: Shares of the flattest-to-sharpest order at which each band's curvature is recorded.
SHARES = [0.5, 0.75, 0.9]


def _grid(low: float, high: float) -> list[float]:
    """``2^k`` for ``k = low, low + ½, …, high``."""
    return (2.0 ** np.arange(low, high + 0.25, 0.5)).tolist()


def _methods(sgd: tuple[float, float], adam: tuple[float, float], *, ema: bool = True) -> dict:
    methods = {
        "sgd": {"method": "sgd", "lrs": _grid(*sgd), "second": [0.0]},
        "momentum": {
            "method": "momentum",
            "lrs": _grid(sgd[0] + 1, sgd[1] + 2),
            "second": MOMENTA,
            "effective": True,
        },
        "adam": {"method": "adam", "lrs": _grid(*adam), "second": [0.0]},
        "ema": {"method": "ema", "lrs": _grid(*sgd), "second": EMA_DECAYS},
    }
    return methods if ema else {k: v for k, v in methods.items() if k != "ema"}


SETTINGS = {
    "teacher_student": {
        "description": "A 16-unit tanh student learning a 4-unit tanh teacher from fresh noisy examples "
        "(excess risk on 1024 held-out inputs).",
        "problem": {
            "kind": "teacher_student",
            "input_dim": 8,
            "hidden": 16,
            "teacher_hidden": 4,
            "noise_std": 0.5,
            "test_size": 1024,
            "seed": 0,
        },
        "target": 0.01,
        "batch_sizes": [2**k for k in range(11)],
        "max_steps": 40_000,
        "methods": _methods((-10.0, 1.0), (-13.0, -2.0)),
        "measurement": {
            "batch_sizes": [1, 32, 1024],
            "seeds": list(range(200, 208)),
            "max_steps": 40_000,
            "samples": 20_000,
            "reference": {"lr": 0.02, "batch_size": 256, "steps": 3000},
        },
    },
    "digits_softmax": {
        "description": "Softmax regression with weight decay 1e-3 on scikit-learn's digits (1348 training "
        "images, minibatches drawn with replacement); excess training loss over the optimum.",
        "problem": {"kind": "digits_softmax", "weight_decay": 1e-3},
        "target": 0.05,
        "batch_sizes": [4**k for k in range(6)],
        "max_steps": 40_000,
        "methods": _methods((-8.0, 4.0), (-12.0, 2.0), ema=False),
        "measurement": {"batch_sizes": [1, 1024], "seeds": list(range(200, 204)), "max_steps": 40_000},
    },
    "digits_mlp": {
        "description": "A 16-unit tanh MLP on scikit-learn's digits (1348 training images, minibatches drawn "
        "with replacement, no weight decay); training loss.",
        "problem": {"kind": "digits_mlp", "hidden": 16},
        "target": 0.1,
        "batch_sizes": [4**k for k in range(6)],
        "max_steps": 40_000,
        "methods": _methods((-8.0, 4.0), (-12.0, 2.0), ema=False),
        "measurement": {
            "batch_sizes": [1, 1024],
            "seeds": list(range(200, 204)),
            "max_steps": 40_000,
            "reference": {"lr": 0.01, "batch_size": 256, "steps": 4000},
        },
    },
}

COMMON = {
    "tuning_seeds": list(range(8)),
    "report_seeds": list(range(100, 124)),
    "growth": 1.03,
    "tuning_data_seed": 0,
    "report_data_seed": 1,
    "measurement_data_seed": 2,
    "patience": 2.0,
    "extend": 1.5,
    "resamples": 1000,
    "threshold": 1e-4,
}


def make_problem(spec: dict) -> object:
    """The training problem of a setting's ``problem`` entry."""
    kwargs = {k: v for k, v in spec.items() if k != "kind"}
    if spec["kind"] == "teacher_student":
        return networks.TeacherStudent(**kwargs)
    if spec["kind"] == "digits_softmax":
        return digits.DigitsSoftmax(**kwargs)
    if spec["kind"] == "digits_mlp":
        return digits.DigitsMLP(**kwargs)
    raise ValueError(f"unknown problem kind {spec['kind']!r}")


def _restrict_batch_sizes() -> None:
    """Apply ``--batch-sizes`` (passed to the workers through the environment)."""
    wanted = os.environ.get("NQM_EXPERIMENT_BATCH_SIZES")
    if not wanted:
        return
    sizes = sorted({int(b) for b in wanted.split()})
    for config in SETTINGS.values():
        config["batch_sizes"] = [b for b in config["batch_sizes"] if b in sizes]
        config["measurement"]["batch_sizes"] = [b for b in config["measurement"]["batch_sizes"] if b in sizes]


_restrict_batch_sizes()

_PROBLEMS: dict[str, object] = {}


def _problem(setting: str) -> object:
    if setting not in _PROBLEMS:
        torch.set_num_threads(1)
        _PROBLEMS[setting] = make_problem(SETTINGS[setting]["problem"])
    return _PROBLEMS[setting]


def _round(values: object, digits_: int = 6) -> list:
    """Numbers at ``digits_`` significant digits, ``None`` for inf and NaN (JSON has neither)."""
    return [float(f"{v:.{digits_}g}") if np.isfinite(v) else None for v in np.asarray(values, float).ravel()]


def _number(value: float, digits_: int = 6) -> float | None:
    return _round([value], digits_)[0]


# ------------------------------------------------------------------------- one optimiser, one B


def sweep_unit(setting: str, label: str, batch_size: int) -> dict:
    """Tune one optimiser at one batch size on the tuning seeds, then rerun the winner on fresh seeds."""
    started = time.process_time()
    config, problem = SETTINGS[setting], _problem(setting)
    method = config["methods"][label]
    shared = {"target": config["target"], "max_steps": config["max_steps"], "growth": COMMON["growth"]}
    effective = bool(method.get("effective", False))
    tuning = networks.train(
        problem, method=method["method"], lrs=method["lrs"], second=method["second"], batch_size=batch_size,
        seeds=COMMON["tuning_seeds"], data_seed=COMMON["tuning_data_seed"], patience=1.0,
        effective=effective, **shared,
    )  # fmt: skip
    steps, best = networks.tuned(tuning)
    row: dict = {"batch_size": batch_size, "tuning_steps": _number(steps)}
    if best < 0:
        return row | {"cpu_seconds": round(time.process_time() - started, 2)}
    lr_index, second_index = divmod(best, len(tuning.second))
    lr, second = float(tuning.lrs[lr_index]), float(tuning.second[second_index])
    report = networks.train(
        problem, method=method["method"], lrs=[lr], second=[second], batch_size=batch_size,
        seeds=COMMON["report_seeds"], data_seed=COMMON["report_data_seed"], patience=COMMON["patience"],
        extend=COMMON["extend"], effective=effective, **shared,
    )  # fmt: skip
    risks = report.risk[0]
    count = seed_statistics.mean_curve_crossing(report.steps, risks, config["target"])
    finite = np.where(np.isnan(risks), np.inf, risks)
    per_seed = [seed_statistics.crossing_step(report.steps, r, config["target"]) for r in finite]
    keep = report.steps <= max(4 * count if math.isfinite(count) else report.steps[-1], 64)
    row |= {
        "lr": lr,
        "second": second,
        "lr_index": lr_index,
        "second_index": second_index,
        "steps": _number(count),
        "seed_steps": _round(per_seed),
        "curve_steps": report.steps[keep].tolist(),
        "curve_risk": _round(np.where(np.isnan(risks), np.inf, risks).mean(axis=0)[keep], 5),
        "initial_risk": _number(float(np.mean(risks[:, 0]))),
        "cpu_seconds": round(time.process_time() - started, 2),
    }
    # the per-seed curves stay in memory for the bootstrap (not written to the file)
    row["_steps"], row["_risks"] = report.steps, risks
    return row


# --------------------------------------------------------------------------- NQM along training


def measurement_unit(setting: str, lrs: dict[int, float]) -> dict:
    """SGD runs at the measurement batch sizes; the NQM at every risk level of every seed."""
    started = time.process_time()
    config, problem = SETTINGS[setting], _problem(setting)
    spec = config["measurement"]
    levels = [factor * config["target"] for factor in LEVEL_FACTORS]
    seeds = spec["seeds"]
    start = problem.init(seeds)
    if hasattr(problem, "theta_star"):  # convex: the optimum itself
        reference = problem.theta_star.expand(len(seeds), -1).numpy()
    else:  # a well-trained point from the same initialisation (Adam, learning rate halved twice)
        reference = networks.train_to_convergence(problem, seeds, data_seed=3, **spec["reference"]).numpy()
    reference_risk = problem.excess_risk(torch.tensor(reference)).numpy()
    points = []
    for batch_size in spec["batch_sizes"]:
        found = network_nqm.weights_at_risk_levels(
            problem, lr=lrs[batch_size], batch_size=batch_size, seeds=seeds, levels=levels,
            max_steps=spec["max_steps"], data_seed=COMMON["measurement_data_seed"],
        )  # fmt: skip
        for level_index, level in enumerate(levels):
            for seed_index, seed in enumerate(seeds):
                if not np.isfinite(found.steps[level_index, seed_index]):
                    continue
                arguments = {
                    "start": start[seed_index].numpy(),
                    "reference": reference[seed_index],
                    "samples": spec.get("samples", 20_000),
                    "seed": seed,
                }
                weights = found.weights[level_index, seed_index]
                try:
                    point = network_nqm.measure_point(problem, weights, **arguments)
                except ValueError:  # the gradient is too small to resolve: no noise scales here
                    point = network_nqm.measure_point(problem, weights, noise_scales=False, **arguments)
                points.append({
                    "batch_size": batch_size, "level": level, "factor": LEVEL_FACTORS[level_index],
                    "seed": seed, "step": int(found.steps[level_index, seed_index]), "point": point,
                })  # fmt: skip
    reference_points = [
        network_nqm.measure_point(
            problem, reference[i], start=start[i].numpy(), reference=reference[i],
            samples=spec.get("samples", 20_000), seed=seed, noise_scales=False,
        )  # fmt: skip
        for i, seed in enumerate(seeds)
    ]
    initial = problem.excess_risk(start).numpy()
    return {
        "points": points,
        "reference_points": reference_points,
        "reference_risk": reference_risk,
        "initial_risk": initial,
        "lrs": lrs,
        "cpu_seconds": round(time.process_time() - started, 2),
    }


# ------------------------------------------------------------------------------- predictions


def predict(nqm: NQM, config: dict, label: str) -> batch_scaling.TunedSteps | dict:
    """The NQM's tuned steps to target for one optimiser, on the optimiser's own grid."""
    method = config["methods"][label]
    target, batches = config["target"], config["batch_sizes"]
    if label == "sgd":
        return _tuned_dict(batch_scaling.tuned_steps_to_target(nqm, target, batches, lrs=method["lrs"]))
    if label == "ema":
        tuned = batch_scaling.tuned_steps_to_target(
            nqm, target, batches, lrs=method["lrs"], ema_decays=method["second"]
        )
        return _tuned_dict(tuned, second=tuned.ema_decay)
    if label == "adam":  # Adam as momentum 0.9 with the preconditioner P = H^(1/2) (see chapter 10)
        tuned = batch_scaling.tuned_steps_to_target(
            nqm, target, batches, lrs=batch_scaling.PAPER_LRS, momenta=[0.9], precond_power=0.5
        )
        return _tuned_dict(tuned, second=tuned.momentum)
    # momentum on the effective-rate grid: one search per β, the fewest steps over all
    results = [
        batch_scaling.tuned_steps_to_target(
            nqm, target, batches, lrs=np.array(method["lrs"]) * (1 - beta), momenta=[beta]
        )
        for beta in method["second"]
    ]
    steps = np.array([r.steps for r in results])  # (betas, B)
    best = np.argmin(steps, axis=0)
    columns = np.arange(len(batches))
    lr_effective = np.array([r.lr for r in results]) / (1 - np.array(method["second"]))[:, None]
    return {
        "steps": steps[best, columns],
        "lr": lr_effective[best, columns],
        "second": np.array(method["second"])[best],
    }


def _tuned_dict(tuned: batch_scaling.TunedSteps, second: object = None) -> dict:
    return {
        "steps": tuned.steps,
        "lr": tuned.lr,
        "second": np.zeros_like(tuned.steps) if second is None else np.asarray(second),
    }


def grid_position(values: list[float], value: float) -> int:
    """Index of ``value`` in a grid (to a relative 10⁻⁹); −1 if it is not on it."""
    hits = [i for i, v in enumerate(values) if math.isclose(v, value, rel_tol=1e-9)]
    return hits[0] if hits else -1


def predicted_curves(nqm: NQM, config: dict, label: str, predicted: dict, measured: list[dict]) -> list:
    """The NQM's expected risk at its own tuned setting, on the measured evaluation steps."""
    curves = []
    for index, row in enumerate(measured):
        lr, second = predicted["lr"][index], predicted["second"][index]
        if "curve_steps" not in row or not np.isfinite(lr):
            curves.append(None)
            continue
        if label == "adam":
            settings = {"lr": lr, "momentum": second, "precond_power": 0.5}
        elif label == "momentum":
            settings = {"lr": lr * (1 - second), "momentum": second}
        elif label == "ema":
            settings = {"lr": lr, "ema_decay": second}
        else:
            settings = {"lr": lr}
        steps = [int(t) for t in row["curve_steps"]]
        risk = batch_scaling.risk_at_steps(nqm, steps, batch_size=row["batch_size"], **settings)
        curves.append(_round(risk, 5))
    return curves


# ------------------------------------------------------------------------------- statistics


def statistics(config: dict, measured: dict) -> dict:
    """Bootstrap intervals over the fresh seeds: every count, the critical B and the S(B) fit."""
    batches = np.array(config["batch_sizes"], dtype=float)
    target = config["target"]
    out = {}
    for label, rows in measured.items():
        complete = all("_risks" in row for row in rows)
        if not complete:
            out[label] = None
            continue
        n_seeds = rows[0]["_risks"].shape[0]

        def counts(indices: np.ndarray, rows: list = rows) -> np.ndarray:
            return np.array(
                [seed_statistics.mean_curve_crossing(r["_steps"], r["_risks"][indices], target) for r in rows]
            )

        replicates = seed_statistics.bootstrap_replicates(
            counts, n_seeds, resamples=COMMON["resamples"], seed=COMMON["report_data_seed"]
        )
        for row, column in zip(rows, replicates.T, strict=True):
            row["low"], row["high"] = (_number(v) for v in seed_statistics.bootstrap_interval(column))
        point = np.array([row["steps"] if row["steps"] is not None else np.inf for row in rows])
        critical = [_critical(batches, r) for r in replicates]
        fits = [_fit(batches, r) for r in replicates]
        law = _fit(batches, point)
        out[label] = {
            "critical": _number(_critical(batches, point)),
            "critical_interval": _round(seed_statistics.bootstrap_interval(critical)),
            "min_steps": _number(law[0]),
            "noise_scale": _number(law[1]),
            "min_steps_interval": _round(seed_statistics.bootstrap_interval([f[0] for f in fits])),
            "noise_scale_interval": _round(seed_statistics.bootstrap_interval([f[1] for f in fits])),
        }
    return out


def _critical(batches: np.ndarray, steps: np.ndarray) -> float:
    usable = np.isfinite(steps) & (steps > 0)  # 0 steps: the model starts below the target
    n = usable.size if usable.all() else int(np.argmin(usable))
    return critical_batch_size(batches[:n], steps[:n]) if n >= 2 else math.inf


def _fit(batches: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
    finite = np.isfinite(steps)
    if finite.sum() < 2:
        return math.inf, math.inf
    return tuple(seed_statistics.fit_steps_law(batches[finite], steps[finite]))


# ------------------------------------------------------------------------------- assembling


def nqm_section(config: dict, measurement: dict) -> tuple[NQM, dict]:
    """The NQM of the rule (measured at the target, start rescaled), the traces and the sensitivity."""
    points = measurement["points"]
    initial = float(np.mean(measurement["initial_risk"]))
    threshold = COMMON["threshold"]

    def build(selected: list, rescale: bool = True) -> NQM:
        return network_nqm.nqm_from_points(
            [p["point"] for p in selected], threshold=threshold, initial_risk=initial if rescale else None
        )

    at_target = [p for p in points if p["factor"] == 1.0]
    nqm = build(at_target)
    along = [
        {
            "batch_size": p["batch_size"],
            "factor": p["factor"],
            "seed": p["seed"],
            "step": p["step"],
            "risk": _number(p["point"].risk),
            "trace_h": _number(p["point"].trace_curvature),
            "trace_c": _number(p["point"].trace_noise),
            "b_simple": _number(p["point"].noise_scales.simple) if p["point"].noise_scales else None,
            "b_noise": _number(p["point"].noise_scales.critical) if p["point"].noise_scales else None,
        }  # fmt: skip
        for p in points
    ]
    variants = {}
    for factor in LEVEL_FACTORS:
        chosen = [p for p in points if p["factor"] == factor]
        if chosen:
            variants[f"level {factor:g}"] = build(chosen)
    for batch_size in config["measurement"]["batch_sizes"]:
        chosen = [p for p in at_target if p["batch_size"] == batch_size]
        if chosen:
            variants[f"runs at B = {batch_size}"] = build(chosen)
    variants["start not rescaled"] = build(at_target, rescale=False)
    reference = [{"point": p} for p in measurement["reference_points"]]
    variants["at the reference point"] = build(reference)
    variants["at the reference point, start not rescaled"] = build(reference, rescale=False)
    batches = np.array(config["batch_sizes"], dtype=float)
    sensitivity = {}
    for name, variant in variants.items():
        steps = predict(variant, config, "sgd")["steps"]
        sensitivity[name] = {"steps": _round(steps), "critical": _number(_critical(batches, steps)),
                             "initial_risk": _number(variant.initial_risk)}  # fmt: skip
    pieces = [build([p for p in points if p["factor"] == factor]) for factor in BAND_FACTORS]
    first = measurement["reference_points"][0]
    section = {
        "rule": "points where each seed's SGD run first reached the target, pooled; start rescaled",
        "h": _round(nqm.h, 8),
        "c": _round(nqm.c, 8),
        "theta0": _round(nqm.theta0, 8),
        "counts": _round(nqm.counts, 8),
        "points": len(at_target),
        "eigenvalues": [_round(p["point"].eigenvalues, 5) for p in at_target if p["batch_size"] == 1],
        "noise": [_round(p["point"].noise, 5) for p in at_target if p["batch_size"] == 1],
        "reference_risk": _round(measurement["reference_risk"]),
        "reference_trace_h": _number(
            float(np.mean([p.trace_curvature for p in measurement["reference_points"]]))
        ),
        "reference_trace_c": _number(
            float(np.mean([p.trace_noise for p in measurement["reference_points"]]))
        ),
        "measurement_initial_risk": _round(measurement["initial_risk"]),
        "measurement_lrs": {str(k): v for k, v in measurement["lrs"].items()},
        "along_training": along,
        "sensitivity": sensitivity,
        "n_params": int(first.eigenvalues.size),
        "piecewise": piecewise_section(config, pieces),
    }
    return nqm, section


def piecewise_section(config: dict, pieces: list[NQM]) -> dict:
    """Plain SGD's steps from the piecewise NQM, tuned on SGD's grid, with each hand-off between bands.

    ``pieces`` are the NQMs measured at ``BAND_FACTORS`` times the target (each start rescaled
    to the initial risk: the first band starts from it). The prediction is the rank hand-off;
    the restart hand-off is recorded as a sensitivity check.
    """
    batches, lrs = config["batch_sizes"], config["methods"]["sgd"]["lrs"]
    levels = [factor * config["target"] for factor in BAND_FACTORS]
    section: dict = {
        "rule": "one band per measured level from the initial risk down to the target; each band's NQM "
        "pooled from the points where the runs first reached the band's lower level; one η for the "
        "whole run; second moments handed on by rank of curvature, rescaled to the risk reached",
        "factors": BAND_FACTORS,
        "levels": _round(levels),
        "kept_per_point": [_number(float(p.counts.sum())) for p in pieces],
        "shares": SHARES,
        "curvature_at_share": [_round(piecewise_nqm.curvature_at_share(p, SHARES)) for p in pieces],
    }
    batch_array = np.array(batches, dtype=float)
    for hand_off in piecewise_nqm.HAND_OFFS:
        found = piecewise_nqm.piecewise_steps_to_target(pieces, levels, batches, lrs=lrs, hand_off=hand_off)
        entry = {
            "hand_off": hand_off,
            "steps": _round(found.steps),
            "lr": _round(found.lr),
            "lr_index": [int(i) for i in found.lr_index],
            "band_steps": [_round(row) for row in found.band_steps],
            "hand_off_factors": [_round(row) for row in found.hand_off_factors],
            "critical": _number(_critical(batch_array, found.steps)),
        }
        section[hand_off] = entry
    return section


def assemble(setting: str, measured: dict, measurement: dict) -> dict:
    """The JSON-ready data of one setting."""
    config = SETTINGS[setting]
    stats = statistics(config, measured)
    nqm, section = nqm_section(config, measurement)
    predicted = {}
    for label in config["methods"]:
        result = predict(nqm, config, label)
        method = config["methods"][label]
        grid = batch_scaling.PAPER_LRS.tolist() if label == "adam" else method["lrs"]
        predicted[label] = {
            "steps": _round(result["steps"]),
            "lr": _round(result["lr"]),
            "second": _round(result["second"]),
            "lr_index": [grid_position(grid, v * 1.0) if np.isfinite(v) else -1 for v in result["lr"]],
            "second_index": [
                grid_position([0.9] if label == "adam" else method["second"], v) if np.isfinite(v) else -1
                for v in result["second"]
            ],  # fmt: skip
            "curve_risk": predicted_curves(nqm, config, label, result, measured[label]),
        }
    clean = {
        label: [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
        for label, rows in measured.items()
    }
    return {
        "setting": setting,
        "description": config["description"],
        "config": {k: v for k, v in config.items() if k != "description"} | {"common": COMMON},
        "measured": clean,
        "statistics": stats,
        "nqm": section,
        "predicted": predicted,
    }


#: The order in which queued work starts when a worker is free (lowest first).
PRIORITY = {"assemble": 0, "measure": 1, "sweep": 2}


def assembly_unit(setting: str, measured: dict, measurement: dict) -> dict:
    """:func:`assemble` in a worker of the pool, with the CPU time it took."""
    started = time.process_time()
    data = assemble(setting, measured, measurement)
    return {"data": data, "cpu_seconds": round(time.process_time() - started, 2)}


# ------------------------------------------------------------------------------------ driver


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
    """A plain-text progress bar on stderr: one line per finished unit of work."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def step(self, label: str) -> None:
        """Report one finished unit."""
        self.done += 1
        width = 30
        filled = round(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        elapsed = time.perf_counter() - self.start
        print(f"[{bar}] {self.done:3d}/{self.total} {elapsed:6.0f} s  {label}", file=sys.stderr, flush=True)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cache_file(cache: Path | None, *key: object) -> Path | None:
    """Where a finished unit of work is kept, named by a hash of everything it depends on."""
    if cache is None:
        return None
    setting = key[0]
    config = dict(SETTINGS[setting])
    if "sweep" in key:  # a sweep unit depends on its own optimiser's grid, not on the NQM's measurement
        config.pop("measurement")
        config["methods"] = config["methods"][key[1]]
    else:  # the NQM's measurement depends on SGD's tuned learning rates only (passed in the key)
        config.pop("methods")
    text = json.dumps([config, COMMON, [str(k) for k in key]], sort_keys=True)
    return cache / f"{hashlib.sha1(text.encode()).hexdigest()[:16]}.pkl"


def _cached(path: Path | None) -> object | None:
    if path is None or not path.is_file():
        return None
    return pickle.loads(path.read_bytes())


def _keep(path: Path | None, result: object) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(result))


def _init_worker() -> None:
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> None:
    """Run the sweeps and write one data file per setting."""
    started, cpu_started = time.perf_counter(), _cpu_seconds()  # the whole command, set-up included
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), help="settings to run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one thread each)")
    parser.add_argument("--output-dir", type=Path, default=None, help="where to write (default nqm_lib/data)")
    parser.add_argument("--batch-sizes", type=int, nargs="*", help="only these batch sizes (a quick check)")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache of finished units of work")
    parser.add_argument(
        "--from-cache", action="store_true", help="only write the files whose units are all in the cache"
    )
    args = parser.parse_args(argv)
    # finished units are kept in _build/experiment_cache, so an interrupted run resumes where it stopped
    cache = None if args.fresh else ROOT / "_build" / "experiment_cache"
    if args.batch_sizes:  # a quick check: fewer batch sizes (the spawned workers re-read this module)
        os.environ["NQM_EXPERIMENT_BATCH_SIZES"] = " ".join(map(str, args.batch_sizes))
        _restrict_batch_sizes()
    torch.set_num_threads(1)
    revision = _git_revision()  # before any file is written
    units = [(s, label, b) for s in args.settings for label in SETTINGS[s]["methods"]
             for b in SETTINGS[s]["batch_sizes"]]  # fmt: skip
    progress = Progress(len(units) + 2 * len(args.settings))
    measured: dict = {s: {label: {} for label in SETTINGS[s]["methods"]} for s in args.settings}
    measurements: dict = {}
    assembled: dict = {}
    resumed = 0
    # Work waits in `queue` until a worker is free, so that what is queued later can go first: a
    # setting's assembly, then a measurement, then the sweep units in order. So each setting is
    # assembled while the others' units still run, and little is left after the last unit.
    queue: list = []
    finished: list = []
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=context, initializer=_init_worker) as pool:
        pending: dict = {}

        def enqueue(kind: str, unit: tuple, function: object, *arguments: object) -> None:
            nonlocal resumed
            path = None if kind == "assemble" else _cache_file(cache, *unit, kind, *arguments)
            result = _cached(path)
            if result is not None:  # finished in an earlier run
                resumed += 1
                finished.append((kind, unit, result))
            elif kind == "assemble" or not args.from_cache:
                rank = PRIORITY[kind]  # behind the work of the same or a higher priority
                ahead = next((k for k, item in enumerate(queue) if PRIORITY[item[0]] > rank), len(queue))
                queue.insert(ahead, (kind, unit, path, function, arguments))

        def complete(setting: str) -> bool:
            wanted = len(SETTINGS[setting]["batch_sizes"])
            sweeps = all(len(by_b) == wanted for by_b in measured[setting].values())
            return sweeps and measurements.get(setting) is not None

        for unit in units:
            enqueue("sweep", unit, sweep_unit)
        while queue or pending or finished:
            while queue and len(pending) < args.workers:
                kind, unit, path, function, arguments = queue.pop(0)
                pending[pool.submit(function, *unit, *arguments)] = (kind, unit, path)
            if not finished:
                if not pending:
                    continue
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, unit, path = pending.pop(future)
                    result = future.result()
                    _keep(path, result)
                    finished.append((kind, unit, result))
            while finished:
                kind, unit, result = finished.pop(0)
                setting = unit[0]
                if kind == "sweep":
                    _, label, batch_size = unit
                    measured[setting][label][batch_size] = result
                    progress.step(
                        f"{setting:<16} {label:<9} B = {batch_size:4d}: {result.get('steps')} steps "
                        f"({result['cpu_seconds']:.0f} s CPU)"
                    )
                    sgd = measured[setting]["sgd"]
                    wanted = SETTINGS[setting]["measurement"]["batch_sizes"]
                    if label == "sgd" and all(b in sgd for b in wanted) and setting not in measurements:
                        measurements[setting] = None  # queued
                        enqueue("measure", (setting,), measurement_unit, {b: sgd[b]["lr"] for b in wanted})
                elif kind == "measure":
                    measurements[setting] = result
                    progress.step(f"{setting:<16} NQM along training ({result['cpu_seconds']:.0f} s CPU)")
                else:
                    assembled[setting] = result
                    progress.step(f"{setting:<16} assembled ({result['cpu_seconds']:.0f} s CPU)")
                if kind != "assemble" and complete(setting) and setting not in assembled:
                    assembled[setting] = None  # queued
                    rows = {label: [by_b[b] for b in SETTINGS[setting]["batch_sizes"]]
                            for label, by_b in measured[setting].items()}  # fmt: skip
                    enqueue("assemble", (setting,), assembly_unit, rows, measurements[setting])
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    output = DATA_DIR if args.output_dir is None else args.output_dir
    for setting in args.settings:
        if assembled.get(setting) is None:
            print(f"{setting}: not every unit is in the cache, no file written", file=sys.stderr)
            continue
        data, assembly_cpu = assembled[setting]["data"], assembled[setting]["cpu_seconds"]
        data["provenance"] = {
            "git_revision": revision,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "wall_time_seconds": round(wall, 1),
            "cpu_time_seconds": round(cpu, 1),
            "setting_cpu_seconds": round(
                sum(r["cpu_seconds"] for by_b in measured[setting].values() for r in by_b.values())
                + measurements[setting]["cpu_seconds"]
                + assembly_cpu,
                1,
            ),
            "assembly_cpu_seconds": assembly_cpu,
            "workers": args.workers,
            "units_from_cache": resumed,
            "command": "python experiments/real_network.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "torch_threads": 1,
            "packages": {
                name: metadata.version(name) for name in ("torch", "numpy", "scikit-learn", "nqm_lib")
            },  # fmt: skip
        }
        path = Path(output) / f"{setting}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)", file=sys.stderr)
    print(f"wall time {wall:.0f} s, CPU time {cpu:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
