"""Chapter 10's measured data: reading the sweep's files and the tables the chapter quotes.

``make experiment`` (``experiments/real_network.py``) writes one JSON file per setting into
``nqm_lib/data/``: the teacher–student network, and softmax regression and an MLP on
scikit-learn's digits. :func:`load_results` reads one; :func:`sweep_table` turns one optimiser's
rows into arrays (measured steps with their bootstrap interval, the tuned setting, the NQM's
predictions, single and piecewise); :func:`agreement` summarises measured against predicted;
:func:`grid_edges` lists every tuned value that sits on the edge of its grid. NumPy only (no
PyTorch, no matplotlib).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from .batch_scaling import PAPER_LRS, critical_batch_size
from .seed_statistics import ratio_spread

__all__ = [
    "DATA_DIR",
    "MODELS",
    "OPTIMISERS",
    "SETTINGS",
    "agreement",
    "critical_from_steps",
    "data_path",
    "grid_edges",
    "load_results",
    "sweep_table",
]

#: Where ``make experiment`` writes one data file per setting.
DATA_DIR = Path(__file__).resolve().parent / "data"

#: The settings of the sweep (data-file names) and their display names.
SETTINGS = {
    "teacher_student": "teacher–student network",
    "digits_softmax": "digits, softmax regression",
    "digits_mlp": "digits, MLP",
}

#: Display names of the optimisers (the keys of ``measured`` in a data file), in plotting order.
OPTIMISERS = {"sgd": "SGD", "momentum": "momentum", "adam": "Adam", "ema": "SGD + EMA"}


def data_path(setting: str) -> Path:
    """The data file of one setting (``nqm_lib/data/<setting>.json``)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {sorted(SETTINGS)}, got {setting!r}")
    return DATA_DIR / f"{setting}.json"


@lru_cache(maxsize=8)
def _load(path: str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_results(setting: str = "teacher_student") -> dict:
    """One setting's results as a dictionary (``config``, ``measured``, ``statistics``, ``nqm``, …).

    Reads :func:`data_path` once per session; raises ``FileNotFoundError`` with the command that
    makes the file if it is missing.
    """
    path = data_path(setting)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `make experiment` to measure it")
    return _load(str(path))


def _array(values: list) -> np.ndarray:
    """JSON list (``None`` for inf/NaN) as a float array (``None`` → inf)."""
    return np.array([np.inf if v is None else v for v in values], dtype=float)


def _check_optimiser(results: dict, optimiser: object) -> str:
    if optimiser not in results["measured"]:
        raise ValueError(f"optimiser must be one of {sorted(results['measured'])}, got {optimiser!r}")
    return str(optimiser)


def sweep_table(results: dict, optimiser: str) -> dict[str, np.ndarray]:
    """One optimiser's columns over the batch sizes, as float arrays (``inf`` where not reached).

    Keys: ``batch_size``; ``steps`` (measured on the fresh seeds: crossing of the monotone
    envelope of the seed-averaged risk) with ``low`` and ``high`` (bootstrap 90 % interval over
    seeds); ``median_seed`` (median of the seeds' own crossings); ``lr`` and ``second`` (the
    setting tuned on the tuning seeds; momentum's ``lr`` is the effective ``η/(1 − β)``);
    ``tuning_steps``; ``predicted``, ``predicted_lr``, ``predicted_second`` (the NQM's own tuned
    steps and setting). For SGD, if the file holds the piecewise NQM: ``piecewise`` and
    ``piecewise_lr`` (its prediction, :mod:`nqm_lib.piecewise_nqm`) and ``piecewise_restart``
    (the same with every band restarted from its own start, a sensitivity check).
    """
    optimiser = _check_optimiser(results, optimiser)
    rows = results["measured"][optimiser]
    predicted = results["predicted"][optimiser]
    piecewise = results["nqm"].get("piecewise") if optimiser == "sgd" else None
    extra = {}
    if piecewise is not None:
        extra = {
            "piecewise": _array(piecewise["rank"]["steps"]),
            "piecewise_lr": _array(piecewise["rank"]["lr"]),
            "piecewise_restart": _array(piecewise["restart"]["steps"]),
        }
    return extra | {
        "batch_size": np.array([row["batch_size"] for row in rows], dtype=float),
        "steps": _array([row.get("steps") for row in rows]),
        "low": _array([row.get("low") for row in rows]),
        "high": _array([row.get("high") for row in rows]),
        "median_seed": np.array([np.median(_array(row.get("seed_steps", [None]))) for row in rows]),
        "lr": _array([row.get("lr") for row in rows]),
        "second": _array([row.get("second") for row in rows]),
        "tuning_steps": _array([row.get("tuning_steps") for row in rows]),
        "predicted": _array(predicted["steps"]),
        "predicted_lr": _array(predicted["lr"]),
        "predicted_second": _array(predicted["second"]),
    }


def critical_from_steps(batch_sizes: object, steps: object) -> float:
    """Critical batch size from the leading finite, positive counts (``inf`` if fewer than two).

    :func:`~nqm_lib.batch_scaling.critical_batch_size`: where the steps are twice the
    perfect-scaling line drawn from the smallest batch size.
    """
    batches = np.asarray(batch_sizes, dtype=float)
    counts = np.asarray(steps, dtype=float)
    usable = np.isfinite(counts) & (counts > 0)
    n = usable.size if usable.all() else int(np.argmin(usable))
    return critical_batch_size(batches[:n], counts[:n]) if n >= 2 else math.inf


#: The predictions that :func:`agreement` compares with, as columns of :func:`sweep_table`.
MODELS = {"single": "predicted", "piecewise": "piecewise"}


def agreement(results: dict, optimiser: str, *, model: str = "single") -> dict[str, float]:
    """Measured against predicted for one optimiser.

    ``model="single"`` compares with the NQM measured at the target, ``"piecewise"`` with the
    piecewise NQM (SGD only). Keys: ``worst`` (the largest factor between measured and predicted
    steps over the batch sizes, :func:`~nqm_lib.seed_statistics.ratio_spread`), ``ratio_small``
    and ``ratio_large`` (measured / predicted steps at the smallest and largest ``B``),
    ``critical`` and its interval ``critical_low``, ``critical_high`` (measured),
    ``critical_predicted``, ``critical_ratio`` (measured / predicted), and the fitted law
    ``min_steps``, ``noise_scale`` with their intervals.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    table = sweep_table(results, optimiser)
    if MODELS[model] not in table:
        raise ValueError(f"the file holds no {model} prediction for {optimiser!r}")
    predicted = table[MODELS[model]]
    stats = results["statistics"][optimiser]
    predicted_critical = critical_from_steps(table["batch_size"], predicted)
    finite = np.isfinite(table["steps"]) & np.isfinite(predicted)
    return {
        "worst": ratio_spread(table["steps"], predicted) if finite.all() else math.inf,
        "ratio_small": float(table["steps"][0] / predicted[0]),
        "ratio_large": float(table["steps"][-1] / predicted[-1]),
        "critical": _value(stats["critical"]),
        "critical_low": _value(stats["critical_interval"][0]),
        "critical_high": _value(stats["critical_interval"][1]),
        "critical_predicted": predicted_critical,
        "critical_ratio": _value(stats["critical"]) / predicted_critical,
        "min_steps": _value(stats["min_steps"]),
        "min_steps_low": _value(stats["min_steps_interval"][0]),
        "min_steps_high": _value(stats["min_steps_interval"][1]),
        "noise_scale": _value(stats["noise_scale"]),
        "noise_scale_low": _value(stats["noise_scale_interval"][0]),
        "noise_scale_high": _value(stats["noise_scale_interval"][1]),
    }


def _value(value: float | None) -> float:
    return math.inf if value is None else float(value)


def grid_edges(results: dict) -> list[str]:
    """Every tuned value on the edge of its grid, measured or predicted (an empty list if none).

    A learning rate must not be the smallest or largest of its grid; a momentum ``β`` or EMA
    decay ``γ`` must not be the largest. The smallest ``β`` and ``γ`` are 0 — plain SGD, the
    boundary of their range, not a truncation — so a tuned 0 is allowed. For the NQM's Adam model
    (momentum 0.9 fixed) only the learning rate is checked, on ``PAPER_LRS``; the piecewise NQM's
    learning rates (both hand-offs) are checked on SGD's grid.
    """
    problems = []
    piecewise = results["nqm"].get("piecewise")
    if piecewise is not None:
        size = len(results["config"]["methods"]["sgd"]["lrs"])
        batches = [row["batch_size"] for row in results["measured"]["sgd"]]
        for hand_off in ("rank", "restart"):
            for b, index in zip(batches, piecewise[hand_off]["lr_index"], strict=True):
                where = f"{results['setting']} piecewise NQM ({hand_off}) B={b}: η"
                if index < 0:
                    problems.append(f"{where} not found on its grid")
                elif index in (0, size - 1):
                    problems.append(f"{where} on the grid's edge ({index})")
    for optimiser, method in results["config"]["methods"].items():
        lrs, second = method["lrs"], method["second"]
        measured = results["measured"][optimiser]
        predicted = results["predicted"][optimiser]
        for k, row in enumerate(measured):
            b = row["batch_size"]
            checks = [
                ("measured η", row.get("lr_index"), len(lrs), True),
                ("measured second", row.get("second_index"), len(second), False),
                (
                    "predicted η",
                    predicted["lr_index"][k],
                    len(PAPER_LRS) if optimiser == "adam" else len(lrs),
                    True,
                ),
            ]
            if optimiser != "adam":
                checks.append(("predicted second", predicted["second_index"][k], len(second), False))
            for name, index, size, both in checks:
                if index is None or index < 0:
                    problems.append(f"{results['setting']} {optimiser} B={b}: {name} not found on its grid")
                elif size > 1 and (index == size - 1 or (both and index == 0)):
                    problems.append(
                        f"{results['setting']} {optimiser} B={b}: {name} on the grid's edge ({index})"
                    )
    return problems
