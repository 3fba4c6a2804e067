"""The chapters' figure functions (``nqm_lib.figures``) and the widget ``Explorer``.

Figures are called with several slider values and inspected: number and kind of lines,
legend entries, log scale, that the plotted theory is the exact risk and the noise floors
are the hand formula, and that unstable settings are drawn leaving the fixed axes while
invalid ones become a message figure without any plotted data (``Explorer``). The widget's
redraw reuses the pixels of unchanged axes and legends: what it shows is what drawing the
figure afresh shows, to a level or two of antialiasing.
"""

import io

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from nqm_lib import NQM, risk_curve_per_coordinate
from nqm_lib.figures import gradient_noise_figure, path_figure, sgd_risk_figure
from nqm_lib.interactive import FIGURES
from nqm_lib.widgets import Explorer, explore

plt.switch_backend("Agg")

FAST = {"steps": 60, "trials": 40}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def solid_lines(ax):
    return [line for line in ax.lines if line.get_linestyle() == "-" and line.get_marker() in (None, "None")]


def dotted_lines(ax):
    return [line for line in ax.lines if line.get_linestyle() == ":"]


def marker_lines(ax, marker):
    return [line for line in ax.lines if line.get_marker() == marker]


def assert_all_plotted_data_finite(ax):
    for line in ax.lines:
        assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float))), line.get_label()


def assert_nothing_plotted(ax):
    assert len(ax.lines) == 0
    assert len(ax.collections) == 0
    assert len(ax.patches) == 0
    assert len(ax.images) == 0


# ---------------------------------------------------------------- chapter 2: SGD risk

SGD_SLIDER_VALUES = [
    {},
    {"lr": 0.01, "batch_size": 4, "h1": 20.0, "h2": 2.0, "c1": 5.0, "c2": 1.0},
    {"lr": 0.035, "batch_size": 16, "h1": 50.0, "h2": 0.5, "c1": 50.0, "c2": 0.5},
    {"lr": 0.1, "batch_size": 1, "h1": 10.0, "h2": 10.0, "c1": 1.0, "c2": 3.0},
]


@pytest.mark.parametrize("values", SGD_SLIDER_VALUES)
def test_sgd_risk_figure_has_theory_simulation_and_floor_per_coordinate_plus_total(values):
    fig = sgd_risk_figure(**values, **FAST)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert len(solid_lines(ax)) == 3  # theory: coordinate 1, coordinate 2, total
    assert len(marker_lines(ax, "o")) == 3  # Monte Carlo: the same three
    assert len(dotted_lines(ax)) == 2  # one noise floor per coordinate
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert len(labels) == 4
    assert labels[0].startswith("coordinate 1") and labels[1].startswith("coordinate 2")
    assert "total" in labels[2] and "Monte Carlo" in labels[3]
    assert_all_plotted_data_finite(ax)


@pytest.mark.parametrize("values", SGD_SLIDER_VALUES)
def test_sgd_risk_figure_plots_the_exact_risk_and_hand_noise_floors(values):
    settings = {"lr": 0.02, "batch_size": 1, "h1": 50.0, "h2": 1.0, "c1": 50.0, "c2": 1.0, **values}
    fig = sgd_risk_figure(**settings, **FAST)
    (ax,) = fig.axes
    lr, batch_size = settings["lr"], settings["batch_size"]
    h = np.array([settings["h1"], settings["h2"]])
    c = np.array([settings["c1"], settings["c2"]])
    exact = risk_curve_per_coordinate(NQM(h, c, [1.0, 1.0]), FAST["steps"], lr=lr, batch_size=batch_size)
    first, second, total = solid_lines(ax)
    np.testing.assert_allclose(first.get_ydata(), exact[:, 0], rtol=1e-12)
    np.testing.assert_allclose(second.get_ydata(), exact[:, 1], rtol=1e-12)
    np.testing.assert_allclose(total.get_ydata(), exact.sum(axis=1), rtol=1e-12)
    floors = [line.get_ydata()[0] for line in dotted_lines(ax)]
    np.testing.assert_allclose(floors, lr * c / (2 * batch_size * (2 - lr * h)), rtol=1e-12)


def test_sgd_risk_figure_draws_an_unstable_setting_leaving_its_fixed_axes():
    (ax,) = sgd_risk_figure(lr=0.05, h1=50.0, **FAST).axes
    stable = sgd_risk_figure(**FAST).axes[0]
    assert (ax.get_xlim(), ax.get_ylim()) == (stable.get_xlim(), stable.get_ylim())
    assert [text.get_text() for text in ax.texts] == ["diverges: ηh₁ = 2.5 ≥ 2"]
    first, _, total = solid_lines(ax)
    assert total.get_ydata().max() > ax.get_ylim()[1]  # the total climbs out of the top
    exact = risk_curve_per_coordinate(NQM([50.0, 1.0], [50.0, 1.0], [1.0, 1.0]), 60, lr=0.05, ceiling=1e4)
    np.testing.assert_array_equal(first.get_ydata(), exact[:, 0])
    assert_all_plotted_data_finite(ax)


# ---------------------------------------------------------------- chapter 1: gradient noise


@pytest.mark.parametrize("batch_size", [1, 4, 16])
@pytest.mark.parametrize(("theta1", "theta2"), [(1.0, 1.0), (-0.5, 2.0)])
def test_gradient_noise_figure_shows_cloud_true_gradient_and_ellipses(batch_size, theta1, theta2):
    fig = gradient_noise_figure(batch_size, theta1, theta2, samples=300)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_yscale() == "linear"
    (star,) = marker_lines(ax, "*")
    (cross,) = marker_lines(ax, "x")
    # default data model h = (2, 1), σ = (1, 2): ∇L(θ) = Hθ, C = diag(h²σ²) = diag(4, 4)
    np.testing.assert_allclose(star.get_xydata()[0], [2.0 * theta1, theta2], rtol=1e-15)
    (cloud,) = ax.collections
    assert cloud.get_offsets().shape == (300, 2)
    np.testing.assert_allclose(cross.get_xydata()[0], np.mean(cloud.get_offsets(), axis=0), rtol=1e-12)
    theory_ellipse = ax.patches[0]
    radius = 2.0 * np.sqrt(4.0 / batch_size)  # 2 standard deviations of C/B
    assert theory_ellipse.width == pytest.approx(2 * radius, rel=1e-12)
    assert theory_ellipse.height == pytest.approx(2 * radius, rel=1e-12)
    assert len(ax.get_legend().get_texts()) == 5
    assert_all_plotted_data_finite(ax)


def test_gradient_noise_figure_axis_limits_do_not_depend_on_batch_size():
    limits = []
    for batch_size in (1, 16):
        (ax,) = gradient_noise_figure(batch_size).axes
        limits.append((ax.get_xlim(), ax.get_ylim()))
    assert limits[0] == limits[1]


def test_gradient_noise_figure_rejects_invalid_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        gradient_noise_figure(0)


# ---------------------------------------------------------------- the widget Explorer


def sgd_controls():
    return {
        "lr": ipywidgets.FloatLogSlider(value=0.02, min=-3, max=-1, description="η"),
        "batch_size": ipywidgets.IntSlider(value=1, min=0, max=64, description="B"),
        "h1": ipywidgets.FloatSlider(value=50.0, min=1.0, max=100.0, description="h₁"),
    }


def test_explorer_values_combine_fixed_arguments_and_controls():
    explorer = Explorer(sgd_risk_figure, sgd_controls(), fixed=FAST)
    assert explorer.values() == {**FAST, "lr": 0.02, "batch_size": 1, "h1": 50.0}


def test_explorer_figure_for_valid_settings_is_the_figure_function_output():
    fig = Explorer(sgd_risk_figure, sgd_controls(), fixed=FAST).figure(batch_size=4)
    (ax,) = fig.axes
    assert len(solid_lines(ax)) == 3
    assert "B = 4" in ax.get_title()


def test_explorer_draws_an_unstable_setting_instead_of_a_message():
    fig = Explorer(sgd_risk_figure, sgd_controls(), fixed=FAST).figure(lr=0.05)
    (ax,) = fig.axes
    assert ax.axison and len(solid_lines(ax)) == 3
    assert [text.get_text() for text in ax.texts] == ["diverges: ηh₁ = 2.5 ≥ 2"]


def test_explorer_shows_invalid_value_message_in_the_controls_symbols_instead_of_plotting():
    slider = ipywidgets.IntSlider(value=1, min=0, max=8, description="B")
    fig = Explorer(gradient_noise_figure, {"batch_size": slider}).figure(batch_size=0)
    texts = [text.get_text() for ax in fig.axes for text in ax.texts]
    assert texts == ["These settings cannot be drawn: B must be an integer\u00a0≥\u00a01, got 0."]
    for ax in fig.axes:
        assert_nothing_plotted(ax)


class RecordingFigureFunction:
    """Wraps ``sgd_risk_figure`` and records the arguments of every call and its outcome."""

    def __init__(self):
        self.calls = []

    def __call__(self, **kwargs):
        try:
            fig = sgd_risk_figure(**kwargs)
        except ValueError:
            self.calls.append((kwargs, "error"))
            raise
        self.calls.append((kwargs, "figure"))
        return fig


def test_moving_a_slider_redraws_without_error_or_leaked_figures(capsys):
    controls = sgd_controls()
    recorder = RecordingFigureFunction()
    explorer = Explorer(recorder, controls, fixed=FAST)
    open_before = plt.get_fignums()
    explorer.show()
    controls["lr"].value = 0.05  # unstable: drawn diverging
    controls["batch_size"].value = 0  # invalid: the callback draws the message figure
    controls["lr"].value = 0.01
    controls["batch_size"].value = 8
    capsys.readouterr()
    assert [(kwargs["lr"], kwargs["batch_size"], outcome) for kwargs, outcome in recorder.calls] == [
        (0.02, 1, "figure"),  # the default figure drawn by show()
        (0.05, 1, "figure"),
        (0.05, 0, "error"),
        (0.01, 0, "error"),
        (0.01, 8, "figure"),
    ]
    assert plt.get_fignums() == open_before


def test_explore_disables_continuous_update_draws_once_and_closes_its_figure(capsys):
    controls = sgd_controls()
    recorder = RecordingFigureFunction()
    open_before = plt.get_fignums()
    explore(recorder, fixed=FAST, **controls)
    assert all(widget.continuous_update is False for widget in controls.values())
    assert len(recorder.calls) == 1
    assert plt.get_fignums() == open_before
    capsys.readouterr()


# ---------------------------------------------------------------- fast redraws (one figure, kept layout)


def png_pixels(image):
    from io import BytesIO

    from PIL import Image as PILImage

    return np.asarray(PILImage.open(BytesIO(image.data)).convert("RGB"))


def inked_edges(pixels, band=2):
    """The sides of an image whose outer ``band`` pixels are not all background (something is cut)."""
    background = pixels[0, 0]
    edges = {
        "top": pixels[:band],
        "bottom": pixels[-band:],
        "left": pixels[:, :band],
        "right": pixels[:, -band:],
    }
    return [side for side, edge in edges.items() if np.any(edge != background)]


def test_new_figure_draws_into_the_target_figure_only_inside_drawing_into():
    from nqm_lib.plotting import drawing_into, new_figure

    target = Figure()
    target.subplots(1, 3)
    with drawing_into(target):
        fig, axes = new_figure(2, width=5.0, height=3.0)
    assert fig is target and len(target.axes) == 2 and list(axes) == target.axes
    assert tuple(target.get_size_inches()) == (5.0, 3.0)
    outside, _ = new_figure()
    assert outside is not target


def test_risk_axes_get_few_round_step_ticks_unless_the_step_axis_is_logarithmic():
    from nqm_lib.plotting import label_risk_axes, new_figure

    fig, (linear, logarithmic) = new_figure(2)
    linear.plot([0, 400], [1.0, 0.1])
    logarithmic.loglog([1, 400], [1.0, 0.1])
    label_risk_axes(linear)
    label_risk_axes(logarithmic)
    fig.canvas.draw()
    ticks = [t for t in linear.get_xticks() if 0 <= t <= 400]
    assert ticks == [0, 100, 200, 300, 400]
    assert type(logarithmic.xaxis.get_major_locator()).__name__ == "LogLocator"
    assert linear.get_yscale() == logarithmic.get_yscale() == "log"
    plt.close(fig)


def test_explorer_redraws_one_figure_and_keeps_its_axes_in_place():
    explorer = Explorer(sgd_risk_figure, sgd_controls(), fixed=FAST)
    fig = explorer.figure()
    first = explorer.image()
    positions = [ax.get_position().bounds for ax in fig.axes]
    second = explorer.image(lr=0.005, batch_size=16)
    assert [ax.get_position().bounds for ax in fig.axes] == positions
    assert explorer.figure(lr=0.005) is fig  # the same Figure and canvas every time
    assert png_pixels(first).shape == png_pixels(second).shape
    assert not np.array_equal(png_pixels(first), png_pixels(second))


def test_widget_png_decodes_to_exactly_the_drawn_canvas():
    # The widget writes its PNG itself (unfiltered rows, fast zlib); a standard decoder must
    # read back every pixel of the canvas, at the canvas's size.
    explorer = Explorer(sgd_risk_figure, sgd_controls(), fixed=FAST)
    canvas = explorer.figure().canvas  # the one canvas every image() draws
    image = explorer.image()
    assert image.data.startswith(b"\x89PNG\r\n\x1a\n")
    drawn = np.asarray(canvas.buffer_rgba())[:, :, :3]
    np.testing.assert_array_equal(png_pixels(image), drawn)
    assert drawn.shape[:2] == canvas.get_width_height()[::-1]
    assert len(image.data) < drawn.nbytes / 5  # compressed, not stored


def test_palette_png_decodes_to_its_indices_and_colours_and_bad_input_is_refused():
    from PIL import Image

    from nqm_lib.png import png_bytes

    rng = np.random.default_rng(3)
    indices = rng.integers(0, 5, size=(7, 11), dtype=np.uint8)
    palette = rng.integers(0, 256, size=(5, 3), dtype=np.uint8)
    decoded = Image.open(io.BytesIO(png_bytes(indices, palette=palette.tobytes(), level=6)))
    assert decoded.mode == "P" and decoded.size == (11, 7)
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), palette[indices])
    strided = rng.integers(0, 256, size=(6, 9, 4), dtype=np.uint8)[:, :, :3]  # as a canvas's RGBA view
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(strided)))), strided)
    with pytest.raises(ValueError, match=r"need uint8 height × width × 3 RGB values"):
        png_bytes(indices)
    with pytest.raises(ValueError, match=r"dtype float64 .* need uint8 height × width indices"):
        png_bytes(indices.astype(float), palette=palette.tobytes())
    with pytest.raises(ValueError, match="palette of 4 bytes"):
        png_bytes(indices, palette=b"\x00" * 4)
    with pytest.raises(ValueError, match="level = 10"):
        png_bytes(strided, level=10)


def test_explorer_lays_out_again_when_text_would_be_cut_off_at_the_edge():
    from nqm_lib.plotting import new_figure

    def labelled(tick_label="0"):
        fig, (ax,) = new_figure(width=5.0, height=3.0)
        ax.plot([0, 1], [0, 1])
        ax.set_yticks([0.5], labels=[tick_label], fontsize=14)
        return fig

    explorer = Explorer(labelled, {})
    fig = explorer.figure()  # the one figure every image() redraws
    explorer.image()
    kept = fig.axes[0].get_position().x0
    assert inked_edges(png_pixels(explorer.image(tick_label="a long tick label"))) == []
    assert fig.axes[0].get_position().x0 > kept  # the axes moved right to make room


def test_explorer_rejects_a_figure_function_that_does_not_use_new_figure():
    def own_figure():
        return Figure()

    with pytest.raises(TypeError, match="new_figure"):
        Explorer(own_figure, {}).figure()


@pytest.mark.parametrize("figure_id", list(FIGURES))
def test_every_widget_figure_fits_its_image_at_the_default_settings(figure_id):
    """Nothing (a long title, a legend outside the axes) is cut off at the image's edge."""
    figure = FIGURES[figure_id]
    cut = inked_edges(png_pixels(Explorer(figure.figure_function, {}, figure.defaults).image()))
    assert not cut, f"{figure_id}: something is cut off at the {cut} edge"


@pytest.mark.parametrize(
    ("figure_id", "values"), [("momentum_risk", {"lr": 0.02}), ("averaging", {"batch_size": 1})]
)
def test_reused_axes_and_legend_pixels_are_those_of_a_fresh_drawing(figure_id, values):
    figure = FIGURES[figure_id]
    explorer = Explorer(figure.figure_function, {}, figure.defaults)
    explorer.draw()
    shown = np.asarray(explorer.draw(**values).buffer_rgba())[:, :, :3].astype(int)
    fig = explorer.figure(**values)  # the same figure drawn again, without the raster cache
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                axis.set_minor_locator(NullLocator())
    for ax, position in zip(fig.axes, explorer._layouts[next(iter(explorer._layouts))], strict=True):
        ax.set_position(position)
    fig.canvas.draw()
    fresh = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    difference = np.abs(shown - fresh).max(axis=2)
    assert difference.max() <= 3 and np.mean(difference > 0) < 0.002


def test_reused_pixels_follow_a_change_of_ticks_labels_and_legend():
    from nqm_lib.plotting import new_figure

    def plot(top=10.0, label="a"):
        fig, (ax,) = new_figure(width=5.0, height=3.0)
        ax.plot([0, 1], [1, 2], label=label)
        ax.set_ylim(1, top)
        ax.legend(loc="upper left")
        return fig

    explorer = Explorer(plot, {})
    explorer.image()
    layouts = dict(explorer._layouts)  # as frame_images does: each setting laid out as after the default
    for values in ({"top": 100.0}, {"label": "b"}, {}):
        explorer._layouts = dict(layouts)
        again = Explorer(plot, {})
        again.image()
        np.testing.assert_array_equal(png_pixels(explorer.image(**values)), png_pixels(again.image(**values)))
    explorer._layouts = dict(layouts)
    assert not np.array_equal(png_pixels(explorer.image(top=100.0)), png_pixels(explorer.image()))


# ---------------------------------------------------------------- chapters 2–3: paths in the (θ₁, θ₂) plane


@pytest.mark.parametrize(
    "values",
    [{}, {"lr": 0.01, "batch_size": 4}, {"lr": 0.0175, "momentum": 0.5}, {"momentum": 0.9, "lr": 0.002}],
)
def test_path_figure_draws_sample_path_iterates_of_gd_sgd_and_momentum(values):
    from nqm_lib import sample_path

    settings = {"lr": 0.035, "batch_size": 64, "momentum": 0.0, **values}
    fig = path_figure(**values, steps=30)
    (ax,) = fig.axes
    paths = [line for line in ax.lines if line.get_marker() == "."]
    assert len(paths) == (3 if settings["momentum"] else 2)
    problem = NQM([50.0, 1.0], [50.0, 1.0], theta0=[0.5, 1.0])
    noise_free = NQM([50.0, 1.0], [0.0, 0.0], theta0=[0.5, 1.0])
    hyper = {"lr": settings["lr"], "batch_size": settings["batch_size"], "seed": 0}
    expected = [sample_path(noise_free, 30, **hyper), sample_path(problem, 30, **hyper)]
    if settings["momentum"]:
        expected.append(sample_path(problem, 30, momentum=settings["momentum"], **hyper))
    for line, path in zip(paths, expected, strict=True):
        np.testing.assert_allclose(line.get_xdata(), path[:, 1])  # θ₂ across the page
        np.testing.assert_allclose(line.get_ydata(), path[:, 0])
    assert len(ax.collections) > 0  # the loss contours


def test_path_figure_draws_diverging_paths_leaving_the_view_and_says_which():
    fig = path_figure(lr=0.05, momentum=0.9, steps=20)  # η h₁ = 2.5: SGD diverges, momentum not
    (ax,) = fig.axes
    labels = [text.get_text() for text in ax.texts]
    assert "GD, SGD diverge: ηh₁ = 2.5 ≥ 2" in labels
    momentum = [line for line in ax.lines if line.get_marker() == "."][2]
    assert len(momentum.get_xdata()) == 21  # the stable path is drawn in full
    fig = path_figure(lr=0.08, momentum=0.5, steps=20)
    assert "GD, SGD, momentum diverge: ηh₁ = 4 ≥ 2(1 + β) = 3" in [t.get_text() for t in fig.axes[0].texts]
    assert_all_plotted_data_finite(fig.axes[0])
