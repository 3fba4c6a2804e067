"""A shuffling sampler whose position can be saved, to resume a run mid-epoch (chapter 8).

``DataLoader(shuffle=True)`` draws a new permutation of the examples at the start of every
epoch and keeps no record of how far into it the loop is, so a run stopped in the middle of
an epoch cannot restart at the same minibatch. :class:`ResumableSampler` shuffles the same
way but makes the order of epoch ``e`` a function of ``(seed, e)`` alone, so that its whole
state is three integers — the seed, the epoch and the number of examples already served in
it — which ``state_dict()`` returns and ``load_state_dict()`` restores, like every other piece
of a checkpoint.

``import nqm_lib`` does not import this module (nor PyTorch); import it explicitly.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["ResumableSampler"]


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class ResumableSampler(Sampler[int]):
    """Shuffle ``n_examples`` indices anew every epoch, and resume in the middle of one.

    Iterating yields the indices of the current epoch in a random order — a permutation
    drawn by ``torch.randperm`` with a generator seeded from ``(seed, epoch)`` — starting
    after the ``position`` examples already served; at the end of a full pass the epoch
    counter advances. Pass it to ``DataLoader(dataset, batch_size=B, sampler=…)``.

    ``state_dict()`` is ``{"seed": s, "epoch": e, "position": k}``. With ``num_workers=0`` the loader
    asks for indices only when the loop asks for a minibatch, so ``position`` is exactly
    ``B`` times the number of minibatches the loop has received in this epoch. (Worker
    processes prefetch minibatches: there, save the position the loop has consumed.)
    """

    def __init__(self, n_examples: int, *, seed: int = 0) -> None:
        super().__init__()
        self.n_examples = _check_count("n_examples", n_examples, 1)
        self.seed = _check_count("seed", seed, 0)
        self.epoch = 0
        self.position = 0

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of the indices that epoch ``epoch`` serves (a function of seed and epoch)."""
        epoch = _check_count("epoch", epoch, 0)
        key = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)
        return torch.randperm(self.n_examples, generator=torch.Generator().manual_seed(key))

    def __iter__(self) -> Iterator[int]:
        """Yield the rest of the current epoch's indices, then move on to the next epoch."""
        order = self.order(self.epoch).tolist()
        while self.position < self.n_examples:
            index = order[self.position]
            self.position += 1
            yield index
        self.epoch += 1
        self.position = 0

    def __len__(self) -> int:
        """Number of indices the next iteration yields (the rest of the current epoch)."""
        return self.n_examples - self.position

    def state_dict(self) -> dict[str, int]:
        """The sampler's state: ``{"seed": s, "epoch": e, "position": k}``."""
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a state saved by :meth:`state_dict`."""
        self.seed = _check_count("seed", state["seed"], 0)
        self.epoch = _check_count("epoch", state["epoch"], 0)
        self.position = _check_count("position", state["position"], 0)
        if self.position > self.n_examples:
            raise ValueError(f"position must be at most n_examples = {self.n_examples}, got {self.position}")
