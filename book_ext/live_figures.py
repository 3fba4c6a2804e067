"""Sphinx extension: the chapters' interactive figures answer their controls on the static site.

Every interactive figure is declared once in :mod:`nqm_lib.interactive`. At build time this
extension

1. draws each declared figure's *frames* — one per combination of the site values of its live
   controls, drawn by :func:`nqm_lib.widgets.frame_images` exactly as the notebook's widget
   draws them — at twice the figure's resolution, in up to ``NQM_LIVE_WORKERS`` (default 2)
   processes. Each frame is stored twice: ``<index>@2x.png`` (for screens with two device
   pixels per CSS pixel) and ``<index>.png``, its 2 × 2 average (what other screens load);
   both are 256-colour PNGs (``small_png.py``). A frame the figure function refuses (the notebook's message
   instead of a plot) is recorded in the figure's manifest;
2. keeps them in ``_build/.live_frames/<id>-<key>/`` under the book's source folder, where
   ``key`` hashes what the frames depend on: the code of the ``nqm_lib`` modules the figure
   function and the widgets import (transitively; docstrings and comments aside) and the data
   files they name, the figure's own declaration, the frame format (``FRAME_FORMAT``) and the
   matplotlib, numpy, Pillow and zlib-ng versions. A change to an unrelated module draws nothing again,
   and a build in another output folder (the test suite's) reuses the frames;
3. copies the frames to ``_static/live/<id>-<key>/`` of the site, and on each chapter page
   replaces the outputs of every ``explore(...)`` cell (the note, the empty widget area and the
   default PNG) by a live block inside the cell's numbered figure (``notebook_figures.py``): a
   one-sentence note saying which controls are live and which are fixed, one control per live
   control — a range input showing its value for a number or an ordered choice, radio buttons
   for a choice among unordered options, check boxes for a set of options or an on/off switch —
   and the frame (``srcset`` with its 2× image; its ``alt`` text names the current settings).
   For print, the block shows the default frame and the caption says "(interactive online)".
   ``_static/live_figures.js`` (a few lines, no library) swaps frames when a control moves.

The page needs no Python and makes no request off the site. A cell is recognised by its
source: ``explore("<id>")`` or ``explore(<module>.<figure function>, ...)`` (the latter as long
as chapters still pass the widgets themselves), the function naming its declaration.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import hashlib
import html
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

if __package__:  # imported as book_ext.live_figures (the tests)
    from .small_png import COMPRESS_LEVEL, encode_png, half_size
else:  # imported by Sphinx, which puts book_ext/ itself on sys.path
    from small_png import COMPRESS_LEVEL, encode_png, half_size

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
#: How frames are drawn and encoded (see :func:`encode_png`): change it to draw every frame again.
FRAME_FORMAT = (
    "frame_images(scale=2); 1x = 2x2 mean; small_png.encode_png: octree with exact background, "
    f"zlib-ng level {COMPRESS_LEVEL}; manifest with refused frames and each frame's axes (with their places) "
    "and warnings"
)
#: Resolution of the frames drawn, in device pixels per CSS pixel (the 1× frame is their mean).
SCALE = 2
#: What ``_build/.live_frames/last_build.json`` records about the last build that drew frames.
LAST_BUILD_KEYS = ("frames", "seconds", "workers", "build_seconds", "site_megabytes", "frames_megabytes")
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: The library's modules that draw every frame whatever the figure: the widgets' Explorer.
DRAWING_MODULES = ("nqm_lib.widgets",)


def cache_root(srcdir: str | Path) -> Path:
    """Where frames are kept between builds: ``_build/.live_frames`` beside the book's sources."""
    return Path(srcdir) / "_build" / ".live_frames"


def _code_without_docstrings(path: Path) -> str:
    """A module's code, as its syntax tree without docstrings and comments (they draw nothing)."""
    return _parsed_code(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=256)
def _parsed_code(source: str) -> str:
    """:func:`_code_without_docstrings` of a module's source text (kept: every figure asks again)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of ``nqm_lib`` module ``name`` (a module or a package), or None."""
    parts = name.split(".")
    if parts[0] != root.name:
        return None
    base = root.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, name: str) -> set[str]:
    """Names of the modules a module's code imports (anywhere in it, relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return _imports(path.read_text(encoding="utf-8"), package)


@functools.lru_cache(maxsize=256)
def _imports(source: str, package: str) -> frozenset[str]:
    """:func:`_imported_modules` of a module's source text, in ``package``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # ``from . import x``
    return frozenset(found)


def _library_root() -> Path:
    import nqm_lib

    return Path(nqm_lib.__file__).parent


def module_dependencies(modules: list[str] | tuple[str, ...], root: Path | None = None) -> list[Path]:
    """The library's source files that ``modules`` import, directly or not (and their own).

    Imports are read from the code (not run), including those inside functions; the packages a
    module sits in count too (their ``__init__`` runs first), but not what a package's
    ``__init__`` imports for its readers. ``root`` is the library's folder (``nqm_lib``'s).
    """
    root = root or _library_root()
    seen: dict[Path, None] = {}
    queue = list(modules)
    while queue:
        name = queue.pop()
        path = _module_file(name, root)
        if path is None or path in seen:
            continue
        seen[path] = None
        parts = name.split(".")
        packages = [_module_file(".".join(parts[:k]), root) for k in range(1, len(parts))]
        seen.update(dict.fromkeys(p for p in packages if p is not None))
        queue.extend(_imported_modules(path, name))
    return sorted(seen)


def library_digest(figure: object | None = None, root: Path | None = None) -> str:
    """A hash of everything a figure's frames depend on apart from its declaration.

    That is the code of the ``nqm_lib`` modules its figure function and the widgets import
    (:func:`module_dependencies`; all of ``nqm_lib`` without a ``figure``), the data files of
    ``nqm_lib`` these modules name, the frame format and the drawing packages' versions.
    ``interactive.py``, where the declarations live, is left out: each figure's key has its own
    declaration instead. ``root`` is the library's folder (``nqm_lib``'s).
    """
    root = root or _library_root()
    if figure is None:
        paths = sorted(root.rglob("*.py"))
    else:
        paths = module_dependencies([figure.function.split(":")[0], *DRAWING_MODULES], root)
    data_files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))
    digest = hashlib.sha256()
    for path in paths:
        if path.name != "interactive.py":
            name = path.relative_to(root).as_posix()
            digest.update(name.encode() + _code_without_docstrings(path).encode())
            source = path.read_text(encoding="utf-8")
            for data in data_files:
                if data.name in source:
                    digest.update(data.name.encode() + hashlib.sha256(data.read_bytes()).digest())
    digest.update(FRAME_FORMAT.encode())
    for package in ("matplotlib", "numpy", "pillow", "zlib-ng"):
        digest.update(f"{package}=={metadata.version(package)}".encode())
    return digest.hexdigest()


def frame_folder_name(figure: object, library: str | None = None) -> str:
    """``<id>-<key>``: the folder of one figure's frames, in the cache and on the site.

    ``library`` is the figure's :func:`library_digest` (computed when not given).
    """
    library = library_digest(figure) if library is None else library
    key = hashlib.sha256((library + figure.fingerprint()).encode()).hexdigest()[:12]
    return f"{figure.id}-{key}"


def axes_state(fig: object) -> list[tuple]:
    """What must not move when a control moves: every axes' place, scales, limits and major ticks."""
    return [
        (
            tuple(ax.get_position().bounds),
            ax.get_xscale(),
            ax.get_yscale(),
            tuple(ax.get_xlim()),
            tuple(ax.get_ylim()),
            tuple(ax.xaxis.get_majorticklocs()),
            tuple(ax.yaxis.get_majorticklocs()),
        )
        for ax in fig.axes
    ]


def frame_facts(fig: object) -> dict:
    """What the manifest records of one drawn frame, for the tests to check (``test_interactive``).

    ``axes``: a digest of :func:`axes_state`; ``shown``: whether it has axes and all are shown
    (a message card's are not); ``finite``: whether every plotted line is finite.
    """
    state = repr(axes_state(fig)).encode()
    lines = [line for ax in fig.axes for line in ax.lines]
    finite = all(np.all(np.isfinite(np.asarray(line.get_xydata(), dtype=float))) for line in lines)
    return {
        "axes": hashlib.sha256(state).hexdigest()[:12],
        "shown": bool(fig.axes) and all(ax.axison for ax in fig.axes),
        "finite": bool(finite),
    }


def _draw_frames(figure_id: str, folder: str) -> tuple[tuple[int, int], float, dict, dict]:
    """Worker: draw every frame of ``figure_id`` into ``folder``.

    Returns the 1× image size, the seconds taken, the refused frames (index → message) and
    each frame's :func:`frame_facts` with the warnings its drawing raised (index → facts).
    """
    import warnings

    from nqm_lib.widgets import frame_images

    start = time.perf_counter()
    size, refused, facts = (0, 0), {}, {}

    def record(index: int, fig: object) -> None:
        facts[index] = frame_facts(fig)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index, image in frame_images(figure_id, scale=SCALE, refusals=refused, on_frame=record):
            facts[index]["warnings"] = sorted({str(w.message) for w in caught})  # since the last frame
            caught.clear()
            (Path(folder) / f"{index}@2x.png").write_bytes(encode_png(image))
            small = half_size(image)
            (Path(folder) / f"{index}.png").write_bytes(encode_png(small))
            size = small.size
    return size, time.perf_counter() - start, refused, facts


def render_frames(srcdir: str | Path, workers: int | None = None) -> dict[str, dict]:
    """Make sure every declared figure's frames are in the cache; return their manifests.

    A manifest (``manifest.json``, written last, so an interrupted build draws again) records
    the figure, its folder, frame count, sizes in bytes (1× and 2×), image size (1×, in CSS
    pixels), drawing time, the frames drawn as a message instead of a plot (``refused``) and,
    frame by frame, its :func:`frame_facts` and the warnings its drawing raised (``frame_facts``).

    Processes that ask at once (the test suite's site build and a test that reads the
    manifests, or ``make book`` beside ``make test``) take turns under a lock on the cache: the
    later one waits and finds the frames drawn, instead of drawing them a second time.
    """
    workers = workers or int(os.environ.get("NQM_LIVE_WORKERS", "2"))
    root = cache_root(srcdir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "drawing.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        return _render_missing_frames(root, workers)


def _render_missing_frames(root: Path, workers: int) -> dict[str, dict]:
    """:func:`render_frames` in the cache folder ``root``, under its lock."""
    from nqm_lib.interactive import FIGURES

    manifests, missing = {}, []
    for figure in FIGURES.values():
        folder = root / frame_folder_name(figure)
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
        # One task per figure, the most frames first so that the workers finish together: a task
        # first draws the default figure and lays it out (about 0.4 s), which 40-frame tasks
        # repeated 52 times instead of 14.
        tasks = []
        for figure, folder in sorted(missing, key=lambda pair: -pair[0].frame_count):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            tasks.append((figure, folder))
        sizes, seconds, refused, facts = {}, {}, {}, {}
        # One BLAS thread per process: the workers already use the cores (the machine may be shared).
        saved = {name: os.environ.get(name) for name in BLAS_THREADS}
        os.environ.update(dict.fromkeys(BLAS_THREADS, "1"))
        try:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
            futures = [
                (figure, pool.submit(_draw_frames, figure.id, str(folder))) for figure, folder in tasks
            ]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        with pool:
            for figure, future in futures:
                sizes[figure.id], seconds[figure.id], refused[figure.id], facts[figure.id] = future.result()
        total = time.perf_counter() - start
        for figure, folder in missing:
            frames = sorted(folder.glob("*@2x.png"))
            manifest = {
                "id": figure.id,
                "folder": folder.name,
                "frames": len(frames),
                "bytes": sum(f.with_name(f.name.replace("@2x", "")).stat().st_size for f in frames),
                "bytes_2x": sum(f.stat().st_size for f in frames),
                "width": sizes[figure.id][0],
                "height": sizes[figure.id][1],
                "cpu_seconds": round(seconds[figure.id], 2),
                "refused": {str(i): refused[figure.id][i] for i in sorted(refused[figure.id])},
                "frame_facts": [facts[figure.id][i] for i in range(figure.frame_count)],
            }
            (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            manifests[figure.id] = manifest
            if manifest["refused"]:
                logger.info(f"live figures: {figure.id}: {len(manifest['refused'])} frames are a message")
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


def _static_files_changed(app: Sphinx) -> bool:
    """Whether a file of ``book_ext/static`` differs from its copy in the site: Sphinx copies the
    static files only in a build that writes a page, so an edited script alone was never copied."""
    site = Path(app.outdir) / "_static"
    return any(
        not (site / path.name).exists() or (site / path.name).read_bytes() != path.read_bytes()
        for path in STATIC.iterdir()
        if path.is_file()
    )


def _outdated(app: Sphinx, env: object, added: set, changed: set, removed: set) -> list[str]:
    """Pages with live figures are written again when any figure's frames or a static file changed."""
    folders = sorted(m["folder"] for m in getattr(env, "nqm_live_manifests", {}).values())
    stale = getattr(env, "nqm_live_folders", None) != folders or _static_files_changed(app)
    env.nqm_live_folders = folders
    return sorted(getattr(env, "nqm_live_pages", set())) if stale else []


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


def live_note(figure: object) -> str:
    """The live block's note: one sentence, which controls are live and which fixed, at which values."""
    live = [c.label for c in figure.live_controls]
    fixed = [f"{c.label} = {c.text(c.default)}" for c in figure.controls if c not in figure.live_controls]
    verb = "is" if len(live) == 1 else "are"
    if not fixed:
        return (
            f"Live figure: {_join(live)} {verb} live here, over every combination of the values drawn "
            f"in advance; no control is fixed."
        )
    stay = "stays" if len(fixed) == 1 else "stay"
    return (
        f"Live figure: {_join(live)} {verb} live here and {_join(fixed)} {stay} fixed (a running "
        f"notebook moves {'it' if len(fixed) == 1 else 'them'} too): {figure.lesson}."
    )


def _control_html(figure: object, control: object, stride: int) -> str:
    """One live control: a range input, radio buttons, check boxes or a switch (see the module doc)."""
    element = f"live-{figure.id}-{control.name}"
    values = control.site_values
    position = values.index(control.default)
    texts = [control.text(v) for v in values]
    label = html.escape(control.label)
    data = (
        f'data-name="{control.name}" data-label="{label}" data-stride="{stride}" '
        f'data-texts="{html.escape(json.dumps(texts, ensure_ascii=False))}"'
    )
    if control.kind == "checkbox":
        return (
            f'<span class="nqm-live-control nqm-live-switch" data-kind="switch" {data} '
            f'data-on="{values.index(True)}" data-off="{values.index(False)}">'
            f'<label><input type="checkbox" id="{element}" name="{control.name}"'
            f"{' checked' if control.default else ''}> {label}</label></span>"
        )
    if control.kind in ("dropdown", "multiple"):
        names = [o[0] if isinstance(o, tuple) else str(o) for o in control.options]
        options = [o[1] if isinstance(o, tuple) else o for o in control.options]
        if control.kind == "dropdown":
            kind, extra = "choice", ""
            inputs = [
                f'<label><input type="radio" name="{element}" value="{k}"'
                f"{' checked' if k == position else ''}> {html.escape(names[options.index(value)])}</label>"
                for k, value in enumerate(values)
            ]
        else:
            kind = "set"
            subsets = [[options.index(v) for v in subset] for subset in values]
            extra = f' data-subsets="{json.dumps(subsets)}"'
            inputs = [
                f'<label><input type="checkbox" name="{element}" value="{k}"'
                f"{' checked' if k in subsets[position] else ''}> {html.escape(name)}</label>"
                for k, name in enumerate(names)
            ]
        return (
            f'<fieldset class="nqm-live-control nqm-live-{kind}" id="{element}" data-kind="{kind}" '
            f'{data}{extra}><legend>{label}</legend>{"".join(inputs)}'
            f'<span class="nqm-live-hint" role="status"></span></fieldset>'
        )
    return (
        f'<span class="nqm-live-control nqm-live-range" data-kind="range" {data}>'
        f'<label for="{element}">{label}</label>'
        f'<input type="range" id="{element}" name="{control.name}" min="0" max="{len(values) - 1}" '
        f'step="1" value="{position}" aria-valuetext="{html.escape(texts[position])}">'
        f'<output for="{element}">{html.escape(texts[position])}</output></span>'
    )


def setting(label: str, text: str) -> str:
    """``η = 0.02``: a control's label and value (the value alone when it starts with the label)."""
    return text if text.startswith(f"{label} =") else f"{label} = {text}"


def settings_text(figure: object, values: dict | None = None) -> str:
    """``η = 0.02, B = 1, …``: every control of the figure at ``values`` (defaults otherwise)."""
    values = values or {}
    return ", ".join(setting(c.label, c.text(values.get(c.name, c.default))) for c in figure.controls)


def live_block(figure: object, manifest: dict, prefix: str, alt: str) -> str:
    """The HTML of one live figure: note, controls, and the frame (``alt`` plus its settings)."""
    live = figure.live_controls
    strides, stride = [], 1
    for control in reversed(live):
        strides.insert(0, stride)
        stride *= len(control.site_values)
    base = f"{prefix}_static/live/{manifest['folder']}/"
    default = figure.frame_index()
    fixed = ", ".join(setting(c.label, c.text(c.default)) for c in figure.controls if c not in live)
    controls = "".join(_control_html(figure, c, s) for c, s in zip(live, strides, strict=True))
    size = f'width="{manifest["width"]}" height="{manifest["height"]}"'
    alt = alt.rstrip(". ")
    return (
        f'<div class="nqm-live" id="live-{figure.id}" data-figure="{figure.id}" data-base="{base}" '
        f'data-frame="{default}" data-alt="{html.escape(alt)}" data-fixed="{html.escape(fixed)}">'
        f'<p class="nqm-live-note"><strong>Live figure:</strong> '
        f'{html.escape(live_note(figure).removeprefix("Live figure: "))}</p>'
        f'<div class="nqm-live-controls">{controls}</div>'
        f'<a class="nqm-live-link" href="{base}{default}@2x.png">'
        f'<img class="nqm-live-frame" src="{base}{default}.png" srcset="{base}{default}@2x.png 2x" '
        f'alt="{html.escape(alt)}. Settings: {html.escape(settings_text(figure))}." {size}></a>'
        f'<img class="nqm-live-print" src="{base}{default}.png" srcset="{base}{default}@2x.png 2x" '
        f'alt="{html.escape(alt)}. Settings: {html.escape(settings_text(figure))}." {size}></div>'
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
        image = images[-1]
        alt = image.get("alt") or f"Interactive figure {figure.id.replace('_', ' ')}"
        block = nodes.raw("", live_block(figure, manifests[figure.id], prefix, alt), format="html")
        numbered = image.parent
        while numbered is not outputs and not isinstance(numbered, nodes.figure):
            numbered = numbered.parent
        # The notebook's note and its (empty here) widget area: the live block replaces them.
        leftovers = [p for p in outputs.findall(nodes.paragraph) if p.astext().startswith("Interactive")]
        leftovers += [r for r in outputs.findall(nodes.raw) if "widget-view" in r.astext()]
        anchor = _top_child(outputs, image)
        remove = {_top_child(outputs, node) for node in leftovers} - {anchor}
        if isinstance(numbered, nodes.figure):  # the cell's numbered figure: live block, then caption
            for child in list(numbered.children):
                if not isinstance(child, nodes.caption | nodes.legend):
                    numbered.remove(child)
            numbered.insert(0, block)
            numbered["classes"].append("nqm-live-figure")
            for caption in numbered.findall(nodes.caption):
                caption += nodes.inline("", " (interactive online)", classes=["nqm-print-only"])
        else:
            anchor.parent.replace(anchor, block)
        for node in remove:
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
    for folder in wanted:  # copied again if the cache's frames were drawn again (a new manifest)
        source, destination = cache_root(app.srcdir) / folder, target / folder
        copied = destination / "manifest.json"
        if not copied.exists() or copied.read_bytes() != (source / "manifest.json").read_bytes():
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(source, destination)
    drawing = cache_root(app.srcdir) / "last_drawing.json"
    if drawing.exists():  # this build drew frames: record what it cost, for the status page
        site_bytes = sum(f.stat().st_size for f in Path(app.outdir).rglob("*") if f.is_file())
        last = {
            **json.loads(drawing.read_text(encoding="utf-8")),
            "build_seconds": round(time.perf_counter() - getattr(app, "nqm_build_start", 0.0), 1),
            "site_megabytes": round(site_bytes / 1e6, 1),
            "frames_megabytes": round(sum(m["bytes"] + m["bytes_2x"] for m in manifests.values()) / 1e6, 1),
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
        header = (
            "figure",
            "live on the site",
            "fixed on the site",
            "frames",
            "size 1× + 2× (MB)",
            "drawing (CPU s)",
        )
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
                    f"{manifest['bytes'] / 1e6:.2f} + {manifest['bytes_2x'] / 1e6:.2f}",
                    f"{manifest['cpu_seconds']:.0f}",
                )
            )
        rows.append(
            (
                "all",
                "",
                "",
                str(sum(m["frames"] for m in manifests.values())),
                f"{sum(m['bytes'] for m in manifests.values()) / 1e6:.1f} + "
                f"{sum(m['bytes_2x'] for m in manifests.values()) / 1e6:.1f}",
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


def _add_static_path(app: Sphinx, config: object) -> None:
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, object]:
    """Register the hooks, the page script and its style sheet with Sphinx."""
    app.add_directive("live-figures", LiveFiguresStatus)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-get-outdated", _outdated)
    app.connect("doctree-read", _note_live_page)
    app.connect("env-purge-doc", _purge)
    app.connect("doctree-resolved", _replace_figures)
    app.connect("build-finished", _copy_frames)
    app.connect("config-inited", _add_static_path)
    app.add_js_file("live_figures.js", defer="defer")
    app.add_css_file("live_figures.css")
    return {"parallel_read_safe": False, "parallel_write_safe": True}
