"""Interactive figures: sliders that redraw a figure of :mod:`nqm_lib.figures` (chapter 1 on).

:func:`explore` shows a figure produced by a *figure function* together with ipywidgets
controls for its arguments; moving a control calls the function again and replaces the
figure in place. The figure functions keep their axes fixed and draw unstable settings (the
curve leaves the axes); only a setting that cannot be drawn at all (an empty selection, an
invalid value) shows a one-sentence message in the figure's place, in the controls' symbols.

Each interactive figure of the book is declared once in :mod:`nqm_lib.interactive` (its
figure function and its controls); ``explore("sgd_risk")`` shows that declaration. On the
static HTML site no Python runs: there the build draws the figure in advance for a grid of
control values (:func:`frame_images`, called by ``book_ext/live_figures.py``) and the page
swaps these frames when a control moves.

The widgets use only what ipywidgets 7.2+ and 8 (and IPython 7+) both provide, so that the
notebooks also run on Colab (ipywidgets 7): ``display(bundle, raw=True)`` rather than a
widget's own ``_repr_mimebundle_`` (ipywidgets 8 only), and :class:`CheckboxGroup` built from
``Checkbox``, ``Label`` and ``HBox`` rather than a widget of either version alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import ipywidgets
import numpy as np
import PIL.Image
import traitlets
from IPython.display import DisplayHandle, Image, Markdown, display
from matplotlib.artist import Artist
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.offsetbox import OffsetBox
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import NullLocator
from matplotlib.transforms import Bbox

from .interactive import InteractiveFigure, declaration
from .plotting import drawing_into, message_figure
from .png import png_bytes

__all__ = ["CheckboxGroup", "Explorer", "explore", "frame_images"]

#: The note above a declared figure's controls (``{controls}``: their symbols, "η, B or γ").
LIVE_NOTE = "**Interactive figure**: change {controls} with the controls below, and the figure is redrawn."

#: The note of a figure passed with its own widgets, ``explore(figure_function, **widgets)``:
#: such a figure has no declaration in :mod:`nqm_lib.interactive`, so the site has no frames
#: for it and shows its default figure.
UNDECLARED_NOTE = (
    "**Interactive figure**: change {controls} with the controls below, and the figure is redrawn "
    "(the course's web page, which runs no Python, shows it at the default values)."
)

#: What a notebook opened with its saved outputs shows in place of the controls until the cell
#: runs again (the widgets' state is not saved): the ``text/plain`` of the widget output.
CONTROLS_FALLBACK = (
    "Run the cells above and this one to get the controls for {controls}; until then the figure "
    "below shows their default values."
)

#: The ``text/plain`` and widget view of the controls' output, as ipywidgets 7 and 8 both write it.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _listed(names: Sequence[str], conjunction: str) -> str:
    """``"η, B or γ"``: names joined for a sentence."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


class CheckboxGroup(ipywidgets.HBox):
    """A multiple choice as one checkbox per option; ``value`` is the tuple of the checked options.

    Chapter 6 chooses several methods and powers ``p`` at once: a ``SelectMultiple`` list hides
    that (a plain click deselects the others; only Ctrl/Shift-click adds), checkboxes show it.
    ``options`` are values or ``(text, value)`` pairs, as for ipywidgets' own selections;
    ``value`` lists the checked ones in option order, and setting it checks them. Built from
    ``Label``, ``Checkbox`` and ``HBox`` with arguments ipywidgets 7 and 8 both accept.
    """

    value = traitlets.Tuple()
    description = traitlets.Unicode()

    def __init__(
        self, options: Sequence[object], value: Sequence[object] = (), description: str = ""
    ) -> None:
        self.options = tuple(o if isinstance(o, tuple) else (str(o), o) for o in options)
        self._syncing = False
        chosen = tuple(value)
        self._boxes = [
            ipywidgets.Checkbox(
                value=option in chosen, description=text, indent=False, layout=ipywidgets.Layout(width="auto")
            )
            for text, option in self.options
        ]
        super().__init__(
            children=[ipywidgets.Label(value=description), *self._boxes],
            layout=ipywidgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.description = description
        self.value = tuple(option for _, option in self.options if option in chosen)
        for box in self._boxes:
            box.observe(self._from_boxes, names="value")
        self.observe(self._to_boxes, names="value")

    def _from_boxes(self, _change: object) -> None:
        if not self._syncing:
            self.value = tuple(
                option for (_, option), box in zip(self.options, self._boxes, strict=True) if box.value
            )

    def _to_boxes(self, change: dict) -> None:
        self._syncing = True
        try:
            for (_, option), box in zip(self.options, self._boxes, strict=True):
                box.value = option in change["new"]
        finally:
            self._syncing = False


def _reader_message(error: Exception, labels: Mapping[str, str]) -> str:
    """``error`` as one sentence in the controls' symbols, with no line break inside an expression.

    Argument names become the controls' labels (``batch_size`` → ``B``, ``lr`` → ``η``),
    ``>=``/``<=`` become ``≥``/``≤``, and the spaces around a relation are non-breaking, so the
    figure's word wrap cannot split ``B = 128`` or ``η < 0.04``.
    """
    text = str(error).strip().removeprefix("unstable: ")
    for name, label in labels.items():
        text = re.sub(rf"\b{re.escape(name)}\b", lambda _, label=label: label, text)
    text = text.replace(">=", "≥").replace("<=", "≤")
    text = re.sub(r" ([=<>≤≥]) ", "\u00a0\\1\u00a0", text)
    return f"These settings cannot be drawn: {text.rstrip('.')}."


class Explorer:
    """A figure function bound to ipywidgets controls, one per keyword argument.

    Parameters
    ----------
    figure_function
        Called with the controls' values as keyword arguments; returns a Matplotlib figure.
    controls
        Mapping from argument name to an ipywidgets value widget (slider, dropdown, …).
    fixed
        Further keyword arguments passed unchanged on every call.
    name
        What the figure is called in reports such as ``make bench``: its declaration's id,
        or by default the figure function's name.

    """

    def __init__(
        self,
        figure_function: Callable[..., Figure],
        controls: Mapping[str, ipywidgets.ValueWidget],
        fixed: Mapping[str, object] | None = None,
        name: str | None = None,
    ) -> None:
        self.figure_function = figure_function
        self.name = name or getattr(figure_function, "__name__", type(figure_function).__name__)
        self.controls = dict(controls)
        self.fixed = dict(fixed or {})
        self._handle = None
        # One figure on one Agg canvas, redrawn on every update and never registered with
        # pyplot (so Jupyter does not display it a second time at the end of the cell).
        self._figure = Figure()
        FigureCanvasAgg(self._figure)
        self._layouts: dict[tuple, list[Bbox]] = {}
        self._rasters = _RasterCache()
        for widget in self.controls.values():
            widget.observe(self._redraw, names="value")

    def values(self) -> dict[str, object]:
        """Current keyword arguments: the fixed ones and every control's value."""
        return {**self.fixed, **{name: w.value for name, w in self.controls.items()}}

    def figure(self, **overrides: object) -> Figure:
        """Draw the figure for the current values (updated by ``overrides``) and return it.

        The figure function draws into this explorer's own figure (see
        :func:`~nqm_lib.plotting.drawing_into`), so every call returns the same, redrawn
        ``Figure``. A ``ValueError`` raised by the figure function (a setting it cannot draw)
        becomes a one-sentence message in that figure, in the controls' symbols, so the reader
        sees why nothing is plotted.
        """
        width, height = self._figure.get_size_inches()
        with drawing_into(self._figure):
            try:
                drawn = self.figure_function(**{**self.values(), **overrides})
            except ValueError as error:
                labels = {name: widget.description or name for name, widget in self.controls.items()}
                drawn = message_figure(_reader_message(error, labels), width=width, height=height)
        if drawn is not self._figure:
            raise TypeError(
                f"{self.figure_function.__name__} must create its figure with nqm_lib.plotting.new_figure"
            )
        return drawn

    def image(self, **overrides: object) -> Image:
        """Render :meth:`figure` to the PNG image the widget displays.

        Redrawing is what a reader waits for on every slider move, so it is kept fast
        (``make bench`` measures it):

        * the same canvas is drawn every time, so Matplotlib's text caches stay warm;
        * the constrained layout is computed for the first figure of each shape and then
          kept, so the axes stay put while a slider moves; it is computed again if anything
          is drawn in the outermost two pixels of the image (a title or label running off it);
        * the image is the figure at its own size, not Jupyter's tight bounding box (a
          second layout pass), and log axes get no minor ticks, whose dozens of tick objects
          cost more to lay out than the data;
        * the axes' ticks and labels and the legends are rasterised once and reused while they
          do not change (with fixed axes and fixed legend texts, for every move of a slider):
          laying out their text was most of a redraw (see ``_RasterCache``).
        """
        return Image(data=_png(self.draw(**overrides)), format="png")

    def draw(self, **overrides: object) -> FigureCanvasAgg:
        """Draw :meth:`figure` on its canvas, laid out as :meth:`image` explains; return the canvas."""
        fig = self.figure(**overrides)
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_scale() == "log":
                    axis.set_minor_locator(NullLocator())
        shape = _layout_shape(fig)
        self._rasters.install(fig)
        if shape in self._layouts:
            for ax, position in zip(fig.axes, self._layouts[shape], strict=True):
                ax.set_position(position)
            fig.canvas.draw()
            if not _touches_edge(fig.canvas):
                return fig.canvas
            for ax in fig.axes:
                ax.set_in_layout(True)  # set_position() excluded them from layout engines
        ConstrainedLayoutEngine().execute(fig)
        self._layouts[shape] = [ax.get_position(original=True) for ax in fig.axes]
        fig.canvas.draw()
        return fig.canvas

    def show(self, note: str = LIVE_NOTE) -> None:
        """Display the note, the controls and the figure: three outputs, in this order.

        1. the note (Markdown, ``{controls}`` filled in with the controls' symbols);
        2. the controls, whose ``text/plain`` says to run the cells (``CONTROLS_FALLBACK``):
           that is what a notebook opened with its saved outputs shows where a front end
           cannot draw the widgets, instead of their Python repr;
        3. the figure at the current values (a PNG, redrawn in place on every move), which a
           saved notebook shows at the default values.

        The course's site (``book_ext/live_figures.py``) relies on this order.
        """
        names = [widget.description or name for name, widget in self.controls.items()]
        display(Markdown(note.format(controls=_listed(names, "or"))))
        box = ipywidgets.HBox(
            children=list(self.controls.values()), layout=ipywidgets.Layout(flex_flow="row wrap")
        )
        view = {"version_major": 2, "version_minor": 0, "model_id": box.model_id}
        display(
            {WIDGET_VIEW: view, "text/plain": CONTROLS_FALLBACK.format(controls=_listed(names, "and"))},
            raw=True,
        )
        self._handle = DisplayHandle()
        self._handle.display(self.image())

    def _redraw(self, _change: object = None) -> None:
        if self._handle is not None:
            self._handle.update(self.image())


class _UncacheableError(Exception):
    """An artist whose drawing :class:`_RasterCache` cannot describe by a key (drawn as usual)."""


class _RasterCache:
    """Pixels of the axes' decorations and legends, reused while they do not change.

    A redraw rebuilds the whole figure, yet with fixed axes and fixed legend texts most of it
    looks the same on every slider move: the ticks, tick labels and axis labels of each
    :class:`~matplotlib.axis.Axis` and each :class:`~matplotlib.legend.Legend`. Laying out
    their text cost more than half of a redraw. :meth:`install` makes each of them draw from
    this cache: under a key of everything its drawing depends on (its place in the figure,
    the view limits, tick positions and labels, texts, styles), it is drawn once alone on a
    transparent canvas, and that image is pasted where it belongs on every later draw. The
    pasted image differs from drawing the artist in place by at most a level or two of
    antialiasing, and always comes out the same, so frames do not depend on what was drawn
    before them. An artist whose key cannot be formed (a legend placed "best", an unknown
    kind of handle) is drawn as usual.
    """

    def __init__(self, size: int = 64) -> None:
        self._images: dict[tuple, tuple[int, int, np.ndarray]] = {}
        self._size = size
        self._scratch: dict[tuple, RendererAgg] = {}

    def _blank_renderer_like(self, renderer: RendererAgg) -> RendererAgg:
        """A transparent renderer of ``renderer``'s size, kept and cleared for each use.

        Reusing it keeps its text-layout and mathtext caches warm (a new renderer starts
        empty, and parsing ``$10^{2}$`` again cost up to 18 ms of a frame).
        """
        size = (renderer.width, renderer.height, renderer.dpi)
        if size not in self._scratch:
            self._scratch = {size: RendererAgg(*size)}  # only the current size is ever drawn
        scratch = self._scratch[size]
        scratch.clear()
        return scratch

    def install(self, fig: Figure) -> None:
        """Make the axes' axes and legends of ``fig`` draw through the cache."""
        for ax in fig.axes:
            for artist in (ax.xaxis, ax.yaxis, ax.get_legend()):
                if artist is not None:
                    artist.draw = self._cached_draw(artist)

    def _cached_draw(self, artist: Artist) -> Callable[[RendererAgg], None]:
        draw = type(artist).draw

        def cached(renderer: RendererAgg) -> None:
            if not artist.get_visible() or not isinstance(renderer, RendererAgg):
                return draw(artist, renderer)
            try:
                key = (type(artist).__name__, renderer.width, renderer.height, renderer.dpi, _key(artist))
            except _UncacheableError:
                return draw(artist, renderer)
            if key not in self._images:
                alone = self._blank_renderer_like(renderer)
                draw(artist, alone)
                pixels = np.asarray(alone.buffer_rgba())
                drawn = pixels[:, :, 3] != 0
                rows, columns = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
                if rows.size == 0:
                    self._images[key] = (0, 0, np.zeros((0, 0, 4), np.uint8))
                else:
                    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
                    crop = pixels[top:bottom, left:right][::-1].copy()  # bottom row first, as Agg pastes
                    self._images[key] = (int(left), int(renderer.height - bottom), crop)
                if len(self._images) > self._size:
                    del self._images[next(iter(self._images))]
            left, bottom, image = self._images[key]
            if image.size:
                gc = renderer.new_gc()
                renderer.draw_image(gc, left, bottom, image)
                gc.restore()
            artist.stale = False
            return None

        return cached


def _text_key(text: Text) -> tuple:
    """What a text's pixels depend on apart from its position."""
    font = text.get_fontproperties()
    return (
        text.get_text(),
        text.get_visible(),
        font.get_size_in_points(),
        tuple(font.get_family()),
        font.get_weight(),
        font.get_style(),
        str(text.get_color()),
        text.get_rotation(),
        text.get_ha(),
        text.get_va(),
        text.get_alpha(),
    )


def _artist_key(artist: Artist) -> tuple:
    """What an artist inside a legend draws: kind, data and style (raises :class:`_UncacheableError`)."""
    if isinstance(artist, OffsetBox):
        box = tuple(
            getattr(artist, name, None) for name in ("pad", "sep", "align", "mode", "width", "height")
        )
        return (type(artist).__name__, box, tuple(_artist_key(child) for child in artist.get_children()))
    if isinstance(artist, Text):
        return ("text", _text_key(artist))
    style = (artist.get_visible(), artist.get_alpha(), artist.get_zorder())
    if isinstance(artist, Line2D):
        return (
            "line",
            style,
            np.asarray(artist.get_xydata(), dtype=float).tobytes(),
            str(artist.get_color()),
            artist.get_linestyle(),
            artist.get_linewidth(),
            str(artist.get_marker()),
            artist.get_markersize(),
            str(artist.get_markerfacecolor()),
            str(artist.get_markeredgecolor()),
            artist.get_markeredgewidth(),
            artist.get_drawstyle(),
        )
    if isinstance(artist, Patch):
        return (
            type(artist).__name__,
            style,
            artist.get_path().vertices.tobytes(),
            artist.get_patch_transform().get_matrix().tobytes(),
            tuple(artist.get_facecolor()),
            tuple(artist.get_edgecolor()),
            artist.get_linewidth(),
            str(artist.get_linestyle()),
            artist.get_hatch(),
            artist.get_fill(),
        )
    if isinstance(artist, Collection):
        return (
            type(artist).__name__,
            style,
            np.asarray(artist.get_facecolor()).tobytes(),
            np.asarray(artist.get_edgecolor()).tobytes(),
            np.asarray(artist.get_linewidth()).tobytes(),
            np.asarray(getattr(artist, "get_sizes", lambda: ())()).tobytes(),
            tuple(path.vertices.tobytes() for path in artist.get_paths()),
            np.asarray(artist.get_offsets()).tobytes(),
        )
    raise _UncacheableError(type(artist).__name__)


def _key(artist: Artist) -> tuple:
    """Everything the pixels of an :class:`~matplotlib.axis.Axis` or a legend depend on."""
    ax = artist.axes
    place = (tuple(ax.bbox.bounds), ax.get_xscale(), ax.get_yscale(), ax.get_xlim(), ax.get_ylim())
    if isinstance(artist, Legend):
        if artist._loc in (0, "best"):
            raise _UncacheableError("a legend placed 'best' moves with the data")
        frame = artist.get_frame()
        layout = (
            artist._loc,
            tuple(artist.get_bbox_to_anchor().bounds),
            artist._ncols,
            artist._mode,
            artist.borderpad,
            artist.labelspacing,
            artist.handlelength,
            artist.handletextpad,
            artist.columnspacing,
            artist.borderaxespad,
            artist.get_frame_on(),
            tuple(frame.get_facecolor()),
            tuple(frame.get_edgecolor()),
        )
        return (place, layout, _artist_key(artist._legend_box))
    if not isinstance(artist, Axis):
        raise _UncacheableError(type(artist).__name__)
    ticks = []
    for which, locator, formatter in (("major", artist.major.locator, artist.major.formatter),
                                      ("minor", artist.minor.locator, artist.minor.formatter)):  # fmt: skip
        if isinstance(locator, NullLocator):
            continue
        locations = np.asarray(locator(), dtype=float)
        labels = tuple(formatter.format_ticks(locations))
        made = artist.__dict__.get(f"{which}Ticks", [])  # ticks a figure function styled itself
        styled = tuple(
            (_text_key(t.label1), t.tick1line.get_visible(), t.gridline.get_visible()) for t in made
        )
        ticks.append((which, locations.tobytes(), labels, formatter.get_offset(), styled))
    keywords = tuple(
        tuple(sorted((k, repr(v)) for k, v in kw.items()))
        for kw in (artist._major_tick_kw, artist._minor_tick_kw)
    )
    return (place, tuple(ticks), keywords, _text_key(artist.label))


def _layout_shape(fig: Figure) -> tuple:
    """What a layout depends on apart from the text: the size and the grid cell of every axes."""
    cells = tuple(ax.get_subplotspec().get_geometry() for ax in fig.axes)
    return (*fig.canvas.get_width_height(), cells)


def _touches_edge(canvas: FigureCanvasAgg, band: int = 2) -> bool:
    """Whether anything is drawn in the outer ``band`` pixels of a drawn canvas.

    A laid-out figure keeps a margin there, so ink means something runs off the image.
    """
    pixels = np.asarray(canvas.buffer_rgba())
    background = pixels[0, 0]
    edges = (pixels[:band], pixels[-band:], pixels[:, :band], pixels[:, -band:])
    return any(bool(np.any(edge != background)) for edge in edges)


def _png(canvas: FigureCanvasAgg) -> bytes:
    """PNG bytes of an Agg canvas that has been drawn: 8-bit RGB, unfiltered rows, zlib level 1."""
    return png_bytes(np.asarray(canvas.buffer_rgba())[:, :, :3])


def _rgb_image(canvas: FigureCanvasAgg) -> PIL.Image.Image:
    """The RGB pixels of a drawn Agg canvas, as a new PIL image.

    PIL drops the alpha channel in half the time numpy takes to copy the other three out, and
    the site build encodes the image as it is, without a copy to numpy and back.
    """
    rgba = np.asarray(canvas.buffer_rgba())
    image = PIL.Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1)
    return image.convert("RGB")


def frame_images(
    figure: InteractiveFigure | str,
    indices: Sequence[int] | None = None,
    *,
    scale: int = 1,
    refusals: dict[int, str] | None = None,
    on_frame: Callable[[int, Figure], None] | None = None,
) -> Iterator[tuple[int, PIL.Image.Image]]:
    """Draw the site's frames of a declared figure, as the notebook's widget draws them.

    Yields ``(frame index, RGB image)`` for the frames ``indices`` (all by default) of
    :meth:`~nqm_lib.interactive.InteractiveFigure.frames`, the image as a PIL image
    (``numpy.asarray`` gives its pixels; the site build encodes it as it is). Every frame is drawn by an
    :class:`Explorer` that first drew the default figure — what a reader sees after moving the
    notebook's controls from their defaults to that setting: the axes keep the default
    figure's layout (laid out again only if something would run off the image), and a setting
    the figure function refuses (``ValueError``) gives the notebook's message. Each frame
    depends only on its own setting, not on the frames drawn before it, so frames can be
    drawn in any order and process.

    ``scale`` draws at ``scale`` times the figure's dpi (2 for screens with two device
    pixels per CSS pixel; the layout is the same at every scale). If ``refusals`` is a dict,
    the frames drawn as a message instead of a plot are recorded in it, index → message.
    ``on_frame(index, figure)``, if given, is called with each frame's drawn figure before its
    pixels are yielded (the site build records its axes this way).

    Raises
    ------
    ValueError
        If ``scale`` is not a whole number from 1 to 4.

    """
    if scale not in (1, 2, 3, 4):
        raise ValueError(f"scale = {scale!r}: must be a whole number from 1 to 4")
    from functools import wraps

    figure = declaration(figure)
    function = figure.figure_function
    refused: list[str] = []

    @wraps(function)  # keeps the figure function's name for the Explorer's messages
    def recording(**values: object) -> Figure:
        try:
            return function(**values)
        except ValueError as error:
            refused.append(str(error))
            raise

    explorer = Explorer(recording, {}, figure.defaults)
    explorer._figure.set_dpi(explorer._figure.get_dpi() * scale)
    explorer.draw()
    layouts = dict(explorer._layouts)
    wanted = None if indices is None else set(indices)
    for index, values in figure.frames():
        if wanted is None or index in wanted:
            explorer._layouts = dict(layouts)
            refused.clear()
            image = _rgb_image(explorer.draw(**values))
            if on_frame is not None:
                on_frame(index, explorer._figure)
            if refused and refusals is not None:
                refusals[index] = refused[-1]
            yield index, image


def explore(
    figure_function: Callable[..., Figure] | InteractiveFigure | str,
    fixed: Mapping[str, object] | None = None,
    **controls: ipywidgets.ValueWidget,
) -> None:
    """Show an interactive figure: its note, one control per keyword argument, the figure.

    The usual call names a declaration of :mod:`nqm_lib.interactive` (by id or as the object),
    which gives the figure function and its controls, e.g. chapter 2's ``explore("sgd_risk")``.
    A figure function with explicit ipywidgets controls also works::

        explore(figures.sgd_risk_figure,
                lr=ipywidgets.FloatLogSlider(value=0.02, min=-3, max=0, description="η"))

    Raises
    ------
    ValueError
        If a declaration is named together with explicit controls, or no declaration has that id.

    """
    declared = isinstance(figure_function, InteractiveFigure | str)
    name = None
    if declared:
        if controls:
            raise ValueError(
                f"controls = {sorted(controls)}: a declared figure takes its controls from "
                "nqm_lib.interactive, not from explore's arguments"
            )
        figure = declaration(figure_function)
        name, figure_function, controls = figure.id, figure.figure_function, figure.widgets()
        fixed = {**figure.fixed, **(fixed or {})}
    for widget in controls.values():
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = False
    Explorer(figure_function, controls, fixed, name).show(LIVE_NOTE if declared else UNDECLARED_NOTE)
