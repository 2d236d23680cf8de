"""One fixed-step fourth-order Runge-Kutta integrator for many trajectories."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .._base import progress
from .._validation import check_numeric, validate_params


@validate_params(
    {
        "func": [callable],
        "x0": ["array-like"],
        "dt": [Interval(Real, None, None, closed="neither")],
        "n_steps": [Interval(Integral, 0, None, closed="left")],
        "return_trajectory": ["boolean"],
        "dtype": "no_validation",
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def rk4(func, x0, dt, n_steps, *, return_trajectory=True, dtype=None,
        verbose=False):
    """Integrate ``dx/dt = func(x)`` with the classical Runge-Kutta scheme.

    All trajectories (the leading axes of ``x0``) advance together, so the
    Python cost of a step is paid once for the whole batch.

    Parameters
    ----------
    func : callable
        Vector field mapping an array of shape ``(..., n_dim)`` to its time
        derivative of the same shape, e.g. :func:`lorenz63`.
    x0 : array-like of shape (..., n_dim)
        Initial states.
    dt : float
        Time step (negative integrates backwards in time).
    n_steps : int
        Number of steps (>= 0).
    return_trajectory : bool, default=True
        If False, return only the final state (no memory for the path).
    dtype : dtype, default=None
        Data type of the returned trajectory, float64 if None. The arithmetic is
        always float64; ``np.float32`` halves the memory of long runs.
    verbose : bool, default=False
        Show the progress over the steps.

    Returns
    -------
    x : ndarray of shape (..., n_steps + 1, n_dim) or (..., n_dim)
        The states at times ``0, dt, ..., n_steps * dt`` (the initial state
        first), or only the last one.

    See Also
    --------
    scipy.integrate.solve_ivp : Adaptive integrators, one system at a time.

    Notes
    -----
    The classical scheme: with ``k1 = f(x)``, ``k2 = f(x + dt/2 k1)``,
    ``k3 = f(x + dt/2 k2)``, ``k4 = f(x + dt k3)``, the step is
    ``x + dt/6 (k1 + 2 k2 + 2 k3 + k4)``; its global error is O(dt^4).

    Examples
    --------
    >>> from skdiffusion.datasets import lorenz63, rk4
    >>> path = rk4(lorenz63, [[1.0, 1.0, 1.0], [2.0, 0.0, 20.0]], 0.01, 100)
    >>> path.shape
    (2, 101, 3)
    """
    check_numeric(x0, "x0")
    x = np.array(x0, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(
            f"x0 must be a finite array of shape (..., n_dim), got shape {x.shape}"
            f"{'' if np.all(np.isfinite(x)) else ' with NaN or inf'}."
        )
    if return_trajectory:
        shape = x.shape[:-1] + (n_steps + 1, x.shape[-1])
        path = np.empty(shape, dtype=dtype or np.float64)
        path[..., 0, :] = x
    half, sixth = 0.5 * dt, dt / 6.0
    # A blow-up is found once, at the end (a test per step cost 11-14 % more
    # CPU for 16 states, benchmarks/bench_validation_cost.py): non-finite
    # states stay non-finite.
    with (
        progress(n_steps, desc="rk4", verbose=verbose, unit="steps") as bar,
        np.errstate(over="ignore", invalid="ignore"),
    ):
        for i in range(1, n_steps + 1):
            k1 = func(x)
            k2 = func(x + half * k1)
            k3 = func(x + half * k2)
            k4 = func(x + dt * k3)
            x = x + sixth * (k1 + 2.0 * (k2 + k3) + k4)
            if return_trajectory:
                path[..., i, :] = x
            bar.update()
    if return_trajectory:
        _check_blow_up(path, dt, n_steps)
    elif not np.all(np.isfinite(x)):
        _check_blow_up(None, dt, n_steps)
    return path if return_trajectory else x


def _check_blow_up(path, dt, n_steps):
    """Raise a ValueError naming `dt` if the integration became non-finite."""
    if path is None:
        where = f"within its {n_steps} steps (t = {n_steps * dt:g})"
    else:
        finite = np.isfinite(path).all(axis=tuple(range(path.ndim - 2)) + (-1,))
        if finite.all():
            return
        first = int(np.argmin(finite))
        where = f"at step {first} of {n_steps} (t = {first * dt:g})"
    raise ValueError(
        f"The RK4 integration blew up: the states became NaN or inf {where} "
        f"with step size dt={dt!r}. The step is likely too large for the "
        "system (try a smaller dt), or the initial states are too far from "
        "where its dynamics stay bounded."
    )
