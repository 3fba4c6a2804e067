"""Chapter 10's committed data: grids, reproducibility, the claims the chapter makes, and its figures."""

import math

import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt
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


def inf_if_none(value):
    return math.inf if value is None else value


def test_critical_batch_size_lies_in_its_interval(results):
    for optimiser, stats in results["statistics"].items():
        low, high = (inf_if_none(v) for v in stats["critical_interval"])
        assert low <= inf_if_none(stats["critical"]) <= high, optimiser


def test_stored_fit_is_the_fit_of_the_stored_counts(results):
    for optimiser, stats in results["statistics"].items():
        table = sweep_table(results, optimiser)
        finite = np.isfinite(table["steps"])  # a batch size without a count is left out of the fit
        law = seed_statistics.fit_steps_law(table["batch_size"][finite], table["steps"][finite])
        assert law.noise_scale == pytest.approx(stats["noise_scale"], rel=1e-5)
        critical = critical_from_steps(table["batch_size"], table["steps"])
        assert critical == pytest.approx(inf_if_none(stats["critical"]), rel=1e-5)


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
            fig = figures.network_curve_figure(optimiser, batch_size)
            ax = fig.axes[0]
            limits.add((ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale()))
            assert len(ax.lines) >= 3  # target, measured, predicted: every setting is drawn
            plt.close(fig)
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


# ------------------------------------------------------------------ the chapter's claims


def median_along(data, key, factor):
    return float(np.median([r[key] for r in data["nqm"]["along_training"] if r["factor"] == factor]))


def test_the_noise_near_the_target_is_larger_than_at_the_reference_point():
    data = load_results("teacher_student")
    assert median_along(data, "trace_c", 1.0) > 1.5 * data["nqm"]["reference_trace_c"]
    assert median_along(data, "trace_h", 1.0) > 1.5 * data["nqm"]["reference_trace_h"]


def test_c_is_close_to_sigma_squared_h_at_the_target_and_larger_early():
    data = load_results("teacher_student")
    sigma2 = data["config"]["problem"]["noise_std"] ** 2
    at_target = median_along(data, "trace_c", 1.0) / median_along(data, "trace_h", 1.0) / sigma2
    early = median_along(data, "trace_c", 16.0) / median_along(data, "trace_h", 16.0) / sigma2
    assert 0.9 < at_target < 1.25
    assert early > 1.2 * at_target


def test_the_noise_scale_grows_as_the_risk_falls():
    data = load_results("teacher_student")
    for key in ("b_simple", "b_noise"):
        assert median_along(data, key, 1.0) > 30 * median_along(data, key, 16.0)  # tens of times
    # the measured critical batch size lies between B_noise at twice the target and at the target
    critical = agreement(data, "sgd")["critical"]
    assert median_along(data, "b_noise", 2.0) < critical < median_along(data, "b_noise", 1.0)


def ratios(data, optimiser):
    table = sweep_table(data, optimiser)
    return table["steps"] / table["predicted"]


def test_sgd_meets_the_goal_up_to_512_and_misses_it_at_the_largest_batch():
    data = load_results("teacher_student")
    r = ratios(data, "sgd")
    batches = sweep_table(data, "sgd")["batch_size"]
    factor = np.maximum(r, 1 / r)
    assert np.all(factor[batches <= 256] <= 1.25)
    assert np.all(factor[batches <= 512] <= 1.5)
    assert factor[-1] > 1.5 and r[-1] < 1  # the network is faster than the model at B = 1024
    summary = agreement(data, "sgd")
    assert summary["critical_ratio"] > 1.5  # the predicted critical batch size is too small


def test_the_level_matters_little_at_small_batches_and_much_at_large_ones():
    data = load_results("teacher_student")
    measured = sweep_table(data, "sgd")
    small = measured["batch_size"] <= 64
    spread_large = []
    for name, variant in data["nqm"]["sensitivity"].items():
        if name.startswith("level"):
            r = measured["steps"] / np.array(variant["steps"], dtype=float)
            assert np.all(np.maximum(r, 1 / r)[small] <= 1.35), name
            spread_large.append(r[-1])
    assert max(spread_large) / min(spread_large) > 1.5


def test_momentum_halves_the_steps_at_the_largest_batch_and_keeps_scaling():
    data = load_results("teacher_student")
    sgd, momentum = sweep_table(data, "sgd"), sweep_table(data, "momentum")
    assert momentum["steps"][-1] < 0.6 * sgd["steps"][-1]
    assert agreement(data, "momentum")["critical"] == math.inf  # within twice perfect scaling up to 1024


def test_the_model_overestimates_the_small_batch_gains_of_the_ema_and_adam():
    data = load_results("teacher_student")
    sgd = sweep_table(data, "sgd")
    for optimiser in ("ema", "adam"):
        other = sweep_table(data, optimiser)
        measured_gain = sgd["steps"][0] / other["steps"][0]
        predicted_gain = sgd["predicted"][0] / other["predicted"][0]
        assert measured_gain > 1.5 and predicted_gain > 1.5 * measured_gain, optimiser


def test_adam_tuned_on_eight_seeds_misses_the_target_on_fresh_ones_at_batch_64():
    data = load_results("teacher_student")
    table = sweep_table(data, "adam")
    assert table["steps"][table["batch_size"] == 64][0] == math.inf


def test_on_the_digits_sgd_and_momentum_are_faster_than_their_nqm():
    for setting in ("digits_softmax", "digits_mlp"):
        data = load_results(setting)
        for optimiser in ("sgd", "momentum"):
            r = ratios(data, optimiser)
            assert np.all(r < 1), (setting, optimiser)
        assert agreement(data, "sgd")["worst"] > 1.5 and agreement(data, "sgd")["critical_ratio"] > 1.5
    # at B = 1 softmax regression's count is outside the chapter's factor 1.5, the MLP's inside it
    assert agreement(load_results("digits_softmax"), "sgd")["ratio_small"] < 1 / 1.5
    assert 1 / 1.5 < agreement(load_results("digits_mlp"), "sgd")["ratio_small"] < 1


def test_on_the_digits_c_is_not_a_multiple_of_h_and_the_loss_is_not_quadratic_at_the_start():
    teacher = load_results("teacher_student")["nqm"]
    softmax = load_results("digits_softmax")
    spread = {}
    mlp = load_results("digits_mlp")["nqm"]
    for name, nqm in (("teacher", teacher), ("softmax", softmax["nqm"]), ("mlp", mlp)):
        ratio = np.array(nqm["c"]) / np.array(nqm["h"])
        silent = ratio < 1e-8
        spread[name] = np.quantile(ratio[~silent], 0.9) / np.quantile(ratio[~silent], 0.1)
        if name == "softmax":  # the silent directions are the ones only the weight decay curves
            assert 0.1 < silent.mean() < 0.3
            decay = softmax["config"]["problem"]["weight_decay"]
            assert np.allclose(np.array(nqm["h"])[silent], decay, rtol=0.01)
        else:
            assert not silent.any()
    assert spread["softmax"] > 5 * spread["teacher"]
    assert spread["mlp"] <= spread["teacher"]  # the MLP's C is no further from a multiple of H
    trace_early = median_along(softmax, "trace_h", 16.0)
    assert trace_early > 3 * median_along(softmax, "trace_h", 1.0)
    unscaled = softmax["nqm"]["sensitivity"]["start not rescaled"]["initial_risk"]
    initial = np.mean([row["initial_risk"] for row in softmax["measured"]["sgd"]])
    assert unscaled < 0.3 * initial


# -------------------------------------------------------------------- the piecewise NQM


def test_piecewise_band_steps_add_up_and_the_stored_critical_batch_size_is_that_of_the_steps(results):
    batches = sweep_table(results, "sgd")["batch_size"]
    lrs = np.array(results["config"]["methods"]["sgd"]["lrs"])
    for hand_off in ("rank", "restart"):
        entry = results["nqm"]["piecewise"][hand_off]
        np.testing.assert_allclose(np.sum(entry["band_steps"], axis=1), entry["steps"], rtol=1e-6)
        assert critical_from_steps(batches, entry["steps"]) == pytest.approx(entry["critical"], rel=1e-5)
        np.testing.assert_allclose(lrs[entry["lr_index"]], entry["lr"], rtol=1e-5)


def test_grid_edges_finds_a_piecewise_rate_on_an_edge():
    data = load_results("teacher_student")
    rank = dict(data["nqm"]["piecewise"]["rank"], lr_index=[0] * len(data["config"]["batch_sizes"]))
    edited = {**data, "nqm": {**data["nqm"], "piecewise": {**data["nqm"]["piecewise"], "rank": rank}}}
    assert any("piecewise NQM (rank) B=1: η on the grid's edge" in problem for problem in grid_edges(edited))


def test_the_piecewise_nqm_is_too_slow_at_every_batch_size_on_the_teacher_student_network():
    data = load_results("teacher_student")
    table = sweep_table(data, "sgd")
    factor = table["piecewise"] / table["steps"]  # predicted over measured: > 1 is too slow
    assert np.all(factor > 1.5)  # it misses the goal at every batch size
    assert np.argmax(factor) == factor.size - 1 and factor[-1] > 5  # worst at the largest batch size
    piecewise, single = agreement(data, "sgd", model="piecewise"), agreement(data, "sgd")
    assert piecewise["worst"] > 2 * single["worst"]
    assert piecewise["critical_ratio"] > 3 > 1.5 * single["critical_ratio"]  # further off than the single NQM


def test_the_piecewise_nqm_keeps_pace_to_four_times_the_target_and_falls_behind_below():
    data = load_results("teacher_student")
    piecewise, along = data["nqm"]["piecewise"], data["nqm"]["along_training"]
    batches = data["config"]["batch_sizes"]
    for b in data["config"]["measurement"]["batch_sizes"]:
        model = np.cumsum(piecewise["rank"]["band_steps"][batches.index(b)])
        network = [
            np.median([r["step"] for r in along if r["batch_size"] == b and r["factor"] == f])
            for f in piecewise["factors"]
        ]
        assert 0.6 < model[2] / network[2] < 1.2, b  # 4 times the target
        assert model[3] / network[3] > 2.5, b  # twice the target
        if b == batches[-1]:
            assert model[2] == network[2]


def test_the_rank_hand_off_moves_the_error_into_flatter_directions():
    data = load_results("teacher_student")
    piecewise = data["nqm"]["piecewise"]
    shares = np.array(piecewise["curvature_at_share"])  # bands × shares (0.5, 0.75, 0.9)
    assert shares[0, 2] / shares[-1, 2] > 2.5 and shares[0, 0] / shares[-1, 0] > 2.5
    factors = np.array(piecewise["rank"]["hand_off_factors"])
    assert np.all(factors > 1.0)  # every hand-off grows the carried second moments
    assert np.all(np.prod(factors, axis=1) > 2.4)
    assert piecewise["kept_per_point"][-1] > 1.15 * piecewise["kept_per_point"][0]


def test_the_rank_and_restart_hand_offs_bracket_the_teacher_student_counts():
    table = sweep_table(load_results("teacher_student"), "sgd")
    rank, restart = table["steps"] / table["piecewise"], table["steps"] / table["piecewise_restart"]
    assert np.all(rank < 1) and np.all(restart > 1)
    assert np.min(restart) > 5  # the restart hand-off is far too fast


def test_on_the_digits_the_piecewise_nqm_misses_too_and_its_hand_offs_grow_the_moments_more():
    teacher = load_results("teacher_student")
    teacher_growth = np.prod(teacher["nqm"]["piecewise"]["rank"]["hand_off_factors"][0])
    teacher_shares = np.array(teacher["nqm"]["piecewise"]["curvature_at_share"])
    for setting in SETTINGS:
        data = load_results(setting)
        piecewise, single = agreement(data, "sgd", model="piecewise"), agreement(data, "sgd")
        assert piecewise["worst"] > 1.5 and piecewise["ratio_large"] < 1  # too slow at the large end
        assert piecewise["critical_ratio"] > single["critical_ratio"] > 1.5, setting
        if setting != "teacher_student":
            growth = np.prod(data["nqm"]["piecewise"]["rank"]["hand_off_factors"][0])
            assert growth > 1.4 * teacher_growth, setting
            shares = np.array(data["nqm"]["piecewise"]["curvature_at_share"])
            assert shares[0, 2] / shares[-1, 2] > teacher_shares[0, 2] / teacher_shares[-1, 2]


def test_agreement_rejects_an_unknown_model_or_a_missing_prediction():
    data = load_results("teacher_student")
    with pytest.raises(ValueError, match="model"):
        agreement(data, "sgd", model="quadratic")
    with pytest.raises(ValueError, match="piecewise"):
        agreement(data, "momentum", model="piecewise")


def test_the_steps_figures_draw_the_piecewise_nqm_in_the_sgd_panels_only():
    for fig, panels in ((figures.steps_figure(), 4), (figures.digits_figure(), 6)):
        labels = [[line.get_label() for line in ax.lines] for ax in fig.axes[:panels]]
        sgd_panels = [k for k, ax in enumerate(fig.axes[:panels]) if "SGD" == ax.get_title().split(": ")[-1]]
        assert sgd_panels
        for k, panel in enumerate(labels):
            assert ("piecewise NQM" in panel) == (k in sgd_panels)
        plt.close(fig)
