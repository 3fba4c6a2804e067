"""The static figure functions of the two PyTorch chapters draw what they are given, and refuse bad data.

``nqm_lib.figures_pytorch_loop`` ("PyTorch: the training loop") and
``nqm_lib.figures_pytorch_practice`` ("PyTorch in practice") take the arrays the chapters compute
(the interactive ``weight_decay_paths_figure`` its settings, checked against ``torch.optim``);
each test checks that the drawn lines carry exactly those values, with the labels and scales the
text refers to, and that malformed input raises ``ValueError`` instead of drawing nonsense.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from nqm_lib import figures_pytorch_loop as loop
from nqm_lib import figures_pytorch_practice as practice
from nqm_lib.plotting import FIGURE_WIDTH

plt.switch_backend("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _line(ax, label):
    (line,) = [line for line in ax.lines if line.get_label() == label]
    return line.get_xydata()


def _fits_the_column(fig):
    assert isinstance(fig, Figure)
    assert fig.get_figwidth() <= FIGURE_WIDTH


def test_least_squares_risk_figure_draws_the_exact_expectations_and_the_measured_means():
    sizes = np.array([10, 20, 40])
    rng = np.random.default_rng(0)
    train, test = 0.1 + 0.01 * rng.random((3, 50)), 0.15 + 0.01 * rng.random((3, 50))
    fig = loop.least_squares_risk_figure(sizes, train, test, d=5, noise_std=0.5)
    _fits_the_column(fig)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    n, values = _line(ax, r"theory: $\mathbb{E}\,\hat L(\hat\theta)$").T
    np.testing.assert_allclose(values, 0.125 * (n - 5) / n)
    n, values = _line(ax, r"theory: $\mathbb{E}\,L(\hat\theta)$").T
    np.testing.assert_allclose(values, 0.125 * (1 + 5 / (n - 6)))
    # errorbar draws the means as marker-only lines, one per series
    measured = [line for line in ax.lines if line.get_linestyle() == "None"]
    np.testing.assert_allclose(
        sorted(line.get_ydata()[0] for line in measured), sorted([test[0].mean(), train[0].mean()])
    )
    with pytest.raises(ValueError, match="d \\+ 1"):
        loop.least_squares_risk_figure([5, 20, 40], train, test, d=5, noise_std=0.5)
    with pytest.raises(ValueError, match="same length"):
        loop.least_squares_risk_figure(sizes[:2], train, test, d=5, noise_std=0.5)


def test_epoch_noise_floor_figure_shows_both_samplers_and_the_nqm_on_log_axes():
    lrs = np.array([0.0125, 0.025, 0.05])
    fig = loop.epoch_noise_floor_figure(
        lrs,
        [1e-3, 2e-3, 4e-3],
        [1e-5, 1e-4, 1e-3],
        [1.1e-3, 2e-3, 4e-3],
        n_examples=100,
        batch_size=10,
        runs=100,
    )
    _fits_the_column(fig)
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log"
    np.testing.assert_allclose(_line(ax, "measured, DataLoader(shuffle=True)")[:, 1], [1e-5, 1e-4, 1e-3])
    np.testing.assert_allclose(_line(ax, "NQM of the training set (with replacement)")[:, 0], lrs)
    assert "N = 100, B = 10, 100 runs" in ax.get_title()
    with pytest.raises(ValueError, match="finite"):
        loop.epoch_noise_floor_figure(
            lrs, [1, np.nan, 2], [1, 2, 3], [1, 2, 3], n_examples=10, batch_size=1, runs=1
        )


def test_zero_grad_figure_marks_the_momentum_one_run_on_top_of_the_forgotten_one():
    correct, forgotten = np.geomspace(1, 0.1, 30), 1 + np.arange(30.0)
    fig = loop.zero_grad_figure(correct, forgotten, forgotten, floor=0.1, lr=0.05, batch_size=10)
    _fits_the_column(fig)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    crosses = _line(ax, "SGD with momentum β = 1 (every 6th step)")
    np.testing.assert_array_equal(crosses[:, 0], np.arange(1, 31)[::6])
    np.testing.assert_array_equal(crosses[:, 1], forgotten[::6])
    assert "η = 0.05, B = 10" in ax.get_title()
    with pytest.raises(ValueError, match="same length"):
        loop.zero_grad_figure(correct, forgotten[:-1], forgotten, floor=0.1, lr=0.05, batch_size=10)


def test_learning_rate_schedules_figure_marks_every_drop_of_reduce_lr_on_plateau():
    plateau = np.repeat([0.1, 0.05, 0.025], [10, 5, 5])
    fig = loop.learning_rate_schedules_figure(
        {"a": np.geomspace(0.1, 0.01, 20), "b": np.full(20, 0.1)}, plateau, np.geomspace(1, 0.1, 20)
    )
    _fits_the_column(fig)
    top, bottom = fig.axes
    assert top.get_yscale() == bottom.get_yscale() == "log"
    assert _legend(top)[:2] == ["a", "b"]
    drops = [line.get_xdata()[0] for line in bottom.lines if line.get_linestyle() == ":"]
    assert drops == [10, 15]
    with pytest.raises(ValueError, match="same length"):
        loop.learning_rate_schedules_figure({}, plateau, np.ones(19))


def test_weight_decay_risk_figure_draws_the_total_and_the_flat_coordinate_per_lambda():
    steps = np.arange(51)
    theory = np.stack(
        [np.stack([np.exp(-steps / (5 + k)), np.exp(-steps / (20 + k))], axis=1) for k in range(2)]
    )
    floors = theory[:, -1, :]
    fig = loop.weight_decay_risk_figure(
        [0.0, 1.0], theory, floors, theory, 0.01 * theory.sum(axis=2), h=[50.0, 1.0], lr=0.01, momentum=0.5
    )
    _fits_the_column(fig)
    total, flat = fig.axes
    np.testing.assert_allclose(_line(total, "theory, λ = 1")[:, 1], theory[1].sum(axis=1))
    np.testing.assert_allclose(_line(flat, "h₂ + λ = 2")[:, 1], theory[1, :, 1])
    assert "h = (50, 1), η = 0.01, β = 0.5" in total.get_title()
    with pytest.raises(ValueError, match="same shape"):
        loop.weight_decay_risk_figure(
            [0.0, 1.0],
            theory,
            floors,
            theory[:, :-1],
            0.01 * theory.sum(axis=2),
            h=[50.0, 1.0],
            lr=0.01,
            momentum=0.5,
        )


def _torch_path(optimizer_class, weight_decay, lr, steps):
    theta = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    optimizer = optimizer_class([theta], lr=lr, weight_decay=weight_decay)
    path = [2.0]
    for _ in range(steps):
        theta.grad = torch.zeros(1, dtype=torch.float64)
        optimizer.step()
        path.append(theta.item())
    return np.array(path)


@pytest.mark.parametrize(("weight_decay", "lr"), [(0.1, 0.01), (1e-8, 0.0316), (0.5, 0.001)])
def test_weight_decay_paths_figure_draws_torch_adam_and_adamw_paths(weight_decay, lr):
    fig = practice.weight_decay_paths_figure(weight_decay, lr, steps=120)
    _fits_the_column(fig)
    (ax,) = fig.axes
    adam = _line(ax, f"Adam(weight_decay={weight_decay:.3g})")
    np.testing.assert_allclose(adam[:, 1], _torch_path(torch.optim.Adam, weight_decay, lr, 120), rtol=1e-10)
    adamw = _line(ax, f"AdamW(weight_decay={weight_decay:.3g}) = θ₀ (1 − ηλ)ᵏ")
    np.testing.assert_allclose(adamw[:, 1], _torch_path(torch.optim.AdamW, weight_decay, lr, 120), rtol=1e-12)
    np.testing.assert_allclose(
        _line(ax, "Adam(weight_decay=1)")[:, 1], _torch_path(torch.optim.Adam, 1.0, lr, 120)
    )


def test_weight_decay_paths_figure_keeps_its_axes_over_the_site_grid_and_validates():
    from nqm_lib.interactive import FIGURES

    declared = FIGURES["weight_decay_paths"]
    limits = set()
    for lam in (declared.controls[0].site_values[0], declared.controls[0].site_values[-1]):
        for lr in (declared.controls[1].site_values[0], declared.controls[1].site_values[-1]):
            (ax,) = practice.weight_decay_paths_figure(lam, lr).axes
            limits.add((ax.get_xlim(), ax.get_ylim()))
            lines = np.concatenate([line.get_ydata() for line in ax.lines if len(line.get_ydata())])
            assert ax.get_ylim()[0] <= lines.min() and lines.max() <= ax.get_ylim()[1]
            plt.close("all")
    assert len(limits) == 1
    with pytest.raises(ValueError, match="weight_decay"):
        practice.weight_decay_paths_figure(-0.1)
    with pytest.raises(ValueError, match="lr"):
        practice.weight_decay_paths_figure(0.1, 0.0)


def test_warmup_schedule_figure_marks_t_max_and_shows_both_warm_ups():
    warm = np.linspace(0.01, 0.1, 40)
    fig = practice.warmup_schedule_figure(warm, warm, np.linspace(0.1, 0.001, 60), t_max=20)
    _fits_the_column(fig)
    (ax,) = fig.axes
    np.testing.assert_allclose(_line(ax, "SequentialLR(LinearLR, CosineAnnealingLR)")[:, 1], warm)
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [20]
    with pytest.raises(ValueError, match="same length"):
        practice.warmup_schedule_figure(warm, warm[:-1], warm, t_max=20)


def test_training_history_figure_draws_the_losses_and_the_distance_per_epoch():
    history = {
        key: np.geomspace(1, 0.01, 10) * (k + 1)
        for k, key in enumerate(("train", "val", "val_ema", "excess", "excess_ema"))
    }
    fig = practice.training_history_figure(history, floor=0.2)
    _fits_the_column(fig)
    losses, distance = fig.axes
    np.testing.assert_allclose(_line(distance, "EMA")[:, 1], history["excess_ema"])
    np.testing.assert_array_equal(_line(losses, "validation, model")[:, 0], np.arange(1, 11))
    history["val"] = history["val"][:-1]
    with pytest.raises(ValueError, match="one value per epoch"):
        practice.training_history_figure(history, floor=0.2)
