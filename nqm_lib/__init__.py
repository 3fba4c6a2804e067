"""nqm_lib: exact theory, simulation, plots and widgets for the NQM course.

The public API (each function names the chapter that introduces it in its module):

- :class:`~nqm_lib.problem.NQM` — the problem (chapter 1);
- :func:`~nqm_lib.theory.risk_curve`, :func:`~nqm_lib.theory.steady_state_risk` and their
  per-coordinate variants — exact expected risk from the second-moment dynamics (chapters 2–5);
- :func:`~nqm_lib.simulation.simulate`, :func:`~nqm_lib.simulation.sample_minibatch_gradients` —
  seeded, vectorised Monte Carlo, :func:`~nqm_lib.simulation.sample_path` for the iterates of
  one run (chapters 2–3), and :func:`~nqm_lib.simulation.trajectory_risk` for iterates
  made elsewhere (PyTorch's, chapter 7);
- :mod:`nqm_lib.formulas` — the closed forms the chapters display;
- :mod:`nqm_lib.heavy_ball`, :mod:`nqm_lib.momentum_conventions` and :mod:`nqm_lib.acceleration`
  (chapter 3) — imported on their own;
- :mod:`nqm_lib.averaging` (chapter 4), :mod:`nqm_lib.batch_scaling` (chapter 6),
  :mod:`nqm_lib.torch_nqm` (chapter 7, imports PyTorch), :mod:`nqm_lib.adaptive` and
  :mod:`nqm_lib.schedules` (chapter 9), :mod:`nqm_lib.networks` (chapter 10, imports PyTorch) —
  imported on their own;
- :mod:`nqm_lib.plotting`, :mod:`nqm_lib.widgets`, :mod:`nqm_lib.figures` and the
  ``figures_<topic>`` modules — one plotting style and the interactive figures of the chapters.
"""

from .dynamics import Hyperparams, max_stable_lr
from .problem import NQM
from .simulation import (
    SimulationResult,
    sample_minibatch_gradients,
    sample_path,
    simulate,
    trajectory_risk,
)
from .theory import (
    risk_curve,
    risk_curve_per_coordinate,
    steady_state_risk,
    steady_state_risk_per_coordinate,
)
from .validation import InstabilityError

__version__ = "0.1.0"

__all__ = [
    "NQM",
    "Hyperparams",
    "InstabilityError",
    "SimulationResult",
    "max_stable_lr",
    "risk_curve",
    "risk_curve_per_coordinate",
    "sample_minibatch_gradients",
    "sample_path",
    "simulate",
    "steady_state_risk",
    "steady_state_risk_per_coordinate",
    "trajectory_risk",
]
