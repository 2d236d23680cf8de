"""Vector fields of the dynamical systems, on arrays of shape ``(..., n_dim)``."""

import numpy as np

# The paper's normalisation of Lorenz 63 states (Finn et al., 2024, public code):
# x_normalised = (x - LORENZ63_SHIFT) / LORENZ63_SCALE.
LORENZ63_SHIFT = np.array([0.0450, 0.0451, 23.5463])
LORENZ63_SCALE = np.array([7.9239, 9.0124, 8.6261])


def lorenz63(x, *, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    """Time derivative of the Lorenz (1963) system.

    Parameters
    ----------
    x : array-like of shape (..., 3)
        States; the last axis holds the three variables.
    sigma, rho, beta : float, default=10, 28, 8/3
        The classical parameters, which give the butterfly attractor.

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
    130-141.

    Examples
    --------
    >>> from skdiffusion.datasets import lorenz63
    >>> lorenz63([1.0, 1.0, 1.0])
    array([ 0.        , 26.        , -1.66666667])
    """
    x = np.asarray(x, dtype=float)
    u, v, w = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([sigma * (v - u), u * (rho - w) - v, u * v - beta * w], axis=-1)


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
    x = np.asarray(x, dtype=float)
    ahead, behind, two_behind = (np.roll(x, s, axis=-1) for s in (-1, 1, 2))
    return (ahead - two_behind) * behind - x + forcing
