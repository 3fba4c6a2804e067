"""A real network against its empirical NQM: training, steps to target, Hessian and noise (chapter 10).

Chapter 10 asks whether the NQM predicts how a real (small, nonlinear) network responds to
the batch size. This module holds everything the experiment needs:

- two regression problems on data sampled fresh at every step (so the NQM's "fresh noise"
  assumption is the setting): :class:`TeacherStudent`, a one-hidden-layer tanh network
  learning a smaller random tanh *teacher* network from noisy labels, and
  :class:`LinearRegression`, whose population risk is exactly an NQM (the unit tests use it);
- :func:`train`, which trains one batched copy of the network per (learning rate, second
  hyperparameter, seed) with ``torch.optim`` (SGD, heavy-ball momentum, Adam) or SGD with an
  EMA of the weights, and records the held-out excess risk on a grid of steps;
- :func:`steps_to_target`, the first step on that grid at which the seed-averaged excess risk
  reaches a target (the quantity :mod:`nqm_lib.batch_scaling` computes for the NQM), and
  :func:`tuned`, its minimum over the hyperparameter grid;
- :func:`hessian_eigen`, :func:`per_example_gradients`, :func:`minibatch_gradient_variance`
  and :func:`empirical_nqm`, which measure the network's Hessian spectrum and the
  gradient-noise variances along its eigenvectors and build an :class:`~nqm_lib.problem.NQM`
  from them.

Everything runs in float64 on the CPU. Parameters of many independent networks are stored as
one tensor of shape ``(replicas, n_params)``, so one optimiser step advances all of them; the
optimisers act element by element, so the replicas do not interact.

``import nqm_lib`` does not import this module (nor PyTorch); import it explicitly::

    from nqm_lib import networks
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .problem import NQM
from .validation import (
    check_batch_size,
    check_fraction,
    check_nonnegative,
    check_positive,
    check_positive_array,
    check_steps,
)

__all__ = [
    "METHODS",
    "EmpiricalNQM",
    "LinearRegression",
    "TeacherStudent",
    "TrainResult",
    "empirical_nqm",
    "evaluation_steps",
    "hessian_eigen",
    "minibatch_gradient_variance",
    "per_example_gradients",
    "steps_to_target",
    "train",
    "train_to_convergence",
    "tuned",
]

#: The optimisers :func:`train` runs: ``torch.optim.SGD`` (plain and heavy ball), ``torch.optim.Adam``
#: and plain SGD reporting an exponential moving average of the weights.
METHODS = ("sgd", "momentum", "adam", "ema")

_DTYPE = torch.float64


def _check_count(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_seeds(seeds: object) -> list[int]:
    try:
        values = [int(s) for s in seeds]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a non-empty sequence of integers >= 0, got {seeds!r}") from None
    if not values or any(s < 0 for s in values) or len(set(values)) != len(values):
        raise ValueError(f"seeds must be a non-empty sequence of distinct integers >= 0, got {seeds!r}")
    return values


def _check_params(problem: _Regression, params: object) -> torch.Tensor:
    if not isinstance(params, torch.Tensor) or params.ndim != 2 or params.shape[1] != problem.n_params:
        shape = tuple(params.shape) if isinstance(params, torch.Tensor) else type(params).__name__
        raise ValueError(f"params must be a tensor of shape (replicas, {problem.n_params}), got {shape}")
    return params


# ------------------------------------------------------------------------------------ problems


class _Regression:
    """Shared part of the regression problems: squared loss on data drawn fresh at every step."""

    input_dim: int
    n_params: int
    noise_std: float

    def predict(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def target(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def sample(self, shape: Sequence[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh examples ``x`` of shape ``(*shape, input_dim)`` and their noisy labels ``y``."""
        x = self._inputs(tuple(shape), generator)
        noise = torch.randn(tuple(shape), generator=generator, dtype=_DTYPE)
        return x, self.target(x) + self.noise_std * noise

    def _inputs(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        return torch.randn((*shape, self.input_dim), generator=generator, dtype=_DTYPE)

    def loss(self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-replica minibatch loss ``mean_b ½ (f(x_b) − y_b)²``; ``x`` has shape ``(R, B, input_dim)``."""
        return 0.5 * (self.predict(params, x) - y).pow(2).mean(dim=-1)


class TeacherStudent(_Regression):
    """A tanh network (the student) learning a smaller random tanh network (the teacher), chapter 10.

    Both are ``f(x) = w₂ᵀ tanh(W₁ x + b₁) + b₂`` with inputs ``x ~ N(0, I)``; the labels are
    ``y = f_teacher(x) + ε`` with ``ε ~ N(0, noise_std²)``. The student has ``hidden ≥
    teacher_hidden`` units, so it can represent the teacher exactly and the smallest excess
    risk is 0, as in the NQM. The *excess risk* ``½ E[(f(x) − f_teacher(x))²]`` is estimated on
    a fixed held-out set of ``test_size`` inputs (noise-free targets).

    Parameters
    ----------
    input_dim, hidden, teacher_hidden
        Input dimension and hidden widths (integers ``>= 1``, ``teacher_hidden <= hidden``).
    noise_std
        Label-noise standard deviation (``>= 0``).
    test_size
        Size of the held-out set (integer ``>= 1``).
    seed
        Seed of the teacher's weights and of the held-out set.

    """

    def __init__(
        self,
        input_dim: int = 8,
        hidden: int = 16,
        teacher_hidden: int = 4,
        noise_std: float = 0.5,
        *,
        test_size: int = 1024,
        seed: int = 0,
    ) -> None:
        self.input_dim = _check_count("input_dim", input_dim)
        self.hidden = _check_count("hidden", hidden)
        self.teacher_hidden = _check_count("teacher_hidden", teacher_hidden)
        if self.teacher_hidden > self.hidden:
            raise ValueError(f"teacher_hidden must be <= hidden = {hidden}, got {teacher_hidden!r}")
        self.noise_std = check_nonnegative("noise_std", noise_std)
        self.test_size = _check_count("test_size", test_size)
        self.seed = check_steps(seed, "seed")
        self.n_params = self.hidden * (self.input_dim + 2) + 1
        generator = torch.Generator().manual_seed(self.seed)
        self.teacher = self._random_weights(self.teacher_hidden, generator)
        self.x_test = torch.randn((self.test_size, self.input_dim), generator=generator, dtype=_DTYPE)
        self.y_test = self.target(self.x_test)

    def _random_weights(self, width: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        d = self.input_dim
        return {
            "W1": torch.randn((width, d), generator=generator, dtype=_DTYPE) / math.sqrt(d),
            "b1": 0.5 * torch.randn(width, generator=generator, dtype=_DTYPE),
            "w2": torch.randn(width, generator=generator, dtype=_DTYPE) / math.sqrt(width),
            "b2": torch.zeros(1, dtype=_DTYPE),
        }

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's noise-free output for inputs ``x`` of shape ``(..., input_dim)``."""
        t = self.teacher
        return torch.tanh(x @ t["W1"].T + t["b1"]) @ t["w2"] + t["b2"]

    def unflatten(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Split ``params`` of shape ``(replicas, n_params)`` into ``W₁, b₁, w₂, b₂`` (views)."""
        h, d = self.hidden, self.input_dim
        r = params.shape[0]
        w1 = params[:, : h * d].reshape(r, h, d)
        b1 = params[:, h * d : h * (d + 1)]
        w2 = params[:, h * (d + 1) : h * (d + 2)]
        b2 = params[:, -1:]
        return w1, b1, w2, b2

    def predict(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Outputs of every replica: ``params`` ``(R, P)``, ``x`` ``(R, B, input_dim)`` → ``(R, B)``."""
        w1, b1, w2, b2 = self.unflatten(params)
        hidden = torch.tanh(torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2)))
        return torch.baddbmm(b2.unsqueeze(1), hidden, w2.unsqueeze(2)).squeeze(-1)

    def init(self, seeds: Sequence[int]) -> torch.Tensor:
        """Student initialisations, one row per seed: ``W₁ ~ N(0, 1/d)``, ``w₂ ~ N(0, 1/width)``, biases 0."""
        rows = []
        for seed in _check_seeds(seeds):
            generator = torch.Generator().manual_seed(10_000 + self.seed * 1000 + seed)
            w = self._random_weights(self.hidden, generator)
            rows.append(torch.cat([w["W1"].reshape(-1), 0.0 * w["b1"], w["w2"], w["b2"]]))
        return torch.stack(rows)

    def excess_risk(self, params: torch.Tensor) -> torch.Tensor:
        """``½ mean (f(x) − f_teacher(x))²`` over the held-out inputs, per replica (shape ``(R,)``)."""
        params = _check_params(self, params)
        x = self.x_test.expand(params.shape[0], -1, -1)
        return 0.5 * (self.predict(params, x) - self.y_test).pow(2).mean(dim=-1)


class LinearRegression(_Regression):
    """Linear regression on Gaussian inputs, whose population risk is exactly an NQM (chapters 7 and 9).

    Inputs ``x ~ N(0, diag(σ²))``, labels ``y = θ*ᵀx + ε`` with ``ε ~ N(0, noise_std²)``, model
    ``f(x) = θᵀx``. The excess risk is ``½ Σ_i σ_i² (θ_i − θ*_i)²`` (computed exactly): the NQM
    with ``h = σ²`` in the coordinates ``θ − θ*``. At ``θ*`` the per-example gradient noise has
    variance ``c_i = noise_std² σ_i²``; away from it the noise is larger (see
    :meth:`gradient_variance`). Every replica starts at ``θ* + start``.
    """

    def __init__(self, sigma: object, theta_star: object, noise_std: float, start: object) -> None:
        self.sigma = torch.tensor(check_positive_array("sigma", sigma), dtype=_DTYPE)
        self.input_dim = self.n_params = self.sigma.numel()
        self.theta_star = torch.tensor(np.broadcast_to(np.asarray(theta_star, float), self.n_params).copy())
        self.noise_std = check_nonnegative("noise_std", noise_std)
        self.start = torch.tensor(np.broadcast_to(np.asarray(start, float), self.n_params).copy())

    def _inputs(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        return super()._inputs(shape, generator) * self.sigma

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The noise-free label ``θ*ᵀx``."""
        return x @ self.theta_star

    def predict(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``θᵀx`` for every replica: ``params`` ``(R, d)``, ``x`` ``(R, B, d)`` → ``(R, B)``."""
        return (x * params.unsqueeze(1)).sum(dim=-1)

    def init(self, seeds: Sequence[int]) -> torch.Tensor:
        """Every seed starts at ``θ* + start`` (a deterministic start, as in the NQM)."""
        return (self.theta_star + self.start).expand(len(_check_seeds(seeds)), -1).clone()

    def excess_risk(self, params: torch.Tensor) -> torch.Tensor:
        """Exact ``½ Σ_i σ_i² (θ_i − θ*_i)²`` per replica."""
        params = _check_params(self, params)
        return 0.5 * (self.sigma**2 * (params - self.theta_star) ** 2).sum(dim=-1)

    def nqm(self) -> NQM:
        """The NQM of this problem at its optimum: ``h = σ²``, ``c = noise_std² σ²``, ``θ(0) = start``."""
        h = self.sigma.numpy() ** 2
        return NQM(h, self.noise_std**2 * h, self.start.numpy())

    def gradient_variance(self, theta: object) -> np.ndarray:
        """Exact per-example gradient variance of coordinate ``i`` at ``θ`` (Gaussian fourth moments).

        With ``δ = θ − θ*`` and ``h = σ²``: ``Var[g_i] = h_i (δᵀHδ + noise_std²) + h_i² δ_i²``.
        """
        delta = np.asarray(theta, float) - self.theta_star.numpy()
        h = self.sigma.numpy() ** 2
        return h * (np.sum(h * delta**2) + self.noise_std**2) + h**2 * delta**2


# ------------------------------------------------------------------------------------ training


def evaluation_steps(max_steps: int, *, dense: int = 64, growth: float = 1.03) -> np.ndarray:
    """Steps at which :func:`train` measures the excess risk: every step up to ``dense``, then ×``growth``.

    Returns the sorted unique integers ``0, 1, …, dense`` followed by ``round(dense · growth^k)``
    up to and including ``max_steps``; so a step count is resolved to within a factor ``growth``.
    """
    max_steps = _check_count("max_steps", max_steps)
    dense = _check_count("dense", dense)
    growth = check_positive("growth", growth)
    if growth <= 1.0:
        raise ValueError(f"growth must be > 1, got {growth!r}")
    count = math.ceil(math.log(max(max_steps / dense, 1.0)) / math.log(growth)) + 1
    sparse = np.round(dense * growth ** np.arange(count + 1)).astype(np.int64)
    steps = np.unique(np.concatenate([np.arange(min(dense, max_steps) + 1), sparse, [max_steps]]))
    return steps[steps <= max_steps]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` measured (chapter 10).

    Attributes
    ----------
    method, batch_size, lrs, second, seeds, target
        The settings: ``second`` holds the momenta ``β`` (``"momentum"``), the EMA decays ``γ``
        (``"ema"``) or ``(0.0,)``. Groups are ordered ``lrs`` outer × ``second`` inner.
    steps
        The evaluation steps actually reached (shape ``(E,)``).
    risk
        Held-out excess risk of the reported weights (the EMA's for ``"ema"``), shape
        ``(groups, seeds, E)``; NaN or inf where a run diverged.
    diverged
        Per group, whether it was dropped because a seed diverged (``None``: not recorded).

    """

    method: str
    batch_size: int
    lrs: np.ndarray
    second: np.ndarray
    seeds: tuple[int, ...]
    target: float
    steps: np.ndarray
    risk: np.ndarray
    diverged: np.ndarray | None = None

    @property
    def mean_risk(self) -> np.ndarray:
        """Seed-averaged excess risk, shape ``(groups, E)`` (NaN if any seed diverged)."""
        return self.risk.mean(axis=1)


def _first_crossing(curves: np.ndarray, steps: np.ndarray, target: float) -> np.ndarray:
    """First ``steps`` entry with ``curve ≤ target`` along the last axis (``inf`` if none)."""
    below = curves <= target  # NaN compares False: a diverged run never counts
    first = np.argmax(below, axis=-1)
    return np.where(below.any(axis=-1), steps[first].astype(float), np.inf)


def steps_to_target(result: TrainResult) -> np.ndarray:
    """Steps until the *seed-averaged* excess risk first reaches ``result.target``, per group.

    The estimate of ``min{t : E[L(θ_t)] ≤ target}`` on the evaluation grid (so within a factor
    ``growth`` of :func:`evaluation_steps` above 64 steps); ``inf`` if not reached, if a seed
    diverged, or if :func:`train` dropped the group before it reached the target. Shape ``(groups,)``.
    """
    return _first_crossing(result.mean_risk, result.steps, result.target)


def _with_margin(diverged: np.ndarray, n_lrs: int, n_second: int) -> np.ndarray:
    """Groups that did not diverge and whose next larger learning rate (same ``second``) did not either."""
    grid = np.asarray(diverged, dtype=bool).reshape(n_lrs, n_second)
    safe = ~grid.copy()
    safe[:-1] &= ~grid[1:]
    return safe.ravel()


def tuned(result: TrainResult) -> tuple[float, int]:
    """Fewest steps to target over the grid and the index of the group achieving it.

    A setting counts only with a margin from divergence: if the next larger learning rate of
    the grid (same ``second``) diverged on a tuning seed, the setting is at the edge of
    stability and is skipped (on fresh seeds it would often diverge). Ties (equal step counts)
    go to the first group (the smallest learning rate), as in
    :func:`nqm_lib.batch_scaling.tuned_steps_to_target`; ``(inf, -1)`` if no group reaches the target.
    """
    counts = steps_to_target(result)
    if result.diverged is not None:
        counts = np.where(_with_margin(result.diverged, result.lrs.size, result.second.size), counts, np.inf)
    if not np.isfinite(counts).any():
        return math.inf, -1
    best = int(np.argmin(counts))
    return float(counts[best]), best


def _check_method(method: object) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return str(method)


def _check_grid(name: str, values: object, check: Callable[[str, object], float]) -> np.ndarray:
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {values!r}")
    for value in array:
        check(name, float(value))
    return array


#: Most examples (rows × batch size) in one forward pass: larger grids are split, to bound the memory.
_BLOCK_EXAMPLES = 2**16


def _blocks(groups: list[tuple[float, float]], method: str, rows_per_group: int) -> list[list[int]]:
    """Groups that share one parameter tensor: the same momentum (Adam: one each), a bounded size."""
    if method == "adam":
        return [[g] for g in range(len(groups))]
    size = max(1, _BLOCK_EXAMPLES // rows_per_group)
    keys = [groups[g][1] if method == "momentum" else 0.0 for g in range(len(groups))]
    blocks: list[list[int]] = []
    for key in dict.fromkeys(keys):
        members = [g for g in range(len(groups)) if keys[g] == key]
        blocks += [members[i : i + size] for i in range(0, len(members), size)]
    return blocks


def _row_values(values: list[float], n_seeds: int) -> torch.Tensor:
    """One value per setting, repeated for its seeds, as a column ``(settings · seeds, 1)``."""
    return torch.tensor(np.repeat(values, n_seeds), dtype=_DTYPE).unsqueeze(1)


def train(
    problem: _Regression,
    *,
    method: str,
    lrs: object,
    batch_size: int,
    seeds: Sequence[int],
    target: float,
    max_steps: int,
    second: object = (0.0,),
    data_seed: int = 0,
    growth: float = 1.03,
    patience: float = 4.0,
    extend: float = 1.0,
    effective: bool = False,
    progress: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train one network per (learning rate, ``second``, seed) with ``torch.optim`` (chapter 10).

    ``method`` is ``"sgd"`` (``torch.optim.SGD``), ``"momentum"`` (``SGD(momentum=β,
    dampening=0)``, ``β ∈ second``), ``"adam"`` (``torch.optim.Adam`` with its defaults) or
    ``"ema"`` (plain SGD whose reported weights are ``θ̃ ← γθ̃ + (1 − γ)θ``, ``θ̃(0) = θ(0)``,
    ``γ ∈ second``). Every step draws ``batch_size`` fresh examples per seed (the same examples
    for every hyperparameter setting: common random numbers); every seed has its own
    initialisation (:meth:`TeacherStudent.init`). The excess risk is measured at
    :func:`evaluation_steps`.

    To save time, a group is dropped (its risk is NaN from then on) as soon as one of its seeds
    diverges (risk not finite or above 10× the largest initial risk), and every group but the
    winner is dropped once the first eligible group's seed-averaged risk reaches the target (no
    other group can be faster any more; ties go to the first group). A group is eligible if
    neither it nor the next larger learning rate with the same ``second`` diverged (a margin from
    the edge of stability, see :func:`tuned`). Training stops when each of the winner's
    seeds has reached the target too and at least ``extend`` times the winner's step count has
    been run, at ``max(patience, extend)`` times the winner's step count, or at ``max_steps``
    (``patience=1`` stops at the winner's crossing: enough for tuning). With ``effective=True``
    (momentum only) ``lrs`` is a grid of the *effective* learning rate ``η/(1 − β)``: each group
    runs ``η = lr · (1 − β)``. Returns a :class:`TrainResult`; :func:`steps_to_target` and
    :func:`tuned` read it.

    For speed, the settings of SGD, momentum and the EMA that share a momentum are stacked in one
    parameter tensor (as many as fit 65 536 examples per step), stepped by ``torch.optim.SGD`` with
    ``lr = 1`` on gradients scaled row by row by each setting's ``η``: the same update (for
    momentum the buffer then holds ``η v``). Adam keeps one parameter group per setting.
    """
    method = _check_method(method)
    lrs = _check_grid("lrs", lrs, check_positive)
    second = _check_grid("second", second, check_fraction)
    if method in ("sgd", "adam") and np.any(second != 0.0):
        raise ValueError(f"second must be (0.0,) for method {method!r}, got {second!r}")
    batch_size = check_batch_size(batch_size)
    seeds = _check_seeds(seeds)
    target = check_positive("target", target)
    max_steps = _check_count("max_steps", max_steps)
    data_seed = check_steps(data_seed, "data_seed")
    patience = check_positive("patience", patience)
    extend = check_positive("extend", extend)
    if effective and method != "momentum":
        raise ValueError(f"effective=True needs method 'momentum', got {method!r}")

    groups = [(float(lr) * (1.0 - float(s) if effective else 1.0), float(s)) for lr in lrs for s in second]
    n_groups, n_seeds = len(groups), len(seeds)
    start = problem.init(seeds)
    blocks = _blocks(groups, method, n_seeds * batch_size)
    leaves = [start.repeat(len(block), 1).requires_grad_(True) for block in blocks]
    if method == "adam":  # Adam's step depends on its learning rate: one parameter group per setting
        optimizer: torch.optim.Optimizer = torch.optim.Adam(
            [{"params": [leaf], "lr": groups[b[0]][0]} for leaf, b in zip(leaves, blocks, strict=True)],
            foreach=False,
        )
        scales = None
    else:  # SGD with lr = 1 on gradients scaled row by row by each setting's η: the same update
        optimizer = torch.optim.SGD(
            [
                {"params": [leaf], "lr": 1.0, "dampening": 0.0,
                 "momentum": groups[block[0]][1] if method == "momentum" else 0.0}
                for leaf, block in zip(leaves, blocks, strict=True)
            ],  # fmt: skip
            foreach=False,
        )
        scales = [_row_values([groups[g][0] for g in block], n_seeds) for block in blocks]
    averages = [leaf.detach().clone() for leaf in leaves] if method == "ema" else None
    weights = [_row_values([1.0 - groups[g][1] for g in block], n_seeds) for block in blocks]
    order = np.concatenate(blocks)  # group index of each block row, in block order

    eval_steps = evaluation_steps(max_steps, growth=growth)
    risk = np.full((n_groups, n_seeds, eval_steps.size), np.nan)
    generator = torch.Generator().manual_seed(data_seed)
    active = np.ones(n_groups, dtype=bool)  # groups still trained and measured
    crossing = np.full(n_groups, np.inf)  # first evaluation step with seed-mean risk <= target
    failed = np.zeros(n_groups, dtype=bool)  # groups dropped because a seed diverged
    limit = np.inf  # once the winner is known: stop at its seeds' crossings or at patience × its steps

    def measure(index: int) -> None:
        reported = averages if averages is not None else [leaf.detach() for leaf in leaves]
        with torch.no_grad():
            values = problem.excess_risk(torch.cat(reported)).numpy().reshape(n_groups, n_seeds)
        rows = order[active[order]]
        risk[rows, :, index] = np.where(np.isfinite(values), values, np.inf)[active[order]]

    def drop(dropped: np.ndarray) -> None:
        """Freeze dropped groups at their start (finite values, no more updates)."""
        active[dropped] = False
        with torch.no_grad():
            for k, block in enumerate(blocks):
                rows = torch.from_numpy(np.repeat(~active[block], n_seeds))
                if not rows.any():
                    continue
                leaves[k][rows] = start.repeat(len(block), 1)[rows]
                if averages is not None:
                    averages[k][rows] = leaves[k][rows]
                if scales is not None:
                    scales[k][rows] = 0.0
                state = optimizer.state.get(leaves[k], {})
                for value in state.values():
                    if isinstance(value, torch.Tensor) and value.shape == leaves[k].shape:
                        value[rows] = 0.0

    measure(0)
    initial = risk[:, :, 0].max()
    t, reached = 0, 0
    for index in range(1, eval_steps.size):
        while t < eval_steps[index]:
            x, y = problem.sample((n_seeds, batch_size), generator)
            optimizer.zero_grad(set_to_none=True)
            for k, (leaf, block) in enumerate(zip(leaves, blocks, strict=True)):
                if not active[block].any():
                    continue
                x_rows = x.repeat((len(block),) + (1,) * (x.ndim - 1))
                y_rows = y.repeat((len(block),) + (1,) * (y.ndim - 1))
                problem.loss(leaf, x_rows, y_rows).sum().backward()
                if scales is not None:
                    leaf.grad.mul_(scales[k])
            optimizer.step()
            if averages is not None:
                with torch.no_grad():
                    for average, leaf, weight in zip(averages, leaves, weights, strict=True):
                        average.lerp_(leaf.detach(), weight)
            t += 1
        measure(index)
        reached = index
        if progress is not None:
            progress(t)
        rows = np.flatnonzero(active)
        current = risk[rows, :, index]
        # a group with a diverged seed (risk inf or above 10× the initial risk) is dropped
        diverged = ~np.all(current <= 10.0 * initial, axis=1)
        newly = ~diverged & (current.mean(axis=1) <= target) & ~np.isfinite(crossing[rows])
        crossing[rows[newly]] = eval_steps[index]
        if diverged.any():
            failed[rows[diverged]] = True
            drop(rows[diverged])
        candidates = np.where(_with_margin(failed, lrs.size, second.size), crossing, np.inf)
        if np.isfinite(candidates).any():
            best = int(np.argmin(candidates))  # ties: the first group (smallest learning rate)
            losers = np.flatnonzero(active)
            losers = losers[losers != best]
            if losers.size:
                drop(losers)  # no other group can beat it any more
            limit = min(limit, max(patience, extend) * crossing[best])
            every_seed = np.all((risk[best, :, : index + 1] <= target).any(axis=1))
            if (every_seed and t >= extend * crossing[best]) or t >= limit:
                break
        if not active.any():
            break
    return TrainResult(
        method=method,
        batch_size=batch_size,
        lrs=lrs,
        second=second,
        seeds=tuple(seeds),
        target=target,
        steps=eval_steps[: reached + 1],
        risk=risk[:, :, : reached + 1],
        diverged=failed,
    )


def train_to_convergence(
    problem: _Regression,
    seeds: Sequence[int],
    *,
    lr: float = 0.02,
    batch_size: int = 256,
    steps: int = 3000,
    data_seed: int = 1,
) -> torch.Tensor:
    """Weights near the end of training: Adam at ``batch_size``, ``lr`` halved at 50 % and 75 % of ``steps``.

    Returns the final weights, one row per seed (shape ``(len(seeds), n_params)``); chapter 10
    measures the Hessian and the gradient noise there.
    """
    lr = check_positive("lr", lr)
    batch_size = check_batch_size(batch_size)
    steps = _check_count("steps", steps)
    seeds = _check_seeds(seeds)
    params = problem.init(seeds).requires_grad_(True)
    optimizer = torch.optim.Adam([params], lr=lr, foreach=False)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [steps // 2, 3 * steps // 4], gamma=0.5)
    generator = torch.Generator().manual_seed(check_steps(data_seed, "data_seed"))
    for _ in range(steps):
        x, y = problem.sample((len(seeds), batch_size), generator)
        optimizer.zero_grad()
        problem.loss(params, x, y).sum().backward()
        optimizer.step()
        scheduler.step()
    return params.detach()


# ----------------------------------------------------------------------- Hessian and noise


def hessian_eigen(
    function: Callable[[torch.Tensor], torch.Tensor], theta: object
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Hessian of a scalar ``function`` of a parameter vector at ``theta``, and its eigen-decomposition.

    Uses ``torch.autograd.functional.hessian`` (exact second derivatives by double
    backpropagation, one Hessian–vector product per parameter), symmetrises the result against
    rounding, and returns the eigenvalues in *decreasing* order and the eigenvectors as the
    columns of the second array (``numpy.linalg.eigh``).
    """
    if not callable(function):
        raise ValueError(f"function must be callable, got {function!r}")
    point = torch.as_tensor(theta, dtype=_DTYPE)
    if point.ndim != 1 or point.numel() == 0:
        raise ValueError(f"theta must be a non-empty 1-D vector, got shape {tuple(point.shape)}")
    matrix = torch.autograd.functional.hessian(function, point).numpy()
    matrix = 0.5 * (matrix + matrix.T)
    values, vectors = np.linalg.eigh(matrix)
    return values[::-1].copy(), vectors[:, ::-1].copy()


def per_example_gradients(problem: _Regression, theta: object, *, samples: int, seed: int = 0) -> np.ndarray:
    """Gradients of the per-example loss ``½ (f(x) − y)²`` at ``theta`` for ``samples`` fresh examples.

    Each example is one replica of the batched model, so one backward pass gives them all.
    Returns an array of shape ``(samples, n_params)``.
    """
    samples = _check_count("samples", samples, 2)
    point = torch.as_tensor(theta, dtype=_DTYPE).reshape(1, -1)
    _check_params(problem, point)
    x, y = problem.sample((samples, 1), torch.Generator().manual_seed(check_steps(seed, "seed")))
    replicas = point.expand(samples, -1).clone().requires_grad_(True)
    problem.loss(replicas, x, y).sum().backward()
    return replicas.grad.numpy()


def minibatch_gradient_variance(
    problem: _Regression,
    theta: object,
    directions: object,
    *,
    batch_size: int = 1,
    samples: int = 20_000,
    seed: int = 0,
) -> np.ndarray:
    """Variance of the minibatch gradient along each direction (a column of ``directions``), at ``theta``.

    Estimated from ``samples`` per-example gradients (:func:`per_example_gradients`): the
    unbiased variance of their projections, divided by ``batch_size`` (the minibatch averages
    ``B`` independent examples). With unit ``directions`` along the Hessian's eigenvectors at the
    optimum this is the NQM's ``c_i / B``.
    """
    batch_size = check_batch_size(batch_size)
    vectors = np.asarray(directions, dtype=float)
    if vectors.ndim == 1:
        vectors = vectors[:, None]
    if vectors.ndim != 2 or vectors.shape[0] != problem.n_params:
        raise ValueError(f"directions must have {problem.n_params} rows, got shape {vectors.shape}")
    projections = per_example_gradients(problem, theta, samples=samples, seed=seed) @ vectors
    return projections.var(axis=0, ddof=1) / batch_size


@dataclass(frozen=True)
class EmpiricalNQM:
    """An NQM measured on a network (chapter 10): :func:`empirical_nqm`'s result.

    Attributes
    ----------
    problem
        ``NQM(h, c, θ(0), counts)``: the kept curvatures of every seed, their noise variances,
        the starting distances along them, and counts ``1/seeds`` (so its risk is the seed average).
    eigenvalues
        Every Hessian eigenvalue, shape ``(seeds, n_params)`` (decreasing per seed).
    noise
        The per-example noise variance along every eigenvector, same shape.
    theta0
        The projections of ``θ(0) − θ_end`` on every eigenvector, same shape.
    threshold
        Eigenvalues at most ``threshold`` (relative to each seed's largest) were dropped.

    """

    problem: NQM
    eigenvalues: np.ndarray
    noise: np.ndarray
    theta0: np.ndarray
    threshold: float

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask of the eigenvalues kept in :attr:`problem`."""
        return self.eigenvalues > self.threshold * self.eigenvalues[:, :1]


def empirical_nqm(
    problem: TeacherStudent,
    start: torch.Tensor,
    end: torch.Tensor,
    *,
    threshold: float = 1e-4,
    samples: int = 20_000,
    seed: int = 0,
) -> EmpiricalNQM:
    """Build the NQM of a network from its Hessian and gradient noise at the weights ``end`` (chapter 10).

    For every seed (row of ``start`` and ``end``): the exact Hessian of the held-out excess risk
    at ``end`` (:func:`hessian_eigen`), the per-example gradient-noise variance along each of its
    eigenvectors (:func:`minibatch_gradient_variance` with ``B = 1``), and the starting point's
    coordinates ``v_iᵀ(θ(0) − θ_end)``. Eigenvalues at most ``threshold`` times the seed's
    largest (flat and negative directions, which a quadratic model with ``h > 0`` cannot hold)
    are dropped. The seeds are pooled into one NQM with counts ``1/seeds``, whose expected risk
    is the average of the seeds' NQM risks.
    """
    threshold = check_positive("threshold", threshold)
    start, end = _check_params(problem, start), _check_params(problem, end)
    if start.shape != end.shape:
        raise ValueError(
            f"start and end must have the same shape, got {tuple(start.shape)} and {tuple(end.shape)}"
        )
    eigenvalues, noise, theta0 = [], [], []
    for row in range(end.shape[0]):
        values, vectors = hessian_eigen(lambda p: problem.excess_risk(p.unsqueeze(0))[0], end[row])
        eigenvalues.append(values)
        noise.append(
            minibatch_gradient_variance(problem, end[row], vectors, samples=samples, seed=seed + row)
        )
        theta0.append(vectors.T @ (start[row] - end[row]).numpy())
    eigenvalues, noise, theta0 = np.array(eigenvalues), np.array(noise), np.array(theta0)
    kept = eigenvalues > threshold * eigenvalues[:, :1]
    nqm = NQM(
        eigenvalues[kept], noise[kept], theta0[kept], counts=np.full(int(kept.sum()), 1.0 / end.shape[0])
    )
    return EmpiricalNQM(problem=nqm, eigenvalues=eigenvalues, noise=noise, theta0=theta0, threshold=threshold)
