"""Chapter 9's committed data: grids, reproducibility, the claims the chapter makes, and its figures."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from nqm_lib import NQM, batch_scaling, networks, seed_statistics
from nqm_lib import figures_network as figures
from nqm_lib.interactive import FIGURES
from nqm_lib.network_results import (
    SETTINGS,
    agreement,
    critical_from_steps,
    grid_edges,
    load_results,
    sweep_table,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module", params=list(SETTINGS))
def results(request):
    return load_results(request.param)


def stored_nqm(data):
    nqm = data["nqm"]
    return NQM(nqm["h"], nqm["c"], nqm["theta0"], counts=nqm["counts"])


# ------------------------------------------------------------------------------------ grids


def test_no_tuned_value_sits_on_the_edge_of_its_grid(results):
    assert grid_edges(results) == []


def test_the_grids_contain_the_baselines(results):
    for name, method in results["config"]["methods"].items():
        if name in ("momentum", "ema"):
            assert method["second"][0] == 0.0  # β = 0 and γ = 0: plain SGD is on the grid


def test_grid_edges_finds_a_value_on_an_edge():
    data = load_results("teacher_student")
    edited = {**data, "measured": {**data["measured"], "sgd": [dict(r) for r in data["measured"]["sgd"]]}}
    edited["measured"]["sgd"][0]["lr_index"] = len(data["config"]["methods"]["sgd"]["lrs"]) - 1
    assert any("sgd B=1: measured η" in problem for problem in grid_edges(edited))


def test_every_file_is_at_most_one_megabyte():
    for setting in SETTINGS:
        from nqm_lib.network_results import data_path

        assert data_path(setting).stat().st_size <= 1_000_000


def test_provenance_records_revision_date_packages_and_times(results):
    provenance = results["provenance"]
    for key in ("git_revision", "date", "wall_time_seconds", "cpu_time_seconds", "packages"):
        assert key in provenance
    assert {"torch", "numpy", "scikit-learn"} <= set(provenance["packages"])


# ---------------------------------------------------------------------- statistics in the file


def test_every_measured_count_lies_in_its_bootstrap_interval(results):
    for optimiser in results["measured"]:
        table = sweep_table(results, optimiser)
        assert np.all(table["low"] <= table["steps"]) and np.all(table["steps"] <= table["high"])


def test_critical_batch_size_lies_in_its_interval(results):
    for optimiser, stats in results["statistics"].items():
        low, high = stats["critical_interval"]
        assert low <= stats["critical"] <= (math.inf if high is None else high), optimiser


def test_stored_fit_is_the_fit_of_the_stored_counts(results):
    for optimiser, stats in results["statistics"].items():
        table = sweep_table(results, optimiser)
        law = seed_statistics.fit_steps_law(table["batch_size"], table["steps"])
        assert law.noise_scale == pytest.approx(stats["noise_scale"], rel=1e-5)
        assert critical_from_steps(table["batch_size"], table["steps"]) == pytest.approx(
            stats["critical"], rel=1e-5
        )


def test_stored_sgd_predictions_recompute_from_the_stored_nqm(results):
    config = results["config"]
    again = batch_scaling.tuned_steps_to_target(
        stored_nqm(results), config["target"], config["batch_sizes"], lrs=config["methods"]["sgd"]["lrs"]
    )
    np.testing.assert_allclose(again.steps, sweep_table(results, "sgd")["predicted"], rtol=0.01, atol=1)


# ---------------------------------------------------------------------- reproducing the file


def test_rerun_of_sgd_at_the_largest_batch_reproduces_the_committed_count():
    data = load_results("teacher_student")
    config, common = data["config"], data["config"]["common"]
    row = data["measured"]["sgd"][-1]
    problem = networks.TeacherStudent(**{k: v for k, v in config["problem"].items() if k != "kind"})
    result = networks.train(
        problem, method="sgd", lrs=[row["lr"]], batch_size=row["batch_size"], seeds=common["report_seeds"],
        target=config["target"], max_steps=config["max_steps"], data_seed=common["report_data_seed"],
        growth=common["growth"], patience=common["patience"], extend=common["extend"],
    )  # fmt: skip
    count = seed_statistics.mean_curve_crossing(result.steps, result.risk[0], config["target"])
    assert count == pytest.approx(row["steps"], rel=1e-4)


# ------------------------------------------------------------------------------------ figures


@pytest.mark.parametrize(
    "draw",
    [
        figures.steps_figure,
        figures.along_training_figure,
        figures.noise_scale_figure,
        figures.sensitivity_figure,
        figures.best_lr_figure,
        figures.spectrum_figure,
        lambda: figures.steps_figure("digits_mlp"),
        lambda: figures.spectrum_figure("digits_softmax"),
        figures.digits_figure,
    ],
)
def test_figure_functions_draw_a_figure(draw):
    fig = draw()
    assert isinstance(fig, Figure) and fig.axes


def test_network_curve_figure_keeps_its_axes_for_every_site_value():
    declaration = FIGURES["network_curve"]
    limits = set()
    for optimiser in [key for _, key in declaration.controls[0].options]:
        for batch_size in declaration.controls[1].site_values:
            ax = figures.network_curve_figure(optimiser, batch_size).axes[0]
            limits.add((ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale()))
            assert len(ax.lines) >= 3  # target, measured, predicted: every setting is drawn
    assert len(limits) == 1


def test_network_curve_figure_rejects_unknown_settings():
    with pytest.raises(ValueError, match="optimiser"):
        figures.network_curve_figure("lbfgs", 16)
    with pytest.raises(ValueError, match="batch_size"):
        figures.network_curve_figure("sgd", 3)


def test_agreement_summarises_measured_against_predicted():
    data = load_results("teacher_student")
    table = sweep_table(data, "sgd")
    summary = agreement(data, "sgd")
    assert summary["worst"] == pytest.approx(
        np.max(np.maximum(table["steps"] / table["predicted"], table["predicted"] / table["steps"]))
    )
    assert summary["ratio_small"] == pytest.approx(table["steps"][0] / table["predicted"][0])
