"""From trajectories to a learning problem: normalised states and (X, y) pairs."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from .._validation import check_finite, check_numeric, validate_params


def _float_array(array, name):
    """``array`` as a float32 or float64 ndarray (float64 unless float32)."""
    check_numeric(array, name)
    array = np.asarray(array)
    if array.dtype in (np.float32, np.float64):
        return array
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError):
        message = f"{name} must hold numbers, got dtype {array.dtype}."
        raise ValueError(message) from None


def _per_feature(value, name, n_features):
    """A finite float64 vector of ``n_features`` values (a scalar is repeated)."""
    vector = _float_array(value, name).astype(np.float64, copy=False)
    if vector.ndim > 1 or vector.size not in (1, n_features):
        raise ValueError(
            f"{name} must be a number or have shape ({n_features},), got shape "
            f"{vector.shape}."
        )
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return np.broadcast_to(vector, (n_features,))


@validate_params(
    {
        "states": ["array-like"],
        "shift": [Real, "array-like"],
        "scale": [Real, "array-like"],
        "copy": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def normalize_states(states, shift, scale, *, copy=True):
    """States in normalised units: ``(states - shift) / scale``.

    Parameters
    ----------
    states : array-like of shape (..., n_features)
        States in model units, e.g. the ``trajectories`` of
        :func:`make_lorenz63`; the last axis holds the variables.
    shift : float or array-like of shape (n_features,)
        Subtracted from each variable (``data.shift`` of a ``make_`` function).
    scale : float or array-like of shape (n_features,)
        Then each variable is divided by it (``data.scale``); positive.
    copy : bool, default=True
        If False and ``states`` is a float32 or float64 ndarray, normalise it
        in place and return it.

    Returns
    -------
    normalised : ndarray of the shape of ``states``
        float32 if ``states`` is, else float64.

    See Also
    --------
    make_lorenz63 : Its ``X`` is normalised like this (``normalize=True``).

    Examples
    --------
    >>> from skdiffusion.datasets import make_lorenz63, normalize_states
    >>> data = make_lorenz63(2, 100, random_state=0)
    >>> states = normalize_states(data.trajectories, data.shift, data.scale)
    >>> bool((states[:, :-10].reshape(-1, 3) == data.X).all())
    True
    """
    in_place = not copy and isinstance(states, np.ndarray)
    states = _float_array(states, "states")
    if states.ndim == 0:
        raise ValueError("states must have shape (..., n_features), got a scalar.")
    if not np.all(np.isfinite(states)):
        raise ValueError("states contains NaN or infinity.")
    n_features = states.shape[-1]
    shift = _per_feature(shift, "shift", n_features)
    scale = _per_feature(scale, "scale", n_features)
    if np.any(scale <= 0):
        raise ValueError(f"scale must be positive, got {scale}.")
    # The arithmetic in the dtype of the states, so float32 stays float32.
    normalised = states if in_place else states.copy()
    with np.errstate(over="ignore"):
        normalised -= shift.astype(states.dtype)
        normalised /= scale.astype(states.dtype)
    return check_finite(normalised, "normalize_states(states, shift, scale)", (
        f"(states - shift) / scale overflows {states.dtype}; is scale in the units "
        "of states?"
    ))


def _as_trajectories(trajectories):
    """The trajectories as a list of 2-D float arrays of one width.

    Float32 stays float32 and float64 float64; anything else becomes float64.
    """
    if hasattr(trajectories, "ndim") and trajectories.ndim != 3:
        raise ValueError(
            "trajectories must be an array of shape (n_trajectories, n_steps, "
            "n_features) or a list of arrays of shape (n_steps, n_features), got "
            f"an array of shape {np.shape(trajectories)}; wrap a single "
            "trajectory in a list."
        )
    paths = []
    for i, path in enumerate(trajectories):
        path = _float_array(path, f"trajectories[{i}]")
        if path.ndim != 2 or path.shape[1] == 0:
            raise ValueError(
                f"trajectories[{i}] must have shape (n_steps, n_features), got "
                f"{path.shape}."
            )
        if paths and path.shape[1] != paths[0].shape[1]:
            raise ValueError(
                f"trajectories[{i}] has {path.shape[1]} features, trajectories[0] "
                f"{paths[0].shape[1]}: every trajectory must have the same."
            )
        if not np.all(np.isfinite(path)):
            raise ValueError(f"trajectories[{i}] contains NaN or infinity.")
        paths.append(path)
    if not paths:
        raise ValueError("trajectories must hold at least one trajectory.")
    return paths


@validate_params(
    {
        "trajectories": ["array-like"],
        "lead_steps": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def pairs_from_trajectories(trajectories, *, lead_steps=1):
    """States and their increments ``lead_steps`` ahead, trajectory by trajectory.

    Turns trajectories of a dynamical system (simulated, observed, or from
    :func:`make_lorenz63`) into a supervised learning problem: ``X`` is the
    state at step ``i`` and ``y`` the increment ``x(i + lead_steps) - x(i)``.
    A pair never straddles two trajectories.

    Parameters
    ----------
    trajectories : array-like of shape (n_trajectories, n_steps, n_features) \
            or list of array-like of shape (n_steps_k, n_features)
        The trajectories, one state per time step; in a list they may have
        different lengths. A trajectory of ``lead_steps`` states or fewer
        gives no pair.
    lead_steps : int, default=1
        Steps between a state and the state its increment reaches (>= 1).

    Returns
    -------
    X : ndarray of shape (n_pairs, n_features)
        States, trajectory after trajectory, in time order.
    y : ndarray of shape (n_pairs, n_features)
        Their increments ``lead_steps`` ahead.
    groups : ndarray of shape (n_pairs,)
        Index of the trajectory (in ``trajectories``) of each row, for
        :class:`~sklearn.model_selection.GroupKFold`.

    ``X`` and ``y`` are float32 if the trajectories all are, else float64.
    ``n_pairs`` is the sum over trajectories of ``n_steps_k - lead_steps``
    (where positive).

    See Also
    --------
    make_lorenz63 : Simulated trajectories with these pairs already made.
    skdiffusion.surrogate.SurrogateForecaster : Learns the next state from
        ``X`` and ``X + y``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdiffusion.datasets import pairs_from_trajectories
    >>> first = np.array([[0.0], [1.0], [3.0]])
    >>> second = np.array([[10.0], [20.0]])
    >>> X, y, groups = pairs_from_trajectories([first, second])
    >>> X.ravel(), y.ravel(), groups
    (array([ 0.,  1., 10.]), array([ 1.,  2., 10.]), array([0, 0, 1]))
    """
    paths = _as_trajectories(trajectories)
    lengths = [max(len(path) - lead_steps, 0) for path in paths]
    if not sum(lengths):
        raise ValueError(
            f"lead_steps={lead_steps} leaves no pair: no trajectory has more "
            f"than {lead_steps} states."
        )
    dtype = np.result_type(*paths)
    X = np.empty((sum(lengths), paths[0].shape[1]), dtype=dtype)
    y = np.empty_like(X)
    stop = 0
    # Trajectory by trajectory into preallocated arrays: no more memory than
    # X and y, however many trajectories.
    for path, length in zip(paths, lengths, strict=True):
        rows = slice(stop, stop + length)
        X[rows] = path[:length]
        np.subtract(path[lead_steps:], path[:length], out=y[rows])
        stop += length
    groups = np.repeat(np.arange(len(paths)), lengths)
    return X, y, groups
