"""One fixed-step fourth-order Runge-Kutta integrator for many trajectories."""

import numpy as np


def rk4(func, x0, dt, n_steps, *, return_trajectory=True, dtype=None):
    """Integrate ``dx/dt = func(x)`` with the classical Runge-Kutta scheme.

    All trajectories (the leading axes of ``x0``) advance together, so the
    cost of a step is paid once for the whole batch.

    Parameters
    ----------
    func : callable
        Vector field mapping an array of shape ``(..., n_dim)`` to its time
        derivative of the same shape, e.g. :func:`lorenz63`.
    x0 : array-like of shape (..., n_dim)
        Initial states.
    dt : float
        Time step.
    n_steps : int
        Number of steps.
    return_trajectory : bool, default=True
        If False, return only the final state (no memory for the path).
    dtype : dtype, default=None
        dtype of the returned trajectory (the arithmetic is always float64);
        ``np.float32`` halves the memory of long runs.

    Returns
    -------
    x : ndarray of shape (..., n_steps + 1, n_dim) or (..., n_dim)
        The states at times ``0, dt, ..., n_steps * dt`` (the initial state
        first), or only the last one.

    Examples
    --------
    >>> from skdiffusion.datasets import lorenz63, rk4
    >>> path = rk4(lorenz63, [[1.0, 1.0, 1.0], [2.0, 0.0, 20.0]], 0.01, 100)
    >>> path.shape
    (2, 101, 3)
    """
    x = np.array(x0, dtype=np.float64)
    if return_trajectory:
        shape = x.shape[:-1] + (n_steps + 1, x.shape[-1])
        path = np.empty(shape, dtype=dtype or np.float64)
        path[..., 0, :] = x
    half = 0.5 * dt
    for i in range(n_steps):
        k1 = func(x)
        k2 = func(x + half * k1)
        k3 = func(x + half * k2)
        k4 = func(x + dt * k3)
        x = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        if return_trajectory:
            path[..., i + 1, :] = x
    return path if return_trajectory else x
