"""The interactive figures' declarations (nqm_lib.interactive) and the site's frames.

* Every ``explore(...)`` call of a chapter uses a declaration, or passes exactly the controls
  its declaration would make (same widget type, label, default, range, step and options).
* A frame the site shows for a setting is what the notebook shows after moving its controls
  to that setting: drawn again by a fresh :class:`~nqm_lib.widgets.Explorer`, pixel for pixel
  before the 256-colour encoding, and within a stated tolerance after it.
* The frame index the page computes (strides) matches the order the frames are drawn in.
"""

import ast
import io
from pathlib import Path

import ipywidgets
import nbformat
import numpy as np
import pytest
from PIL import Image

from book_ext.live_figures import encode_png, figure_of_source, frame_folder_name, half_size, library_digest
from nqm_lib import widgets
from nqm_lib.interactive import FIGURES, Control, InteractiveFigure, declaration, site_grid
from nqm_lib.widgets import Explorer, explore, frame_images

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
    # Chapter 9 passes the sweep's results, which its figure function otherwise loads itself.
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
# is an unstable setting: η = 0.06 > 2/h₁, so the frame is the notebook's message).
SAMPLES = {"sgd_risk": None, "minibatch_noise": None, "landscape": None}


@pytest.mark.parametrize("figure_id", list(SAMPLES))
def test_site_frames_are_what_the_notebook_draws_for_that_setting(figure_id):
    figure = FIGURES[figure_id]
    frames = dict(figure.frames())
    picks = sorted({0, figure.frame_index(), figure.frame_count - 1})
    for index, rgb in frame_images(figure, picks):
        fresh = _fresh_render(figure, frames[index])
        assert np.array_equal(rgb, fresh), f"{figure_id} frame {index} differs from a fresh render"
        # The site stores 256-colour PNGs: stated tolerance, mean |Δ| < 1 level and 99% of the
        # pixels within 16 levels (of 255) in every channel.
        stored = np.asarray(Image.open(io.BytesIO(encode_png(rgb))).convert("RGB")).astype(int)
        difference = np.abs(stored - fresh.astype(int))
        assert difference.mean() < 1.0, f"{figure_id} frame {index}: mean difference {difference.mean():.2f}"
        assert np.mean(difference.max(axis=2) <= 16) > 0.99, f"{figure_id} frame {index}"


def test_an_unstable_setting_gives_the_notebooks_message_frame():
    figure = FIGURES["sgd_risk"]
    index = figure.frame_index(lr=0.06, batch_size=1)
    (_, rgb), = frame_images(figure, [index])
    explorer = Explorer(figure.figure_function, {}, figure.defaults)
    explorer.draw()
    message = explorer.figure(lr=0.06, batch_size=1)
    assert len(message.axes) == 1 and "Cannot draw these settings" in message.axes[0].texts[0].get_text()
    assert np.array_equal(rgb, _fresh_render(figure, {**figure.defaults, "lr": 0.06}))


def test_frames_are_cached_under_a_key_of_the_declaration_and_the_library():
    library = library_digest()
    figure = FIGURES["landscape"]
    assert frame_folder_name(figure, library) == frame_folder_name(figure, library)
    changed = InteractiveFigure(figure.id, figure.function, figure.controls[:1], lesson="test")
    assert frame_folder_name(changed, library) != frame_folder_name(figure, library)
    assert frame_folder_name(figure, library + "x") != frame_folder_name(figure, library)


def test_built_site_frames_equal_a_fresh_render(built_site):
    """The site's 2× frame is a fresh render at twice the resolution; its 1× frame, their 2 × 2 mean."""
    result, html = built_site
    assert result.returncode == 0, "the site did not build: see test_book.py"
    for figure_id in SAMPLES:
        figure = FIGURES[figure_id]
        folder = html / "_static" / "live" / frame_folder_name(figure)
        assert len(list(folder.glob("*@2x.png"))) == figure.frame_count, figure_id
        assert len(list(folder.glob("*.png"))) == 2 * figure.frame_count, figure_id
        frames = dict(figure.frames())
        for index in sorted({0, figure.frame_index(), figure.frame_count - 1}):
            fresh = _fresh_render(figure, frames[index], scale=2)
            for name, expected in ((f"{index}@2x.png", encode_png(fresh, fast=True)),
                                   (f"{index}.png", encode_png(half_size(fresh)))):
                shown = np.asarray(Image.open(folder / name).convert("RGB"))
                expected = np.asarray(Image.open(io.BytesIO(expected)).convert("RGB"))
                assert np.array_equal(shown, expected), f"{figure_id}: site frame {name} is no fresh render"
