"""Vector fields of the dynamical systems, on arrays of shape ``(..., n_dim)``."""

import functools

import numpy as np

from .._validation import check_numeric

# The paper's normalisation of Lorenz 63 states (Finn et al., 2024, public code):
# x_normalised = (x - LORENZ63_SHIFT) / LORENZ63_SCALE.
LORENZ63_SHIFT = np.array([0.0450, 0.0451, 23.5463])
LORENZ63_SCALE = np.array([7.9239, 9.0124, 8.6261])

# Climatological mean and standard deviation of one Lorenz 96 variable for 40
# variables and F=8, measured with this package's RK4 (dt=0.01) over 32
# trajectories x 1000 MTU, all variables pooled (standard error of the mean
# about 0.003; the literature gives 2.34 and 3.64):
# datasets._generators._measure_lorenz96_climatology(
#     40, 8.0, n_trajectories=32, n_steps=100_000)
LORENZ96_MEAN = 2.3400
LORENZ96_STD = 3.6393


@functools.lru_cache(maxsize=8)
def _lorenz63_matrices(sigma, rho, beta):
    linear = np.array([[-sigma, rho, 0.0], [sigma, -1.0, 0.0], [0.0, 0.0, -beta]])
    # x times (0, -z, y): the two quadratic terms -x z and x y.
    quadratic = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    return linear, quadratic


def lorenz63(x, *, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    """Time derivative of the Lorenz (1963) system.

    Parameters
    ----------
    x : array-like of shape (..., 3)
        States; the last axis holds the three variables.
    sigma : float, default=10.0
        Prandtl number.
    rho : float, default=28.0
        Rayleigh number.
    beta : float, default=8/3
        Geometric factor.

    Returns
    -------
    dxdt : ndarray of shape (..., 3)
        ``sigma (y - x), x (rho - z) - y, x y - beta z``.

    See Also
    --------
    rk4 : Integrate the vector field with fixed steps.

    Notes
    -----
    E. N. Lorenz (1963), "Deterministic nonperiodic flow", J. Atmos. Sci. 20,
    130-141. The classical parameters give the butterfly attractor.

    The field is evaluated as ``x @ linear + x[..., :1] * (x @ quadratic)``:
    linear terms plus ``x`` times a linear map. Two small matrix products cost
    fewer numpy calls than assembling the three components, which matters
    because RK4 calls it four times per step for a small batch of states.

    Examples
    --------
    >>> from skdiffusion.datasets import lorenz63
    >>> lorenz63([1.0, 1.0, 1.0])
    array([ 0.        , 26.        , -1.66666667])
    """
    x = _check_states(x, "lorenz63", 3)
    return _checked_derivative(_lorenz63(x, sigma, rho, beta), x, "lorenz63")


def _lorenz63(x, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    """:func:`lorenz63` without the checks, for the integration loops."""
    linear, quadratic = _lorenz63_matrices(sigma, rho, beta)
    return x @ linear + x[..., :1] * (x @ quadratic)


def lorenz96(x, *, forcing=8.0):
    """Time derivative of the Lorenz (1996) system.

    Parameters
    ----------
    x : array-like of shape (..., n_dim)
        States on a ring of ``n_dim >= 4`` variables (the last axis).
    forcing : float, default=8.0
        The constant forcing ``F``; ``F = 8`` gives chaos.

    Returns
    -------
    dxdt : ndarray of shape (..., n_dim)
        ``(x[i+1] - x[i-2]) x[i-1] - x[i] + F``, indices modulo ``n_dim``.

    See Also
    --------
    rk4 : Integrate the vector field with fixed steps.

    Notes
    -----
    E. N. Lorenz (1996), "Predictability: a problem partly solved", Proc.
    Seminar on Predictability, ECMWF.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.datasets import lorenz96
    >>> lorenz96(np.full(5, 8.0))  # the fixed point x_i = F
    array([0., 0., 0., 0., 0.])
    """
    x = _check_states(x, "lorenz96", 4)
    return _checked_derivative(_lorenz96(x, forcing), x, "lorenz96")


def _lorenz96(x, forcing=8.0):
    """:func:`lorenz96` without the checks, for the integration loops."""
    # The ring padded with x[-2], x[-1] before and x[0] after: one copy, then
    # slices, is 2-6x faster than gathering the neighbours (or np.roll) from
    # 40 to 4000 variables.
    padded = np.concatenate([x[..., -2:], x, x[..., :1]], axis=-1)
    ahead, behind, two_behind = padded[..., 3:], padded[..., 1:-2], padded[..., :-3]
    return (ahead - two_behind) * behind - x + forcing


def _check_states(x, system, n_dim):
    """`x` as float64 of shape (..., n) with n == 3 (`n_dim`=3) or n >= 4."""
    check_numeric(x, "x")
    x = np.asarray(x, dtype=np.float64)
    fits = x.ndim >= 1 and (
        x.shape[-1] == n_dim if n_dim == 3 else x.shape[-1] >= n_dim
    )
    if not fits:
        need = "3" if n_dim == 3 else f"n_dim >= {n_dim}"
        raise ValueError(
            f"{system}: x must have shape (..., {need}) (the last axis holds the "
            f"variables), got shape {x.shape}."
        )
    return x


def _checked_derivative(dxdt, x, system):
    """`dxdt`, or a ValueError if it is not finite (NaN states, or overflow)."""
    if not np.all(np.isfinite(dxdt)):
        largest = np.max(np.abs(x)) if x.size else 0.0
        raise ValueError(
            f"{system}: the time derivative is NaN or inf for these states x "
            f"(largest magnitude {largest:.3g}): x holds NaN or inf, or is so "
            "large that the quadratic terms overflow float64. Inside an "
            "integration this means it blew up: try a smaller dt."
        )
    return dxdt
