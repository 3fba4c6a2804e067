"""The grids of the paper's notebook, the search horizon, and the argument checks (chapter 6).

:data:`~nqm_lib.batch_scaling.PAPER_LRS`, :data:`~nqm_lib.batch_scaling.PAPER_SGD_LRS` and
:data:`~nqm_lib.batch_scaling.PAPER_DECAYS` are the hyperparameter grids of the public notebook of
Zhang et al. (2019), which every tuned search of chapter 6 uses;
:data:`~nqm_lib.batch_scaling.DEFAULT_MAX_STEPS` is the default search horizon. The checks turn a
bad argument of any function of :mod:`nqm_lib.batch_scaling` into a ``ValueError`` that names the
parameter, its value and the valid range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..validation import check_batch_size, check_positive, check_steps

__all__ = ["DEFAULT_MAX_STEPS", "PAPER_DECAYS", "PAPER_LRS", "PAPER_SGD_LRS"]

#: Default search horizon (the paper's notebook also stops its SGD search at 10⁹ steps).
DEFAULT_MAX_STEPS = 10**9


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


#: The grids of the paper's public notebook, first η for plain SGD (100 values in [10⁻⁵, 10^0.5]) ...
PAPER_SGD_LRS = _read_only(np.logspace(-5.0, 0.5, 100))
#: ... η for the momentum and EMA searches (100 values in [10⁻⁸, 10]) ...
PAPER_LRS = _read_only(np.logspace(-8.0, 1.0, 100))
#: ... and β or γ ∈ 1 − logspace(−5, 0, 20) (from 0.99999 down to 0, which is plain SGD).
PAPER_DECAYS = _read_only(1.0 - np.logspace(-5.0, 0.0, 20))


# ----------------------------------------------------------------------------------- validation


def _check_target(target: object) -> float:
    try:
        return check_positive("target", target)
    except ValueError:
        raise ValueError(f"target must be a finite number > 0 (a risk level), got {target!r}") from None


def _check_max_steps(max_steps: object) -> int:
    value = check_steps(max_steps, "max_steps")
    if value < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    return value


def _check_grid(name: str, values: object, check: Callable[[str, object], float]) -> np.ndarray:
    """A non-empty 1-D grid whose every entry passes ``check(name, value)``."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {values!r}") from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    for value in array:
        check(name, float(value))  # raises with the parameter, the value and the valid range
    return array


def _check_batch_sizes(batch_sizes: object) -> np.ndarray:
    try:
        array = np.asarray(batch_sizes)
    except (TypeError, ValueError):
        raise ValueError(
            f"batch_sizes must be a non-empty 1-D sequence of integers >= 1, got {batch_sizes!r}"
        ) from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"batch_sizes must be a non-empty 1-D sequence of integers >= 1, got shape {array.shape}"
        )
    try:
        return np.array([check_batch_size(value.item()) for value in array], dtype=np.int64)
    except ValueError as error:
        raise ValueError(f"batch_sizes: {error}") from None
