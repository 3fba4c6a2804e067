"""Sphinx extension: the chapters' interactive figures answer their controls on the static site.

Every interactive figure is declared once in :mod:`nqm_lib.interactive`. At build time this
extension

1. draws each declared figure's *frames* — one PNG per combination of the site values of its
   live controls, drawn by :func:`nqm_lib.widgets.frame_images` exactly as the notebook's
   widget draws them (unstable settings give the notebook's message) — in up to
   ``NQM_LIVE_WORKERS`` (default 2) processes, as 256-colour PNGs;
2. keeps them in ``_build/.live_frames/<id>-<key>/`` under the book's source folder, where
   ``key`` hashes what a frame depends on: the code of ``nqm_lib`` (docstrings and comments
   aside; for ``interactive.py``, the figure's own declaration), the
   frame format (``FRAME_FORMAT``), and the matplotlib, numpy and Pillow versions. A build in
   another output folder (the test suite's) reuses them; an unchanged figure is never drawn again;
3. copies the frames to ``_static/live/<id>-<key>/`` of the site, and on each chapter page
   replaces the output of every ``explore(...)`` cell (the note, the empty widget area and the
   default PNG) by a live block: a note, one labelled range control per live control showing
   its current value (arrow keys move it) and the frame; ``_static/live_figures.js`` (a few
   lines, no library) swaps frames when a control moves.

The page needs no Python and makes no request off the site. A cell is recognised by its
source: ``explore("<id>")`` or ``explore(<module>.<figure function>, ...)`` (the latter as long
as chapters still pass the widgets themselves), the function naming its declaration.
"""

from __future__ import annotations

import ast
import hashlib
import html
import io
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
#: How frames are drawn and encoded (see :func:`encode_png`): change it to draw every frame again.
FRAME_FORMAT = "Explorer.draw after the default; PNG, 256 colours (MAXCOVERAGE, no dither), level 9"
#: What ``_build/.live_frames/last_build.json`` records about the last build that drew frames.
LAST_BUILD_KEYS = ("frames", "seconds", "workers", "build_seconds", "site_megabytes", "frames_megabytes")
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Frames per task handed to a worker process (each worker draws the default figure first).
CHUNK = 40


def cache_root(srcdir: str | Path) -> Path:
    """Where frames are kept between builds: ``_build/.live_frames`` beside the book's sources."""
    return Path(srcdir) / "_build" / ".live_frames"


def _code_without_docstrings(path: Path) -> str:
    """A module's code, as its syntax tree without docstrings and comments (they draw nothing)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def library_digest() -> str:
    """A hash of everything a frame depends on apart from its declaration: ``nqm_lib``'s code."""
    import nqm_lib

    digest = hashlib.sha256()
    for path in sorted(Path(nqm_lib.__file__).parent.rglob("*.py")):
        if path.name != "interactive.py":  # each figure's key has its own declaration instead
            digest.update(path.name.encode() + _code_without_docstrings(path).encode())
    digest.update(FRAME_FORMAT.encode())
    for package in ("matplotlib", "numpy", "pillow"):
        digest.update(f"{package}=={metadata.version(package)}".encode())
    return digest.hexdigest()


def frame_folder_name(figure: object, library: str) -> str:
    """``<id>-<key>``: the folder of one figure's frames, in the cache and on the site."""
    key = hashlib.sha256((library + figure.fingerprint()).encode()).hexdigest()[:12]
    return f"{figure.id}-{key}"


def encode_png(rgb: object) -> bytes:
    """A frame as a 256-colour PNG (plots have few colours; a third of the RGB size)."""
    from PIL import Image

    image = Image.fromarray(rgb).quantize(256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def _draw_chunk(figure_id: str, indices: list[int], folder: str) -> tuple[tuple[int, int], float]:
    """Worker: draw frames ``indices`` of ``figure_id`` into ``folder``; return image size and seconds."""
    from nqm_lib.widgets import frame_images

    start = time.perf_counter()
    size = (0, 0)
    for index, rgb in frame_images(figure_id, indices):
        (Path(folder) / f"{index}.png").write_bytes(encode_png(rgb))
        size = (rgb.shape[1], rgb.shape[0])
    return size, time.perf_counter() - start


def render_frames(srcdir: str | Path, workers: int | None = None) -> dict[str, dict]:
    """Make sure every declared figure's frames are in the cache; return their manifests.

    A manifest (``manifest.json``, written last, so an interrupted build draws again) records
    the figure, its folder, frame count, size in bytes, image size and drawing time.
    """
    from nqm_lib.interactive import FIGURES

    workers = workers or int(os.environ.get("NQM_LIVE_WORKERS", "2"))
    root = cache_root(srcdir)
    root.mkdir(parents=True, exist_ok=True)
    library = library_digest()
    manifests, missing = {}, []
    for figure in FIGURES.values():
        folder = root / frame_folder_name(figure, library)
        manifest = folder / "manifest.json"
        if manifest.exists():
            manifests[figure.id] = json.loads(manifest.read_text(encoding="utf-8"))
        else:
            missing.append((figure, folder))
    if missing:
        start = time.perf_counter()
        logger.info(
            f"live figures: drawing {sum(f.frame_count for f, _ in missing)} frames of {len(missing)} figures"
        )
        tasks = []
        for figure, folder in missing:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            indices = list(range(figure.frame_count))
            tasks += [(figure, folder, indices[i : i + CHUNK]) for i in range(0, len(indices), CHUNK)]
        seconds = {figure.id: 0.0 for figure, _ in missing}
        sizes = {}
        # One BLAS thread per process: the workers already use the cores (the machine may be shared).
        saved = {name: os.environ.get(name) for name in BLAS_THREADS}
        os.environ.update(dict.fromkeys(BLAS_THREADS, "1"))
        try:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
            futures = [
                (figure, pool.submit(_draw_chunk, figure.id, chunk, str(folder)))
                for figure, folder, chunk in tasks
            ]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        with pool:
            for figure, future in futures:
                sizes[figure.id], chunk_seconds = future.result()
                seconds[figure.id] += chunk_seconds
        total = time.perf_counter() - start
        for figure, folder in missing:
            frames = sorted(folder.glob("*.png"))
            manifest = {
                "id": figure.id,
                "folder": folder.name,
                "frames": len(frames),
                "bytes": sum(f.stat().st_size for f in frames),
                "width": sizes[figure.id][0],
                "height": sizes[figure.id][1],
                "cpu_seconds": round(seconds[figure.id], 2),
            }
            (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            manifests[figure.id] = manifest
        logger.info(f"live figures: drawn in {total:.1f} s with {workers} processes")
        frames = sum(f.frame_count for f, _ in missing)
        drawn = {"frames": frames, "seconds": round(total, 1), "workers": workers}
        (root / "last_drawing.json").write_text(json.dumps(drawn), encoding="utf-8")
        # Frames of earlier versions of these figures are never shown again.
        current = {m["folder"] for m in manifests.values()}
        for old in root.iterdir():
            if old.is_dir() and old.name not in current and old.name.rsplit("-", 1)[0] in FIGURES:
                shutil.rmtree(old, ignore_errors=True)
    return manifests


def _builder_inited(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    app.nqm_build_start = time.perf_counter()
    app.env.nqm_live_manifests = render_frames(app.srcdir)


def _outdated(app: Sphinx, env: object, added: set, changed: set, removed: set) -> list[str]:
    """Pages with live figures are written again when any figure's frames changed."""
    folders = sorted(m["folder"] for m in getattr(env, "nqm_live_manifests", {}).values())
    if getattr(env, "nqm_live_folders", None) == folders:
        return []
    env.nqm_live_folders = folders
    return sorted(getattr(env, "nqm_live_pages", set()))


def _cell_source(cell: nodes.Element) -> str:
    for container in cell.findall(nodes.container):
        if container.get("nb_element") == "cell_code_source":
            return container.astext()
    return ""


def figure_of_source(source: str) -> object | None:
    """The declaration a code cell's ``explore(...)`` call shows, or None.

    ``explore("<id>")`` names it; ``explore(<figure function>, name=<widget>, ...)`` names its
    function, and the keyword names tell two declarations of one function apart.
    """
    from nqm_lib.interactive import FIGURES, declaration

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "explore" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return FIGURES.get(first.value)
            name = getattr(first, "attr", None) or getattr(first, "id", None)
            try:
                return declaration(name, [k.arg for k in node.keywords if k.arg != "fixed"])
            except ValueError:
                return None
    return None


def _figure_of_cell(cell: nodes.Element) -> object | None:
    return figure_of_source(_cell_source(cell))


def _outputs(cell: nodes.Element) -> nodes.Element | None:
    for container in cell.findall(nodes.container):
        if container.get("nb_element") == "cell_code_output":
            return container
    return None


def _top_child(outputs: nodes.Element, node: nodes.Node) -> nodes.Node:
    """The child of ``outputs`` that contains ``node``."""
    while node.parent is not outputs:
        node = node.parent
    return node


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def live_block(figure: object, manifest: dict, prefix: str) -> str:
    """The HTML of one live figure: note, labelled controls showing their values, frame."""
    live = figure.live_controls
    strides, stride = [], 1
    for control in reversed(live):
        strides.insert(0, stride)
        stride *= len(control.site_values)
    base = f"{prefix}_static/live/{manifest['folder']}/"
    default = figure.frame_index()
    names = _join([c.label for c in live])
    note = (
        f"<strong>Live figure.</strong> Move the controls (or focus one and use the arrow keys): the page "
        f"shows the figure drawn in advance by the same function as the notebook, for all "
        f"{figure.frame_count} combinations of the values below."
    )
    others = [c for c in figure.controls if c not in live]
    if others:
        note += (
            f" Here {names} move and {_join([f'{c.label} = {c.text(c.default)}' for c in others])} "
            f"stay fixed: {html.escape(figure.lesson)}."
        )
    note += (
        " In a running notebook (rocket button at the top: Colab or Binder) every control moves continuously."
    )
    controls = []
    for control, stride in zip(live, strides, strict=True):
        element = f"live-{figure.id}-{control.name}"
        values = [control.text(v) for v in control.site_values]
        position = control.site_values.index(control.default)
        controls.append(
            f'<span class="nqm-live-control"><label for="{element}">{html.escape(control.label)}</label>'
            f'<input type="range" id="{element}" name="{control.name}" '
            f'min="0" max="{len(values) - 1}" step="1" '
            f'value="{position}" data-stride="{stride}" data-values="{html.escape(json.dumps(values))}" '
            f'aria-valuetext="{html.escape(values[position])}">'
            f'<output for="{element}">{html.escape(values[position])}</output></span>'
        )
    alt = f"{figure.id.replace('_', ' ')} figure"
    return (
        f'<div class="nqm-live" id="live-{figure.id}" data-figure="{figure.id}" data-base="{base}" '
        f'data-frame="{default}">'
        f'<p class="nqm-live-note">{note}</p>'
        f'<div class="nqm-live-controls">{"".join(controls)}</div>'
        f'<a class="nqm-live-link" href="{base}{default}.png">'
        f'<img class="nqm-live-frame" src="{base}{default}.png" alt="{alt}" '
        f'width="{manifest["width"]}" height="{manifest["height"]}"></a></div>'
    )


def _note_live_page(app: Sphinx, doctree: nodes.document) -> None:
    """Remember (in the pickled environment) which pages show a live figure."""
    cells = (c for c in doctree.findall(nodes.container) if c.get("nb_element") == "cell_code")
    if any(_figure_of_cell(cell) is not None for cell in cells):
        app.env.nqm_live_pages = getattr(app.env, "nqm_live_pages", set()) | {app.env.docname}


def _purge(app: Sphinx, env: object, docname: str) -> None:
    getattr(env, "nqm_live_pages", set()).discard(docname)


def _replace_figures(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.format != "html":
        return
    from nqm_lib.interactive import FIGURES

    manifests = getattr(app.env, "nqm_live_manifests", None) or render_frames(app.srcdir)
    prefix = "../" * docname.count("/")
    for cell in list(doctree.findall(nodes.container)):
        if cell.get("nb_element") != "cell_code":
            continue
        figure = _figure_of_cell(cell)
        outputs = _outputs(cell)
        if figure is None or outputs is None or figure.id not in FIGURES:
            continue
        images = list(outputs.findall(nodes.image))
        if not images:
            logger.warning(f"{docname}: the cell showing {figure.id!r} has no figure", location=cell)
            continue
        anchor = _top_child(outputs, images[-1])
        remove = {anchor}
        for paragraph in outputs.findall(nodes.paragraph):
            if paragraph.astext().startswith("Interactive figure"):
                remove.add(_top_child(outputs, paragraph))
        for raw in outputs.findall(nodes.raw):
            if "widget-view" in raw.astext():
                remove.add(_top_child(outputs, raw))
        block = nodes.raw("", live_block(figure, manifests[figure.id], prefix), format="html")
        anchor.parent.replace(anchor, block)
        for node in remove - {anchor}:
            node.parent.remove(node)


def _copy_frames(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    manifests = getattr(app.env, "nqm_live_manifests", None) or render_frames(app.srcdir)
    target = Path(app.outdir) / "_static" / "live"
    wanted = {m["folder"] for m in manifests.values()}
    if target.exists():
        for old in target.iterdir():
            if old.name not in wanted:
                shutil.rmtree(old, ignore_errors=True)
    for folder in wanted:
        destination = target / folder
        if not (destination / "manifest.json").exists():
            shutil.copytree(cache_root(app.srcdir) / folder, destination, dirs_exist_ok=True)
    drawing = cache_root(app.srcdir) / "last_drawing.json"
    if drawing.exists():  # this build drew frames: record what it cost, for the status page
        site_bytes = sum(f.stat().st_size for f in Path(app.outdir).rglob("*") if f.is_file())
        last = {
            **json.loads(drawing.read_text(encoding="utf-8")),
            "build_seconds": round(time.perf_counter() - getattr(app, "nqm_build_start", 0.0), 1),
            "site_megabytes": round(site_bytes / 1e6, 1),
            "frames_megabytes": round(sum(m["bytes"] for m in manifests.values()) / 1e6, 1),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        (cache_root(app.srcdir) / "last_build.json").write_text(json.dumps(last, indent=1), encoding="utf-8")
        drawing.unlink()


class LiveFiguresStatus(SphinxDirective):
    """The ``{live-figures}`` directive: a table of every live figure's frames and their cost."""

    def run(self) -> list[nodes.Node]:
        """One row per declared figure: live controls, frames, size, drawing time; then totals."""
        from nqm_lib.interactive import FIGURES

        manifests = getattr(self.env, "nqm_live_manifests", None) or render_frames(self.env.srcdir)
        root = cache_root(self.env.srcdir)
        header = ("figure", "live on the site", "fixed on the site", "frames", "size (MB)", "drawing (CPU s)")
        rows = []
        for figure in FIGURES.values():
            manifest = manifests[figure.id]
            self.env.note_dependency(str(root / manifest["folder"] / "manifest.json"))
            live = figure.live_controls
            fixed = [c for c in figure.controls if c not in live]
            rows.append(
                (
                    f"{figure.id} ({figure.function.split(':')[1]})",
                    ", ".join(f"{c.label} ({len(c.site_values)})" for c in live),
                    ", ".join(f"{c.label} = {c.text(c.default)}" for c in fixed) or "—",
                    str(manifest["frames"]),
                    f"{manifest['bytes'] / 1e6:.2f}",
                    f"{manifest['cpu_seconds']:.0f}",
                )
            )
        rows.append(
            (
                "all",
                "",
                "",
                str(sum(m["frames"] for m in manifests.values())),
                f"{sum(m['bytes'] for m in manifests.values()) / 1e6:.1f}",
                f"{sum(m['cpu_seconds'] for m in manifests.values()):.0f}",
            )
        )
        table = nodes.table()
        group = nodes.tgroup(cols=len(header))
        table += group
        group.extend(nodes.colspec(colwidth=1) for _ in header)
        head, body = nodes.thead(), nodes.tbody()
        for cells, part in [(header, head)] + [(row, body) for row in rows]:
            row = nodes.row()
            for text in cells:
                entry = nodes.entry()
                entry += nodes.paragraph("", text)
                row += entry
            part += row
        group += head
        group += body
        result = [table]
        last = root / "last_build.json"
        info = json.loads(last.read_text(encoding="utf-8")) if last.exists() else {}
        if set(LAST_BUILD_KEYS) <= set(info):
            result.append(
                nodes.paragraph(
                    "",
                    f"The last build that drew frames ({info['date']}, on the build machine) drew "
                    f"{info['frames']} frames in {info['seconds']:.0f} s with {info['workers']} processes, "
                    f"and took {info['build_seconds']:.0f} s from the start of Sphinx's build to its end "
                    f"(a build with nothing to draw or re-read takes a few seconds). The site it made "
                    f"was {info['site_megabytes']:.0f} MB, of which {info['frames_megabytes']:.0f} MB "
                    f"are live-figure frames.",
                )
            )
        return result


def setup(app: Sphinx) -> dict[str, object]:
    """Register the hooks, the page script and its style sheet with Sphinx."""
    app.add_directive("live-figures", LiveFiguresStatus)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-get-outdated", _outdated)
    app.connect("doctree-read", _note_live_page)
    app.connect("env-purge-doc", _purge)
    app.connect("doctree-resolved", _replace_figures)
    app.connect("build-finished", _copy_frames)
    app.connect("config-inited", lambda app, config: config.html_static_path.append(str(STATIC)))
    app.add_js_file("live_figures.js", defer="defer")
    app.add_css_file("live_figures.css")
    return {"parallel_read_safe": False, "parallel_write_safe": True}
