"""The interactive figures' declarations (nqm_lib.interactive) and the site's frames.

* Every ``explore(...)`` call of a chapter uses a declaration, or passes exactly the controls
  its declaration would make (same widget type, label, default, range, step and options).
* A frame the site shows for a setting is what the notebook shows after moving its controls
  to that setting: drawn again by a fresh :class:`~nqm_lib.widgets.Explorer`, pixel for pixel
  before the 256-colour encoding, and within a stated tolerance after it.
* The frame index the page computes (strides) matches the order the frames are drawn in.
* Fixed axes (issue 19): every frame of every declaration (as the site build drew it: it records
  each frame's axes in the figure's manifest), and the notebook's continuous range
  of every control, keeps the axes of the default figure (limits, scales, ticks, and in the
  widget their place); no setting on a site grid or a slider is a message card, none warns, and
  an unstable setting is drawn leaving the axes with its broken condition written there.
* The notebook side (issue 24): ``explore``'s three outputs, a readable fallback before the
  cells run, checkboxes for multiple choices, messages in the controls' symbols, and only
  constructor arguments that ipywidgets 7 (Colab) accepts.
"""

import ast
import inspect
import io
import json
import warnings
from pathlib import Path

import ipywidgets
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from PIL import Image

from book_ext.live_figures import (
    axes_state,
    figure_of_source,
    frame_facts,
    frame_folder_name,
    library_digest,
)
from book_ext.small_png import encode_png, half_size, mean_difference
from nqm_lib import widgets
from nqm_lib.interactive import FIGURES, Control, InteractiveFigure, declaration, site_grid
from nqm_lib.widgets import CheckboxGroup, Explorer, explore, frame_images

ROOT = Path(__file__).resolve().parent.parent

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
WIDGET_TRAITS = ("description", "value", "min", "max", "step", "base", "options")


def explore_calls():
    """``(notebook, cell source, namespace source)`` for every cell that calls explore."""
    for path in CHAPTERS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        imports = next(source for source in code if "from nqm_lib.widgets import explore" in source)
        for source in code:
            if "explore(" in source and source is not imports:
                yield path.name, source, imports


def _run_explore_cell(source, imports, monkeypatch):
    """Run a chapter's explore cell with its imports; return what explore was called with."""
    calls = []

    def capture(figure_function, fixed=None, **controls):
        calls.append((figure_function, fixed, controls))

    monkeypatch.setattr(widgets, "explore", capture)
    namespace = {}
    exec(compile(imports, "<imports>", "exec"), namespace)  # noqa: S102 - the chapter's own cells
    namespace["explore"] = capture
    call = ast.parse(source).body[-1]  # the explore call is the cell's last statement
    exec(compile(ast.Module([call], []), "<explore>", "exec"), namespace)  # noqa: S102
    assert len(calls) == 1
    return calls[0]


def _traits(widget):
    return {name: getattr(widget, name) for name in WIDGET_TRAITS if hasattr(widget, name)}


@pytest.mark.parametrize(("notebook", "source", "imports"), list(explore_calls()), ids=lambda v: str(v)[:24])
def test_every_chapter_explore_call_matches_its_declaration(notebook, source, imports, monkeypatch):
    figure_function, fixed, controls = _run_explore_cell(source, imports, monkeypatch)
    figure = declaration(figure_function, list(controls))
    assert figure_of_source(source) is figure, f"{notebook}: the site would not find {figure.id}'s cell"
    if isinstance(figure_function, InteractiveFigure | str):
        assert not controls, f"{notebook}: a declared figure takes no explicit controls"
        return
    assert figure.figure_function is figure_function
    # Chapter 10 passes the sweep's results, which its figure function otherwise loads itself.
    assert set(fixed or {}) <= {"results"} and not figure.fixed
    declared = figure.widgets()
    assert list(controls) == list(declared), f"{notebook}: controls differ from {figure.id}'s declaration"
    for name, widget in controls.items():
        assert type(widget) is type(declared[name]), f"{notebook} {figure.id}.{name}: widget type"
        assert _traits(widget) == _traits(declared[name]), f"{notebook} {figure.id}.{name}"


def test_every_declared_figure_is_shown_by_a_chapter():
    shown = {figure_of_source(source).id for _, source, _ in explore_calls()}
    assert shown == set(FIGURES)


def test_every_declaration_is_consistent():
    for figure in FIGURES.values():
        assert figure.live_controls, figure.id
        for control in figure.controls:
            values = control.site_values
            assert control.default in values, (figure.id, control.name)
            assert len(set(map(repr, values))) == len(values), (figure.id, control.name)
            if control in figure.live_controls and control.kind not in ("selection", "dropdown", "checkbox"):
                assert len(values) >= 6, f"{figure.id}.{control.name}: fewer than 6 site values"
            if control.kind in ("selection", "dropdown") and control in figure.live_controls:
                options = [o[1] if isinstance(o, tuple) else o for o in control.options]
                assert len(values) >= min(6, len(options)), f"{figure.id}.{control.name}"
                assert set(values) <= set(options), f"{figure.id}.{control.name}: values outside its options"
            if control.kind == "log":
                steps = np.diff(np.log(values))
                assert steps.max() < 2.5 * steps.min(), f"{figure.id}.{control.name}: not log-spaced"
            if control.kind in ("log", "float", "int"):
                low, high = control.minimum, control.maximum
                if control.log:
                    low, high = 10**low, 10**high
                assert low <= min(values) and max(values) <= high, (figure.id, control.name)
        if len(figure.live_controls) < len(figure.controls):
            assert figure.lesson, figure.id


def test_frame_index_follows_the_order_frames_are_drawn_in():
    for figure in FIGURES.values():
        names = [c.name for c in figure.live_controls]
        for index, values in figure.frames():
            assert figure.frame_index(**{n: values[n] for n in names}) == index
        assert index == figure.frame_count - 1


def test_site_grid_is_evenly_spaced_contains_the_default_and_checks_its_arguments():
    assert site_grid(1.0, 1000.0, 4, 10.0, log=True) == (1.0, 10.0, 100.0, 1000.0)
    assert site_grid(0.0, 1.0, 5, 0.5) == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert 0.3 in site_grid(0.0, 1.0, 6, 0.3)
    for kwargs, word in (
        ({"count": 1}, "count"),
        ({"low": 2.0}, "low"),
        ({"default": 5.0}, "default"),
        ({"low": 0.0, "log": True}, "low"),
    ):
        arguments = {"low": 0.1, "high": 1.0, "count": 4, "default": 0.5, **kwargs}
        log = arguments.pop("log", False)
        with pytest.raises(ValueError, match=word):
            site_grid(**arguments, log=log)


def test_declarations_check_their_controls():
    with pytest.raises(ValueError, match="kind"):
        Control("lr", "η", 0.1, "knob", (0.1, 0.2))
    with pytest.raises(ValueError, match="default"):
        Control("lr", "η", 0.3, "float", (0.1, 0.2), minimum=0.0, maximum=1.0, step=0.1)
    control = Control("lr", "η", 0.1, "float", (0.1, 0.2), minimum=0.0, maximum=1.0, step=0.1)
    with pytest.raises(ValueError, match="live"):
        InteractiveFigure("x", "nqm_lib.figures:sgd_risk_figure", (control,), live=("batch_size",))
    with pytest.raises(ValueError, match="key"):
        declaration("no_such_figure")


def test_explore_shows_a_declared_figure_and_refuses_extra_controls(monkeypatch):
    shown = []
    monkeypatch.setattr(widgets, "display", lambda *objects: shown.extend(objects))
    monkeypatch.setattr(Explorer, "show", lambda self, note: shown.append(self))
    explore("minibatch_noise")
    (explorer,) = shown
    assert set(explorer.controls) == {"batch_size", "n_examples"}
    assert all(not w.continuous_update for w in explorer.controls.values() if hasattr(w, "continuous_update"))
    with pytest.raises(ValueError, match="controls"):
        explore("minibatch_noise", batch_size=ipywidgets.IntSlider())


def _fresh_render(figure, values, scale=1):
    """What the notebook shows after its controls move from their defaults to ``values``.

    ``scale`` = 2: the same at twice the resolution (the site's 2× frames).
    """
    explorer = Explorer(figure.figure_function, {}, figure.defaults)
    explorer._figure.set_dpi(explorer._figure.get_dpi() * scale)
    explorer.draw()
    return np.asarray(explorer.draw(**values).buffer_rgba())[:, :, :3].copy()


# A few frames of three figures: the first, the default and the last (which, for sgd_risk,
# is an unstable setting: η = 0.06 > 2/h₁, drawn leaving the top of the axes).
SAMPLES = {"sgd_risk": None, "minibatch_noise": None, "landscape": None}


@pytest.mark.parametrize("figure_id", list(SAMPLES))
def test_site_frames_are_what_the_notebook_draws_for_that_setting(built_site, figure_id):
    """The site's 2× frame is the notebook's figure for that setting at twice the resolution, and
    its 1× frame their 2 × 2 mean, each stored as ``encode_png`` stores it: 256-colour PNGs within
    the stated tolerance of the drawing, mean |Δ| < 1 level and 99% of the pixels within 16
    levels (of 255) in every channel."""
    result, html = built_site
    assert result.returncode == 0, "the site did not build: see test_book.py"
    figure = FIGURES[figure_id]
    folder = html / "_static" / "live" / frame_folder_name(figure)
    assert len(list(folder.glob("*@2x.png"))) == figure.frame_count
    assert len(list(folder.glob("*.png"))) == 2 * figure.frame_count
    frames = dict(figure.frames())
    for index in sorted({0, figure.frame_index(), figure.frame_count - 1}):
        fresh = _fresh_render(figure, frames[index], scale=2)
        for name, drawing in ((f"{index}@2x.png", fresh), (f"{index}.png", half_size(fresh))):
            shown = np.asarray(Image.open(folder / name).convert("RGB"))
            expected = np.asarray(Image.open(io.BytesIO(encode_png(drawing))).convert("RGB"))
            assert np.array_equal(shown, expected), f"{figure_id}: site frame {name} is no fresh render"
            difference = np.abs(shown.astype(int) - drawing.astype(int))
            assert difference.mean() < 1.0, f"{figure_id} {name}: mean difference {difference.mean():.2f}"
            assert np.mean(difference.max(axis=2) <= 16) > 0.99, f"{figure_id} {name}"


def test_256_colour_frames_keep_the_background_exact_and_the_rest_within_tolerance_at_both_scales():
    # momentum_risk has the most colours of the site's figures: two panels, a band and dots.
    figure = FIGURES["momentum_risk"]
    ((_, frame),) = frame_images(figure, [figure.frame_index()], scale=2)
    large = np.asarray(frame)
    for rgb in (large, half_size(large)):
        image = Image.open(io.BytesIO(encode_png(rgb)))
        assert image.mode == "P", "not a palette PNG"
        shown = np.asarray(image.convert("RGB")).astype(int)
        background = np.all(rgb == rgb[0, 0], axis=2)
        assert background.mean() > 0.5 and np.array_equal(shown[background], rgb[background].astype(int))
        difference = np.abs(shown - rgb.astype(int))
        assert difference.mean() < 1.0, f"{rgb.shape}: mean difference {difference.mean():.2f}"
        assert np.mean(difference.max(axis=2) <= 16) > 0.99, rgb.shape


def test_a_frame_crowded_with_colours_falls_back_to_a_palette_that_keeps_the_tolerance():
    # Two frames of the site's 1,785 need it: RMSProp's paths at η = 3.16, B = 2 cross in 11,711 colours.
    figure = FIGURES["optimiser_paths"]
    index = figure.frame_index(optimiser="RMSProp", lr=3.16, batch_size=2, feature_mean=2.0)
    ((_, large),) = frame_images(figure, [index], scale=2)
    small = np.asarray(half_size(large))
    drawn = Image.fromarray(small)
    stored = Image.open(io.BytesIO(encode_png(small))).convert("RGB")
    octree = drawn.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    median_cut = drawn.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    assert mean_difference(octree, drawn) > 1.0 > mean_difference(stored, drawn)
    assert np.array_equal(np.asarray(stored), np.asarray(median_cut.convert("RGB")))


def test_an_unstable_site_frame_is_the_drawn_divergence_the_notebook_shows():
    figure = FIGURES["sgd_risk"]
    index = figure.frame_index(lr=0.06, batch_size=1)
    ((_, image),) = frame_images(figure, [index])
    explorer = Explorer(figure.figure_function, {}, figure.defaults)
    explorer.draw()
    (ax,) = explorer.figure(lr=0.06, batch_size=1).axes
    assert ax.axison and [text.get_text() for text in ax.texts] == ["diverges: ηh₁ = 3 ≥ 2"]
    assert np.array_equal(np.asarray(image), _fresh_render(figure, {**figure.defaults, "lr": 0.06}))


# ---------------------------------------------------------------- fixed axes, divergence drawn (issue 19)

#: Fewer Monte Carlo runs for the tests that draw every frame and every control's range: the axes,
#: the absence of message cards and of warnings do not depend on how many runs are averaged.
FEW_RUNS = {"trials": 4, "runs": 4, "draws": 50}


def assert_a_drawn_figure(fig, where):
    """Not a message card: every axes is shown, and everything plotted is finite."""
    assert fig.axes and all(ax.axison for ax in fig.axes), f"{where}: a message card, not a figure"
    for ax in fig.axes:
        for line in ax.lines:
            assert np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float))), f"{where}: {line}"


def control_values(control):
    """The site values of a control and the two ends of its notebook widget's range."""
    values = list(control.site_values)
    if control.kind == "log":
        values += [10**control.minimum, 10**control.maximum]
    elif control.kind in ("float", "int"):
        values += [control.minimum, control.maximum]
    elif control.kind in ("selection", "dropdown"):
        options = [o[1] if isinstance(o, tuple) else o for o in control.options]
        values += [options[0], options[-1]]
    return list(dict.fromkeys(values))


@pytest.mark.parametrize("figure_id", list(FIGURES))
def test_every_site_frame_is_drawn_without_warnings_on_the_default_axes(built_site, figure_id):
    """Every frame on the site, as the build drew it: a figure (not a message card), everything
    plotted finite, no warning raised, and the default frame's axes (``frame_facts``, which the
    build records in each figure's manifest while it draws the frames)."""
    _, html = built_site
    figure = FIGURES[figure_id]
    manifest = html / "_static" / "live" / frame_folder_name(figure) / "manifest.json"
    facts = json.loads(manifest.read_text(encoding="utf-8")).get("frame_facts")
    assert facts is not None and len(facts) == figure.frame_count, f"{figure_id}: rebuild the site"
    reference = facts[figure.frame_index()]["axes"]
    values = dict(figure.frames())
    for index, frame in enumerate(facts):
        where = f"{figure_id} frame {index} {values[index]}"
        assert frame["shown"], f"{where}: a message card, not a figure"
        assert frame["finite"], f"{where}: a line with NaN or inf"
        assert frame["warnings"] == [], f"{where}: warned {frame['warnings']}"
        assert frame["axes"] == reference, f"{where}: the axes moved"


def test_frame_facts_tell_moved_axes_message_cards_and_infinite_lines_apart():
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_xlim(0, 1)
    before = frame_facts(fig)
    assert before["shown"] and before["finite"]
    ax.set_xlim(0, 2)
    assert frame_facts(fig)["axes"] != before["axes"]
    ax.set_xlim(0, 1)
    ax.set_yscale("log")
    assert frame_facts(fig)["axes"] != before["axes"]
    ax.set_yscale("linear")
    assert frame_facts(fig)["axes"] == before["axes"]
    ax.set_position([0.2, 0.2, 0.6, 0.6])  # a layout done again moves the axes
    assert frame_facts(fig)["axes"] != before["axes"]
    ax.plot([0, 1], [np.nan, 1])
    assert not frame_facts(fig)["finite"]
    ax.set_axis_off()
    assert not frame_facts(fig)["shown"]
    assert not frame_facts(Figure())["shown"]


def values_no_site_frame_has(figure, control):
    """The values of :func:`control_values` that no frame of the site shows: all of them for a
    control that does not move on the site, else the ends of the notebook's range off its grid."""
    values = control_values(control)
    if control in figure.live_controls:
        values = [value for value in values if value not in control.site_values]
    return values


@pytest.mark.parametrize("figure_id", list(FIGURES))
def test_the_widget_keeps_its_axes_at_every_value_no_site_frame_shows(figure_id):
    """The notebook's widget, moved one control at a time to each value of
    :func:`values_no_site_frame_has`: a figure, drawn without warnings, on the default figure's axes
    (places, scales, limits, ticks). Every combination of the site's values is checked the same way
    on the frames the site build drew, by
    ``test_every_site_frame_is_drawn_without_warnings_on_the_default_axes``."""
    figure = FIGURES[figure_id]
    function = figure.figure_function
    few = {name: value for name, value in FEW_RUNS.items() if name in inspect.signature(function).parameters}
    explorer = Explorer(function, {}, {**figure.defaults, **few})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = explorer.figure()
        explorer.draw()
        reference = axes_state(fig)
        for control in figure.controls:
            for value in values_no_site_frame_has(figure, control):
                explorer.draw(**{control.name: value})
                where = f"{figure_id}: {control.name} = {value!r}"
                assert_a_drawn_figure(fig, where)
                assert axes_state(fig) == reference, f"{where}: the axes moved"


UNSTABLE = [
    ("sgd_risk", {"lr": 0.06}, "diverges: ηh₁ = 3 ≥ 2"),
    ("momentum_risk", {"lr": 0.1}, "diverges: ηh₁ = 5 ≥ 2(1 + β) = 3.6"),
    ("momentum_risk", {"lr": 0.05}, "SGD diverges: ηh₁ = 2.5 ≥ 2"),
    ("ema_risk", {"lr": 0.045}, "SGD and its EMA diverge: ηh₁ = 2.25 ≥ 2"),
    ("preconditioned_risk", {"lr": 2.5}, "diverges: ηh₁¹⁻ᵖ = 2.5 ≥ 2"),
    ("optimiser_paths", {"optimiser": "SGD", "lr": 10**0.5}, "diverges: ηh₁ = 17.4 ≥ 2"),
]


@pytest.mark.parametrize(("figure_id", "values", "text"), UNSTABLE)
def test_an_unstable_curve_leaves_the_top_of_its_axes_where_its_condition_is_written(figure_id, values, text):
    figure = FIGURES[figure_id]
    fig = figure.figure_function(**{**figure.defaults, **values})
    (ax,) = [ax for ax in fig.axes if any(line.get_marker() == "^" for line in ax.lines)]
    assert text in [t.get_text() for t in ax.texts]
    top = ax.get_ylim()[1]
    (marker,) = [line for line in ax.lines if line.get_marker() == "^"]
    assert marker.get_ydata()[0] == top and not marker.get_clip_on()  # on the top edge
    curves = [line for line in ax.lines if len(line.get_ydata()) > 2]
    assert max(np.max(line.get_ydata()) for line in curves) > top  # something leaves
    assert_a_drawn_figure(fig, f"{figure_id} {values}")
    plt.close(fig)


@pytest.mark.parametrize(
    ("figure_id", "values", "text", "arrows"),
    [
        ("sgd_path", {"lr": 0.06}, "GD, SGD diverge: ηh₁ = 3 ≥ 2", 2),
        ("momentum_path", {"lr": 0.05, "momentum": 0.9}, "GD, SGD diverge: ηh₁ = 2.5 ≥ 2", 2),
        (
            "momentum_path",
            {"lr": 0.1, "momentum": 0.5},
            "GD, SGD, momentum diverge: ηh₁ = 5 ≥ 2(1 + β) = 3",
            3,
        ),
        ("optimiser_paths", {"optimiser": "SGD", "lr": 10**0.5}, "diverges: ηh₁ = 17.4 ≥ 2", 3),
    ],
)
def test_a_diverging_path_leaves_the_view_with_an_arrow(figure_id, values, text, arrows):
    figure = FIGURES[figure_id]
    fig = figure.figure_function(**{**figure.defaults, **values})
    ax = fig.axes[0]
    drawn = [a for a in ax.texts if isinstance(a, Annotation) and a.arrow_patch is not None]
    assert len(drawn) == arrows
    (left, right), (bottom, top) = ax.get_xlim(), ax.get_ylim()
    for arrow in drawn:  # each arrow ends on the edge of the view
        x, y = arrow.xy
        on_edge = np.isclose([x, x, y, y], [left, right, bottom, top], rtol=0, atol=1e-9)
        assert on_edge.any() and left - 1e-9 <= x <= right + 1e-9 and bottom - 1e-9 <= y <= top + 1e-9
    assert text in [t.get_text() for t in ax.texts]
    assert_a_drawn_figure(fig, f"{figure_id} {values}")
    plt.close(fig)


def test_frames_are_cached_under_a_key_of_the_declaration_and_the_library():
    library = library_digest()
    figure = FIGURES["landscape"]
    assert frame_folder_name(figure, library) == frame_folder_name(figure, library)
    changed = InteractiveFigure(figure.id, figure.function, figure.controls[:1], lesson="test")
    assert frame_folder_name(changed, library) != frame_folder_name(figure, library)
    assert frame_folder_name(figure, library + "x") != frame_folder_name(figure, library)


# ---------------------------------------------------------------- the notebook side (issue 24)


def test_explore_writes_a_note_a_fallback_for_the_controls_and_the_default_figure_in_that_order(monkeypatch):
    outputs = []
    monkeypatch.setattr(widgets, "display", lambda obj, raw=False: outputs.append((obj, raw)))
    monkeypatch.setattr(widgets.DisplayHandle, "display", lambda self, obj: outputs.append((obj, False)))
    explore("momentum_risk")
    (note, _), (controls, raw), (image, _) = outputs
    assert note.data == (
        "**Interactive figure**: change η, β or B with the controls below, and the figure is redrawn."
    )
    assert raw and set(controls) == {widgets.WIDGET_VIEW, "text/plain"}
    view = controls[widgets.WIDGET_VIEW]
    assert view["version_major"] == 2 and isinstance(view["model_id"], str) and view["model_id"]
    fallback = controls["text/plain"]
    assert fallback == (
        "Run the cells above and this one to get the controls for η, β and B; until then the figure "
        "below shows their default values."
    )
    assert "HBox" not in fallback and fallback.count(".") == 1  # one sentence, no Python repr
    assert image.data.startswith(b"\x89PNG")


def test_multiple_choices_are_checkboxes_that_keep_the_selected_tuple():
    figure = FIGURES["steps_vs_batch"]
    group = figure.widgets()["precond_powers"]
    assert isinstance(group, CheckboxGroup) and group.description == "p"
    boxes = [child for child in group.children if isinstance(child, ipywidgets.Checkbox)]
    assert [box.description for box in boxes] == ["p = 0", "p = 0.25", "p = 0.5", "p = 0.75"]
    assert [box.value for box in boxes] == [True, False, False, False] and group.value == (0.0,)
    seen = []
    group.observe(lambda change: seen.append(change["new"]), names="value")
    boxes[2].value = True  # one click adds a power: no hidden Ctrl-click
    boxes[0].value = False
    assert seen == [(0.0, 0.5), (0.5,)] and group.value == (0.5,)
    group.value = (0.25, 0.75)
    assert [box.value for box in boxes] == [False, True, False, True]


def test_the_message_card_is_one_sentence_in_the_controls_symbols_without_a_break_in_an_expression():
    controls = {"methods": CheckboxGroup(("SGD", "momentum"), ("SGD",), "methods")}
    explorer = Explorer(FIGURES["steps_vs_batch"].figure_function, controls)
    (ax,) = explorer.figure(methods=()).axes
    assert ax.texts[0].get_text() == (
        "These settings cannot be drawn: select at least one entry of methods (from SGD, momentum, EMA)."
    )
    explorer = Explorer(
        FIGURES["gradient_noise"].figure_function, {"batch_size": ipywidgets.IntSlider(description="B")}
    )
    (ax,) = explorer.figure(batch_size=0).axes
    assert (
        ax.texts[0].get_text() == "These settings cannot be drawn: B must be an integer\u00a0≥\u00a01, got 0."
    )


#: Constructor arguments of the ipywidgets 7 classes the course builds (ipywidgets 7.2–7.8,
#: the versions Colab has shipped: ``widget_float.py``, ``widget_int.py``, ``widget_selection.py``,
#: ``widget_bool.py``, ``widget_string.py``, ``widget_box.py``, ``widget_layout.py``). A trait added
#: in ipywidgets 8 (``tooltip``, ``behavior``) would fail on Colab.
IPYWIDGETS_7 = {
    "FloatLogSlider": {"value", "min", "max", "step", "base", "description", "continuous_update",
                       "orientation", "readout", "readout_format", "disabled", "layout", "style"},
    "FloatSlider": {"value", "min", "max", "step", "description", "continuous_update", "orientation",
                    "readout", "readout_format", "disabled", "layout", "style"},
    "IntSlider": {"value", "min", "max", "step", "description", "continuous_update", "orientation",
                  "readout", "readout_format", "disabled", "layout", "style"},
    "SelectionSlider": {"options", "value", "index", "label", "description", "continuous_update",
                        "orientation", "readout", "disabled", "layout", "style"},
    "Dropdown": {"options", "value", "index", "label", "description", "disabled", "layout", "style"},
    "Checkbox": {"value", "description", "indent", "disabled", "layout", "style"},
    "Label": {"value", "description", "placeholder", "layout", "style"},
    "HBox": {"children", "box_style", "layout"},
    "Layout": {"width", "height", "flex_flow", "align_items", "justify_content", "margin", "padding"},
}  # fmt: skip


def test_every_widget_explore_builds_uses_only_arguments_ipywidgets_7_accepts(monkeypatch):
    calls = []
    for name in IPYWIDGETS_7:
        cls = getattr(ipywidgets, name)
        original = cls.__init__

        def recording(self, *args, __name=name, __original=original, **kwargs):
            calls.append((__name, args, kwargs))
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", recording)
    monkeypatch.setattr(widgets, "display", lambda *objects, **kwargs: None)
    monkeypatch.setattr(Explorer, "image", lambda self, **overrides: None)
    for figure in FIGURES.values():
        explore(figure)
    kinds = {name for name, _, _ in calls}
    assert {"Checkbox", "Label", "HBox", "Layout", "FloatLogSlider", "Dropdown", "SelectionSlider"} <= kinds
    for name, args, kwargs in calls:
        assert not args, f"{name}{args}: positional arguments differ between ipywidgets 7 and 8"
        assert set(kwargs) <= IPYWIDGETS_7[name], (
            f"{name}: {set(kwargs) - IPYWIDGETS_7[name]} not in ipywidgets 7"
        )
