"""Interactive figures: sliders that redraw a figure of :mod:`nqm_lib.figures` (chapter 1 on).

:func:`explore` shows a figure produced by a *figure function* together with ipywidgets
controls for its arguments; moving a control calls the function again and replaces the
figure in place. Settings that are invalid or make the iteration diverge do not produce
NaNs: the figure area shows the library's error message instead.

Each interactive figure of the book is declared once in :mod:`nqm_lib.interactive` (its
figure function and its controls); ``explore("sgd_risk")`` shows that declaration. On the
static HTML site no Python runs: there the build draws the figure in advance for a grid of
control values (:func:`frame_images`, called by ``book_ext/live_figures.py``) and the page
swaps these frames when a control moves.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import ipywidgets
import numpy as np
from IPython.display import DisplayHandle, Image, Markdown, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import NullLocator
from matplotlib.transforms import Bbox

from .interactive import InteractiveFigure, declaration
from .plotting import drawing_into, message_figure

__all__ = ["Explorer", "explore", "frame_images"]

LIVE_NOTE = (
    "**Interactive figure** (controls: {controls}). Move a control and the figure is redrawn "
    "for its new value. On the course's web page it answers from frames drawn in advance on a "
    "grid of values; here, in a running notebook, every control moves continuously."
)

#: The note of a figure passed with its own widgets, ``explore(figure_function, **widgets)``:
#: such a figure has no declaration in :mod:`nqm_lib.interactive`, so the site has no frames
#: for it and shows its default figure.
UNDECLARED_NOTE = (
    "**Interactive figure** (controls: {controls}). In a running notebook the controls below "
    "redraw it. It is not declared in nqm_lib.interactive, so the course's web page shows it for "
    "the default values only."
)


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
        for widget in self.controls.values():
            widget.observe(self._redraw, names="value")

    def values(self) -> dict[str, object]:
        """Current keyword arguments: the fixed ones and every control's value."""
        return {**self.fixed, **{name: w.value for name, w in self.controls.items()}}

    def figure(self, **overrides: object) -> Figure:
        """Draw the figure for the current values (updated by ``overrides``) and return it.

        The figure function draws into this explorer's own figure (see
        :func:`~nqm_lib.plotting.drawing_into`), so every call returns the same, redrawn
        ``Figure``. A ``ValueError`` raised by the figure function (an invalid or unstable
        setting) becomes a message in that figure, so the reader sees why nothing is plotted.
        """
        width, height = self._figure.get_size_inches()
        with drawing_into(self._figure):
            try:
                drawn = self.figure_function(**{**self.values(), **overrides})
            except ValueError as error:
                drawn = message_figure(f"Cannot draw these settings:\n{error}", width=width, height=height)
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
          cost more to lay out than the data.
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
        """Display the note (``{controls}`` filled in), the controls and the figure."""
        names = ", ".join(widget.description or name for name, widget in self.controls.items())
        display(Markdown(note.format(controls=names)))
        display(ipywidgets.HBox(list(self.controls.values()), layout=ipywidgets.Layout(flex_flow="row wrap")))
        self._handle = DisplayHandle()
        self._handle.display(self.image())

    def _redraw(self, _change: object = None) -> None:
        if self._handle is not None:
            self._handle.update(self.image())


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
    """PNG bytes of an Agg canvas that has been drawn: 8-bit RGB, unfiltered rows, zlib level 1.

    Written directly because a general encoder spends as long choosing a filter for every
    row as zlib spends compressing; a plot's flat colours compress well without one.
    """
    width, height = canvas.get_width_height()
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # a leading 0 per row: filter "none"
    rows[:, 1:].reshape(height, width, 3)[...] = np.asarray(canvas.buffer_rgba())[:, :, :3]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _png_chunk(kind, data)
        for kind, data in ((b"IHDR", header), (b"IDAT", zlib.compress(rows.tobytes(), 1)), (b"IEND", b""))
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def frame_images(
    figure: InteractiveFigure | str,
    indices: Sequence[int] | None = None,
    *,
    scale: int = 1,
    refusals: dict[int, str] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Draw the site's frames of a declared figure, as the notebook's widget draws them.

    Yields ``(frame index, RGB pixels)`` for the frames ``indices`` (all by default) of
    :meth:`~nqm_lib.interactive.InteractiveFigure.frames`. Every frame is drawn by an
    :class:`Explorer` that first drew the default figure — what a reader sees after moving the
    notebook's controls from their defaults to that setting: the axes keep the default
    figure's layout (laid out again only if something would run off the image), and a setting
    the figure function refuses (``ValueError``) gives the notebook's message. Each frame
    depends only on its own setting, not on the frames drawn before it, so frames can be
    drawn in any order and process.

    ``scale`` draws at ``scale`` times the figure's dpi (2 for screens with two device
    pixels per CSS pixel; the layout is the same at every scale). If ``refusals`` is a dict,
    the frames drawn as a message instead of a plot are recorded in it, index → message.

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
            pixels = np.asarray(explorer.draw(**values).buffer_rgba())[:, :, :3].copy()
            if refused and refusals is not None:
                refusals[index] = refused[-1]
            yield index, pixels


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
