"""PyTorch's learning-rate schedulers, stepped call by call (chapters 7 and 8).

:func:`scheduler_learning_rates` records the learning rate that ``torch.optim`` would use at
each step under a scheduler of ``torch.optim.lr_scheduler``, stepping it the way a training
loop does (``optimizer.step()``, then ``scheduler.step()``). :class:`EpochwiseSGDRisk` is a
metric for ``ReduceLROnPlateau``: the exact expected risk of SGD on an NQM, advanced by one
epoch of constant learning rate per call.

``import nqm_lib`` does not import this module (nor PyTorch); import it explicitly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from . import formulas
from .problem import NQM
from .validation import InstabilityError, check_batch_size, check_positive, check_steps

__all__ = ["EpochwiseSGDRisk", "scheduler_learning_rates"]


def scheduler_learning_rates(
    make_scheduler: Callable[[torch.optim.Optimizer], object],
    steps: int,
    *,
    lr: float = 0.1,
    metric: Callable[[float], float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The learning rates a scheduler produces over ``steps`` calls of ``scheduler.step()``.

    ``make_scheduler(optimizer)`` builds the scheduler for a ``torch.optim.SGD`` optimiser
    whose ``lr`` is ``lr`` (η₀). Each step records the learning rate in use
    (``optimizer.param_groups[0]["lr"]``), calls ``optimizer.step()`` and then
    ``scheduler.step()`` — or, with a ``metric``, ``scheduler.step(metric(η))``, as
    ``ReduceLROnPlateau`` needs, where ``metric`` is called with the rate just used.

    Returns ``(rates, metrics)``: the ``steps`` rates used, and the metric values (an empty
    array without a ``metric``).
    """
    steps = check_steps(steps)
    lr = check_positive("lr", lr)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates, metrics = [], []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # (a step or an epoch of training would go here)
        if metric is None:
            scheduler.step()
        else:
            metrics.append(float(metric(rates[-1])))
            scheduler.step(metrics[-1])
    return np.array(rates), np.array(metrics)


class EpochwiseSGDRisk:
    """Exact expected risk of SGD on an NQM, advanced by one epoch per call (chapter 7).

    Calling the object with a learning rate ``η`` runs ``steps_per_epoch`` more steps of SGD
    with that constant rate and returns the exact ``E[L(θ_t)]`` after them. The expected
    risk depends on the start only through the second moments ``E[θ_i²]``, so each epoch
    starts from the second moments the previous one ended with (the first from
    ``problem.theta0``). Use it as the metric of ``ReduceLROnPlateau`` in
    :func:`scheduler_learning_rates`.
    """

    def __init__(self, problem: NQM, steps_per_epoch: int, *, batch_size: int = 1) -> None:
        if not isinstance(problem, NQM):
            raise TypeError(f"problem must be an nqm_lib.NQM, got {type(problem).__name__}")
        self.problem = problem
        self.steps_per_epoch = check_steps(steps_per_epoch, "steps_per_epoch")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be an integer >= 1, got {self.steps_per_epoch}")
        self.batch_size = check_batch_size(batch_size)
        self.second_moment = np.array(problem.theta0, dtype=float) ** 2

    def __call__(self, lr: float) -> float:
        """Run one epoch with learning rate ``lr``; return ``E[L]`` at its end."""
        lr = check_positive("lr", lr)
        p = self.problem
        if np.any(lr * p.h >= 2):
            raise InstabilityError(f"lr = {lr!r} is unstable: lr · h_1 = {lr * p.h.max():.3g} must be < 2")
        risk = formulas.sgd_risk(
            p.h, p.c, np.sqrt(self.second_moment), self.steps_per_epoch, lr=lr, batch_size=self.batch_size
        )
        self.second_moment = 2 * risk / p.h
        return float(np.sum(risk * p.counts))
