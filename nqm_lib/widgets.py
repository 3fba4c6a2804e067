"""Interactive figures: sliders that redraw a figure of :mod:`nqm_lib.figures` (chapter 1 on).

:func:`explore` shows a figure produced by a *figure function* together with ipywidgets
controls for its arguments; moving a control calls the function again and replaces the
figure in place. Settings that are invalid or make the iteration diverge do not produce
NaNs: the figure area shows the library's error message instead.

On the static HTML site no Python runs, so the controls cannot redraw anything; the page
shows the figure for the default values and says how to run it live.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import ipywidgets
import matplotlib.pyplot as plt
from IPython.display import DisplayHandle, Image, Markdown, display
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from .plotting import message_figure

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
        for widget in self.controls.values():
            widget.observe(self._redraw, names="value")

    def values(self) -> dict[str, object]:
        """Current keyword arguments: the fixed ones and every control's value."""
        return {**self.fixed, **{name: w.value for name, w in self.controls.items()}}

    def figure(self, **overrides: object) -> Figure:
        """Draw the figure for the current values (updated by ``overrides``).

        A ``ValueError`` raised by the figure function (an invalid or unstable setting)
        becomes a figure showing its message, so the reader sees why nothing is plotted.
        """
        try:
            return self.figure_function(**{**self.values(), **overrides})
        except ValueError as error:
            return message_figure(f"Cannot draw these settings:\n{error}")

    def image(self, **overrides: object) -> Image:
        """Render :meth:`figure` to a PNG image, as the widget displays it, and close the figure.

        The figure is saved at its own size (its layout already fits it), which is faster
        than Jupyter's default of trimming every figure to a tight bounding box, and without
        the minor ticks of log axes, whose dozens of tick objects cost more to lay out than
        the data (a third of the drawing time).
        """
        fig = self.figure(**overrides)
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_scale() == "log":
                    axis.set_minor_locator(NullLocator())
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        return Image(data=buffer.getvalue(), format="png")

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
