"""`make bench`: how fast the book, its widgets and nqm_lib are, against stated targets.

Writes ``benchmarks/results.json`` (one flat object of named metrics plus ``machine``) and
prints a table. Targets (benchmarks, never timed tests): whole book < 60 s, every widget's
median update < 100 ms, ``simulate`` >= 100x the per-sample Python loop of the seed script.

    python benchmarks/run.py [--repeats 3] [--skip-chapters]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.baseline import per_sample_loop_sgd  # noqa: E402
from benchmarks.sweep_batch_size import REFERENCES, full_sweep, timed  # noqa: E402
from nqm_lib import NQM, risk_curve, simulate  # noqa: E402
from tools.notebooks import CELL_TIMEOUT_SECONDS, chapter_notebooks, execute, stamp_first_cell  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results.json"
TARGETS = {  # metric -> (comparison, bound)
    "book_seconds_median": ("<", 60.0),
    "widget_median_ms_max": ("<", 100.0),
    "simulate_speedup_vs_per_sample_loop": (">=", 100.0),
}

# Run inside a chapter's kernel after the chapter: sweep every control of every interactive
# figure (one control at a time, the others at their defaults) and time compute + PNG render
# exactly as a slider move does (Explorer.image).
WIDGET_SWEEP = r"""
import gc, json, time
import numpy as np
from nqm_lib.widgets import Explorer

def _sweep_values(widget, count=8):
    if isinstance(widget.value, tuple):  # a multiple choice (checkboxes): each option alone, then all
        values = [value for _, value in widget.options]
        return [(v,) for v in values] + [tuple(values)]
    if hasattr(widget, "_options_values"):
        return list(widget._options_values)
    if isinstance(widget.value, bool):
        return [False, True]
    if hasattr(widget, "base"):
        return list(widget.base ** np.linspace(widget.min, widget.max, count))
    if hasattr(widget, "min") and hasattr(widget, "max"):
        grid = np.linspace(widget.min, widget.max, count)
        return [int(round(v)) for v in grid] if isinstance(widget.value, int) else list(grid)
    return [widget.value]

_latencies = {}
for _explorer in sorted((o for o in gc.get_objects() if isinstance(o, Explorer)),
                        key=lambda e: e.name):
    _times = []
    for _name, _widget in _explorer.controls.items():
        for _value in _sweep_values(_widget):
            _start = time.perf_counter()
            _explorer.image(**{_name: _value})  # what the widget does on a slider move
            _times.append(1000 * (time.perf_counter() - _start))
    _latencies[_explorer.name] = _times
print(json.dumps(_latencies))
"""


def machine() -> dict[str, object]:
    """A description of the machine the numbers were measured on."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = models[0] if models else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def chapter_times(repeats: int) -> dict[str, float]:
    """Median seconds per chapter (fresh kernel each time) and the median whole-book total."""
    per_chapter: dict[str, list[float]] = {path.stem: [] for path in chapter_notebooks()}
    totals = []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repeats):
            total = 0.0
            for path in chapter_notebooks():
                copy = Path(scratch) / path.name
                shutil.copy(path, copy)
                seconds = execute(copy)
                per_chapter[path.stem].append(seconds)
                total += seconds
            totals.append(total)
    metrics = {f"chapter_{name}_seconds_median": statistics.median(t) for name, t in per_chapter.items()}
    metrics["book_seconds_median"] = statistics.median(totals)
    return metrics


def chapter_profile(path: Path) -> dict[str, float]:
    """Where one chapter's execution time goes: kernel start-up, its first two cells, the rest.

    Executed as ``make execute`` does (fresh kernel, setup cell stamped), cell by cell: the
    start-up is the kernel's launch until it answers; the first two cells are the setup cell and
    the imports; the kernel's CPU seconds (user + system) are reported beside the wall times.
    """
    import psutil

    notebook = nbformat.read(path, as_version=4)
    stamp_first_cell(notebook)
    with tempfile.TemporaryDirectory() as scratch:
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_SECONDS,
            kernel_name="python3",
            resources={"metadata": {"path": scratch}},
        )
        start = time.perf_counter()
        with client.setup_kernel():
            ready = time.perf_counter()
            kernel = psutil.Process(client.km.provisioner.process.pid)
            startup_cpu = sum(kernel.cpu_times()[:2])
            cells = []
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type == "code":
                    before = time.perf_counter()
                    client.execute_cell(cell, index)
                    cells.append((index, time.perf_counter() - before))
            cpu = sum(kernel.cpu_times()[:2])
    index, slowest = max(cells, key=lambda cell: cell[1])
    return {
        "startup_seconds": ready - start,
        "startup_cpu_seconds": startup_cpu,
        "first_two_cells_seconds": sum(seconds for _, seconds in cells[:2]),
        "other_cells_seconds": sum(seconds for _, seconds in cells[2:]),
        "kernel_cpu_seconds": cpu,
        "slowest_cell_index": index,
        "slowest_cell_seconds": slowest,
    }


def chapter_profiles() -> dict[str, float]:
    """:func:`chapter_profile` of every chapter (`chapter_<name>_<what>`) and their sums (`book_<what>`)."""
    metrics: dict[str, float] = {}
    for path in chapter_notebooks():
        for key, value in chapter_profile(path).items():
            metrics[f"chapter_{path.stem}_{key}"] = value
            if key.endswith("seconds") and not key.startswith("slowest"):
                metrics[f"book_{key}"] = metrics.get(f"book_{key}", 0.0) + value
    return metrics


def widget_latencies() -> dict[str, float]:
    """Median and p95 update latency (ms) of every interactive figure of every chapter."""
    metrics: dict[str, float] = {}
    for path in chapter_notebooks():
        notebook = nbformat.read(path, as_version=4)
        if "explore(" not in "".join(cell.source for cell in notebook.cells):
            continue
        notebook.cells.append(nbformat.v4.new_code_cell(WIDGET_SWEEP))
        with tempfile.TemporaryDirectory() as scratch:
            NotebookClient(
                notebook,
                timeout=CELL_TIMEOUT_SECONDS * 5,
                kernel_name="python3",
                resources={"metadata": {"path": scratch}},
            ).execute()
        latencies = json.loads(notebook.cells[-1].outputs[-1]["text"].strip().splitlines()[-1])
        for name, times in latencies.items():
            metrics[f"widget_{name}_median_ms"] = statistics.median(times)
            metrics[f"widget_{name}_p95_ms"] = float(np.percentile(times, 95))
            metrics[f"widget_{name}_updates_measured"] = len(times)
    medians = [value for key, value in metrics.items() if key.endswith("_median_ms")]
    metrics["widget_median_ms_max"] = max(medians) if medians else float("nan")
    return metrics


def best_of(function, repeats: int = 3) -> float:
    """Fastest of ``repeats`` wall-clock timings of ``function()`` in seconds."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def library_throughput() -> dict[str, float]:
    """risk_curve and simulate throughput, the per-sample-loop baseline, and a bandwidth bound."""
    metrics: dict[str, float] = {}
    paper = NQM.paper_spectrum(d=10_000, bins=None)
    steps = 1_000
    for label, settings in {"sgd": {"lr": 1.0}, "momentum": {"lr": 0.5, "momentum": 0.9}}.items():
        seconds = best_of(lambda s=settings: risk_curve(paper, steps, **s))
        metrics[f"risk_curve_{label}_d10000_steps1000_seconds"] = seconds
        metrics[f"risk_curve_{label}_coordinate_steps_per_second"] = paper.d * steps / seconds

    data_model = NQM.from_data_model([50.0, 1.0], [1.0, 1.0], theta0=[1.0, 1.0])
    trials = 10_000
    seconds = best_of(lambda: simulate(data_model, steps, lr=0.02, trials=trials, seed=0))
    fast = trials * steps / seconds
    metrics["simulate_d2_trials10000_steps1000_seconds"] = seconds
    metrics["simulate_trial_steps_per_second"] = fast

    baseline_trials = 5
    baseline_seconds = best_of(
        lambda: per_sample_loop_sgd(
            data_model.h,
            data_model.sigma,
            data_model.theta0,
            lr=0.02,
            batch_size=1,
            steps=steps,
            trials=baseline_trials,
        ),
        repeats=1,
    )
    slow = baseline_trials * steps / baseline_seconds
    metrics["per_sample_loop_trial_steps_per_second"] = slow
    metrics["simulate_speedup_vs_per_sample_loop"] = fast / slow

    # Physical limit: each simulate step of this plain-SGD run reads or writes a (trials, d)
    # float64 array about 24 times (draw the data, scale, average over the batch, residual,
    # gradient, step, store the iterate: 17; the block-wise loss statistics: about 7), i.e.
    # about 12 read-and-write passes. Compare the time per step with what a NumPy copy of the
    # same size achieves.
    passes = 12
    array = np.random.default_rng(0).standard_normal((trials, data_model.d))
    target = np.empty_like(array)
    copy_seconds = best_of(lambda: [np.copyto(target, array) for _ in range(1000)]) / 1000
    bandwidth = 2 * array.nbytes / copy_seconds  # read + write
    metrics["numpy_copy_bandwidth_gb_per_second"] = bandwidth / 1e9
    metrics["simulate_step_seconds"] = seconds / steps
    metrics["simulate_step_bandwidth_bound_seconds"] = passes * 2 * array.nbytes / bandwidth
    metrics["simulate_fraction_of_bandwidth_bound"] = (
        metrics["simulate_step_bandwidth_bound_seconds"] / metrics["simulate_step_seconds"]
    )
    return metrics


def batch_size_sweep() -> dict[str, float]:
    """Chapter 6's full steps-to-target sweep (median of 3) and its gap to the reference points."""
    from nqm_lib.batch_scaling import tuned_steps_to_target

    paper = NQM.paper_spectrum(d=10_000, bins=100)
    wall, cpu, _ = timed(lambda: full_sweep(paper), repeats=3)
    metrics = {"batch_size_full_sweep_seconds": wall, "batch_size_full_sweep_cpu_seconds": cpu}
    for index, (_, target, batch_size, grid, expected) in enumerate(REFERENCES):
        steps = int(tuned_steps_to_target(paper, target, [batch_size], **grid).steps[0])
        metrics[f"batch_size_reference_{index + 1}_steps_minus_notebook"] = steps - expected
    return metrics


def print_table(metrics: dict[str, object]) -> None:
    """Print every metric, and whether each target is met."""
    width = max(len(key) for key in metrics)
    for key, value in metrics.items():
        if key == "machine":
            continue
        text = f"{value:12.4g}" if isinstance(value, float) else f"{value!s:>12}"
        verdict = ""
        if key in TARGETS:
            comparison, bound = TARGETS[key]
            met = value < bound if comparison == "<" else value >= bound
            verdict = f"  target {comparison} {bound:g}: {'met' if met else 'MISSED'}"
        print(f"{key:<{width}}  {text}{verdict}")
    print(f"machine: {metrics['machine']}")


def main(argv: list[str] | None = None) -> int:
    """Measure everything, write results.json and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="executions of the whole book (median)")
    parser.add_argument("--skip-chapters", action="store_true", help="only widgets and library")
    args = parser.parse_args(argv)
    metrics: dict[str, object] = {"machine": machine()}
    if not args.skip_chapters:
        metrics.update(chapter_times(args.repeats))
        metrics.update(chapter_profiles())
    metrics.update(widget_latencies())
    metrics.update(library_throughput())
    metrics.update(batch_size_sweep())
    RESULTS.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print_table(metrics)
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
