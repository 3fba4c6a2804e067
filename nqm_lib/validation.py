"""Parameter checks shared by every public function of :mod:`nqm_lib`.

Every check raises :class:`ValueError` whose message names the parameter, the value it got
and the range it accepts, so that a student who mistypes a slider value or a keyword argument
learns exactly what to change.  Settings that are valid but make the iteration diverge raise
:class:`InstabilityError` (a subclass of ``ValueError``) instead of returning ``inf`` or ``NaN``.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "InstabilityError",
    "check_batch_size",
    "check_fraction",
    "check_nonnegative",
    "check_positive",
    "check_positive_array",
    "check_nonnegative_array",
    "check_precond_power",
    "check_steps",
]


class InstabilityError(ValueError):
    """The hyperparameters are valid, but the iteration diverges on this problem.

    The message says which coordinate breaks which stability condition, and the largest
    learning rate that would be stable, so a widget can show it instead of a plot.
    """


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, threshold=6, precision=4)
    return repr(value)


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number > 0, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number >= 0, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not in ``[0, 1)``.

    Used for the momentum ``β`` and the EMA decay ``γ``: both must be strictly below 1,
    because at 1 the iteration no longer forgets its past.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number in [0, 1), got {_describe(value)}")
    value = float(value)
    if not (0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def check_precond_power(value: object) -> float:
    """Return the preconditioning power ``p`` as a float, or raise if it is not in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"precond_power must be a real number in [0, 1], got {_describe(value)}")
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"precond_power must be in [0, 1], got {value!r}")
    return value


def check_batch_size(value: object) -> int:
    """Return the batch size as an int, or raise if it is not an integer ``>= 1``."""
    is_integer = isinstance(value, numbers.Integral) or (
        isinstance(value, numbers.Real) and float(value).is_integer()
    )
    if isinstance(value, bool) or not is_integer:
        raise ValueError(f"batch_size must be an integer >= 1, got {_describe(value)}")
    value = int(value)
    if value < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {value!r}")
    return value


def check_steps(value: object, name: str = "steps") -> int:
    """Return a step count as an int, or raise if it is not an integer ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= 0, got {_describe(value)}")
    value = int(value)
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def _as_1d_float_array(name: str, values: object) -> np.ndarray:
    try:
        array = np.array(values, dtype=float)  # a copy: the caller's array is never aliased
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers, got {_describe(values)}") from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got an array of shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite numbers, got {_describe(array)}")
    return array


def check_positive_array(name: str, values: object) -> np.ndarray:
    """Return ``values`` as a 1-D float array, or raise unless every entry is finite and > 0."""
    array = _as_1d_float_array(name, values)
    if np.any(array <= 0):
        bad = int(np.flatnonzero(array <= 0)[0])
        raise ValueError(f"{name} must be > 0 in every coordinate, got {name}[{bad}] = {float(array[bad])!r}")
    return array


def check_nonnegative_array(name: str, values: object) -> np.ndarray:
    """Return ``values`` as a 1-D float array, or raise unless every entry is finite and >= 0."""
    array = _as_1d_float_array(name, values)
    if np.any(array < 0):
        bad = int(np.flatnonzero(array < 0)[0])
        raise ValueError(f"{name} must be >= 0 in every coordinate, got {name}[{bad}] = {array[bad]!r}")
    return array
