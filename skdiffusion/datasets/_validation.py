"""Argument checks shared by the integrator and the generators.

Every failure is a ValueError whose message starts with the argument's name.
"""

import numbers

import numpy as np


def check_int(name, value, low):
    """``value`` as an int >= low (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
    return int(value)


def check_real(name, value, *, positive=False):
    """``value`` as a finite float, > 0 if ``positive``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}.")
    return float(value)
