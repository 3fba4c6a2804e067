"""Adaptive optimisers in NumPy and the small problems chapter 9 runs them on.

The optimisers (chapter 9) follow PyTorch's update rules and defaults exactly —
``torch.optim.SGD`` (no momentum), ``Adagrad``, ``RMSprop``, ``Adam`` (also with
``amsgrad=True`` or ``decoupled_weight_decay=True``) and ``AdamW`` — so that, fed the same
gradients, they produce the same iterates (the tests compare them in float64). They share one interface::

    optimizer = Adam(lr=0.01)
    params = optimizer.step(params, grad)   # returns the new parameters, keeps its own state

and act elementwise, so ``params`` may have any shape: ``(p,)``, ``(runs, p)``, or
``(grid, runs, p)`` together with a learning rate of shape ``(grid, 1, 1)`` — a whole
learning-rate sweep in one call. ``optimizer.lr`` may be changed between steps, which is
how a learning-rate schedule acts (as a PyTorch scheduler does).

The problems:

- :class:`LeastSquares`, the finite-sum loss ``L(θ) = (1/2N) ‖Xθ − y‖²`` with minibatch
  gradients, its exact minimiser and the NQM that describes it near the minimiser;
  :func:`run_optimizer` runs any optimiser on it for many independent runs at once;
- a 1-D non-convex landscape (:func:`landscape_loss`) with noisy gradient descent
  (:func:`noisy_descent_1d`) and the basin each run ends in (:func:`basin_of`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .problem import NQM
from .theory import first_minimum
from .validation import check_batch_size, check_fraction, check_nonnegative, check_steps

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "DrugResponse",
    "LeastSquares",
    "Optimizer",
    "RMSProp",
    "TunedRuns",
    "basin_of",
    "drug_response_regression",
    "landscape_gradient",
    "landscape_loss",
    "landscape_minima",
    "noisy_descent_1d",
    "run_optimizer",
    "small_regression",
    "tune_then_rerun",
]


def _check_lr(lr: object) -> float | np.ndarray:
    """Return a learning rate (a number or an array of numbers), all finite and > 0."""
    if isinstance(lr, bool):
        raise ValueError(f"lr must be a number > 0 or an array of them, got {lr!r}")
    try:
        array = np.asarray(lr, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"lr must be a number > 0 or an array of them, got {lr!r}") from None
    if array.size == 0 or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    return float(array) if array.ndim == 0 else array


class Optimizer:
    """Common part of every optimiser of chapter 9: validation, weight decay, the step counter ``t``.

    Subclasses implement ``_update`` (the optimiser's own rule, applied to the gradient
    after weight decay). ``weight_decay`` λ is PyTorch's coupled L2 penalty: the gradient
    becomes ``g + λθ`` before the update. With ``decoupled_weight_decay=True`` (AdamW's rule) the
    parameters are shrunk instead, ``θ ← (1 − ηλ) θ``, and the update sees the raw gradient.
    """

    def __init__(
        self, lr: float | np.ndarray, *, weight_decay: float = 0.0, decoupled_weight_decay: bool = False
    ) -> None:
        self.lr = lr
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)
        self.t = 0
        self._shape: tuple[int, ...] | None = None

    @property
    def lr(self) -> float | np.ndarray:
        """Learning rate η of the next step (a number, or an array broadcasting to the parameters)."""
        return self._lr

    @lr.setter
    def lr(self, value: object) -> None:
        self._lr = _check_lr(value)

    def step(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Return the parameters after one step with gradient ``grad`` (same shape as ``params``)."""
        params = np.asarray(params, dtype=float)
        grad = np.asarray(grad, dtype=float)
        if params.shape != grad.shape:
            raise ValueError(f"grad must have the shape of params {params.shape}, got {grad.shape}")
        if self._shape is None:
            self._shape = params.shape
            self._init_state(params)
        elif params.shape != self._shape:
            raise ValueError(
                f"params changed shape from {self._shape} to {params.shape}; use a new optimizer"
            )
        if self.weight_decay and self.decoupled_weight_decay:
            params = params * (1.0 - self.lr * self.weight_decay)
        elif self.weight_decay:
            grad = grad + self.weight_decay * params
        self.t += 1
        return self._update(params, grad)

    def _init_state(self, params: np.ndarray) -> None:
        """Create the optimiser's state for parameters like ``params`` (nothing by default)."""

    def _update(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SGD(Optimizer):
    """Plain SGD, ``θ ← θ − η g`` (``torch.optim.SGD`` without momentum); chapter 9."""

    def __init__(self, lr: float | np.ndarray = 0.01, *, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay=weight_decay)

    def _update(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return params - self.lr * grad


class AdaGrad(Optimizer):
    """AdaGrad as in ``torch.optim.Adagrad`` (``lr_decay = 0``, zero initial accumulator); chapter 9.

    The update, elementwise::

        s_t = s_{t−1} + g_t²                 (elementwise, s_0 = 0)
        θ_t = θ_{t−1} − η g_t / (√s_t + ε)

    ``ε`` is added to the square root (default ``1e-10``, PyTorch's). The effective step
    ``η / √s_t`` only shrinks: for gradients of constant size it decays like ``1/√t``.
    """

    def __init__(
        self, lr: float | np.ndarray = 0.01, *, eps: float = 1e-10, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay)
        self.eps = check_nonnegative("eps", eps)

    def _init_state(self, params: np.ndarray) -> None:
        self.sum_sq = np.zeros_like(params)

    def _update(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.sum_sq = self.sum_sq + grad * grad
        return params - self.lr * grad / (np.sqrt(self.sum_sq) + self.eps)


class RMSProp(Optimizer):
    """RMSProp as in ``torch.optim.RMSprop`` (no momentum, not centred); chapter 9.

    The update, elementwise::

        s_t = α s_{t−1} + (1 − α) g_t²       (s_0 = 0, no bias correction)
        θ_t = θ_{t−1} − η g_t / (√s_t + ε)

    Defaults are PyTorch's: ``α = 0.99`` (its name ``alpha``), ``ε = 1e-8`` added to the
    square root. The average forgets old gradients, so the step no longer decays to zero.
    """

    def __init__(
        self,
        lr: float | np.ndarray = 0.01,
        *,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay)
        self.alpha = check_fraction("alpha", alpha)
        self.eps = check_nonnegative("eps", eps)

    def _init_state(self, params: np.ndarray) -> None:
        self.square_avg = np.zeros_like(params)

    def _update(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.square_avg = self.alpha * self.square_avg + (1.0 - self.alpha) * grad * grad
        return params - self.lr * grad / (np.sqrt(self.square_avg) + self.eps)


class Adam(Optimizer):
    """Adam with bias correction, as in ``torch.optim.Adam`` (Kingma & Ba, 2015); chapter 9.

    The update, elementwise::

        m_t = β₁ m_{t−1} + (1 − β₁) g_t        v_t = β₂ v_{t−1} + (1 − β₂) g_t²
        m̂_t = m_t / (1 − β₁^t)                 v̂_t = v_t / (1 − β₂^t)
        θ_t = θ_{t−1} − η m̂_t / (√v̂_t + ε)

    with ``m_0 = v_0 = 0``; ``ε`` is added to ``√v̂_t`` (PyTorch's placement, default
    ``1e-8``), ``betas = (β₁, β₂) = (0.9, 0.999)``. ``amsgrad=True`` (Reddi et al., 2018)
    divides by the largest ``v`` so far instead, ``v̂_t = max_{s≤t} v_s / (1 − β₂^t)``, as
    PyTorch does: the maximum never shrinks, but its bias correction ``1/(1 − β₂^t)`` still
    falls towards 1, so once the maximum stops changing the denominator shrinks and the step
    ``η/(√v̂_t + ε)`` grows, by up to ``1/√(1 − β₂^s)`` for a maximum set at step ``s``.
    :attr:`effective_lr` is that step. ``decoupled_weight_decay=True`` is AdamW's rule (see
    :class:`AdamW`). ``bias_correction=False`` drops the two divisions — not a PyTorch
    option, only a switch for the chapter's demonstration.
    """

    def __init__(
        self,
        lr: float | np.ndarray = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        decoupled_weight_decay: bool = False,
        bias_correction: bool = True,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = check_fraction("beta1", betas[0])
        self.beta2 = check_fraction("beta2", betas[1])
        self.eps = check_nonnegative("eps", eps)
        self.amsgrad = bool(amsgrad)
        self.bias_correction = bool(bias_correction)

    def _init_state(self, params: np.ndarray) -> None:
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.v_max = np.zeros_like(params) if self.amsgrad else None

    @property
    def effective_lr(self) -> np.ndarray:
        """The last step's rate per parameter, ``η / (√v̂_t + ε)`` (``v̂_t`` from ``v_max`` with AMSGrad).

        The step is this times the (bias-corrected) first moment. Raises ``ValueError`` before
        the first step.
        """
        if self.t == 0:
            raise ValueError("effective_lr is defined after the first step")
        v = self.v if self.v_max is None else self.v_max
        v_hat = v / (1.0 - self.beta2**self.t) if self.bias_correction else v
        return self.lr / (np.sqrt(v_hat) + self.eps)

    def _update(self, params: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.m = self.beta1 * self.m + (1.0 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1.0 - self.beta2) * grad * grad
        v = self.v
        if self.v_max is not None:
            self.v_max = v = np.maximum(self.v_max, self.v)
        if self.bias_correction:
            m_hat = self.m / (1.0 - self.beta1**self.t)
            v_hat = v / (1.0 - self.beta2**self.t)
        else:
            m_hat, v_hat = self.m, v
        return params - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019) as in ``torch.optim.AdamW``; chapter 9.

    Adam with *decoupled* weight decay: every step first shrinks the parameters,
    ``θ ← (1 − ηλ) θ``, then takes Adam's step with the raw gradient — so the decay is not
    divided by ``√v̂ + ε`` as an L2 penalty in the gradient would be. PyTorch's default
    ``weight_decay = 1e-2``; everything else as :class:`Adam`.
    """

    def __init__(
        self,
        lr: float | np.ndarray = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, decoupled_weight_decay=True
        )


# ---------------------------------------------------------------------------------------------
# The finite-sum least-squares problem and a driver for many runs at once.
# ---------------------------------------------------------------------------------------------


class LeastSquares:
    """The finite-sum problem ``L(θ) = (1/2N) Σ_n (x_nᵀθ − y_n)² = (1/2N) ‖Xθ − y‖²`` (chapter 9).

    Parameters
    ----------
    X
        Design matrix, shape ``(N, p)`` with full column rank.
    y
        Targets, shape ``(N,)``.

    Attributes
    ----------
    hessian
        ``H = XᵀX / N`` (the loss is exactly quadratic with this Hessian).
    solution
        The least-squares minimiser ``θ̂``.
    min_loss
        ``L(θ̂)``; every excess loss is measured from it.

    """

    def __init__(self, X: object, y: object) -> None:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] < X.shape[1]:
            raise ValueError(
                f"need X of shape (N, p) with N >= p and y of shape (N,), got {X.shape}, {y.shape}"
            )
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("X and y must contain only finite numbers")
        if np.linalg.matrix_rank(X) < X.shape[1]:
            raise ValueError("X must have full column rank (the minimiser must be unique)")
        self.X, self.y = X, y
        self.n_examples, self.dim = X.shape
        self.hessian = X.T @ X / self.n_examples
        self.solution = np.linalg.lstsq(X, y, rcond=None)[0]
        self.min_loss = float(0.5 * np.mean((X @ self.solution - y) ** 2))

    def excess_loss(self, theta: object) -> np.ndarray:
        """``L(θ) − L(θ̂) = ½ (θ − θ̂)ᵀ H (θ − θ̂)`` for every row of ``theta`` (last axis = p)."""
        delta = np.asarray(theta, dtype=float) - self.solution
        return 0.5 * np.einsum("...i,...i->...", delta @ self.hessian, delta)

    def loss(self, theta: object) -> np.ndarray:
        """``L(θ)`` for every row of ``theta`` (last axis = p)."""
        return self.min_loss + self.excess_loss(theta)

    def gradient(self, theta: np.ndarray, batch: np.ndarray | None = None) -> np.ndarray:
        """Full gradient ``Xᵀ(Xθ − y)/N``, or the minibatch gradient of ``batch``.

        ``theta`` has shape ``(..., runs, p)``; ``batch`` holds example indices of shape
        ``(runs, B)``, one minibatch per run, shared by all leading axes of ``theta`` (so
        every learning rate of a sweep sees the same minibatches).
        """
        theta = np.asarray(theta, dtype=float)
        if batch is None:
            return (theta - self.solution) @ self.hessian  # = Xᵀ(Xθ − y)/N, H symmetric
        runs, size = batch.shape
        rows = self.X[batch]  # (runs, B, p)
        # every parameter vector of a run as a column: one (B × p) @ (p × k) product per run
        columns = theta.reshape(-1, runs, self.dim).transpose(1, 2, 0)  # (runs, p, k)
        residual = rows @ columns - self.y[batch][:, :, None]  # (runs, B, k)
        grad = rows.transpose(0, 2, 1) @ residual / size  # (runs, p, k)
        return grad.transpose(2, 0, 1).reshape(theta.shape)

    def gradient_noise_covariance(self, theta: object | None = None) -> np.ndarray:
        """Covariance of one uniformly drawn example's gradient at ``θ`` (default ``θ̂``).

        With residuals ``r_n = x_nᵀθ − y_n`` it is ``(1/N) Σ r_n² x_n x_nᵀ − ∇L ∇Lᵀ``; at ``θ̂``
        the full gradient ``∇L`` vanishes. A minibatch of ``B`` draws with replacement has
        covariance ``C(θ)/B``, so its expected squared norm is ``‖∇L(θ)‖² + tr C(θ)/B``.
        """
        theta = self.solution if theta is None else np.asarray(theta, dtype=float)
        if theta.shape != (self.dim,):
            raise ValueError(f"theta must have {self.dim} entries, got shape {theta.shape}")
        residual = self.X @ theta - self.y
        mean = self.X.T @ residual / self.n_examples
        return (self.X * residual[:, None] ** 2).T @ self.X / self.n_examples - np.outer(mean, mean)

    def local_nqm(self, theta0: object) -> NQM:
        """The NQM of this problem around ``θ̂``, in the eigenbasis of ``H`` (chapter 9).

        Curvatures are the eigenvalues ``h_i`` of ``H`` (descending), the noise variances the
        diagonal of ``QᵀCQ`` with ``C`` from :meth:`gradient_noise_covariance`, and the start
        ``Qᵀ(θ(0) − θ̂)``. For minibatches drawn with replacement the NQM's expected risk is
        exact as long as the gradient noise stays at its value at ``θ̂``; the noise of least
        squares also grows with ``‖θ − θ̂‖``, which the NQM leaves out.
        """
        h, Q = np.linalg.eigh(self.hessian)
        order = np.argsort(h)[::-1]
        h, Q = h[order], Q[:, order]
        c = np.einsum("ij,jk,ki->i", Q.T, self.gradient_noise_covariance(), Q)
        start = Q.T @ (np.asarray(theta0, dtype=float) - self.solution)
        return NQM(h, c, start)


    def sgd_risk_curve(
        self, theta0: object, steps: int, *, lr: float | np.ndarray, batch_size: int | None = None
    ) -> np.ndarray:
        """Exact ``E[L(θ_t)] − L(θ̂)``, t = 0..steps, of SGD with minibatches drawn with replacement (ch. 9).

        With ``δ = θ − θ̂`` and residuals ``e_n = x_nᵀθ̂ − y_n``, one example's gradient is
        ``g_n = x_n x_nᵀ δ + e_n x_n``, with mean ``Hδ`` over the examples. A minibatch of ``B``
        independent draws averages ``B`` of them, so the mean ``m = E[δ]`` and the second moment
        ``S = E[δδᵀ]`` follow a closed linear recursion::

            m ← (I − ηH) m
            S ← (I − ηH) S (I − ηH) + (η²/B) (M(S, m) − H S H),
            M(S, m) = (1/N) Σ_n (x_nᵀ S x_n + 2 e_n x_nᵀ m + e_n²) x_n x_nᵀ,

        and ``E[L(θ_t)] − L(θ̂) = ½ tr(H S)``, exactly. The local NQM (:meth:`local_nqm`) is this
        recursion with ``M(S, m) − H S H`` replaced by the noise at ``θ̂``, the ``e_n²`` term of
        ``M``: it drops the two terms of ``M`` that grow with ``δ`` and the ``− H S H``.
        ``lr`` is a number or a schedule of ``steps`` rates; ``batch_size=None`` is full-batch
        gradient descent (no noise). Costs ``O(N p²)`` per step.
        """
        steps = check_steps(steps)
        rates = np.broadcast_to(np.asarray(_check_lr(lr), dtype=float), (steps,))
        if batch_size is not None:
            batch_size = check_batch_size(batch_size)
        mean = np.asarray(theta0, dtype=float) - self.solution
        if mean.shape != (self.dim,):
            raise ValueError(f"theta0 must have {self.dim} entries, got shape {mean.shape}")
        second = np.outer(mean, mean)
        residual = self.X @ self.solution - self.y
        risk = np.empty(steps + 1)
        risk[0] = 0.5 * np.sum(self.hessian * second)
        for t in range(steps):
            contraction = np.eye(self.dim) - rates[t] * self.hessian
            new_second = contraction @ second @ contraction
            if batch_size is not None:
                weights = np.einsum("ni,ij,nj->n", self.X, second, self.X) + residual * (
                    2.0 * (self.X @ mean) + residual
                )
                moment = (self.X * weights[:, None]).T @ self.X / self.n_examples
                new_second += rates[t] ** 2 / batch_size * (moment - self.hessian @ second @ self.hessian)
            second, mean = new_second, contraction @ mean
            risk[t + 1] = 0.5 * np.sum(self.hessian * second)
        return risk

    def ridge_solution(self, weight_decay: float) -> np.ndarray:
        """Minimiser of ``L(θ) + (λ/2)‖θ‖²``: ``(H + λI)^{−1} Xᵀy/N`` (chapter 9)."""
        weight_decay = check_nonnegative("weight_decay", weight_decay)
        shifted = self.hessian + weight_decay * np.eye(self.dim)
        return np.linalg.solve(shifted, self.X.T @ self.y / self.n_examples)


def small_regression(
    n_examples: int = 200, *, feature_mean: float = 0.0, noise_std: float = 0.5, seed: int = 42
) -> LeastSquares:
    """Chapter 9's small 2-D regression: intercept and one feature, ``y = xᵀθ_true + noise``.

    Rows are ``x_n = (1, z_n)`` with features ``z_n ~ N(z̄, 1)`` of mean ``z̄ = feature_mean``;
    ``θ_true = (1.45, 0.93)`` and the noise is ``N(0, noise_std²)``. With ``z̄ = 0`` the Hessian
    is close to the identity; a larger ``|z̄|`` couples intercept and slope and raises ``κ``.
    """
    n_examples = check_steps(n_examples, "n_examples")
    if n_examples < 2:
        raise ValueError(f"n_examples must be an integer >= 2, got {n_examples!r}")
    noise_std = check_nonnegative("noise_std", noise_std)
    if not np.isfinite(feature_mean):
        raise ValueError(f"feature_mean must be a finite number, got {feature_mean!r}")
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n_examples), feature_mean + rng.standard_normal(n_examples)])
    y = X @ np.array([1.45, 0.93]) + noise_std * rng.standard_normal(n_examples)
    return LeastSquares(X, y)


def run_optimizer(
    problem: LeastSquares,
    optimizer: Optimizer | Sequence[Optimizer],
    theta0: object,
    steps: int,
    *,
    batch_size: int | None = None,
    runs: int = 1,
    seed: int = 0,
    lr_factors: object | None = None,
) -> np.ndarray:
    """Run ``optimizer`` on ``problem`` for ``runs`` independent runs; return every iterate (chapter 9).

    Each step draws, for every run, a minibatch of ``batch_size`` examples uniformly *with
    replacement* (independent minibatches, the NQM's assumption), or uses the full gradient
    when ``batch_size`` is None. With ``lr_factors`` (one per step) the learning rate of step
    ``t`` is ``optimizer.lr · lr_factors[t]``, like ``torch.optim.lr_scheduler.LambdaLR``.

    Returns an array of shape ``(steps + 1, *lr_shape, runs, p)``, where ``lr_shape`` is the
    leading shape of an array learning rate (e.g. ``(grid,)`` for ``lr`` of shape
    ``(grid, 1, 1)``) and empty for a number. Row 0 is ``θ(0)``.

    ``optimizer`` may also be a list of optimisers (learning rates of one shape). They then run
    side by side on the *same* minibatches — common random numbers, so that their differences
    are not blurred by different draws — with one gradient evaluation per step for all of them,
    and the result has shape ``(steps + 1, len(optimizer), *lr_shape, runs, p)``.
    """
    steps = check_steps(steps)
    runs = check_steps(runs, "runs")
    if runs < 1:
        raise ValueError(f"runs must be an integer >= 1, got {runs!r}")
    if batch_size is not None:
        batch_size = check_batch_size(batch_size)
    stacked = isinstance(optimizer, list | tuple)
    optimizers = list(optimizer) if stacked else [optimizer]
    if not optimizers or not all(isinstance(item, Optimizer) for item in optimizers):
        raise ValueError("optimizer must be an Optimizer or a non-empty list of them")
    base_lrs = [item.lr for item in optimizers]
    if len({np.shape(lr) for lr in base_lrs}) != 1:
        raise ValueError("the optimisers of a list must have learning rates of the same shape")
    factors = None
    if lr_factors is not None:
        factors = np.asarray(lr_factors, dtype=float)
        if factors.shape != (steps,) or not np.all(np.isfinite(factors)) or np.any(factors <= 0):
            raise ValueError(f"lr_factors must hold {steps} finite numbers > 0, got shape {factors.shape}")
    shape = np.broadcast_shapes(np.shape(base_lrs[0]), (runs, problem.dim))
    if stacked:
        shape = (len(optimizers), *shape)
    theta = np.broadcast_to(np.asarray(theta0, dtype=float), shape).copy()
    rng = np.random.default_rng(seed)
    path = np.empty((steps + 1, *shape))
    path[0] = theta
    try:
        for t in range(steps):
            if factors is not None:
                for item, base_lr in zip(optimizers, base_lrs, strict=True):
                    item.lr = base_lr * factors[t]
            batch = None if batch_size is None else rng.integers(0, problem.n_examples, (runs, batch_size))
            grad = problem.gradient(theta, batch)
            if stacked:
                new = np.empty_like(theta)
                for index, item in enumerate(optimizers):
                    new[index] = item.step(theta[index], grad[index])
                theta = new
            else:
                theta = optimizer.step(theta, grad)
            path[t + 1] = theta
    finally:
        for item, base_lr in zip(optimizers, base_lrs, strict=True):
            item.lr = base_lr
    return path


class TunedRuns(NamedTuple):
    """One optimiser's result of :func:`tune_then_rerun`.

    ``lr`` is the grid's best learning rate on the tuning runs and ``index`` its position in the
    grid; ``tuning_loss`` the mean final excess loss of the tuning runs for every rate of the grid;
    ``excess`` the excess loss of the fresh runs at ``lr`` (shape ``(steps + 1, runs)``) and
    ``final`` their last iterates (shape ``(runs, p)``).
    """

    lr: float
    index: int
    tuning_loss: np.ndarray
    excess: np.ndarray
    final: np.ndarray


def tune_then_rerun(
    problem: LeastSquares,
    optimizers: Mapping[str, Callable[[float | np.ndarray], Optimizer]],
    grid: object,
    theta0: object,
    steps: int,
    *,
    batch_size: int | None,
    tuning_runs: int,
    tuning_seed: int,
    runs: int,
    seed: int,
    lr_factors: object | None = None,
) -> dict[str, TunedRuns]:
    """Tune each optimiser's learning rate on some seeds, then report fresh runs at it (chapter 9).

    ``optimizers`` maps a name to a function building the optimiser from its learning rate (a
    class such as :class:`Adam` will do). The whole ``grid`` of rates of every optimiser runs at
    once on ``tuning_runs`` runs seeded with ``tuning_seed``, and for each optimiser the rate
    with the lowest mean final excess loss wins (tie-robust, :func:`~nqm_lib.theory.first_minimum`).
    Then ``runs`` new runs seeded with ``seed`` — which must differ from ``tuning_seed`` — are
    made at the winning rates. Every rate and every optimiser sees the same minibatches, in the
    tuning runs and in the fresh runs (:func:`run_optimizer` with a list). The tuning runs' score
    at the winning rate is biased low (it is the minimum of noisy estimates); the fresh runs are
    not. Returns a :class:`TunedRuns` per name.
    """
    if seed == tuning_seed:
        raise ValueError(f"seed must differ from tuning_seed (fresh runs), got {seed!r} for both")
    if not optimizers:
        raise ValueError("optimizers must name at least one optimiser")
    rates = np.asarray(grid, dtype=float)
    if rates.ndim != 1 or rates.size < 3:
        raise ValueError(f"grid must be a 1-D array of at least 3 learning rates, got shape {rates.shape}")
    settings = {"batch_size": batch_size, "lr_factors": lr_factors}
    makers = list(optimizers.values())
    sweeps = [make(rates[:, None, None]) for make in makers]  # one row of runs per learning rate
    sweep = run_optimizer(problem, sweeps, theta0, steps, runs=tuning_runs, seed=tuning_seed, **settings)
    tuning_loss = problem.excess_loss(sweep[-1]).mean(axis=-1)  # (optimisers, rates)
    best = [first_minimum(loss) for loss in tuning_loss]
    tuned = [make(float(rates[k])) for make, k in zip(makers, best, strict=True)]
    fresh = run_optimizer(problem, tuned, theta0, steps, runs=runs, seed=seed, **settings)
    excess = problem.excess_loss(fresh)  # (steps + 1, optimisers, runs)
    return {
        name: TunedRuns(float(rates[k]), k, tuning_loss[i], excess[:, i], fresh[-1, i])
        for i, (name, k) in enumerate(zip(optimizers, best, strict=True))
    }


class DrugResponse(NamedTuple):
    """Chapter 9's larger regression: the problem, the true coefficients and the active genes."""

    problem: LeastSquares
    theta_true: np.ndarray
    active: np.ndarray


def drug_response_regression(seed: int = 42) -> DrugResponse:
    """Chapter 9's synthetic drug-response regression (the lecture notes' recipe, our own draws).

    ``N = 2000`` cell lines and ``d = 50`` standardised gene-expression features in correlated
    pairs (correlation 0.6, genes of one pathway); a sparse truth whose 10 active genes have
    coefficients ``2 z`` with ``z ~ N(0, 1)``; targets with noise of standard deviation 1.5.
    """
    n_cells, n_genes = 2000, 50
    rng = np.random.default_rng(seed)
    correlation = np.eye(n_genes)
    for i in range(0, n_genes, 2):
        correlation[i, i + 1] = correlation[i + 1, i] = 0.6
    features = rng.standard_normal((n_cells, n_genes)) @ np.linalg.cholesky(correlation).T
    active = np.array([0, 3, 7, 12, 18, 25, 31, 38, 42, 47])
    theta_true = np.zeros(n_genes)
    theta_true[active] = 2.0 * rng.standard_normal(active.size)
    targets = features @ theta_true + 1.5 * rng.standard_normal(n_cells)
    return DrugResponse(LeastSquares(features, targets), theta_true, active)


# ---------------------------------------------------------------------------------------------
# A 1-D non-convex landscape (seed 003's): a broad bowl with ripples.
# ---------------------------------------------------------------------------------------------


def landscape_loss(theta: object) -> np.ndarray:
    """Chapter 9's landscape ``f(θ) = ½ (θ − 3)² + 2 sin(3θ) + 0.3 sin(7θ)``: a bowl with ripples."""
    theta = np.asarray(theta, dtype=float)
    return 0.5 * (theta - 3.0) ** 2 + 2.0 * np.sin(3.0 * theta) + 0.3 * np.sin(7.0 * theta)


def landscape_gradient(theta: object) -> np.ndarray:
    """``f'(θ) = (θ − 3) + 6 cos(3θ) + 2.1 cos(7θ)``."""
    theta = np.asarray(theta, dtype=float)
    return (theta - 3.0) + 6.0 * np.cos(3.0 * theta) + 2.1 * np.cos(7.0 * theta)


def landscape_minima(lo: float = -6.0, hi: float = 12.0, points: int = 200_001) -> np.ndarray:
    """All local minima of :func:`landscape_loss` in ``[lo, hi]``, ascending, to ~1e-10 (chapter 9).

    Found as sign changes of ``f'`` from − to + on a fine grid, refined by bisection. The
    default interval holds every minimum: outside ``[3 − 8.1, 3 + 8.1]`` the bowl's slope
    ``θ − 3`` outweighs the ripples' ``|6 cos 3θ + 2.1 cos 7θ| ≤ 8.1``, so ``f'`` has one sign.
    Computed once per interval (the widget of chapter 9 asks on every redraw).
    """
    return _landscape_minima(float(lo), float(hi), int(points)).copy()


@functools.cache
def _landscape_minima(lo: float, hi: float, points: int) -> np.ndarray:
    grid = np.linspace(lo, hi, points)
    slope = landscape_gradient(grid)
    left = np.flatnonzero((slope[:-1] < 0) & (slope[1:] >= 0))
    a, b = grid[left], grid[left + 1]
    for _ in range(60):
        mid = 0.5 * (a + b)
        negative = landscape_gradient(mid) < 0
        a, b = np.where(negative, mid, a), np.where(negative, b, mid)
    return 0.5 * (a + b)


def basin_of(theta: object, minima: np.ndarray | None = None) -> np.ndarray:
    """Index (into ``minima``) of the local minimum whose basin contains each ``θ`` (chapter 9).

    The basin of a minimum is the interval between the local maxima on either side, so
    gradient flow from ``θ`` ends at ``minima[basin_of(θ)]``.
    """
    minima = landscape_minima() if minima is None else np.asarray(minima, dtype=float)
    # the local maxima separate consecutive minima; one lies between each pair
    lo, hi = minima[:-1].copy(), minima[1:].copy()
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        rising = landscape_gradient(mid) > 0
        lo, hi = np.where(rising, mid, lo), np.where(rising, hi, mid)
    maxima = 0.5 * (lo + hi)
    return np.searchsorted(maxima, np.asarray(theta, dtype=float))


def noisy_descent_1d(
    theta0: float,
    steps: int,
    *,
    lr: float | np.ndarray,
    noise_std: float | Sequence[float],
    runs: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Gradient descent on :func:`landscape_loss` with additive gradient noise, many runs (chapter 9).

    ``θ ← θ − η_t (f'(θ) + ε)``, ``ε ~ N(0, noise_std²)`` fresh every step (``noise_std = 0``
    is plain gradient descent). ``lr`` is a number or a schedule of ``steps`` numbers.
    Returns the iterates, shape ``(steps + 1, runs)``. With a list of noise levels the result has
    shape ``(steps + 1, levels, runs)``, and every level scales the *same* standard-normal draws
    (common random numbers): each row equals a separate call with that level and ``seed``.
    """
    steps = check_steps(steps)
    runs = check_steps(runs, "runs")
    if runs < 1:
        raise ValueError(f"runs must be an integer >= 1, got {runs!r}")
    lr_array = np.asarray(_check_lr(lr))
    if lr_array.ndim > 1 or (lr_array.ndim == 1 and lr_array.size != steps):
        raise ValueError(f"lr must be a number or a schedule of {steps} numbers, got shape {lr_array.shape}")
    lrs = np.broadcast_to(lr_array, (steps,))
    levels = np.asarray(noise_std, dtype=float)
    if levels.ndim > 1 or levels.size == 0:
        raise ValueError(f"noise_std must be a number >= 0 or a list of them, got {noise_std!r}")
    for level in levels.ravel():
        check_nonnegative("noise_std", float(level))
    scale = levels[:, None] if levels.ndim == 1 else levels
    if not np.isfinite(theta0):
        raise ValueError(f"theta0 must be a finite number, got {theta0!r}")
    rng = np.random.default_rng(seed)
    path = np.empty((steps + 1, *np.shape(scale)[:-1], runs))
    path[0] = theta0
    theta = path[0].copy()
    noisy = bool(np.any(levels > 0))
    for t in range(steps):
        noise = scale * rng.standard_normal(runs) if noisy else 0.0
        theta = theta - lrs[t] * (landscape_gradient(theta) + noise)
        path[t + 1] = theta
    return path
