"""Steps to a target risk and their scaling with the batch size, exactly and fast (chapter 6).

Chapter 6 asks how many steps an optimiser needs before its expected risk reaches a target, how
that count falls as the batch size ``B`` grows with the hyperparameters tuned for every ``B``
(Zhang et al., 2019), and how close any algorithm could get. One module per concern, every public
name importable from here (``from nqm_lib.batch_scaling import tuned_steps_to_target``):

- :mod:`~nqm_lib.batch_scaling.grids` — the paper's hyperparameter grids and the argument checks;
- :mod:`~nqm_lib.batch_scaling.exact` — the exact risk at any step, without iterating
  (:func:`risk_at_step`, :func:`risk_at_steps`, and the closed forms the searches use);
- :mod:`~nqm_lib.batch_scaling.search` — steps to target as an exact first crossing, for one
  setting (:func:`steps_to_target`), a grid (:func:`steps_to_target_grid`) or tuned per batch size
  (:func:`tuned_steps_to_target`);
- :mod:`~nqm_lib.batch_scaling.critical` — the critical batch size (:func:`critical_batch_size`);
- :mod:`~nqm_lib.batch_scaling.bound` — the information-theoretic lower bound for any algorithm
  (:func:`information_bound_risk`, :func:`information_bound_steps`);
- :mod:`~nqm_lib.batch_scaling.piecewise` — optimised piecewise-constant schedules of plain SGD
  (:func:`optimal_piecewise_schedule`, :func:`scheduled_steps_to_target`);
- :mod:`~nqm_lib.batch_scaling.per_step` — learning rates that change at every step: the Chebyshev
  steps of plain SGD (:func:`chebyshev_lrs`, :func:`chebyshev_steps_to_target`) and the exact risk
  after any sequence of rates (:func:`per_step_schedule_risk`).
"""

from .bound import information_bound_risk, information_bound_steps
from .critical import critical_batch_size
from .exact import risk_at_step, risk_at_steps
from .grids import DEFAULT_MAX_STEPS, PAPER_DECAYS, PAPER_LRS, PAPER_SGD_LRS
from .per_step import chebyshev_lrs, chebyshev_steps_to_target, per_step_schedule_risk
from .piecewise import (
    SCHEDULE_PIECES,
    PiecewiseSchedule,
    ScheduledSteps,
    optimal_piecewise_schedule,
    piecewise_schedule_risk,
    scheduled_steps_to_target,
)
from .search import TunedSteps, steps_to_target, steps_to_target_grid, tuned_steps_to_target

# In the order of the concerns above (the reference page lists the names in this order).
__all__ = [
    "DEFAULT_MAX_STEPS",
    "PAPER_LRS",
    "PAPER_DECAYS",
    "PAPER_SGD_LRS",
    "risk_at_step",
    "risk_at_steps",
    "steps_to_target",
    "steps_to_target_grid",
    "tuned_steps_to_target",
    "TunedSteps",
    "critical_batch_size",
    "information_bound_risk",
    "information_bound_steps",
    "SCHEDULE_PIECES",
    "piecewise_schedule_risk",
    "optimal_piecewise_schedule",
    "PiecewiseSchedule",
    "scheduled_steps_to_target",
    "ScheduledSteps",
    "chebyshev_lrs",
    "per_step_schedule_risk",
    "chebyshev_steps_to_target",
]
