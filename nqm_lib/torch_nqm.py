"""The NQM as a PyTorch problem, and ``torch.optim.SGD`` run on it (chapter 7).

This module is the bridge between the course's theory and PyTorch. :class:`TorchNQM` is an
``nn.Module`` whose minibatch loss has exactly the minibatch gradient of the NQM;
:func:`minibatch_stream` yields the same random minibatches that :func:`~nqm_lib.simulation.simulate`
draws for a given seed; :func:`torch_sgd_trajectory` feeds them to ``torch.optim.SGD`` (and,
for an EMA, to ``torch.optim.swa_utils.AveragedModel``). With the same seed, PyTorch then
reproduces :func:`~nqm_lib.simulation.simulate` to floating-point rounding, and PyTorch's
``weight_decay=λ`` reproduces the NQM whose curvatures are all shifted by ``λ``
(:meth:`~nqm_lib.problem.NQM.with_weight_decay`).

``import nqm_lib`` does not import this module (nor PyTorch); import it explicitly::

    from nqm_lib import torch_nqm
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .dynamics import Hyperparams, check_stable
from .problem import NQM
from .validation import check_batch_size, check_nonnegative, check_steps

__all__ = [
    "TorchNQM",
    "check_weight_decay",
    "minibatch_stream",
    "torch_sgd_trajectory",
]


def _check_problem(problem: object) -> NQM:
    if not isinstance(problem, NQM):
        raise TypeError(f"problem must be an nqm_lib.NQM, got {type(problem).__name__}")
    return problem


def _check_trials(trials: object) -> int:
    trials = check_steps(trials, "trials")
    if trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    return trials


def check_weight_decay(value: object) -> float:
    """Return the weight decay ``λ`` (chapter 7) as a float; ``ValueError`` unless finite and ``>= 0``."""
    return check_nonnegative("weight_decay", value)


def minibatch_stream(
    problem: NQM, *, batch_size: int = 1, trials: int = 1, seed: int = 0
) -> Iterator[np.ndarray]:
    """Yield, step after step, the minibatch draws ``simulate`` makes with ``seed`` (chapter 7).

    The draws come from ``numpy.random.default_rng(seed)`` in the order of
    ``nqm_lib.simulation._noisy_gradient``:

    - data-model problem (:meth:`~nqm_lib.problem.NQM.from_data_model`): ``batch_size`` data points per trial,
      ``x ~ N(0, diag(σ²))``, an array of shape ``(trials, batch_size, d)``;
    - otherwise: the minibatch gradient noise ``ε ~ N(0, diag(c) / B)``, shape ``(trials, d)``.

    The stream never ends; take as many steps as needed.
    """
    problem = _check_problem(problem)
    batch_size = check_batch_size(batch_size)
    trials = _check_trials(trials)
    rng = np.random.default_rng(seed)
    if problem.sigma is not None:
        while True:
            yield rng.standard_normal((trials, batch_size, problem.d)) * problem.sigma
    scale = np.sqrt(problem.c / batch_size)
    while True:
        yield rng.standard_normal((trials, problem.d)) * scale


class TorchNQM(nn.Module):
    """The NQM as a PyTorch model (chapter 7): parameters ``θ`` of shape ``(trials, d)``, one row per run.

    The rows are independent copies of the problem, so one optimiser step of
    ``torch.optim.SGD`` (which acts element by element) advances every run at once. The
    :meth:`forward` pass returns the minibatch loss summed over the runs; its gradient with
    respect to row ``k`` is that run's minibatch gradient:

    - data model: ``ℓ(θ; x) = ½ Σ_i h_i (x_i − θ_i)²`` averaged over the minibatch, whose
      gradient is ``h ⊙ (θ − x̄)``;
    - otherwise: ``½ Σ_i h_i θ_i² + ε · θ``, whose gradient is ``h ⊙ θ + ε``.

    Everything is float64.
    """

    def __init__(self, problem: NQM, trials: int = 1) -> None:
        super().__init__()
        problem = _check_problem(problem)
        trials = _check_trials(trials)
        self.is_data_model = problem.sigma is not None
        self.register_buffer("h", torch.tensor(problem.h, dtype=torch.float64))
        start = np.broadcast_to(problem.theta0, (trials, problem.d)).copy()
        self.theta = nn.Parameter(torch.tensor(start, dtype=torch.float64))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Minibatch loss summed over runs; ``batch`` is one draw of :func:`minibatch_stream`."""
        if self.is_data_model:
            residual = batch - self.theta.unsqueeze(-2)  # (trials, B, d)
            return (0.5 * self.h * residual**2).sum(dim=-1).mean(dim=-1).sum()
        return (0.5 * self.h * self.theta**2 + batch * self.theta).sum()


def torch_sgd_trajectory(
    problem: NQM,
    steps: int,
    *,
    lr: float,
    batch_size: int = 1,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    ema_decay: float = 0.0,
    trials: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Run ``torch.optim.SGD`` on :class:`TorchNQM` with the draws of :func:`minibatch_stream` (chapter 7).

    The optimiser is ``torch.optim.SGD(lr=η, momentum=β, dampening=0, weight_decay=λ)``: one
    step is ``g ← ∇ + λθ``, ``v ← βv + g``, ``θ ← θ − ηv``. With ``ema_decay = γ > 0`` an
    ``AveragedModel`` with ``get_ema_multi_avg_fn(γ)`` tracks ``θ̃ ← γθ̃ + (1 − γ)θ``; it is
    updated once before the first step so that ``θ̃(0) = θ(0)``, as in the course.

    Returns
    -------
    numpy.ndarray
        The reported iterate (``θ̃`` with an EMA, else ``θ``) at t = 0..steps, shape
        ``(steps + 1, trials, d)``. With ``weight_decay = 0`` and the same ``seed``, its risk
        equals :func:`~nqm_lib.simulation.simulate`'s up to rounding.

    Raises
    ------
    TypeError
        If ``problem`` is not an :class:`~nqm_lib.problem.NQM`.
    ValueError
        For invalid settings (the message names the parameter).
    InstabilityError
        If the iteration diverges, i.e. ``η (h_1 + λ) ≥ 2 (1 + β)``.

    """
    problem = _check_problem(problem)
    steps = check_steps(steps)
    trials = _check_trials(trials)
    weight_decay = check_weight_decay(weight_decay)
    hp = Hyperparams(lr, batch_size, momentum, ema_decay)
    check_stable(problem.with_weight_decay(weight_decay), hp)

    model = TorchNQM(problem, trials)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=hp.lr, momentum=hp.momentum, dampening=0.0, weight_decay=weight_decay
    )
    averaged = None
    if hp.ema_decay > 0:
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(hp.ema_decay))
        averaged.update_parameters(model)  # the first update copies: θ̃(0) = θ(0)
    reported = averaged.module if averaged is not None else model

    trajectory = np.empty((steps + 1, trials, problem.d))
    trajectory[0] = reported.theta.detach().numpy()
    stream = minibatch_stream(problem, batch_size=hp.batch_size, trials=trials, seed=seed)
    for t in range(1, steps + 1):
        batch = torch.from_numpy(next(stream))
        optimizer.zero_grad()
        model(batch).backward()
        optimizer.step()
        if averaged is not None:
            averaged.update_parameters(model)
        trajectory[t] = reported.theta.detach().numpy()
    return trajectory
