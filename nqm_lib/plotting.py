"""One plotting style for the whole book, in the notation of the course guide (chapter 1 on).

Every figure of the book is drawn with these helpers, so coordinates keep their colours
from chapter to chapter, theory is always a solid line and Monte Carlo always dots with a
±2 standard-error band.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator

from .simulation import SimulationResult

__all__ = [
    "CEILING_FACTOR",
    "COORDINATE_COLORS",
    "FIGURE_WIDTH",
    "SMALLEST_FONT_SIZE",
    "STYLE",
    "coordinate_color",
    "covariance_ellipse",
    "drawing_into",
    "label_risk_axes",
    "mark_divergence",
    "mark_path_exit",
    "message_figure",
    "new_figure",
    "plot_risk_by_coordinate",
    "plot_simulation",
    "plain_log_ticks",
    "plot_theory",
    "use_course_style",
    "write_divergence",
]

#: Colours of coordinates 1, 2, … (then the total risk in black).
COORDINATE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")

#: Unicode subscript digits, for value-dependent labels drawn without mathtext (faster redraws).
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

#: Widest figure of the book in inches. The site's text column is about 690 CSS px wide at a
#: 1280-px window, so a figure of this width at ``figure.dpi`` = 100 is shown at (nearly) its
#: natural size. Wider content is stacked (``new_figure(nrows=…)``), never shrunk.
FIGURE_WIDTH = 7.0

#: Smallest font size in points of any text in a figure (tick labels, legends, annotations).
#: At 100 dpi shown at natural size that is 11 CSS px; the browser tests check at least 9 px.
SMALLEST_FONT_SIZE = 8.0

#: Matplotlib settings used by every figure of the book.
STYLE = {
    "figure.figsize": (FIGURE_WIDTH, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    # Unhinted glyphs look the same at this size and draw about a fifth faster, which the
    # widgets (one redraw per slider move) notice.
    "text.hinting": "no_hinting",
    # Titles sit just above the axes (no figure has tick labels on top), so Matplotlib need
    # not measure every tick label again on each draw to decide where they go.
    "axes.titley": 1.0,
}


def use_course_style() -> None:
    """Apply :data:`STYLE` to all later Matplotlib figures of this session.

    In a Jupyter kernel (locally, Colab, Binder) figures are also shown from PNGs of twice their
    size (``_show_inline_figures_at_2x``): sharp on 2× screens, at the same size on the page.
    """
    plt.rcParams.update(STYLE)
    _show_inline_figures_at_2x()


# Whether _show_inline_figures_at_2x has set up this kernel.
_INLINE_AT_2X = [False]


def _show_inline_figures_at_2x() -> None:
    """In a Jupyter kernel with the inline backend, save shown figures at twice their resolution.

    The notebook keeps a PNG of 2 × ``figure.dpi`` with its display size (``width``,
    ``height``) in the output's metadata, as IPython's "retina" format does; the book's build
    makes the display-size image from it (``book_ext/figure_links.py``). The image is the
    figure at its own size, as the widgets show theirs: the course's figures are laid out to
    fill it, and Jupyter's default tight bounding box only added a white margin and cost a
    second layout pass (0.1 s of the 0.3 s a figure takes). Works with IPython 7 (Colab) to 9
    and matplotlib-inline; anywhere else (a script, a terminal) it does nothing.
    """
    if _INLINE_AT_2X[0]:
        return
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or "inline" not in matplotlib.get_backend():  # sets up the inline backend first
        return
    try:
        from matplotlib_inline.config import InlineBackend
    except ImportError:  # kernels older than matplotlib-inline
        from ipykernel.pylab.config import InlineBackend
    config = InlineBackend.instance()
    # Kept by the backend's own set-up should it run again; applied now to this kernel.
    config.figure_formats = {"retina"}
    config.print_figure_kwargs = {**config.print_figure_kwargs, "bbox_inches": None}
    select_figure_formats(shell, {"retina"}, **config.print_figure_kwargs)
    _INLINE_AT_2X[0] = True


def coordinate_color(i: int) -> str:
    """Colour of coordinate ``i`` (0-based) in every figure of the book."""
    return COORDINATE_COLORS[i % len(COORDINATE_COLORS)]


#: The figure :func:`new_figure` draws into instead of creating one (set by :func:`drawing_into`).
_TARGET_FIGURE: ContextVar[Figure | None] = ContextVar("nqm_target_figure", default=None)


@contextmanager
def drawing_into(fig: Figure) -> Iterator[Figure]:
    """Make :func:`new_figure`, and so every figure function of the book, redraw ``fig``.

    Inside the ``with`` block :func:`new_figure` clears ``fig`` and adds its axes to it
    instead of creating a new figure, and leaves the layout to whoever owns ``fig``. The
    widgets use this to redraw one figure on every slider move: Matplotlib keeps its caches
    of laid-out text (mathtext parses, text sizes) per canvas, so a figure drawn on the same
    canvas again costs far less than a new one.
    """
    token = _TARGET_FIGURE.set(fig)
    try:
        yield fig
    finally:
        _TARGET_FIGURE.reset(token)


def new_figure(
    ncols: int = 1, *, nrows: int = 1, width: float = FIGURE_WIDTH, height: float = 4.0
) -> tuple[Figure, np.ndarray]:
    """Create a figure with ``nrows`` × ``ncols`` axes in the course style.

    Applies :func:`use_course_style` first (so every figure of the book looks the same, even
    when drawn by a test) and returns the figure and a flat 1-D array of its axes, row by row.
    ``width`` may not exceed :data:`FIGURE_WIDTH`: a wider figure would be shrunk on the site
    until its text is unreadable, so panels that do not fit side by side are stacked instead
    (``nrows=2``). Inside :func:`drawing_into` the target figure is cleared and reused instead.
    """
    if not 0 < width <= FIGURE_WIDTH:
        raise ValueError(
            f"width = {width} in: a figure must be at most FIGURE_WIDTH = {FIGURE_WIDTH} in wide "
            "(stack panels with nrows instead)"
        )
    use_course_style()
    fig = _TARGET_FIGURE.get()
    if fig is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained")
        return fig, axes.ravel()
    for ax in fig.axes:
        ax.remove()  # before clear(), which would first reset every axes only to discard it
    fig.clear()
    fig.set_size_inches(width, height)
    return fig, fig.subplots(nrows, ncols, squeeze=False).ravel()


def label_risk_axes(ax: Axes, *, log: bool = True, ylabel: str = r"$\mathbb{E}[L(\theta_t)]$") -> None:
    """Label ``ax`` as a risk-versus-step plot (log scale by default: rates are exponential).

    A linear step axis gets at most six round whole-number ticks (0, 100, 200, …): enough to
    read a step off, and each tick is text that every widget redraw lays out again.
    """
    ax.set_xlabel("step $t$")
    if ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10], integer=True))
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")


def plot_theory(
    ax: Axes, values: np.ndarray, *, label: str | None = None, color: str = "black", **kwargs: object
) -> None:
    """Draw an exact theory curve ``values[t]``, t = 0, 1, …, as a solid line."""
    ax.plot(np.arange(values.shape[0]), values, color=color, lw=2, label=label, **kwargs)


def plot_simulation(
    ax: Axes,
    mean: np.ndarray,
    stderr: np.ndarray | None = None,
    *,
    label: str | None = None,
    color: str = "black",
    every: int | None = None,
) -> None:
    """Draw a Monte Carlo estimate as dots (thinned to about 40) with a ±2 s.e. band."""
    t = np.arange(mean.shape[0])
    step = every or max(1, mean.shape[0] // 40)
    ax.plot(t[::step], mean[::step], "o", ms=3.5, color=color, alpha=0.8, label=label)
    if stderr is not None:
        lower = np.maximum(mean - 2 * stderr, mean / 10)  # keep the band visible on log axes
        ax.fill_between(t, lower, mean + 2 * stderr, color=color, alpha=0.15, lw=0)


def plot_risk_by_coordinate(
    ax: Axes, h: np.ndarray, theory: np.ndarray, floors: np.ndarray, simulation: SimulationResult
) -> None:
    """Draw the risk split by coordinate: theory, Monte Carlo and noise floor of each, and the total.

    ``theory`` has shape (steps + 1, d), ``floors`` shape (d,); each coordinate keeps its
    colour, the total is black, and the floors are dotted horizontal lines.
    """
    for i in range(theory.shape[1]):
        color = coordinate_color(i)
        plot_theory(
            ax,
            theory[:, i],
            color=color,
            label=f"coordinate {i + 1}: h{str(i + 1).translate(SUBSCRIPTS)} = {h[i]:g}",
        )
        plot_simulation(ax, simulation.risk_per_coordinate[:, i], color=color)
        ax.axhline(floors[i], color=color, ls=":", lw=1)
    plot_theory(ax, theory.sum(axis=1), label=r"total $\mathbb{E}[L(\theta_t)]$")
    plot_simulation(
        ax, simulation.risk, simulation.risk_stderr, label=f"Monte Carlo ({simulation.trials} runs)"
    )


def covariance_ellipse(
    ax: Axes, mean: Sequence[float], cov: np.ndarray, *, n_std: float = 2.0, **kwargs: object
) -> Ellipse:
    """Draw the ``n_std``-standard-deviation ellipse of a 2-D covariance ``cov`` at ``mean``."""
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(cov, dtype=float))
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    angle = np.degrees(np.arctan2(eigenvectors[1, -1], eigenvectors[0, -1]))
    width, height = 2 * n_std * np.sqrt(eigenvalues[::-1])
    ellipse = Ellipse(tuple(mean), width, height, angle=angle, fill=False, **kwargs)
    ax.add_patch(ellipse)
    return ellipse


def message_figure(message: str, *, width: float = FIGURE_WIDTH, height: float = 4.0) -> Figure:
    """A figure that shows ``message`` in the plot area (for a widget setting that cannot be drawn)."""
    fig, (ax,) = new_figure(width=width, height=height)
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        wrap=True,
        fontsize=11,
        color="#b00020",
        transform=ax.transAxes,
    )
    return fig


#: How far above the top of a figure's fixed axes a diverging curve is still computed (the
#: ``ceiling`` of :func:`~nqm_lib.theory.risk_curve_per_coordinate` is this factor times the
#: top): enough for the drawn line to leave through the top edge, far below overflow.
CEILING_FACTOR = 100.0


def _divergence_text(ax: Axes, x: float, y: float, text: str, color: str, edge: str = "top") -> None:
    """``text`` just inside the axes next to the point ``(x, y)`` on their ``edge``, clear of the edge.

    Along a horizontal edge the text extends towards the middle of the axes (so it never runs
    off the side), along a vertical edge it sits on the inner side.
    """
    (left, right), (bottom, top) = ax.get_xlim(), ax.get_ylim()
    if ax.get_yscale() == "log":
        bottom, top, y = np.log(bottom), np.log(top), np.log(y)
    across = (x - left) / (right - left)
    up = (y - bottom) / (top - bottom)
    if edge in ("top", "bottom"):
        dx, ha = (6, "left") if across < 0.6 else (-6, "right")
        dy, va = (-6, "top") if edge == "top" else (6, "bottom")
    else:
        dx, ha = (6, "left") if edge == "left" else (-6, "right")
        dy, va = (-6, "top") if up > 0.5 else (6, "bottom")
    ax.annotate(
        text,
        (x, np.exp(y) if ax.get_yscale() == "log" else y),
        xytext=(dx, dy),
        textcoords="offset points",
        ha=ha,
        va=va,
        fontsize=SMALLEST_FONT_SIZE + 1,
        color=color,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        annotation_clip=False,
    )


def write_divergence(ax: Axes, text: str, *, color: str = "black") -> None:
    """Write ``text`` in the top left corner of ``ax`` (a divergence that leaves no mark of its own)."""
    left, right = ax.get_xlim()
    _divergence_text(ax, left + 0.01 * (right - left), ax.get_ylim()[1], text, color, "top")


def mark_divergence(
    ax: Axes, x: Sequence[float], y: Sequence[float], text: str, *, color: str = "black"
) -> bool:
    """Mark where the curve ``(x, y)`` leaves the top of ``ax``'s fixed y-range; return whether it does.

    Call it after the axes' limits are set. A triangle sits on the top edge where the drawn
    line crosses it (interpolated along the line, in log coordinates on a log axis) and
    ``text`` (e.g. ``"diverges: ηh₁ = 2.5 ≥ 2"``) is written next to it, inside the axes.
    A curve computed with a ``ceiling`` above the top leaves this way when it diverges; one
    that grows too slowly to leave within the steps drawn gets ``text`` in the top left corner.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    top = ax.get_ylim()[1]
    above = np.flatnonzero(y > top)
    if above.size == 0:  # diverging too slowly to leave within the steps drawn: say so anyway
        write_divergence(ax, text, color=color)
        return False
    k = int(above[0])
    crossing = x[k]
    if k > 0:
        scale = np.log if ax.get_yscale() == "log" else (lambda v: v)
        low, high = scale(y[k - 1]), scale(y[k])
        crossing = x[k - 1] + (x[k] - x[k - 1]) * (scale(top) - low) / (high - low)
    ax.plot([crossing], [top], "^", ms=8, color=color, mec="white", mew=0.8, clip_on=False, zorder=6)
    _divergence_text(ax, crossing, top, text, color, "top")
    return True


def mark_path_exit(
    ax: Axes, x: Sequence[float], y: Sequence[float], text: str, *, color: str = "black"
) -> int:
    """Draw an arrow where the path ``(x, y)`` first leaves ``ax``'s fixed view; return its points in view.

    Call it after the limits are set. The arrow runs along the path's first segment that
    crosses the edge, from its last point in view to the edge, and ``text`` (e.g.
    ``"diverges: ηh₁ = 2.5 ≥ 2"``; none if empty) is written just inside the view. Returns
    the number ``k`` of leading points in view (all of them if the path stays in view): draw
    ``x[:k], y[:k]``, so that the jumps of a diverging path outside do not cross the view.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    (left, right), (bottom, top) = ax.get_xlim(), ax.get_ylim()
    outside = np.flatnonzero((x < left) | (x > right) | (y < bottom) | (y > top))
    if outside.size == 0 or outside[0] == 0:
        return x.size if outside.size == 0 else 0
    k = int(outside[0])
    start, end = np.array([x[k - 1], y[k - 1]]), np.array([x[k], y[k]])
    step = end - start
    # the largest fraction of the segment that stays inside the view
    sides = {0: ("left", "right"), 1: ("bottom", "top")}
    limits = [(left, right), (bottom, top)]
    fraction, side = min(
        (((high if step[i] > 0 else low) - start[i]) / step[i], sides[i][int(step[i] > 0)])
        for i, (low, high) in enumerate(limits)
        if step[i]
    )
    point = start + fraction * step
    ax.annotate(
        "",
        point,
        xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.5, "mutation_scale": 16},
        annotation_clip=False,
    )
    if text:
        _divergence_text(ax, point[0], point[1], text, color, side)
    return k


_SUPERSCRIPT_DIGITS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


class _PlainLogFormatter(LogFormatterSciNotation):
    """Matplotlib's log-axis tick labels, the same ticks labelled, in plain text (``10⁻³``, ``2×10⁻³``)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = super().__call__(x, pos)
        math = re.fullmatch(r"\$\\mathdefault\{(.*)\}\$", label)
        if math is None:
            return label
        superscript = lambda power: power.group(1).translate(_SUPERSCRIPT_DIGITS)  # noqa: E731
        return re.sub(r"\^\{(-?\d+)\}", superscript, math.group(1)).replace(r"\times", "×")


class _ShortAxisMinorLocator(LogLocator):
    """Matplotlib's minor log ticks where the view spans less than two decades, and none elsewhere."""

    def __init__(self, base: float) -> None:
        super().__init__(base, subs="auto")
        self.decade = float(base)

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        """The minor ticks of a short view (Matplotlib labels some of them), else none."""
        if vmin > 0 and vmax > 0 and abs(math.log(vmax / vmin, self.decade)) < 2:
            return super().tick_values(vmin, vmax)
        return np.array([])


def plain_log_ticks(ax: Axes) -> None:
    """Label the log axes of ``ax`` as Matplotlib does, but in plain text, and drop unlabelled minor ticks.

    The same ticks get the same labels — ``10⁻³`` for ``$10^{-3}$``, ``2×10⁻³`` where an axis
    shorter than two decades labels minor ticks — written with Unicode superscripts; an axis of
    two decades or more keeps its decades and loses the unlabelled minor ticks in between.
    Mathtext has to be parsed and laid out again on every new canvas, and every tick is laid out
    when the figure is: a log–log figure draws about a third faster. Call it after the axes'
    scales are set (``set_yscale("log")`` installs new locators and formatters).
    """
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            base = axis.get_transform().base
            axis.set_major_formatter(_PlainLogFormatter(base))
            axis.set_minor_formatter(_PlainLogFormatter(base, labelOnlyBase=False))
            axis.set_minor_locator(_ShortAxisMinorLocator(base))
