"""``make_*`` functions: trajectories of a dynamical system as a learning problem."""

import functools
import hashlib
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from joblib import Memory
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_params,
)

from . import _integrate, _systems
from ._base import get_data_home
from ._integrate import rk4
from ._preprocessing import normalize_states, pairs_from_trajectories
from ._systems import (
    LORENZ63_SCALE,
    LORENZ63_SHIFT,
    LORENZ96_MEAN,
    LORENZ96_STD,
    lorenz63,
    lorenz96,
)

# Requests with at least this many states are cached on disk when cache="auto":
# below it, generating is faster than reading back.
CACHE_MIN_STATES = 1_000_000

_SYSTEMS = {"lorenz63": lorenz63, "lorenz96": lorenz96}

# The arguments every make_ function has, with what each may be.
_COMMON_CONSTRAINTS = {
    "n_trajectories": [Interval(Integral, 1, None, closed="left")],
    "n_steps": [Interval(Integral, 1, None, closed="left")],
    "dt": [Interval(Real, 0, None, closed="neither")],
    "burn_in": [Interval(Integral, 0, None, closed="left")],
    "lead_steps": [Interval(Integral, 1, None, closed="left")],
    "normalize": ["boolean"],
    "random_state": ["random_state"],
    "dtype": [
        Options(type, {np.float32, np.float64}),
        Options(np.dtype, {np.dtype(np.float32), np.dtype(np.float64)}),
        StrOptions({"float32", "float64"}),
    ],
    "cache": ["boolean", StrOptions({"auto"})],
    "data_home": [str, os.PathLike, None],
    "verbose": ["verbose"],
}


def _common(arguments):
    """The common arguments among a make_ function's ``locals()``."""
    return {name: arguments[name] for name in _COMMON_CONSTRAINTS}


@functools.lru_cache(maxsize=1)
def _numerics_fingerprint():
    """Hash of the integrator's and vector fields' source code.

    joblib.Memory only notices changes to the cached function itself; this
    key also invalidates the cache when rk4 or a vector field changes.
    """
    digest = hashlib.sha256()
    for module in (_integrate, _systems):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _simulate(system, params, x0, dt, burn_in, n_steps, dtype, numerics=None,
              verbose=False):
    """Burn in from ``x0``, then record ``n_steps`` states of each trajectory.

    ``numerics`` only serves as part of the cache key.
    """
    field = functools.partial(_SYSTEMS[system], **params)
    x = rk4(field, x0, dt, burn_in, return_trajectory=False)
    return rk4(field, x, dt, n_steps - 1, dtype=dtype, verbose=verbose)


def _trajectories(system, params, x0, dt, burn_in, n_steps, dtype, cache,
                  data_home, verbose):
    n_states = x0.shape[0] * n_steps
    if cache is True or (cache == "auto" and n_states >= CACHE_MIN_STATES):
        memory = Memory(get_data_home(data_home), verbose=0)
        simulate = memory.cache(_simulate, ignore=["verbose"])
    else:
        simulate = _simulate
    # The cache key includes x0, so any random_state (int or RandomState) is
    # cached correctly: the same initial states give the same trajectories.
    return simulate(system, params, x0, dt, burn_in, n_steps, dtype.name,
                    numerics=_numerics_fingerprint(), verbose=verbose)


def _make(system, params, center, spread, feature_names, descr, *, n_trajectories,
          n_steps, dt, burn_in, lead_steps, normalize, random_state, dtype, cache,
          data_home, verbose):
    """Trajectories from initial states ``center + spread * N(0, I)``, paired.

    ``center`` and ``spread`` are also the shift and scale of the
    normalisation: the climatology of the system.
    """
    if lead_steps >= n_steps:
        raise ValueError(
            f"lead_steps must be < n_steps={n_steps} so that every trajectory "
            f"gives at least one (X, y) pair, got {lead_steps}."
        )
    rng = check_random_state(random_state)
    x0 = center + spread * rng.standard_normal((n_trajectories, len(center)))
    trajectories = _trajectories(system, params, x0, dt, burn_in, n_steps,
                                 np.dtype(dtype), cache, data_home, verbose)
    shift = np.array(center, dtype=np.float64)
    scale = np.array(spread, dtype=np.float64)
    if not normalize:
        shift, scale = np.zeros_like(shift), np.ones_like(scale)
    X, y, groups = pairs_from_trajectories(trajectories, lead_steps=lead_steps)
    # In place, to hold no more than X and y next to the trajectories.
    X = normalize_states(X, shift, scale, copy=False)
    y = normalize_states(y, 0.0, scale, copy=False)
    return Bunch(trajectories=trajectories, X=X, y=y, groups=groups, dt=dt,
                 lead_steps=lead_steps, shift=shift, scale=scale,
                 feature_names=feature_names, DESCR=descr)


_LORENZ63_DESCR = """\
Lorenz 1963 trajectories
------------------------

States of the Lorenz (1963) system (sigma=10, rho=28, beta=8/3) integrated
with classical fourth-order Runge-Kutta, after a burn-in from random initial
states spread around the attractor.

- trajectories: (n_trajectories, n_steps, 3), model units.
- X: the state at step i, y: x(i + lead_steps) - x(i); pairs never straddle
  two trajectories; groups gives the trajectory of each row (for GroupKFold).
- With normalize=True, X = (x - shift) / scale and y = increment / scale
  (normalised units), with the paper's shift and scale.

Finn, Disson, Farchi, Bocquet & Durand (2024) used 16 trajectories of 10^6
steps with dt=0.01 for training and separately seeded test trajectories; the
target is the increment over 10 steps (0.1 model time units).
"""


@validate_params(_COMMON_CONSTRAINTS, prefer_skip_nested_validation=True)
def make_lorenz63(n_trajectories, n_steps, *, dt=0.01, burn_in=5000, lead_steps=10,
                  normalize=True, random_state=None, dtype=np.float64,
                  cache="auto", data_home=None, verbose=False):
    """Generate Lorenz 1963 trajectories and surrogate-learning pairs.

    Each trajectory starts from a random state spread around the attractor,
    is integrated ``burn_in`` steps with RK4 (discarded), then ``n_steps``
    states are recorded. ``X`` holds the states and ``y`` the increment
    ``lead_steps`` ahead, the target of the paper's surrogate models.

    Parameters
    ----------
    n_trajectories : int
        Number of independent trajectories (>= 1).
    n_steps : int
        Number of states recorded per trajectory (>= 1).
    dt : float, default=0.01
        RK4 time step in model time units (MTU).
    burn_in : int, default=5000
        Steps discarded before recording: 50 MTU at ``dt=0.01``, about 45
        Lyapunov times, so every trajectory is on the attractor and has
        forgotten its initial state.
    lead_steps : int, default=10
        The target ``y`` is ``x(i + lead_steps) - x(i)``; must be
        ``< n_steps``. The paper uses 10 steps (0.1 MTU).
    normalize : bool, default=True
        If True, ``X = (x - shift) / scale`` and ``y = increment / scale``
        with the paper's constants ``LORENZ63_SHIFT`` and
        ``LORENZ63_SCALE``; else raw model units (``shift`` 0, ``scale`` 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial states. Use different seeds for train and test sets.
    dtype : {np.float64, np.float32}, default=np.float64
        Data type of ``trajectories``, ``X`` and ``y``; integration is always in
        float64. float32 halves the memory (the paper-scale set takes 1.2 GB
        in float64).
    cache : bool or "auto", default="auto"
        Cache the trajectories on disk under ``data_home`` (joblib.Memory);
        "auto" caches requests of at least 10^6 states.
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    verbose : bool, default=False
        Show the integration's progress (on standard error).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        trajectories : ndarray of shape (n_trajectories, n_steps, 3)
            The states in model units.
        X : ndarray of shape (n_trajectories * (n_steps - lead_steps), 3)
            States, normalised if ``normalize``.
        y : ndarray of shape (n_trajectories * (n_steps - lead_steps), 3)
            Increments ``lead_steps`` ahead, in the units of ``X``'s scale.
        groups : ndarray of shape (n_trajectories * (n_steps - lead_steps),)
            Trajectory index of each row.
        dt : float
            The time step.
        lead_steps : int
            Steps between ``X`` and the state of ``y``.
        shift, scale : ndarray of shape (3,)
            ``X * scale + shift`` and ``y * scale`` are in model units.
        feature_names : list of str
            ``["x", "y", "z"]``.
        DESCR : str
            Description of the dataset.

    See Also
    --------
    make_lorenz96 : The same for the Lorenz 1996 system.
    lorenz63 : The vector field.
    pairs_from_trajectories : The same pairs from one's own trajectories.
    normalize_states : The same normalisation of any states.

    Notes
    -----
    Finn et al. (2024), "Representation learning with unconditional denoising
    diffusion models for dynamical systems", Nonlin. Processes Geophys. 31,
    409-431, train on 16 trajectories of 10^6 steps (dt=0.01, 1.6e7 states)
    after a long burn-in and test on separately seeded trajectories:
    ``make_lorenz63(16, 1_000_000, random_state=0)`` for training and another
    seed for testing. Their surrogates predict ``y``, the increment over 10
    steps (0.1 MTU) in normalised units, i.e. divided by ``scale`` (the
    shift cancels in a difference).

    Initial states are drawn from a normal distribution with the attractor's
    mean and standard deviation, so trajectories start in different parts of
    it; the burn-in (45 Lyapunov times of about 1.1 MTU at the default)
    brings each onto the attractor and decorrelates it from its start.

    The integration is a Python loop over steps, vectorised over
    trajectories: about 20 us of CPU per step for tens of trajectories (40 us
    for 256), so the paper-scale set takes about 25 s of CPU. It is cached on
    disk (``cache="auto"``) and read back in about a second.
    Same ``random_state``, same data on a given installation.

    Examples
    --------
    >>> from sklearn.model_selection import GroupKFold
    >>> from skdiffusion.datasets import make_lorenz63
    >>> data = make_lorenz63(4, 1000, random_state=0)
    >>> data.trajectories.shape, data.X.shape, data.y.shape
    ((4, 1000, 3), (3960, 3), (3960, 3))
    >>> splits = GroupKFold(n_splits=4).split(data.X, data.y, data.groups)
    """
    return _make("lorenz63", {}, LORENZ63_SHIFT, LORENZ63_SCALE, ["x", "y", "z"],
                 _LORENZ63_DESCR, **_common(locals()))


_LORENZ96_DESCR = """\
Lorenz 1996 trajectories
------------------------

States of the Lorenz (1996) system with {n_dim} variables on a ring and
forcing F={forcing}, integrated with classical fourth-order Runge-Kutta after
a burn-in from random initial states.

- trajectories: (n_trajectories, n_steps, n_dim), model units.
- X: the state at step i, y: x(i + lead_steps) - x(i); pairs never straddle
  two trajectories; groups gives the trajectory of each row (for GroupKFold).
- With normalize=True, X = (x - shift) / scale and y = increment / scale,
  with the climatological mean and standard deviation of one variable (the
  same for all variables).
"""


@validate_params(
    {
        **_COMMON_CONSTRAINTS,
        "n_dim": [Interval(Integral, 4, None, closed="left")],
        "forcing": [Interval(Real, None, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def make_lorenz96(n_trajectories, n_steps, *, n_dim=40, forcing=8.0, dt=0.01,
                  burn_in=5000, lead_steps=10, normalize=True, random_state=None,
                  dtype=np.float64, cache="auto", data_home=None, verbose=False):
    """Generate Lorenz 1996 trajectories and surrogate-learning pairs.

    As :func:`make_lorenz63`, for a ring of ``n_dim`` variables: random
    initial states around the climatology, ``burn_in`` discarded RK4 steps,
    then ``n_steps`` recorded states per trajectory; ``X`` holds the states
    and ``y`` the increment ``lead_steps`` ahead.

    Parameters
    ----------
    n_trajectories : int
        Number of trajectories (>= 1), each from its own random start.
    n_steps : int
        Number of states recorded per trajectory (>= 1).
    n_dim : int, default=40
        Number of variables on the ring (>= 4).
    forcing : float, default=8.0
        The forcing ``F``.
    dt : float, default=0.01
        RK4 time step in model time units (MTU).
    burn_in : int, default=5000
        Steps discarded before recording.
    lead_steps : int, default=10
        The target ``y`` is ``x(i + lead_steps) - x(i)``; must be ``< n_steps``.
    normalize : bool, default=True
        If True, normalise by the climatological mean and standard deviation
        of a long run (the same for every variable, by symmetry).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial states.
    dtype : {np.float64, np.float32}, default=np.float64
        Data type of ``trajectories``, ``X`` and ``y``.
    cache : bool or "auto", default="auto"
        Cache the trajectories on disk; "auto" caches requests of at least
        10^6 states.
    data_home : str or path-like, default=None
        Cache folder, as in :func:`make_lorenz63`.
    verbose : bool, default=False
        Show the progress of the integration.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As :func:`make_lorenz63`, with ``n_dim`` variables.

    See Also
    --------
    make_lorenz63 : The same for the Lorenz 1963 system.
    lorenz96 : The vector field.

    Notes
    -----
    E. N. Lorenz (1996), "Predictability: a problem partly solved". With the
    default ``n_dim=40`` and ``F=8`` the normalisation uses the constants
    ``LORENZ96_MEAN`` and ``LORENZ96_STD`` (2.340 and 3.639), measured once
    from 32,000 MTU of this integrator; other settings measure their own
    climatology from a 1,600 MTU run on first use (about a second).

    Examples
    --------
    >>> from skdiffusion.datasets import make_lorenz96
    >>> data = make_lorenz96(2, 500, random_state=0)
    >>> data.X.shape
    (980, 40)
    """
    forcing = float(forcing)
    mean, std = _lorenz96_climatology(n_dim, forcing)
    return _make("lorenz96", {"forcing": forcing}, np.full(n_dim, mean),
                 np.full(n_dim, std), [f"x{i}" for i in range(n_dim)],
                 _LORENZ96_DESCR.format(n_dim=n_dim, forcing=forcing),
                 **_common(locals()))


def _measure_lorenz96_climatology(n_dim, forcing, *, n_trajectories=16,
                                  n_chunks=1, chunk_steps=10_000):
    """Mean and std of one variable, pooled over variables (they are alike).

    RK4 with dt=0.01 from F + N(0, 1), 20 MTU of burn-in, then
    n_chunks * chunk_steps steps per trajectory, accumulated chunk by chunk.
    """
    field = functools.partial(lorenz96, forcing=forcing)
    x0 = forcing + np.random.default_rng(0).standard_normal((n_trajectories, n_dim))
    x = rk4(field, x0, 0.01, 2000, return_trajectory=False)
    total = total_of_squares = 0.0
    for _ in range(n_chunks):
        path = rk4(field, x, 0.01, chunk_steps)[:, 1:]
        x = path[:, -1]
        total += path.sum()
        total_of_squares += np.square(path).sum()
    n_values = n_trajectories * n_chunks * chunk_steps * n_dim
    mean = total / n_values
    std = np.sqrt(max(total_of_squares / n_values - mean**2, 0.0))
    # A weak forcing decays to the fixed point x_i = F: nothing to rescale.
    return float(mean), float(std) if std > 1e-3 else 1.0


@functools.lru_cache(maxsize=16)
def _lorenz96_climatology(n_dim, forcing):
    if (n_dim, forcing) == (40, 8.0):
        return LORENZ96_MEAN, LORENZ96_STD
    return _measure_lorenz96_climatology(n_dim, forcing)
