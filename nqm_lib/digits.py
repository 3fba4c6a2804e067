"""A real dataset for chapter 10: scikit-learn's handwritten digits, as two training problems.

:func:`load_digits_split` reads the 1,797 8×8 images of ``sklearn.datasets.load_digits``
(shipped inside scikit-learn, so it works offline and on Colab) and splits them into a training
and a test set. Two problems are trained on the *training* split, with minibatches drawn
uniformly *with replacement* (so the minibatch noise is exactly the training set's per-example
covariance divided by ``B``):

- :class:`DigitsSoftmax`: softmax (multinomial logistic) regression with weight decay, a convex
  problem whose optimum :meth:`DigitsSoftmax.optimum` computes to machine precision by Newton's
  method; its excess risk is the training loss minus the optimum's;
- :class:`DigitsMLP`: a one-hidden-layer tanh network without weight decay, whose training loss
  can approach 0; its excess risk is the training loss itself.

Both have the interface of :mod:`nqm_lib.networks`' problems (``n_params``, ``init``,
``sample``, ``loss``, ``excess_risk``), so :func:`nqm_lib.networks.train` trains them, and
``examples()`` (the whole training set), so :mod:`nqm_lib.network_nqm` measures their gradient
noise exactly. Imports PyTorch and scikit-learn; ``import nqm_lib`` does not import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .networks import _check_count, _check_params, _check_seeds
from .validation import check_nonnegative, check_steps

__all__ = ["DigitsMLP", "DigitsSoftmax", "DigitsSplit", "load_digits_split"]

_DTYPE = torch.float64
_CLASSES = 10
_PIXELS = 64


class DigitsSplit(NamedTuple):
    """The digits, standardised with the training set's pixel means and standard deviations."""

    x_train: torch.Tensor
    """Training images, shape ``(n_train, 64)``."""
    y_train: torch.Tensor
    """Training labels ``0 … 9`` (``int64``)."""
    x_test: torch.Tensor
    """Test images, shape ``(n_test, 64)``."""
    y_test: torch.Tensor
    """Test labels."""


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """The 1,797 digits of ``sklearn.datasets.load_digits``, shuffled and split into training and test sets.

    A NumPy generator seeded by ``seed`` permutes the images; the last ``round(test_fraction ·
    1797)`` form the test set. Every pixel is standardised with the training set's mean and
    standard deviation (pixels that are constant on the training set are only centred).
    """
    from sklearn.datasets import load_digits

    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    seed = check_steps(seed, "seed")
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(digits.target.size)
    n_test = round(test_fraction * order.size)
    train, test = order[: order.size - n_test], order[order.size - n_test :]
    x = digits.data.astype(float)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x = (x - mean) / std
    return DigitsSplit(
        torch.tensor(x[train], dtype=_DTYPE),
        torch.tensor(digits.target[train], dtype=torch.int64),
        torch.tensor(x[test], dtype=_DTYPE),
        torch.tensor(digits.target[test], dtype=torch.int64),
    )


class _DigitsProblem:
    """Shared part: cross-entropy on minibatches drawn with replacement from the training split."""

    n_params: int
    weight_decay: float
    offset: float = 0.0

    def __init__(self, split: DigitsSplit | None, weight_decay: float) -> None:
        self.split = load_digits_split() if split is None else split
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.x, self.y = self.split.x_train, self.split.y_train

    def logits(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def sample(self, shape: Sequence[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Training examples drawn uniformly with replacement: images ``(*shape, 64)``, labels ``shape``."""
        index = torch.randint(0, self.y.numel(), tuple(shape), generator=generator)
        return self.x[index], self.y[index]

    def examples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole training set as ``n_train`` one-example batches: ``(n, 1, 64)`` and ``(n, 1)``."""
        return self.x.unsqueeze(1), self.y.unsqueeze(1)

    def loss(self, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-replica minibatch loss, mean cross-entropy plus ``½ λ ‖θ‖²``; ``x`` is ``(R, B, 64)``."""
        logits = self.logits(params, x)
        cross_entropy = torch.nn.functional.cross_entropy(
            logits.reshape(-1, _CLASSES), y.reshape(-1), reduction="none"
        ).reshape(y.shape)
        return cross_entropy.mean(dim=-1) + 0.5 * self.weight_decay * params.pow(2).sum(dim=-1)

    def training_loss(self, params: torch.Tensor) -> torch.Tensor:
        """The full training loss of every replica (shape ``(R,)``)."""
        params = _check_params(self, params)
        r = params.shape[0]
        return self.loss(params, self.x.expand(r, -1, -1), self.y.expand(r, -1))

    def excess_risk(self, params: torch.Tensor) -> torch.Tensor:
        """The training loss minus :attr:`offset` (the optimum's loss, or 0), per replica."""
        return self.training_loss(params) - self.offset

    def accuracy(self, params: torch.Tensor, *, test: bool = True) -> np.ndarray:
        """Fraction of test (or training) images classified correctly, per replica."""
        params = _check_params(self, params)
        x, y = (self.split.x_test, self.split.y_test) if test else (self.x, self.y)
        with torch.no_grad():
            predicted = self.logits(params, x.expand(params.shape[0], -1, -1)).argmax(dim=-1)
        return (predicted == y).double().mean(dim=-1).numpy()


class DigitsSoftmax(_DigitsProblem):
    """Softmax regression on the digits with weight decay ``λ``: convex, with one optimum (chapter 10).

    Parameters ``θ = (W, b)``, ``W`` of shape ``10 × 64``, logits ``W x + b``; the loss is the mean
    cross-entropy plus ``½ λ ‖θ‖²`` (``λ > 0`` makes the optimum unique and finite). Every seed
    starts at ``θ = 0`` (the seeds differ in their minibatches). The excess risk is the training
    loss minus the optimum's, computed by :meth:`optimum` at construction.
    """

    def __init__(self, weight_decay: float = 1e-3, *, split: DigitsSplit | None = None) -> None:
        super().__init__(split, weight_decay)
        if self.weight_decay <= 0:
            raise ValueError(f"weight_decay must be > 0 (a unique optimum), got {weight_decay!r}")
        self.n_params = _CLASSES * (_PIXELS + 1)
        self.theta_star, self.offset = self.optimum()

    def logits(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of every replica: ``params`` ``(R, 650)``, ``x`` ``(R, B, 64)`` → ``(R, B, 10)``."""
        r = params.shape[0]
        w = params[:, : _CLASSES * _PIXELS].reshape(r, _CLASSES, _PIXELS)
        b = params[:, _CLASSES * _PIXELS :]
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    def init(self, seeds: Sequence[int]) -> torch.Tensor:
        """``θ = 0`` for every seed (shape ``(len(seeds), 650)``)."""
        return torch.zeros((len(_check_seeds(seeds)), self.n_params), dtype=_DTYPE)

    def optimum(self, *, tolerance: float = 1e-13, max_iterations: int = 50) -> tuple[torch.Tensor, float]:
        """The minimiser of the training loss and its loss, by Newton's method from ``θ = 0``.

        The loss is strongly convex (``λ > 0``), so the exact-Hessian Newton iteration converges
        quadratically; it stops when the gradient's norm is below ``tolerance``. Raises
        ``RuntimeError`` if it does not within ``max_iterations``.
        """

        def loss(p: torch.Tensor) -> torch.Tensor:
            return self.training_loss(p.unsqueeze(0))[0]

        theta = torch.zeros(self.n_params, dtype=_DTYPE)
        for _ in range(_check_count("max_iterations", max_iterations)):
            gradient = torch.autograd.functional.jacobian(loss, theta)
            if float(gradient.norm()) < tolerance:
                return theta, float(loss(theta))
            theta = theta - torch.linalg.solve(self.hessian(theta), gradient)
        raise RuntimeError(
            f"Newton's method did not reach |gradient| < {tolerance:g} in {max_iterations} steps"
        )

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        """The exact Hessian of the training loss at ``theta`` (650 × 650), in closed form.

        With softmax probabilities ``p`` and inputs extended by a 1 (for the bias), the
        cross-entropy's Hessian is the average of ``(diag p − p pᵀ) ⊗ x xᵀ``, plus ``λ I``.
        Parameters are ordered as in :meth:`logits`: ``W`` row by row, then ``b``.
        """
        theta = torch.as_tensor(theta, dtype=_DTYPE).reshape(1, -1)
        _check_params(self, theta)
        with torch.no_grad():
            p = torch.softmax(self.logits(theta, self.x.unsqueeze(0))[0], dim=-1)  # (n, 10)
            n = self.x.shape[0]
            weights = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)  # (n, 10, 10)
            x = self.x
            blocks = torch.einsum("nkl,ni,nj->kilj", weights, x, x) / n  # W–W
            cross = torch.einsum("nkl,ni->kil", weights, x) / n  # W–b
            bias = weights.mean(dim=0)  # b–b
            size = _CLASSES * _PIXELS
            hessian = torch.empty((self.n_params, self.n_params), dtype=_DTYPE)
            hessian[:size, :size] = blocks.reshape(size, size)
            hessian[:size, size:] = cross.reshape(size, _CLASSES)
            hessian[size:, :size] = cross.reshape(size, _CLASSES).T
            hessian[size:, size:] = bias
            return hessian + self.weight_decay * torch.eye(self.n_params, dtype=_DTYPE)


class DigitsMLP(_DigitsProblem):
    """A one-hidden-layer tanh network on the digits (chapter 10); its excess risk is the training loss.

    ``f(x) = W₂ tanh(W₁ x + b₁) + b₂`` with ``hidden`` units; ``W₁ ~ N(0, 1/64)``,
    ``W₂ ~ N(0, 1/hidden)``, biases 0 at initialisation (one initialisation per seed). Without
    weight decay (the default) the training loss has infimum 0, so the training loss itself is the
    excess risk.
    """

    def __init__(
        self, hidden: int = 16, weight_decay: float = 0.0, *, split: DigitsSplit | None = None
    ) -> None:
        super().__init__(split, weight_decay)
        self.hidden = _check_count("hidden", hidden)
        self.n_params = self.hidden * (_PIXELS + 1) + _CLASSES * (self.hidden + 1)

    def _unflatten(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, r = self.hidden, params.shape[0]
        w1 = params[:, : h * _PIXELS].reshape(r, h, _PIXELS)
        b1 = params[:, h * _PIXELS : h * (_PIXELS + 1)]
        rest = params[:, h * (_PIXELS + 1) :]
        w2 = rest[:, : _CLASSES * h].reshape(r, _CLASSES, h)
        b2 = rest[:, _CLASSES * h :]
        return w1, b1, w2, b2

    def logits(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits of every replica: ``params`` ``(R, n_params)``, ``x`` ``(R, B, 64)`` → ``(R, B, 10)``."""
        w1, b1, w2, b2 = self._unflatten(params)
        hidden = torch.tanh(torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2)))
        return torch.baddbmm(b2.unsqueeze(1), hidden, w2.transpose(1, 2))

    def init(self, seeds: Sequence[int]) -> torch.Tensor:
        """One random initialisation per seed, shape ``(len(seeds), n_params)``."""
        rows = []
        for seed in _check_seeds(seeds):
            generator = torch.Generator().manual_seed(20_000 + seed)
            w1 = torch.randn(self.hidden * _PIXELS, generator=generator, dtype=_DTYPE) / math.sqrt(_PIXELS)
            w2 = torch.randn(_CLASSES * self.hidden, generator=generator, dtype=_DTYPE) / math.sqrt(
                self.hidden
            )
            rows.append(
                torch.cat(
                    [w1, torch.zeros(self.hidden, dtype=_DTYPE), w2, torch.zeros(_CLASSES, dtype=_DTYPE)]
                )
            )
        return torch.stack(rows)
