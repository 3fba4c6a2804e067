"""Every interactive figure of the book, declared once: its figure function and its controls.

A declaration (:class:`InteractiveFigure`) is the single source of truth for both places a
reader meets the figure:

* in a running notebook (Jupyter, Colab, Binder), ``explore("sgd_risk")`` (see
  :func:`nqm_lib.widgets.explore`) makes one ipywidgets control per :class:`Control` — the
  continuous range — and the kernel redraws the figure on every move;
* on the static site, the Sphinx extension ``book_ext/live_figures.py`` draws the figure
  once for every combination of the controls' *site values* (the grid below) at build time,
  and the page swaps these frames when the reader moves a control. Only the controls listed
  in ``live`` move on the site (all of them when the combinations fit the budget); the others
  stay at their defaults there, and the page's note says so.

A declared figure function keeps its axes (limits, scales, ticks) over the whole range of every
control, so that what a control changes is what moves, and draws an unstable setting leaving
its axes rather than refusing it (``tests/test_interactive.py`` checks every site frame and both
ends of every slider). Limits that depend on a control's range are keyword arguments of the
figure function, set here in ``fixed`` where a declaration's range differs from the default.

To adjust what the site precomputes, edit the ``site`` grid of a control (every grid contains
the default, the value the page opens with) or the ``live`` tuple of a figure. Frames are
cached by the build, keyed by the library's sources and the declaration, so a change here
renders that figure again on the next ``make book``.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure

__all__ = ["FIGURES", "Control", "InteractiveFigure", "declaration", "site_grid"]

KINDS = ("log", "float", "int", "selection", "dropdown", "multiple", "checkbox")


def _round(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant digits (grid values that read well next to a slider)."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def site_grid(
    low: float, high: float, count: int, default: float, *, log: bool = False, integer: bool = False
) -> tuple:
    """``count`` values from ``low`` to ``high`` (log-spaced if ``log``), one of them ``default``.

    The values are evenly spaced (in log if ``log``) and rounded to 3 significant digits (to
    whole numbers if ``integer``) inside ``[low, high]``; the one nearest ``default`` is
    replaced by ``default``, so the grid keeps its spacing and the site opens on the figure
    the notebook shows first.

    Raises
    ------
    ValueError
        If ``count < 2``, ``low >= high``, ``low <= 0`` with ``log``, or ``default`` outside
        ``[low, high]``.

    """
    if count < 2:
        raise ValueError(f"count = {count}: a grid needs at least 2 values")
    if not low < high:
        raise ValueError(f"low = {low}, high = {high}: need low < high")
    if log and low <= 0:
        raise ValueError(f"low = {low}: a log-spaced grid needs low > 0")
    if not low <= default <= high:
        raise ValueError(f"default = {default} is outside [{low}, {high}]")
    if log:
        raw = [
            math.exp(math.log(low) + k * (math.log(high) - math.log(low)) / (count - 1)) for k in range(count)
        ]
        distance = [abs(math.log(v) - math.log(default)) for v in raw]
    else:
        raw = [low + k * (high - low) / (count - 1) for k in range(count)]
        distance = [abs(v - default) for v in raw]
    values = [int(round(v)) if integer else min(max(_round(v), low), high) for v in raw]
    values[distance.index(min(distance))] = default
    unique = sorted(set(values))
    if len(unique) < len(values):
        raise ValueError(
            f"count = {count} values do not fit between {low} and {high}"
            + (" as whole numbers" if integer else "")
        )
    return tuple(unique)


@dataclass(frozen=True)
class Control:
    """One control of an interactive figure: a keyword argument of its figure function.

    Parameters
    ----------
    name
        The figure function's keyword argument.
    label
        What the control is called on screen (the course's symbol, e.g. ``"η"``).
    default
        The value the figure opens with (in the notebook and on the site).
    kind
        The notebook widget: ``"log"`` (``FloatLogSlider``, ``minimum``/``maximum`` are base-10
        exponents), ``"float"`` (``FloatSlider``), ``"int"`` (``IntSlider``), ``"selection"``
        (``SelectionSlider`` over ``options``), ``"dropdown"``, ``"multiple"`` (one checkbox
        per option, :class:`~nqm_lib.widgets.CheckboxGroup`; values are tuples of the
        checked options) or ``"checkbox"``.
    site
        The values the site precomputes (must contain ``default``); empty means ``options``
        (or ``(False, True)`` for a checkbox).
    minimum, maximum, step
        The notebook slider's continuous range (exponents for ``"log"``).
    options
        The choices of ``"selection"``, ``"dropdown"`` and ``"multiple"``: values, or
        ``(text, value)`` pairs as ipywidgets accepts them.

    """

    name: str
    label: str
    default: object
    kind: str
    site: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: tuple = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind = {self.kind!r}: must be one of {KINDS}")
        if self.default not in self.site_values:
            raise ValueError(
                f"default = {self.default!r} of control {self.name!r} is not among its site values"
            )

    @property
    def log(self) -> bool:
        """Whether the control moves on a log scale (its site grid is log-spaced)."""
        return self.kind == "log"

    @property
    def site_values(self) -> tuple:
        """The values the site precomputes, in the order the site's control steps through them."""
        if self.site:
            return tuple(self.site)
        if self.kind == "checkbox":
            return (False, True)
        return tuple(option[1] if isinstance(option, tuple) else option for option in self.options)

    def text(self, value: object) -> str:
        """How the site shows ``value`` next to the control."""
        if self.kind == "checkbox":
            return "on" if value else "off"
        names = dict((o[1], o[0]) if isinstance(o, tuple) else (o, str(o)) for o in self.options)
        if self.kind == "multiple":
            return " + ".join(names[v] for v in value) if value else "none"
        if self.kind in ("selection", "dropdown") and value in names:
            return names[value] if isinstance(value, str) else str(value)
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    def widget_arguments(self) -> tuple[str, dict[str, object]]:
        """The notebook widget as ``(ipywidgets class name, constructor arguments)``.

        Only arguments that ipywidgets 7.2 and later accept (Colab runs 7.x, this course 8.x);
        the tests check them against ipywidgets 7's API. ``"multiple"`` names
        :class:`~nqm_lib.widgets.CheckboxGroup`, the course's own widget.
        """
        common = {"value": self.default, "description": self.label}
        if self.kind in ("log", "float"):
            limits = {"min": self.minimum, "max": self.maximum, "step": self.step}
            extra = {"base": 10} if self.kind == "log" else {}
            return ("FloatLogSlider" if self.kind == "log" else "FloatSlider", {**common, **extra, **limits})
        if self.kind == "int":
            return "IntSlider", {**common, "min": self.minimum, "max": self.maximum}
        classes = {"selection": "SelectionSlider", "dropdown": "Dropdown", "multiple": "CheckboxGroup"}
        if self.kind in classes:
            return classes[self.kind], {**common, "options": list(self.options)}
        return "Checkbox", common

    def widget(self) -> object:
        """A new ipywidgets control for the notebook (see :meth:`widget_arguments`)."""
        import ipywidgets

        from .widgets import CheckboxGroup

        name, arguments = self.widget_arguments()
        return (CheckboxGroup if name == "CheckboxGroup" else getattr(ipywidgets, name))(**arguments)


@dataclass(frozen=True)
class InteractiveFigure:
    """An interactive figure: a figure function of :mod:`nqm_lib` and its controls.

    Parameters
    ----------
    id
        Short name, used by ``explore(id)`` and in the site's frame folder.
    function
        ``"module:function"`` of the figure function (imported when first needed, so that
        declaring a figure costs nothing until it is drawn).
    controls
        One :class:`Control` per keyword argument a reader can move, in display order.
    live
        Names of the controls the site precomputes; empty means all of them.
    lesson
        When not every control is live: why these are the ones (the site's note says it).
    fixed
        Further keyword arguments passed on every call.

    """

    id: str
    function: str
    controls: tuple[Control, ...]
    live: tuple[str, ...] = ()
    lesson: str = ""
    fixed: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [c.name for c in self.controls]
        unknown = sorted(set(self.live) - set(names))
        if unknown:
            raise ValueError(f"live = {self.live}: {unknown} are not controls of {self.id!r} ({names})")
        if self.live and len(self.live) < len(names) and not self.lesson:
            raise ValueError(f"{self.id!r}: say in `lesson` why only {self.live} are live on the site")

    @property
    def figure_function(self) -> Callable[..., Figure]:
        """The figure function, imported from its ``"module:function"`` name."""
        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def live_controls(self) -> tuple[Control, ...]:
        """The controls that move on the site, in display order."""
        return tuple(c for c in self.controls if not self.live or c.name in self.live)

    @property
    def defaults(self) -> dict[str, object]:
        """Keyword arguments of the default figure (fixed ones and every control's default)."""
        return {**self.fixed, **{c.name: c.default for c in self.controls}}

    @property
    def frame_count(self) -> int:
        """Number of frames the site precomputes (the product of the live grids' sizes)."""
        return math.prod(len(c.site_values) for c in self.live_controls)

    def frames(self) -> Iterator[tuple[int, dict[str, object]]]:
        """``(frame index, keyword arguments)`` for every combination of the live site values.

        The index is mixed-radix with the first live control varying slowest, so the page
        finds a frame as ``Σ position_k × stride_k``.
        """
        grids = [c.site_values for c in self.live_controls]
        for index, values in enumerate(itertools.product(*grids)):
            yield (
                index,
                {**self.defaults, **dict(zip((c.name for c in self.live_controls), values, strict=True))},
            )

    def frame_index(self, **values: object) -> int:
        """Index of the frame for ``values`` of the live controls (defaults for the others)."""
        index = 0
        for control in self.live_controls:
            grid = control.site_values
            index = index * len(grid) + grid.index(values.get(control.name, control.default))
        return index

    def widgets(self) -> dict[str, object]:
        """New ipywidgets controls, one per :class:`Control`, keyed by argument name."""
        return {c.name: c.widget() for c in self.controls}

    def fingerprint(self) -> str:
        """A hash of the declaration (what the site's frames depend on besides the code)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def _log_slider(
    name: str, label: str, default: float, low: float, high: float, step: float, count: int
) -> Control:
    """A ``FloatLogSlider`` control from ``10**low`` to ``10**high`` and a log grid of ``count`` values."""
    return Control(
        name,
        label,
        default,
        "log",
        site_grid(10**low, 10**high, count, default, log=True),
        minimum=low,
        maximum=high,
        step=step,
    )


def _linear_slider(
    name: str, label: str, default: float, low: float, high: float, step: float, count: int
) -> Control:
    """A ``FloatSlider`` control and an evenly spaced grid of ``count`` values."""
    return Control(
        name,
        label,
        default,
        "float",
        site_grid(low, high, count, default),
        minimum=low,
        maximum=high,
        step=step,
    )


#: Batch sizes are powers of two on every site grid (the chapters' own choice of values).
def _batch(default: int, options: Sequence[int], site: Sequence[int] | None = None) -> Control:
    return Control("batch_size", "B", default, "selection", tuple(site or options), options=tuple(options))


def _subsets(options: Sequence[object]) -> tuple[tuple, ...]:
    """Every non-empty subset of ``options``, as tuples in option order, smallest first."""
    return tuple(s for k in range(1, len(options) + 1) for s in itertools.combinations(options, k))


_THETAS = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
_METHODS = ("SGD", "momentum", "EMA")  # nqm_lib.figures_batch_size.METHODS
_PRECOND_POWERS = (0.0, 0.25, 0.5, 0.75)  # nqm_lib.figures_batch_size.PRECOND_POWERS
# the same keys and names as nqm_lib.network_results.OPTIMISERS
_NETWORK_OPTIMISERS = {"sgd": "SGD", "momentum": "momentum", "adam": "Adam", "ema": "SGD + EMA"}

_DECLARATIONS = (
    InteractiveFigure(
        "gradient_noise",
        "nqm_lib.figures:gradient_noise_figure",
        (
            Control("batch_size", "B", 1, "int", (1, 2, 4, 8, 16, 32, 64), minimum=1, maximum=64),
            Control("theta1", "θ₁", 1.0, "float", _THETAS, minimum=-2.0, maximum=2.0, step=0.1),
            Control("theta2", "θ₂", 1.0, "float", _THETAS, minimum=-2.0, maximum=2.0, step=0.1),
        ),
        live=("batch_size", "theta1"),
        lesson="B shrinks the cloud of minibatch gradients as C/B; moving θ₁ moves its centre Hθ",
    ),
    InteractiveFigure(
        "sgd_path",
        "nqm_lib.figures:path_figure",
        (
            Control(
                "lr", "η", 0.035, "log", (0.001, 0.002, 0.004, 0.008, 0.0175, 0.035, 0.06),
                minimum=-3, maximum=math.log10(0.06), step=0.05,
            ),
            _batch(64, (1, 4, 16, 64, 256, 1024, 4096)),
        ),
        fixed={"view": (1.5, -0.2, 1.2)},  # without momentum no path crosses far left of θ₂ = 0
    ),
    InteractiveFigure(
        "sgd_risk",
        "nqm_lib.figures:sgd_risk_figure",
        (
            _log_slider("lr", "η", 0.02, -3.5, math.log10(0.06), 0.05, 10),
            _batch(1, (1, 2, 4, 8, 16, 32, 64, 128, 256)),
            _log_slider("h1", "h₁", 50.0, 0, 2, 0.1, 7),
            _log_slider("h2", "h₂", 1.0, -2, 0, 0.1, 7),
            _log_slider("c1", "c₁", 50.0, -1, 2, 0.1, 7),
            _log_slider("c2", "c₂", 1.0, -1, 2, 0.1, 7),
        ),
        live=("lr", "batch_size"),
        lesson="η and B set the speed of each coordinate and the noise floor, the chapter's trade-off",
    ),
    InteractiveFigure(
        "momentum_path",
        "nqm_lib.figures:path_figure",
        (
            Control(
                "lr", "η", 0.0175, "log", (0.001, 0.002, 0.0045, 0.0175, 0.035, 0.1),
                minimum=-3, maximum=-1, step=0.05,
            ),
            Control(
                "momentum", "β", 0.5, "float", (0.0, 0.25, 0.5, 0.7, 0.85, 0.95),
                minimum=0.0, maximum=0.95, step=0.05,
            ),
            _batch(64, (1, 4, 16, 64, 256, 1024, 4096), (1, 4, 16, 64, 256, 4096)),
        ),
    ),
    InteractiveFigure(
        "momentum_risk",
        "nqm_lib.figures_momentum:momentum_risk_figure",
        (
            _log_slider("lr", "η", 0.005, -4, -1, 0.05, 6),
            Control(
                "momentum",
                "β",
                0.8,
                "float",
                (0.0, 0.5, 0.8, 0.9, 0.95, 0.99),
                minimum=0.0,
                maximum=0.99,
                step=0.01,
            ),
            _batch(1, (1, 4, 16, 64, 256, 1024, 4096), (1, 4, 16, 64, 256, 4096)),
        ),
    ),
    InteractiveFigure(
        "ema_risk",
        "nqm_lib.figures_ema:ema_risk_figure",
        (
            Control(
                "ema_decay",
                "γ",
                0.9,
                "selection",
                (0.0, 0.8, 0.9, 0.95, 0.98, 0.99),
                options=(0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995),
            ),
            _batch(1, (1, 4, 16, 64, 256, 1024, 4096), (1, 4, 16, 64, 256, 4096)),
            _log_slider("lr", "η", 0.02, -3, math.log10(0.045), 0.05, 6),
        ),
    ),
    InteractiveFigure(
        "averaging",
        "nqm_lib.figures_ema:averaging_figure",
        (
            _batch(64, (1, 4, 16, 64, 256, 1024)),
            Control("ema_decay", "γ", 0.98, "selection", options=(0.9, 0.95, 0.98, 0.99, 0.995)),
            Control("tail_fraction", "tail fraction", 0.5, "selection", options=(0.1, 0.25, 0.5, 0.75, 1.0)),
        ),
    ),
    InteractiveFigure(
        "preconditioned_risk",
        "nqm_lib.figures_preconditioning:preconditioned_risk_figure",
        (
            Control(
                "precond_power",
                "p",
                0.5,
                "float",
                (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0),
                minimum=0.0,
                maximum=1.0,
                step=0.05,
            ),
            _batch(1, (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), (1, 4, 16, 64, 256, 1024)),
            _log_slider("lr", "η", 0.1, -3, math.log10(2.5), 0.05, 6),
        ),
    ),
    InteractiveFigure(
        "steps_vs_batch",
        "nqm_lib.figures_batch_size:steps_vs_batch_figure",
        (
            Control(
                "methods",
                "methods",
                ("SGD", "momentum", "EMA"),
                "multiple",
                _subsets(_METHODS),
                options=_METHODS,
            ),
            Control(
                "precond_powers",
                "p",
                (0.0,),
                "multiple",
                _subsets(_PRECOND_POWERS),  # every set the site's check boxes can make
                options=tuple((f"p = {p:g}", p) for p in _PRECOND_POWERS),
            ),
            Control("show_critical", "critical B", True, "checkbox"),
        ),
    ),
    InteractiveFigure(
        "minibatch_noise",
        "nqm_lib.figures_pytorch:minibatch_noise_figure",
        (
            Control("batch_size", "B", 32, "int", (1, 2, 4, 8, 16, 32, 64, 128), minimum=1, maximum=128),
            Control("n_examples", "N", 64, "selection", options=(16, 32, 64, 128)),
        ),
    ),
    InteractiveFigure(
        "optimiser_paths",
        "nqm_lib.figures_adaptive:optimiser_paths_figure",
        (
            Control(
                "optimiser", "optimiser", "Adam", "dropdown", options=("SGD", "AdaGrad", "RMSProp", "Adam")
            ),
            _log_slider("lr", "η", 0.05, -3, 0.5, 0.05, 6),
            _batch(8, (1, 2, 4, 8, 16, 32, 64, 200), (1, 2, 8, 16, 64, 200)),
            _linear_slider("feature_mean", "z̄", 2.0, 0.0, 3.0, 0.25, 7),
        ),
        live=("optimiser", "lr", "batch_size"),
        lesson="the optimiser and its step size η decide the path, on the chapter's problem",
        fixed={"feature_means": (0.0, 3.0)},  # the view holds the minimiser for every z̄ of the slider
    ),
    InteractiveFigure(
        "network_curve",
        "nqm_lib.figures_network:network_curve_figure",
        (
            Control(
                "optimiser",
                "optimiser",
                "sgd",
                "dropdown",
                options=tuple((name, key) for key, name in _NETWORK_OPTIMISERS.items()),
            ),
            # the sweep's batch sizes in the notebook; every fourfold step on the site (24 frames)
            _batch(16, (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), site=(1, 4, 16, 64, 256, 1024)),
        ),
    ),
    InteractiveFigure(
        "landscape",
        "nqm_lib.figures_adaptive:landscape_figure",
        (
            _linear_slider("noise_std", "noise std", 10.0, 0.0, 40.0, 1.0, 9),
            Control(
                "lr", "η", 0.03, "log", (0.0032, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1),
                minimum=-2.5, maximum=-1, step=0.05,
            ),
        ),
    ),
    InteractiveFigure(  # "PyTorch in practice": L2 in Adam against AdamW's decoupled decay
        "weight_decay_paths",
        "nqm_lib.figures_pytorch_practice:weight_decay_paths_figure",
        (
            _log_slider("weight_decay", "λ", 0.1, -9, 0, 0.25, 10),
            _log_slider("lr", "η", 0.01, -3, -1.5, 0.05, 6),
        ),
    ),
)

#: Every interactive figure of the book, by id.
FIGURES: dict[str, InteractiveFigure] = {figure.id: figure for figure in _DECLARATIONS}


def declaration(
    key: str | Callable[..., Figure] | InteractiveFigure, controls: Sequence[str] | None = None
) -> InteractiveFigure:
    """The declaration for an id, a figure function (or its name), or a declaration itself.

    A figure function shown in two places with different controls (chapter 2's and chapter 3's
    ``path_figure``) has two declarations: ``controls``, the names of the controls passed to
    ``explore``, says which one.

    Raises
    ------
    ValueError
        If nothing is declared under ``key`` (with these ``controls``), or several are.

    """
    if isinstance(key, InteractiveFigure):
        return key
    name = key if isinstance(key, str) else getattr(key, "__name__", repr(key))
    if name in FIGURES:
        return FIGURES[name]
    found = [f for f in FIGURES.values() if f.function.split(":")[1] == name]
    if controls is not None and len(found) > 1:
        found = [f for f in found if [c.name for c in f.controls] == list(controls)]
    if len(found) == 1:
        return found[0]
    raise ValueError(
        f"key = {name!r}, controls = {controls}: "
        + (f"{len(found)} declarations match" if found else "no interactive figure declared for it")
        + f" (ids: {sorted(FIGURES)})"
    )
