"""SGD on a finite training set, in PyTorch: sampling with and without replacement (chapter 7).

A training set of ``N`` examples ``(x_n, y_n)`` with the least-squares loss
``ℓ(θ; x, y) = ½ (θᵀx − y)²``. :func:`least_squares` fits it exactly,
:func:`excess_empirical_risk` measures how far an iterate is from that fit, and
:func:`epoch_noise_floor` runs many SGD runs at once — each epoch either a fresh permutation
(``DataLoader(shuffle=True)``) or ``N`` independent uniform indices
(``RandomSampler(replacement=True)``) — and records the excess training risk at the end of
every epoch. :func:`training_set_nqm` is the NQM that sampling with replacement sees near the
fit: the curvatures are the eigenvalues of the training set's Hessian, the noise the
per-example gradient variances in that eigenbasis.

``import nqm_lib`` does not import this module (nor PyTorch); import it explicitly.
"""

from __future__ import annotations

import numpy as np
import torch

from .problem import NQM
from .validation import check_batch_size, check_positive_array, check_steps

__all__ = ["epoch_noise_floor", "excess_empirical_risk", "least_squares", "training_set_nqm"]


def _check_training_set(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim < 2 or y.shape != x.shape[:-1]:
        raise ValueError(
            f"x must have shape (..., N, d) and y shape (..., N); got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )


def least_squares(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The least-squares fit ``θ̂`` of ``y ≈ θᵀx``, from the normal equations ``XᵀX θ̂ = Xᵀy``.

    ``x`` has shape ``(..., N, d)`` and ``y`` shape ``(..., N)``: a leading batch of training
    sets is solved at once, and ``θ̂`` has shape ``(..., d)``. ``θ̂`` minimises the empirical
    risk ``L̂(θ) = (1/N) Σ_n ½ (θᵀx_n − y_n)²``.
    """
    _check_training_set(x, y)
    return torch.linalg.solve(x.mT @ x, (x.mT @ y.unsqueeze(-1)).squeeze(-1))


def excess_empirical_risk(theta: torch.Tensor, x: torch.Tensor, theta_hat: torch.Tensor) -> torch.Tensor:
    """``L̂(θ) − L̂(θ̂) = ½ (θ − θ̂)ᵀ Ĥ (θ − θ̂)``, computed without cancellation.

    ``Ĥ = XᵀX / N`` is the Hessian of the empirical risk and ``θ̂`` its minimiser
    (:func:`least_squares`); since ``∇L̂(θ̂) = 0`` the identity is exact, and computing it from
    the predictions ``(θ − θ̂)ᵀx_n`` avoids subtracting two nearly equal losses. ``theta``
    may carry leading batch axes: the result has shape ``theta.shape[:-1]``.
    """
    predictions = ((theta - theta_hat).unsqueeze(-2) * x).sum(dim=-1)  # (..., N)
    return 0.5 * predictions.pow(2).mean(dim=-1)


def epoch_noise_floor(
    x: torch.Tensor,
    y: torch.Tensor,
    lrs: object,
    *,
    replacement: bool,
    batch_size: int = 10,
    epochs: int = 30,
    runs: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Mean excess training risk at the end of every epoch of minibatch SGD, for each learning rate.

    Every run starts at the least-squares fit ``θ̂`` of the training set ``(x, y)`` (shapes
    ``(N, d)`` and ``(N,)``) and takes plain SGD steps ``θ ← θ − η g`` on minibatches of
    ``batch_size`` examples. Each epoch is, per run, either a fresh random permutation of the
    ``N`` indices cut into consecutive batches (``replacement=False``: what
    ``DataLoader(shuffle=True)`` does) or ``N`` independent uniform indices
    (``replacement=True``: ``RandomSampler(replacement=True, num_samples=N)``). All
    ``len(lrs) × runs`` runs advance together as the rows of one tensor.

    Returns an array of shape ``(epochs, len(lrs))``: the excess training risk
    ``L̂(θ) − L̂(θ̂)`` (:func:`excess_empirical_risk`) averaged over the runs, after each epoch.
    """
    _check_training_set(x, y)
    if x.ndim != 2:
        raise ValueError(f"x must be one training set of shape (N, d), got shape {tuple(x.shape)}")
    lr_values = check_positive_array("lrs", lrs)
    batch_size = check_batch_size(batch_size)
    n = x.shape[0]
    if batch_size > n:
        raise ValueError(f"batch_size = {batch_size} must be at most the number of examples N = {n}")
    epochs, runs = check_steps(epochs, "epochs"), check_steps(runs, "runs")
    if epochs < 1 or runs < 1:
        raise ValueError(f"epochs and runs must be integers >= 1, got epochs = {epochs}, runs = {runs}")

    generator = torch.Generator().manual_seed(seed)
    theta_hat = least_squares(x, y)
    lr = torch.tensor(lr_values, dtype=x.dtype)[:, None, None]
    theta = theta_hat.repeat(lr_values.size, runs, 1)  # one row per (η, run)
    floor = np.empty((epochs, lr_values.size))
    for epoch in range(epochs):
        if replacement:
            order = torch.randint(n, (runs, n), generator=generator)
        else:
            order = torch.rand(runs, n, generator=generator).argsort(dim=1)
        for index in order.split(batch_size, dim=1):
            xb, yb = x[index], y[index]  # (runs, B, d), (runs, B)
            residual = (xb * theta.unsqueeze(2)).sum(dim=-1) - yb  # (len(lrs), runs, B)
            gradient = (residual.unsqueeze(-1) * xb).mean(dim=2)  # mean of (θᵀx − y) x over the batch
            theta = theta - lr * gradient
        floor[epoch] = excess_empirical_risk(theta, x, theta_hat).mean(dim=1).numpy()
    return floor


def training_set_nqm(x: torch.Tensor, y: torch.Tensor) -> NQM:
    """The NQM of a least-squares training set near its fit ``θ̂``, in the eigenbasis of ``Ĥ``.

    The curvatures are the eigenvalues of ``Ĥ = XᵀX / N``; the noise ``c_i`` is the variance
    (divisor ``N``) of the per-example gradients ``(θ̂ᵀx_n − y_n) x_n`` along eigenvector
    ``i`` (their mean is ``∇L̂(θ̂) = 0``); the start is the fit itself, ``θ(0) = θ̂``, i.e.
    ``0`` in the NQM's coordinates. This is the model of SGD with sampling *with* replacement
    that keeps only the noise at ``θ̂`` (the noise that grows with the distance to ``θ̂`` is
    left out).
    """
    _check_training_set(x, y)
    if x.ndim != 2:
        raise ValueError(f"x must be one training set of shape (N, d), got shape {tuple(x.shape)}")
    n = x.shape[0]
    theta_hat = least_squares(x, y)
    curvatures, basis = torch.linalg.eigh(x.T @ x / n)
    gradients = (x @ theta_hat - y)[:, None] * x  # per-example gradients at θ̂
    c = torch.diagonal(basis.T @ (gradients.T @ gradients / n) @ basis)
    order = torch.argsort(curvatures, descending=True)  # the course sorts h_1 ≥ … ≥ h_d
    return NQM(curvatures[order].numpy(), c[order].numpy(), theta0=0.0)
