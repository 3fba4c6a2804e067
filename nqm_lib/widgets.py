"""Interactive figures: sliders that redraw a figure of :mod:`nqm_lib.figures` (chapter 1 on).

:func:`explore` shows a figure produced by a *figure function* together with ipywidgets
controls for its arguments; moving a control calls the function again and replaces the
figure in place. Settings that are invalid or make the iteration diverge do not produce
NaNs: the figure area shows the library's error message instead.

On the static HTML site no Python runs, so the controls cannot redraw anything; the page
shows the figure for the default values and says how to run it live.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Mapping

import ipywidgets
import numpy as np
from IPython.display import DisplayHandle, Image, Markdown, display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import NullLocator
from matplotlib.transforms import Bbox

from .plotting import drawing_into, message_figure

__all__ = ["Explorer", "explore"]

LIVE_NOTE = (
    "**Interactive figure** (controls: {controls}). In a running notebook the controls below "
    "redraw it. The static web page cannot run Python, so it shows the figure for the default "
    "values and no controls: launch the chapter on Colab or Binder with the rocket button at the "
    "top of the page to move them."
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

    """

    def __init__(
        self,
        figure_function: Callable[..., Figure],
        controls: Mapping[str, ipywidgets.ValueWidget],
        fixed: Mapping[str, object] | None = None,
    ) -> None:
        self.figure_function = figure_function
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
                return Image(data=_png(fig.canvas), format="png")
            for ax in fig.axes:
                ax.set_in_layout(True)  # set_position() excluded them from layout engines
        ConstrainedLayoutEngine().execute(fig)
        self._layouts[shape] = [ax.get_position(original=True) for ax in fig.axes]
        fig.canvas.draw()
        return Image(data=_png(fig.canvas), format="png")

    def show(self) -> None:
        """Display the note, the controls and the figure for the current values."""
        names = ", ".join(widget.description or name for name, widget in self.controls.items())
        display(Markdown(LIVE_NOTE.format(controls=names)))
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


def explore(
    figure_function: Callable[..., Figure],
    fixed: Mapping[str, object] | None = None,
    **controls: ipywidgets.ValueWidget,
) -> None:
    """Show ``figure_function`` with one control per keyword argument; redraw on change.

    Example (chapter 2)::

        explore(figures.sgd_risk_figure,
                lr=ipywidgets.FloatLogSlider(value=0.02, min=-3, max=0, description="η"))
    """
    for widget in controls.values():
        if hasattr(widget, "continuous_update"):
            widget.continuous_update = False
    Explorer(figure_function, controls, fixed).show()
