"""``make_*`` functions: trajectories of a dynamical system as a learning problem."""

import functools
import hashlib
import os
import warnings
import zlib
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from joblib import Memory
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions

from .._validation import check_numeric, validate_params
from . import _integrate, _systems
from ._base import get_data_home
from ._integrate import rk4
from ._preprocessing import _per_feature, normalize_states, pairs_from_trajectories
from ._systems import (
    LORENZ63_SCALE,
    LORENZ63_SHIFT,
    LORENZ96_MEAN,
    LORENZ96_STD,
)

# Requests of at least this many values (states times variables: 10^6 Lorenz
# 63 states) are cached on disk when cache="auto": below it, generating is
# faster than reading back.
CACHE_MIN_VALUES = 3_000_000

# Values per chunk of the Lorenz 96 climatology run (51 MB in float64).
_CLIMATOLOGY_CHUNK = 6_400_000

# The vector fields without the checks of the public ones (which cost 20 %
# of a step); rk4 checks the integration instead.
_SYSTEMS = {"lorenz63": _systems._lorenz63, "lorenz96": _systems._lorenz96}

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


def _burn_in_and_record(field, x0, dt, burn_in, n_steps, dtype, verbose):
    """Burn in from ``x0``, then record ``n_steps`` states of each trajectory."""
    x = rk4(field, x0, dt, burn_in, return_trajectory=False)
    return rk4(field, x, dt, n_steps - 1, dtype=dtype, verbose=verbose)


def _simulate(system, params, x0, dt, burn_in, n_steps, dtype, numerics=None,
              verbose=False):
    """:func:`_burn_in_and_record` a named system; the arguments are the cache key.

    ``numerics`` only serves as part of the cache key.
    """
    field = functools.partial(_SYSTEMS[system], **params)
    return _burn_in_and_record(field, x0, dt, burn_in, n_steps, dtype, verbose)


def _checksum(array):
    """CRC-32 of an array's bytes: finds damage for 1-2 copies' CPU time.

    (``benchmarks/bench_validation_cost.py``.)
    """
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def _simulate_with_checksum(system, params, x0, dt, burn_in, n_steps, dtype,
                            numerics=None, verbose=False):
    """:func:`_simulate`, and the checksum of its result (stored with it)."""
    trajectories = _simulate(system, params, x0, dt, burn_in, n_steps, dtype,
                             numerics, verbose)
    return trajectories, _checksum(trajectories)


def _trajectories(system, params, x0, dt, burn_in, n_steps, dtype, cache,
                  data_home, verbose):
    n_values = x0.size * n_steps
    # The cache key includes x0, so any random_state (int or RandomState) is
    # cached correctly: the same initial states give the same trajectories.
    args = (system, params, x0, dt, burn_in, n_steps, dtype.name)
    kwargs = {"numerics": _numerics_fingerprint(), "verbose": verbose}
    if not (cache is True or (cache == "auto" and n_values >= CACHE_MIN_VALUES)):
        return _simulate(*args, **kwargs)
    folder = get_data_home(data_home)
    simulate = Memory(folder, verbose=0).cache(
        _simulate_with_checksum, ignore=["verbose"]
    )
    trajectories, checksum = simulate(*args, **kwargs)
    if _checksum(trajectories) != checksum:
        # joblib loads a file whose array bytes were changed without a word
        warnings.warn(
            f"The cached trajectories in {folder} do not match their checksum "
            "(the file was changed or damaged on disk); generating them again.",
            RuntimeWarning,
            stacklevel=6,  # the caller of make_*, past the validation wrappers
        )
        (trajectories, _), _ = simulate.call(*args, **kwargs)
    return trajectories


def _make(system, params, center, spread, feature_names, descr, *, n_trajectories,
          n_steps, dt, burn_in, lead_steps, normalize, random_state, dtype, cache,
          data_home, verbose):
    """Trajectories from initial states ``center + spread * N(0, I)``, paired.

    ``center`` and ``spread`` are also the shift and scale of the
    normalisation: the climatology of the system.
    """
    _check_lead_steps(lead_steps, n_steps)
    rng = check_random_state(random_state)
    x0 = center + spread * rng.standard_normal((n_trajectories, len(center)))
    trajectories = _trajectories(system, params, x0, dt, burn_in, n_steps,
                                 np.dtype(dtype), cache, data_home, verbose)
    if not normalize:
        center, spread = 0.0, 1.0
    return _paired(trajectories, dt, lead_steps, center, spread, feature_names,
                   descr)


def _check_lead_steps(lead_steps, n_steps):
    if lead_steps >= n_steps:
        raise ValueError(
            f"lead_steps must be < n_steps={n_steps} so that every trajectory "
            f"gives at least one (X, y) pair, got {lead_steps}."
        )


def _paired(trajectories, dt, lead_steps, shift, scale, feature_names, descr):
    """The Bunch of every make_ function: trajectories, normalised pairs."""
    n_features = trajectories.shape[-1]
    shift = np.array(_per_feature(shift, "shift", n_features))
    scale = np.array(_per_feature(scale, "scale", n_features))
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
        "auto" caches requests of at least 3 x 10^6 values (10^6 states).
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
    make_trajectories : The same for any vector field.
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
        3 x 10^6 values (``n_trajectories * n_steps * n_dim``).
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
    make_trajectories : The same for any vector field.
    lorenz96 : The vector field.

    Notes
    -----
    E. N. Lorenz (1996), "Predictability: a problem partly solved". With the
    default ``n_dim=40`` and ``F=8`` the normalisation uses the constants
    ``LORENZ96_MEAN`` and ``LORENZ96_STD`` (2.340 and 3.639), measured once
    from 32,000 MTU of this integrator; other settings measure their own
    climatology on first use in a process, from 100 MTU of trajectories
    holding 640 variables in all (16 trajectories of 40, one of 640 or more):
    about a second at any ring size.

    The vector field costs one copy of the state per evaluation and RK4
    advances all trajectories together, so a step costs time linear in
    ``n_trajectories * n_dim``: one trajectory of 10,000 recorded states
    after the default burn-in takes about 2 s with 1000 variables and 4 s
    with 4000 (1.1 GB at peak, float64).

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


def _measure_lorenz96_climatology(n_dim, forcing, *, n_trajectories=None,
                                  n_steps=10_000):
    """Mean and std of one variable, pooled over variables (they are alike).

    RK4 with dt=0.01 from F + N(0, 1), 20 MTU of burn-in, then ``n_steps``
    steps per trajectory, accumulated in chunks of at most
    ``_CLIMATOLOGY_CHUNK`` values. ``n_trajectories=None`` takes enough
    trajectories for 640 variables in all (16 of 40 variables, one of 640 or
    more), so the cost and the sample size stay the same on larger rings.
    """
    if n_trajectories is None:
        n_trajectories = -(-640 // n_dim)
    field = functools.partial(_systems._lorenz96, forcing=forcing)
    x0 = forcing + np.random.default_rng(0).standard_normal((n_trajectories, n_dim))
    x = rk4(field, x0, 0.01, 2000, return_trajectory=False)
    chunk_steps = max(1, _CLIMATOLOGY_CHUNK // x.size)
    total = total_of_squares = 0.0
    for start in range(0, n_steps, chunk_steps):
        path = rk4(field, x, 0.01, min(chunk_steps, n_steps - start))[:, 1:]
        x = path[:, -1]
        total += path.sum()
        total_of_squares += np.square(path).sum()
    n_values = n_steps * x.size
    mean = total / n_values
    std = np.sqrt(max(total_of_squares / n_values - mean**2, 0.0))
    # A weak forcing decays to the fixed point x_i = F: nothing to rescale.
    return float(mean), float(std) if std > 1e-3 else 1.0


@functools.lru_cache(maxsize=16)
def _lorenz96_climatology(n_dim, forcing):
    if (n_dim, forcing) == (40, 8.0):
        return LORENZ96_MEAN, LORENZ96_STD
    return _measure_lorenz96_climatology(n_dim, forcing)


_TRAJECTORIES_DESCR = """\
Trajectories of a user's vector field
-------------------------------------

States of dx/dt = vector_field(x) integrated with classical fourth-order
Runge-Kutta from the given initial states, after {burn_in} discarded steps.

- trajectories: (n_trajectories, n_steps, n_dim), model units.
- X: the state at step i, y: x(i + lead_steps) - x(i); pairs never straddle
  two trajectories; groups gives the trajectory of each row (for GroupKFold).
- X = (x - shift) / scale and y = increment / scale.
"""


def _initial_states(vector_field, x0):
    """``x0`` as finite (n_trajectories, n_dim) float64, checked on the field."""
    check_numeric(x0, "x0")
    x0 = np.array(x0, dtype=np.float64, ndmin=2)
    if x0.ndim != 2 or x0.shape[1] == 0 or not np.all(np.isfinite(x0)):
        raise ValueError(
            "x0 must be finite initial states of shape (n_trajectories, n_dim) "
            f"or (n_dim,), got shape {x0.shape}."
        )
    derivative = np.shape(vector_field(x0))
    if derivative != x0.shape:
        raise ValueError(
            "vector_field must map states of shape (n_trajectories, n_dim) to "
            f"time derivatives of the same shape; for x0 of shape {x0.shape} it "
            f"returned shape {derivative}."
        )
    return x0


@validate_params(
    {
        "vector_field": [callable],
        "x0": ["array-like"],
        **{
            name: _COMMON_CONSTRAINTS[name]
            for name in ("n_steps", "dt", "burn_in", "lead_steps", "dtype", "verbose")
        },
        "shift": [Real, "array-like"],
        "scale": [Real, "array-like"],
    },
    prefer_skip_nested_validation=True,
)
def make_trajectories(vector_field, x0, n_steps, *, dt, burn_in=0, lead_steps=1,
                      shift=0.0, scale=1.0, dtype=np.float64, verbose=False):
    """Integrate any vector field into trajectories and surrogate-learning pairs.

    The generator behind :func:`make_lorenz63` and :func:`make_lorenz96`, for
    a system of one's own: from each initial state, ``burn_in`` RK4 steps of
    ``dx/dt = vector_field(x)`` are discarded, then ``n_steps`` states are
    recorded; ``X`` holds the states and ``y`` the increment ``lead_steps``
    ahead, in the same :class:`~sklearn.utils.Bunch`.

    Parameters
    ----------
    vector_field : callable
        Time derivative ``f(x)`` of states ``x`` of shape
        ``(n_trajectories, n_dim)``, returning the same shape: vectorised
        over trajectories, as :func:`lorenz63` and :func:`lorenz96` are.
        Fixed parameters go in with :func:`functools.partial`.
    x0 : array-like of shape (n_trajectories, n_dim) or (n_dim,)
        Initial states, finite; one trajectory each.
    n_steps : int
        Number of states recorded per trajectory (>= 1), the first being the
        state after the burn-in.
    dt : float
        RK4 time step (> 0), in the time unit of ``vector_field``.
    burn_in : int, default=0
        Steps discarded before recording.
    lead_steps : int, default=1
        The target ``y`` is ``x(i + lead_steps) - x(i)``; must be ``< n_steps``.
    shift : float or array-like of shape (n_dim,), default=0.0
        ``X = (x - shift) / scale``, e.g. the climatological mean.
    scale : float or array-like of shape (n_dim,), default=1.0
        ``y = increment / scale``, e.g. the climatological standard
        deviation; positive. The defaults keep model units.
    dtype : {np.float64, np.float32}, default=np.float64
        Data type of ``trajectories``, ``X`` and ``y``; integration is always
        in float64.
    verbose : bool, default=False
        Show the progress of the integration (on standard error).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As :func:`make_lorenz63`: ``trajectories`` of shape
        (n_trajectories, n_steps, n_dim), ``X``, ``y`` and ``groups`` with
        ``n_trajectories * (n_steps - lead_steps)`` rows, ``dt``,
        ``lead_steps``, ``shift`` and ``scale`` (arrays of shape (n_dim,)),
        ``feature_names`` ``["x0", "x1", ...]`` and ``DESCR``.

    See Also
    --------
    rk4 : The integrator.
    pairs_from_trajectories : The same pairs from trajectories one already
        has (observed, or from another integrator).
    make_lorenz96 : Random initial states, a known climatology and a disk
        cache for the Lorenz 1996 system.

    Notes
    -----
    Nothing is cached on disk: the generator cannot tell when the code of
    ``vector_field`` changes. ``vector_field`` is called once on ``x0`` to
    check its output's shape before the integration.

    Examples
    --------
    Exponential decay ``dx/dt = -x``, whose solution is ``x0 exp(-t)``:

    >>> import numpy as np
    >>> from skdiffusion.datasets import make_trajectories
    >>> data = make_trajectories(lambda x: -x, [[1.0], [2.0]], 11, dt=0.1)
    >>> data.trajectories.shape, data.X.shape, data.groups[:3]
    ((2, 11, 1), (20, 1), array([0, 0, 0]))
    >>> bool(np.allclose(data.trajectories[:, -1, 0], [np.exp(-1), 2 * np.exp(-1)]))
    True
    """
    _check_lead_steps(lead_steps, n_steps)
    x0 = _initial_states(vector_field, x0)
    trajectories = _burn_in_and_record(vector_field, x0, dt, burn_in, n_steps,
                                       np.dtype(dtype), verbose)
    feature_names = [f"x{i}" for i in range(x0.shape[1])]
    descr = _TRAJECTORIES_DESCR.format(burn_in=burn_in)
    return _paired(trajectories, dt, lead_steps, shift, scale, feature_names, descr)
