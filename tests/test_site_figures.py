"""The site's figures, checked in Python (the browser checks are in ``test_site_browser.py``).

* No frame the site shows is the notebook's message card: every frame of every declaration,
  drawn by ``frame_images`` on the site's path (``book_ext/live_figures.render_frames``, cached
  in ``_build/.live_frames``), is a plot.
* The 2× frames are the notebook's figure at twice the resolution, and the 1× frames their
  2 × 2 mean, within a stated tolerance of the notebook's own 1× drawing.
* A figure's frames are keyed only on the library modules its figure function (and the
  widgets) import, and on the data files these name.
* Each live note is one sentence naming every live control and every fixed one with its value;
  every text of the live figures says "optimiser".
* A notebook figure cell becomes one named figure; a 2× notebook image gives a 1× and a 2× file;
  in a Jupyter kernel the course style saves figures at twice their display size.
"""

import base64
import io
import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from book_ext.figure_links import drop_unreferenced_images, retina_files
from book_ext.live_figures import (
    frame_folder_name,
    library_digest,
    live_note,
    module_dependencies,
    render_frames,
    settings_text,
)
from book_ext.notebook_figures import NAME_KEY, move_figure_names
from book_ext.small_png import half_size
from nqm_lib.interactive import FIGURES, Control, InteractiveFigure
from nqm_lib.widgets import Explorer, frame_images

ROOT = Path(__file__).resolve().parent.parent


def test_no_site_frame_is_a_message_card(built_site):
    """Every frame on the site is a plot: unstable settings are drawn, not refused.

    It runs with the site's tests (``built_site``), after the site build has drawn the frames.
    """
    manifests = render_frames(ROOT)  # the site's frames (drawn here only if the site came from elsewhere)
    cards = []
    for figure_id, manifest in manifests.items():
        figure = FIGURES[figure_id]
        frames = dict(figure.frames())
        for index, message in manifest["refused"].items():
            settings = settings_text(figure, frames[int(index)])
            cards.append(f"{figure_id} frame {index} ({settings}): {message}")
    assert not cards, f"{len(cards)} site frames are a message instead of a plot:\n" + "\n".join(cards[:40])


def test_every_live_figure_has_all_its_frames_on_the_site(built_site):
    """Each declared figure's folder on the site holds a 2× and a 1× frame for every setting of
    its grid, and its manifest counts them all: a drawing cut short, or two processes drawing
    into one folder at once, left a manifest of 61 frames for a figure of 252."""
    result, html = built_site
    assert result.returncode == 0, "the site did not build: see test_book.py"
    for figure in FIGURES.values():
        folder = html / "_static" / "live" / frame_folder_name(figure)
        names = {path.name for path in folder.glob("*.png")}
        wanted = {f"{index}{suffix}.png" for index in range(figure.frame_count) for suffix in ("", "@2x")}
        missing = sorted(wanted - names, key=lambda name: int(name.split(".")[0].removesuffix("@2x")))
        assert not missing, f"{figure.id}: {len(missing)} of {len(wanted)} frames missing, e.g. {missing[:3]}"
        assert names == wanted, f"{figure.id}: frame files outside its grid: {sorted(names - wanted)[:3]}"
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["frames"] == figure.frame_count == len(manifest["frame_facts"]), figure.id


class _Declared(InteractiveFigure):
    """A declaration whose figure function is given directly (for tests)."""

    @property
    def figure_function(self):
        return self.fixed["function"]


def _refusing_figure(width: float, function=None):
    from nqm_lib.plotting import new_figure

    if width > 2:
        raise ValueError(f"width = {width}: too wide")
    fig, (ax,) = new_figure(width=width * 2, height=1.5)
    ax.plot([0, 1], [0, width])
    return fig


def test_frame_images_records_the_settings_it_draws_as_a_message():
    figure = _Declared(
        "refusing",
        "tests:none",
        (Control("width", "w", 1.0, "float", (1.0, 2.0, 3.0)),),
        fixed={"function": _refusing_figure},
    )
    refused = {}
    indices = [index for index, _ in frame_images(figure, refusals=refused)]
    assert indices == [0, 1, 2]
    assert refused == {2: "width = 3.0: too wide"}
    with pytest.raises(ValueError, match="scale = 1.5"):
        next(frame_images(figure, scale=1.5))


def test_2x_frames_are_the_notebook_figure_at_twice_the_resolution_and_1x_their_mean():
    figure = FIGURES["sgd_risk"]
    index = figure.frame_index()
    ((_, image),) = frame_images(figure, [index], scale=2)
    large = np.asarray(image)
    explorer = Explorer(figure.figure_function, {}, figure.defaults)
    native = np.asarray(explorer.draw().buffer_rgba())[:, :, :3].astype(int)
    assert large.shape == (2 * native.shape[0], 2 * native.shape[1], 3)
    small = half_size(large).astype(int)
    assert small.shape == native.shape
    # Stated tolerance: the mean of the 2× drawing differs from the 1× drawing by antialiasing
    # only — mean |Δ| below 4 of 255 levels, and 95% of the pixels within 32 levels.
    difference = np.abs(small - native)
    assert difference.mean() < 4, difference.mean()
    assert np.mean(difference.max(axis=2) <= 32) > 0.95


def _library(folder: Path) -> Path:
    """A small stand-in library ``nqm_lib`` in ``folder``, to follow its imports."""
    root = folder / "nqm_lib"
    (root / "sub").mkdir(parents=True)
    (root / "data").mkdir()
    files = {
        "__init__.py": "from .unrelated import x\n",
        "widgets.py": "from .plotting import style\n",
        "plotting.py": "style = 1\n",
        "figures_a.py": "from .plotting import style\nfrom .sub import helper\n\n"
        "def figure():\n    from nqm_lib.theory import f\n    return f\n",
        "theory.py": "def f():\n    return 1\n",
        "sub/__init__.py": "from . import helper\n",
        "sub/helper.py": "from ..reader import load\n",
        "reader.py": "NAME = 'table.json'\n\ndef load():\n    return NAME\n",
        "unrelated.py": "x = 1\n",
        "interactive.py": "DECLARATIONS = ()\n",
        "data/table.json": "[1, 2]\n",
        "data/other.json": "[3]\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_frames_are_keyed_only_on_the_modules_their_figure_imports(tmp_path):
    root = _library(tmp_path)
    found = {p.relative_to(root).as_posix() for p in module_dependencies(["nqm_lib.figures_a"], root)}
    assert found == {
        "__init__.py",
        "figures_a.py",
        "plotting.py",
        "theory.py",
        "sub/__init__.py",
        "sub/helper.py",
        "reader.py",
    }
    figure = InteractiveFigure("a", "nqm_lib.figures_a:figure", (Control("x", "x", 1, "int", (1, 2)),))
    before = library_digest(figure, root)
    (root / "unrelated.py").write_text("x = 2\n", encoding="utf-8")
    (root / "data" / "other.json").write_text("[4]\n", encoding="utf-8")
    (root / "plotting.py").write_text('"""A docstring draws nothing."""\nstyle = 1  # nor a comment\n')
    assert library_digest(figure, root) == before, "a change that draws nothing redrew the frames"
    for name, text in [
        ("theory.py", "def f():\n    return 2\n"),
        ("data/table.json", "[1, 3]\n"),
        ("widgets.py", "from .plotting import style\nSCALE = 2\n"),
    ]:
        (root / name).write_text(text, encoding="utf-8")
        after = library_digest(figure, root)
        assert after != before, f"a change to {name} did not redraw the frames"
        before = after


@pytest.mark.parametrize("package", ["matplotlib", "numpy", "pillow", "zlib-ng"])
def test_frames_are_drawn_again_under_another_version_of_a_package_that_draws_or_encodes_them(
    tmp_path, monkeypatch, package
):
    import book_ext.live_figures as live_figures

    root = _library(tmp_path)
    figure = InteractiveFigure("a", "nqm_lib.figures_a:figure", (Control("x", "x", 1, "int", (1, 2)),))
    before = library_digest(figure, root)
    real_version = live_figures.metadata.version
    monkeypatch.setattr(
        live_figures.metadata,
        "version",
        lambda name: "0.0.1" if name == package else real_version(name),
    )
    assert library_digest(figure, root) != before, f"another {package} would keep the old frames"


def test_each_site_figure_is_keyed_on_its_own_modules_only():
    names = {
        f.id: {p.name for p in module_dependencies([f.function.split(":")[0], "nqm_lib.widgets"])}
        for f in FIGURES.values()
    }
    assert {"widgets.py", "plotting.py"} <= names["sgd_risk"]
    assert "figures_adaptive.py" not in names["sgd_risk"] and "figures_network.py" not in names["landscape"]


@pytest.mark.parametrize("figure_id", list(FIGURES))
def test_each_live_note_is_one_sentence_naming_live_and_fixed_controls(figure_id):
    figure = FIGURES[figure_id]
    note = live_note(figure)
    assert note.startswith("Live figure: ") and note.endswith(".")
    assert ". " not in note and len(note.split()) <= 60, note
    for control in figure.controls:
        if control in figure.live_controls:
            assert control.label in note, f"{figure_id}: live {control.label} not named"
        else:
            fixed = f"{control.label} = {control.text(control.default)}"
            assert fixed in note, f"{figure_id}: fixed {fixed} not named"


def test_the_live_figures_say_optimiser():
    texts = [live_note(f) for f in FIGURES.values()]
    texts += [c.label for f in FIGURES.values() for c in f.controls]
    texts += [c.text(v) for f in FIGURES.values() for c in f.controls for v in c.site_values]
    assert not [t for t in texts if "optimiz" in t.lower()], "the course writes 'optimiser'"


def test_a_figure_cell_keeps_its_name_away_from_myst_nb():
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": "fig-a", "caption": "c"}}}},
            {"cell_type": "code", "metadata": {"mystnb": {"figure": {"caption": "d"}}}},
            {"cell_type": "markdown", "metadata": {}},
        ]
    }
    moved = json.loads(move_figure_names(json.dumps(notebook)))
    assert moved["cells"][0]["metadata"] == {"mystnb": {"figure": {"caption": "c"}}, NAME_KEY: "fig-a"}
    assert moved["cells"][1]["metadata"][NAME_KEY] == ""
    assert move_figure_names("not json") == "not json"
    assert move_figure_names('{"cells": []}') == '{"cells": []}'


def _png(dpi: int) -> bytes:
    from nqm_lib.plotting import new_figure

    fig, (ax,) = new_figure(width=3.0, height=2.0)
    ax.plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def test_a_2x_notebook_image_gives_a_1x_and_a_2x_file(tmp_path):
    source = tmp_path / "figure.png"
    source.write_bytes(_png(200))
    small, large = retina_files(source, (300, 200), tmp_path / "cache")
    assert Image.open(small).size == (300, 200) and Image.open(large).size == (600, 400)
    shown = np.asarray(Image.open(small).convert("RGB")).astype(int)
    # The 1× file is the 2 × 2 mean of the 2× image up to its 256 colours (mean |Δ| < 1 of 255
    # levels), and so close to the figure drawn at 1× (mean |Δ| < 8: antialiasing differs).
    mean = np.asarray(Image.open(source).convert("RGB").reduce(2)).astype(int)
    assert np.abs(shown - mean).mean() < 1
    assert np.abs(shown - np.asarray(Image.open(io.BytesIO(_png(100))).convert("RGB")).astype(int)).mean() < 8
    assert retina_files(source, (600, 400), tmp_path / "cache") is None  # already at its display size
    shutil.rmtree(tmp_path / "cache")


def test_in_a_kernel_the_course_style_saves_figures_at_twice_their_display_size():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from nqm_lib.plotting import new_figure\nfig, (ax,) = new_figure(height=3.0)\nax.plot([0, 1]);"
        ),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"),
    ]
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    shown = [o for cell in notebook.cells for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(shown) == 2
    for output in shown:
        size = Image.open(io.BytesIO(base64.b64decode(output.data["image/png"]))).size
        display = output.metadata["image/png"]
        assert abs(size[0] - 2 * display["width"]) <= 1 and abs(size[1] - 2 * display["height"]) <= 1


def test_an_image_no_page_refers_to_is_dropped_from_the_site(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "chapters").mkdir()
    for name in ("kept.1x.png", "kept.2x.png", "linked.png", "stale.png"):
        (tmp_path / "_images" / name).write_bytes(b"png")
    (tmp_path / "chapters" / "a.html").write_text(
        '<a href="../_images/kept.2x.png"><img src="../_images/kept.1x.png" '
        'srcset="../_images/kept.2x.png 2x"></a>'
    )
    (tmp_path / "index.html").write_text("<a href='_images/linked.png'>figure</a>")
    assert drop_unreferenced_images(tmp_path) == ["stale.png"]
    left = sorted(p.name for p in (tmp_path / "_images").iterdir())
    assert left == ["kept.1x.png", "kept.2x.png", "linked.png"]
